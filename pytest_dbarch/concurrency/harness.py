"""The harness behind the ``dbarch_concurrency`` fixture: ``run``, ``schedule``, ``session``.

It checks the arguments (one clear error for each bad one), runs the workers or the
schedule, checks the invariant on a fresh connection, and hands the judged ``Result``
to a *verdict* callback: the pytest layer records the findings and fails the test.
Nothing here imports pytest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import psycopg

from pytest_dbarch.concurrency import classify
from pytest_dbarch.concurrency.connections import SessionSettings, isolation_level
from pytest_dbarch.concurrency.outcome import Failure, Outcome, Step, function_where
from pytest_dbarch.concurrency.retry import as_retry
from pytest_dbarch.concurrency.schedule import run_schedule
from pytest_dbarch.concurrency.sessions import session_for
from pytest_dbarch.concurrency.timeline import Action
from pytest_dbarch.concurrency.workers import run_workers
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Finding, Status
from pytest_dbarch.origin import plugin_statements

Invariant = str | Callable[[Any], bool] | None


@dataclass
class Result:
    """What a run or schedule did, and the findings it produced."""

    outcome: Outcome
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.is_problem]

    @property
    def failed(self) -> list[Finding]:
        return [f for f in self.findings if f.status in (Status.FAILED, Status.ERROR)]

    @property
    def actions(self) -> list[Action]:
        """Every statement, COMMIT and ROLLBACK the workers sent, in the order they started."""
        return list(self.outcome.timeline)

    @property
    def steps(self) -> list[Step]:
        return self.outcome.steps

    @property
    def failures(self) -> list[Failure]:
        return self.outcome.failures

    @property
    def committed(self) -> int:
        return self.outcome.committed

    @property
    def max_overlap(self) -> int:
        """The most worker transactions that were open at the same moment."""
        return self.outcome.timeline.max_overlap()

    @property
    def invariant_held(self) -> bool | None:
        return self.outcome.invariant_held

    @property
    def deadlock_timeout(self) -> str:
        return self.outcome.deadlock_timeout

    @property
    def leftover_backends(self) -> list[int]:
        return self.outcome.leftover_pids

    def lines(self) -> list[str]:
        """A schedule's steps, or a run's timeline without times: the same text for the
        same interleaving."""
        if self.outcome.kind == "schedule":
            return [line for step in self.steps for line in step.lines()]
        return self.outcome.timeline.lines(limit=10_000, times=False)

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True)
class Settings:
    """The session-wide knobs (ini ``dbarch_concurrency_*``)."""

    deadlock_timeout: str | None = "100ms"
    lock_timeout: str | None = None


Verdict = Callable[[Result], None]


class Harness:
    """``run``, ``schedule`` and ``session`` on one test's database."""

    def __init__(self, dsn: str, settings: Settings, rootdir: str, verdict: Verdict) -> None:
        self._dsn = dsn
        self._settings = settings
        self._rootdir = rootdir
        self._verdict = verdict

    def _session_settings(self, level: Any) -> SessionSettings:
        return SessionSettings(self._dsn, isolation_level(level), self._settings.deadlock_timeout,
                               self._settings.lock_timeout)

    def run(
        self,
        fn: Callable[[Any, int], Any],
        workers: int = 4,
        repeat: int = 1,
        invariant: Invariant = None,
        isolation_level: Any = None,
        timeout: float = 30,
        retry: Any = None,
    ) -> Result:
        _check_callable("fn", fn, "a function fn(conn, worker)")
        _check_count("workers", workers)
        _check_count("repeat", repeat)
        _check_timeout(timeout)
        _check_invariant_arg(invariant)
        session = self._session_settings(isolation_level)
        outcome = run_workers(fn, workers=workers, repeat=repeat, settings=session, timeout=float(timeout),
                              retry=as_retry(retry), rootdir=self._rootdir, invariant=_checker(invariant))
        return self._judge(outcome, fn, session)

    def schedule(self, isolation_level: Any = None, timeout: float = 30, **transactions: Any) -> Schedule:
        """Transactions by name (``A=fn``, ``B=fn``; ``fn(conn)``, or a list of SQL
        statements); ``.run("A", "B", ...)`` then plays them in exactly that order."""
        if len(transactions) < 2:
            raise DbarchError(
                f"a schedule needs two or more transactions, got {len(transactions)}",
                "name them: dbarch_concurrency.schedule(A=fn_a, B=fn_b)",
            )
        prepared = {name: _transaction(name, value) for name, value in transactions.items()}
        _check_timeout(timeout)
        return Schedule(self, prepared, self._session_settings(isolation_level), float(timeout))

    def session(self, conn: Any, **options: Any) -> Any:
        """A SQLAlchemy ORM Session on a worker's connection (make it before any statement)."""
        return session_for(conn, **options)

    # --- shared by run and schedule
    def _judge(self, outcome: Outcome, fn: Any, session: SessionSettings) -> Result:
        outcome.isolation = session.isolation.name.lower().replace("_", " ") if session.isolation else "read committed (default)"
        outcome.fn_where = function_where(fn, self._rootdir)
        result = Result(outcome, classify.classify(outcome))
        self._verdict(result)
        return result


class Schedule:
    """Named transactions waiting to be played in one order; see ``schedule.py``."""

    def __init__(self, harness: Harness, transactions: dict[str, Callable[[Any], Any]],
                 session: SessionSettings, timeout: float) -> None:
        self._harness = harness
        self._transactions = transactions
        self._session = session
        self._timeout = timeout

    @property
    def names(self) -> list[str]:
        return list(self._transactions)

    def run(self, *steps: Any, invariant: Invariant = None) -> Result:
        if len(steps) == 1 and isinstance(steps[0], (list, tuple)):
            steps = tuple(steps[0])
        _check_invariant_arg(invariant)
        session = SessionSettings(self._session.dsn, self._session.isolation, self._session.deadlock_timeout,
                                  self._session.lock_timeout)
        outcome = run_schedule(self._transactions, steps, settings=session, timeout=self._timeout,
                               rootdir=self._harness._rootdir, invariant=_checker(invariant))
        first = next(iter(self._transactions.values()))
        return self._harness._judge(outcome, first, session)


def _transaction(name: str, value: Any) -> Callable[[Any], Any]:
    """A transaction given as a function, or as a list of SQL statements (text, or (text, params))."""
    if not name.isidentifier():
        raise DbarchError(f"transaction name {name!r} is not a plain name", "use names such as A, B, alice")
    if callable(value):
        return cast(Callable[[Any], Any], value)
    if isinstance(value, (list, tuple)) and value:
        statements = [(item, None) if isinstance(item, str) else tuple(item) for item in value]
        if all(len(s) == 2 and isinstance(s[0], str) for s in statements):
            def play(conn: Any) -> None:
                for text, params in statements:
                    conn.execute(text, params)

            return play
    raise DbarchError(
        f"transaction {name}={value!r} is neither a function nor a list of SQL statements",
        f"give {name}=fn (called as fn(conn)) or {name}=['SELECT ...', ('UPDATE ... %s', [1])]",
    )


def _checker(invariant: Invariant) -> Callable[[Any], tuple[str, bool]] | None:
    return None if invariant is None else (lambda conn: check_invariant(invariant, conn))


def check_invariant(invariant: Invariant, conn: psycopg.Connection[Any]) -> tuple[str, bool]:
    """(description, value) of the invariant, read on ``conn`` (the run's monitor: its
    own autocommit connection) once every worker has finished."""
    with plugin_statements():
        if isinstance(invariant, str):
            try:
                rows = conn.execute(invariant).fetchall()
            except psycopg.Error as exc:
                raise DbarchError(f"the invariant {invariant!r} failed: {exc}",
                                  "give SQL that returns one boolean, e.g. SELECT count(*) = 1 FROM contacts") from None
            finally:
                conn.rollback()
            if len(rows) != 1 or len(rows[0]) != 1 or not isinstance(rows[0][0], bool):
                shown = rows[:3] if len(rows) <= 3 else [*rows[:3], "..."]
                raise DbarchError(f"the invariant {invariant!r} returned {shown!r}, not one boolean",
                                  "make it return exactly one row with one true/false column "
                                  "(coalesce a NULL)")
            return " ".join(invariant.split()), rows[0][0]
        assert invariant is not None
        try:
            value = invariant(conn)
        finally:
            conn.rollback()
        name = getattr(invariant, "__qualname__", repr(invariant))
        if not isinstance(value, bool):
            raise DbarchError(f"the invariant {name}(conn) returned {value!r}, not True or False",
                              "return a bool from the invariant function")
        return f"{name}(conn)", value


def _check_callable(name: str, value: Any, what: str) -> None:
    if not callable(value):
        raise DbarchError(f"{name}={value!r} is not callable", f"give {what}")


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DbarchError(f"{name}={value!r} is not a whole number >= 1", f"give e.g. {name}=4")


def _check_timeout(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise DbarchError(f"timeout={value!r} is not a number of seconds > 0", "give e.g. timeout=30")


def _check_invariant_arg(value: Any) -> None:
    if value is not None and not isinstance(value, str) and not callable(value):
        raise DbarchError(f"invariant={value!r} is neither SQL nor a function",
                          "give SQL returning one boolean, or a function invariant(conn) -> bool")
