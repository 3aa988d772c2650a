"""One row from one hypothesis choice: the values of a row decoded from a string of bytes.

hypothesis records every draw as a choice, and recording costs more than the rest of a
row's work (a row of ten columns took about twenty choices), so ``.rows()`` draws a row
as ONE fixed-size ``bytes`` choice cut into slots: a run of CHECK-branch picks, one slot
per foreign key, one per column. A slot decodes deterministically, under two rules that
keep hypothesis' shrinking (it lowers the bytes towards zero, one at a time) as useful
as with one choice per value:

- all-zero bytes decode to the simplest value: NULL where the column allows it, else 0 or
  the bound nearest to it, the shortest text, the first allowed value, the first CHECK
  branch, the first parent key;
- a slot's first byte picks the flavour, simplest first: NULL, near the simplest value,
  an edge (a CHECK's or the type's bound, the longest text), anywhere in the range; the
  bytes after it read as a number (``number``) that smaller bytes never make larger.

A number is NOT read as big-endian bytes: shrinking lowers one byte at a time, and a
big-endian number gets stuck where lowering a byte would need a later one raised
(``qty >= 100`` ended at ``qty=101``). Its digits are in base 4 instead, each a byte
0-255, so the bytes after any digit can make up for lowering it by one many times over,
and the shrinker lands on the boundary (``qty=100``), as with hypothesis' own integers.
Measured with hypothesis' shrinker on a 100-byte row, a number in it and a ``>= T``
failure: base 4 ended exactly on T in 43 of 50 runs (the rest within 50 of 10,000,000),
base 16 in 30, plain bytes in 15 (off by up to 9 million on a 32-bit range).

Kinds without a decoder of their own (json, arrays, ranges, uuid, ...) and text shaped by
a regex run the ``random.Random`` samplers of ``values`` on a generator fed by the slot's
bytes (``SlotRandom``): zero bytes make each of its random choices the first option.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from pytest_dbarch.constraints import values
from pytest_dbarch.constraints.spaces import Space

NULL_BAND = 64  # head bytes below this decode to NULL where NULL is allowed (a quarter of rows)
NEAR, EDGE = 10, 12  # of 16 flavours: 0-9 near the simplest value, 10-11 an edge, 12-15 anywhere
NEAR_LIMITS = (10, 100, 1000, 100_000)  # how far "near" reaches, in natural units (see _natural)
TEXT_BYTES = 16  # characters a text slot holds; longer text repeats them
TYPICAL_TEXT = 12  # near-flavoured text is at most this long
RANDOM_BYTES = 8  # bytes of a slot decoded through SlotRandom (then a generator seeded with them)
ROW_BYTES = 600  # a row past this gets compact slots: ten rows of a list stay under hypothesis' 8 KB
PICK_BYTES = 2
KEY_BYTES = 2  # parent-key index of a foreign key slot


@dataclass(frozen=True)
class Layout:
    """Where each slot lies in a row's bytes; fixed per table, so a slot always means the
    same column whatever the CHECK branches chosen."""

    size: int
    picks_at: int
    picks: int
    slots: Mapping[str, tuple[int, int]]  # "column" or "fk:name" -> (offset, width)

    @classmethod
    def of(cls, base: Mapping[str, Space], foreign_keys: Mapping[str, Iterable[str]], rules: int) -> Layout:
        """``foreign_keys``: name -> columns; those columns take a parent's key, not a slot
        (drawn after all, when another column of the key is pinned, from derived bytes)."""
        for compact in (False, True):
            slots: dict[str, tuple[int, int]] = {}
            at = picks = rules + 2  # a pick per CHECK rule, one for the branch list, one for an aim's rule
            at *= PICK_BYTES
            keyed = set()
            for name, columns in foreign_keys.items():
                slots["fk:" + name] = (at, 1 + KEY_BYTES)
                at += 1 + KEY_BYTES
                keyed.update(columns)
            for name, space in base.items():
                if name in keyed:
                    continue
                width = 1 + payload_width(space, compact)
                slots[name] = (at, width)
                at += width
            if at <= ROW_BYTES:
                break
        return cls(at, 0, picks, slots)


def payload_width(space: Space, compact: bool = False) -> int:
    """Bytes a column's value needs after its head byte (from the type's whole range, so
    any narrower space of the column fits too). ``compact``: fewer, for wide tables, at
    the price of coarser numbers and text that repeats sooner (decoding reads what the
    slot holds)."""
    units = values.units(space.kind)
    if units is not None:
        low, high = units[0](space.kind.low, True), units[0](space.kind.high, False)
        return 1 + min(digits(high - low), 6 if compact else MAX_DIGITS)
    name = space.kind.name
    if name == "float":
        return 1 + (4 if compact else 8)
    if name == "text":
        top = space.max_len if space.max_len is not None else values.TEXT_CAP
        return 1 + max(min(top, 4 if compact else TEXT_BYTES), 2)
    return 4 if compact else RANDOM_BYTES




class ByteSource:
    """The choices of one row's draw (``rows.Source``), read from the row's bytes."""

    def __init__(self, data: bytes, layout: Layout) -> None:
        self.data = data
        self.layout = layout
        self._picks = 0

    def pick(self, n: int) -> int:
        index = self._picks
        self._picks += 1
        if index < self.layout.picks:
            at = self.layout.picks_at + index * PICK_BYTES
            return number(self.data[at:at + PICK_BYTES], n - 1)
        return number(self._derived(f"pick:{index}", PICK_BYTES), n - 1)

    def value(self, space: Space, at: str = "") -> Any:
        return decode(space, self._slot(at, space))

    def between(self, space: Space, at: str = "") -> Any:
        return self.value(space, at)

    def leave_null(self, at: str = "") -> bool:
        return self._slot("fk:" + at)[0] < NULL_BAND

    def key_index(self, at: str = "") -> int:
        return int.from_bytes(self._slot("fk:" + at)[1:], "big")

    def salt(self) -> int:
        return zlib.crc32(self.data)

    def _slot(self, key: str, space: Space | None = None) -> bytes:
        found = self.layout.slots.get(key)
        if found is None:
            return self._derived(key, 1 + (payload_width(space) if space is not None else KEY_BYTES))
        at, size = found
        return self.data[at:at + size]

    def _derived(self, key: str, width: int) -> bytes:
        """Bytes for a choice the layout has no slot for (deterministic, not shrinkable)."""
        return hashlib.blake2b(self.data + key.encode(), digest_size=min(max(width, 1), 64)).digest()


RADIX = 4  # of the digits of a number; 256 would be plain big-endian bytes
MAX_DIGITS = 16  # up to 85 * 4**16 (3.6e11) steps apart; wider ranges move in coarser steps
_TOPS = [0]
for _ in range(MAX_DIGITS):
    _TOPS.append(_TOPS[-1] * RADIX + 255)  # the largest raw value of 1, 2, ... digits


def number(data: bytes, n: int) -> int:
    """``data`` read as a number in [0, n]: zero bytes give 0, lowering any byte never
    raises it, and each step of [0, n] is reached when ``digits(n)`` bytes are given."""
    if n <= 0 or not data:
        return 0
    count = min(digits(n), len(data))
    raw = 0
    for byte in data[:count]:
        raw = raw * RADIX + byte
    top = _TOPS[count]
    if n > top:  # a range wider than the bytes can step through: coarse steps, ending on n itself
        return raw * n // top
    return raw * (n + 1) // (top + 1)  # every value of [0, n] takes an equal share of the bytes


@lru_cache(maxsize=4096)
def digits(n: int) -> int:
    """Bytes ``number`` reads for [0, n]."""
    count = 1
    while _TOPS[count] < n and count < MAX_DIGITS:
        count += 1
    return count


def decode(space: Space, slot: bytes) -> Any:
    """The value of ``space`` a slot (head byte + payload) stands for; ``values.NoValue``
    when the space turns out empty."""
    if space.nulls == "must":
        return None
    if space.single:
        return space.allowed[0]  # type: ignore[index]
    head, payload = slot[0], slot[1:]
    if space.nulls == "may":
        if head < NULL_BAND:
            return None
        head = (head - NULL_BAND) * 256 // (256 - NULL_BAND)
    flavour = head >> 4
    value = _decode(space, flavour, payload)
    if _checked(space) and space.admits(value) is False:
        return _sampled(space, payload + b"\x01")  # excluded values, a second regex, ...
    return value


def _checked(space: Space) -> bool:
    return bool(space.excluded or space.refused or space.patterns or space.kind.padded)


def _decode(space: Space, flavour: int, payload: bytes) -> Any:
    if space.allowed is not None:
        choices = space.choices()
        if not choices:
            raise values.NoValue(space)
        return choices[number(payload[:2], len(choices) - 1)]
    units = values.units(space.kind)
    if units is not None and space.low is not None and space.high is not None:
        return _stepped(space, units, flavour, payload)
    name = space.kind.name
    if name == "text" and not space.patterns:
        return _text(space, flavour, payload)
    if name == "bool":
        return payload[0] >= 128
    if name == "float":
        return _float(space, flavour, payload)
    return _sampled(space, payload)


def _natural(space: Space) -> int:
    """Steps in one natural unit (1 for integers and dates, 100 for cents, a day of
    microseconds for timestamps), the scale of "near"."""
    kind = space.kind
    places = kind.places if kind.places is not None else (6 if kind.name.startswith("timestamp") else 0)
    if kind.name.startswith("timestamp"):
        return 86_400 * 10**places
    return 10**places if kind.name in ("decimal", "money") else 1


def _stepped(space: Space, units: values.Units, flavour: int, payload: bytes) -> Any:
    """Integers, numerics, dates and timestamps: a count of the column's steps, 0 at the
    simplest value (0, 2000-01-01, or the bound nearest to it)."""
    to_units, from_units = units
    low, high = to_units(space.low, True), to_units(space.high, False)
    if low > high:
        raise values.NoValue(space)
    target = min(max(0, low), high)
    sign, magnitude = payload[0], payload[1:]
    if flavour < NEAR:
        reach = NEAR_LIMITS[flavour * len(NEAR_LIMITS) // NEAR] * _natural(space)
        up, down = high - target, target - low
        downward = (sign & 1 and down > 0) or up == 0
        step = number(magnitude, min(reach, down if downward else up))
        return from_units(target - step if downward else target + step)
    if flavour < EDGE:
        edges = sorted({u for u in (low, low + 1, high - 1, high, target + 1, target - 1) if low <= u <= high},
                       key=lambda u: (abs(u - target), u))
        return from_units(edges[number(magnitude, len(edges) - 1)])
    return from_units(low + number(magnitude, high - low))


def _text(space: Space, flavour: int, payload: bytes) -> str:
    kind = space.kind
    low = space.min_len
    top = space.max_len if space.max_len is not None else max(values.TEXT_CAP, low)
    size_byte, chars = payload[0], payload[1:1 + TEXT_BYTES]
    if flavour < NEAR:
        size = low + number(bytes((size_byte,)), min(top, max(low, TYPICAL_TEXT)) - low)
    elif flavour < EDGE:
        size = top if size_byte >= 128 else low  # the longest text, or the shortest
    else:
        size = low + number(bytes((size_byte,)), top - low)
    if not size:
        return ""
    text = chars.decode("latin-1").translate(_characters(kind.codec))
    if len(text) < size:
        text *= size // max(len(text), 1) + 1
    text = text[:size]
    if kind.padded:
        text = text.rstrip(" ")
        text += "x" * (low - len(text))
    return text


@lru_cache(maxsize=4)
def _characters(codec: str) -> dict[int, str]:
    """Byte -> character, ordered simplest first: digits and letters for three quarters of
    the bytes, then punctuation and white space (quotes, backslash, LIKE's % and _), then
    characters beyond ASCII that the database encoding holds."""
    alnum = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    marks = " .,-_'\"\\/%@#!?:;()[]{}<>=+*&|~\t\n"
    wide = "éüßçñøåæ¡¿°±µÀÿ€œЖДλπ中文日本語한국어🙂\u0301א"
    wide = "".join(c for c in wide if values.encodable(c, codec)) or alnum
    table = {}
    for byte in range(256):
        if byte < 192:
            table[byte] = alnum[byte * len(alnum) // 192]
        elif byte < 224:
            table[byte] = marks[(byte - 192) % len(marks)]
        else:
            table[byte] = wide[(byte - 224) % len(wide)]
    return table


def _float(space: Space, flavour: int, payload: bytes) -> float:
    low = space.low if space.low is not None else -math.inf
    high = space.high if space.high is not None else math.inf
    target = min(max(0.0, low), high)
    sign, fraction = payload[0], int.from_bytes(payload[1:9], "big") / 256 ** len(payload[1:9])
    if flavour < NEAR:
        reach = NEAR_LIMITS[flavour * len(NEAR_LIMITS) // NEAR]
        value = target - fraction * reach if sign & 1 else target + fraction * reach
    elif flavour < EDGE:
        edges = [e for e in (target, low, high) if math.isfinite(e)]
        value = edges[number(payload[1:3], len(edges) - 1)]
    else:
        lo, hi = max(low, -1e9), min(high, 1e9)
        value = lo + fraction * (hi - lo) if lo <= hi else target
    value = min(max(value, low), high)
    if space.kind.width == 32:
        value = struct.unpack("f", struct.pack("f", value))[0]
    return value


def _sampled(space: Space, payload: bytes) -> Any:
    return values.sampler(_never_null(space))(SlotRandom(payload))


@lru_cache(maxsize=1024)
def _never_null(space: Space) -> Space:
    return space if space.nulls == "never" else replace(space, nulls="never")


class SlotRandom(random.Random):
    """A ``random.Random`` whose numbers come from a slot's bytes, then from a generator
    seeded with them: zero bytes make every choice the first option (``random()`` is 0)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(0)
        self._data = data
        self._at = 0
        self._rest: random.Random | None = None

    def _take(self, n: int) -> bytes:
        chunk = self._data[self._at:self._at + n]
        self._at += n
        if len(chunk) < n:
            if self._rest is None:
                self._rest = random.Random(self._data)
            chunk += self._rest.randbytes(n - len(chunk))
        return chunk

    def random(self) -> float:
        return (int.from_bytes(self._take(7), "big") >> 3) * 2.0**-53

    def getrandbits(self, k: int) -> int:
        if k <= 0:
            return 0
        return int.from_bytes(self._take((k + 7) // 8), "big") >> (-k % 8)

    def randbytes(self, n: int) -> bytes:
        return self._take(n)
