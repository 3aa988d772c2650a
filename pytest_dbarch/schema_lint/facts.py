"""Facts several rules derive from the catalog the same way: which index can serve an
equality lookup on some columns, integer widths, how a table or index is named in DDL.

Foreign-key coverage (one decision for every rule that asks): an index covers
columns ``(a, b)`` when its first two key columns are ``a`` and ``b`` in any order.
The lookup PostgreSQL runs for each parent row deleted or updated is an equality on
all of them, which a btree serves equally well whichever leads, so an ordered-prefix
rule would only add false positives. The index must be valid; it may be partial only
when its predicate says no more than ``<fk column> IS NOT NULL`` (rows with a NULL key
are never looked up). Besides btree, a hash index on the one column and a GiST index
whose operator classes come from btree_gist (as exclusion constraints use them) serve
the lookup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from pytest_dbarch.schema_lint import ddl

if TYPE_CHECKING:
    from pytest_dbarch.postgres.catalog import Column, Index, Table
    from pytest_dbarch.schema_lint.rule import Schema

INT_BITS = {"int2": 16, "int4": 32, "int8": 64}
INT_MAX = {"int2": 2**15 - 1, "int4": 2**31 - 1, "int8": 2**63 - 1}
# btree_gist operator classes: equality-capable GiST keys.
_BTREE_GIST = re.compile(
    r"gist_(int2|int4|int8|float4|float8|numeric|timestamp|timestamptz|time|timetz|date|interval|oid|"
    r"cash|macaddr|macaddr8|text|bpchar|bytea|bit|vbit|inet|cidr|uuid|enum|bool)_ops"
)
_NOT_NULL_TERM = re.compile(r'^\(*"?([^"()\s]+)"? IS NOT NULL\)*$')


def table_column(schema: Schema, table: Table, name: str) -> Column:
    """A column the catalog says exists (a key column of an index or constraint)."""
    column = schema.column(table, name)
    if column is None:
        raise KeyError(f"{table.qualified} has no column {name!r}")
    return column


def table_ref(table: Table) -> str:
    return ddl.relation(table.schema, table.name)


@lru_cache(maxsize=4096)
def conjuncts(predicate: str) -> tuple[str, ...]:
    """The AND-ed terms of a predicate as ``pg_get_expr`` prints it (outer parentheses off)."""
    text = predicate.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    parts, depth, start = [], 0, 0
    upper = text.upper()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "'":
            end = text.find("'", i + 1)
            i = len(text) if end < 0 else end
        elif depth == 0 and upper.startswith(" AND ", i):
            parts.append(text[start:i].strip())
            start = i + 5
            i += 4
        i += 1
    parts.append(text[start:].strip())
    return tuple(p for p in parts if p)


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


@lru_cache(maxsize=4096)
def not_null_columns(predicate: str | None) -> frozenset[str] | None:
    """The columns a predicate only requires to be NOT NULL, or None when it says more."""
    if predicate is None:
        return frozenset()
    found = set()
    for term in conjuncts(predicate):
        match = _NOT_NULL_TERM.match(term)
        if not match:
            return None
        found.add(match.group(1))
    return frozenset(found)


def serves_lookup(index: Index, columns: Sequence[str]) -> bool:
    """Whether ``index`` serves an equality lookup on all of ``columns`` (module docstring)."""
    if not index.valid or not columns:
        return False
    n = len(columns)
    lead = index.columns[:n]
    if len(lead) < n or None in lead or set(lead) != set(columns):
        return False
    guarded = not_null_columns(index.predicate)
    if guarded is None or not guarded <= set(columns):
        return False
    if index.method == "btree":
        return True
    if index.method == "hash":
        return n == 1 and len(index.columns) == 1
    if index.method == "gist":
        return all(_BTREE_GIST.fullmatch(op) for op in index.opclasses[:n])
    return False


def covering_index(table: Table, columns: Sequence[str]) -> Index | None:
    return next((i for i in table.indexes if serves_lookup(i, columns)), None)


def create_index(table: Table, names: Sequence[str], *, method: str = "btree", unique: bool = False,
                 where: str | None = None, expressions: str | None = None, name: str | None = None) -> str:
    """``CREATE INDEX CONCURRENTLY ...;`` for a table (plain ``CREATE INDEX`` on a
    partitioned one, where CONCURRENTLY is not allowed)."""
    index = name or ddl.index_name(table.name, names, "ux" if unique else "ix")
    keys = expressions or ddl.columns(names)
    concurrently = "" if table.kind == "partitioned table" else " CONCURRENTLY"
    using = "" if method == "btree" else f" USING {method}"
    tail = f" WHERE {where}" if where else ""
    kind = "UNIQUE INDEX" if unique else "INDEX"
    return f"CREATE {kind}{concurrently} {ddl.ident(index)} ON {table_ref(table)}{using} ({keys}){tail};"


def drop_index(table: Table, index: Index) -> str:
    concurrently = "" if table.kind == "partitioned table" else " CONCURRENTLY"
    return f"DROP INDEX{concurrently} {ddl.relation(table.schema, index.name)};"


def alter(table: Table, action: str) -> str:
    return f"ALTER TABLE {table_ref(table)} {action};"


def pk_columns(table: Table) -> tuple[str, ...]:
    pk = table.primary_key
    return pk.columns if pk else ()


def fk_columns(table: Table) -> set[str]:
    return {c for fk in table.foreign_keys for c in fk.columns}


def columns_named(table: Table, names: Iterable[str]) -> list[Column]:
    wanted = set(names)
    return [c for c in table.columns if c.name in wanted]


def describe_index(index: Index) -> str:
    """``ix_name (a, b) WHERE ...`` — the index as a reviewer reads it."""
    text = index.definition
    cut = text.find(" USING ")
    return f"{index.name}: {text[cut + 1:]}" if cut >= 0 else text
