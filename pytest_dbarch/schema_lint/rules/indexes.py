"""Indexes: invalid, duplicate and redundant ones, and keys that do not suit the
method (X01-X03, X05-X09). Materialized views are checked like tables.

Indexes are compared by their key attribute numbers, operator classes, collations and
sort options as arrays, never as text (``1 2`` is not a prefix of ``1 23``), and only
within one access method: a GIN or trigram index is never "covered" by a btree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pytest_dbarch.schema_lint import ddl
from pytest_dbarch.schema_lint.facts import (
    alter,
    conjuncts,
    create_index,
    drop_index,
    serves_lookup,
    table_column,
)
from pytest_dbarch.schema_lint.options import LintOptions
from pytest_dbarch.schema_lint.rule import Schema, Violation

if TYPE_CHECKING:
    from pytest_dbarch.postgres.catalog import Index, Table

SOFT_DELETE_COLUMNS = ("deleted_at", "discarded_at", "archived_at", "is_deleted", "deleted")
# A wider index that adds more key columns than this (or INCLUDE columns the narrower
# one lacks) is a covering index: the narrower one is kept on purpose (pghero#354).
MAX_EXTRA_KEYS = 2


def _signature(index: Index) -> tuple[object, ...]:
    return (index.method, index.attnums, index.opclasses, index.collations, index.options,
            index.expressions, index.predicate, frozenset(index.include), index.unique, index.nulls_not_distinct)


def _drop(table: Table, index: Index) -> str:
    if index.constraint:
        return alter(table, f"DROP CONSTRAINT {ddl.ident(index.constraint)}")
    return drop_index(table, index)


def _keep_first(indexes: list[Index]) -> list[Index]:
    """Which of identical indexes to keep first: the primary key, a constraint's, then by name."""
    return sorted(indexes, key=lambda i: (not i.primary, i.constraint is None, i.name))


def invalid_index(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """X01: no index left invalid by a failed CREATE INDEX CONCURRENTLY."""
    for table in schema.indexed():
        for index in table.indexes:
            if index.valid:
                continue
            if table.kind == "partitioned table":
                title = "is invalid (created ON ONLY the parent, some partitions' indexes never attached)"
                fix = (f"ALTER INDEX {ddl.relation(table.schema, index.name)} ATTACH PARTITION <partition's index>; "
                       "-- for each partition")
            else:
                title = "is invalid (a failed or unfinished CREATE INDEX CONCURRENTLY)"
                fix = f"REINDEX INDEX CONCURRENTLY {ddl.relation(table.schema, index.name)}; -- or: " + drop_index(
                    table, index)
            yield Violation(
                table.qualified,
                f"index {index.name} on {table.qualified} {title}",
                fix=fix,
                evidence=f"{index.definition}\nqueries never use it, yet every write still updates it"
                + ("; a unique one may also have failed on duplicate rows: remove them first" if index.unique else ""),
                names=(index.name,),
            )


def duplicate_index(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """X02: no two indexes with the same keys, method, operator classes and predicate."""
    for table in schema.indexed():
        groups: dict[tuple[object, ...], list[Index]] = {}
        for index in table.indexes:
            if index.valid:
                groups.setdefault(_signature(index), []).append(index)
        for same in groups.values():
            keep, *extra = _keep_first(same)
            for index in extra:
                yield Violation(
                    table.qualified,
                    f"index {index.name} on {table.qualified} duplicates {keep.name}",
                    fix=_drop(table, index),
                    evidence=f"{keep.definition}\n{index.definition}\nevery write updates both; reads use only one",
                    names=(index.name,),
                )


def _covers(wide: Index, narrow: Index) -> bool:
    """Whether ``wide`` serves every lookup ``narrow`` serves (btree, see the docstring)."""
    n = len(narrow.attnums)
    if wide is narrow or wide.method != "btree" or narrow.method != "btree" or not wide.valid:
        return False
    if 0 in narrow.attnums or 0 in wide.attnums[:n] or len(wide.attnums) < n:
        return False
    if (wide.attnums[:n], wide.opclasses[:n], wide.collations[:n], wide.options[:n]) != (
        narrow.attnums, narrow.opclasses, narrow.collations, narrow.options
    ):
        return False
    if wide.predicate != narrow.predicate:
        return False
    wide_columns = {c for c in wide.columns if c} | set(wide.include)
    if not set(narrow.include) <= wide_columns:
        return False
    if len(wide.attnums) == n:
        return wide.unique and not narrow.unique  # equal keys: the unique one covers the plain one
    extra_include = set(wide.include) - set(narrow.include)
    return len(wide.attnums) - n <= MAX_EXTRA_KEYS and not extra_include


def _duplicates(table: Table) -> set[str]:
    """Names of the indexes duplicate-index asks to drop (reported there, not here)."""
    groups: dict[tuple[object, ...], list[Index]] = {}
    for index in table.indexes:
        if index.valid:
            groups.setdefault(_signature(index), []).append(index)
    return {i.name for same in groups.values() for i in _keep_first(same)[1:]}


def redundant_index(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """X03: a plain btree index whose keys lead another btree index of the same kind."""
    for table in schema.indexed():
        duplicates = _duplicates(table)
        for narrow in table.indexes:
            if narrow.unique or not narrow.valid or narrow.name in duplicates:
                continue  # a unique index enforces something a wider one does not
            wide = next((w for w in table.indexes if _covers(w, narrow)), None)
            if wide is None:
                continue
            yield Violation(
                table.qualified,
                f"index {narrow.name} on {table.qualified} is redundant: {wide.name} starts with the same keys",
                fix=_drop(table, narrow),
                evidence=f"{narrow.definition}\n{wide.definition}\nqueries on the leading columns can use "
                f"{wide.name}; keep {narrow.name} only if plans show the smaller index matters",
                names=(narrow.name,),
            )


def soft_delete_index(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """X05: on soft-deleted tables, indexes are partial (WHERE deleted_at IS NULL)."""
    for table in schema.indexed():
        flag = next((c for c in SOFT_DELETE_COLUMNS if schema.column(table, c) is not None), None)
        if flag is None:
            continue
        live = f"{ddl.ident(flag)} IS NULL" if flag.endswith("_at") else f"NOT {ddl.ident(flag)}"
        references = [fk.columns for fk in table.foreign_keys]
        for index in table.indexes:
            if index.primary or (index.predicate and flag in index.predicate) or None in index.columns:
                continue
            if any(serves_lookup(index, cols) for cols in references):
                continue  # foreign-key lookups (ON DELETE) must see deleted rows too
            yield Violation(
                table.qualified,
                f"index {index.name} on {table.qualified} also indexes soft-deleted rows ({flag})",
                fix=create_index(table, [c for c in index.columns if c], unique=index.unique, method=index.method,
                                 where=live, name=f"{index.name}_live") + " " + _drop(table, index),
                evidence=f"{index.definition}\nqueries filter on {live}; "
                + ("a unique index over deleted rows blocks re-using their values" if index.unique
                   else "deleted rows make the index larger than the data queries read"),
                names=(index.name,),
            )


def btree_on_array(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """X06: array columns indexed with btree (which serves only whole-array equality)."""
    for table in schema.indexed():
        for index in table.indexes:
            if index.method != "btree" or index.unique:
                continue
            for name in index.columns:
                if name and table_column(schema, table, name).is_array:
                    yield Violation(
                        table.qualified,
                        f"btree index {index.name} on {table.qualified} has array column {name}",
                        fix=create_index(table, [name], method="gin", name=ddl.index_name(table.name, [name], "ix", "gin"))
                        + " " + drop_index(table, index),
                        evidence=f"{index.definition}\nbtree serves = on the whole array only; containment "
                        "(@>, &&, ANY) needs GIN",
                        names=(index.name, name),
                    )
                    break


def boolean_index(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """X07: a boolean key column (two values: a partial index says it better)."""
    for table in schema.indexed():
        for index in table.indexes:
            if index.unique:
                continue
            flags = [n for n in index.columns if n and table_column(schema, table, n).type_name == "bool"]
            if not flags:
                continue
            rest = [n for n in index.columns if n and n not in flags]
            where = " AND ".join(ddl.ident(f) for f in flags)
            fix = (create_index(table, rest, where=where, name=f"{index.name}_partial") + " " + drop_index(table, index)
                   if rest else f"-- drop {index.name}, or index the rows a query wants: WHERE {where}")
            yield Violation(
                table.qualified,
                f"index {index.name} on {table.qualified} has boolean key column {', '.join(flags)}",
                fix=fix,
                evidence=f"{index.definition}\na two-valued key rarely narrows a search; a partial index "
                "on the rare value is smaller",
                names=(index.name, *flags),
            )


def redundant_predicate(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """X08: a partial index WHERE col IS NOT NULL on a NOT NULL column."""
    for table in schema.indexed():
        for index in table.indexes:
            if not index.predicate:
                continue
            for term in conjuncts(index.predicate):
                bare = term.strip("()")
                if not bare.endswith(" IS NOT NULL"):
                    continue
                name = bare[: -len(" IS NOT NULL")].strip('"')
                column = schema.column(table, name)
                if column is not None and column.not_null:
                    yield Violation(
                        table.qualified,
                        f"index {index.name} on {table.qualified} filters {name} IS NOT NULL, but {name} is NOT NULL",
                        fix=f"-- re-create {index.name} without the {name} IS NOT NULL condition",
                        evidence=index.definition,
                        names=(index.name, name),
                    )


def timestamp_in_middle(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """X09: a timestamp key between other keys (a range on it stops the columns after it)."""
    for table in schema.indexed():
        for index in table.indexes:
            if index.method != "btree" or len(index.columns) < 3:
                continue
            middle = [n for n in index.columns[1:-1]
                      if n and table_column(schema, table, n).type_name in ("timestamp", "timestamptz", "date")]
            if not middle:
                continue
            keys = [n for n in index.columns if n]
            order = [k for k in keys if k not in middle] + middle
            yield Violation(
                table.qualified,
                f"index {index.name} on {table.qualified} has timestamp {', '.join(middle)} in the middle of its keys",
                fix=create_index(table, order, unique=index.unique, name=f"{index.name}_reordered")
                + " " + drop_index(table, index),
                evidence=f"{index.definition}\na range condition on a middle key makes the keys after it "
                "filters instead of search bounds",
                names=(index.name, *middle),
            )
