"""Round trips: every revision upgraded, downgraded and upgraded again, compared by catalog.

One database serves the whole history: revisions are applied base first (branches and
merges in an order where parents come first), and each one is round-tripped against
the state its parents left:

    S0 = snapshot; upgrade; S1 = snapshot; seed rows; downgrade; S2 = snapshot (must
    equal S0); upgrade; S3 = snapshot (must equal S1); check and remove the rows

The next revision starts from S3. The whole walk is one generator of steps
(``runners.Step``), so a runner can run env.py once for many steps.

When upgrading again does not reproduce the first upgrade's state (or a step failed
half-way), the database is rebuilt from the nearest good point: a template copy of the
last clean state (a checkpoint, made after each rebuild), upgraded through the
revisions applied since; every rebuild becomes the next checkpoint, so the whole walk
replays each revision at most once more. Every failing revision is reported, not only
the first; a revision below one that cannot be upgraded is not checked (and says why).
Observers hear the first upgrade only. With a ``share`` (see share.py) the walk
round-trips only the parts of the history its process claims and upgrades the rest.

Rows seeded for the data round trip never outlive their revision: every row written
(parents of NOT NULL foreign keys too) is deleted again and the row counts of every
table are compared with those before seeding; if anything is left, the database is
rebuilt. A downgrade or re-upgrade that fails only while seeded rows are there is
run again on the empty tables: the schema verdict comes from that run, and the data
verdict says that it depends on rows being present.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.migrations import diff, snapshot
from pytest_dbarch.migrations.data_roundtrip import DATA_ROUND_TRIP
from pytest_dbarch.migrations.observe import RanStatement, StatementObserver
from pytest_dbarch.migrations.runners import (
    MigrationError,
    MigrationRunner,
    Outside,
    Revision,
    StatementRelay,
    Step,
    Walk,
)
from pytest_dbarch.migrations.scratch import Scratch, ScratchDatabase
from pytest_dbarch.migrations.share import Share

ROUND_TRIP = "migrations.round-trip"


@dataclass
class Outcome:
    """What the walk over the history found, keyed by (check, revision id)."""

    findings: dict[tuple[str, str], list[Finding]] = field(default_factory=dict)
    head_snapshot: snapshot.Snapshot | None = None
    metadata: Any = None
    seconds: float = 0.0
    schema_changed: dict[str, bool] = field(default_factory=dict)  # revision -> its upgrade changed the schema
    not_checked: dict[str, str] = field(default_factory=dict)  # revision -> why it was not checked
    skipped: dict[tuple[str, str], str] = field(default_factory=dict)  # (check, revision) -> why no finding
    minor: set[str] = field(default_factory=set)  # revisions whose round trip warned about minor differences only
    steps: int = 0  # upgrades and downgrades run, rebuilds included
    rebuilds: int = 0

    def add(self, check: str, revision: str, finding: Finding) -> None:
        self.findings.setdefault((check, revision), []).append(finding)


def relative(path: str, rootdir: str | Path) -> str:
    try:
        return os.path.relpath(path, rootdir)
    except ValueError:
        return path


def _leftover_table(line: str) -> str:
    """The table whose rows are left: the referencing one when a seeded row cannot be
    deleted because a row the upgrade derived from it points at it."""
    if "violates foreign key constraint" in line and 'on table "' in line:
        return line.rsplit('on table "', 1)[1].split('"', 1)[0]
    return line.split(":", 1)[0].removeprefix("public.")


_WRITES = {"INSERT", "UPDATE", "DELETE", "WITH", "MERGE"}


class DataWrites:
    """StatementObserver: the tables a step wrote rows to (INSERT / UPDATE / DELETE), so
    a data migration's own changes are told apart from data a round trip lost."""

    def __init__(self) -> None:
        self.tables: set[str] = set()

    def begin_revision(self, revision: str, connection: Any) -> None:
        pass

    def before_statement(self, statement: RanStatement, connection: Any) -> None:
        from pytest_dbarch.migrations.statements import describe, lex

        # Only these statements write rows: the others (a downgrade's DDL, mostly) are not
        # described at all, which would parse each one (milliseconds apiece).
        tokens = lex(statement.sql).tokens
        if not tokens or tokens[0].upper not in _WRITES:
            return
        d = describe(statement.sql)
        if d.kind in ("insert", "update", "delete"):
            self.tables.update(t.strip('"').removeprefix("public.") for t in d.tables)

    def after_statement(self, statement: RanStatement, connection: Any, elapsed: float, error: Any) -> None:
        pass

    def end_revision(self, revision: str, connection: Any) -> list[Finding]:
        return []


# Every DDL statement leaves dead catalog rows behind, and every catalog read of the walk
# scans them (on a 288-revision history a snapshot's catalog marks cost three times as much
# near the end as at the start); autovacuum visits a new database too late to help.
_VACUUM_EVERY = 40  # snapshots
_CATALOGS = (
    "pg_class", "pg_attribute", "pg_attrdef", "pg_constraint", "pg_index", "pg_depend", "pg_type",
    "pg_trigger", "pg_rewrite", "pg_description", "pg_sequence", "pg_proc", "pg_policy",
)


def _vacuum_catalogs(conn: Any) -> None:
    """VACUUM the catalogs a snapshot reads (between steps, on the autocommit reader); a
    server that does not allow it (not a superuser) is simply not helped."""
    import psycopg

    try:
        conn.execute("VACUUM " + ", ".join(f"pg_catalog.{name}" for name in _CATALOGS))
    except psycopg.Error:
        pass


@dataclass
class _Checkpoint:
    """A template copy of the walk's database after ``applied`` revisions."""

    name: str
    applied: int


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
        column_order: str = "warning",
        share: Share | None = None,
    ) -> None:
        self.runner = runner
        self.scratch = scratch
        self.rootdir = rootdir
        self.observers = observers
        self.floor = floor
        self.data = data
        self.at_head = at_head
        self.only = only
        self.column_order = column_order
        self.share = share  # the parts this process checks when several share the history
        self.outcome = Outcome()
        self._db: ScratchDatabase | None = None
        self._checkpoint: _Checkpoint | None = None
        self._s1 = snapshot.Snapshot()
        self._reader: Any = None  # the catalog-reading connection (see _snap), also counts rows
        self._tracker: snapshot.Tracker | None = None  # snapshots on it, each reading what changed
        self._snaps = 0

    # --- the walk ---

    def run(self) -> Outcome:
        import time

        started = time.perf_counter()
        self._open()
        try:
            self.runner.drive(self._walk())
        finally:
            self._close()
            self._drop_checkpoint()
            self.scratch.settle()
        self.outcome.seconds = time.perf_counter() - started
        return self.outcome

    def _walk(self) -> Walk:
        revisions = self.runner.revisions()
        exempt = self._below_floor(revisions)
        applied: list[Revision] = []
        blocked: dict[str, str] = {}
        current: snapshot.Snapshot | None = None
        for position, rev in enumerate(revisions):
            mine = True if self.share is None else self.share.owns(position)
            if mine is None:  # every part is taken by now
                if not self.share.to_head:  # type: ignore[union-attr]
                    return
                mine = False
            cause = next((blocked[d] for d in rev.down if d in blocked), None)
            if cause is not None:
                blocked[rev.id] = cause
                self.outcome.not_checked[rev.id] = (
                    f"not checked: revision {cause} (an ancestor) cannot be upgraded"
                )
                continue
            if not mine or (self.only is not None and rev.id not in self.only):
                ok = yield from self._upgrade_only(rev, report=mine)
                if ok:
                    applied.append(rev)
                    current = None  # snapshot taken only when a checked revision needs it
                    continue
                after = None
            else:
                current = current if current is not None else self._snap()
                after = yield from self._one(rev, current, applied, exempt.get(rev.id))
            if after is None:
                blocked[rev.id] = rev.id
                current = yield from self._rebuild(applied)
                continue
            applied.append(rev)
            current = after
        if self.share is not None:
            self.share.finished()
            if not self.share.to_head:
                return
        self.outcome.head_snapshot = current if current is not None else self._snap()
        self.outcome.metadata = self.runner.target_metadata()
        if self.at_head is not None:
            yield Outside(self._at_head)

    def _at_head(self) -> None:
        assert self.at_head is not None and self._db is not None
        self.at_head(self.runner, self._db)

    def _step(self, rev: Revision, upgrade: bool, relay: StatementRelay | None = None) -> Walk:
        self.outcome.steps += 1
        yield Step(rev, upgrade, relay)

    def _upgrade_only(self, rev: Revision, report: bool = True) -> Walk:
        """A revision outside the checked set: applied, not judged (unless it fails, which
        is reported unless another process checks the revision and reports it)."""
        try:
            yield from self._step(rev, True)
        except MigrationError as exc:
            if report:
                self._error(rev, f"revision {rev.id}: upgrade failed", exc)
            return False
        return True

    def _one(
        self, rev: Revision, s0: snapshot.Snapshot, applied: list[Revision], floor_reason: str | None
    ) -> Walk:
        """Round-trip ``rev``; the snapshot it leaves, or None if its upgrade failed."""
        writes = DataWrites()
        relay = StatementRelay([*self.observers(), writes], rev)
        try:
            yield from self._step(rev, True, relay)
        except MigrationError as exc:
            self._record_observed(rev, relay)
            self._error(rev, f"revision {rev.id}: upgrade failed", exc)
            return None
        self._record_observed(rev, relay)
        s1 = self._s1 = self._snap()
        self.outcome.schema_changed[rev.id] = s1 != s0
        waiver = rev.waivers["one-way"] if "one-way" in rev.waivers else floor_reason
        if waiver is not None:
            self._waived(rev, waiver)
            return s1
        seeded = self._seed(rev, s0, s1)
        down_writes = DataWrites()
        try:
            yield from self._step(rev, False, StatementRelay([down_writes], rev))
        except MigrationError as exc:
            if rev.downgrade_refuses:
                if self._refused(rev, seeded):
                    return (yield from self._rebuild(applied + [rev]))
                return (yield from self._restore(rev, applied, s1))
            if seeded is not None and seeded.rows:
                return (yield from self._without_rows(rev, s0, s1, applied, seeded, exc, "downgrade"))
            self._fail(rev, f"revision {rev.id}: downgrade raised {exc.reason}", [str(exc)], exc.fix, exc.where)
            return (yield from self._restore(rev, applied, s1))
        s2 = self._snap()
        default_problems = self._check_defaults(rev, s0, s2) if seeded is not None else []
        lost = diff.compare(s0, s2)
        # Upgrading again is the first run that meets the seeded rows: a row-by-row backfill
        # (an ORM session's loop) writes nothing on the empty tables of the first upgrade.
        again_writes = DataWrites()
        try:
            yield from self._step(rev, True, StatementRelay([again_writes], rev))
        except MigrationError as exc:
            if seeded is not None and seeded.rows:
                return (yield from self._without_rows(rev, s0, s1, applied, seeded, exc, "upgrade"))
            self._round_trip_verdict(rev, lost, [f"upgrade after the downgrade failed: {exc.cause}"])
            return (yield from self._rebuild(applied + [rev]))
        s3 = self._snap()
        again = diff.compare(s1, s3, lost="missing after upgrading again", extra="extra after upgrading again")
        self._round_trip_verdict(rev, lost, again)
        rows_problems, leaked = self._verify(seeded)
        transformed = (writes.tables | again_writes.tables) - down_writes.tables
        self._data_verdict(rev, seeded, default_problems, rows_problems, transformed)
        if leaked:
            self._leak(rev, leaked, writes.tables | again_writes.tables)
        if again or leaked:  # upgrading again did not reproduce the first upgrade's state
            return (yield from self._rebuild(applied + [rev]))
        return s3

    def _without_rows(
        self,
        rev: Revision,
        s0: snapshot.Snapshot,
        s1: snapshot.Snapshot,
        applied: list[Revision],
        seeded: Any,
        exc: MigrationError,
        action: str,
    ) -> Walk:
        """A step failed while seeded rows were there: judge the schema on empty tables.
        The failed step rolled back: with the seeded rows deleted again, and the schema
        and every table's row count as they were, the database is in the state a rebuild
        would make (the revision applied, or downgraded), without replaying revisions."""
        if action == "downgrade" and self._emptied(seeded, s1):
            pass
        elif action == "upgrade" and self._emptied(seeded, s0):
            yield from self._step(rev, True)
        else:
            yield from self._rebuild(applied)
            yield from self._step(rev, True)
        try:
            yield from self._step(rev, False)
        except MigrationError as again:
            self._fail(rev, f"revision {rev.id}: downgrade raised {again.reason}", [str(again)], again.fix, again.where)
            self._data_depends(rev, seeded, exc, action, also_empty=True)
            return (yield from self._restore(rev, applied, s1))
        s2 = self._snap()
        lost = diff.compare(s0, s2)
        try:
            yield from self._step(rev, True)
        except MigrationError as again:
            self._round_trip_verdict(rev, lost, [f"upgrade after the downgrade failed: {again.cause}"])
            self._data_depends(rev, seeded, exc, action, also_empty=True)
            return (yield from self._rebuild(applied + [rev]))
        s3 = self._snap()
        again_lines = diff.compare(s1, s3, lost="missing after upgrading again", extra="extra after upgrading again")
        self._round_trip_verdict(rev, lost, again_lines)
        self._data_depends(rev, seeded, exc, action, also_empty=False)
        if again_lines:
            return (yield from self._rebuild(applied + [rev]))
        return s3

    def _emptied(self, seeded: Any, expected: snapshot.Snapshot) -> bool:
        """The seeded rows removed, nothing else left of them, and the schema ``expected``.
        Row counts are compared for the tables that existed when the rows were seeded: a
        table only the downgrade made could hold rows derived from them, so there the
        answer is no (and the caller rebuilds)."""
        from pytest_dbarch.migrations import data_roundtrip

        conn = self.runner.connection()
        if data_roundtrip.remove(conn, seeded, self._reader) or self._snap() != expected:
            return False
        return set(data_roundtrip.row_counts(conn, self._reader)) <= set(seeded.counts)

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
        lines = lost + again
        order_only = all(diff.is_order_change(line) for line in lines)
        if order_only:
            status = Status.FAILED if self.column_order == "failed" else Status.WARNING
            if self.column_order == "off":
                status = Status.PASSED
            title = f"revision {rev.id}: downgrade restores the schema but not the column order: {lines[0]}"
            fix = (
                f"re-create the column at its old position in downgrade() of revision {rev.id} if "
                "'SELECT *', COPY or positional INSERTs depend on it; otherwise accept it "
                "(dbarch_migrations_column_order = off)"
            )
            self.outcome.add("round-trip", rev.id, self._finding(ROUND_TRIP, status, title, rev, "\n".join(evidence), fix))
            return
        minor = [line for line in lines if not diff.is_order_change(line)]
        if all(diff.is_requalified(line) or diff.is_extension_kept(line) for line in minor):
            ordered = len(minor) < len(lines)
            status = Status.FAILED if ordered and self.column_order == "failed" else Status.WARNING
            empty = f" (its downgrade is empty: {rev.downgrade_note})" if rev.downgrade_empty else ""
            title = f"revision {rev.id}: downgrade restores the schema{empty} but for {minor[0]}" + (
                f" (+{len(minor) - 1} more)" if len(minor) > 1 else ""
            )
            self.outcome.minor.add(rev.id)
            fixes = []
            if any(diff.is_requalified(line) for line in minor):
                fixes.append(
                    "a default calls a function of the same name in another schema: nothing to do if both do "
                    "the same (pgcrypto's gen_random_uuid() and the built-in one since PostgreSQL 13: which one "
                    "an unqualified name binds to depends on the server the history first ran on); otherwise "
                    "qualify the function the same way in upgrade() and downgrade()"
                )
            if any(diff.is_extension_kept(line) for line in minor):
                fixes.append(
                    f"an extension stays installed: drop it in downgrade() of revision {rev.id} if nothing "
                    "else needs it (DROP EXTENSION IF EXISTS ...); keeping it on purpose is common"
                )
            self.outcome.add(
                "round-trip", rev.id, self._finding(ROUND_TRIP, status, title, rev, "\n".join(evidence), "; ".join(fixes))
            )
            return
        first = next(line for line in lines if not diff.is_order_change(line) and not diff.is_requalified(line) and not diff.is_extension_kept(line))
        more = len(lines) - 1
        empty = f" (its downgrade is empty: {rev.downgrade_note})" if rev.downgrade_empty else ""
        title = f"revision {rev.id}: downgrade does not restore the schema{empty}: {first}" + (
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

    def _refused(self, rev: Revision, seeded: Any) -> bool:
        """A downgrade that raises by design (its first statement is a raise): the revision
        is one-way by the authors' decision, said where reviewers see it. True when seeded
        rows could not be removed (the caller rebuilds)."""
        leaked: list[str] = []
        if seeded is not None:
            from pytest_dbarch.migrations import data_roundtrip

            leaked = data_roundtrip.remove(self.runner.connection(), seeded, self._reader)
        self.outcome.add(
            "round-trip",
            rev.id,
            self._finding(
                ROUND_TRIP,
                Status.WARNING,
                f"revision {rev.id}: one-way by design: its downgrade raises {rev.downgrade_refuses!r}",
                rev,
                fix="nothing to do if the revision is meant to be irreversible; the history cannot be "
                f"downgraded below {rev.id}",
            ),
        )
        return bool(leaked)

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

        return data_roundtrip.seed(self.runner.connection(), s0, s1, self._reader)

    def _check_defaults(self, rev: Revision, s0: snapshot.Snapshot, s2: snapshot.Snapshot) -> list[str]:
        from pytest_dbarch.migrations import data_roundtrip

        tables = data_roundtrip.changed_tables(s0, self._s1) + data_roundtrip.changed_tables(s0, s2)
        return data_roundtrip.insert_with_defaults(self.runner.connection(), s0, s2, tables, self._reader)

    def _verify(self, seeded: Any) -> tuple[list[Any] | None, list[str]]:
        """(problems with the seeded rows, what could not be removed again)."""
        if seeded is None:
            return None, []
        from pytest_dbarch.migrations import data_roundtrip

        problems = data_roundtrip.verify(self.runner.connection(), seeded)
        leaked = data_roundtrip.remove(self.runner.connection(), seeded, self._reader)
        return problems, leaked

    def _data_verdict(
        self, rev: Revision, seeded: Any, default_problems: list[str], rows: list[Any] | None, transformed: set[str]
    ) -> None:
        if seeded is None:
            return
        from pytest_dbarch.migrations import data_roundtrip

        finding = data_roundtrip.verdict(rev, seeded, default_problems, rows, self._finding, transformed)
        if finding is None:  # the checker could not write a fitting row: not a finding about the revision
            self.outcome.skipped[("data-round-trip", rev.id)] = "data round trip not checked: " + "; ".join(
                seeded.skipped
            )
            return
        self.outcome.add("data-round-trip", rev.id, finding)

    def _data_depends(self, rev: Revision, seeded: Any, exc: MigrationError, action: str, also_empty: bool) -> None:
        from pytest_dbarch.migrations import data_roundtrip

        finding = data_roundtrip.fails_with_rows(rev, seeded, exc, action, also_empty, self._finding)
        if finding is not None:
            self.outcome.add("data-round-trip", rev.id, finding)

    def _leak(self, rev: Revision, leaked: list[str], written: set[str]) -> None:
        """Rows left after the seeded ones were removed: reported, and the database is
        rebuilt, so no later revision is judged with them. Rows in a table the upgrade
        writes itself are the upgrade adding them again (its downgrade does not take
        them out); any other leftover (rows a downgrade derives from the seeded ones, or
        rows the generator cannot delete) is the checker's own limit: a warning."""
        own = [line for line in leaked if _leftover_table(line) in written]
        ours = [line for line in leaked if line not in own]
        note = "the database was rebuilt without them, so later revisions do not see them"
        if own:
            self.outcome.add(
                "data-round-trip",
                rev.id,
                self._finding(
                    DATA_ROUND_TRIP,
                    Status.WARNING,
                    f"revision {rev.id}: upgrading again writes rows its downgrade does not remove: {own[0]}",
                    rev,
                    "\n".join([*own, note]),
                    f"make downgrade() of revision {rev.id} delete the rows its upgrade() inserts, or make "
                    "the upgrade's INSERT skip rows that exist (ON CONFLICT DO NOTHING)",
                ),
            )
        if ours:
            self.outcome.add(
                "data-round-trip",
                rev.id,
                self._finding(
                    DATA_ROUND_TRIP,
                    Status.WARNING,  # the checker's limit, not the revision's: never fails a build
                    f"revision {rev.id}: rows seeded by the data round trip could not be removed: {ours[0]}"
                    + (f" (+{len(ours) - 1} more)" if len(ours) > 1 else ""),
                    rev,
                    "\n".join([*ours, note]),
                    "a limit of the checker's row generator for these tables, not of the revision; "
                    "switch the data round trip off (dbarch_migrations_data = off) if it recurs",
                ),
            )

    # --- the database ---

    def _open(self) -> None:
        self._db = self.scratch.create()
        try:
            self.runner.open(self._db.url, self._db.dsn)
        except BaseException:
            self._close()
            raise

    def _close(self) -> None:
        self._close_reader()
        self.runner.close()
        if self._db is not None:
            self.scratch.drop(self._db)
            self._db = None

    def _snap(self) -> snapshot.Snapshot:
        """A snapshot read on a connection of its own, between steps (each step is
        committed by then). On the migrations' connection every ROLLBACK, DROP or ALTER
        makes psycopg forget its prepared statements, so the catalog queries were planned
        again for every snapshot (about half of a snapshot's cost); this connection runs
        nothing else, so they are planned once per database. The tracker reads again only
        the relations a step changed (see snapshot.Tracker)."""
        import psycopg

        assert self._db is not None
        if self._reader is None:
            self._reader = psycopg.connect(self._db.dsn, autocommit=True)
            self._tracker = snapshot.Tracker(self._reader)
        assert self._tracker is not None
        self._snaps += 1
        if self._snaps % _VACUUM_EVERY == 0:
            _vacuum_catalogs(self._reader)
        return self._tracker.take([self.runner.version_table])

    def _close_reader(self) -> None:
        self._tracker = None
        if self._reader is not None:
            try:
                self._reader.close()
            finally:
                self._reader = None

    def _restore(self, rev: Revision, applied: list[Revision], expected: snapshot.Snapshot) -> Walk:
        """After a downgrade that raised: keep going if it rolled back cleanly."""
        now = self._snap()
        if now == expected:
            return now
        return (yield from self._rebuild(applied + [rev]))

    def _rebuild(self, revisions: list[Revision]) -> Walk:
        """The database as it was after ``revisions``: a copy of the last checkpoint,
        upgraded through the revisions applied since (no observers, no checks); then
        itself the next checkpoint, so no revision is replayed twice."""
        self.outcome.rebuilds += 1
        start = yield Outside(self._replace_database)
        for rev in revisions[start:]:
            yield from self._step(rev, True)
        if len(revisions) > start:
            yield Outside(lambda: self._make_checkpoint(len(revisions)))
        return self._snap()

    def _replace_database(self) -> int:
        """A new database from the checkpoint (or empty); how many revisions it holds."""
        self._close()
        if self._checkpoint is None:
            self._open()
            return 0
        self._db = self.scratch.create(template=self._checkpoint.name)
        self.runner.open(self._db.url, self._db.dsn)
        return self._checkpoint.applied

    def _make_checkpoint(self, applied: int) -> None:
        assert self._db is not None
        self._close_reader()  # copying ends every session on the database
        self.runner.close()
        self._drop_checkpoint()
        self._checkpoint = _Checkpoint(self.scratch.copy(self._db), applied)
        self.runner.open(self._db.url, self._db.dsn)

    def _drop_checkpoint(self) -> None:
        if self._checkpoint is not None:
            self.scratch.drop_name(self._checkpoint.name)
            self._checkpoint = None

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
