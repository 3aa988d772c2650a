"""Many rows of one table at once, for ``.fill()``: the same rules as ``RowDrawer.draw_once``.

A row-at-a-time draw pays for choosing a CHECK branch, looking up samplers and building
narrowed spaces on every row. Here the rows of a block are first assigned a branch
combination (a ``Plan``), and then every column a plan leaves free is drawn as one list
for all the rows of that plan. Columns bound by another column of the row
(``expected_close >= opened``) are drawn row by row, first from their plan's space with
the relation checked directly (no new space, no new sampler), and only after a few misses
through the narrowed space as ``draw_once`` does. Foreign keys, the CHECK evaluation,
UNIQUE bookkeeping and repairs are ``RowDrawer``'s own, so the rows are the ones it would
accept.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Callable, Mapping
from typing import Any

from pytest_dbarch.constraints import values
from pytest_dbarch.constraints.evaluate import MIRROR
from pytest_dbarch.constraints.rows import Aim, Plan, RandomSource, RowDrawer
from pytest_dbarch.constraints.spaces import Space

TRIES = 4  # direct draws of a related column before narrowing its space
_Bound = tuple[str, Space, list[tuple[str, str]], Callable[[random.Random], Any] | None]
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "<>": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def draw_block(drawer: RowDrawer, source: RandomSource, n: int, fixed: Mapping[str, Any],
               into: list[dict[str, Any]]) -> None:
    """Up to ``n`` valid rows appended to ``into`` (fewer when some candidates are thrown
    away; the ones kept stay there when a UNIQUE key runs out of values midway)."""
    aim = Aim()
    leaves = drawer.leaves(fixed)
    if not leaves:  # too many branch combinations to list, or none fits: row by row
        for _ in range(n):
            row = drawer.draw_once(source, fixed, aim)
            if row is not None:
                into.append(row)
        return
    rng = source.rng
    groups: dict[int, int] = {}
    for _ in range(n):
        index = rng.randrange(len(leaves)) if len(leaves) > 1 else 0
        groups[index] = groups.get(index, 0) + 1
    start = len(into)
    try:
        for index, count in sorted(groups.items()):
            _plan_rows(drawer, leaves[index], source, count, fixed, aim, into)
    finally:  # plans drawn one after the other: mix them, as row-by-row draws would be
        into[start:] = rng.sample(into[start:], len(into) - start)


def _plan_rows(drawer: RowDrawer, plan: Plan, source: RandomSource, count: int, fixed: Mapping[str, Any],
               aim: Aim, kept: list[dict[str, Any]]) -> None:
    rng = source.rng
    spec = drawer.spec
    fk_columns = {c for fk, _ in plan.foreign_keys(spec, fixed) for c in fk.columns}
    bound = _bound_columns(plan, fixed)
    related = {name for name, *_ in bound}
    free = [name for name, _ in plan.order if name not in fixed and name not in fk_columns and name not in related]
    try:
        columns = [values.column(plan.spaces[name], rng, count) for name in free]
    except values.NoValue:  # a value the sampler could not find in its attempts: row by row
        for _ in range(count):
            row = drawer.draw_once(source, fixed, aim)
            if row is not None:
                kept.append(row)
        return
    constant = {name: value for name, value in fixed.items()}
    rules = plan.checks(drawer, aim)
    used = {name: plan.spaces[name] for name in free}
    for drawn in zip(*columns) if columns else ((),) * count:
        drawer.stats.candidates += 1
        pinned = drawer.pinned_keys(plan, fixed, source)
        if pinned is None:
            continue
        row = dict(constant)
        row.update(zip(free, drawn))
        row.update(pinned)
        for name in fk_columns:  # a key column the foreign key left to the space (MATCH SIMPLE)
            if name not in row:
                row[name] = source.value(plan.spaces[name])
        if bound and not _draw_bound(drawer, row, bound, source):
            continue
        finished = drawer.finish(row, aim, source, used, fixed, rules)
        if finished is not None:
            kept.append(finished)


def _bound_columns(plan: Plan, fixed: Mapping[str, Any]) -> list[_Bound]:
    """Columns compared with a column drawn before them, in plan order, with what
    ``draw_once`` narrows them by (``column <op> other``) and, where Python compares their
    values as the server does, the sampler to try first."""
    position = {name: i for i, (name, _) in enumerate(plan.order)}
    found: dict[str, list[tuple[str, str]]] = {}
    for name, _ in plan.order:
        if name in fixed:
            continue
        for relation in plan.relations:
            if relation.left == name and _before(relation.right, name, position, fixed):
                found.setdefault(name, []).append((relation.op, relation.right))
            elif relation.right == name and _before(relation.left, name, position, fixed):
                found.setdefault(name, []).append((MIRROR[relation.op], relation.left))
    return [(name, plan.spaces[name], relations,
             values.sampler(plan.spaces[name]) if _directly_comparable(plan, name, relations) else None)
            for name, relations in found.items()]


def _before(other: str, name: str, position: dict[str, int], fixed: Mapping[str, Any]) -> bool:
    if other in position:
        return position[other] < position[name]
    return other in fixed


def _draw_bound(drawer: RowDrawer, row: dict[str, Any], bound: list[_Bound], source: RandomSource) -> bool:
    """Values of the related columns, each satisfying its comparisons with the row so far."""
    rng = source.rng
    for name, space, relations, sample in bound:
        if name in row:  # a foreign key pinned it: ``draw_once`` keeps such values as they are
            continue
        wanted = [(_OPS[op], op, row[other]) for op, other in relations if row.get(other) is not None]
        if not wanted:
            row[name] = source.value(space)
            continue
        if sample is not None:
            for _ in range(TRIES):
                try:
                    value = sample(rng)
                except values.NoValue:
                    break
                if value is not None and all(test(value, other) for test, _, other in wanted):
                    row[name] = value
                    break
            if name in row:
                continue
        narrowed: Space | None = space
        for _, op, other in wanted:
            narrowed = narrowed.compare(op, other) if narrowed is not None else None
        if narrowed is None:
            drawer.stats.reject(f"{name} {relations[0][0]} {relations[0][1]}: no value fits")
            return False
        try:
            row[name] = source.value(narrowed)
        except values.NoValue:
            drawer.stats.reject(f"{name}: no value found")
            return False
    return True


def _directly_comparable(plan: Plan, name: str, relations: list[tuple[str, str]]) -> bool:
    """Python's comparison is the server's for these values: same ordered kind both sides."""
    kind = plan.spaces[name].kind
    return kind.ordered and all(other in plan.spaces and plan.spaces[other].kind == kind for _, other in relations)
