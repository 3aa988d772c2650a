"""The server started in the background once collection is over (``postgres/early``).

Inner sessions in subprocesses with a private ``DBARCH_RUNTIME_DIR``: a warm cache
lets the server start while the session runs tests without a database; sessions that
will run no database test never start one; whatever ends the session (skips, Ctrl-C
while the background start still copies the cluster, or while a fixture waits for it),
nothing is left.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.test_lifecycle import InnerSession, assert_nothing_left

pytestmark = pytest.mark.slow

# Polls for the run directory's server.json: written once the server is up.
WAIT_FOR_SERVER = '''
import glob, os, time

def wait_for_server():
    pattern = os.path.join(os.environ["DBARCH_RUNTIME_DIR"], "pytest-dbarch-*", "run-*", "server.json")
    deadline = time.monotonic() + 60
    while not glob.glob(pattern):
        assert time.monotonic() < deadline, "no server started in the background"
        time.sleep(0.02)
'''

BOTH = '''
import pytest
from server_wait import wait_for_server

def test_first_without_database():
    wait_for_server()  # the background start, before any database fixture ran

def test_then_with_database(dbarch_psycopg):
    assert dbarch_psycopg.execute("SELECT 1").fetchone() == (1,)
'''


@pytest.fixture
def lean(monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return ("-p", "no:cacheprovider", "-p", "pytest_dbarch.plugin")


def warm_the_cache(pytester: pytest.Pytester, lean: tuple[str, ...]) -> None:
    """The background start only copies a cached cluster: make sure there is one."""
    pytester.makepyfile(test_warm="def test_warm(dbarch_psycopg):\n    pass\n")
    pytester.runpytest_subprocess(*lean, timeout=120).assert_outcomes(passed=1)
    (pytester.path / "test_warm.py").unlink()


def test_the_server_starts_while_tests_without_a_database_run(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...]
) -> None:
    warm_the_cache(pytester, lean)
    pytester.makepyfile(server_wait=WAIT_FOR_SERVER, test_both=BOTH)

    result = pytester.runpytest_subprocess(*lean, "-v", "-p", "no:randomly", timeout=120)

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["dbarch server: started in the background: *run-* (*); cluster cache hit *"])
    assert_nothing_left(runtime_dir)


@pytest.mark.parametrize(
    "args",
    [("--collect-only",), ("-k", "without"), ("--setup-plan",)],
    ids=["collect-only", "database-tests-deselected", "setup-plan"],
)
def test_no_server_when_no_database_test_will_run(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...], args: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_both="def test_without():\n    pass\n\ndef test_with(dbarch_psycopg):\n    pass\n")

    result = pytester.runpytest_subprocess(*lean, *args, timeout=120)

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    # Not even the base directory: nothing asked for a server.
    assert list(runtime_dir.iterdir()) == []


def test_a_started_server_nobody_uses_is_stopped(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...]
) -> None:
    """Its only database test is skipped at set-up, after the background start began."""
    warm_the_cache(pytester, lean)
    pytester.makepyfile(
        server_wait=WAIT_FOR_SERVER,
        test_skipped=BOTH.replace("def test_then_with_database", "@pytest.mark.skip\ndef test_then_with_database"),
    )

    result = pytester.runpytest_subprocess(*lean, "-p", "no:randomly", timeout=120)

    result.assert_outcomes(passed=1, skipped=1)
    assert_nothing_left(runtime_dir, timeout=1.0)  # stopped by the session itself


SLOW_START = '''
import pathlib, time
from pytest_dbarch.postgres import shared

_prepare = shared.prepare

def slow_prepare(*args, **kwargs):
    pathlib.Path({marker!r}).write_text("copying")
    time.sleep(2)  # the cluster copy of a big schema, stretched
    return _prepare(*args, **kwargs)

shared.prepare = slow_prepare
'''
WAITING_IN = {
    "a-test-without-database": '''
import time

def test_without_database():
    time.sleep(60)

def test_with_database(dbarch_psycopg):
    pass
''',
    "the-fixture": '''
def test_with_database(dbarch_psycopg):
    pass
''',
}


@pytest.mark.parametrize("where", list(WAITING_IN))
def test_ctrl_c_while_the_background_start_runs(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...], where: str
) -> None:
    warm_the_cache(pytester, lean)
    marker = pytester.path / "copying"
    pytester.makeconftest(SLOW_START.format(marker=str(marker)))
    pytester.makepyfile(test_inner=WAITING_IN[where])

    inner = InnerSession(pytester, *lean, "-p", "no:randomly")
    inner.wait_for_file(marker)
    os.killpg(inner.proc.pid, signal.SIGINT)  # Ctrl-C, mid-copy
    code = inner.wait()

    assert code == pytest.ExitCode.INTERRUPTED, inner.output
    assert "KeyboardInterrupt" in inner.output, inner.output
    # The session waited for the copy, started nothing more and stopped what it had.
    assert_nothing_left(runtime_dir, timeout=1.0)
    assert not [line for line in inner.output.splitlines() if "Exception in thread" in line], inner.output

