"""What values one column may take: its type's limits narrowed by the atoms of a CHECK.

A ``Kind`` is the column's type as the generator sees it (integer width, numeric
precision and scale, text length and alphabet, enum labels, array element, ...); a
``Space`` is a kind plus what the chosen CHECK branches demand (bounds, allowed and
refused values, lengths, regexes, NULL or not). ``Space.restrict(atom)`` returns the
narrower space, or None when the atom contradicts it; that is how generation picks CHECK
branches that can be satisfied together. Bounds are kept closed: ``> 0`` on an integer
is ``>= 1``, on ``numeric(12, 2)`` it is ``>= 0.01``.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from functools import lru_cache
from typing import Any

from pytest_dbarch.constraints import evaluate as ev
from pytest_dbarch.constraints.checks_parse import Atom, Compare, Length, Match, Members, Null
from pytest_dbarch.constraints.regex import Pattern
from pytest_dbarch.postgres.catalog import Column

# Arithmetic on numeric(p, s) values: numeric takes up to 1000 digits, and Python's default
# context rounds to 28 (numeric(30, 5)'s bound 10**25 - 10**-5 became 10**25, an overflow).
EXACT = Context(prec=2100)

_INT_RANGES = {"int2": 2**15, "int4": 2**31, "int8": 2**63, "oid": None}
_TEXT = {"text", "varchar", "bpchar", "name", "citext", "char"}
_ORDERED = {"int", "decimal", "float", "money", "date", "timestamp", "timestamptz", "time", "timetz", "interval", "bool", "uuid"}
_UTC = dt.timezone.utc
DATE_MIN, DATE_MAX = dt.date(1, 1, 1), dt.date(9999, 12, 31)
DATETIME_MIN, DATETIME_MAX = dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30, 23, 59, 59, 999999)
_RANGE_ELEMENTS = {"int4range": "int4", "int8range": "int8", "numrange": "numeric", "daterange": "date",
                   "tsrange": "timestamp", "tstzrange": "timestamptz"}


@dataclass(frozen=True)
class Kind:
    """A column type as far as generating its values goes."""

    name: str  # int, decimal, float, money, text, bool, date, timestamp, timestamptz, time, timetz,
    #            interval, uuid, json, jsonb, bytea, inet, cidr, macaddr, enum, array, range, bit,
    #            varbit, tsvector, xml, unsupported
    sql_type: str  # format_type(): what values are cast to
    low: Any = None
    high: Any = None
    places: int | None = None  # numeric scale; fractional-second digits of times
    max_len: int | None = None  # text / bit length
    padded: bool = False  # char(n): trailing spaces do not count
    labels: tuple[str, ...] = ()  # enum labels
    element: Kind | None = None  # of an array or a range
    codec: str = "utf-8"  # characters the database encoding holds
    folded: bool = False  # citext: comparisons ignore case
    width: int = 64  # float4 / float8

    @property
    def ordered(self) -> bool:
        return self.name in _ORDERED

    @property
    def sized(self) -> bool:
        return self.name in ("text", "bytea", "array", "bit", "varbit")


def codec_of(encoding: str) -> str:
    return {"UTF8": "utf-8", "LATIN1": "latin-1", "SQL_ASCII": "ascii"}.get(encoding.upper(), "ascii")


def kind_of(column: Column, encoding: str = "UTF8") -> Kind:
    """The generator's view of a catalog column (domains resolved to their base type)."""
    codec = codec_of(encoding)
    if column.is_array and column.element_type:
        element = _scalar_kind(column.element_type.lstrip("_"), column.element_category or "", column,
                               column.enum_labels, codec, column.type.removesuffix("[]"))
        return Kind("array", column.type, element=element)
    return _scalar_kind(column.type_name, column.category, column, column.enum_labels, codec, column.type)


def _scalar_kind(name: str, category: str, column: Column, labels: tuple[str, ...] | None, codec: str,
                 sql_type: str) -> Kind:
    if labels is not None and category == "E":
        return Kind("enum", sql_type, labels=labels)
    if name in ("int2", "int4", "int8"):
        bound = _INT_RANGES[name]
        return Kind("int", sql_type, low=-bound, high=bound - 1)
    if name == "numeric":
        if column.precision:
            scale = column.scale or 0
            limit = EXACT.subtract(EXACT.power(Decimal(10), column.precision - scale), EXACT.power(Decimal(10), -scale))
            return Kind("decimal", sql_type, low=EXACT.minus(limit), high=limit, places=scale)  # -limit rounds
        limit = Decimal(10) ** 15
        return Kind("decimal", sql_type, low=-limit, high=limit, places=4)
    if name in ("float4", "float8"):
        return Kind("float", sql_type, width=32 if name == "float4" else 64)
    if name == "money":
        return Kind("money", sql_type, low=Decimal("-999999999.99"), high=Decimal("999999999.99"), places=2)
    if name in _TEXT or category == "S":
        if name == "name":
            return Kind("text", sql_type, max_len=63, codec="ascii")
        if name == "char":
            return Kind("text", sql_type, max_len=1, codec="ascii")
        return Kind("text", sql_type, max_len=column.length if name in ("varchar", "bpchar") else None,
                    padded=name == "bpchar", codec=codec, folded=name == "citext")
    if name == "bool":
        return Kind("bool", sql_type)
    if name == "date":
        return Kind("date", sql_type, low=DATE_MIN, high=DATE_MAX)
    if name in ("timestamp", "timestamptz"):
        low, high = DATETIME_MIN, DATETIME_MAX
        if name == "timestamptz":
            low, high = low.replace(tzinfo=_UTC), high.replace(tzinfo=_UTC)
        return Kind(name, sql_type, low=low, high=high, places=_time_places(column))
    if name in ("time", "timetz"):
        return Kind(name, sql_type, places=_time_places(column))
    if name == "interval":
        return Kind("interval", sql_type, low=dt.timedelta(days=-3650), high=dt.timedelta(days=3650))
    if name == "uuid":
        return Kind("uuid", sql_type)
    if name in ("json", "jsonb", "bytea", "inet", "cidr", "macaddr", "tsvector", "xml"):
        return Kind(name, sql_type)
    if name in ("bit", "varbit"):
        return Kind(name, sql_type, max_len=column.length or (1 if name == "bit" else 16))
    if name in _RANGE_ELEMENTS:
        element_name = _RANGE_ELEMENTS[name]
        probe = Column(name="", attnum=0, type=element_name, type_name=element_name, type_schema="pg_catalog",
                       category="N" if element_name in ("int4", "int8", "numeric") else "D", not_null=True)
        return Kind("range", sql_type, element=kind_of(probe))
    return Kind("unsupported", sql_type)


def _time_places(column: Column) -> int:
    return 6 if column.precision is None else min(column.precision, 6)


@dataclass(frozen=True)
class Space:
    """The values one column may take in the row being drawn."""

    kind: Kind
    nulls: str = "may"  # "may", "never" or "must"
    low: Any = None  # inclusive
    high: Any = None  # inclusive
    allowed: tuple[Any, ...] | None = None
    excluded: frozenset[Any] = frozenset()
    min_len: int = 0
    max_len: int | None = None
    patterns: tuple[Pattern, ...] = ()
    refused: tuple[Pattern, ...] = ()

    def __hash__(self) -> int:
        # Spaces key the strategy and sampler caches on every draw: hash them once.
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.kind, self.nulls, self.low, self.high, self.allowed, self.excluded, self.min_len,
                           self.max_len, self.patterns, self.refused))
            object.__setattr__(self, "_hash", cached)
        return cached

    @property
    def single(self) -> bool:
        """Exactly one value, never NULL: nothing to draw."""
        return self.nulls == "never" and self.allowed is not None and len(self.allowed) == 1

    @classmethod
    def of(cls, kind: Kind, nullable: bool) -> Space:
        return cls(kind, "may" if nullable else "never", low=kind.low, high=kind.high, max_len=kind.max_len,
                   allowed=kind.labels or None)

    @classmethod
    def exactly(cls, kind: Kind, value: Any) -> Space:
        if value is None:
            return cls(kind, "must")
        return cls(kind, "never", allowed=(value,))

    # --- narrowing

    def restrict(self, atom: Atom) -> Space | None:
        """This space with ``atom`` also true; None when that is impossible."""
        if isinstance(atom, Null):
            wanted = "never" if atom.negated else "must"
            if self.nulls not in ("may", wanted):
                return None
            return replace(self, nulls=wanted)
        if self.nulls == "must":
            return None
        space = replace(self, nulls="never")
        if isinstance(atom, Compare):
            return space._compare(atom.op, atom.value)
        if isinstance(atom, Members):
            coerced = [coerce(self.kind, v) for v in atom.values]
            values = [v for v in coerced if v is not ev.OPAQUE]
            if self.kind.name == "int":
                values = [v for v in values if isinstance(v, int)]  # 2.5 is never an integer's value
            if atom.negated:
                return space._checked(replace(space, excluded=space.excluded | frozenset(values)))
            if ev.OPAQUE in coerced:
                return space  # some values we cannot read: leave them to evaluation
            allowed = values if space.allowed is None else [v for v in space.allowed if v in values]
            return space._checked(replace(space, allowed=tuple(allowed)))
        if isinstance(atom, Length):
            if not self.kind.sized:
                return space
            return space._length(atom.op, atom.value)
        if isinstance(atom, Match):
            if self.kind.name != "text":
                return space
            if atom.negated:
                return space._checked(replace(space, refused=space.refused + (atom.pattern,)))
            return space._checked(replace(space, patterns=space.patterns + (atom.pattern,)))
        return space  # relations and other conditions: handled by the row drawer / evaluation

    def compare(self, op: str, value: Any) -> Space | None:
        """This space with ``<op> value`` (a value of another column) also true."""
        return replace(self, nulls="never")._compare(op, value) if self.nulls != "must" else None

    def _compare(self, op: str, raw: Any) -> Space | None:
        value = coerce(self.kind, raw)
        if value is ev.OPAQUE:
            return self
        if self.kind.name == "int" and not isinstance(value, int) and op in ("=", "<>"):
            return self if op == "<>" else None  # an integer never equals 2.5
        if op == "=":
            if self.allowed is not None:
                return self._checked(replace(self, allowed=tuple(v for v in self.allowed if v == value)))
            return self._checked(replace(self, allowed=(value,)))
        if op == "<>":
            return self._checked(replace(self, excluded=self.excluded | {value}))
        if not self.kind.ordered:
            if self.allowed is not None and all(isinstance(v, str) for v in self.allowed):
                return self  # text order: leave it to evaluation
            return self
        bound = _closed_bound(self.kind, op, value)
        if bound is _BEYOND:
            return None  # nothing of the type lies past the bound (9999-12-31 + 1 day)
        if bound is ev.OPAQUE:
            return self
        if op in (">", ">="):
            low = bound if self.low is None or _greater(bound, self.low) else self.low
            return self._checked(replace(self, low=low))
        high = bound if self.high is None or _greater(self.high, bound) else self.high
        return self._checked(replace(self, high=high))

    def _length(self, op: str, value: int) -> Space | None:
        low, high = self.min_len, self.max_len
        if op == "=":
            low, high = max(low, value), value if high is None else min(high, value)
        elif op == ">":
            low = max(low, value + 1)
        elif op == ">=":
            low = max(low, value)
        elif op == "<":
            high = value - 1 if high is None else min(high, value - 1)
        elif op == "<=":
            high = value if high is None else min(high, value)
        else:
            return self  # <> : left to evaluation
        return self._checked(replace(self, min_len=max(low, 0), max_len=high))

    def _checked(self, space: Space) -> Space | None:
        return space if space.feasible() else None

    def feasible(self) -> bool:
        if self.nulls == "must":
            return True
        if self.max_len is not None and self.min_len > self.max_len:
            return False
        if self.low is not None and self.high is not None:
            try:
                if _greater(self.low, self.high):
                    return False
            except TypeError:
                return False
        if self.allowed is not None:
            return any(self.admits(v) is not False for v in self.allowed)
        return True

    def admits(self, value: Any) -> bool | None:
        """Whether ``value`` lies in the space; None when a regex needs the server."""
        if value is None:
            return self.nulls != "never"
        if self.nulls == "must":
            return False
        if self.allowed is not None and value not in self.allowed:
            return False
        if self.excluded and _among(value, self.excluded):
            return False
        try:
            if self.low is not None and _greater(self.low, value):
                return False
            if self.high is not None and _greater(value, self.high):
                return False
        except TypeError:
            return None
        if self.kind.sized and (self.min_len or self.max_len is not None):
            size = len(value)
            if size < self.min_len or (self.max_len is not None and size > self.max_len):
                return False
        unsure = False
        for pattern in self.patterns:
            found = pattern.search(value)
            if found is False:
                return False
            unsure |= found is None
        for pattern in self.refused:
            found = pattern.search(value)
            if found is True:
                return False
            unsure |= found is None
        return None if unsure else True

    def choices(self) -> tuple[Any, ...]:
        """The allowed values that lie in the space, in a stable order (worked out once per
        space: a row decodes its IN-list columns from it)."""
        return _choices(self)


def _among(value: Any, values: frozenset[Any]) -> bool:
    """``value in values`` for JSON objects and arrays too (they cannot be hashed)."""
    try:
        return value in values
    except TypeError:
        return any(value == v for v in values)


@lru_cache(maxsize=4096)
def _choices(space: Space) -> tuple[Any, ...]:
    assert space.allowed is not None
    return tuple(sorted((v for v in space.allowed if space.admits(v) is not False), key=_order_key))


def _order_key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value if not isinstance(value, (dict, list)) else repr(value))


def _greater(a: Any, b: Any) -> bool:
    return bool(a > b)


def coerce(kind: Kind, value: Any) -> Any:
    """A constant from a CHECK as a value of ``kind``; OPAQUE when it is not one."""
    if value is None or value is ev.OPAQUE:
        return value
    name = kind.name
    if name in ("text", "enum"):
        if isinstance(value, str):
            if kind.folded:
                return ev.OPAQUE
            return value.rstrip(" ") if kind.padded else str(value)
        return ev.OPAQUE
    if name == "int":
        if isinstance(value, bool):
            return ev.OPAQUE
        if isinstance(value, int):
            return value
        if isinstance(value, (Decimal, float)):
            # an integral constant is that integer; fractional ones are rounded as bounds
            return int(value) if value == int(value) else value
        return ev.OPAQUE
    if name in ("decimal", "money"):
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            return ev.OPAQUE
        return Decimal(value)
    if name == "float":
        if isinstance(value, bool) or not isinstance(value, (int, Decimal, float)):
            return ev.OPAQUE
        return float(value)
    if name == "bool":
        return value if isinstance(value, bool) else ev.OPAQUE
    if name == "date":
        return value if type(value) is dt.date else ev.OPAQUE
    if name == "timestamp":
        return value if isinstance(value, dt.datetime) and value.tzinfo is None else ev.OPAQUE
    if name == "timestamptz":
        return value.astimezone(_UTC) if isinstance(value, dt.datetime) and value.tzinfo is not None else ev.OPAQUE
    if name == "uuid":
        return value if isinstance(value, uuid.UUID) else ev.OPAQUE
    if name == "interval":
        return value if isinstance(value, dt.timedelta) else ev.OPAQUE
    if name in ("time", "timetz"):
        return value if isinstance(value, dt.time) else ev.OPAQUE
    return ev.OPAQUE


_BEYOND = object()  # a strict bound past the end of the type


def _closed_bound(kind: Kind, op: str, value: Any) -> Any:
    """The inclusive bound equivalent to ``<op> value`` for this kind."""
    upward = op in (">", ">=")
    strict = op in (">", "<")
    name = kind.name
    if name == "int":
        number = Decimal(value)
        rounded = int(number.to_integral_value(rounding=ROUND_CEILING if upward else ROUND_FLOOR))
        if strict and rounded == number:
            rounded += 1 if upward else -1
        return rounded
    if name in ("decimal", "money"):
        step = Decimal(1).scaleb(-(kind.places or 0), context=EXACT)
        rounded = value.quantize(step, rounding=ROUND_CEILING if upward else ROUND_FLOOR, context=EXACT)
        if strict and rounded == value:
            rounded = EXACT.add(rounded, step) if upward else EXACT.subtract(rounded, step)
        return rounded
    if name == "float":
        if strict:
            return math.nextafter(value, math.inf if upward else -math.inf)
        return value
    if name == "date":
        if strict:
            try:
                return value + dt.timedelta(days=1 if upward else -1)
            except OverflowError:
                return _BEYOND
        return value
    if name in ("timestamp", "timestamptz", "interval"):
        unit = dt.timedelta(microseconds=10 ** (6 - (kind.places if kind.places is not None else 6)))
        if name == "interval":
            unit = dt.timedelta(microseconds=1)
        try:
            return _snap(value, unit, upward, strict)
        except OverflowError:
            return _BEYOND
    if name == "bool":
        if strict:
            if upward:
                return True if value is False else ev.OPAQUE
            return False if value is True else ev.OPAQUE
        return value
    return value if not strict else ev.OPAQUE


def _snap(value: Any, unit: dt.timedelta, upward: bool, strict: bool) -> Any:
    """Round a time bound onto the column's precision grid, inside the bound."""
    micros = unit // dt.timedelta(microseconds=1)
    if isinstance(value, dt.timedelta):
        total = value // dt.timedelta(microseconds=1)
        base = dt.timedelta(0)
    else:
        base = value.replace(microsecond=0)
        total = value.microsecond
    if upward:
        snapped = -(-total // micros) * micros
        if strict and snapped == total:
            snapped += micros
    else:
        snapped = total // micros * micros
        if strict and snapped == total:
            snapped -= micros
    return base + dt.timedelta(microseconds=snapped)
