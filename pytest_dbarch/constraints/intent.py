"""What the models say a table should enforce: their CHECKs and their referential actions.

Read from the SQLAlchemy ``MetaData`` named by ``dbarch_models`` (``models.py``). A CHECK
is compiled by SQLAlchemy's PostgreSQL dialect exactly as its DDL would be, with column
names unqualified, so the server can evaluate it on a candidate row next to the
database's own CHECKs: behaviour is compared, never text. Foreign keys keep their
``ondelete`` / ``onupdate`` (none given means NO ACTION, PostgreSQL's default).
Tables are matched to the catalog by name (a table without a schema is looked up on the
search path); what the models declare and the database lacks is the schema lint's
business, so it is simply not looked at here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_dbarch.postgres.catalog import Catalog

if TYPE_CHECKING:
    from sqlalchemy import MetaData


@dataclass(frozen=True)
class ModelCheck:
    table: str  # catalog's schema.table
    name: str
    sql: str  # as PostgreSQL would receive it in CREATE TABLE
    source: str  # "module.Model" or the table name, for messages


@dataclass(frozen=True)
class ModelForeignKey:
    table: str  # catalog's schema.table
    columns: tuple[str, ...]
    parent: str  # catalog's schema.table
    parent_columns: tuple[str, ...]
    on_delete: str  # "CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION"
    on_update: str


@dataclass
class Intent:
    checks: dict[str, list[ModelCheck]] = field(default_factory=dict)
    foreign_keys: dict[str, list[ModelForeignKey]] = field(default_factory=dict)
    tables: set[str] = field(default_factory=set)  # catalog tables the models describe
    not_null: dict[str, frozenset[str]] = field(default_factory=dict)  # columns the models never leave NULL

    def foreign_key(self, table: str, columns: tuple[str, ...], parent: str) -> ModelForeignKey | None:
        for fk in self.foreign_keys.get(table, []):
            if fk.columns == columns and fk.parent == parent:
                return fk
        return None


def _action(value: Any) -> str:
    if not value:
        return "NO ACTION"
    return " ".join(str(value).upper().split())


def read(metadata: MetaData | None, catalog: Catalog) -> Intent:
    intent = Intent()
    if metadata is None:
        return intent
    from sqlalchemy import CheckConstraint, ForeignKeyConstraint
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    compiler = dialect.ddl_compiler(dialect, None)
    for model_table in metadata.tables.values():
        qualified = _catalog_name(catalog, model_table.name, model_table.schema)
        if qualified is None:
            continue
        intent.tables.add(qualified)
        intent.not_null[qualified] = frozenset(c.name for c in model_table.columns if c.nullable is False)
        for constraint in model_table.constraints:
            if isinstance(constraint, CheckConstraint):
                text = compiler.sql_compiler.process(constraint.sqltext, include_table=False, literal_binds=True)
                name = str(constraint.name) if constraint.name else "(unnamed CHECK)"
                intent.checks.setdefault(qualified, []).append(ModelCheck(qualified, name, str(text), model_table.name))
            elif isinstance(constraint, ForeignKeyConstraint):
                parent_table = constraint.referred_table
                parent = _catalog_name(catalog, parent_table.name, parent_table.schema)
                if parent is None:
                    continue
                intent.foreign_keys.setdefault(qualified, []).append(ModelForeignKey(
                    qualified,
                    tuple(c.name for c in constraint.columns),
                    parent,
                    tuple(element.column.name for element in constraint.elements),
                    _action(constraint.ondelete),
                    _action(constraint.onupdate),
                ))
    return intent


def _catalog_name(catalog: Catalog, name: str, schema: str | None) -> str | None:
    try:
        return catalog.table(f"{schema}.{name}" if schema else name).qualified
    except KeyError:
        return None
