"""Run directories of disposable servers: who uses each, and tearing one down from anywhere.

Each server lives in ``<base>/run-*/`` (the base is checked before use, see
``paths``): its data directory, its unix socket, its log, ``server.json`` (how to
reach it) and ``users/``, one empty file per pytest process using it, named
``<pid>-<kernel start time>`` so a reused pid is not mistaken for it. A run may
also have ``keep.json``: kept running between sessions for as long as its owner
process (the terminal session pytest was started from) lives.

A run is in use while one of its users, or its keep owner, is alive. Joining and
leaving happen under an ``flock`` on the base directory, so two processes never
both think they are the last one out. The same ``release`` runs when a session
ends and when its guardian sees pytest die; ``reap_stale`` (the next session)
destroys runs whose users all died with their guardians.

Standard library only (and ``paths``): the guardian imports this.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from pytest_dbarch.postgres.paths import base_mode, base_name, candidate_bases, private_dir, problem, runtime_root

USERS = "users"
OWNER_FILE = "owner.json"  # what versions before 0.2 read: kept for them (one live user)
KEEP_FILE = "keep.json"
SERVER_FILE = "server.json"
LOCK_FILE = ".lock"


def base_dir(explicit: str | None = None, needed: int = 0) -> Path:
    """This user's run directories' parent, created or checked (never another's)."""
    root, _ = runtime_root(explicit or os.environ.get("DBARCH_RUNTIME_DIR"), needed)
    base = root / base_name()
    return private_dir(
        base,
        base_mode(),
        fix=f"remove it (rm -rf {base}) if nobody should have it, or keep the servers "
        "somewhere of your own with DBARCH_RUNTIME_DIR / dbarch_runtime_dir",
    )


@contextlib.contextmanager
def base_lock(base: Path) -> Iterator[None]:
    """Serialises joining, leaving and destroying runs in ``base``."""
    fd = os.open(base / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of a process, so a reused pid is not mistaken for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None if not _alive(pid) else "unknown"
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int) -> bool:
    """Running: a zombie (exited, not yet reaped by its parent, e.g. a postmaster that
    another xdist worker started) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def token_for(pid: int) -> str:
    return f"{pid}-{process_start_time(pid)}"


def token_alive(token: str) -> bool:
    pid, _, start = token.partition("-")
    try:
        return process_start_time(int(pid)) == start
    except ValueError:
        return False


def write_json(path: Path, data: dict[str, object]) -> None:
    """Atomically, mode 0600."""
    tmp = path.with_name(path.name + ".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600), "w") as out:
        out.write(json.dumps(data))
    tmp.replace(path)


def read_json(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def join(rundir: Path, token: str) -> None:
    users = rundir / USERS
    users.mkdir(mode=0o700, exist_ok=True)
    (users / token).touch(mode=0o600)
    if not (rundir / OWNER_FILE).exists():
        _write_owner(rundir, token)


def _write_owner(rundir: Path, token: str) -> None:
    pid, _, start = token.partition("-")
    write_json(rundir / OWNER_FILE, {"pid": int(pid), "start": start})


def _legacy_owner_alive(rundir: Path) -> bool:
    data = read_json(rundir / OWNER_FILE)
    return bool(data) and token_alive(f"{data.get('pid')}-{data.get('start')}")  # type: ignore[union-attr]


def users(rundir: Path) -> list[str]:
    try:
        return sorted(os.listdir(rundir / USERS))
    except OSError:
        return []


def keep_owner(rundir: Path) -> str | None:
    data = read_json(rundir / KEEP_FILE)
    return str(data["owner"]) if data and data.get("owner") else None


def live_users(rundir: Path) -> list[int]:
    """Pids of the pytest processes using the run (a run of an older version: its owner)."""
    if not (rundir / USERS).is_dir():
        data = read_json(rundir / OWNER_FILE) or {}
        return [int(data["pid"])] if _legacy_owner_alive(rundir) else []
    return [int(t.split("-")[0]) for t in users(rundir) if token_alive(t)]


def in_use(rundir: Path) -> bool:
    owner = keep_owner(rundir)
    return bool(live_users(rundir)) or bool(owner and token_alive(owner))


def leave(rundir: Path, token: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(rundir / USERS / token)
    alive = [t for t in users(rundir) if token_alive(t)]
    if alive:
        _write_owner(rundir, alive[0])


def release(rundir: Path, token: str) -> bool:
    """``token`` leaves the run; the last one out destroys it. True if destroyed."""
    with base_lock(rundir.parent):
        leave(rundir, token)
        if rundir.is_dir() and not in_use(rundir):
            destroy(rundir)
            return True
    return False


def keep(rundir: Path, owner: str) -> None:
    """Mark the run as kept running while ``owner`` lives."""
    write_json(rundir / KEEP_FILE, {"owner": owner, "since": time.time()})


def unkeep(rundir: Path) -> bool:
    """Drop the keep mark; destroys the run when nobody uses it. True if destroyed."""
    with base_lock(rundir.parent):
        with contextlib.suppress(OSError):
            os.unlink(rundir / KEEP_FILE)
        if rundir.is_dir() and not in_use(rundir):
            destroy(rundir)
            return True
    return False


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
        time.sleep(0.002)
    return False


def stop_postmaster(datadir: Path, pid: int | None = None, *, clean: bool = False) -> bool:
    """Stop the server of ``datadir``; True when it is gone. A disposable cluster gets
    an immediate shutdown (no checkpoint: milliseconds), then SIGKILL; ``clean``
    (a cluster about to be cached) a fast shutdown, which leaves it consistent."""
    pid = pid or postmaster_pid(datadir)
    if not pid or not _alive(pid) or not _is_postmaster_of(pid, datadir):
        return True
    steps = [(signal.SIGINT, 30.0)] if clean else []
    steps += [(signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)]
    for sig, wait in steps:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        if _wait_gone(pid, wait):
            return sig == signal.SIGINT or not clean
    return False


def destroy(rundir: Path) -> None:
    """Stop the run's server and delete its directory; safe to call twice."""
    import shutil  # here: the guardian imports this module and rarely gets this far

    stop_postmaster(rundir / "data")
    shutil.rmtree(rundir, ignore_errors=True)


def runs(base: Path) -> list[Path]:
    """Run directories in ``base`` that are ours (a planted ``postmaster.pid`` must
    never name a process for us to kill)."""
    found = []
    for rundir in sorted(base.glob("run-*")):
        with contextlib.suppress(OSError):
            if problem(rundir) is None and rundir.is_dir():
                found.append(rundir)
    return found


def reap_stale(base: Path) -> list[Path]:
    """Destroy runs nobody uses any more (sessions killed with their guardians)."""
    reaped = []
    with base_lock(base):
        for rundir in runs(base):
            if not in_use(rundir):
                destroy(rundir)
                reaped.append(rundir)
    return reaped


def reap_everywhere(base: Path) -> list[Path]:
    """``reap_stale`` in ``base`` and in this user's other default bases that exist."""
    reaped = reap_stale(base)
    for other in candidate_bases():
        if other != base and other.is_dir() and problem(other) is None:
            reaped += reap_stale(other)
    return reaped
