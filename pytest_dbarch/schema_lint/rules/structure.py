"""Table structure: required columns, width, inheritance, isolation, column order,
repeating groups (S01-S06)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from pytest_dbarch.schema_lint import ddl
from pytest_dbarch.schema_lint.facts import alter, pk_columns
from pytest_dbarch.schema_lint.options import LintOptions
from pytest_dbarch.schema_lint.rule import Schema, Violation

_DEFAULT_TYPE = {"timestamptz": "timestamptz NOT NULL DEFAULT now()", "timestamp": "timestamp NOT NULL DEFAULT now()"}


def required_columns(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """S01: every table has the project's mandatory columns (dbarch_schema_lint_required_columns)."""
    for table in schema.tables():
        for name, kind in options.required_columns:
            if table.has_column(name):
                column = table.column(name)
                if kind is None or kind in (column.type_name, column.type.lower()):
                    continue
                yield Violation(
                    table.qualified,
                    f"{table.qualified}.{name} is {column.type}; the project requires {kind}",
                    fix=alter(table, f"ALTER COLUMN {ddl.ident(name)} TYPE {kind}"),
                    names=(name,),
                )
                continue
            definition = _DEFAULT_TYPE.get(kind or "timestamptz", f"{kind} NOT NULL")
            yield Violation(
                table.qualified,
                f"{table.qualified} has no {name} column",
                fix=alter(table, f"ADD COLUMN {ddl.ident(name)} {definition}"),
                evidence=f"required by the project: {', '.join(n for n, _ in options.required_columns)}",
                names=(name,),
            )


def narrow_table(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """S02: a table with no or one column."""
    for table in schema.tables():
        if len(table.columns) <= 1:
            yield Violation(
                table.qualified,
                f"{table.qualified} has {len(table.columns)} column{'s' if len(table.columns) != 1 else ''}",
                fix=f"-- fold {table.qualified} into the table that uses it, or DROP TABLE {ddl.relation(table.schema, table.name)};",
                evidence=", ".join(c.name for c in table.columns) or "no columns",
            )


def table_inheritance(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """S03: classic table inheritance (not declarative partitioning)."""
    for table in schema.tables():
        parents = [p for p in table.parents
                   if schema.catalog.tables.get(p) is not None and schema.catalog.tables[p].kind == "table"]
        if not parents:
            continue
        yield Violation(
            table.qualified,
            f"{table.qualified} inherits from {', '.join(parents)}",
            fix=f"ALTER TABLE {ddl.relation(table.schema, table.name)} NO INHERIT {parents[0]}; "
            "-- and model the shared columns explicitly, or use declarative partitioning",
            evidence="inherited tables do not inherit primary keys, unique constraints or foreign keys, "
            "so rows in the children escape the parent's rules",
        )


def isolated_table(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """S04: a table no foreign key points to or from."""
    linked: set[str] = set()
    for table in schema.tables():
        for fk in table.foreign_keys:
            linked.add(table.qualified)
            linked.add(fk.ref or "")
    for table in schema.tables():
        if table.qualified in linked:
            continue
        yield Violation(
            table.qualified,
            f"{table.qualified} has no foreign key to or from another table",
            fix=f"-- add the foreign keys that relate {table.qualified} to the rest of the schema, if any",
        )


def primary_key_first(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """S05: the primary-key columns come first."""
    for table in schema.tables():
        keys = pk_columns(table)
        if not keys:
            continue
        leading = [c.name for c in table.columns[: len(keys)]]
        if set(leading) == set(keys):
            continue
        yield Violation(
            table.qualified,
            f"the primary key ({', '.join(keys)}) of {table.qualified} is not the first column"
            f"{'s' if len(keys) > 1 else ''}",
            fix=f"-- in the next rewrite of {table.qualified}, declare {', '.join(keys)} first",
            evidence="columns in order: " + ", ".join(c.name for c in table.columns),
            names=keys,
        )


_NUMBERED = re.compile(r"(.*?[a-z_])(\d+)")


def numbered_columns(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """S06: repeating numbered columns (phone1, phone2): a child table in disguise."""
    for table in schema.tables():
        groups: dict[str, list[str]] = defaultdict(list)
        for column in table.columns:
            match = _NUMBERED.fullmatch(column.name)
            if match:
                groups[match.group(1)].append(column.name)
        for stem, names in groups.items():
            if len(names) < 2:
                continue
            yield Violation(
                table.qualified,
                f"{table.qualified} has repeating columns {', '.join(names)}",
                fix=f"CREATE TABLE {ddl.ident(table.name + '_' + stem.strip('_') + 's')} (...); "
                "-- one row per value, with a foreign key to the owner",
                evidence="a fixed number of slots: a query must name each, and a third value needs a migration",
                names=tuple(names),
            )
