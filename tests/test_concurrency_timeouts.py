"""Stuck workers are stopped, nothing is left running, no connection leaks; the
deadlock_timeout and lock_timeout settings, with and without the right to set them."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from pytest_dbarch.concurrency.harness import Harness, Settings
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.postgres.info import ServerInfo
from tests.concurrency_support import project

OURS = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'dbarch-concurrency%'"

TIMEOUTS = '''
import threading

import pytest

from races import Once, opposite_orders

OTHERS = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
          "AND pid <> pg_backend_pid()")


def test_stuck_statement_is_cancelled(dbarch_concurrency, dbarch_psycopg):
    def slow(conn, worker):
        if worker == 0:
            conn.execute("SELECT pg_sleep(60)")

    with dbarch_concurrency.expect_race("worker-error") as race:
        result = dbarch_concurrency.run(slow, workers=2, timeout=1)
    [finding] = race.findings
    assert "w0 did not finish within 1 s (running 'SELECT pg_sleep(60)')" in finding.title
    assert "its statement was cancelled with pg_cancel_backend" in finding.evidence
    assert "canceling statement due to user request" in finding.evidence  # the worker saw the cancel
    assert result.committed == 1 and result.leftover_backends == []
    assert dbarch_psycopg.execute(OTHERS).fetchone()[0] == 0


def test_lock_held_by_the_tests_own_connection(dbarch_concurrency, dbarch_psycopg):
    dbarch_psycopg.execute("SELECT n FROM counters WHERE id = 1 FOR UPDATE")  # not committed

    def bump(conn, worker):
        conn.execute("UPDATE counters SET n = n + 1 WHERE id = 1")

    with dbarch_concurrency.expect_race("lock-timeout") as race:
        dbarch_concurrency.run(bump, workers=2, timeout=1)
    assert len(race.findings) == 2
    for finding in race.findings:
        assert "waited more than 1 s for a lock held by pid" in finding.title
        assert "idle in transaction; last statement: SELECT n FROM counters WHERE id = 1 FOR UPDATE" in finding.evidence
        assert "another session had uncommitted changes" in finding.evidence
    dbarch_psycopg.rollback()
    assert dbarch_psycopg.execute(OTHERS).fetchone()[0] == 0


def test_worker_stuck_in_python(dbarch_concurrency, dbarch_psycopg):
    release = threading.Event()

    def stuck(conn, worker):
        conn.execute("UPDATE counters SET n = n + 1 WHERE id = 1")
        release.wait(60)

    try:
        with dbarch_concurrency.expect_race("worker-error") as race:
            dbarch_concurrency.run(stuck, workers=1, timeout=1)
    finally:
        release.set()
    [finding] = race.findings
    assert "w0 did not finish within 1 s (in Python code, not in the database)" in finding.title
    assert "its session was ended with pg_terminate_backend" in finding.evidence
    assert "its thread is still running Python code" in finding.evidence
    assert "release.wait(60)" in finding.evidence  # where the thread was
    assert dbarch_psycopg.execute(OTHERS).fetchone()[0] == 0
    assert dbarch_psycopg.execute("SELECT n FROM counters WHERE id = 1").fetchone()[0] == 0  # rolled back


def test_failing_deadlock(dbarch_concurrency):
    dbarch_concurrency.run(opposite_orders(Once(2)), workers=2)


def test_failing_timeout(dbarch_concurrency):
    dbarch_concurrency.run(lambda conn, worker: conn.execute("SELECT pg_sleep(60)"), workers=3, timeout=1)


def test_failing_schedule(dbarch_concurrency):
    dbarch_concurrency.schedule(A=["SELECT n FROM counters FOR UPDATE"], B=["SELECT n FROM counters FOR UPDATE"]).run(
        "A", "B", "B")


def test_zz_no_worker_connection_left_on_the_server(dbarch_psycopg):
    """After the failures above (each in a database of its own), no harness connection is left."""
    assert dbarch_psycopg.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'dbarch-concurrency%'").fetchone()[0] == 0
'''


def test_timeouts_and_no_leaks(external_pytester: pytest.Pytester, admin: psycopg.Connection) -> None:
    project(external_pytester)
    external_pytester.makepyfile(test_timeouts=TIMEOUTS)
    result = external_pytester.runpytest("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=4, failed=3)
    result.stdout.fnmatch_lines([
        "*test_stuck_statement_is_cancelled PASSED*",
        "*test_lock_held_by_the_tests_own_connection PASSED*",
        "*test_worker_stuck_in_python PASSED*",
        "*test_zz_no_worker_connection_left_on_the_server PASSED*",
    ])
    result.stdout.fnmatch_lines(["*[[]concurrency.worker-error[]] w? did not finish within 1 s (running 'SELECT pg_sleep(60)')"])
    assert admin.execute(OURS).fetchone()[0] == 0


INTERRUPTED = '''
import os
import signal
import threading


def test_interrupted(dbarch_concurrency):
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()  # Ctrl-C while the workers are busy
    dbarch_concurrency.run(lambda conn, worker: conn.execute("SELECT pg_sleep(60)"), workers=3, timeout=30)
'''


def test_ctrl_c_leaves_nothing_running(external_pytester: pytest.Pytester, admin: psycopg.Connection) -> None:
    project(external_pytester)
    external_pytester.makepyfile(test_interrupted=INTERRUPTED)
    result = external_pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    assert admin.execute(OURS).fetchone()[0] == 0
    assert admin.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'").fetchone()[0] == 0


SETTINGS = '''
import threading

from races import Once, opposite_orders


def test_deadlock_timeout_from_ini(dbarch_concurrency):
    with dbarch_concurrency.expect_race("deadlock"):
        result = dbarch_concurrency.run(opposite_orders(Once(2)), workers=2)
    assert result.deadlock_timeout == "250ms"


def test_lock_timeout_from_ini(dbarch_concurrency):
    locked, done = threading.Event(), threading.Event()

    def hold_or_wait(conn, worker):
        if worker == 0:
            conn.execute("SELECT n FROM counters WHERE id = 1 FOR UPDATE")
            locked.set()
            done.wait(20)
        else:
            locked.wait(20)
            try:
                conn.execute("UPDATE counters SET n = 7 WHERE id = 1")
            finally:
                done.set()

    with dbarch_concurrency.expect_race("lock-timeout") as race:
        dbarch_concurrency.run(hold_or_wait, workers=2)
    assert "canceling statement due to lock timeout" in race.findings[0].title
'''


def test_settings_from_ini(external_pytester: pytest.Pytester) -> None:
    project(external_pytester, "dbarch_concurrency_deadlock_timeout = 250ms\ndbarch_concurrency_lock_timeout = 500ms\n")
    external_pytester.makepyfile(test_settings=SETTINGS)
    external_pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


@pytest.mark.parametrize(("settings", "message"), [
    (Settings(deadlock_timeout="often"), "dbarch_concurrency_deadlock_timeout = 'often': invalid value for parameter"),
    (Settings(lock_timeout="soon"), "dbarch_concurrency_lock_timeout = 'soon': invalid value for parameter"),
])
def test_bad_setting_values(dbarch_server: ServerInfo, settings: Settings, message: str) -> None:
    harness = Harness(dbarch_server.dsn(), settings, ".", lambda result: None)
    with pytest.raises(DbarchError, match=message) as caught:
        harness.run(lambda conn, worker: None, workers=2)
    assert caught.value.fix.startswith("give a duration such as")
    with psycopg.connect(dbarch_server.dsn(), autocommit=True) as conn:
        assert conn.execute(OURS).fetchone()[0] == 0  # the connections made before the error are closed


NOT_SUPERUSER = '''
from races import Once, opposite_orders


def test_deadlock_without_the_right_to_set_deadlock_timeout(dbarch_concurrency):
    with dbarch_concurrency.expect_race("deadlock") as race:
        result = dbarch_concurrency.run(opposite_orders(Once(2)), workers=2)
    assert result.deadlock_timeout == "1s"
    assert "deadlock_timeout stays at the server's value: role 'dbarch_conc_app' may not set it" in (
        race.findings[0].evidence)
'''


@pytest.fixture
def ordinary_role(admin: psycopg.Connection, dbarch_server: ServerInfo) -> Iterator[str]:
    """A role like an external server's application role: may create databases, is no superuser."""
    admin.execute("DROP ROLE IF EXISTS dbarch_conc_app")
    admin.execute("CREATE ROLE dbarch_conc_app LOGIN CREATEDB NOSUPERUSER")
    params = dbarch_server.conninfo()
    yield f"host={params['host']} port={params['port']} user=dbarch_conc_app dbname=postgres"
    admin.execute("DROP ROLE dbarch_conc_app")


def test_role_that_may_not_set_deadlock_timeout(
    external_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ordinary_role: str
) -> None:
    """The run still works: deadlocks take the server's deadlock_timeout, and the finding says why."""
    project(external_pytester)
    external_pytester.makepyfile(test_role=NOT_SUPERUSER)
    monkeypatch.setenv("DBARCH_DSN", ordinary_role)
    external_pytester.runpytest().assert_outcomes(passed=1)


def test_server_value_kept_when_asked(dbarch_server: ServerInfo) -> None:
    results = []
    harness = Harness(dbarch_server.dsn(), Settings(deadlock_timeout=None), ".", results.append)
    result = harness.run(lambda conn, worker: None, workers=1)
    assert result.deadlock_timeout == "1s" and not result.problems
    with psycopg.connect(dbarch_server.dsn(), autocommit=True) as conn:
        assert conn.execute(OURS).fetchone()[0] == 0
