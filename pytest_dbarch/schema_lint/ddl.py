"""Names and statements for the fixes: identifiers quoted the way PostgreSQL's
``quote_ident`` does (bare when safe, so the DDL reads naturally), qualified only
outside ``public``, and index names that fit in 63 bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

# pg_get_keywords() WHERE catcode <> 'U' (PostgreSQL 15): words that need quotes.
_KEYWORDS = frozenset(
    """all analyse analyze and any array as asc asymmetric authorization between bigint binary bit
    boolean both case cast char character check coalesce collate collation column concurrently
    constraint create cross current_catalog current_date current_role current_schema current_time
    current_timestamp current_user dec decimal default deferrable desc distinct do else end except
    exists extract false fetch float for foreign freeze from full grant greatest group grouping
    having ilike in initially inner inout int integer intersect interval into is isnull join lateral
    leading least left like limit localtime localtimestamp national natural nchar none normalize not
    notnull null nullif numeric offset on only or order out outer overlaps overlay placing position
    precision primary real references returning right row select session_user setof similar smallint
    some substring symmetric table tablesample then time timestamp to trailing treat trim true union
    unique user using values varchar variadic verbose when where window with xmlattributes xmlconcat
    xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable""".split()
)
_BARE = re.compile(r"[a-z_][a-z0-9_$]*")
MAX_IDENTIFIER = 63  # NAMEDATALEN - 1


def ident(name: str) -> str:
    """``name`` as it must be written in SQL: ``account_id``, ``"Order"``, ``"user"``."""
    if _BARE.fullmatch(name) and name not in _KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def relation(schema: str, name: str) -> str:
    """A table (or index, sequence...) as DDL names it: bare in ``public``."""
    return ident(name) if schema == "public" else f"{ident(schema)}.{ident(name)}"


def columns(names: Iterable[str]) -> str:
    return ", ".join(ident(n) for n in names)


def index_name(table: str, names: Iterable[str], prefix: str = "ix", suffix: str = "") -> str:
    """``ix_contacts_account_id``; shortened with a hash when over 63 bytes."""
    parts = [prefix, table, *(re.sub(r"\W+", "_", n).strip("_").lower() or "expr" for n in names)]
    if suffix:
        parts.append(suffix)
    name = "_".join(parts)
    if len(name.encode()) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return name.encode()[: MAX_IDENTIFIER - 9].decode("utf-8", "ignore") + "_" + digest


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
