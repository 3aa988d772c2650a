"""What every constraint check works with: the database, its tables, the models, the settings.

Shared by the four checks (``valid_rows``, ``violators``, ``model_checks``,
``referential``), which never import each other.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from pytest_dbarch.constraints.draws import CachedKeys, live_drawer
from pytest_dbarch.constraints.fill import Filler
from pytest_dbarch.constraints.intent import Intent
from pytest_dbarch.constraints.probe import Probe
from pytest_dbarch.constraints.rows import Aim, DrawStats, RandomSource, RowDrawer
from pytest_dbarch.constraints.schema import TableSpec
from pytest_dbarch.constraints.skips import Skips
from pytest_dbarch.postgres.catalog import Catalog

RULE_PREFIX = "constraints."


def quiet() -> Any:
    """Hypothesis' own printing (falsifying examples, seeds) off: the Finding carries the
    minimal row, and a user's terminal is not the place for a check's inner runs."""
    from hypothesis.reporting import with_reporter

    return with_reporter(lambda message: None)


def check_settings(base: hypothesis_settings | None = None) -> hypothesis_settings:
    """The user's active hypothesis profile, minus what makes no sense on a database:
    no deadline (round trips are not the code under test), no too-slow / filter health
    checks (acceptance is reported instead)."""
    base = base or hypothesis_settings()
    suppressed = set(base.suppress_health_check) | {
        HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture,
        HealthCheck.differing_executors, HealthCheck.data_too_large,
    }
    return hypothesis_settings(base, deadline=None, suppress_health_check=list(suppressed))


@dataclass
class Context:
    probe: Probe
    catalog: Catalog
    specs: Callable[[str], TableSpec]
    intent: Intent
    settings: hypothesis_settings
    skips: Skips = field(default_factory=Skips)
    seed: int = 0
    stats: dict[str, DrawStats] = field(default_factory=dict)
    keys: CachedKeys = field(init=False)

    def __post_init__(self) -> None:
        self.keys = CachedKeys(self.probe)

    def rng(self, salt: str) -> random.Random:
        return random.Random(self.seed ^ zlib.crc32(salt.encode()))

    def drawer(self, spec: TableSpec, stats: DrawStats | None = None,
               ignore_keys: frozenset[str] = frozenset(), stop_on_raise: bool = False) -> RowDrawer:
        """Rows drawn against the database; parent keys read once per parent (the checks
        change parents only through ``ensure_parents``, which forgets them)."""
        return live_drawer(spec, self.probe, stats, ignore_keys, self.keys, stop_on_raise)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Everything inside is undone afterwards, and the parent keys read meanwhile are
        forgotten: they may name rows the rollback removed."""
        try:
            with self.probe.savepoint():
                yield
        finally:
            self.keys.forget()

    def filler(self) -> Filler:
        return Filler(self.probe, self.specs, self.rng("fill"))

    def ensure_parents(self, spec: TableSpec, rows: int = 3) -> None:
        """Empty parent tables of ``spec``'s foreign keys get a few rows, so keys can be drawn
        (a NOT NULL self-reference too: the filler lets the first row point at itself)."""
        filler = self.filler()
        for fk in spec.foreign_keys:
            if self.probe.parent_keys(fk, limit=1) or (fk.self_reference and fk.nullable):
                continue
            filler.fill(spec if fk.self_reference else self.specs(fk.parent), rows)
            self.keys.forget()

    def row(self, spec: TableSpec, salt: str, fixed: dict[str, Any] | None = None, aim: Aim | None = None,
            attempts: int = 60, ignore_keys: frozenset[str] = frozenset()) -> dict[str, Any] | None:
        """One row drawn with ``random`` (reproducible from the seed and ``salt``)."""
        return self.drawer(spec, None, ignore_keys).draw(RandomSource(self.rng(salt)), fixed, aim, attempts)
