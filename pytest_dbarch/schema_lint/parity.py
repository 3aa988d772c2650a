"""Structural parity between the models and the database (K09-K12): tables and
columns on one side only, nullability, uniqueness, lengths, enum labels and type
families.

CHECK constraints are not compared here: their meaning is proven with data by the
constraint property tests (``constraints.model-check-not-enforced``), because two
texts can say the same thing (``BETWEEN 1 AND 5`` and ``>= 1 AND <= 5``). Partial
unique indexes are compared by their columns only, for the same reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pytest_dbarch.findings import Status
from pytest_dbarch.schema_lint import ddl
from pytest_dbarch.schema_lint.facts import alter, create_index, table_ref
from pytest_dbarch.schema_lint.options import LintOptions
from pytest_dbarch.schema_lint.rule import Schema, Violation

if TYPE_CHECKING:
    from pytest_dbarch.postgres.catalog import Column, Table

def _stored(schema: Schema) -> Iterator[tuple[Any, Table, str]]:
    """The model tables that exist as tables: a view's columns are always nullable and
    unindexed in the catalog, so only its presence is compared."""
    for model, table, qualified in _pairs(schema):
        if table is not None and table.kind in ("table", "partitioned table"):
            yield model, table, qualified


def _pairs(schema: Schema) -> Iterator[tuple[Any, Table | None, str]]:
    """(model table, catalog table or None, qualified name) for every model table."""
    models = schema.models
    if models is None:
        return
    for model in models.metadata.tables.values():
        qualified = models.qualified(model, schema.catalog.search_path)
        yield model, schema.catalog.tables.get(qualified), qualified


@lru_cache(maxsize=1)
def _dialect() -> Any:
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()  # type: ignore[no-untyped-call]


def _model_type(model_column: Any) -> str:
    try:
        return str(model_column.type.compile(dialect=_dialect()))
    except Exception:  # a custom type that cannot render for PostgreSQL: its own name
        return str(model_column.type)


def missing(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """K12: tables and columns the models map exist in the database."""
    for model, table, qualified in _pairs(schema):
        if table is None:
            yield Violation(
                qualified,
                f"table {qualified} is in the models but not in the database",
                fix=f"-- create it in a migration (op.create_table('{model.name}', ...)), or remove the model",
                evidence=f"every query of the model fails with 'relation \"{model.name}\" does not exist'",
            )
            continue
        for column in model.columns:
            if schema.column(table, column.name) is not None:
                continue
            kind = _model_type(column)
            yield Violation(
                qualified,
                f"column {qualified}.{column.name} is in the models but not in the database",
                fix=alter(table, f"ADD COLUMN {ddl.ident(column.name)} {kind}"),
                evidence=f"every query that loads the model selects {column.name} and fails",
                names=(column.name,),
            )


def _writable_without_value(column: Column) -> bool:
    return column.default is None and not column.identity and not column.generated


def unmapped(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """K12 (reverse): tables and columns of the database the models do not map."""
    models = schema.models
    if models is None:
        return
    pairs = list(_pairs(schema))
    model_schemas = {q.split(".", 1)[0] for _, _, q in pairs}
    mapped = {q for _, _, q in pairs}
    for table in schema.tables():
        if table.schema not in model_schemas or table.qualified in mapped:
            continue
        yield Violation(
            table.qualified,
            f"table {table.qualified} is in the database but not in the models",
            fix=f"-- map it in the models, or drop it in a migration: DROP TABLE {table_ref(table)};",
        )
    for model, mapped_table, qualified in pairs:
        if mapped_table is None:
            continue
        table = mapped_table
        names = {c.name for c in model.columns}
        for column in table.columns:
            if column.name in names:
                continue
            blocking = column.not_null and _writable_without_value(column)
            yield Violation(
                qualified,
                f"column {qualified}.{column.name} is in the database but not in the models"
                + (" (NOT NULL without a default: every insert through the models fails)" if blocking else ""),
                fix=f"-- map {column.name} in the model, or: "
                + alter(table, f"DROP COLUMN {ddl.ident(column.name)}"),
                names=(column.name,),
                status=Status.FAILED if blocking else None,
            )


def nullability(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """K10: a column is NOT NULL in the database exactly when the models say so."""
    for model, table, qualified in _stored(schema):
        for model_column in model.columns:
            column = schema.column(table, model_column.name)
            if column is None or model_column.primary_key:
                continue
            col = ddl.ident(column.name)
            if not model_column.nullable and not column.not_null:
                yield Violation(
                    qualified,
                    f"{qualified}.{column.name} is NOT NULL in the models but nullable in the database",
                    fix=alter(table, f"ALTER COLUMN {col} SET NOT NULL")
                    + f" -- after UPDATE ... SET {col} = ... WHERE {col} IS NULL",
                    evidence="rows written by anything but the ORM (SQL, imports, other services) may hold NULL, "
                    "and the ORM then reads None where the type says it cannot",
                    names=(column.name,),
                )
            elif model_column.nullable and column.not_null:
                soft = not _writable_without_value(column)
                yield Violation(
                    qualified,
                    f"{qualified}.{column.name} is nullable in the models but NOT NULL in the database",
                    fix=f"-- declare {model.name}.{column.name} with nullable=False, or: "
                    + alter(table, f"ALTER COLUMN {col} DROP NOT NULL"),
                    evidence="the models let code set it to None, and the database then rejects the row"
                    + (f" (the database default {column.default} covers only inserts that omit it)"
                       if column.default else ""),
                    names=(column.name,),
                    status=Status.WARNING if soft else None,
                )


def _model_uniques(model: Any) -> Iterator[tuple[tuple[str, ...], bool, str]]:
    """(columns, partial, name) of every uniqueness the model declares."""
    from sqlalchemy import PrimaryKeyConstraint, UniqueConstraint

    for constraint in model.constraints:
        if isinstance(constraint, (UniqueConstraint, PrimaryKeyConstraint)) and len(constraint.columns):
            yield tuple(c.name for c in constraint.columns), False, str(constraint.name or "")
    for index in model.indexes:
        if not index.unique or len(index.expressions) != len(index.columns):
            continue  # expression keys: compared nowhere (their text has no single spelling)
        where = (index.dialect_options.get("postgresql") or {}).get("where")
        yield tuple(c.name for c in index.columns), where is not None, str(index.name or "")
    for column in model.columns:
        if column.unique and not any(
            isinstance(c, UniqueConstraint) and [x.name for x in c.columns] == [column.name] for c in model.constraints
        ):
            yield (column.name,), False, ""


def uniqueness(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """K09: every uniqueness the models declare is enforced by a unique index."""
    for model, table, qualified in _stored(schema):
        for columns, partial, name in _model_uniques(model):
            if any(schema.column(table, c) is None for c in columns):
                continue  # reported as a missing column
            wanted = set(columns)
            enforcing = [
                i for i in table.unique_indexes
                if i.valid and None not in i.columns and set(i.columns) <= wanted
            ]
            if any(i.predicate is None or partial for i in enforcing):
                continue
            label = f" ({name})" if name else ""
            weaker = next((i for i in enforcing), None)
            yield Violation(
                qualified,
                f"the models declare {qualified}({', '.join(columns)}) unique{label}; the database "
                + (f"enforces it only WHERE {weaker.predicate} ({weaker.name})" if weaker else "does not"),
                fix=create_index(table, columns, unique=True, name=name or None),
                evidence="the ORM's own check cannot see concurrent transactions or other writers: "
                "only a unique index stops duplicates",
                names=(*columns, *((name,) if name else ())),
            )


_TYPE = re.compile(r"^(?P<base>[a-z ]+?)(?:\((?P<args>[^)]*)\))?(?P<tail>(?: with(?:out)? time zone)?)(?P<array>(?:\[\])*)$")
_FAMILIES = {
    "character varying": "string", "varchar": "string", "text": "string", "character": "char", "char": "char",
    "bpchar": "char", "smallint": "int2", "integer": "int4", "bigint": "int8", "numeric": "numeric",
    "decimal": "numeric", "double precision": "float8", "real": "float4", "float": "float8", "boolean": "bool",
    "uuid": "uuid", "json": "json", "jsonb": "jsonb", "bytea": "bytea", "date": "date", "interval": "interval",
    "timestamp": "timestamp", "time": "time", "citext": "citext", "inet": "inet",
    # pg_type names, for domains (their base type is read by name)
    "int2": "int2", "int4": "int4", "int8": "int8", "float4": "float4", "float8": "float8", "bool": "bool",
    "timestamptz": "timestamptz", "timetz": "timetz",
}


@lru_cache(maxsize=4096)
def _facts(text: str) -> tuple[str, tuple[str, ...], bool] | None:
    """(family, arguments, array) of a type as SQLAlchemy or format_type prints it."""
    match = _TYPE.match(text.strip().lower().replace('"', ""))
    if not match:
        return None
    base = match.group("base").strip()
    family = _FAMILIES.get(base)
    if family is None:
        return None
    if family in ("timestamp", "time"):
        family += "tz" if match.group("tail").strip() == "with time zone" else ""
    args = tuple(a.strip() for a in (match.group("args") or "").split(",") if a.strip())
    if family == "float8" and args and args[0].isdigit() and int(args[0]) <= 24:
        family = "float4"
    if family in ("float8", "float4", "timestamp", "timestamptz", "time", "timetz", "interval"):
        args = ()  # precision of floats and timestamps: not a correctness matter
    return family, args, bool(match.group("array"))


def _type_problem(model_column: Any, column: Column) -> str | None:
    from sqlalchemy import Enum

    kind = model_column.type
    if isinstance(kind, Enum):
        if not kind.native_enum:
            return None  # a VARCHAR plus CHECK: the CHECK is proven by data elsewhere
        labels = tuple(kind.enums)
        if column.enum_labels is None:
            return f"the models use the enum {kind.name} ({', '.join(labels)}); the database column is {column.type}"
        if set(labels) - set(column.enum_labels):
            lacking = ", ".join(sorted(set(labels) - set(column.enum_labels)))
            return f"the models' enum has values the database type {column.type} lacks: {lacking}"
        return None
    model = _facts(_model_type(model_column))
    actual = _facts(column.type if not column.domain else column.type_name)
    if model is None or actual is None:
        return None
    if model[0] != actual[0] or model[2] != actual[2]:
        return f"the models say {_model_type(model_column)}, the database has {column.type}"
    if model[0] in ("string", "char") and model[1] != actual[1]:
        model_len = model[1][0] if model[1] else "no limit"
        db_len = actual[1][0] if actual[1] else "no limit"
        return f"length: the models say {model_len}, the database {db_len} ({column.type})"
    if model[0] == "numeric" and model[1] and actual[1] and model[1] != actual[1]:
        return f"precision: the models say numeric({', '.join(model[1])}), the database {column.type}"
    return None


def types(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """K11: lengths, enum labels and type families agree between models and database."""
    for model, table, qualified in _stored(schema):
        for model_column in model.columns:
            column = schema.column(table, model_column.name)
            if column is None:
                continue
            problem = _type_problem(model_column, column)
            if problem is None:
                continue
            yield Violation(
                qualified,
                f"{qualified}.{column.name} differs from the models in {problem}",
                fix=alter(table, f"ALTER COLUMN {ddl.ident(column.name)} TYPE {_model_type(model_column)}")
                + " -- or change the model to match the database",
                evidence="the ORM validates and converts by the model's type; the database stores by its own",
                names=(column.name,),
            )
