"""A ``RowDrawer`` wired to a database: live keys and UNIQUE probes, or preloaded keys.

Live wiring (``.rows()``, factories, the checks) asks the database at every draw, so rows
inserted between draws (by the test, by earlier hypothesis examples) are seen: no UNIQUE
collision across examples, foreign keys always point at rows that exist now. Loaded
wiring (``.fill()``) reads the parents' keys once and leaves collisions with existing rows
to ``ON CONFLICT DO NOTHING``, which is what makes ten thousand rows a second possible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_dbarch.constraints.checks_parse import Rule
from pytest_dbarch.constraints.probe import Probe
from pytest_dbarch.constraints.rows import DrawStats, RowDrawer
from pytest_dbarch.constraints.schema import ForeignKey, TableSpec, UniqueKey


class LiveKeys:
    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    def key(self, fk: ForeignKey, index: int) -> tuple[Any, ...] | None:
        return self.probe.parent_key(fk, index)


class CachedKeys:
    """Parent keys read once per parent and kept: for the built-in checks, whose parents only
    change through their own fills (``forget()`` after one)."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.keys: dict[str, list[tuple[Any, ...]]] = {}

    def key(self, fk: ForeignKey, index: int) -> tuple[Any, ...] | None:
        if fk.name not in self.keys or not self.keys[fk.name]:
            self.keys[fk.name] = self.probe.parent_keys(fk, limit=10_000)
        found = self.keys[fk.name]
        return found[index % len(found)] if found else None

    def forget(self) -> None:
        self.keys.clear()


class LoadedKeys:
    """Parent keys read once; ``extra`` adds keys known to exist (e.g. rows of the same batch)."""

    def __init__(self, keys: dict[str, list[tuple[Any, ...]]]) -> None:
        self.keys = keys

    def key(self, fk: ForeignKey, index: int) -> tuple[Any, ...] | None:
        found = self.keys.get(fk.name)
        if not found:
            return None
        return found[index % len(found)]


class LiveUniques:
    def __init__(self, probe: Probe, spec: TableSpec, ignore: frozenset[str] = frozenset()) -> None:
        self.probe = probe
        self.spec = spec
        self.keys = [k for k in spec.uniques
                     if k.name not in ignore and not any(c in spec.left_out for c in k.columns)]
        self.names = {k.name for k in self.keys}
        self.rows_seen = 0

    def conflicts(self, row: Mapping[str, Any]) -> list[str]:
        if not self.keys:
            return []
        hits, self.rows_seen = self.probe.conflicts(self.spec, row, self.keys)
        if not hits and self.spec.table.before_insert_triggers:
            stored = self.probe.stored_collision(self.spec, row)
            if stored is not None and stored in self.names:
                hits = [stored]
        return hits

    def free(self, key: UniqueKey, column: str, candidates: list[Any]) -> list[Any]:
        return self.probe.free_values(self.spec, key, column, candidates)

    def exhausted(self, key: UniqueKey) -> str | None:
        """Why no new row can take ``key``, when its columns are foreign keys only and
        every value their parents offer is taken (else None: a collision, not the end)."""
        fks = [fk for fk in self.spec.foreign_keys if set(fk.columns) <= set(key.key_columns)]
        covered = sorted(c for fk in fks for c in fk.columns)
        if not key.plain or key.predicate is not None or covered != sorted(key.key_columns):
            return None
        offered, held = self.probe.key_room(self.spec, key, fks)
        if held < offered:
            return None
        parents = ", ".join(dict.fromkeys(fk.parent for fk in fks))
        return (f"{self.spec.qualified}: every value of UNIQUE {key.name} ({', '.join(key.key_columns)}) that the "
                f"rows of {parents} offer is taken: {held} rows hold {offered} possible")


class BatchUniques:
    """Plain UNIQUE keys kept unique within one batch (existing rows: ON CONFLICT)."""

    def __init__(self, spec: TableSpec) -> None:
        self.keys = [k for k in spec.uniques if k.plain and k.predicate is None
                     and not any(c in spec.left_out for c in k.columns)]
        self.seen: dict[str, set[tuple[Any, ...]]] = {k.name: set() for k in self.keys}
        self.rows_seen = 0

    def conflicts(self, row: Mapping[str, Any]) -> list[str]:
        hits = []
        values = {}
        for key in self.keys:
            value = tuple(_hashable(row.get(c)) for c in key.key_columns)
            if None in value and not key.nulls_not_distinct:
                continue
            if value in self.seen[key.name]:
                hits.append(key.name)
            values[key.name] = value
        if not hits:
            for name, value in values.items():
                self.seen[name].add(value)
        self.rows_seen += 1
        return hits

    def free(self, key: UniqueKey, column: str, candidates: list[Any]) -> list[Any]:
        taken = self.seen.get(key.name, set())
        return [c for c in candidates if (_hashable(c),) not in taken]

    def exhausted(self, key: UniqueKey) -> str | None:
        """Never known here: a batch is inserted with ON CONFLICT, and ``.fill`` reports
        the rows it could not insert."""
        return None


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return repr(sorted(value.items()))
    if isinstance(value, str):
        return value.rstrip(" ")  # char(n) and text compare alike for our draws
    return value


class CheckRaised(Exception):
    """The server raised (a data exception) while judging a candidate: stop and report it."""

    def __init__(self, row: dict[str, Any], outcome: Any) -> None:
        super().__init__(outcome.describe())
        self.row = row
        self.outcome = outcome


def live_drawer(spec: TableSpec, probe: Probe, stats: DrawStats | None = None,
                ignore_keys: frozenset[str] = frozenset(), keys: Any = None,
                stop_on_raise: bool = False, trust_plan: bool = False) -> RowDrawer:
    """Keys and UNIQUE probes asked of the database at every draw (``keys`` may be a
    ``CachedKeys``); ``ignore_keys``: UNIQUE keys a row may collide with (a violator of that
    key is being built); ``stop_on_raise``: a CHECK that raises on a candidate ends the draw
    with ``CheckRaised`` instead of being filtered around."""

    drawer: RowDrawer

    def verify(row: Mapping[str, Any], rules: Sequence[Rule]) -> bool:
        probe.last_refusal = None
        accepted = probe.accepts(spec, row, rules)
        refusal = probe.last_refusal
        if refusal is not None:
            if drawer.stats.raised is None:
                drawer.stats.raised = (dict(row), refusal)  # evidence for a CHECK that raises
            if stop_on_raise and (refusal.sqlstate or "").startswith("22"):
                raise CheckRaised(dict(row), refusal)
        return accepted

    drawer = RowDrawer(spec, keys or LiveKeys(probe), LiveUniques(probe, spec, ignore_keys), verify, stats,
                       trust_plan=trust_plan)
    return drawer
