"""Values of a ``Space`` drawn from a ``random.Random``: bulk fills, factories, the checks'
base rows, and (on a generator fed by a slot's bytes) the kinds ``decoded`` has no
decoder of its own for, so ``.rows()`` and ``.fill()`` produce the same sort of data.
Edges of numeric and date ranges are drawn on purpose: an off-by-one CHECK is found at
its edge.

What PostgreSQL refuses is never produced: NUL in text (and in JSON strings), characters
outside the database encoding, numbers that overflow ``numeric(p, s)`` or the integer
width, dates and times outside Python's (narrower) range, trailing spaces in ``char(n)``
(they do not count there, so ``length()`` would disagree).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import string
import uuid
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

from psycopg.types.range import Range

from pytest_dbarch.constraints import regex
from pytest_dbarch.constraints.spaces import EXACT, Kind, Space

_UTC = dt.timezone.utc
TEXT_CAP = 40  # longest text drawn when the type sets no limit
LIST_CAP = 4
_SOME_UNICODE = "éüßçñøåæœ€ЖДλπ中文日本語한국어🙂"


class Unsupported(Exception):
    """No generator for this column type."""


_DAY_ZERO = dt.date(2000, 1, 1)  # what dates and times shrink towards
_TIME_ZERO = dt.datetime(2000, 1, 1)


Units = tuple[Callable[[Any, bool], int], Callable[[int], Any]]  # value -> steps (rounded up?), steps -> value


def _int_units(kind: Kind) -> Units:
    return (lambda v, up: int(v)), int


def _decimal_units(kind: Kind) -> Units:
    places = kind.places or 0
    return (lambda v, up: _scaled(v, places)), (lambda n: Decimal(n).scaleb(-places, context=EXACT))


def _date_units(kind: Kind) -> Units:
    return (lambda d, up: (d - _DAY_ZERO).days), (lambda n: _DAY_ZERO + dt.timedelta(days=n))


def _time_units(kind: Kind) -> Units:
    """Steps of the column's precision (microseconds for ``timestamp(6)``) from 2000-01-01;
    a bound between two steps is rounded inwards."""
    unit = 10 ** (6 - (kind.places if kind.places is not None else 6))
    zone = _UTC if kind.name == "timestamptz" else None

    def to_units(value: dt.datetime, up: bool) -> int:
        micro = (_naive(value) - _TIME_ZERO) // dt.timedelta(microseconds=1)
        return -(-micro // unit) if up else micro // unit

    def from_units(n: int) -> dt.datetime:
        value = _TIME_ZERO + dt.timedelta(microseconds=n * unit)
        return value.replace(tzinfo=zone) if zone else value

    return to_units, from_units


def _range_top(element: Kind) -> int:
    """The last step a range may end on: an integer range ``[a, b]`` is stored as
    ``[a, b + 1)``, so ``b`` stays below the integer's maximum."""
    to_units, _ = _UNITS[element.name](element)
    return to_units(element.high, False) - (1 if element.name == "int" else 0)


def _short_range(element: Kind) -> int:
    """Steps a short range spans at most: 10 integers, 1000 numeric steps, two weeks, a day."""
    if element.name in ("timestamp", "timestamptz"):
        return 86_400 * 10 ** (element.places if element.places is not None else 6)
    return {"int": 10, "decimal": 1000, "date": 14}.get(element.name, 10)


_UNITS = {"int": _int_units, "decimal": _decimal_units, "money": _decimal_units, "date": _date_units,
          "timestamp": _time_units, "timestamptz": _time_units}


@lru_cache(maxsize=256)
def units(kind: Kind) -> Units | None:
    """How a kind counts in steps (integers, numerics, dates, timestamps), or None."""
    found = _UNITS.get(kind.name)
    return found(kind) if found is not None else None


def _edges(low: int, high: int, step: int) -> list[int]:
    candidates = [low, low + step, high - step, high, 0, 1, -1]
    return sorted({c for c in candidates if low <= c <= high})


_JSON_KEYS = ("name", "k", "tag", "ok", "id", "note")


def _json_scalar(rng: random.Random) -> Any:
    pick = rng.random()
    if pick < 0.6:
        return "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(0, 8)))
    if pick < 0.85:
        return rng.randint(-1000, 1000)
    return rng.random() < 0.5


def _json_document(rng: random.Random) -> Any:
    """A JSON document: mostly an object (``{}`` first), sometimes an array or a scalar, so
    a CHECK on its shape (``jsonb_typeof(doc) = 'object'``) has rows on both sides. Never
    Python's None at the top: that would be SQL NULL, not JSON null."""
    shape = rng.random()
    if shape < 0.7:
        keys = rng.sample(_JSON_KEYS, rng.randint(0, 3))
        return {key: _json_scalar(rng) for key in keys}
    if shape < 0.85:
        return [_json_scalar(rng) for _ in range(rng.randint(0, 3))]
    return _json_scalar(rng)


def _scaled(value: Decimal, places: int) -> int:
    return int(value.scaleb(places, context=EXACT))


def _naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        return value.astimezone(_UTC).replace(tzinfo=None)
    return value


# --- random.Random, for bulk fills and factories, and for ``decoded`` (on a slot's bytes)

Sampler = Callable[[random.Random], Any]
NULL_SHARE = 0.15


def sampler(space: Space) -> Sampler:
    """A function drawing one value of the space from a ``random.Random`` (kept on the
    space: bulk fills call this for every value)."""
    found = space.__dict__.get("_sampler")
    if found is None:
        found = _sampler(space)
        object.__setattr__(space, "_sampler", found)
    return found  # type: ignore[no-any-return]


@lru_cache(maxsize=4096)
def _sampler(space: Space) -> Sampler:
    if space.nulls == "must":
        return lambda rng: None
    base = _base_sampler(space)
    if _needs_filter(space) or space.patterns:
        base = _retrying(base, space)
    if space.nulls == "may":
        inner = base
        return lambda rng: None if rng.random() < NULL_SHARE else inner(rng)
    return base


def column(space: Space, rng: random.Random, count: int) -> list[Any]:
    """``count`` values of the space at once (a column of a bulk fill)."""
    if space.single:
        return [space.allowed[0]] * count  # type: ignore[index]
    if space.nulls == "must":
        return [None] * count
    if space.allowed is not None and not (_needs_filter(space) or space.patterns):
        choices = space.choices()
        if choices:
            drawn = rng.choices(choices, k=count)
            if space.nulls == "may":
                return [None if rng.random() < NULL_SHARE else v for v in drawn]
            return drawn
    draw = sampler(space)
    return [draw(rng) for _ in range(count)]


def _needs_filter(space: Space) -> bool:
    return bool(space.excluded or space.refused or len(space.patterns) > 1 or space.kind.padded
                or (space.patterns and (space.min_len or space.max_len is not None)))


class NoValue(Exception):
    """The sampler found no value of the space in its attempts."""


def _retrying(base: Sampler, space: Space, attempts: int = 30) -> Sampler:
    def draw(rng: random.Random) -> Any:
        for _ in range(attempts):
            value = base(rng)
            if space.admits(value) is not False:
                return value
        raise NoValue(space)

    return draw


def _base_sampler(space: Space) -> Sampler:
    kind = space.kind
    if space.allowed is not None:
        choices = space.choices()
        if not choices:
            return _nothing(space)
        return lambda rng: rng.choice(choices)
    name = kind.name
    if name == "int":
        return _int_sampler(space.low, space.high)
    if name in ("decimal", "money"):
        places = kind.places or 0
        ints = _int_sampler(_scaled(space.low, places), _scaled(space.high, places))
        return lambda rng: Decimal(ints(rng)).scaleb(-places, context=EXACT)
    if name == "float":
        low, high = space.low, space.high
        lo = max(low if low is not None else -1e9, -1e9)
        hi = min(high if high is not None else 1e9, 1e9)
        if lo > hi:
            lo, hi = low, high
        if kind.width == 32:
            import struct

            return lambda rng: struct.unpack("f", struct.pack("f", rng.uniform(lo, hi)))[0]
        return lambda rng: rng.uniform(lo, hi)
    if name == "text":
        return _text_sampler(space)
    if name == "bool":
        return lambda rng: rng.random() < 0.5
    if name == "date":
        return _date_sampler(space.low, space.high)
    if name in ("timestamp", "timestamptz"):
        return _datetime_sampler(space, kind)
    if name in ("time", "timetz"):
        tz = _UTC if name == "timetz" else None
        return lambda rng: dt.time(rng.randrange(24), rng.randrange(60), rng.randrange(60), tzinfo=tz)
    if name == "interval":
        low = max(space.low, dt.timedelta(days=-3650))
        high = min(space.high, dt.timedelta(days=3650))
        seconds = int((high - low).total_seconds())
        return lambda rng: low + dt.timedelta(seconds=rng.randint(0, max(seconds, 0)))
    if name == "uuid":
        return lambda rng: uuid.UUID(int=rng.getrandbits(128), version=4)
    if name in ("json", "jsonb"):
        return _json_document
    if name == "bytea":
        top = space.max_len if space.max_len is not None else 32
        return lambda rng: rng.randbytes(rng.randint(space.min_len, max(space.min_len, min(top, 32))))
    if name == "inet":
        return lambda rng: ipaddress.IPv4Address(rng.getrandbits(32))
    if name == "cidr":
        return lambda rng: ipaddress.ip_network((rng.getrandbits(32) & 0xFFFFFF00, 24))
    if name == "macaddr":
        return lambda rng: ":".join(f"{rng.randrange(256):02x}" for _ in range(6))
    if name == "enum":
        labels = kind.labels
        return (lambda rng: rng.choice(labels)) if labels else _nothing(space)
    if name in ("bit", "varbit"):
        size = kind.max_len or 1
        if name == "bit":
            return lambda rng: "".join(rng.choice("01") for _ in range(size))
        return lambda rng: "".join(rng.choice("01") for _ in range(rng.randint(0, size)))
    if name == "array":
        assert kind.element is not None
        element = sampler(Space.of(kind.element, nullable=False))
        top = space.max_len if space.max_len is not None else max(LIST_CAP, space.min_len)
        return lambda rng: [element(rng) for _ in range(rng.randint(space.min_len, top))]
    if name == "range":
        assert kind.element is not None
        element_space = Space.of(kind.element, nullable=False)
        element = sampler(element_space)
        to_units, from_units = _UNITS[kind.element.name](kind.element)
        top = _range_top(kind.element)
        short = _short_range(kind.element)

        def draw_range(rng: random.Random) -> Range[Any]:
            """Short ranges (a booking, a validity period): an exclusion constraint
            (``during WITH &&``) must leave room for the rows already there, and one range
            over most of the type would leave none."""
            start = min(to_units(element(rng), False), top)
            return Range(from_units(start), from_units(min(start + _below(rng, short + 1), top)), "[]")

        return draw_range
    if name == "tsvector":
        return lambda rng: " ".join(_word(rng) for _ in range(rng.randint(1, 4)))
    if name == "xml":
        return lambda rng: f"<v>{_word(rng)}</v>"
    raise Unsupported(kind.sql_type)


def _nothing(space: Space) -> Sampler:
    def draw(rng: random.Random) -> Any:
        raise NoValue(space)

    return draw


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(1, 8)))


def _below(rng: random.Random, n: int) -> int:
    """A uniform integer in [0, n): ``randrange`` without its Python-level checks, which
    cost more than the draw in a bulk fill."""
    if n <= _EXACT_FLOATS:
        return min(int(rng.random() * n), n - 1)
    return rng.randrange(n)


_EXACT_FLOATS = 2**50


def _int_sampler(low: int, high: int) -> Sampler:
    edges = _edges(low, high, 1)
    small_low, small_high = max(low, -1000), min(high, 100000)

    def draw(rng: random.Random) -> int:
        roll = rng.random()
        if roll < 0.1:
            return rng.choice(edges)
        if roll < 0.7 and small_low <= small_high:
            return small_low + _below(rng, small_high - small_low + 1)
        return low + _below(rng, high - low + 1)

    return draw


_EPOCH_LOW, _EPOCH_HIGH = dt.date(1970, 1, 1), dt.date(2040, 12, 31)


def _date_sampler(low: dt.date, high: dt.date) -> Sampler:
    near_low, near_high = max(low, _EPOCH_LOW), min(high, _EPOCH_HIGH)
    if near_low > near_high:
        near_low, near_high = low, high
    span = (near_high - near_low).days

    def draw(rng: random.Random) -> dt.date:
        if rng.random() < 0.05:
            return rng.choice((low, high))
        return near_low + dt.timedelta(days=_below(rng, span + 1))

    return draw


def _datetime_sampler(space: Space, kind: Kind) -> Sampler:
    low, high = _naive(space.low), _naive(space.high)
    near_low = max(low, dt.datetime(1970, 1, 1))
    near_high = min(high, dt.datetime(2040, 12, 31))
    if near_low > near_high:
        near_low, near_high = low, high
    span = int((near_high - near_low).total_seconds())
    unit = 10 ** (6 - (kind.places if kind.places is not None else 6))
    tz = _UTC if kind.name == "timestamptz" else None

    def draw(rng: random.Random) -> dt.datetime:
        micro = _below(rng, 1_000_000 // unit) * unit if unit <= 1_000_000 else 0
        value = near_low + dt.timedelta(seconds=_below(rng, max(span, 1)), microseconds=micro)
        value = min(max(value, low), high)
        return value.replace(tzinfo=tz) if tz else value

    return draw


def _text_sampler(space: Space) -> Sampler:
    kind = space.kind
    top = space.max_len if space.max_len is not None else max(TEXT_CAP, space.min_len)
    if space.patterns:
        pattern = space.patterns[0]
        generator, flags = pattern.generator, pattern.flags

        def from_pattern(rng: random.Random) -> str:
            text = regex.sample(generator, flags, rng)
            if len(text) < space.min_len and rng.random() < 0.5:  # half the time: reach the bound
                text = regex.sample(generator, flags, rng, stretch=space.min_len - len(text))
            return text

        return from_pattern
    extra = "".join(c for c in _SOME_UNICODE if encodable(c, kind.codec))
    padded = kind.padded
    low = space.min_len
    typical = min(top, max(low, 12))

    def draw(rng: random.Random) -> str:
        size = low + (_below(rng, typical - low + 1) if rng.random() < 0.9 else _below(rng, top - low + 1))
        value = rng.randbytes(size).translate(_LETTERS).decode("ascii")
        if extra and size and rng.random() < 0.3:
            at = rng.randrange(size)
            value = value[:at] + rng.choice(extra) + value[at + 1:]
        if padded:
            value = value.rstrip(" ")
            while len(value) < low:
                value += rng.choice(string.ascii_letters)
        return value

    return draw


# 256 byte values onto 64 printable characters, evenly: random bytes become random text in C.
_LETTERS = bytes((string.ascii_letters + string.digits + " .").encode()) * 4


def encodable(char: str, codec: str) -> bool:
    """Whether the database encoding (as a Python codec) holds ``char``."""
    try:
        char.encode(codec)
    except UnicodeEncodeError:
        return False
    return True
