"""Life cycle of the disposable server: whatever ends the session, nothing is left.

Every test here runs a real inner pytest session in a subprocess, with a private
``DBARCH_RUNTIME_DIR`` (the ``runtime_dir`` fixture) so that the inner session starts a
server of its own, then ends that session some way (normally, with failures, Ctrl-C,
SIGTERM, SIGKILL, SIGKILL of the guardian too, an xdist worker crash) and checks that no
process mentions the runtime directory and no run directory is left.

Shutdown after a signal is asynchronous (the guardian, the next session's reaping), so
the checks poll for a while before they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytest_plugins = ["pytester"]


def _shared_conftest() -> Any:
    """tests/conftest.py as pytest imported it (as ``tests.conftest`` or ``conftest``,
    depending on the import mode; a root conftest.py may hold the name ``conftest``)."""
    here = Path(__file__).with_name("conftest.py").resolve()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and Path(path).resolve() == here:
            return module
    raise ImportError(f"{here} has not been imported by pytest")


processes_under = _shared_conftest().processes_under
leftover_runs = _shared_conftest().leftover_runs

SETTLE_TIMEOUT = 15.0  # generous: a reparented postmaster may linger as a zombie a moment
MARKER_TIMEOUT = 30.0  # the inner session has to initdb and start a server first
EXIT_TIMEOUT = 30.0  # "well under" the 60 s the inner test sleeps

T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


def wait_for(probe: Callable[[], T], timeout: float = SETTLE_TIMEOUT, interval: float = 0.05) -> T:
    """Call ``probe`` until it returns something truthy or ``timeout`` passes; return
    its last value either way."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def is_running(pid: int, needle: str | None = None) -> bool:
    """``pid`` is a live (not zombie) process, whose command line holds ``needle`` if given."""
    state = _proc_state(pid)
    if state is None or state == "Z":
        return False
    if needle is None:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return needle in cmdline


def processes_inside(path: Path) -> list[str]:
    """Processes whose working directory is under ``path``.

    ``processes_under`` sees the postmaster (its ``-D``) and the guardian (its argument);
    the postmaster's children (checkpointer, backends...) name neither, but they all
    work in the data directory.
    """
    found = []
    prefix = str(path) + os.sep
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if cwd.startswith(prefix):
            found.append(f"{proc.name} (cwd {cwd}): {cmdline}")
    return found


def leftovers(runtime_dir: Path) -> dict[str, list[Any]]:
    return {
        "processes": processes_under(runtime_dir),
        "server processes": processes_inside(runtime_dir),
        "run dirs": [str(p) for p in leftover_runs(runtime_dir)],
    }


def assert_nothing_left(runtime_dir: Path, timeout: float = SETTLE_TIMEOUT) -> None:
    """No process mentions or works in ``runtime_dir`` and no run directory is left."""
    wait_for(lambda: not any(leftovers(runtime_dir).values()), timeout)
    left = leftovers(runtime_dir)
    # Asserted separately so that the failure names what leaked.
    assert processes_under(runtime_dir) == [], left
    assert processes_inside(runtime_dir) == [], left
    assert leftover_runs(runtime_dir) == [], left


@pytest.fixture
def lean(monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    """Arguments for an inner session that loads pytest-dbarch and no other plugin.

    Importing every installed plugin (hypothesis, faker...) costs over a second per
    inner session and per xdist worker, and has nothing to do with the life cycle;
    ``test_normal_end_leaves_nothing`` runs with all of them.
    """
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return ("-p", "no:cacheprovider", "-p", "pytest_dbarch.plugin")


def guardian_pids(runtime_dir: Path) -> list[int]:
    return [
        int(line.split(":", 1)[0])
        for line in processes_under(runtime_dir)
        if "pytest_dbarch.postgres.guardian" in line
    ]


# Written by the inner tests: where the server is and who runs it, so the outer test
# can check those very processes and directories afterwards.
SERVER_FACTS = '''
import json, os, pathlib

def server_facts(conn):
    datadir = conn.execute("SELECT current_setting('data_directory')").fetchone()[0]
    postmaster = int(pathlib.Path(datadir, "postmaster.pid").read_text().splitlines()[0])
    uids = pathlib.Path(f"/proc/{postmaster}/status").read_text().split("Uid:")[1].split()
    return {
        "pytest_pid": os.getpid(),
        "datadir": datadir,
        "datadir_owner": os.stat(datadir).st_uid,
        "postmaster": postmaster,
        "postmaster_uids": [int(u) for u in uids[:4]],
        "user": conn.execute("SELECT current_user").fetchone()[0],
    }

def publish(path, facts):
    tmp = pathlib.Path(path + ".tmp")
    tmp.write_text(json.dumps(facts))
    os.replace(tmp, path)
'''


def write_inner_tests(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(facts=SERVER_FACTS)
    pytester.makepyfile(test_inner=body)


def read_facts(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


class InnerSession:
    """An inner pytest started with ``Popen``, so the test can signal it mid-run."""

    def __init__(self, pytester: pytest.Pytester, *args: str) -> None:
        self.log_path = pytester.path / "inner.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed in wait())
        # A session of its own, like a pytest started from a terminal: Ctrl-C can go to
        # its whole process group, and signals aimed at it never reach this session.
        self.proc = pytester.popen(
            [sys.executable, "-m", "pytest", "-q", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_file(self, path: Path) -> None:
        if not wait_for(lambda: path.exists() or self.proc.poll() is not None, MARKER_TIMEOUT):
            self.kill()
            pytest.fail(f"inner session never reached the database:\n{self.output}")
        if not path.exists():
            pytest.fail(f"inner session ended before reaching the database:\n{self.output}")

    def wait(self, timeout: float = EXIT_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"inner session did not exit within {timeout} s:\n{self.output}")
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


SLEEPER = '''
import time
from facts import publish, server_facts

def test_sleeps_with_database(dbarch_psycopg):
    publish({marker!r}, server_facts(dbarch_psycopg))
    {sleep}
'''
SLEEPS = {
    "sleep": "time.sleep(60)",
    # Blocked in libpq waiting for the server, not in Python.
    "query": "dbarch_psycopg.execute('SELECT pg_sleep(60)')",
}


def start_sleeper(
    pytester: pytest.Pytester, *args: str, sleep: str = "sleep"
) -> tuple[InnerSession, dict[str, Any]]:
    """An inner session whose only test holds the database for 60 s; returns once the
    server is up, with the facts about it."""
    marker = pytester.path / "marker.json"
    write_inner_tests(pytester, SLEEPER.format(marker=str(marker), sleep=SLEEPS[sleep]))
    inner = InnerSession(pytester, *args)
    inner.wait_for_file(marker)
    facts = read_facts(marker)
    assert is_running(facts["postmaster"], facts["datadir"]), facts
    return inner, facts


# --------------------------------------------------------------------------- normal end


PASSING = '''
from facts import publish, server_facts

def test_uses_database(dbarch_psycopg):
    assert dbarch_psycopg.execute("SELECT 1").fetchone() == (1,)
    publish({marker!r}, server_facts(dbarch_psycopg))
'''


def run_passing_session(
    pytester: pytest.Pytester, *args: str
) -> tuple[pytest.RunResult, dict[str, Any]]:
    marker = pytester.path / "facts.json"
    write_inner_tests(pytester, PASSING.format(marker=str(marker)))
    result = pytester.runpytest_subprocess(*args, timeout=60)
    result.assert_outcomes(passed=1)
    return result, read_facts(marker)


def test_normal_end_leaves_nothing(pytester: pytest.Pytester, runtime_dir: Path) -> None:
    # Every installed plugin, the way users run it (pytest-postgresql included).
    result, facts = run_passing_session(pytester, "-p", "no:cacheprovider")

    result.stdout.fnmatch_lines(["dbarch: PostgreSQL*"])
    assert Path(facts["datadir"]).is_relative_to(runtime_dir)
    # Never as root: PostgreSQL refuses it, and as non-root it is simply us.
    assert 0 not in facts["postmaster_uids"], facts
    assert facts["datadir_owner"] != 0, facts
    if os.geteuid() != 0:
        assert facts["postmaster_uids"][1] == os.geteuid(), facts
    assert_nothing_left(runtime_dir)
    assert not is_running(facts["postmaster"])


@pytest.mark.skipif(os.geteuid() != 0, reason="the root-specific path runs only as root")
def test_as_root_server_runs_unprivileged(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...]
) -> None:
    """pytest-postgresql dies as root (pg_ctl/initdb refuse uid 0); we demote the server."""
    import pwd

    result, facts = run_passing_session(pytester, *lean)

    assert facts["pytest_pid"] != facts["postmaster"]
    real, effective, saved, fs = facts["postmaster_uids"]
    assert real == effective == saved == fs != 0, facts
    assert facts["datadir_owner"] == effective, facts
    account = pwd.getpwuid(effective).pw_name
    result.stdout.fnmatch_lines(["dbarch: PostgreSQL*"])
    assert account == "dbarch", account  # a dedicated account, never the system 'postgres'
    result.stdout.fnmatch_lines(["dbarch server: runs as dbarch;*"])
    assert_nothing_left(runtime_dir)


# --------------------------------------------------------------------------- failures


FAILING = '''
import pytest
from facts import publish, server_facts

@pytest.fixture
def broken_setup(dbarch_psycopg):
    publish({marker!r}, server_facts(dbarch_psycopg))
    raise RuntimeError("fixture setup boom")

@pytest.fixture
def broken_teardown(dbarch_psycopg):
    yield dbarch_psycopg
    raise RuntimeError("fixture teardown boom")

def test_fails(dbarch_psycopg):
    dbarch_psycopg.execute("CREATE TABLE t (id int)")
    assert False, "plain failure"

def test_sql_error(dbarch_psycopg):
    dbarch_psycopg.execute("SELECT * FROM no_such_table")

def test_fixture_setup_errors(broken_setup):
    pass

def test_fixture_teardown_errors(broken_teardown):
    broken_teardown.execute("SELECT 1")

def test_still_works_after_all_that(dbarch_psycopg):
    assert dbarch_psycopg.execute("SELECT to_regclass('t')").fetchone() == (None,)
'''


def test_failing_test_and_erroring_fixture_leave_nothing(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...]
) -> None:
    marker = pytester.path / "facts.json"
    write_inner_tests(pytester, FAILING.format(marker=str(marker)))

    result = pytester.runpytest_subprocess(*lean, timeout=60)

    result.assert_outcomes(passed=2, failed=2, errors=2)
    for expected in ("plain failure", "no_such_table", "fixture setup boom", "fixture teardown boom"):
        result.stdout.fnmatch_lines([f"*{expected}*"])
    facts = read_facts(marker)
    assert_nothing_left(runtime_dir)
    assert not is_running(facts["postmaster"])


def test_server_that_fails_to_start_leaves_nothing(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...]
) -> None:
    pytester.makeini("[pytest]\ndbarch_server_options = no_such_setting_at_all=1\n")
    pytester.makepyfile(test_inner="def test_db(dbarch_server):\n    pass\n")

    result = pytester.runpytest_subprocess(*lean, timeout=60)

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*pytest-dbarch: PostgreSQL did not start*"])
    assert_nothing_left(runtime_dir)


# --------------------------------------------------------------------------- signals


@pytest.mark.parametrize(
    ("signum", "sleep"),
    [
        (signal.SIGINT, "sleep"),
        (signal.SIGTERM, "sleep"),
        (signal.SIGINT, "query"),
        (signal.SIGTERM, "query"),
    ],
    ids=["ctrl-c", "sigterm", "ctrl-c-in-query", "sigterm-in-query"],
)
def test_interrupt_tears_down(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...], signum: int, sleep: str
) -> None:
    inner, facts = start_sleeper(pytester, *lean, sleep=sleep)
    time.sleep(0.2)  # let the query reach the server

    started = time.monotonic()
    if signum == signal.SIGINT:
        os.killpg(inner.proc.pid, signum)  # Ctrl-C: the terminal signals the whole group
    else:
        inner.proc.send_signal(signum)  # kill PID, a CI runner's timeout, docker stop
    code = inner.wait()
    elapsed = time.monotonic() - started

    assert code == pytest.ExitCode.INTERRUPTED, inner.output
    assert elapsed < EXIT_TIMEOUT, elapsed
    assert "KeyboardInterrupt" in inner.output, inner.output
    # The session itself tore down before exiting: no need to wait for the guardian.
    assert not is_running(facts["postmaster"]), inner.output
    assert not Path(facts["datadir"]).exists(), inner.output
    assert_nothing_left(runtime_dir)


def test_sigkill_of_pytest_is_cleaned_up_by_the_guardian(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...]
) -> None:
    inner, facts = start_sleeper(pytester, *lean)
    assert guardian_pids(runtime_dir), processes_under(runtime_dir)

    inner.proc.send_signal(signal.SIGKILL)
    assert inner.wait() == -signal.SIGKILL

    assert_nothing_left(runtime_dir)
    assert wait_for(lambda: not is_running(facts["postmaster"])), facts


def test_sigkill_of_pytest_and_guardian_is_reaped_by_next_session(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...]
) -> None:
    inner, facts = start_sleeper(pytester, *lean)
    guardians = guardian_pids(runtime_dir)
    assert len(guardians) == 1, processes_under(runtime_dir)

    # The guardian first, or it would see its pipe close and clean up.
    os.kill(guardians[0], signal.SIGKILL)
    assert wait_for(lambda: not is_running(guardians[0]))
    inner.proc.send_signal(signal.SIGKILL)
    assert inner.wait() == -signal.SIGKILL

    # Nobody is left to clean up: the server and its run directory really are orphaned.
    time.sleep(0.5)
    orphaned = leftover_runs(runtime_dir)
    assert len(orphaned) == 1, leftovers(runtime_dir)
    assert Path(facts["datadir"]).is_relative_to(orphaned[0])
    assert is_running(facts["postmaster"], facts["datadir"]), leftovers(runtime_dir)
    assert any(str(facts["postmaster"]) == p.split(":")[0] for p in processes_under(runtime_dir))

    # The next session reaps them before starting its own server.
    (pytester.path / "test_inner.py").unlink()
    pytester.makepyfile(test_next="def test_db(dbarch_psycopg):\n    dbarch_psycopg.execute('SELECT 1')\n")
    result = pytester.runpytest_subprocess(*lean, timeout=60)
    result.assert_outcomes(passed=1)

    assert not is_running(facts["postmaster"]), leftovers(runtime_dir)
    assert not orphaned[0].exists()
    assert_nothing_left(runtime_dir)


# --------------------------------------------------------------------------- xdist


XDIST = '''
import os
from facts import publish, server_facts

def test_a(dbarch_psycopg):
    assert dbarch_psycopg.execute("SELECT 1").fetchone() == (1,)

def test_crashes_worker(dbarch_psycopg):
    publish({marker!r}, server_facts(dbarch_psycopg))
    os._exit(1)

def test_b(dbarch_psycopg):
    assert dbarch_psycopg.execute("SELECT 2").fetchone() == (2,)
'''


def test_xdist_worker_crash_leaves_nothing(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...]
) -> None:
    pytest.importorskip("xdist")
    marker = pytester.path / "crashed.json"
    write_inner_tests(pytester, XDIST.format(marker=str(marker)))

    result = pytester.runpytest_subprocess(*lean, "-p", "xdist.plugin", "-n", "2", timeout=60)

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*crashed while running*test_crashes_worker*"])
    facts = read_facts(marker)
    assert facts["pytest_pid"] != os.getpid()
    assert_nothing_left(runtime_dir)
    assert not is_running(facts["postmaster"])
    assert not Path(facts["datadir"]).exists()


# --------------------------------------------------------------------------- kept servers


def dbarch_command(*args: str) -> subprocess.CompletedProcess[str]:
    """The ``dbarch`` console script, with this test's environment (runtime dir)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_dbarch.cli", *args], capture_output=True, text=True, timeout=60
    )


def keep_files(runtime_dir: Path) -> list[Path]:
    return sorted(runtime_dir.glob("pytest-dbarch-*/run-*/keep.json"))


def test_kept_server_outlives_the_session_until_dbarch_server_stop(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...]
) -> None:
    first, facts = run_passing_session(pytester, *lean, "-v", "--dbarch-keep-server=on")
    first.stdout.fnmatch_lines(["dbarch server: *, kept running between sessions; cluster cache *"])

    # The session is over; its server is not.
    assert is_running(facts["postmaster"], facts["datadir"])
    assert len(keep_files(runtime_dir)) == 1
    listed = dbarch_command("server", "list")
    assert f"kept while process" in listed.stdout and "not in use" in listed.stdout, listed.stdout

    second, again = run_passing_session(pytester, *lean, "-v", "--dbarch-keep-server=on")
    second.stdout.fnmatch_lines(["dbarch server: *, kept running between sessions; joined a running server"])
    assert again["postmaster"] == facts["postmaster"] and again["datadir"] == facts["datadir"]

    stopped = dbarch_command("server", "stop")
    assert stopped.returncode == 0 and "dbarch: stopped the server in" in stopped.stdout, stopped
    assert_nothing_left(runtime_dir)
    assert not is_running(facts["postmaster"])
    assert "no kept servers" in dbarch_command("server", "stop").stdout


def test_sigkill_of_a_kept_servers_owner_is_reaped(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...]
) -> None:
    """The owner of a kept server is the terminal session pytest ran in (here a shell
    leading its own session): when it dies, the server goes."""
    marker = pytester.path / "facts.json"
    done = pytester.path / "pytest-done"
    write_inner_tests(pytester, PASSING.format(marker=str(marker)))
    command = " ".join([sys.executable, "-m", "pytest", "-q", *lean, "--dbarch-keep-server=on"])
    shell = subprocess.Popen(
        ["/bin/sh", "-c", f"{command} > inner.log 2>&1; touch {done}; sleep 120"],
        cwd=pytester.path,
        start_new_session=True,
    )
    try:
        assert wait_for(done.exists, 120), (pytester.path / "inner.log").read_text()
        facts = read_facts(marker)
        assert is_running(facts["postmaster"], facts["datadir"]), "kept after pytest ended"
        assert len(keep_files(runtime_dir)) == 1

        shell.send_signal(signal.SIGKILL)
        shell.wait(timeout=10)
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.wait()
        # The shell's 'sleep' child is in the same process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)

    assert_nothing_left(runtime_dir)
    assert not is_running(facts["postmaster"])


KEEP_FAILED = '''
import pytest

@pytest.mark.dbarch(isolation="clone")
def test_clone_fails(dbarch_psycopg):
    dbarch_psycopg.execute("CREATE TABLE evidence (id int)")
    dbarch_psycopg.execute("INSERT INTO evidence VALUES (42)")
    dbarch_psycopg.commit()
    assert False, "look at the database"

def test_transaction_fails(dbarch_psycopg):
    assert False

@pytest.mark.dbarch(isolation="clone")
def test_clone_passes(dbarch_psycopg):
    dbarch_psycopg.execute("SELECT 1")
'''


def test_keep_failed_keeps_the_failed_clone_and_its_server(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...]
) -> None:
    import re

    import psycopg

    pytester.makepyfile(test_inner=KEEP_FAILED)
    result = pytester.runpytest_subprocess(*lean, "--dbarch-keep-failed=on", timeout=120)

    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*- dbarch: kept database -*",
            "*kept for debugging: psql 'host=*/sock port=5432 user=postgres dbname=*'",
            "*not kept: transaction isolation rolls the test's writes back; mark it*",
            "dbarch: 1 failed tests' databases kept, the server with them; 'dbarch server stop' ends it:",
            "  test_inner.py::test_clone_fails: *",
        ]
    )
    dsn = re.search(r"psql '([^']+)'", out).group(1)  # type: ignore[union-attr]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT id FROM evidence").fetchall() == [(42,)]
        databases = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'dbarch_%'")]
    # Only the kept clone (and the template it came from) stay: the passing test's
    # clone, the pool's spare ones and the work database were dropped.
    assert len([d for d in databases if not d.startswith("dbarch_template_")]) == 1, databases

    assert "stopped the server" in dbarch_command("server", "stop").stdout
    assert_nothing_left(runtime_dir)


def test_sigkill_during_the_cache_build_leaves_nothing(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed while the migrations run for a cache entry: the guardian stops the
    server, the run directory goes, and the cache holds no half-built entry."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    markers = runtime_dir / "markers"
    markers.mkdir(mode=0o777)
    os.chmod(markers, 0o777)  # the server's account writes the marker there
    marker = markers / "in-migration"
    pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\n")
    (pytester.path / "schema.sql").write_text(
        f"CREATE TABLE t (id int); COPY (SELECT 1) TO '{marker}'; SELECT pg_sleep(60);\n"
    )
    pytester.makepyfile(test_inner="def test_db(dbarch_psycopg):\n    pass\n")
    inner = InnerSession(pytester, *lean)
    inner.wait_for_file(marker)
    inner.proc.send_signal(signal.SIGKILL)
    inner.wait()

    assert_nothing_left(runtime_dir)
    from pytest_dbarch.postgres.cache import ClusterCache

    entries = ClusterCache(tmp_path / "cache" / "pytest-dbarch").entries()
    assert [e[1]["describe"] for e in entries if e[1]] == ["bare cluster"], entries
    assert not [e for e in entries if e[1] is None], "a staging directory was left"


def test_a_zombie_postmaster_counts_as_stopped() -> None:
    """Under xdist the last worker out stops a postmaster another worker started; once it
    exits it is a zombie until that worker reaps it, and must count as gone (waiting for
    it cost every ``-n 2`` session 10 s)."""
    from pytest_dbarch.postgres import runtime

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    stat = Path(f"/proc/{child.pid}/stat")
    for _ in range(5000):  # exited, not reaped: the kernel says Z
        if stat.read_text().rpartition(")")[2].split()[0] == "Z":
            break
        time.sleep(0.001)
    else:
        pytest.fail("the child never became a zombie")
    assert not runtime._alive(child.pid)
    child.wait()
    assert not runtime._alive(child.pid)
    assert runtime._alive(os.getpid())
