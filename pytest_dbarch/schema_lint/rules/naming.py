"""Names: truncated identifiers, the project's naming patterns, comments (N01-N03)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pytest_dbarch.schema_lint import ddl
from pytest_dbarch.schema_lint.options import LintOptions
from pytest_dbarch.schema_lint.rule import Schema, Violation

_CONSTRAINT_KINDS = {
    "primary key": "primary_key", "unique": "unique", "foreign key": "foreign_key", "check": "check",
    "exclusion": "exclusion",
}


def _named(schema: Schema) -> Iterator[tuple[str, str, str, str]]:
    """(kind, name, table, what) for every named object of the schema."""
    for table in schema.tables("table", "partitioned table", "materialized view", "view"):
        kind = "view" if table.kind in ("view", "materialized view") else "table"
        yield kind, table.name, table.qualified, f"{table.kind} {table.qualified}"
        for column in table.columns:
            yield "column", column.name, table.qualified, f"column {table.qualified}.{column.name}"
        constraint_indexes = {c.index for c in table.constraints if c.index}
        for constraint in table.constraints:
            constraint_kind = _CONSTRAINT_KINDS.get(constraint.kind)
            if constraint_kind:
                yield constraint_kind, constraint.name, table.qualified, f"{constraint.kind} {constraint.name} on {table.qualified}"
        for index in table.indexes:
            if index.name not in constraint_indexes:
                yield "index", index.name, table.qualified, f"index {index.name} on {table.qualified}"
    for seq in schema.catalog.sequences:
        yield "sequence", seq.name, "", f"sequence {seq.schema}.{seq.name}"
    for function in schema.catalog.functions:
        yield "function", function.name, "", f"{function.kind} {function.schema}.{function.name}"


def identifier_length(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """N01: names at PostgreSQL's 63-byte limit were (probably) cut short."""
    for kind, name, table, what in _named(schema):
        if len(name.encode()) < ddl.MAX_IDENTIFIER:
            continue
        yield Violation(
            table,
            f"{what}: the name is {len(name.encode())} bytes, PostgreSQL's limit; it was probably truncated",
            fix="-- rename it to fewer than 63 bytes (ALTER ... RENAME ...), and shorten the name in the code "
            "that creates it",
            evidence=f"{name!r}: a longer name given in DDL is silently cut, so the code and the catalog "
            "disagree, and two names sharing the first 63 bytes collide",
            names=(name,),
        )


def naming(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """N02: names follow the project's patterns (dbarch_schema_lint_naming)."""
    if not options.naming:
        return
    for kind, name, table, what in _named(schema):
        pattern = options.naming_pattern(kind)
        if pattern is None or pattern.fullmatch(name):
            continue
        yield Violation(
            table,
            f"{what} does not match the {kind} naming pattern {pattern.pattern}",
            fix=f"-- rename {name} to match {pattern.pattern}",
            names=(name,),
        )


def missing_comment(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """N03: tables (and their columns) carry a COMMENT."""
    for table in schema.tables():
        if not table.comment:
            yield Violation(
                table.qualified,
                f"{table.qualified} has no comment",
                fix=f"COMMENT ON TABLE {ddl.relation(table.schema, table.name)} IS '<what one row is>';",
            )
        bare = [c.name for c in table.columns if not c.comment]
        if bare and table.comment:
            yield Violation(
                table.qualified,
                f"{table.qualified}: {len(bare)} column{'s have' if len(bare) > 1 else ' has'} no comment",
                fix=f"COMMENT ON COLUMN {ddl.relation(table.schema, table.name)}.{ddl.ident(bare[0])} IS '<meaning, unit>';",
                evidence=", ".join(bare),
                names=tuple(bare),
            )
