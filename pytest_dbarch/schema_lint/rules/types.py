"""Column types: key widths, sequences near their end, and the types PostgreSQL's own
documentation advises against (T01-T12)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pytest_dbarch.findings import Status
from pytest_dbarch.schema_lint import ddl
from pytest_dbarch.schema_lint.facts import INT_MAX, alter, fk_columns, pk_columns
from pytest_dbarch.schema_lint.options import LintOptions
from pytest_dbarch.schema_lint.rule import Check, Schema, Violation

if TYPE_CHECKING:
    from pytest_dbarch.postgres.catalog import Column, Table

_NEXTVAL = re.compile(r"nextval\('([^']+)'::regclass\)")


def _column_violation(table: Table, column: Column, title: str, fix: str, evidence: str = "") -> Violation:
    return Violation(table.qualified, f"{table.qualified}.{column.name} {title}", fix=fix,
                     evidence=evidence or f"{column.name} {column.type}", names=(column.name,))


def _allowed(column: Column, allowed: tuple[str, ...]) -> bool:
    return column.type_name in allowed or column.type.lower() in allowed or (column.domain or "") in allowed


def primary_key_type(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """T01: primary keys of a type that will not run out (policy: dbarch_schema_lint_pk_types)."""
    for table in schema.tables():
        references = fk_columns(table)
        keys = pk_columns(table)
        for name in keys:
            if name in references:
                continue  # its type follows the referenced table's key, checked there
            column = table.column(name)
            numbered = column.identity or "nextval(" in (column.default or "")
            if len(keys) > 1 and not numbered:
                continue  # a position or code inside a composite key, not a counter that runs out
            if options.pk_types:
                if _allowed(column, options.pk_types):
                    continue
                title = f"is the primary key, of type {column.type}; the project allows {', '.join(options.pk_types)}"
                target = "int8" if "int8" in options.pk_types else options.pk_types[0]
            elif column.type_name in ("int2", "int4"):
                title = f"is the primary key, of type {column.type}: it runs out at {INT_MAX[column.type_name]:,}"
                target = "int8"
            else:
                continue
            if target != "int8" or column.category != "N":
                fix = (f"-- move {table.qualified} to a {target} key: add the column, fill it, repoint the "
                       "referencing foreign keys, then swap the primary key")
                yield _column_violation(table, column, title, fix)
                continue
            fix = alter(table, f"ALTER COLUMN {ddl.ident(name)} TYPE bigint")
            match = _NEXTVAL.search(column.default or "")
            if match:
                fix += f" ALTER SEQUENCE {match.group(1)} AS bigint;"
            yield _column_violation(
                table, column, title, fix + " -- rewrites the table: on a large one add a bigint column, "
                "backfill, and swap",
            )


def _owner_columns(schema: Schema) -> dict[str, tuple[Table, Column]]:
    """sequence (schema.name) -> the column it numbers: OWNED BY, identity, or a nextval default."""
    owners: dict[str, tuple[Table, Column]] = {}
    for table in schema.catalog:
        for column in table.columns:
            match = _NEXTVAL.search(column.default or "")
            if match:
                name = match.group(1).replace('"', "")
                owners.setdefault(name if "." in name else f"{table.schema}.{name}", (table, column))
    for seq in schema.catalog.sequences:
        if seq.owned_by:
            table_name, _, column_name = seq.owned_by.rpartition(".")
            owner = schema.catalog.tables.get(table_name)
            if owner is not None and owner.has_column(column_name):
                owners[f"{seq.schema}.{seq.name}"] = (owner, owner.column(column_name))
    return owners


def sequence_exhaustion(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """T02: a sequence (serial, identity) that has used most of its range or its column's."""
    owners = _owner_columns(schema)
    for seq in schema.catalog.sequences:
        if seq.last_value is None or seq.cycle or seq.increment <= 0:
            continue
        owner = owners.get(f"{seq.schema}.{seq.name}")
        limit, limited_by = seq.max_value, f"sequence maximum {seq.max_value:,}"
        if owner is not None and owner[1].type_name in INT_MAX and INT_MAX[owner[1].type_name] < limit:
            limit = INT_MAX[owner[1].type_name]
            limited_by = f"{owner[1].type} maximum {limit:,} of {owner[0].qualified}.{owner[1].name}"
        used = (seq.last_value - seq.min_value) / max(1, limit - seq.min_value)
        if used < 0.75:
            continue
        table, column = owner if owner else (None, None)
        fix = f"ALTER SEQUENCE {ddl.relation(seq.schema, seq.name)} AS bigint MAXVALUE 9223372036854775807;"
        if table is not None and column is not None and column.type_name != "int8":
            fix = alter(table, f"ALTER COLUMN {ddl.ident(column.name)} TYPE bigint") + " " + fix
        yield Violation(
            table.qualified if table else "",
            f"sequence {seq.schema}.{seq.name} has used {used:.0%} of its range ({seq.last_value:,} of {limit:,})",
            fix=fix,
            evidence=f"last value {seq.last_value:,}; limited by the {limited_by}; inserts fail when it runs out",
            names=(seq.name, *((column.name,) if column else ())),
            status=Status.FAILED if used >= 0.9 else Status.WARNING,
        )


def serial_column(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """T03: serial (a nextval default) where an identity column says the same in standard SQL."""
    for table in schema.tables():
        for column in table.columns:
            match = _NEXTVAL.search(column.default or "")
            if not match or column.identity:
                continue
            col = ddl.ident(column.name)
            yield _column_violation(
                table, column, f"is a serial column ({column.default})",
                alter(table, f"ALTER COLUMN {col} DROP DEFAULT") + f" DROP SEQUENCE {match.group(1)}; "
                + alter(table, f"ALTER COLUMN {col} ADD GENERATED BY DEFAULT AS IDENTITY")
                + f" -- then SELECT setval(pg_get_serial_sequence('{table.qualified}', '{column.name}'), "
                f"max({col})) FROM {ddl.relation(table.schema, table.name)};",
            )


def _base_or_element(column: Column) -> str:
    return column.element_type or column.type_name


def timestamp_without_tz(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """T04: timestamp and timetz columns (timestamptz stores an instant; timestamp does not)."""
    for table in schema.tables():
        for column in table.columns:
            kind = _base_or_element(column)
            if kind == "timestamp":
                target = "timestamptz[]" if column.is_array else "timestamptz"
                using = "" if column.is_array else f" USING {ddl.ident(column.name)} AT TIME ZONE 'UTC'"
                yield _column_violation(
                    table, column, "is timestamp without time zone",
                    alter(table, f"ALTER COLUMN {ddl.ident(column.name)} TYPE {target}{using}")
                    + " -- assuming the stored values are UTC",
                    f"{column.name} {column.type}: the same value means different instants for clients in "
                    "different time zones, and comparisons with now() shift by the session's zone",
                )
            elif kind == "timetz":
                yield _column_violation(
                    table, column, "is time with time zone",
                    alter(table, f"ALTER COLUMN {ddl.ident(column.name)} TYPE timestamptz USING "
                                 f"(current_date + {ddl.ident(column.name)})"),
                    f"{column.name} {column.type}: PostgreSQL's manual advises against timetz (a time of day "
                    "with an offset cannot follow daylight-saving rules)",
                )


def _simple_type(check_type: str, title: str, target: str, why: str) -> Check:
    def check(schema: Schema, options: LintOptions) -> Iterable[Violation]:
        for table in schema.tables():
            for column in table.columns:
                if _base_or_element(column) != check_type:
                    continue
                new = f"{target}[]" if column.is_array else target
                using = f" USING {ddl.ident(column.name)}::{new}" if check_type in ("json", "money") else ""
                yield _column_violation(
                    table, column, title,
                    alter(table, f"ALTER COLUMN {ddl.ident(column.name)} TYPE {new}{using}"),
                    f"{column.name} {column.type}: {why}",
                )

    return check


json_type = _simple_type(
    "json", "is json, not jsonb", "jsonb",
    "json is re-parsed on every access and cannot be indexed with GIN; jsonb can",
)
char_type = _simple_type(
    "bpchar", "is char(n) (blank-padded)", "text",
    "char(n) pads with spaces, compares ignoring them and is no faster than text or varchar",
)
money_type = _simple_type(
    "money", "is money", "numeric(19, 4)",
    "money's precision and formatting follow the server's lc_monetary setting",
)


def string_type(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """T07: strings follow the project's text-vs-varchar policy (dbarch_schema_lint_strings)."""
    if options.strings == "any":
        return
    for table in schema.tables():
        for column in table.columns:
            kind = _base_or_element(column)
            col = ddl.ident(column.name)
            if options.strings == "text" and kind == "varchar":
                check = ""
                if column.length:
                    name = ddl.index_name(table.name, [column.name], "ck", "length")
                    check = " " + alter(table, f"ADD CONSTRAINT {ddl.ident(name)} CHECK "
                                               f"(char_length({col}) <= {column.length})")
                yield _column_violation(
                    table, column, f"is {column.type}; the project uses text (with a CHECK for a limit)",
                    alter(table, f"ALTER COLUMN {col} TYPE text") + check,
                )
            elif options.strings == "varchar" and (kind == "text" or (kind == "varchar" and not column.length)):
                yield _column_violation(
                    table, column, f"is {column.type}; the project gives every string a maximum length",
                    alter(table, f"ALTER COLUMN {col} TYPE varchar(<max length>)"),
                )


def enum_type(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """T09: native enum types (values cannot be removed or renamed inside a transaction)."""
    for table in schema.tables():
        for column in table.columns:
            if column.enum_labels is None:
                continue
            labels = ", ".join(ddl.literal(v) for v in column.enum_labels)
            col = ddl.ident(column.name)
            name = ddl.index_name(table.name, [column.name], "ck", "valid")
            yield _column_violation(
                table, column, f"uses the enum type {column.type}",
                alter(table, f"ALTER COLUMN {col} TYPE text") + " "
                + alter(table, f"ADD CONSTRAINT {ddl.ident(name)} CHECK ({col} IN ({labels}))")
                + " -- or a lookup table with a foreign key",
                f"{column.name} {column.type} ({labels}): ALTER TYPE can only add values; removing one "
                "means a new type and a table rewrite",
            )


def large_object(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """T10: oid / lo columns (large objects live outside the table and leak when rows go)."""
    for table in schema.tables():
        for column in table.columns:
            if column.type_name in ("oid", "lo"):
                yield _column_violation(
                    table, column, f"is {column.type} (a large-object reference)",
                    alter(table, f"ALTER COLUMN {ddl.ident(column.name)} TYPE bytea USING lo_get({ddl.ident(column.name)})"),
                    "large objects are not deleted with the row (vacuumlo or the lo_manage trigger is needed), "
                    "and pg_dump handles them apart",
                )


def text_primary_key(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """T11: a single text/varchar primary key, often a natural key that later changes."""
    for table in schema.tables():
        keys = pk_columns(table)
        if len(keys) != 1 or keys[0] in fk_columns(table):
            continue
        column = table.column(keys[0])
        if column.category == "S":
            yield _column_violation(
                table, column, f"is the primary key, of type {column.type} (probably a natural key)",
                alter(table, "ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY")
                + f" -- make it the primary key, keep {column.name} UNIQUE",
                f"{column.name} {column.type}: natural keys change, and every referencing row "
                "stores and compares the whole string",
            )


def column_type_consistency(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """T12: the same column name with different types in different tables."""
    by_name: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for table in schema.tables():
        for column in table.columns:
            by_name[column.name][column.type].append(table.qualified)
    for name, types in sorted(by_name.items()):
        if len(types) < 2:
            continue
        common = max(types, key=lambda t: len(types[t]))
        listed = "; ".join(f"{t}: {', '.join(sorted(tables))}" for t, tables in sorted(types.items()))
        yield Violation(
            "",
            f"column {name} has {len(types)} types across tables ({', '.join(sorted(types))})",
            fix=f"-- settle on one type, e.g. {common}: ALTER TABLE ... ALTER COLUMN {ddl.ident(name)} TYPE {common};",
            evidence=listed,
            names=(name,),
        )
