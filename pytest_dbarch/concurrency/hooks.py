"""pytest face of the concurrency harness: the fixture, clone isolation, the verdict.

Registered from ``plugin.py``. A test that requests ``dbarch_concurrency`` runs in
``clone`` isolation (its workers need committed data in a database of their own): the
marker is added at collection, unless the test asks for ``transaction`` isolation
explicitly, which fails at set-up with the reason. Problems fail the test with one
message (like N+1 detection in error mode); every finding reaches the report. Importing
this module loads neither psycopg nor SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Finding, Status
from pytest_dbarch.fixtures import FindingRecorder, fail_on_dbarch_error
from pytest_dbarch.stash import SETTINGS

if TYPE_CHECKING:
    from pytest_dbarch.concurrency.harness import Harness, Result, Schedule
    from pytest_dbarch.postgres.isolation import TestDatabase

FIXTURE = "dbarch_concurrency"
RULE_NAMES = ("lost-update", "deadlock", "serialization-failure", "lock-timeout", "worker-error")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if FIXTURE not in getattr(item, "fixturenames", ()):
            continue
        marker = item.get_closest_marker("dbarch")
        if marker is None or marker.kwargs.get("isolation") is None:
            item.add_marker(pytest.mark.dbarch(isolation="clone"), append=False)


@dataclass
class ExpectedRace:
    """What ``expect_race`` caught: the findings of the races that happened as expected."""

    rules: tuple[str, ...]
    findings: list[Finding] = field(default_factory=list)


class Verdict:
    """Records a result's findings on the test and fails it on a problem not expected."""

    def __init__(self, node: pytest.Item) -> None:
        self._recorder = FindingRecorder(node)
        self.expected: list[ExpectedRace] = []

    def __call__(self, result: Result) -> None:
        failed = result.failed
        expected = self.expected[-1] if self.expected else None
        if expected is not None and failed and all(f.rule in expected.rules for f in failed):
            for finding in result.findings:
                if finding in failed:
                    expected.findings.append(finding)
                    finding = replace(finding, status=Status.PASSED, fix="",
                                      title=f"Race reproduced as expected: {finding.title}")
                self._recorder.add(finding)
            return
        for finding in result.findings:
            self._recorder.add(finding)
        if failed:
            raise pytest.fail.Exception(failure_message(result), pytrace=False)


def failure_message(result: Result) -> str:
    failed = result.failed
    outcome = result.outcome
    calls = f"{outcome.repeat} call{'s' if outcome.repeat != 1 else ''}"
    what = "schedule" if outcome.kind == "schedule" else f"{outcome.workers} workers x {calls}"
    lines = [f"pytest-dbarch: concurrency: {len(failed)} problem{'s' if len(failed) != 1 else ''} ({what})"]
    for finding in failed:
        lines += ["", f"[{finding.rule}] {finding.title}"]
        lines += [f"    {line}" for line in finding.evidence.splitlines()]
        if finding.where:
            lines.append(f"    at: {finding.where}")
        if finding.fix:
            lines.append(f"    fix: {finding.fix}")
    return "\n".join(lines)


def _rule_id(name: str) -> str:
    short = name.removeprefix("concurrency.")
    if short not in RULE_NAMES:
        raise DbarchError(f"expect_race({name!r}): no such race finding",
                          f"choose from {', '.join(RULE_NAMES)}")
    return f"concurrency.{short}"


class Concurrency:
    """The ``dbarch_concurrency`` fixture: see its docstring."""

    def __init__(self, harness: Harness, verdict: Verdict) -> None:
        self._harness = harness
        self._verdict = verdict

    def run(self, fn: Callable[[Any, int], Any], workers: int = 4, repeat: int = 1, invariant: Any = None,
            isolation_level: Any = None, timeout: float = 30, retry: Any = None) -> Result:
        """Call ``fn(conn, worker)`` ``repeat`` times in each of ``workers`` threads, each on
        its own connection, every round released together; then check ``invariant``."""
        try:
            return self._harness.run(fn, workers=workers, repeat=repeat, invariant=invariant,
                                     isolation_level=isolation_level, timeout=timeout, retry=retry)
        except DbarchError as exc:
            _fail(exc)

    def schedule(self, isolation_level: Any = None, timeout: float = 30, **transactions: Any) -> _Schedule:
        """Name the transactions (``A=fn``, ``B=fn``, each ``fn(conn)`` or a list of SQL);
        ``.run("A", "B select", "A commit", ...)`` plays them in exactly that order."""
        try:
            return _Schedule(self._harness.schedule(isolation_level, timeout, **transactions))
        except DbarchError as exc:
            _fail(exc)

    def session(self, conn: Any, **options: Any) -> Any:
        """A SQLAlchemy ORM Session on a worker's connection (make it before any statement)."""
        try:
            return self._harness.session(conn, **options)
        except DbarchError as exc:
            _fail(exc)

    @contextmanager
    def expect_race(self, *rules: str) -> Iterator[ExpectedRace]:
        """Inside the block, the named races (e.g. 'lost-update') are expected: they are
        recorded as reproduced instead of failing the test, and the block fails if none
        happens (like a strict xfail)."""
        try:
            wanted = tuple(_rule_id(r) for r in rules) or tuple(f"concurrency.{r}" for r in RULE_NAMES)
        except DbarchError as exc:
            _fail(exc)
        expected = ExpectedRace(wanted)
        self._verdict.expected.append(expected)
        try:
            yield expected
        finally:
            self._verdict.expected.remove(expected)
        if not expected.findings:
            raise pytest.fail.Exception(
                f"pytest-dbarch: expected a race ({', '.join(wanted)}) but none happened: the code under "
                "test no longer races, or this interleaving does not reach the race (use a schedule "
                "to make it exact)",
                pytrace=False,
            )


class _Schedule:
    def __init__(self, schedule: Schedule) -> None:
        self._schedule = schedule

    def run(self, *steps: Any, invariant: Any = None) -> Result:
        """Play the steps: each names a transaction ("A"), optionally with how its next
        action starts ("A update"); left-over actions run at the end, in name order."""
        try:
            return self._schedule.run(*steps, invariant=invariant)
        except DbarchError as exc:
            _fail(exc)


def _fail(exc: DbarchError) -> NoReturn:
    fail_on_dbarch_error(exc)


@pytest.fixture
def dbarch_concurrency(request: pytest.FixtureRequest, _dbarch_database: TestDatabase) -> Concurrency:
    """Concurrency harness on this test's database: races, lost updates, deadlocks.

    ``.run(fn, workers=4, repeat=1, invariant=None, isolation_level=None, timeout=30,
    retry=None)`` calls ``fn(conn, worker)`` in every worker at once, each on its own
    connection and in its own transaction; ``.schedule(A=fn, B=fn).run("A", "B", ...)``
    plays one exact interleaving; ``.session(conn)`` gives application code an ORM
    session; ``.expect_race(rule)`` pins a known race. The test runs in clone isolation.
    """
    if _dbarch_database.isolation != "clone":
        pytest.fail(
            f"pytest-dbarch: {request.node.nodeid}: dbarch_concurrency needs isolation='clone' (its "
            "workers have connections of their own and see only committed data), but the test asks "
            "for isolation='transaction': remove that @pytest.mark.dbarch or set isolation='clone'",
            pytrace=False,
        )
    from pytest_dbarch.concurrency.harness import Harness, Settings

    settings = request.config.stash[SETTINGS]
    deadlock_timeout = settings.concurrency_deadlock_timeout
    harness = Harness(
        _dbarch_database.dsn,
        Settings(None if deadlock_timeout in ("server", "") else deadlock_timeout,
                 settings.concurrency_lock_timeout or None),
        settings.rootdir,
        verdict := Verdict(request.node),
    )
    return Concurrency(harness, verdict)
