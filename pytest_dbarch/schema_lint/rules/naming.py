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


_SUFFIXES = frozenset({"pkey", "key", "fkey", "idx", "index", "seq", "check", "excl", "ix", "ux", "uq", "fk", "pk", "ck"})


def _vocabulary(schema: Schema, table: str) -> frozenset[str]:
    """The words a name on ``table`` is made of: its columns' and its own, and the usual suffixes."""
    found = schema.catalog.tables.get(table)
    names = [c.name for c in found.columns] + [found.name] if found else [t.name for t in schema.catalog]
    return _SUFFIXES | {word for name in names for word in name.lower().split("_") if word}


def _cut_short(name: str, vocabulary: frozenset[str]) -> bool:
    """A 63-byte name whose last word is the start of a longer word it was built from: PostgreSQL
    cut it. A name that ends in a whole word is as long as its author made it (Rails and
    SQLAlchemy keep names at 63 bytes themselves)."""
    last = name.lower().rsplit("_", 1)[-1]
    return bool(last) and last not in vocabulary and any(w.startswith(last) for w in vocabulary)


def identifier_length(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """N01: names PostgreSQL cut at its 63-byte limit."""
    for kind, name, table, what in _named(schema):
        if len(name.encode()) < ddl.MAX_IDENTIFIER or not _cut_short(name, _vocabulary(schema, table)):
            continue
        yield Violation(
            table,
            f"{what} has a name cut at {len(name.encode())} bytes, PostgreSQL's limit",
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
                f"{len(bare)} column{'s' if len(bare) > 1 else ''} of {table.qualified} ha{'ve' if len(bare) > 1 else 's'} no comment",
                fix=f"COMMENT ON COLUMN {ddl.relation(table.schema, table.name)}.{ddl.ident(bare[0])} IS '<meaning, unit>';",
                evidence=", ".join(bare),
                names=tuple(bare),
            )
