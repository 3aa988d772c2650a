"""What walking a history costs before any check: the floor under ``dbarch migrations check``.

Two walks over one Alembic history, each on a fresh database of the given server, env.py
run once per walk as the checker runs it, with no catalog snapshot, no seeded rows, no
lint and no lock report:

- ``round trip``: pytest-dbarch's own walk (every revision upgraded, downgraded and
  upgraded again; the rebuilds a failing step forces) with the catalog reads and the
  data round trip taken out. It cannot see a schema difference, so it rebuilds less
  often than the real check: a floor, not an estimate.
- ``schema only``: the same walk with its catalog snapshots and schema comparisons (the
  round-trip check itself), still without lint, lock report or data round trip: what
  the one check pytest-alembic's up/down test compares with costs on its own.
- ``observers only``: the first walk with the lock-safety lint and the lock report on (as
  in the real check), still without snapshots or seeded rows: the check's cost were its
  snapshots free.
- ``two steps``: pytest-alembic's shape (upgrade revision by revision to head, then
  downgrade revision by revision until the first downgrade fails), without its cost of
  running env.py again for every step.

    python benchmarks/history_floor.py ALEMBIC_INI DSN    # prints one JSON line

``bench_histories.py`` runs it for every history beside the real check and pytest-alembic.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def round_trip_floor(ini: Path, databases: object) -> tuple[float, int, int]:
    from pytest_dbarch.migrations import snapshot
    from pytest_dbarch.migrations.alembic_runner import AlembicRunner
    from pytest_dbarch.migrations.roundtrip import RoundTrip
    from pytest_dbarch.migrations.scratch import Scratch

    class Blind(RoundTrip):
        def _snap(self) -> snapshot.Snapshot:  # no catalog read: every state looks the same
            return snapshot.Snapshot()

    started = time.perf_counter()
    outcome = Blind(AlembicRunner(ini), Scratch(databases), rootdir=ini.parent, data=False).run()  # type: ignore[arg-type]
    return time.perf_counter() - started, outcome.steps, outcome.rebuilds


def observers_floor(ini: Path, databases: object) -> tuple[float, int, int]:
    """The walk with no catalog snapshot and no data round trip, but with the lock-safety
    lint and the lock report watching every first upgrade as in the real check: what the
    check costs if its snapshots cost nothing."""
    from pytest_dbarch.migrations import snapshot, suite
    from pytest_dbarch.migrations.alembic_runner import AlembicRunner
    from pytest_dbarch.migrations.roundtrip import RoundTrip
    from pytest_dbarch.migrations.scratch import Scratch

    class Blind(RoundTrip):
        def _snap(self) -> snapshot.Snapshot:
            return snapshot.Snapshot()

    factories = suite.default_observers(suite.Options())
    started = time.perf_counter()
    outcome = Blind(
        AlembicRunner(ini), Scratch(databases), rootdir=ini.parent, data=False,  # type: ignore[arg-type]
        observers=lambda: [make() for make in factories],
    ).run()
    return time.perf_counter() - started, outcome.steps, outcome.rebuilds


def schema_floor(ini: Path, databases: object) -> tuple[float, int, int]:
    from pytest_dbarch.migrations.alembic_runner import AlembicRunner
    from pytest_dbarch.migrations.roundtrip import RoundTrip
    from pytest_dbarch.migrations.scratch import Scratch

    started = time.perf_counter()
    outcome = RoundTrip(AlembicRunner(ini), Scratch(databases), rootdir=ini.parent, data=False).run()  # type: ignore[arg-type]
    return time.perf_counter() - started, outcome.steps, outcome.rebuilds


def two_step_floor(ini: Path, databases: object) -> tuple[float, int]:
    from pytest_dbarch.migrations.alembic_runner import AlembicRunner
    from pytest_dbarch.migrations.runners import MigrationError, Step, Walk
    from pytest_dbarch.migrations.scratch import Scratch

    started = time.perf_counter()
    runner = AlembicRunner(ini)
    revisions = runner.revisions()
    scratch = Scratch(databases)  # type: ignore[arg-type]
    db = scratch.create()
    steps = 0

    def walk() -> Walk:
        nonlocal steps
        for rev in revisions:
            steps += 1
            yield Step(rev, True)
        for rev in reversed(revisions):
            steps += 1
            try:
                yield Step(rev, False)
            except MigrationError:
                return  # pytest-alembic's up/down test stops at the first failing downgrade

    try:
        runner.open(db.url, db.dsn)
        runner.drive(walk())
    finally:
        runner.close()
        scratch.drop(db)
    return time.perf_counter() - started, steps


def main() -> None:
    ini, dsn = Path(sys.argv[1]).resolve(), sys.argv[2]
    from pytest_dbarch.config import Settings
    from pytest_dbarch.postgres.databases import Databases

    os.chdir(ini.parent)
    databases = Databases(Settings(dsn=dsn, sources={"dsn": "the DSN argument"}, rootdir=str(ini.parent)), "floor")
    databases.start()
    try:
        round_trip, steps, rebuilds = round_trip_floor(ini, databases)
        schema, schema_steps, schema_rebuilds = schema_floor(ini, databases)
        observed, observed_steps, _ = observers_floor(ini, databases)
        two_steps, two_step_count = two_step_floor(ini, databases)
    finally:
        databases.close()
    print(json.dumps({
        "round_trip": round_trip, "round_trip_steps": steps, "round_trip_rebuilds": rebuilds,
        "schema_only": schema, "schema_steps": schema_steps, "schema_rebuilds": schema_rebuilds,
        "observers_only": observed, "observers_steps": observed_steps,
        "two_steps": two_steps, "two_step_count": two_step_count,
    }))


if __name__ == "__main__":
    main()
