"""pytest-xdist: one server for all workers, each with its own databases; the template
built once; nothing left when either worker is killed.

Inner sessions run ``--dist each`` so that every worker runs the one test: each
publishes what it sees (its worker id, the data directory, the postmaster, its
database), then waits for the outer test's word.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("xdist")

HOLD = '''
import json, os, pathlib, time

def test_hold(dbarch_psycopg):
    conn = dbarch_psycopg
    worker = os.environ["PYTEST_XDIST_WORKER"]
    datadir = conn.execute("SELECT current_setting('data_directory')").fetchone()[0]
    facts = {{
        "worker": worker,
        "pid": os.getpid(),
        "datadir": datadir,
        "postmaster": int(pathlib.Path(datadir, "postmaster.pid").read_text().split()[0]),
        "database": conn.execute("SELECT current_database()").fetchone()[0],
        "templates": conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'dbarch_template_%'").fetchone()[0],
    }}
    out = pathlib.Path({where!r}, f"facts-{{worker}}.json")
    out.with_suffix(".tmp").write_text(json.dumps(facts))
    out.with_suffix(".tmp").replace(out)
    deadline = time.monotonic() + 60
    while not pathlib.Path({where!r}, f"go-{{worker}}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert conn.execute("SELECT count(*) FROM notes").fetchone() == (0,)  # the server is still there
'''


def _processes_under(path: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue
            if str(path) in cmdline or cwd.startswith(str(path) + os.sep):
                found.append(f"{proc.name}: {cmdline}")
    return found


def _leftovers(runtime_dir: Path) -> list[str]:
    """Processes that name or work in the runtime directory, and run directories."""
    return _processes_under(runtime_dir) + [str(p) for p in runtime_dir.glob("pytest-dbarch-*/run-*")]


def _wait(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def lean(monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return ("-p", "no:cacheprovider", "-p", "pytest_dbarch.plugin", "-p", "xdist.plugin")


class Workers:
    """An inner ``-n 2 --dist each`` session whose two workers hold their databases."""

    def __init__(self, pytester: pytest.Pytester, lean: tuple[str, ...], *args: str, ini: str = "") -> None:
        self.where = pytester.path
        pytester.makeini(f"[pytest]\ndbarch_sql_files = schema.sql\n{ini}")
        (pytester.path / "schema.sql").write_text("CREATE TABLE notes (id int);\n")
        pytester.makepyfile(test_hold=HOLD.format(where=str(pytester.path)))
        self.log = pytester.path / "inner.log"
        self._out = open(self.log, "wb")  # noqa: SIM115  (closed in finish)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", *lean, "-n", "2", "--dist", "each",
             "--max-worker-restart=0", "-rA", *args],
            cwd=pytester.path, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def facts(self) -> dict[str, dict[str, Any]]:
        paths = [self.where / f"facts-gw{i}.json" for i in (0, 1)]
        if not _wait(lambda: all(p.exists() for p in paths) or self.proc.poll() is not None, 120):
            self.proc.kill()
        if not all(p.exists() for p in paths):
            self.finish()
            pytest.fail(f"the workers never reached their databases:\n{self.output}")
        return {p.stem.split("-")[1]: json.loads(p.read_text()) for p in paths}

    def go(self, worker: str) -> None:
        (self.where / f"go-{worker}").touch()

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def finish(self) -> str:
        self.go("gw0")
        self.go("gw1")
        try:
            self.proc.wait(timeout=120)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._out.close()
        return self.output


def test_workers_share_one_server_with_their_own_databases(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...]
) -> None:
    workers = Workers(pytester, lean, "-v")
    try:
        facts = workers.facts()
    finally:
        output = workers.finish()
    assert "2 passed" in output, output

    gw0, gw1 = facts["gw0"], facts["gw1"]
    assert gw0["datadir"] == gw1["datadir"] and gw0["postmaster"] == gw1["postmaster"], facts
    assert gw0["database"] != gw1["database"], facts  # per-worker databases
    assert "_gw0_" in gw0["database"] and "_gw1_" in gw1["database"], facts
    assert gw0["templates"] == gw1["templates"] == 1, facts  # the template was built once
    assert "shared by the xdist workers" in output, output
    assert _wait(lambda: not _leftovers(runtime_dir), 15) is True, _leftovers(runtime_dir)


def test_per_worker_servers_on_request(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...]
) -> None:
    workers = Workers(pytester, lean, ini="dbarch_xdist_server = per-worker\n")
    try:
        facts = workers.facts()
    finally:
        output = workers.finish()
    assert "2 passed" in output, output
    assert facts["gw0"]["datadir"] != facts["gw1"]["datadir"], facts
    assert _wait(lambda: not _leftovers(runtime_dir), 15) is True, _leftovers(runtime_dir)


@pytest.mark.parametrize("victim", ["starter", "joiner"])
def test_killing_either_worker_leaves_the_other_its_server_and_nothing_behind(
    pytester: pytest.Pytester, runtime_dir: Path, lean: tuple[str, ...], victim: str
) -> None:
    workers = Workers(pytester, lean)
    try:
        facts = workers.facts()
        postmaster = facts["gw0"]["postmaster"]
        parent = int(Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()[1])
        starter = next(w for w, f in facts.items() if f["pid"] == parent)
        killed = starter if victim == "starter" else next(w for w in facts if w != starter)
        survivor = next(w for w in facts if w != killed)

        os.kill(facts[killed]["pid"], signal.SIGKILL)
        assert _wait(lambda: not _alive(facts[killed]["pid"]), 15)
        time.sleep(0.5)  # the killed worker's guardian has released its place by now
        assert _alive(postmaster), "the server went away under the surviving worker"
        workers.go(survivor)  # its test queries the server once more
    finally:
        output = workers.finish()

    assert "1 passed" in output, output
    assert f"[{killed}] node down" in output or "crashed" in output, output
    assert _wait(lambda: not _leftovers(runtime_dir), 15) is True, _leftovers(runtime_dir)
    assert not _alive(postmaster)
