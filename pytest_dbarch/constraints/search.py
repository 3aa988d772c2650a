"""Searching rows near an expression's edges, for CHECKs the generator cannot aim at.

When a CHECK cannot be read into atoms (a function, a cast, a CASE on something else),
its violators and counterexamples are searched instead: the columns it reads take
NULL, values next to the constants it mentions (``n - 1``, ``n``, ``n + 1``; the string
itself, empty, changed case) and ordinary values of their type, and the server judges
each candidate (``SELECT <expression>``). Off-by-one mistakes live at those edges.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from sqlglot import exp

from pytest_dbarch.constraints import evaluate as ev
from pytest_dbarch.constraints import values
from pytest_dbarch.constraints.checks_parse import Rule
from pytest_dbarch.constraints.schema import TableSpec
from pytest_dbarch.constraints.spaces import EXACT, Space


def edge_values(rule: Rule, space: Space) -> list[Any]:
    """Values of ``space``'s kind next to the constants ``rule`` mentions."""
    found: list[Any] = []
    if rule.tree is None:
        return found
    for node in rule.tree.find_all(exp.Literal, exp.Cast):
        value = ev.evaluate(node, {}) if not any(True for _ in node.find_all(exp.Column)) else ev.OPAQUE
        if value is ev.OPAQUE or value is None:
            continue
        found.extend(_around(value))
    kind = space.kind.name
    typed = [v for v in (_as_kind(kind, v) for v in found) if v is not None]
    return list(dict.fromkeys(typed))


def _around(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [value, not value]
    if isinstance(value, int):
        return [value - 1, value, value + 1]
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        step = Decimal(1).scaleb(exponent, context=EXACT) if isinstance(exponent, int) else Decimal(1)
        return [EXACT.subtract(value, step), value, EXACT.add(value, step), EXACT.subtract(value, 1), EXACT.add(value, 1)]
    if isinstance(value, float):
        return [value - 1, value, value + 1]
    if isinstance(value, str):
        return [value, "", value + "x", value[:-1], value.lower(), value.upper()]
    if isinstance(value, list):
        return [v for item in value for v in _around(item)]
    if isinstance(value, dt.datetime):
        return [value - dt.timedelta(microseconds=1), value, value + dt.timedelta(microseconds=1)]
    if isinstance(value, dt.date):
        return [value - dt.timedelta(days=1), value, value + dt.timedelta(days=1)]
    return [value]


def _as_kind(kind: str, value: Any) -> Any:
    try:
        if kind == "int" and isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            return int(value) if value == int(value) else None
        if kind in ("decimal", "money") and isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            return Decimal(value)
        if kind == "float" and isinstance(value, (int, Decimal, float)) and not isinstance(value, bool):
            return float(value)
        if kind in ("text", "enum") and isinstance(value, str):
            return value
        if kind == "date" and type(value) is dt.date:
            return value
        if kind in ("timestamp", "timestamptz") and isinstance(value, dt.datetime):
            return value
        if kind == "bool" and isinstance(value, bool):
            return value
    except (ValueError, ArithmeticError):
        return None
    return None


def mutations(spec: TableSpec, base: Mapping[str, Any], rule: Rule, rng: random.Random,
              limit: int = 80) -> list[dict[str, Any]]:
    """Rows like ``base`` whose columns read by ``rule`` take edge, NULL and random values."""
    columns = [c for c in sorted(rule.columns) if c in spec.columns]
    options: dict[str, list[Any]] = {}
    for name in columns:
        space = Space.of(spec.columns[name].kind, nullable=True)
        choices: list[Any] = [None, *edge_values(rule, space)]
        sample = values.sampler(Space.of(space.kind, nullable=False))
        for _ in range(4):
            try:
                choices.append(sample(rng))
            except values.NoValue:
                break
        fitting = [v for v in choices if v is None or space.admits(v) is not False]
        options[name] = list(dict.fromkeys(_key(v) for v in fitting))
    rows = []
    single = [(name, value) for name in columns for value in options[name]]
    for name, value in single:
        rows.append({**base, name: _unkey(value)})
    if len(columns) > 1:
        for combo in _combinations([options[c] for c in columns], max(0, limit - len(rows)), rng):
            rows.append({**base, **{c: _unkey(v) for c, v in zip(columns, combo)}})
    return rows[:limit]


LISTED_COMBINATIONS = 100_000  # above this, combinations are sampled, never listed


def _combinations(options: list[list[Any]], wanted: int, rng: random.Random) -> list[tuple[Any, ...]]:
    """``wanted`` different combinations of one value per option list, in random order. A
    CHECK over many columns has too many to list (MusicBrainz's artist_alias reads eleven
    columns: eight options each make 8.6 billion), so past ``LISTED_COMBINATIONS`` they are
    drawn one by one."""
    if not wanted:
        return []
    if math.prod(len(o) for o in options) <= LISTED_COMBINATIONS:
        combos = list(itertools.product(*options))
        rng.shuffle(combos)
        return combos[:wanted]
    picked: dict[tuple[int, ...], tuple[Any, ...]] = {}
    for _ in range(20 * wanted):
        if len(picked) >= wanted:
            break
        at = tuple(rng.randrange(len(o)) for o in options)
        if at not in picked:
            picked[at] = tuple(o[i] for o, i in zip(options, at))
    return list(picked.values())


class _Hashable:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __hash__(self) -> int:
        return hash(repr(self.value))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Hashable) and repr(other.value) == repr(self.value)


def _key(value: Any) -> Any:
    return _Hashable(value)


def _unkey(value: Any) -> Any:
    return value.value if isinstance(value, _Hashable) else value


def first(rows: list[dict[str, Any]], good: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    for row in rows:
        if good(row):
            return row
    return None
