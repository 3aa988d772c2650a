"""``schedule``: one exact interleaving of two or more transactions, the same every time.

Each transaction is a function ``fn(conn)`` (application code as it is) running in a
thread of its own. Its connection holds every action (statement, COMMIT, ROLLBACK) at a
gate until the schedule names it: ``"A"`` lets transaction A run its next action,
``"A update"`` does the same and checks that the action starts with ``update``. The
COMMIT after ``fn`` returns is an action too.

After each step the schedule waits, without sleeping on a guess, until every
transaction has *settled*: it waits at its gate for its next step, it has finished, or
its action is blocked on a lock (``pg_blocking_pids`` is not empty). A blocked action
is reported ("blocked by A") and the schedule goes on to the step that releases it;
when two transactions block each other, it waits for PostgreSQL's deadlock detector.
Steps left over at the end run in the order the transactions were named.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_dbarch.concurrency.connections import SessionSettings
from pytest_dbarch.concurrency.crew import Crew
from pytest_dbarch.concurrency.outcome import Failure, Outcome, Step, user_traceback, user_where
from pytest_dbarch.concurrency.timeline import ROLLBACK, STATEMENT, Action
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.origin import plugin_statements

WAITING, RUNNING, FINISHED = "waiting", "running", "finished"
_POLL_SECONDS = 0.002
_WIND_DOWN_SECONDS = 1.0


class ScheduleError(DbarchError):
    """The steps do not fit the transactions (a wrong name, a label that does not match,
    a step for a transaction that has finished or waits for a lock another one holds)."""


class _Aborted(BaseException):
    """Raised at a gate when the schedule is abandoned: unwinds the transaction's code."""


@dataclass
class _Transaction:
    name: str
    fn: Callable[[Any], Any]
    status: str = RUNNING  # until it first reaches its gate
    pending: tuple[str, str] | None = None  # (kind, sql) waiting at the gate
    grant: int | None = None
    failure: Failure | None = None
    blocked_by: tuple[int, ...] = ()
    blocked_step: int | None = None
    blocked_since: float | None = None  # when this lock wait was first seen


@dataclass
class _Scheduler:
    transactions: dict[str, _Transaction]
    crew: Crew
    deadline: float
    rootdir: str
    deadlock_timeout: float = 1.0  # seconds, as the transactions' connections have it
    cond: threading.Condition = field(default_factory=threading.Condition)
    aborted: bool = False
    changes: int = 0  # bumped whenever a transaction's state changes

    # --- the transactions' side
    def gate(self, actor: str, kind: str, sql: str) -> int | None:
        tx = self.transactions[actor]
        if self.aborted and kind == ROLLBACK:
            return None  # cleaning up after the schedule ended: nothing to hold back
        with self.cond:
            tx.status, tx.pending, tx.blocked_by, tx.blocked_step = WAITING, (kind, sql), (), None
            tx.blocked_since = None
            self.changes += 1
            self.cond.notify_all()
            while tx.grant is None and not self.aborted:
                self.cond.wait()
            if self.aborted:
                raise _Aborted()
            step, tx.grant = tx.grant, None
            return step

    def body(self, tx: _Transaction) -> None:
        conn = self.crew.conns[tx.name]
        with plugin_statements():
            try:
                tx.fn(conn)
                conn.commit()
            except _Aborted:
                conn.quiet_rollback()
            except BaseException as exc:  # noqa: BLE001 - every failure is evidence
                recorder = conn.dbarch_recorder
                tx.failure = Failure(tx.name, recorder.transaction if recorder else 1, 0, 0, exc,
                                     user_traceback(exc, self.rootdir), user_where(exc.__traceback__, self.rootdir),
                                     self.crew.timeline.now())
                conn.quiet_rollback()
            finally:
                with self.cond:
                    tx.status = FINISHED
                    self.changes += 1
                    self.cond.notify_all()

    # --- the schedule's side
    def settle(self) -> None:
        """Wait until every transaction waits at its gate, has finished, or is blocked."""
        assert self.crew.monitor is not None
        pids = self.crew.pids
        while True:
            with self.cond:
                running = [tx for tx in self.transactions.values() if tx.status == RUNNING]
                if not running:
                    return
                before = self.changes
            blocked = self.crew.monitor.blocked(pids[tx.name] for tx in running)
            with self.cond:
                if self.changes != before:  # one reached its gate or ended meanwhile: ask again
                    continue
                if all(pids[tx.name] in blocked for tx in running) and not _cycle(blocked):
                    for tx in running:
                        if tx.blocked_since is None or tx.blocked_by != blocked[pids[tx.name]]:
                            tx.blocked_since = time.monotonic()
                        tx.blocked_by = blocked[pids[tx.name]]
                    return
                if time.monotonic() > self.deadline:
                    raise TimeoutError
                self.cond.wait(_POLL_SECONDS)

    def let_deadlock_checks_pass(self, nxt: _Transaction) -> None:
        """Before a step that could close a cycle, wait until the blocked transactions' one
        deadlock check each has run (it runs once, ``deadlock_timeout`` after the wait
        began). The transaction of the step that closes a cycle is then the victim, every
        time, not whichever timer happens to fire first."""
        if nxt.pending is None or nxt.pending[0] != STATEMENT:
            return  # COMMIT and ROLLBACK release locks, they do not wait for them
        pid = self.crew.pids[nxt.name]
        blocked = {self.crew.pids[tx.name]: tx.blocked_by for tx in self.transactions.values()
                   if tx.status == RUNNING}
        if not _reaches(blocked, pid):
            return  # nobody waits for the next transaction: its step cannot close a cycle
        margin = max(self.deadlock_timeout * 0.5, 0.05)
        with self.cond:
            while True:
                since = [tx.blocked_since for tx in self.transactions.values()
                         if tx.status == RUNNING and tx.blocked_since is not None]
                if not since:
                    return
                remaining = max(since) + self.deadlock_timeout + margin - time.monotonic()
                if remaining <= 0:
                    return
                self.cond.wait(remaining)

    def grant(self, tx: _Transaction, number: int) -> None:
        with self.cond:
            # Running from this moment: settle() must not mistake it for still waiting.
            tx.grant, tx.status, tx.pending = number, RUNNING, None
            self.changes += 1
            self.cond.notify_all()

    def abort(self) -> None:
        with self.cond:
            self.aborted = True
            self.cond.notify_all()


def _reaches(blocked: dict[int, tuple[int, ...]], target: int) -> bool:
    """Whether some waiting backend waits, directly or through others, for ``target``."""
    frontier = [pid for waits in blocked.values() for pid in waits]
    seen: set[int] = set()
    while frontier:
        pid = frontier.pop()
        if pid == target:
            return True
        if pid not in seen:
            seen.add(pid)
            frontier.extend(blocked.get(pid, ()))
    return False


def _cycle(blocked: dict[int, tuple[int, ...]]) -> bool:
    """Whether the waits-for graph among these backends has a cycle (a deadlock the
    server is about to break)."""
    seen: set[int] = set()

    def visit(pid: int, path: set[int]) -> bool:
        if pid in path:
            return True
        if pid in seen or pid not in blocked:
            return False
        seen.add(pid)
        return any(visit(next_pid, path | {pid}) for next_pid in blocked[pid])

    return any(visit(pid, set()) for pid in blocked)


def parse_step(step: Any, names: Sequence[str]) -> tuple[str, str]:
    """``"A"`` or ``"A update leads"`` → (name, label)."""
    if not isinstance(step, str) or not step.split():
        raise ScheduleError(f"schedule step {step!r} is not a transaction name",
                            f"write steps as strings such as {names[0]!r} or '{names[0]} update'")
    name, _, label = step.strip().partition(" ")
    if name not in names:
        raise ScheduleError(f"schedule step {step!r} names no transaction",
                            f"the transactions are {', '.join(names)}")
    return name, " ".join(label.lower().split())


def run_schedule(
    transactions: dict[str, Callable[[Any], Any]],
    steps: Sequence[Any],
    *,
    settings: SessionSettings,
    timeout: float,
    rootdir: str,
    invariant: Callable[[Any], tuple[str, bool]] | None = None,
) -> Outcome:
    """Run the transactions in exactly the order ``steps`` gives, then check ``invariant``;
    see the module docstring."""
    names = list(transactions)
    parsed = [parse_step(step, names) for step in steps]
    crew = Crew(settings)
    scheduler = _Scheduler({n: _Transaction(n, fn) for n, fn in transactions.items()}, crew,
                           time.monotonic() + timeout, rootdir)
    outcome: Outcome | None = None
    try:
        crew.open(names, gate=scheduler.gate)
        scheduler.deadlock_timeout = settings.deadlock_timeout_seconds
        assert crew.monitor is not None
        outcome = Outcome("schedule", names, crew.pids, crew.timeline, calls=len(names), timeout=timeout,
                          deadlock_timeout=settings.effective_deadlock_timeout,
                          deadlock_timeout_note=settings.deadlock_timeout_note)
        outcome.outside_writers = crew.monitor.others_with_writes(crew.pids.values())
        crew.timeline.release()
        for tx in scheduler.transactions.values():
            thread = threading.Thread(target=scheduler.body, args=(tx,), daemon=True,
                                      name=f"dbarch-concurrency-{tx.name}")
            crew.threads[tx.name] = thread
            crew.set_busy(tx.name, True)
            thread.start()
        try:
            scheduler.settle()
            number = 0
            for number, (name, label) in enumerate(parsed, 1):
                _step(scheduler, outcome, number, name, label, auto=False)
            while True:  # what the steps left over, in the order the transactions were named
                waiting = [tx for tx in scheduler.transactions.values() if tx.status == WAITING]
                if not waiting:
                    break
                number += 1
                _step(scheduler, outcome, number, waiting[0].name, "", auto=True)
            if any(tx.status == RUNNING for tx in scheduler.transactions.values()):
                _wait_for_blocked(scheduler)
        except TimeoutError:
            stuck = [tx.name for tx in scheduler.transactions.values() if tx.status == RUNNING]
            scheduler.abort()
            crew.stop(outcome, stuck)
            for tx in scheduler.transactions.values():
                if tx.failure is not None and tx.name in stuck:
                    tx.failure.stopped = True
        except ScheduleError as exc:
            raise ScheduleError(
                exc.cause + "\n  the steps so far:\n" + "\n".join(
                    "    " + line for step in outcome.steps for line in step.lines()),
                exc.fix,
            ) from None
        outcome.failures = [tx.failure for tx in scheduler.transactions.values() if tx.failure is not None]
        outcome.committed = sum(
            1 for tx in scheduler.transactions.values() if tx.failure is None and tx.status == FINISHED
        )
        crew.resolve_relations(outcome)
        crew.check(outcome, invariant)
        return outcome
    finally:
        scheduler.abort()  # transactions waiting at their gate roll back and end
        for thread in crew.threads.values():
            thread.join(_WIND_DOWN_SECONDS)
        alive = [n for n, t in crew.threads.items() if t.is_alive()]
        if alive and crew.monitor is not None:
            try:  # an interrupt or a schedule error left one inside the database
                crew.stop(Outcome("schedule", names, {}, crew.timeline), alive)
            except Exception:
                pass
        crew.close(outcome)


def _wait_for_blocked(scheduler: _Scheduler) -> None:
    """Every step is spent but a transaction still waits for a lock (held outside the
    schedule): wait for it until the timeout."""
    while any(tx.status == RUNNING for tx in scheduler.transactions.values()):
        if time.monotonic() > scheduler.deadline:
            raise TimeoutError
        with scheduler.cond:
            scheduler.cond.wait(_POLL_SECONDS * 5)


def _step(scheduler: _Scheduler, outcome: Outcome, number: int, name: str, label: str, auto: bool) -> None:
    tx = scheduler.transactions[name]
    pids = scheduler.crew.pids
    names = {pid: n for n, pid in pids.items()}
    if tx.status == FINISHED:
        how = f"it raised {tx.failure.message!r}" if tx.failure else "it committed"
        raise ScheduleError(f"step {number} {_quote(name, label)}: transaction {name} has already finished ({how})",
                            "remove the step, or end the schedule before it")
    if tx.status == RUNNING:  # blocked on a lock: only another transaction's step can free it
        holders = ", ".join(names.get(pid, f"pid {pid} outside the schedule") for pid in tx.blocked_by)
        raise ScheduleError(
            f"step {number} {_quote(name, label)}: transaction {name} is still waiting for a lock held by "
            f"{holders} (since step {tx.blocked_step})",
            f"put a step of {holders} that releases it (e.g. its commit) before this one",
        )
    assert tx.pending is not None
    kind, sql = tx.pending
    flat = " ".join(sql.lower().split())
    if label and not flat.startswith(label):
        raise ScheduleError(
            f"step {number} {_quote(name, label)}: transaction {name}'s next action is {' '.join(sql.split())[:160]!r}",
            f"label the step with how that action starts (e.g. '{name} {flat.split(' ', 1)[0]}'), or change the order",
        )
    blocked_before = {t.name: t.blocked_step for t in scheduler.transactions.values() if t.status == RUNNING}
    scheduler.let_deadlock_checks_pass(tx)
    scheduler.grant(tx, number)
    scheduler.settle()
    granted = _action(scheduler, name, number)
    step = Step(number, name, label, sql, _result(scheduler, tx, number, names), auto=auto,
                params=granted.params if granted is not None else "")
    for other, since in blocked_before.items():
        done = scheduler.transactions[other]
        if done.status != RUNNING:
            action = _action(scheduler, other, since)
            step.effects.append(f"{other}'s step {since} went on: " + (_ended(action) if action else "done"))
        if done.status == FINISHED and done.failure is not None and not _failed_at_statement(scheduler, other):
            step.effects.append(f"{other} raised {type(done.failure.error).__name__}: {done.failure.message}")
    if tx.status == FINISHED and tx.failure is not None and not _failed_at_statement(scheduler, name):
        step.effects.append(f"{name} raised {type(tx.failure.error).__name__}: {tx.failure.message}")
    outcome.steps.append(step)


def _quote(name: str, label: str) -> str:
    return repr(f"{name} {label}".strip())


def _action(scheduler: _Scheduler, actor: str, step: int | None) -> Action | None:
    return next((a for a in scheduler.crew.timeline if a.actor == actor and a.step == step), None)


def _ended(action: Action) -> str:
    return f"error {action.error} {action.message}".rstrip() if action.error else "ok"


def _failed_at_statement(scheduler: _Scheduler, actor: str) -> bool:
    tx = scheduler.transactions[actor]
    return tx.failure is not None and any(a.actor == actor and a.error for a in scheduler.crew.timeline)


def _result(scheduler: _Scheduler, tx: _Transaction, number: int, names: dict[int, str]) -> str:
    if tx.status == RUNNING:
        tx.blocked_step = number
        holders = ", ".join(names.get(pid, f"pid {pid} (outside the schedule)") for pid in tx.blocked_by)
        return f"blocked by {holders}"
    action = _action(scheduler, tx.name, number)
    return _ended(action) if action is not None else "ok"
