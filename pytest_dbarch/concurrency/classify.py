"""Outcome → Findings: what went wrong between the transactions, and how to fix it.

- ``concurrency.lost-update``: the invariant is false after the workers finished;
- ``concurrency.deadlock``: 40P01, with both transactions' statements and lock order
  (a deadlock that ``retry`` absorbed is a warning: each one costs ``deadlock_timeout``);
- ``concurrency.serialization-failure``: 40001 that nothing retried;
- ``concurrency.lock-timeout``: 55P03 (``lock_timeout``, ``NOWAIT``), or a worker still
  waiting for a lock when the run's timeout ran out;
- ``concurrency.worker-error``: any other exception, with its traceback, or a worker
  that did not finish in time;
- ``concurrency.run`` / ``concurrency.schedule`` (passed): all of the above held.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pytest_dbarch.concurrency.outcome import Failure, Outcome, Stuck
from pytest_dbarch.concurrency.retry import DEADLOCK as DEADLOCK_STATE
from pytest_dbarch.concurrency.retry import LOCK_NOT_AVAILABLE, SERIALIZATION_FAILURE as SERIALIZATION_STATE
from pytest_dbarch.concurrency.timeline import Action, compact_sql
from pytest_dbarch.findings import Area, Finding, Status

LOST_UPDATE = "concurrency.lost-update"
DEADLOCK = "concurrency.deadlock"
SERIALIZATION_FAILURE = "concurrency.serialization-failure"
LOCK_TIMEOUT = "concurrency.lock-timeout"
WORKER_ERROR = "concurrency.worker-error"
RUN = "concurrency.run"
SCHEDULE = "concurrency.schedule"
PROBLEM_RULES = (LOST_UPDATE, DEADLOCK, SERIALIZATION_FAILURE, LOCK_TIMEOUT, WORKER_ERROR)

FIXES = {
    LOST_UPDATE: "make the read-modify-write atomic: lock the row first (SELECT ... FOR UPDATE), "
                 "write relative to the stored value (UPDATE ... SET n = n + %s), let a unique "
                 "constraint refuse the duplicate (INSERT ... ON CONFLICT), or run SERIALIZABLE "
                 "with a retry loop",
    DEADLOCK: "take row locks in one order in every transaction: lock them all up front with "
              "SELECT ... WHERE id = ANY(%s) ORDER BY id FOR UPDATE, or retry the transaction "
              "on 40P01",
    SERIALIZATION_FAILURE: "retry the whole transaction on SQLSTATE 40001, as PostgreSQL asks of "
                           "SERIALIZABLE and REPEATABLE READ clients (model the loop with retry=3)",
    LOCK_TIMEOUT: "keep the transaction that holds the lock short (no slow work while it is open), "
                  "take locks in one order, or skip rows another worker holds (FOR UPDATE SKIP LOCKED)",
    WORKER_ERROR: "fix the error the worker function raised",
}
_UNIQUE_FIX = ("a unique constraint refused a duplicate that two workers raced to write: handle it "
               "(INSERT ... ON CONFLICT DO NOTHING, or lock the parent row with SELECT ... FOR "
               "UPDATE before checking) instead of failing")


def classify(outcome: Outcome) -> list[Finding]:
    """Every problem of the outcome, or one passed finding when all held."""
    findings = [*_stuck_findings(outcome), *_failure_findings(outcome)]
    if outcome.invariant_held is False:
        findings.append(_lost_update(outcome))
    if outcome.leftover_pids:
        findings.append(Finding(
            WORKER_ERROR, Area.CONCURRENCY, Status.ERROR,
            f"{len(outcome.leftover_pids)} worker backend(s) outlived their closed connection; "
            "ended with pg_terminate_backend",
            evidence=f"pids: {', '.join(map(str, outcome.leftover_pids))}",
            fix="report this as a pytest-dbarch bug",
        ))
    retried_deadlocks = [f for f in outcome.retried if f.sqlstate == DEADLOCK_STATE]
    if retried_deadlocks and not any(f.rule == DEADLOCK for f in findings):
        findings.append(_retried_deadlocks(outcome, retried_deadlocks))
    if not any(f.status in (Status.FAILED, Status.ERROR) for f in findings):
        findings.append(_passed(outcome))
    return findings


# --- the header every finding shares
def _run_line(outcome: Outcome) -> str:
    if outcome.kind == "schedule":
        what = f"schedule of {len(outcome.steps)} steps over transactions {', '.join(outcome.actors)}"
    else:
        what = f"{outcome.workers} workers x {outcome.repeat} call{'s' if outcome.repeat != 1 else ''}"
    line = f"{what}; isolation {outcome.isolation}; deadlock_timeout {outcome.deadlock_timeout or '?'}"
    return line


def _notes(outcome: Outcome) -> list[str]:
    notes = []
    if outcome.deadlock_timeout_note:
        notes.append(f"note: {outcome.deadlock_timeout_note}")
    for other in outcome.outside_writers:
        notes.append(
            f"note: when the workers started, another session had uncommitted changes: {other.describe()}; "
            "workers cannot see uncommitted data and wait for its locks: commit the test's arrange step "
            "before running them"
        )
    return notes


def _interleaving(outcome: Outcome, limit: int = 60) -> list[str]:
    if outcome.kind == "schedule":
        return ["steps:"] + [line for step in outcome.steps for line in step.lines()]
    return ["statements, as the workers interleaved them (ms since release):"] + [
        "  " + line for line in outcome.timeline.lines(limit=limit)
    ]


def _evidence(outcome: Outcome, *parts: Iterable[str]) -> str:
    lines = [_run_line(outcome)]
    for part in parts:
        lines += list(part)
    lines += _notes(outcome)
    return "\n".join(lines)


# --- failures
def _rule_of(failure: Failure) -> str:
    state = failure.sqlstate
    if state == DEADLOCK_STATE:
        return DEADLOCK
    if state == SERIALIZATION_STATE:
        return SERIALIZATION_FAILURE
    if state == LOCK_NOT_AVAILABLE:
        return LOCK_TIMEOUT
    return WORKER_ERROR


def _failure_findings(outcome: Outcome) -> list[Finding]:
    groups: dict[tuple[str, str], list[Failure]] = {}
    for failure in outcome.unretried:
        rule = _rule_of(failure)
        key = (rule, f"{type(failure.error).__name__}: {failure.message}" if rule == WORKER_ERROR else "")
        groups.setdefault(key, []).append(failure)
    findings = []
    for (rule, _), failures in groups.items():
        make = {DEADLOCK: _deadlock, SERIALIZATION_FAILURE: _serialization, LOCK_TIMEOUT: _lock_timeout}.get(rule)
        findings.append(make(outcome, failures) if make else _worker_error(outcome, failures))
    return findings


def _times(failures: list[Failure]) -> str:
    return "" if len(failures) == 1 else f" ({len(failures)} times)"


def _where(outcome: Outcome, failure: Failure) -> str:
    return failure.where or outcome.fn_where


def _failed_action(outcome: Outcome, failure: Failure) -> Action | None:
    actions = [a for a in outcome.timeline.of(failure.actor, failure.transaction) if a.error]
    return actions[-1] if actions else None


def _transaction_lines(outcome: Outcome, actor: str, transaction: int | None, title: str) -> list[str]:
    if transaction is None:
        return []
    actions = outcome.timeline.of(actor, transaction)
    return [title] + ["  " + a.line() for a in actions]


def _others_in_detail(outcome: Outcome, failure: Failure) -> list[str]:
    pids = [int(p) for p in re.findall(r"[Pp]rocess (\d+)", failure.detail)]
    actors = []
    for pid in pids:
        actor = outcome.actor_of(pid)
        if actor and actor != failure.actor and actor not in actors:
            actors.append(actor)
    return actors


def _named_detail(outcome: Outcome, failure: Failure) -> list[str]:
    def name_pid(match: re.Match[str]) -> str:
        actor = outcome.actor_of(int(match[2]))
        return f"{match[1]} {match[2]} ({actor})" if actor else match[0]

    def name_relation(match: re.Match[str]) -> str:
        name = outcome.relations.get(int(match[1]))
        return f'relation "{name}"' if name else match[0]

    text = re.sub(r"([Pp]rocess) (\d+)", name_pid, failure.detail)
    text = re.sub(r"relation (\d+) of database \d+", name_relation, text)
    lines = [f"  {line}" for line in text.splitlines()]
    if failure.context:
        lines.append(f"  {failure.context.splitlines()[0]}")
    return ["server:"] + lines


def _lock_step(action: Action) -> str:
    sql = compact_sql(action.sql)
    sql = sql if len(sql) <= 120 else sql[:117] + "..."
    return sql + (f" [{action.params}]" if action.params else "")


def _unordered_locks(action: Action) -> bool:
    """A SELECT that locks rows without ORDER BY: it locks them in the order its plan reads
    them (heap order for a scan, key order through an index), which differs between plans."""
    text = " ".join(action.sql.lower().split())
    return action.verb in ("select", "with") and action.locks_rows and " order by " not in text


def _lock_order(outcome: Outcome, parties: list[tuple[str, int | None]]) -> list[str]:
    lines = ["lock order (the statements that take row locks, in the order each transaction ran them):"]
    sequences: dict[str, list[str]] = {}
    for actor, transaction in parties:
        if transaction is None:
            continue
        steps = [a for a in outcome.timeline.of(actor, transaction) if a.locks_rows]
        sequences[actor] = [_lock_step(a) for a in steps]
        shown = [_lock_step(a) + (" <- waited here" if a.error == DEADLOCK_STATE or a.end is None else "")
                 for a in steps]
        lines.append(f"  {actor}: " + ("  ->  ".join(shown) if shown else "(none recorded)"))
    opposite = _opposite_pair(sequences)
    if opposite:
        lines.append(f"  {opposite}")
    for actor, transaction in parties:
        if transaction is not None and any(_unordered_locks(a) for a in outcome.timeline.of(actor, transaction)):
            lines.append(f"  {actor} locks rows with a SELECT ... FOR UPDATE that has no ORDER BY: it takes them "
                         "in the order its plan reads them, which another plan (or the same one after the "
                         "table changed) reads differently")
    return lines


def _opposite_pair(sequences: dict[str, list[str]]) -> str:
    """Two transactions that take the same two locks in opposite orders, in words."""
    actors = list(sequences)
    for i, first in enumerate(actors):
        for second in actors[i + 1:]:
            a, b = sequences[first], sequences[second]
            common = [s for s in dict.fromkeys(a) if s in b]
            for x in common:
                for y in common:
                    if x != y and a.index(x) < a.index(y) and b.index(y) < b.index(x):
                        pair = " and ".join(sorted((first, second)))
                        return f"{pair} take the same locks in opposite orders"
    return ""


def _parties(outcome: Outcome, victim: Failure) -> tuple[list[str], list[tuple[str, int | None]]]:
    """The other workers a deadlock DETAIL names, and each party's transaction at the time."""
    others = _others_in_detail(outcome, victim)
    return others, [(victim.actor, victim.transaction)] + [
        (other, outcome.timeline.transaction_at(other, victim.at)) for other in others
    ]


def _all_of(failures: list[Failure], what: str) -> list[list[str]]:
    """A line listing every occurrence, when there was more than one."""
    if len(failures) < 2:
        return []
    return [[f"{what} {len(failures)} times: " + ", ".join(f"{f.actor} call {f.call + 1}" for f in failures[:20])]]


def _deadlock(outcome: Outcome, failures: list[Failure]) -> Finding:
    first = failures[0]
    others, parties = _parties(outcome, first)
    parts: list[list[str]] = [
        [f"{first.actor} was chosen as the deadlock victim and rolled back: {first.message}"],
        _named_detail(outcome, first),
        _lock_order(outcome, parties),
    ]
    if outcome.kind == "schedule":
        parts.append(_interleaving(outcome))
    else:
        for actor, transaction in parties:
            parts.append(_transaction_lines(outcome, actor, transaction, f"{actor}'s transaction:"))
    parts += _all_of(failures, "deadlocked")
    between = " and ".join([first.actor, *others]) if others else first.actor
    title = f"Deadlock (40P01) between {between}{_times(failures)}: {first.actor}'s transaction was rolled back"
    return Finding(DEADLOCK, Area.CONCURRENCY, Status.FAILED, title,
                   evidence=_evidence(outcome, *parts), where=_where(outcome, first), fix=FIXES[DEADLOCK])


def _retried_deadlocks(outcome: Outcome, failures: list[Failure]) -> Finding:
    first = failures[0]
    _, parties = _parties(outcome, first)
    title = (f"{len(failures)} deadlock{'s' if len(failures) != 1 else ''} (40P01) absorbed by retry: each "
             f"costs deadlock_timeout (1s by default in production) before one transaction is rolled back")
    return Finding(DEADLOCK, Area.CONCURRENCY, Status.WARNING, title,
                   evidence=_evidence(outcome, _named_detail(outcome, first), _lock_order(outcome, parties)),
                   where=_where(outcome, first), fix=FIXES[DEADLOCK])


def _serialization(outcome: Outcome, failures: list[Failure]) -> Finding:
    first = failures[0]
    action = _failed_action(outcome, first)
    failed_at = f" at {_lock_step(action)}" if action is not None else ""
    parts: list[list[str]] = [[f"{first.actor}'s transaction failed{failed_at}: {first.message}"]]
    if first.detail:
        parts.append([f"  {line}" for line in first.detail.splitlines()])
    parts.append(_interleaving(outcome))
    parts += _all_of(failures, "failed to serialize")
    attempts = max(f.attempt for f in failures)
    how = f"still failing after {attempts} retr{'ies' if attempts != 1 else 'y'}" if attempts else "not retried"
    title = f"Serialization failure (40001) {how}{_times(failures)}: {first.actor}'s transaction was rolled back"
    return Finding(SERIALIZATION_FAILURE, Area.CONCURRENCY, Status.FAILED, title,
                   evidence=_evidence(outcome, *parts), where=_where(outcome, first), fix=FIXES[SERIALIZATION_FAILURE])


def _lock_timeout(outcome: Outcome, failures: list[Failure]) -> Finding:
    first = failures[0]
    action = _failed_action(outcome, first)
    parts = [[f"{first.actor} gave up waiting for a lock: {first.message}"
              + (f" (at {_lock_step(action)})" if action is not None else "")], _interleaving(outcome)]
    title = f"Lock not available (55P03){_times(failures)}: {first.actor}: {first.message}"
    return Finding(LOCK_TIMEOUT, Area.CONCURRENCY, Status.FAILED, title,
                   evidence=_evidence(outcome, *parts), where=_where(outcome, first), fix=FIXES[LOCK_TIMEOUT])


def _worker_error(outcome: Outcome, failures: list[Failure]) -> Finding:
    first = failures[0]
    kind = type(first.error).__name__
    state = f" [{first.sqlstate}]" if first.sqlstate else ""
    parts = [
        [f"{first.actor} (call {first.call + 1}) raised {kind}{state}: {first.message}"],
        ["traceback:"] + ["  " + line for line in first.traceback.splitlines()],
        _interleaving(outcome, limit=40),
    ]
    parts += _all_of(failures, "the same error")
    fix = _UNIQUE_FIX if first.sqlstate == "23505" else FIXES[WORKER_ERROR]
    title = f"{first.actor} raised {kind}{state}{_times(failures)}: {first.message}"
    return Finding(WORKER_ERROR, Area.CONCURRENCY, Status.FAILED, title,
                   evidence=_evidence(outcome, *parts), where=_where(outcome, first), fix=fix)


# --- timeouts
def _stuck_findings(outcome: Outcome) -> list[Finding]:
    return [_stuck(outcome, entry) for entry in outcome.stuck]


def _stuck(outcome: Outcome, entry: Stuck) -> Finding:
    act = entry.activity
    stopped = {
        "pg_cancel_backend": "its statement was cancelled with pg_cancel_backend",
        "pg_terminate_backend": "its session was ended with pg_terminate_backend",
    }.get(entry.stopped_with, "it was not inside the database")
    lines = [f"{entry.actor} was still busy after {outcome.timeout:g} s; {stopped}"]
    if act is not None:
        lines.append(f"its backend: {act.describe()}"
                     + (f", waiting for {act.wait_event_type}/{act.wait_event}" if act.wait_event_type else ""))
    if entry.blockers:
        lines.append("it waited for: " + "; ".join(entry.blockers))
    if entry.holders and entry.holders != entry.blockers:
        lines.append("who in turn waited for: " + "; ".join(entry.holders))
    if entry.thread_still_running:
        lines.append("its thread is still running Python code (it cannot be stopped from outside); "
                     "it holds no database session any more")
    if entry.python_stack:
        lines += ["where its thread was:"] + ["  " + line for line in entry.python_stack.rstrip().splitlines()[-12:]]
    lines += _interleaving(outcome, limit=40)
    if act is not None and act.waits_for_lock:
        holders = "; ".join(entry.holders) or "another session"
        behind = f" (queued behind {'; '.join(entry.blockers)})" if entry.blockers != entry.holders else ""
        title = f"{entry.actor} waited more than {outcome.timeout:g} s for a lock held by {holders}{behind}"
        return Finding(LOCK_TIMEOUT, Area.CONCURRENCY, Status.FAILED, title, evidence=_evidence(outcome, lines),
                       where=outcome.fn_where, fix=FIXES[LOCK_TIMEOUT])
    doing = f"running {' '.join(act.query.split())[:100]!r}" if act is not None and act.state == "active" else (
        "in Python code, not in the database")
    title = f"{entry.actor} did not finish within {outcome.timeout:g} s ({doing})"
    return Finding(WORKER_ERROR, Area.CONCURRENCY, Status.FAILED, title, evidence=_evidence(outcome, lines),
                   where=outcome.fn_where,
                   fix="make the worker function finish: a statement that runs this long, or code waiting "
                       "for something no other worker gives, keeps the transaction open")


# --- lost update
def _overlaps(outcome: Outcome) -> list[str]:
    spans: dict[tuple[str, int], tuple[float, float, bool]] = {}
    for action in outcome.timeline:
        end = action.end if action.end is not None else action.start
        start0, end0, committed = spans.get((action.actor, action.transaction), (action.start, end, False))
        spans[(action.actor, action.transaction)] = (
            min(start0, action.start), max(end0, end),
            committed or (action.kind == "commit" and not action.error),
        )
    done = sorted((k, v) for k, v in spans.items() if v[2])
    pairs = []
    for i, (key_a, (s_a, e_a, _)) in enumerate(done):
        for key_b, (s_b, e_b, _) in done[i + 1:]:
            if key_a[0] != key_b[0] and s_a < e_b and s_b < e_a:
                pairs.append(f"{key_a[0]}#{key_a[1]} & {key_b[0]}#{key_b[1]}")
    return pairs


def _lost_update(outcome: Outcome) -> Finding:
    pairs = _overlaps(outcome)
    overlap = (f"committed transactions that were open at the same time: {', '.join(pairs[:12])}"
               + (f" and {len(pairs) - 12} more" if len(pairs) > 12 else "")) if pairs else (
        "no two committed transactions overlapped in time")
    parts = [[f"invariant: {outcome.invariant} -> false", f"{outcome.committed} of {outcome.calls} "
              f"transactions committed; {overlap}"], _interleaving(outcome)]
    short = " ".join(outcome.invariant.split())
    short = short if len(short) <= 90 else short[:87] + "..."
    if outcome.committed == outcome.calls:
        title = f"Lost update: the invariant {short} is false after {outcome.committed} concurrent transactions"
    else:  # failed transactions may be why: say so rather than claim a lost update
        title = (f"The invariant {short} is false; {outcome.calls - outcome.committed} of {outcome.calls} "
                 "transactions did not commit (see the other findings)")
    return Finding(LOST_UPDATE, Area.CONCURRENCY, Status.FAILED, title, evidence=_evidence(outcome, *parts),
                   where=outcome.fn_where, fix=FIXES[LOST_UPDATE])


# --- all held
def _passed(outcome: Outcome) -> Finding:
    held = f"invariant held ({' '.join(outcome.invariant.split())[:80]}); " if outcome.invariant_held else ""
    if outcome.kind == "schedule":
        what = f"Schedule of {len(outcome.steps)} steps over {', '.join(outcome.actors)}"
        rule = SCHEDULE
    else:
        what = f"{outcome.workers} workers x {outcome.repeat} call{'s' if outcome.repeat != 1 else ''}"
        rule = RUN
    retried: dict[str, int] = {}
    for failure in outcome.retried:
        key = failure.sqlstate or type(failure.error).__name__
        retried[key] = retried.get(key, 0) + 1
    left = " left after retries" if retried else ""
    title = f"{what}: {held}no deadlock, serialization failure, lock timeout or worker error{left}"
    figures = [
        f"transactions committed: {outcome.committed} of {outcome.calls}",
        "retried: " + (", ".join(f"{state} x{n}" for state, n in sorted(retried.items())) or "none"),
        f"most transactions open at once: {outcome.timeline.max_overlap()}",
        f"worker backends left on the server afterwards: {len(outcome.leftover_pids)}",
    ]
    if outcome.kind == "schedule":
        figures += [line for step in outcome.steps for line in step.lines()]
    return Finding(rule, Area.CONCURRENCY, Status.PASSED, title, evidence=_evidence(outcome, figures),
                   where=outcome.fn_where)
