"""Domains over domains: the catalog resolves one level, rows need the whole chain.

``CREATE DOMAIN small_positive AS positive CHECK (VALUE < 10)`` over ``positive AS int
CHECK (VALUE > 0)``: a column of ``small_positive`` must satisfy both CHECKs, and its
values are integers. The shared catalog describes such a column by the first domain's
base (``positive``, itself a domain) and its CHECKs only, so one query here follows each
chain to the real base type and gathers every CHECK and NOT NULL on the way.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg

from pytest_dbarch.origin import plugin_statements
from pytest_dbarch.postgres.catalog import Catalog, Column

_CHAINS = """
WITH RECURSIVE chain AS (
    SELECT t.oid AS top, b.oid AS oid, 1 AS depth
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    JOIN pg_type b ON b.oid = t.typbasetype AND b.typtype = 'd'
    WHERE t.typtype = 'd' AND (n.nspname, t.typname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
    UNION ALL
    SELECT c.top, b.oid, c.depth + 1 FROM chain c JOIN pg_type d ON d.oid = c.oid
    JOIN pg_type b ON b.oid = d.typbasetype AND b.typtype = 'd'
)
SELECT tn.nspname, t.typname, c.depth, d.typnotnull, base.typname AS base_name, base.typcategory AS base_category,
       d.typtypmod, format_type(d.typbasetype, NULL) AS base_type,
       ARRAY(SELECT con.conname FROM pg_constraint con WHERE con.contypid = d.oid AND con.contype = 'c'
             ORDER BY con.conname) AS check_names,
       ARRAY(SELECT pg_get_expr(con.conbin, 0) FROM pg_constraint con WHERE con.contypid = d.oid
             AND con.contype = 'c' ORDER BY con.conname) AS checks
FROM chain c JOIN pg_type t ON t.oid = c.top JOIN pg_namespace tn ON tn.oid = t.typnamespace
JOIN pg_type d ON d.oid = c.oid JOIN pg_type base ON base.oid = d.typbasetype
ORDER BY 1, 2, 3
"""


def resolve(conn: psycopg.Connection[Any], catalog: Catalog) -> Catalog:
    """``catalog`` with every column of a domain over a domain described by its real base
    type and all the CHECKs (and NOT NULL) of its chain; unchanged when there is none.
    The CHECKs are given as PostgreSQL prints them, so ``.sql`` still runs on the server."""
    domains = sorted({(c.type_schema, c.domain) for t in catalog.tables.values() for c in t.columns
                      if c.domain is not None})
    if not domains:
        return catalog
    with plugin_statements():
        rows = conn.execute(_CHAINS, [[s for s, _ in domains], [d for _, d in domains]]).fetchall()
    chains: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for schema, name, *rest in rows:
        chains.setdefault((schema, name), []).append(tuple(rest))
    if not chains:
        return catalog
    for qualified, table in list(catalog.tables.items()):
        columns = tuple(_resolved(c, chains.get((c.type_schema, c.domain or ""))) for c in table.columns)
        if columns != table.columns:
            catalog.tables[qualified] = replace(table, columns=columns)
    return catalog


def _resolved(column: Column, chain: list[tuple[Any, ...]] | None) -> Column:
    if not chain:
        return column
    names, checks = list(column.domain_check_names), list(column.domain_checks)
    not_null = column.domain_not_null
    for _, inner_not_null, _, _, _, _, check_names, inner_checks in chain:
        names += check_names
        checks += inner_checks
        not_null = not_null or inner_not_null
    _, _, base_name, base_category, typmod, base_type, _, _ = chain[-1]  # the deepest domain's base
    # A CHECK of an outer domain reads VALUE cast to the base type (the value is already of
    # it): the cast is dropped, so the CHECK is aimed at like one on the base type itself.
    checks = [c.replace(f"(VALUE)::{base_type}", "VALUE") for c in checks]
    facts: dict[str, Any] = {}
    if column.length is None and column.precision is None and typmod is not None and typmod >= 0:
        if base_name in ("varchar", "bpchar"):
            facts["length"] = typmod - 4
        elif base_name == "numeric":
            facts["precision"], facts["scale"] = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
    return replace(column, type_name=base_name, category=base_category, domain_checks=tuple(checks),
                   domain_check_names=tuple(names), domain_not_null=not_null, **facts)
