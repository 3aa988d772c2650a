"""Run directories of disposable servers, and how to tear one down from anywhere.

Each server lives in ``<tmp>/pytest-dbarch-<uid>/run-*/`` with its data directory, its
unix socket and an ``owner.json`` naming the pytest process that owns it. The base
directory is checked before use (``paths``): only ours, never a symlink or a directory
others may write to. The same ``destroy`` is used by the session itself, by the
guardian process when pytest dies, and by the next session when it finds a run whose
owner is gone. Standard library only (and ``paths``): the guardian imports this.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

from pytest_dbarch.postgres.paths import base_mode, base_name, private_dir, problem, runtime_root

OWNER_FILE = "owner.json"


def base_dir(explicit: str | None = None) -> Path:
    """This user's run directories' parent, created or checked (never another's)."""
    root, why = runtime_root(explicit or os.environ.get("DBARCH_RUNTIME_DIR"))
    base = root / base_name()
    return private_dir(
        base,
        base_mode(),
        fix=f"remove it (rm -rf {base}) if nobody should have it, or keep the servers "
        "somewhere of your own with DBARCH_RUNTIME_DIR / dbarch_runtime_dir",
    )


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of a process, so a reused pid is not mistaken for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None if not _alive(pid) else "unknown"
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_owner(rundir: Path, **extra: object) -> None:
    pid = os.getpid()
    data = {"pid": pid, "start": process_start_time(pid), **extra}
    tmp = rundir / (OWNER_FILE + ".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(json.dumps(data))
    tmp.replace(rundir / OWNER_FILE)


def owner_alive(rundir: Path) -> bool:
    try:
        data = json.loads((rundir / OWNER_FILE).read_text())
    except (OSError, ValueError):
        # No owner file yet: a run being created right now, unless it is old.
        try:
            return time.time() - rundir.stat().st_mtime < 60
        except OSError:
            return False
    pid = int(data.get("pid", 0))
    return pid > 0 and process_start_time(pid) == data.get("start")


def postmaster_pid(datadir: Path) -> int | None:
    try:
        first = (datadir / "postmaster.pid").read_text().splitlines()[0]
        return int(first)
    except (OSError, ValueError, IndexError):
        return None


def _is_postmaster_of(pid: int, datadir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return _alive(pid)
    return any(os.fsencode(str(datadir)) in part for part in cmdline)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # Reap it if it is our child; otherwise just look.
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            pass
        if not _alive(pid):
            return True
        time.sleep(0.01)
    return False


def stop_postmaster(datadir: Path, pid: int | None = None) -> None:
    """Fast shutdown, then immediate, then SIGKILL: a server never outlives this."""
    pid = pid or postmaster_pid(datadir)
    if not pid or not _alive(pid) or not _is_postmaster_of(pid, datadir):
        return
    for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _wait_gone(pid, wait):
            return


def destroy(rundir: Path) -> None:
    """Stop the run's server and delete its directory; safe to call twice."""
    stop_postmaster(rundir / "data")
    shutil.rmtree(rundir, ignore_errors=True)


def reap_stale(base: Path | None = None) -> list[Path]:
    """Destroy runs whose owning pytest process is gone (killed earlier sessions)."""
    base = base or base_dir()
    reaped = []
    for rundir in sorted(base.glob("run-*")):
        # Only our own directories: a planted postmaster.pid must not name a process to kill.
        if problem(rundir) is None and rundir.is_dir() and not owner_alive(rundir):
            destroy(rundir)
            reaped.append(rundir)
    return reaped
