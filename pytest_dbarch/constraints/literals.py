"""Drawn values as SQL literals, and the types to read them as.

An INSERT built here sends untyped literals, as an application does, so the column's
own type applies with assignment rules: a string too long for ``varchar(3)`` is an
error, not silently cut as an explicit ``'ABCD'::varchar(3)`` would be. Where a typed
row is needed (``SELECT <check expression>`` over a candidate), ``cast_type`` drops the
type modifier for the same reason. One SQL text per row also lets a probe go out as a
single round trip (``SAVEPOINT; INSERT; ROLLBACK TO``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import math
import re
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from psycopg import sql
from psycopg.types.range import Range

from pytest_dbarch.postgres.catalog import Column

_TYPMOD = re.compile(r"\(\d+(?:,\s*\d+)?\)")


def cast_type(column: Column) -> str:
    """The column's type without length / precision, for reading a literal exactly."""
    text = column.type
    if column.type_name in ("bpchar", "_bpchar") and not column.domain:
        text = "bpchar" + ("[]" * max(column.dimensions, 1) if column.is_array else "")
    elif column.type_name in ("bit", "_bit") and not column.domain:
        text = "varbit" + ("[]" * max(column.dimensions, 1) if column.is_array else "")
    return _TYPMOD.sub("", text).replace("  ", " ")


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def literal(value: Any, kind: str = "") -> str:
    """An untyped SQL literal of ``value`` (``kind``: the column kind, for JSON)."""
    if value is None:
        return "NULL"
    if kind in ("json", "jsonb"):
        return quote(json.dumps(value, ensure_ascii=False, allow_nan=False))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if value >= 0 else f"({value})"
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text if not text.startswith("-") else f"({text})"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return quote({True: "Infinity", False: "-Infinity"}[value > 0] if math.isinf(value) else "NaN")
        return quote(repr(value))
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, (uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address,
                          ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return quote(str(value))
    if isinstance(value, dt.datetime):
        return quote(value.isoformat(sep=" "))
    if isinstance(value, (dt.date, dt.time)):
        return quote(value.isoformat())
    if isinstance(value, dt.timedelta):
        return quote(f"{value // dt.timedelta(microseconds=1)} microseconds")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return quote("\\x" + bytes(value).hex())
    if isinstance(value, Range):
        return quote(range_text(value))
    if isinstance(value, list):
        return quote(array_text(value))
    return sql.Literal(value).as_string(None)


def text_value(value: Any, kind: str = "") -> str | None:
    """The value in PostgreSQL's text input format (for COPY), None for NULL."""
    if value is None:
        return None
    if kind in ("json", "jsonb"):
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return f"{value // dt.timedelta(microseconds=1)} microseconds"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, Range):
        return range_text(value)
    if isinstance(value, list):
        return array_text(value)
    return str(value)


def array_text(values: Iterable[Any]) -> str:
    parts = []
    for value in values:
        if value is None:
            parts.append("NULL")
            continue
        text = text_value(value)
        assert text is not None
        parts.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def range_text(value: Range[Any]) -> str:
    if value.isempty:
        return "empty"
    bounds = value.bounds
    lower = "" if value.lower is None else '"' + str(text_value(value.lower)) + '"'
    upper = "" if value.upper is None else '"' + str(text_value(value.upper)) + '"'
    return f"{bounds[0]}{lower},{upper}{bounds[1]}"
