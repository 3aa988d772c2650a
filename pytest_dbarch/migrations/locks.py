"""Lock report: which locks each migration statement took, on what, and for how long.

After every statement ``LockReport`` reads ``pg_locks`` for the migration's own backend
(relation locks, system catalogs left out). A lock first seen after statement N was
taken by N; it is held until a later look finds it gone (the transaction ended) or, at
the end of the revision, still held. Statements outside a transaction leave nothing to
see: their locks end with the statement, and the report says so. Three findings per
revision: the per-statement table (``migrations.locks.held``), whether locks outlive
their revision because everything runs in one transaction
(``migrations.locks.one-transaction``: ACCESS EXCLUSIVE from an earlier revision still
held) and the effective ``lock_timeout`` / ``statement_timeout`` when strong locks were
requested on tables that existed before (``migrations.locks.timeouts``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.migrations import facts as F
from pytest_dbarch.migrations.observe import RanStatement
from pytest_dbarch.migrations.statements import describe

if TYPE_CHECKING:
    import psycopg

    from pytest_dbarch.config import Settings

STRONG = ("AccessExclusiveLock", "ExclusiveLock", "ShareRowExclusiveLock", "ShareLock")
_MODE_NAMES = {
    "AccessShareLock": "ACCESS SHARE",
    "RowShareLock": "ROW SHARE",
    "RowExclusiveLock": "ROW EXCLUSIVE",
    "ShareUpdateExclusiveLock": "SHARE UPDATE EXCLUSIVE",
    "ShareLock": "SHARE",
    "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE",
    "ExclusiveLock": "EXCLUSIVE",
    "AccessExclusiveLock": "ACCESS EXCLUSIVE",
}


_RANK = {mode: rank for rank, mode in enumerate(_MODE_NAMES)}


def mode_name(mode: str) -> str:
    return _MODE_NAMES.get(mode, mode)


@dataclass
class _Statement:
    revision: str
    index: int
    sql: str
    where: str
    lock_timeout: str
    statement_timeout: str
    started: float
    in_transaction: bool = True
    elapsed: float = 0.0
    error: str = ""
    locks: list[_Held] = field(default_factory=list)


@dataclass
class _Held:
    oid: int
    relation: str
    mode: str
    statement: _Statement
    acquired: float
    existed: bool  # the relation existed before the statement's revision
    released: float | None = None

    def duration(self, now: float) -> str:
        if self.released is not None:
            return f"{self.released - self.acquired:.3f} s"
        return f">= {now - self.acquired:.3f} s (still held)"


@dataclass
class _Revision:
    name: str
    existing: frozenset[int]
    statements: list[_Statement] = field(default_factory=list)
    carried: list[_Held] = field(default_factory=list)  # strong locks from earlier revisions


class LockReport:
    """StatementObserver: records the locks each statement takes and how long they last."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._held: dict[tuple[int, str], _Held] = {}
        self._rev: _Revision | None = None
        self._current: _Statement | None = None
        self._timeouts = F.TimeoutsCache()

    def begin_revision(self, revision: str, connection: psycopg.Connection[Any]) -> None:
        """Locks held before the revision's first statement came from an earlier one: read
        them from pg_locks, so this works with a fresh observer per revision too."""
        from psycopg import pq

        now = time.perf_counter()
        self._sync(connection, now)
        carried = []
        if connection.info.transaction_status == pq.TransactionStatus.INTRANS:
            before = _Statement("an earlier revision", 0, "", "", "", "", now)
            for oid, rel, mode in F.held_locks(connection) or []:
                # held before this revision's first statement: not this revision's doing
                held = self._held.setdefault((oid, mode), _Held(oid, rel, mode, before, now, True))
                if mode == "AccessExclusiveLock":
                    carried.append(held)
        self._rev = _Revision(revision, F.relation_oids(connection) or frozenset(), carried=carried)

    def before_statement(self, statement: RanStatement, connection: psycopg.Connection[Any]) -> None:
        from psycopg import pq

        rev = self._revision(statement.revision, connection)
        now = time.perf_counter()
        if connection.info.transaction_status == pq.TransactionStatus.IDLE:
            self._release_all(now)
        lock_timeout, statement_timeout = self._timeouts.get(connection)
        self._current = _Statement(
            rev.name,
            len(rev.statements) + 1,
            statement.sql,
            statement.where,
            lock_timeout,
            statement_timeout,
            time.perf_counter(),
        )
        rev.statements.append(self._current)

    def after_statement(
        self,
        statement: RanStatement,
        connection: psycopg.Connection[Any],
        elapsed: float,
        error: BaseException | None,
    ) -> None:
        from psycopg import pq

        stmt, rev = self._current, self._rev
        self._timeouts.after(describe(statement.sql).kind, error)
        if stmt is None or rev is None:
            return
        stmt.elapsed = elapsed
        if error is not None:
            stmt.error = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
        status = connection.info.transaction_status
        stmt.in_transaction = status == pq.TransactionStatus.INTRANS
        now = time.perf_counter()
        locks = F.held_locks(connection) if stmt.in_transaction else []
        if locks is None:
            return
        current = {(oid, mode): rel for oid, rel, mode in locks}
        for key, held in list(self._held.items()):
            if key not in current:
                held.released = now
                del self._held[key]
        for (oid, mode), rel in current.items():
            if (oid, mode) not in self._held:
                held = _Held(oid, rel, mode, stmt, stmt.started, oid in rev.existing)
                self._held[(oid, mode)] = held
                stmt.locks.append(held)
        self._current = None

    def end_revision(self, revision: str, connection: psycopg.Connection[Any]) -> list[Finding]:
        from psycopg import pq

        rev = self._revision(revision, connection)
        now = time.perf_counter()
        committed = connection.info.transaction_status == pq.TransactionStatus.IDLE
        if committed:
            self._release_all(now)
        where = f"revision {revision}"
        findings = [self._held_finding(rev, now, where)]
        if rev.carried:
            first = rev.carried[0].statement
            findings.append(
                Finding(
                    "migrations.locks.one-transaction",
                    Area.MIGRATIONS,
                    Status.FAILED,
                    f"revision {revision} runs in the transaction of {_revision_name(first.revision)}: "
                    f"ACCESS EXCLUSIVE locks taken there are still held",
                    evidence="\n".join(_carried(h, now) for h in rev.carried),
                    where=where,
                    fix="commit per revision: Alembic context.configure(..., transaction_per_migration=True) in "
                    "env.py, so each revision's locks end with it",
                )
            )
        else:
            findings.append(
                Finding(
                    "migrations.locks.one-transaction",
                    Area.MIGRATIONS,
                    Status.PASSED,
                    f"revision {revision}: no ACCESS EXCLUSIVE lock carried over from an earlier revision",
                    where=where,
                )
            )
        findings.append(self._timeouts_finding(rev, connection, where))
        self._rev = None
        return findings

    # --- helpers ---------------------------------------------------------------------
    def _revision(self, revision: str, connection: psycopg.Connection[Any]) -> _Revision:
        if self._rev is None or self._rev.name != revision:
            self.begin_revision(revision, connection)
        assert self._rev is not None
        return self._rev

    def _sync(self, connection: psycopg.Connection[Any], now: float) -> None:
        from psycopg import pq

        if connection.info.transaction_status == pq.TransactionStatus.IDLE:
            self._release_all(now)
            return
        locks = F.held_locks(connection)
        if locks is None:
            return
        current = {(oid, mode) for oid, _, mode in locks}
        for key in [k for k in self._held if k not in current]:
            self._held.pop(key).released = now

    def _release_all(self, now: float) -> None:
        for held in self._held.values():
            held.released = now
        self._held.clear()

    def _held_finding(self, rev: _Revision, now: float, where: str) -> Finding:
        lines = ["#  statement | relation | strongest new lock | held"]
        exclusive, new_relations = [], set()
        for stmt in rev.statements:
            head = f"{stmt.index}  {_clip(stmt.sql, 70)}"
            if stmt.error:
                head += f" [failed: {stmt.error}]"
            strongest: dict[str, _Held] = {}
            for held in stmt.locks:
                if not held.existed:  # created in this revision: nobody else can be waiting on it
                    new_relations.add(held.relation)
                elif (
                    held.relation not in strongest or _RANK[held.mode] > _RANK[strongest[held.relation].mode]
                ):
                    strongest[held.relation] = held
            if not strongest:
                tail = (
                    f"(outside a transaction: locks held for the statement only, {stmt.elapsed:.3f} s)"
                    if not stmt.in_transaction and describe(stmt.sql).is_ddl
                    else "(no new lock on an existing relation)"
                )
                lines.append(f"{head} | {tail}")
            for held in strongest.values():
                lines.append(f"{head} | {held.relation} | {mode_name(held.mode)} | {held.duration(now)}")
                if held.mode == "AccessExclusiveLock":
                    exclusive.append(f"{held.relation} ({held.duration(now)})")
        if new_relations:
            lines.append(f"also locked, created in this revision: {', '.join(sorted(new_relations))}")
        title = (
            f"revision {rev.name}: ACCESS EXCLUSIVE on existing {', '.join(exclusive)}"
            if exclusive
            else f"revision {rev.name}: no ACCESS EXCLUSIVE lock on a table that existed before it"
        )
        return Finding(
            "migrations.locks.held",
            Area.MIGRATIONS,
            Status.PASSED,
            title,
            evidence="\n".join(lines),
            where=where,
        )

    def _timeouts_finding(self, rev: _Revision, connection: psycopg.Connection[Any], where: str) -> Finding:
        unguarded, seen = [], []
        for stmt in rev.statements:
            strong = [h for h in stmt.locks if h.mode in STRONG and h.existed]
            if not stmt.in_transaction and not stmt.locks and describe(stmt.sql).is_ddl:
                d = describe(stmt.sql)
                names = d.tables or ([d.index] if d.index else [])
                oids = [F.table_facts(connection, n).oid for n in names if n]
                strong_unseen = any(o in rev.existing for o in oids if o is not None)
            else:
                strong_unseen = False
            if strong or strong_unseen:
                seen.append(
                    f"statement {stmt.index}: lock_timeout={stmt.lock_timeout}, "
                    f"statement_timeout={stmt.statement_timeout}"
                )
                if stmt.lock_timeout in ("0", "?"):
                    what = (
                        ", ".join(f"{h.relation} {mode_name(h.mode)}" for h in strong)
                        or "DDL outside a transaction"
                    )
                    unguarded.append(
                        f"statement {stmt.index} ({_clip(stmt.sql, 70)}): {what} without lock_timeout"
                    )
        evidence = "\n".join(seen) or "no strong lock requested on a table that existed before this revision"
        if unguarded:
            return Finding(
                "migrations.locks.timeouts",
                Area.MIGRATIONS,
                Status.WARNING,
                f"revision {rev.name}: DDL on existing tables runs without a lock_timeout",
                evidence=evidence + "\n" + "\n".join(unguarded),
                where=where,
                fix="SET lock_timeout = '2s' (and a statement_timeout) at the start of the migration "
                "(Alembic: in env.py before run_migrations), and retry the deploy on timeout; a "
                "waiting ACCESS EXCLUSIVE request queues every later query on the table",
            )
        return Finding(
            "migrations.locks.timeouts",
            Area.MIGRATIONS,
            Status.PASSED,
            f"revision {rev.name}: strong locks on existing tables only under a lock_timeout",
            evidence=evidence,
            where=where,
        )


def _revision_name(name: str) -> str:
    return name if name.startswith("an ") else f"revision {name}"


def _carried(held: _Held, now: float) -> str:
    stmt = held.statement
    if not stmt.index:  # seen only in pg_locks: this observer did not watch that revision
        return f"{held.relation}: ACCESS EXCLUSIVE already held when this revision began"
    return (
        f"{held.relation}: ACCESS EXCLUSIVE since revision {stmt.revision} statement {stmt.index} "
        f"({_clip(stmt.sql)}), held {held.duration(now)}"
    )


def _clip(sql: str, limit: int = 120) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
