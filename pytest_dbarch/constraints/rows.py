"""Drawing one row of a table: CHECK branches, foreign keys, columns in order, then the checks.

One algorithm, two sources of randomness: hypothesis (``decoded.ByteSource``: one
``bytes`` choice per row, decoded slot by slot, for ``.rows()`` and the checks' searches:
shrinkable, minimal failing rows) and ``random.Random`` (``RandomSource``, for
``.fill()``, ``.factory()`` and the built-in checks' base rows). For each CHECK a
branch of its DNF is picked that fits the columns' spaces so far; foreign keys take keys
the parent table holds; columns are drawn in table order, a column compared with an
earlier one (``start_date <= end_date``) bounded by that one's value. The finished row
is then evaluated against every CHECK: a rejection is retried, a CHECK Python cannot
decide goes to the server (``SELECT <expression>``), and UNIQUE keys are probed against
the rows already in the table. ``DrawStats`` keeps the tally (the acceptance rate).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hypothesis import reject
from hypothesis import strategies as st

from pytest_dbarch.constraints import evaluate as ev
from pytest_dbarch.constraints import values
from pytest_dbarch.constraints.checks_parse import Compare, Conjunction, Length, Match, Members, Null, Other, Relation, Rule
from pytest_dbarch.constraints.decoded import ByteSource, Layout
from pytest_dbarch.constraints.evaluate import MIRROR
from pytest_dbarch.constraints.schema import ForeignKey, TableSpec, UniqueKey
from pytest_dbarch.constraints.spaces import Space, coerce as _coerce
from pytest_dbarch.errors import DbarchError

ATTEMPTS = 12
GIVE_UP_AFTER = 20  # draws in a row that kept nothing, after which a draw makes one attempt
SERVER_REFUSED = "refused by the server's evaluation"  # a reason rows are thrown away
MAX_LEAVES = 512  # CHECK branch combinations listed up front; beyond, branches are chosen one by one
REPAIRS = 8  # fresh values for a UNIQUE key that collides, before the row is given up
SWEEP_AFTER = 3  # repairs before candidates are checked in bulk
SWEEP = 256  # candidates a sweep checks at once


class KeysExhausted(DbarchError):
    """Every value a UNIQUE key may take is already in the table."""


class NoParentRows(DbarchError):
    """A NOT NULL foreign key needs a parent row and the parent table is empty."""


class Source(Protocol):
    """The choices of a draw; ``at`` names the column or foreign key a choice is for."""

    def pick(self, n: int) -> int: ...
    def value(self, space: Space, at: str = "") -> Any: ...
    def between(self, space: Space, at: str = "") -> Any: ...
    def leave_null(self, at: str = "") -> bool: ...
    def key_index(self, at: str = "") -> int: ...
    def salt(self) -> int: ...


class RandomSource:
    """Choices from ``random.Random``: fast, no size limit, reproducible from a seed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, n: int) -> int:
        return self.rng.randrange(n)

    def value(self, space: Space, at: str = "") -> Any:
        if space.single:
            return space.allowed[0]  # type: ignore[index]
        return values.sampler(space)(self.rng)

    def between(self, space: Space, at: str = "") -> Any:
        return self.value(space)

    def leave_null(self, at: str = "") -> bool:
        return self.rng.random() < values.NULL_SHARE

    def key_index(self, at: str = "") -> int:
        return self.rng.randrange(2**31)

    def salt(self) -> int:
        return self.rng.getrandbits(32)


class Keys(Protocol):
    def key(self, fk: ForeignKey, index: int) -> tuple[Any, ...] | None: ...


class Uniques(Protocol):
    rows_seen: int  # rows in the table at the last probe: a salt for repairs
    keys: list[UniqueKey]  # the keys probed (none: nothing can collide, no salt drawn)

    def conflicts(self, row: Mapping[str, Any]) -> list[str]: ...
    def free(self, key: UniqueKey, column: str, candidates: list[Any]) -> list[Any]: ...
    def exhausted(self, key: UniqueKey) -> str | None: ...


Verifier = Callable[[Mapping[str, Any], Sequence[Rule]], bool]


@dataclass
class DrawStats:
    """How many candidate rows were drawn and why some were thrown away."""

    candidates: int = 0
    accepted: int = 0
    server_checked: int = 0
    repairs: int = 0  # UNIQUE collisions mended with fresh key values
    unverified: int = 0  # candidates kept with a CHECK only the server can decide, unasked (bulk fills)
    rejected: Counter[str] = field(default_factory=Counter)
    raised: tuple[dict[str, Any], Any] | None = None  # a candidate whose CHECK evaluation raised, and how
    fruitless: int = 0  # draws in a row that kept no candidate (``draw_bytes``)

    def reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    @property
    def decided(self) -> int:
        """Candidates that were kept or thrown away (hypothesis may abandon a draw midway)."""
        return self.accepted + sum(self.rejected.values())

    @property
    def acceptance(self) -> float:
        return self.accepted / self.decided if self.decided else 1.0

    def summary(self) -> str:
        text = f"{self.accepted} of {self.decided} candidate rows kept ({self.acceptance:.0%})"
        if self.server_checked:
            text += f", {self.server_checked} checked by the server"
        if self.repairs:
            text += f", {self.repairs} UNIQUE collisions mended"
        if self.rejected:
            reasons = ", ".join(f"{reason}: {count}" for reason, count in self.rejected.most_common(5))
            text += f"; thrown away: {reasons}"
        return text


@dataclass
class Aim:
    """What a draw aims at besides validity: CHECKs to violate instead of satisfy."""

    violate: Rule | None = None  # a rule to make strictly false (violators, model checks)
    extra: tuple[Rule, ...] = ()  # rules to satisfy that the table does not have (a model's CHECK)
    ignore: frozenset[str] = frozenset()  # rules (by name) the given values already break

    @property
    def plain(self) -> bool:
        return self.violate is None and not self.extra and not self.ignore


def given_on_purpose(spec: TableSpec, given: Mapping[str, Any]) -> Aim:
    """An aim that keeps values given on purpose, even where they break a CHECK by
    themselves or make a whole UNIQUE key (a test that wants the database to refuse
    ``stage='pending'`` or a duplicate email): the rest of the row is still drawn valid."""
    broken = {r.name for r in spec.rules if r.columns and r.columns <= given.keys() and r.holds(given) is False}
    keys = {k.name for k in spec.uniques if k.key_columns and set(k.key_columns) <= given.keys()}
    return Aim(ignore=frozenset(broken | keys))


class Plan:
    """Column spaces once a CHECK branch is chosen for every rule, with what follows from them."""

    __slots__ = ("spaces", "relations", "trusted", "order", "_checks", "_foreign_keys")

    def __init__(self, spaces: dict[str, Space], relations: list[Relation], trusted: frozenset[int]) -> None:
        self.spaces = spaces
        self.relations = relations
        self.trusted = trusted
        self.order = list(spaces.items())
        self._checks: list[Rule] | None = None
        self._foreign_keys: list[tuple[ForeignKey, bool]] | None = None

    def checks(self, drawer: RowDrawer, aim: Aim) -> list[Rule]:
        """The rules a finished row is evaluated against (cached for the default aim)."""
        if not aim.plain:
            return drawer.rules_to_evaluate(aim, self.trusted)
        if self._checks is None:
            self._checks = drawer.rules_to_evaluate(aim, self.trusted)
        return self._checks

    def foreign_keys(self, spec: TableSpec, fixed: Mapping[str, Any]) -> list[tuple[ForeignKey, bool]]:
        """The foreign keys this draw must give a value, each with whether a key is required
        (False: NULL is allowed too). Cached: it depends only on the plan and the fixed names."""
        if self._foreign_keys is None:
            found = []
            for fk in spec.foreign_keys:
                if any(c in fixed or c not in self.spaces for c in fk.columns):
                    continue
                column_spaces = [self.spaces[c] for c in fk.columns]
                if any(s.nulls == "must" for s in column_spaces):
                    continue  # MATCH SIMPLE: a NULL column switches the check off
                found.append((fk, all(s.nulls == "never" for s in column_spaces)))
            self._foreign_keys = found
        return self._foreign_keys


class RowDrawer:
    """Draws rows of one table; stateless between draws apart from the stats."""

    def __init__(self, spec: TableSpec, keys: Keys | None, uniques: Uniques | None,
                 verifier: Verifier | None, stats: DrawStats | None = None, trust_plan: bool = False) -> None:
        """``trust_plan``: do not re-evaluate a CHECK whose chosen branch the spaces enforce
        exactly (bulk fills, where the server filters every CHECK again anyway)."""
        self.spec = spec
        self.trust_plan = trust_plan
        self.keys = keys
        self.uniques = uniques
        self.verifier = verifier
        self.stats = stats if stats is not None else DrawStats()
        self._base = {name: c.space for name, c in spec.columns.items()}
        self._memo: dict[tuple[Any, ...], tuple[dict[str, Space], list[Relation]] | None] = {}
        self._default_ways = self._ways(Aim())
        self._exact: dict[tuple[int, int], bool] = {}
        self._key_columns = {c for fk in spec.foreign_keys for c in fk.columns}
        self._leaves: dict[tuple[Any, ...], Plan] = {}
        self._leaf_lists: dict[tuple[Any, ...], list[Plan] | None] = {}
        self._layout: Layout | None = None

    @property
    def layout(self) -> Layout:
        """Where each choice of a row lies in the bytes ``draw_bytes`` decodes."""
        if self._layout is None:
            self._layout = Layout.of(self._base, {fk.name: fk.columns for fk in self.spec.foreign_keys},
                                      len(self.spec.rules))
        return self._layout

    def draw(self, source: Source, fixed: Mapping[str, Any] | None = None, aim: Aim | None = None,
             attempts: int = ATTEMPTS) -> dict[str, Any] | None:
        for _ in range(attempts):
            row = self.draw_once(source, fixed or {}, aim or Aim())
            if row is not None:
                return row
        return None

    def draw_once(self, source: Source, fixed: Mapping[str, Any], aim: Aim) -> dict[str, Any] | None:
        self.stats.candidates += 1
        plan = self._plan(source, fixed, aim)
        if plan is None:
            return None
        pinned = self.pinned_keys(plan, fixed, source)
        if pinned is None:
            return None
        row: dict[str, Any] = {name: value for name, value in fixed.items() if name not in plan.spaces}
        used: dict[str, Space] = {}
        relations = plan.relations
        for name, space in plan.order:
            if name in fixed:
                row[name] = fixed[name]
                continue
            if name in pinned:
                row[name] = pinned[name]
                continue
            bounded = False
            for relation in relations:
                if relation.left == name and relation.right in row and row[relation.right] is not None:
                    space = space.compare(relation.op, row[relation.right])  # type: ignore[assignment]
                    bounded = True
                elif relation.right == name and relation.left in row and row[relation.left] is not None:
                    space = space.compare(MIRROR[relation.op], row[relation.left])  # type: ignore[assignment]
                    bounded = True
                if space is None:
                    self.stats.reject(f"{relation.left} {relation.op} {relation.right}: no value fits")
                    return None
            try:
                row[name] = source.between(space, name) if bounded else source.value(space, name)
            except values.NoValue:
                self.stats.reject(f"{name}: no value found")
                return None
            used[name] = space
        return self.finish(row, aim, source, used, fixed, plan.checks(self, aim))

    def _plan(self, source: Source, fixed: Mapping[str, Any], aim: Aim) -> Plan | None:
        """The spaces once a branch of every CHECK is chosen. Memoised along the path of
        choices when nothing but the branches varies (bulk fills, plain ``.rows()``)."""
        memo = self._memo if aim.plain and _hashable(fixed) else None
        path: tuple[Any, ...] = (tuple(sorted(fixed.items())),) if memo is not None else ()
        if memo is not None:
            leaves = self._all_leaves(path, fixed)
            if leaves is not None:
                if not leaves:
                    self.stats.reject("no branch of the CHECKs fits them all together")
                    return None
                return leaves[source.pick(len(leaves))] if len(leaves) > 1 else leaves[0]
        spaces = dict(self._base)
        for name, value in fixed.items():
            if name in spaces:
                spaces[name] = Space.exactly(spaces[name].kind, value)
        relations: list[Relation] = []
        trusted: set[int] = set()
        for index, (rule, ways) in enumerate(self._ways(aim) if memo is None else self._default_ways):
            if not ways:
                self.stats.reject(f"no way to {'violate' if rule is aim.violate else 'satisfy'} {rule.name}")
                return None
            start = source.pick(len(ways)) if len(ways) > 1 else 0
            for step in range(len(ways)):
                way = (start + step) % len(ways)
                if memo is not None:
                    key = path + ((index, way),)
                    if key not in memo:
                        if len(memo) > 20_000:
                            memo.clear()
                            self._leaves.clear()
                        memo[key] = narrow(spaces, ways[way])
                    narrowed = memo[key]
                else:
                    narrowed = narrow(spaces, ways[way])
                if narrowed is not None:
                    spaces, found = narrowed
                    relations.extend(found)
                    if memo is not None:
                        path = key
                        if self.trust_plan and self._exactly_enforced(index, way, ways[way]):
                            trusted.add(id(rule))
                    break
            else:
                self.stats.reject(f"{rule.name}: no branch fits")
                return None
        if memo is None:
            return Plan(spaces, relations, frozenset(trusted))
        leaf = self._leaves.get(path)
        if leaf is None:
            leaf = self._leaves[path] = Plan(spaces, relations, frozenset(trusted))
        return leaf

    def leaves(self, fixed: Mapping[str, Any]) -> list[Plan] | None:
        """Every feasible combination of CHECK branches for rows with ``fixed`` values (the
        default aim), or None when there are too many to list or ``fixed`` cannot key them."""
        if not _hashable(fixed):
            return None
        return self._all_leaves((tuple(sorted(fixed.items())),), fixed)

    def _all_leaves(self, key: tuple[Any, ...], fixed: Mapping[str, Any]) -> list[Plan] | None:
        """Every feasible combination of CHECK branches, when there are few (then a draw
        picks one directly); None when there are too many to list."""
        if key in self._leaf_lists:
            return self._leaf_lists[key]
        total = 1
        for _, ways in self._default_ways:
            total *= max(len(ways), 1)
        if total > MAX_LEAVES:
            self._leaf_lists[key] = None
            return None
        start = dict(self._base)
        for name, value in fixed.items():
            if name in start:
                start[name] = Space.exactly(start[name].kind, value)
        partial: list[tuple[dict[str, Space], list[Relation], set[int]]] = [(start, [], set())]
        for index, (rule, ways) in enumerate(self._default_ways):
            grown = []
            for spaces, relations, trusted in partial:
                for way, conjunction in enumerate(ways):
                    narrowed = narrow(spaces, conjunction)
                    if narrowed is None:
                        continue
                    exact = self.trust_plan and self._exactly_enforced(index, way, conjunction)
                    grown.append((narrowed[0], relations + narrowed[1], trusted | ({id(rule)} if exact else set())))
            partial = grown
        leaves = [Plan(spaces, relations, frozenset(trusted)) for spaces, relations, trusted in partial]
        self._leaf_lists[key] = leaves
        return leaves

    def _exactly_enforced(self, index: int, way: int, conjunction: Conjunction) -> bool:
        """Whether the spaces alone guarantee every atom of this branch."""
        key = (index, way)
        if key not in self._exact:
            self._exact[key] = all(self._exact_atom(atom) for atom in conjunction)
        return self._exact[key]

    def _exact_atom(self, atom: Any) -> bool:
        if isinstance(atom, Other):
            return False
        if isinstance(atom, Relation):
            # a foreign key's columns take a parent's key as it is, never bounded by the
            # other column (MusicBrainz's ``entity0 <> entity1`` on two references to area)
            if {atom.left, atom.right} & self._key_columns:
                return False
            left, right = self._base.get(atom.left), self._base.get(atom.right)
            return bool(left and right and left.kind == right.kind and left.kind.ordered)
        space = self._base.get(atom.column)
        if space is None:
            return False
        kind = space.kind
        if isinstance(atom, Null):
            return True
        if isinstance(atom, Compare):
            value = _coerce(kind, atom.value)
            return value is not ev.OPAQUE and (atom.op in ("=", "<>") or kind.ordered)
        if isinstance(atom, Members):
            return all(_coerce(kind, v) is not ev.OPAQUE for v in atom.values)
        if isinstance(atom, Length):
            return kind.sized
        if isinstance(atom, Match):
            return not atom.pattern.locale_sensitive and kind.name == "text"
        return False

    def _ways(self, aim: Aim) -> list[tuple[Rule, list[Conjunction]]]:
        ways = []
        for rule in [*self.spec.rules, *aim.extra]:
            if rule is aim.violate or rule.name in aim.ignore:
                continue
            if rule.dnf is not None and self._controllable(rule):
                ways.append((rule, rule.dnf))
        if aim.violate is not None and aim.violate.violations is not None:
            ways.insert(0, (aim.violate, aim.violate.violations))
        return ways

    def _controllable(self, rule: Rule) -> bool:
        return not (rule.columns & set(self.spec.left_out))

    def pinned_keys(self, plan: Plan, fixed: Mapping[str, Any], source: Source) -> dict[str, Any] | None:
        """Values of the foreign-key columns: a key the parent holds, or NULL; None when
        this draw cannot have one."""
        pinned: dict[str, Any] = {}
        spaces = plan.spaces
        for fk, required in plan.foreign_keys(self.spec, fixed):
            if not required and fk.nullable and source.leave_null(fk.name):
                _null_out(pinned, spaces, fk)
                continue
            key = self.keys.key(fk, source.key_index(fk.name)) if self.keys is not None else None
            if key is None:
                if fk.nullable and not required:
                    _null_out(pinned, spaces, fk)
                    continue
                if self.keys is None:
                    continue
                if fk.nullable:  # only this CHECK branch needs the key: try another branch
                    self.stats.reject(f"{fk.name}: {fk.parent} has no rows")
                    return None
                raise NoParentRows(
                    f"{self.spec.qualified}.{', '.join(fk.columns)} must reference a row of {fk.parent} "
                    f"({fk.name}), and {fk.parent} has none",
                    f"insert parents first, e.g. dbarch_constraints.fill({fk.parent.split('.', 1)[1]!r}, 10)",
                )
            for name, value in zip(fk.columns, key):
                space = spaces[name]
                if space is not self._base[name] and space.admits(value) is False:
                    self.stats.reject(f"{fk.name}: the parent key does not fit the CHECKs")
                    return None
                pinned[name] = value
        return pinned

    def rules_to_evaluate(self, aim: Aim, trusted: frozenset[int]) -> list[Rule]:
        rules = [*self.spec.rules, *aim.extra]
        if aim.violate is not None and aim.violate not in rules:
            rules.append(aim.violate)
        # a rule reading a column the database fills: only the INSERT can tell
        return [r for r in rules if id(r) not in trusted and r.name not in aim.ignore
                and (self._controllable(r) or r is aim.violate)]

    def finish(self, row: dict[str, Any], aim: Aim, source: Source, used: Mapping[str, Space],
                fixed: Mapping[str, Any], rules: list[Rule]) -> dict[str, Any] | None:
        salt = source.salt() if self.uniques is not None and self.uniques.keys else 0
        hit: list[str] = []
        for attempt in range(REPAIRS + 1):
            # a repaired row is judged by every rule: its new key values were not drawn
            # under the plan (a shift moves two columns together, past a CHECK's bounds)
            verdict = self._judge(row, aim, rules if not attempt else self.rules_to_evaluate(aim, frozenset()))
            if verdict is not None:
                self.stats.reject(verdict)
                return None
            hit = [h for h in self.uniques.conflicts(row) if h not in aim.ignore] if self.uniques is not None else []
            if not hit:
                if attempt:
                    self.stats.repairs += 1
                self.stats.accepted += 1
                return row
            rng = random.Random((salt * 1_000_003 + getattr(self.uniques, "rows_seen", 0)) * 101 + attempt)
            repaired = self._repair(row, hit[0], used, fixed, rng, sweep=attempt >= SWEEP_AFTER)
            if repaired is None:
                break
            row = repaired
        self.stats.reject(f"UNIQUE {hit[0]}")
        return None

    def _judge(self, row: dict[str, Any], aim: Aim, rules: list[Rule]) -> str | None:
        """Why the row must be thrown away (a CHECK it breaks), or None when it is good."""
        unsure: list[Rule] = []
        for rule in rules:
            verdict = rule.holds(row) if self._controllable(rule) else ev.OPAQUE
            if verdict is ev.OPAQUE:
                unsure.append(rule)
            elif verdict != (rule is not aim.violate):
                return rule.name
        if unsure and self.verifier is None:
            self.stats.unverified += 1
        if unsure and self.verifier is not None:
            self.stats.server_checked += 1
            keep = [r for r in unsure if r is not aim.violate]
            if keep and not self.verifier(row, keep):
                return SERVER_REFUSED
            if aim.violate in unsure and self.verifier(row, [aim.violate]):
                return f"{aim.violate.name} still holds"  # type: ignore[union-attr]
        return None

    def _repair(self, row: dict[str, Any], key_name: str, used: Mapping[str, Space], fixed: Mapping[str, Any],
                rng: random.Random, sweep: bool = False) -> dict[str, Any] | None:
        """The row with fresh values for the drawn columns of a colliding UNIQUE key (values
        from ``rng``, far from the simple ones hypothesis favours, without new choices, so
        the choices a draw makes never depend on the rows already there). A ``sweep`` asks
        the database which of many candidates are free, for a key whose values run short."""
        key = next((k for k in self.spec.uniques if k.name == key_name), None)
        if key is None:
            return None
        movable = [c for c in key.key_columns if c in used and c not in fixed
                   and not any(c in fk.columns for fk in self.spec.foreign_keys)]
        if not movable:
            why = None if self.uniques is None or any(c in fixed for c in key.key_columns) else self.uniques.exhausted(key)
            if why is not None:
                raise KeysExhausted(why, "add rows to the parent tables first (e.g. dbarch_constraints.fill(parent, n)), "
                                         "or draw fewer rows of this table")
            return None
        repaired = dict(row)
        try:
            if sweep and key.plain and len(movable) == 1 == len(key.key_columns) and self.uniques is not None:
                name = movable[0]
                space = used[name]
                candidates = list(dict.fromkeys(values.sampler(space)(rng) for _ in range(SWEEP)))
                free = self.uniques.free(key, name, [c for c in candidates if c is not None])
                if not free:
                    raise KeysExhausted(
                        f"{self.spec.qualified}: no free value for UNIQUE {key.name} ({name}) among {len(candidates)} "
                        "drawn from what its type and CHECKs allow: the rows already there take them",
                        "insert fewer rows, or delete some, before drawing more",
                    )
                repaired[name] = free[0]
                return repaired
            shifted = self._shifted(row, movable, used, rng)
            if shifted is not None:
                return shifted
            for name in movable:
                repaired[name] = values.sampler(used[name])(rng)
        except values.NoValue:
            return None
        return repaired

    def _shifted(self, row: dict[str, Any], movable: list[str], used: Mapping[str, Space],
                 rng: random.Random) -> dict[str, Any] | None:
        """The key's columns moved together by one random distance, when they count in the
        same steps (``tsrange(starts, ends)``): drawn apart, ``ends > starts`` would break."""
        if len(movable) < 2 or len({used[c].kind for c in movable}) != 1 or any(row[c] is None for c in movable):
            return None
        units = values.units(used[movable[0]].kind)
        if units is None:
            return None
        to_units, from_units = units
        fresh = values.sampler(used[movable[0]])(rng)
        if fresh is None:
            return None
        distance = to_units(fresh, False) - to_units(row[movable[0]], False)
        shifted = dict(row)
        try:
            for name in movable:
                shifted[name] = from_units(to_units(row[name], False) + distance)
        except (OverflowError, ValueError):
            return None
        if any(used[c].admits(shifted[c]) is False for c in movable):
            return None
        return shifted


def _bound_by_each_other(spaces: dict[str, Space], relation: Relation) -> bool:
    """Narrow both sides of ``left <op> right`` by the other's static bounds, so that the
    column drawn first leaves room for the second (``starts`` never at the last date when
    ``ends > starts``). False when no pair of values can satisfy it."""
    left, right = spaces[relation.left], spaces[relation.right]
    if left.kind != right.kind or not left.kind.ordered or relation.op in ("=", "<>"):
        return True
    op = relation.op
    mirrored = MIRROR[op]
    bound_for_left = right.low if op in (">", ">=") else right.high
    if bound_for_left is not None:
        narrowed = left.compare(op, bound_for_left)
        if narrowed is None:
            return False
        left = narrowed
    bound_for_right = left.high if op in (">", ">=") else left.low
    if bound_for_right is not None:
        narrowed = right.compare(mirrored, bound_for_right)
        if narrowed is None:
            return False
        right = narrowed
    spaces[relation.left], spaces[relation.right] = left, right
    return True


def _hashable(fixed: Mapping[str, Any]) -> bool:
    try:
        hash(tuple(fixed.items()))
    except TypeError:
        return False
    return True


def _null_out(pinned: dict[str, Any], spaces: Mapping[str, Space], fk: ForeignKey) -> None:
    for name in fk.columns:
        if spaces[name].nulls != "never":
            pinned[name] = None


def narrow(spaces: dict[str, Space], conjunction: Conjunction) -> tuple[dict[str, Space], list[Relation]] | None:
    """The spaces with every atom of ``conjunction`` applied; None when they contradict."""
    narrowed = dict(spaces)
    relations: list[Relation] = []
    for atom in conjunction:
        if isinstance(atom, Other):
            continue
        if isinstance(atom, Relation):
            if atom.left not in narrowed or atom.right not in narrowed:
                continue
            for name in (atom.left, atom.right):
                space = narrowed[name].restrict(Null(name, negated=True))
                if space is None:
                    return None
                narrowed[name] = space
            if not _bound_by_each_other(narrowed, atom):
                return None
            relations.append(atom)
            continue
        if atom.column not in narrowed:
            continue
        space = narrowed[atom.column].restrict(atom)
        if space is None:
            return None
        narrowed[atom.column] = space
    return narrowed, relations


# --- the hypothesis strategy of ``.rows(table)``

def strategy(drawer: RowDrawer, overrides: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Rows the database accepts; ``overrides`` pins columns to values or strategies."""

    @st.composite
    def rows(draw: Callable[[st.SearchStrategy[Any]], Any]) -> dict[str, Any]:
        fixed = {name: draw(value) if isinstance(value, st.SearchStrategy) else value
                 for name, value in overrides.items()}
        aim = given_on_purpose(drawer.spec, fixed) if fixed else None
        row = draw_bytes(drawer, draw, fixed, aim)
        if row is None:
            reject()
        return row  # type: ignore[return-value]

    return rows()


def draw_bytes(drawer: RowDrawer, draw: Callable[[st.SearchStrategy[Any]], Any], fixed: Mapping[str, Any] | None,
               aim: Aim | None, attempts: int = ATTEMPTS) -> dict[str, Any] | None:
    """A row from one hypothesis choice (``decoded``): a fixed-size string of bytes, decoded
    slot by slot. An attempt thrown away is followed by bytes derived from the same choice,
    not by another choice: whether an attempt is thrown away can depend on the rows in the
    table (a UNIQUE or exclusion collision), and hypothesis must see the same choices for
    the same row whatever the table holds, or it calls the strategy flaky."""
    layout = drawer.layout
    data = draw(st.binary(min_size=layout.size, max_size=layout.size))
    stats = drawer.stats
    if stats.fruitless >= GIVE_UP_AFTER:
        attempts = 1  # a table with no room left: let hypothesis' own give-up come quickly
    for attempt in range(attempts):
        source = data if not attempt else hashlib.shake_256(data + attempt.to_bytes(2, "big")).digest(layout.size)
        row = drawer.draw_once(ByteSource(source, layout), fixed or {}, aim or Aim())
        if row is not None:
            stats.fruitless = 0
            return row
    stats.fruitless += 1
    return None
