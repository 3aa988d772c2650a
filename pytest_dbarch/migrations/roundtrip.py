"""Round trips: every revision upgraded, downgraded and upgraded again, compared by catalog.

One database and one connection serve the whole history: revisions are applied base
first (branches and merges in an order where parents come first), and each one is
round-tripped against the state its parents left:

    S0 = snapshot; upgrade; S1 = snapshot; downgrade; S2 = snapshot (must equal S0);
    upgrade; S3 = snapshot (must equal S1)

The next revision starts from S3, so each revision costs three snapshots. When a round
trip leaves the database different, it is rebuilt (a fresh database upgraded through the
revisions applied so far) so later revisions are judged on a clean state, and every
failing revision is reported, not only the first. Observers hear the first upgrade only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.migrations import diff, snapshot
from pytest_dbarch.migrations.observe import StatementObserver
from pytest_dbarch.migrations.runners import MigrationError, MigrationRunner, Revision, StatementRelay
from pytest_dbarch.migrations.scratch import Scratch, ScratchDatabase, scratch_public

ROUND_TRIP = "migrations.round-trip"
DATA_ROUND_TRIP = "migrations.data-round-trip"


@dataclass
class Outcome:
    """What the walk over the history found, keyed by (check, revision id)."""

    findings: dict[tuple[str, str], list[Finding]] = field(default_factory=dict)
    head_snapshot: snapshot.Snapshot | None = None
    metadata: Any = None
    seconds: float = 0.0

    def add(self, check: str, revision: str, finding: Finding) -> None:
        self.findings.setdefault((check, revision), []).append(finding)


def relative(path: str, rootdir: str | Path) -> str:
    try:
        return os.path.relpath(path, rootdir)
    except ValueError:
        return path


class RoundTrip:
    """Walks one history through round trips on one disposable database."""

    def __init__(
        self,
        runner: MigrationRunner,
        scratch: Scratch,
        *,
        rootdir: str | Path = ".",
        observers: Callable[[], Sequence[StatementObserver]] = tuple,
        floor: str | None = None,
        data: bool = True,
        at_head: Callable[[MigrationRunner, ScratchDatabase], None] | None = None,
        only: frozenset[str] | None = None,
    ) -> None:
        self.runner = runner
        self.scratch = scratch
        self.rootdir = rootdir
        self.observers = observers
        self.floor = floor
        self.data = data
        self.at_head = at_head
        self.only = only
        self.outcome = Outcome()
        self._db: ScratchDatabase | None = None
        self._s1 = snapshot.Snapshot()
        self._empty: snapshot.Snapshot | None = None
        self._empty_public: tuple[str, ...] = ()

    # --- the walk ---

    def run(self) -> Outcome:
        import time

        started = time.perf_counter()
        revisions = self.runner.revisions()
        exempt = self._below_floor(revisions)
        applied: list[Revision] = []
        blocked: dict[str, str] = {}
        self._open()
        try:
            self._empty = self._snap_all()
            self._empty_public = scratch_public(self.runner.connection())
            current: snapshot.Snapshot | None = None
            for rev in revisions:
                cause = next((blocked[d] for d in rev.down if d in blocked), None)
                if cause is not None:
                    blocked[rev.id] = cause
                    self._not_checked(rev, cause)
                    continue
                if self.only is not None and rev.id not in self.only:
                    if self._upgrade_only(rev):
                        applied.append(rev)
                        current = None  # snapshot taken only when a checked revision needs it
                        continue
                    after = None
                else:
                    current = current if current is not None else self._snap()
                    after = self._one(rev, current, applied, exempt.get(rev.id))
                if after is None:
                    blocked[rev.id] = rev.id
                    current = None
                    self._rebuild(applied)
                    continue
                applied.append(rev)
                current = after
            self.outcome.head_snapshot = current if current is not None else self._snap()
            self.outcome.metadata = self.runner.target_metadata()
            if self.at_head is not None and self._db is not None:
                self.at_head(self.runner, self._db)
        finally:
            self._close()
        self.outcome.seconds = time.perf_counter() - started
        return self.outcome

    def _upgrade_only(self, rev: Revision) -> bool:
        """A revision outside the checked set: applied, not judged (unless it fails)."""
        try:
            self.runner.upgrade(rev)
        except MigrationError as exc:
            self._error(rev, f"revision {rev.id}: upgrade failed", exc)
            return False
        return True

    def _one(
        self, rev: Revision, s0: snapshot.Snapshot, applied: list[Revision], floor_reason: str | None
    ) -> snapshot.Snapshot | None:
        """Round-trip ``rev``; the snapshot it leaves, or None if its upgrade failed."""
        relay = StatementRelay(self.observers(), rev)
        try:
            self.runner.upgrade(rev, relay)
        except MigrationError as exc:
            self._record_observed(rev, relay)
            self._error(rev, f"revision {rev.id}: upgrade failed", exc)
            return None
        self._record_observed(rev, relay)
        s1 = self._s1 = self._snap()
        waiver = rev.waivers["one-way"] if "one-way" in rev.waivers else floor_reason
        if waiver is not None:
            self._waived(rev, waiver)
            return s1
        seeded = self._seed(rev, s0, s1)
        try:
            self.runner.downgrade(rev)
        except MigrationError as exc:
            self._fail(rev, f"revision {rev.id}: downgrade raised {exc.reason}", [str(exc)], exc.fix, exc.where)
            return self._restore(rev, applied, s1)
        s2 = self._snap()
        default_problems = self._check_defaults(rev, s0, s2) if seeded is not None else []
        lost = diff.compare(s0, s2)
        try:
            self.runner.upgrade(rev)
        except MigrationError as exc:
            self._round_trip_verdict(rev, lost, [f"upgrade after the downgrade failed: {exc.cause}"])
            self._data_verdict(rev, seeded, default_problems, None)
            return self._rebuild(applied + [rev])
        s3 = self._snap()
        again = diff.compare(s1, s3, lost="missing after upgrading again", extra="extra after upgrading again")
        self._round_trip_verdict(rev, lost, again)
        self._data_verdict(rev, seeded, default_problems, self._verify(seeded))
        if lost or again:
            return self._rebuild(applied + [rev])
        return s3

    # --- verdicts ---

    def _finding(self, rule: str, status: Status, title: str, rev: Revision, evidence: str = "", fix: str = "") -> Finding:
        return Finding(
            rule=rule,
            area=Area.MIGRATIONS,
            status=status,
            title=title,
            evidence=evidence,
            where=f"{relative(rev.path, self.rootdir)} (revision {rev.id})",
            fix=fix,
        )

    def _round_trip_verdict(self, rev: Revision, lost: list[str], again: list[str]) -> None:
        if not lost and not again:
            self.outcome.add(
                "round-trip",
                rev.id,
                self._finding(
                    ROUND_TRIP,
                    Status.PASSED,
                    f"revision {rev.id}: downgrade restores the schema and upgrading again reproduces it",
                    rev,
                ),
            )
            return
        evidence = []
        if lost:
            evidence.append(f"after downgrading {rev.id} (compared with before its upgrade):")
            evidence += [f"  {line}" for line in lost]
        if again:
            evidence.append(f"after upgrading {rev.id} again (compared with its first upgrade):")
            evidence += [f"  {line}" for line in again]
        first = (lost or again)[0]
        more = len(lost) + len(again) - 1
        title = f"revision {rev.id}: downgrade does not restore the schema: {first}" + (
            f" (+{more} more)" if more else ""
        )
        self.outcome.add(
            "round-trip",
            rev.id,
            self._finding(
                ROUND_TRIP,
                Status.FAILED,
                title,
                rev,
                "\n".join(evidence),
                f"make downgrade() of revision {rev.id} undo exactly what upgrade() does: "
                "drop what it left behind and restore what it lost (see the evidence), or waive "
                "the revision with dbarch_one_way = '<reason>' if it is meant to be irreversible",
            ),
        )

    def _fail(self, rev: Revision, title: str, evidence: list[str], fix: str, where: str = "") -> None:
        finding = self._finding(ROUND_TRIP, Status.FAILED, title, rev, "\n".join(evidence), fix)
        if where:
            finding = replace(finding, where=self._where(where))
        self.outcome.add("round-trip", rev.id, finding)

    def _error(self, rev: Revision, title: str, exc: MigrationError) -> None:
        finding = Finding(
            rule=ROUND_TRIP,
            area=Area.MIGRATIONS,
            status=Status.ERROR,
            title=f"{title}: {exc.reason}",
            evidence=str(exc),
            where=self._where(exc.where) if exc.where else relative(rev.path, self.rootdir),
            fix=exc.fix,
        )
        self.outcome.add("round-trip", rev.id, finding)

    def _where(self, where: str) -> str:
        path, _, line = where.rpartition(":")
        if path and line.isdigit():
            return f"{relative(path, self.rootdir)}:{line}"
        return relative(where, self.rootdir)

    def _waived(self, rev: Revision, reason: str) -> None:
        if not reason:
            self.outcome.add(
                "round-trip",
                rev.id,
                self._finding(
                    ROUND_TRIP,
                    Status.FAILED,
                    f"revision {rev.id}: waiver without a reason",
                    rev,
                    fix="write the reason in the waiver, e.g. dbarch_one_way = 'splits names irreversibly'",
                ),
            )
            return
        self.outcome.add(
            "round-trip",
            rev.id,
            self._finding(ROUND_TRIP, Status.WARNING, f"revision {rev.id}: round trip waived: {reason}", rev),
        )

    def _not_checked(self, rev: Revision, cause: str) -> None:
        self.outcome.add(
            "round-trip",
            rev.id,
            self._finding(
                ROUND_TRIP,
                Status.ERROR,
                f"revision {rev.id}: not checked, because revision {cause} (an ancestor) failed to upgrade",
                rev,
                fix=f"fix revision {cause} first",
            ),
        )

    def _record_observed(self, rev: Revision, relay: StatementRelay) -> None:
        for finding in relay.findings:
            path, colon, line = finding.where.rpartition(":")
            if colon and os.path.isabs(path):  # the statement's file:line, as the other checks show it
                finding = replace(finding, where=f"{relative(path, self.rootdir)}:{line}")
            self.outcome.add("lock-safety", rev.id, finding)

    # --- data round trip (see data_roundtrip.py) ---

    def _seed(self, rev: Revision, s0: snapshot.Snapshot, s1: snapshot.Snapshot) -> Any:
        if not self.data:
            return None
        from pytest_dbarch.migrations import data_roundtrip

        return data_roundtrip.seed(self.runner.connection(), s0, s1)

    def _check_defaults(self, rev: Revision, s0: snapshot.Snapshot, s2: snapshot.Snapshot) -> list[str]:
        from pytest_dbarch.migrations import data_roundtrip

        tables = data_roundtrip.changed_tables(s0, self._s1) + data_roundtrip.changed_tables(s0, s2)
        return data_roundtrip.insert_with_defaults(self.runner.connection(), s0, s2, tables)

    def _verify(self, seeded: Any) -> list[str] | None:
        if seeded is None:
            return None
        from pytest_dbarch.migrations import data_roundtrip

        problems = data_roundtrip.verify(self.runner.connection(), seeded)
        data_roundtrip.remove(self.runner.connection(), seeded)
        return problems

    def _data_verdict(self, rev: Revision, seeded: Any, default_problems: list[str], lost_rows: list[str] | None) -> None:
        if seeded is None:
            return
        from pytest_dbarch.migrations import data_roundtrip

        finding = data_roundtrip.verdict(rev, seeded, default_problems, lost_rows, self._finding)
        self.outcome.add("data-round-trip", rev.id, finding)

    # --- the database ---

    def _open(self) -> None:
        self._db = self.scratch.create()
        try:
            self.runner.open(self._db.url, self._db.dsn)
        except BaseException:
            self._close()
            raise

    def _close(self) -> None:
        self.runner.close()
        if self._db is not None:
            self.scratch.drop(self._db)
            self._db = None

    def _snap_all(self) -> snapshot.Snapshot:
        return snapshot.take(self.runner.connection())

    def _snap(self) -> snapshot.Snapshot:
        return snapshot.take(self.runner.connection(), [self.runner.version_table])

    def _restore(self, rev: Revision, applied: list[Revision], expected: snapshot.Snapshot) -> snapshot.Snapshot | None:
        """After a downgrade that raised: keep going if it rolled back cleanly."""
        now = self._snap()
        return now if now == expected else self._rebuild(applied + [rev])

    def _rebuild(self, revisions: list[Revision]) -> snapshot.Snapshot | None:
        """The database emptied and upgraded through ``revisions`` (no observers, no checks).

        Emptying in place (dropping the schemas) costs milliseconds where a new database
        costs a checkpoint; a fresh database is made only if the emptied one is not
        exactly as empty as when the walk began.
        """
        if self._empty is None or not self._empty_in_place():
            self._close()
            self._open()
        for rev in revisions:
            self.runner.upgrade(rev)
        return self._snap()

    def _empty_in_place(self) -> bool:
        from pytest_dbarch.migrations import scratch

        try:
            scratch.empty(self.runner.connection(), self._empty_public)
        except Exception:
            return False
        return self._snap_all() == self._empty

    def _below_floor(self, revisions: list[Revision]) -> dict[str, str]:
        """Revisions never downgraded: the floor (setting or dbarch_min_downgrade) and its ancestors."""
        floors = {r.id: r.waivers["min-downgrade"] for r in revisions if "min-downgrade" in r.waivers}
        if self.floor:
            if self.floor not in {r.id for r in revisions}:
                raise MigrationError(
                    f"dbarch_migrations_min_downgrade names revision {self.floor!r}, which is not in the history",
                    "name an existing revision id",
                )
            floors.setdefault(self.floor, f"at or below the minimum downgrade revision {self.floor} (setting)")
        parents = {r.id: r.down for r in revisions}
        exempt: dict[str, str] = {}
        for floor, reason in floors.items():
            stack = [floor]
            while stack:
                rid = stack.pop()
                if rid in exempt:
                    continue
                exempt[rid] = reason if rid == floor else f"below the minimum downgrade revision {floor}: {reason}"
                stack.extend(parents.get(rid, ()))
        return exempt
