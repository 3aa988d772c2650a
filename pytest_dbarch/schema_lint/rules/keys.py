"""Keys: primary keys, foreign keys and the indexes and types they need (K01-K07, K13, K14)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pytest_dbarch.findings import Status
from pytest_dbarch.schema_lint import ddl
from pytest_dbarch.schema_lint.facts import (
    INT_BITS,
    alter,
    conjuncts,
    covering_index,
    create_index,
    fk_columns,
    pk_columns,
    table_column,
    table_ref,
)
from pytest_dbarch.schema_lint.options import LintOptions
from pytest_dbarch.schema_lint.rule import Schema, Violation

if TYPE_CHECKING:
    from pytest_dbarch.postgres.catalog import Catalog, Column, Constraint, Table


def primary_key(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """K01: every table has a primary key."""
    for table in schema.tables():
        if table.primary_key is not None:
            continue
        promotable = next(
            (i for i in table.indexes
             if i.unique and i.valid and i.predicate is None and None not in i.columns
             and all(table.column(c).not_null for c in i.columns if c)),
            None,
        )
        if promotable is not None and table.kind == "table":
            fix = alter(table, f"ADD CONSTRAINT {ddl.ident(table.name + '_pkey')} PRIMARY KEY USING INDEX "
                               f"{ddl.ident(promotable.name)}")
            hint = f"; the unique index {promotable.name} on NOT NULL columns can become it"
        elif table.has_column("id"):
            fix = alter(table, "ADD PRIMARY KEY (id)")
            hint = ""
        else:
            fix = alter(table, "ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
            hint = ""
        yield Violation(
            table.qualified,
            f"{table.qualified} has no primary key{hint}",
            fix=fix,
            evidence=f"{table.kind} {table.qualified}: columns {', '.join(c.name for c in table.columns)}",
        )


def fk_index(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """K02: the columns of every foreign key lead some index (see facts.py for 'cover')."""
    for table in schema.tables():
        for fk in table.foreign_keys:
            if covering_index(table, fk.columns) is not None:
                continue
            cols = ", ".join(fk.columns)
            yield Violation(
                table.qualified,
                f"{table.qualified}({cols}) has no index for foreign key {fk.name} to {fk.ref}",
                fix=create_index(table, fk.columns),
                evidence=(
                    f"{fk.name}: {fk.definition}\n"
                    "each DELETE or key UPDATE of a referenced row scans the whole table to find "
                    "referencing rows, and joins on the key cannot use an index\n"
                    f"indexes on {table.qualified}: "
                    + ("; ".join(i.definition for i in table.indexes) or "none")
                ),
                names=(*fk.columns, fk.name),
            )


def _widths(a: Column, b: Column) -> tuple[int, int] | None:
    if a.type_name in INT_BITS and b.type_name in INT_BITS:
        return INT_BITS[a.type_name], INT_BITS[b.type_name]
    return None


def fk_type(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """K03: a foreign-key column has the type of the column it references."""
    catalog = schema.catalog
    for table in schema.tables():
        for fk in table.foreign_keys:
            parent = catalog.tables.get(fk.ref or "")
            if parent is None:
                continue
            for name, ref_name in zip(fk.columns, fk.ref_columns):
                col, ref = table_column(schema, table, name), table_column(schema, parent, ref_name)
                if (col.type_name, col.length, col.precision, col.scale) == (
                    ref.type_name, ref.length, ref.precision, ref.scale
                ):
                    continue
                widths = _widths(col, ref)
                narrower = widths is not None and widths[0] < widths[1]
                consequence = (
                    f"once {parent.qualified}.{ref_name} passes the {col.type} maximum, new rows "
                    "cannot reference those keys"
                    if narrower
                    else "every join and lookup compares across types, and the two columns can drift apart"
                )
                yield Violation(
                    table.qualified,
                    f"{table.qualified}.{name} is {col.type} but references {parent.qualified}.{ref_name} ({ref.type})",
                    fix=alter(table, f"ALTER COLUMN {ddl.ident(name)} TYPE {ref.type}"),
                    evidence=f"{fk.name}: {fk.definition}\n{consequence}",
                    names=(name, fk.name),
                    status=Status.FAILED if narrower else Status.WARNING,
                )


def _singular_candidates(stem: str) -> list[str]:
    names = [stem, stem + "s", stem + "es"]
    if stem.endswith("y"):
        names.append(stem[:-1] + "ies")
    if stem.endswith("s"):
        names.append(stem)  # "status_id" -> "status"
    return names


def _key_family(column: Column) -> str | None:
    if column.type_name in INT_BITS:
        return "int"
    if column.type_name == "uuid":
        return "uuid"
    if column.category == "S":
        return "text"
    return None


def _referenced_table(catalog: Catalog, table: Table, stem: str) -> Table | None:
    for name in _singular_candidates(stem):
        for qualified in (f"{table.schema}.{name}", *(f"{s}.{name}" for s in catalog.search_path)):
            found = catalog.tables.get(qualified)
            if found is not None and found.kind in ("table", "partitioned table"):
                return found
    return None


# History and audit tables keep rows after their subject is deleted: no foreign key on purpose.
_HISTORY = re.compile(r".*(_versions?|_histor(y|ies)|_audits?|_logs?|_archives?|_snapshots?)$|^(audit_log|versions)$")


def missing_fk(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """K04: a ``<thing>_id`` column next to a ``<things>`` table is declared as a foreign key
    (not in history or audit tables, and never pointing a table at itself: ``reactions.reaction_id``
    names a kind of reaction, a self-reference is called ``parent_id``)."""
    catalog = schema.catalog
    for table in schema.tables():
        if _HISTORY.match(table.name):
            continue
        referenced = fk_columns(table)
        names = {c.name for c in table.columns}
        for column in table.columns:
            match = re.fullmatch(r"(.+)_id", column.name)
            if not match or column.name in referenced or _key_family(column) is None:
                continue
            stem = match.group(1)
            if f"{stem}_type" in names or f"{stem}_table" in names:
                continue  # polymorphic reference: no single parent to point at
            parent = _referenced_table(catalog, table, stem)
            if parent is None or parent.primary_key is None or len(parent.primary_key.columns) != 1:
                continue
            if parent.qualified == table.qualified:
                continue
            key = parent.column(parent.primary_key.columns[0])
            if _key_family(key) != _key_family(column):
                continue
            constraint = ddl.index_name(table.name, [column.name], "fk", parent.name)
            yield Violation(
                table.qualified,
                f"{table.qualified}.{column.name} looks like a reference to {parent.qualified} but has no foreign key",
                fix=alter(table, f"ADD CONSTRAINT {ddl.ident(constraint)} FOREIGN KEY ({ddl.ident(column.name)}) "
                                 f"REFERENCES {table_ref(parent)} ({ddl.ident(key.name)}) NOT VALID")
                + f" -- then: ALTER TABLE {table_ref(table)} VALIDATE CONSTRAINT {ddl.ident(constraint)};",
                evidence=f"{column.name} {column.type}; {parent.qualified} has primary key {key.name} {key.type}; "
                         "without the constraint nothing stops rows pointing at deleted or never-existing parents",
                names=(column.name,),
            )


def duplicate_fk(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """K05: no two foreign keys enforce the same reference."""
    for table in schema.tables():
        seen: dict[tuple[str | None, frozenset[tuple[str, str]]], Constraint] = {}
        for fk in sorted(table.foreign_keys, key=lambda c: c.name):
            key = (fk.ref, frozenset(zip(fk.columns, fk.ref_columns)))
            first = seen.setdefault(key, fk)
            if first is fk:
                continue
            yield Violation(
                table.qualified,
                f"foreign key {fk.name} on {table.qualified} repeats {first.name}",
                fix=alter(table, f"DROP CONSTRAINT {ddl.ident(fk.name)}"),
                evidence=f"{first.name}: {first.definition}\n{fk.name}: {fk.definition}\n"
                         "every insert and update checks the same reference twice",
                names=(fk.name,),
            )


def _guarded(table: Table, columns: set[str]) -> bool:
    """A CHECK that ties the NULLs of these columns together (num_nulls, IS NULL)."""
    for check in table.checks:
        text = check.expression or ""
        if not columns <= set(check.columns):
            continue
        if re.search(r"num_(nulls|nonnulls)|IS (NOT )?NULL", text):
            return True
    return False


def composite_fk_nullable(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """K06: a multi-column foreign key under MATCH SIMPLE with a nullable column."""
    for table in schema.tables():
        for fk in table.foreign_keys:
            if len(fk.columns) < 2 or fk.match == "FULL":
                continue
            nullable = [c for c in fk.columns if not table_column(schema, table, c).not_null]
            if not nullable or _guarded(table, set(fk.columns)):
                continue
            cols = ", ".join(fk.columns)
            yield Violation(
                table.qualified,
                f"foreign key {fk.name} ({cols}) on {table.qualified} is not checked when {' or '.join(nullable)} is NULL",
                fix=alter(table, f"ADD CONSTRAINT {ddl.ident(ddl.index_name(table.name, fk.columns, 'ck', 'nulls'))} "
                                 f"CHECK (num_nulls({ddl.columns(fk.columns)}) IN (0, {len(fk.columns)}))")
                + " -- or re-create the foreign key with MATCH FULL, or make the columns NOT NULL",
                evidence=f"{fk.definition}\nunder MATCH SIMPLE a row with any key column NULL passes "
                         "unchecked, so half-filled keys point nowhere",
                names=(fk.name, *nullable),
            )


def not_valid(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """K07: no constraint is left NOT VALID."""
    for table in schema.tables():
        for constraint in table.constraints:
            if constraint.validated:
                continue
            yield Violation(
                table.qualified,
                f"{constraint.kind} {constraint.name} on {table.qualified} is NOT VALID (existing rows never checked)",
                fix=alter(table, f"VALIDATE CONSTRAINT {ddl.ident(constraint.name)}"),
                evidence=f"{constraint.name}: {constraint.definition}\nrows written before it was added may "
                         "break it; VALIDATE takes only a SHARE UPDATE EXCLUSIVE lock",
                names=(constraint.name, *constraint.columns),
            )


def all_nullable(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """K13: a table whose every non-key column accepts NULL."""
    for table in schema.tables():
        keys = set(pk_columns(table))
        rest = [c for c in table.columns if c.name not in keys and not c.generated]
        if len(rest) < 2 or any(c.not_null for c in rest):
            continue
        yield Violation(
            table.qualified,
            f"all {len(rest)} non-key columns of {table.qualified} accept NULL",
            fix=alter(table, f"ALTER COLUMN {ddl.ident(rest[0].name)} SET NOT NULL")
            + " -- for each column the application always fills",
            evidence="columns: " + ", ".join(f"{c.name} {c.type}" for c in rest),
            names=tuple(c.name for c in rest),
        )


def nullable_index_column(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """K14: a non-unique index led by a nullable column, without a NOT NULL predicate."""
    for table in schema.indexed():
        for index in table.indexes:
            lead = index.columns[0] if index.columns else None
            if index.unique or index.method != "btree" or lead is None or None in index.columns:
                continue
            column = table_column(schema, table, lead)
            if column.not_null:
                continue
            if index.predicate and any(lead in term for term in conjuncts(index.predicate)):
                continue
            yield Violation(
                table.qualified,
                f"index {index.name} on {table.qualified} is led by nullable {lead} and also stores its NULLs",
                fix=create_index(table, [c for c in index.columns if c], name=index.name + "_nn",
                                 where=f"{ddl.ident(lead)} IS NOT NULL")
                + f" -- then drop {index.name}, if queries never look for NULL",
                evidence=index.definition,
                names=(index.name, lead),
            )
