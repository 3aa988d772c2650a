"""JSONB columns filtered by key in the application's queries without an index that
serves the filter (the seed's JSONB indexing strategies).

The evidence is the statements the session captured (``queries/seen.py``): a filter
``doc ->> 'key' = ...`` needs an expression index on ``(doc ->> 'key')`` (a GIN index
on ``doc`` does not serve it); ``doc @> ...`` needs a GIN index on ``doc``; the key
tests ``?``, ``?|`` and ``?&`` need GIN with the default ``jsonb_ops``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pytest_dbarch.schema_lint import ddl
from pytest_dbarch.schema_lint.facts import create_index
from pytest_dbarch.schema_lint.options import LintOptions
from pytest_dbarch.schema_lint.rule import Query, Schema, Violation

if TYPE_CHECKING:
    from pytest_dbarch.postgres.catalog import Catalog, Table

_COMPARISONS = ("EQ", "NEQ", "GT", "GTE", "LT", "LTE", "In", "Like", "ILike", "Is")


@dataclass(frozen=True)
class _Use:
    table: str
    column: str
    operator: str  # "->>" (with path), "@>", "?"
    path: tuple[tuple[str, str], ...] = ()  # (("->", "a"), ("->>", "b"))
    sql: str = ""


@lru_cache(maxsize=4096)
def _parse(sql: str) -> Any:
    import sqlglot

    try:
        return sqlglot.parse_one(sql, read="postgres")
    except Exception:
        return None


def _tables_of(tree: Any) -> dict[str, str]:
    from sqlglot import exp

    found: dict[str, str] = {}
    for table in tree.find_all(exp.Table):
        name = table.name
        qualified = f"{table.db}.{name}" if table.db else name
        found[table.alias_or_name] = qualified
        found.setdefault(name, qualified)
    return found


def _key(node: Any, params: Any) -> str | None:
    from sqlglot import exp

    while isinstance(node, exp.Cast):  # SQLAlchemy writes %(doc_1)s::TEXT
        node = node.this
    if isinstance(node, exp.JSONPath):
        keys = [p.this for p in node.expressions if isinstance(p, exp.JSONPathKey)]
        return str(keys[0]) if len(keys) == 1 else None
    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this)
    if isinstance(node, exp.Placeholder) and isinstance(params, dict) and node.name in params:
        value = params[node.name]
        return value if isinstance(value, str) else None
    return None


def _chain(node: Any, params: Any) -> tuple[Any, tuple[tuple[str, str], ...]] | None:
    """The base column and the key path of ``col -> 'a' ->> 'b'``."""
    from sqlglot import exp

    steps: list[tuple[str, str]] = []
    while isinstance(node, (exp.JSONExtract, exp.JSONExtractScalar)):
        key = _key(node.expression, params)
        if key is None:
            return None
        steps.append(("->>" if isinstance(node, exp.JSONExtractScalar) else "->", key))
        node = node.this
    while isinstance(node, exp.Paren):
        node = node.this
    if not isinstance(node, exp.Column) or not steps:
        return None
    return node, tuple(reversed(steps))


def _uses(query: Query, catalog: Catalog) -> Iterator[_Use]:
    from sqlglot import exp

    tree = _parse(query.sql)
    if tree is None:
        return
    tables = _tables_of(tree)
    conditions = [w.this for w in tree.find_all(exp.Where)] + [
        j.args["on"] for j in tree.find_all(exp.Join) if j.args.get("on") is not None
    ]
    for condition in conditions:
        for node in condition.walk():
            path: tuple[tuple[str, str], ...] = ()
            if isinstance(node, exp.ArrayContainsAll):
                target, operator, path = node.this, "@>", ()
            elif isinstance(node, (exp.JSONBContainsTopKey, exp.JSONBContainsAnyTopKeys, exp.JSONBContainsAllTopKeys)):
                target, operator, path = node.this, "?", ()
            elif type(node).__name__ in _COMPARISONS:
                side = node.this
                while isinstance(side, exp.Paren):
                    side = side.this
                found = _chain(side, query.params)
                if found is None:
                    continue
                target, path = found
                operator = "->>"
            else:
                continue
            while isinstance(target, exp.Paren):
                target = target.this
            if not isinstance(target, exp.Column):
                continue
            table = _resolve(catalog, tables, target)
            if table is None or not table.has_column(target.name) or table.column(target.name).type_name != "jsonb":
                continue
            yield _Use(table.qualified, target.name, operator, path, query.sql)


def _resolve(catalog: Catalog, tables: dict[str, str], column: Any) -> Table | None:
    if column.table:
        name = tables.get(column.table, column.table)
        return catalog.tables.get(name) if "." in name and name in catalog.tables else _lookup(catalog, name)
    candidates = [t for t in (_lookup(catalog, n) for n in set(tables.values())) if t and t.has_column(column.name)]
    return candidates[0] if len(candidates) == 1 else None


def _lookup(catalog: Catalog, name: str) -> Table | None:
    try:
        return catalog.table(name)
    except KeyError:
        return None


def _expression(column: str, path: tuple[tuple[str, str], ...]) -> str:
    """The expression as pg_get_expr prints an index key: ``(doc ->> 'key'::text)``."""
    text = ddl.ident(column)
    for operator, key in path:
        text = f"({text} {operator} {ddl.literal(key)}::text)"
    return text


def _served(table: Table, use: _Use) -> bool:
    for index in table.indexes:
        if not index.valid or index.predicate:
            continue
        if use.operator == "->>":
            if index.method in ("btree", "hash") and index.expressions and _expression(use.column, use.path) in index.expressions:
                return True
        elif index.method == "gin" and index.columns[:1] == (use.column,):
            if use.operator == "@>" or index.opclasses[:1] == ("jsonb_ops",):
                return True
    return False


def unindexed_filter(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """JSONB filters of the captured queries are served by an index."""
    seen: set[tuple[str, str, str, tuple[tuple[str, str], ...]]] = set()
    for query in schema.queries:
        for use in _uses(query, schema.catalog):
            key = (use.table, use.column, use.operator, use.path)
            if key in seen:
                continue
            seen.add(key)
            table = schema.catalog.tables[use.table]
            if _served(table, use):
                continue
            if use.operator == "->>":
                expression = _expression(use.column, use.path)
                shown = expression[1:-1].replace("::text", "")
                fix = create_index(table, [use.column, *(k for _, k in use.path)], expressions=f"({shown})")
                what = f"{shown} ="
                hint = f" (or filter with {use.column} @> '{{...}}' and a GIN index)"
            else:
                opclass = "" if use.operator == "?" else " jsonb_path_ops"
                fix = create_index(table, [use.column], method="gin",
                                   expressions=f"{ddl.ident(use.column)}{opclass}",
                                   name=ddl.index_name(table.name, [use.column], "ix", "gin"))
                what, hint = f"{use.column} {use.operator}", ""
            yield Violation(
                table.qualified,
                f"{table.qualified}.{use.column} is filtered by {what} in the application's queries, with no index for it",
                fix=fix + hint,
                evidence=f"first seen in: {' '.join(use.sql.split())[:300]}",
                names=(use.column,),
            )
