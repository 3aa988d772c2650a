"""A session's place on a server: its own, one shared by xdist workers, or one kept
running between sessions.

- **Private** (the default): a run directory of its own, destroyed when the session
  ends.
- **Shared by xdist workers**: all workers of one ``pytest -n`` run use one server,
  in ``run-x<testrunuid>``. The first worker to take the base directory's lock
  starts it (holding the run's ``start.lock`` until it is ready, so the others wait
  instead of starting their own); each worker joins it as a user; the last one out
  stops it. Each has its own databases on it.
- **Kept running** (``dbarch_keep_server``, or a session that kept a failed test's
  database): the run stays after the session, for the next session to join in
  milliseconds, until ``dbarch server stop`` or until the terminal session pytest
  was started from ends (a ``guardian --keep`` watches it).

Every process that joins a run starts a guardian holding a pipe: however the
process dies, its place is released, and whoever is last destroys the run.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

from pytest_dbarch.config import Settings
from pytest_dbarch.errors import DbarchError, ServerStartError
from pytest_dbarch.postgres import runtime, template
from pytest_dbarch.postgres.accounts import RunAs, choose_account
from pytest_dbarch.postgres.binaries import Binaries, find_binaries, usable_by
from pytest_dbarch.postgres.cache import ClusterCache
from pytest_dbarch.postgres.cluster import CacheWarning, Prepared, cache_key, prepare
from pytest_dbarch.postgres.paths import RAMDISK_MIN_FREE, UnsafePath, base_mode, cache_root, runtime_root
from pytest_dbarch.postgres.server import Listen, LocalServer, parse_options

START_LOCK = "start.lock"
ERROR_FILE = "error.txt"
PASSWORD_FILE = "password"
JOIN_TIMEOUT = 600.0  # a first worker may be running a long migration history


@dataclass(frozen=True)
class Plan:
    """Everything that decides which server a session needs."""

    binaries: Binaries
    account: RunAs
    listen: Listen
    settings: dict[str, str]
    base: Path
    where: str  # why the base is where it is (RAM disk or not)
    cache: ClusterCache | None
    keep: bool = False
    xdist_run: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, fingerprint: str | None) -> Plan:
        server_settings = parse_options(settings.server_options)
        account = choose_account(settings.run_as)
        found = find_binaries(settings.pg_bin)
        cache = ClusterCache(cache_root(settings.cache_dir)) if settings.cache == "on" else None
        if cache is not None:
            try:
                cache.ensure()
            except UnsafePath:
                raise
            except OSError as exc:  # a read-only home: go on without the cache
                warnings.warn(CacheWarning(f"pytest-dbarch: cluster cache {cache.root} unusable: {exc}"),
                              stacklevel=2)
                cache = None
        needed = 0
        if cache is not None:
            entry = cache.lookup(cache_key(found, server_settings, fingerprint))
            needed = 6 * entry.bytes if entry else 0  # room for clones and the work databases
        root, where = runtime_root(settings.runtime_dir, max(needed, RAMDISK_MIN_FREE))
        base = runtime.base_dir(str(root))
        xdist_run = os.environ.get("PYTEST_XDIST_TESTRUNUID") if os.environ.get("PYTEST_XDIST_WORKER") else None
        return cls(
            binaries=usable_by(account, found, base),
            account=account,
            listen=Listen(settings.listen, settings.port),
            settings=server_settings,
            base=base,
            where=where,
            cache=cache,
            keep=settings.keep_server == "on",
            xdist_run=xdist_run if settings.xdist_server == "shared" else None,
        )

    def ready_without_build(self, fingerprint: str | None) -> bool:
        """The cache holds the cluster with this schema (``fingerprint`` None: the bare
        cluster), or the shared server this plan joins already runs."""
        name = self.shared_name()
        if name and runtime.in_use(self.base / name):
            return True
        return self.cache is not None and self.cache.lookup(
            cache_key(self.binaries, self.settings, fingerprint)) is not None

    def shared_name(self) -> str | None:
        """The run directory's name when the run is shared; None: a private one."""
        if self.keep:
            parts = [str(self.binaries.identity), self.binaries.version, self.account.name,
                     self.listen.tcp, self.listen.port, sorted(self.settings.items()),
                     str(self.cache.root) if self.cache else None]
            return "run-k" + hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
        if self.xdist_run:
            return "run-x" + hashlib.sha256(self.xdist_run.encode()).hexdigest()[:16]
        return None


@dataclass
class Lease:
    """This process's place on a running server."""

    server: LocalServer
    token: str
    kind: str  # private, xdist, kept
    where: str
    prepared: Prepared | None  # how the server was started, when this process did
    guardian: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    reaped: list[Path] = field(default_factory=list)

    @property
    def rundir(self) -> Path:
        return self.server.rundir

    @property
    def exclusive(self) -> bool:
        """Nobody else uses the server and it is thrown away at the end: dropping
        databases first would only delay that."""
        return self.kind == "private" and not self.is_kept()

    def is_kept(self) -> bool:
        return runtime.keep_owner(self.rundir) is not None

    def keep(self) -> None:
        """Keep the server running after the session, for as long as the terminal
        session pytest was started from lives (or until ``dbarch server stop``)."""
        if not self.is_kept():
            runtime.keep(self.rundir, keep_owner_token())
            _start_keeper(self.rundir)

    def describe(self) -> str:
        """Where the server lives and how this session got it."""
        how = self.prepared.describe() if self.prepared else "joined a running server"
        shared = {"xdist": ", shared by the xdist workers", "kept": ", kept running between sessions"}
        return f"{self.rundir} ({self.where}){shared.get(self.kind, '')}; {how}"

    def release_soon(self) -> None:
        """``release`` in a thread, so that stopping the server and deleting its
        directory (mostly waiting for processes and the file system) overlaps the rest
        of pytest's session end; ``finish_releases`` waits for it."""
        thread = threading.Thread(target=self.release, name="dbarch-server-stop")
        with _RELEASING_LOCK:
            _RELEASING.append(thread)
        thread.start()

    def release(self) -> None:
        """Leave the run; the last one out stops the server and deletes its directory."""
        runtime.release(self.rundir, self.token)
        if self.server.process is not None:
            if not self.rundir.exists():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.server.process.wait(timeout=5)
            self.server.process = None
        if self.guardian is not None:
            # Its one job, releasing this token, is done: no need to wait while it
            # wakes up to find that out.
            self.guardian.kill()
            self.guardian.wait()
            if self.guardian.stdin:
                self.guardian.stdin.close()
            self.guardian = None


_RELEASING: list[threading.Thread] = []
_RELEASING_LOCK = threading.Lock()


def finish_releases() -> None:
    """Wait for every ``release_soon``: called before pytest exits (and at exit)."""
    with _RELEASING_LOCK:
        threads = list(_RELEASING)
        _RELEASING.clear()
    for thread in threads:
        thread.join()


atexit.register(finish_releases)


def start_local(settings: Settings, source: template.SchemaSource) -> Lease:
    """The session's local server, as ``settings`` ask for it."""
    plan, fingerprint = _plan(settings, source)
    return _acquire_for(plan, source, fingerprint)


def start_cached(settings: Settings, source: template.SchemaSource) -> Lease | None:
    """``start_local`` when that runs no migration (the cache holds the schema, or the
    shared server is already running: see ``early``); None, with nothing started,
    otherwise."""
    plan, fingerprint = _plan(settings, source)
    if not plan.ready_without_build(None if source.empty else fingerprint):
        return None
    return _acquire_for(plan, source, fingerprint)


def _plan(settings: Settings, source: template.SchemaSource) -> tuple[Plan, str | None]:
    fingerprint = None
    if settings.cache == "on" and not source.empty:
        fingerprint = template.fingerprint(source, settings.cache_key_files)
    return Plan.from_settings(settings, fingerprint), fingerprint


def _acquire_for(plan: Plan, source: template.SchemaSource, fingerprint: str | None) -> Lease:
    if plan.cache is not None and fingerprint is None and not source.empty:
        # Inputs the key cannot cover (an Alembic config without script_location...):
        # the cached bare cluster still saves initdb; the template is built in the session.
        lease = acquire(plan, None, None)
        if lease.prepared is not None:
            lease.prepared = replace(
                lease.prepared, cache=f"{lease.prepared.cache} (bare cluster: the schema's inputs "
                "cannot be fingerprinted, it is built in the session)"
            )
        return lease
    return acquire(plan, None if source.empty else source, fingerprint)


def acquire(plan: Plan, source: template.SchemaSource | None, fingerprint: str | None) -> Lease:
    """A lease on the server ``plan`` asks for: joined if one is running (shared,
    kept), else started, its data directory from the cache (see ``cluster``)."""
    reaped = runtime.reap_everywhere(plan.base)
    token = runtime.token_for(os.getpid())
    name = plan.shared_name()
    kind = "kept" if plan.keep else "xdist" if plan.xdist_run else "private"
    start_lock: int | None = None
    with runtime.base_lock(plan.base):
        rundir = plan.base / name if name else None
        joining = False
        if rundir is not None and rundir.is_dir():
            if runtime.in_use(rundir):
                joining = True
            else:
                runtime.destroy(rundir)
        if rundir is None:
            rundir = Path(tempfile.mkdtemp(prefix="run-", dir=plan.base))
        elif not joining:
            rundir.mkdir(mode=0o700)
        if not joining:
            os.chmod(rundir, base_mode())
            start_lock = _hold(rundir / START_LOCK, fcntl.LOCK_EX)
        runtime.join(rundir, token)
    guardian = _start_guardian(rundir, token)
    try:
        if joining:
            return Lease(_join(rundir), token, kind, plan.where, None, guardian, reaped)
        server, prepared = _start(plan, rundir, source, fingerprint)
        lease = Lease(server, token, kind, plan.where, prepared, guardian, reaped)
        if plan.keep:
            lease.keep()
        return lease
    except BaseException as exc:
        if start_lock is not None:
            _write_error(rundir, exc)
            os.close(start_lock)
            start_lock = None
        runtime.release(rundir, token)
        if guardian.stdin:
            guardian.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            guardian.wait(timeout=10)
        raise
    finally:
        if start_lock is not None:
            os.close(start_lock)


def _start(
    plan: Plan, rundir: Path, source: template.SchemaSource | None, fingerprint: str | None
) -> tuple[LocalServer, Prepared]:
    server = LocalServer.plan(plan.binaries, plan.account, rundir, plan.listen, plan.settings)
    try:
        prepared = prepare(server, plan.cache, source, fingerprint)
        if server.password:
            path = rundir / PASSWORD_FILE
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with open(fd, "w") as out:
                out.write(server.password)
        runtime.write_json(rundir / runtime.SERVER_FILE, server.facts())
    except BaseException:
        server.shutdown()
        raise
    return server, prepared


def _join(rundir: Path) -> LocalServer:
    """Wait until the run's starter is done, then describe its server."""
    deadline = time.monotonic() + JOIN_TIMEOUT
    while (fd := _hold(rundir / START_LOCK, fcntl.LOCK_SH | fcntl.LOCK_NB)) is None:
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"waited {JOIN_TIMEOUT:.0f} s for another pytest process to start the shared "
                f"server in {rundir}",
                "look at what that process is doing (a migration that hangs?)",
            )
        time.sleep(0.01)
    os.close(fd)
    facts = runtime.read_json(rundir / runtime.SERVER_FILE)
    if facts is None:
        try:
            why = (rundir / ERROR_FILE).read_text().strip()
        except OSError:
            why = "it ended without saying why"
        raise ServerStartError(
            f"the server shared with other pytest processes (xdist workers, a kept server) "
            f"did not start: {why}",
            "see the error of the process that started it (the first worker)",
        )
    password = None
    with contextlib.suppress(OSError):
        password = (rundir / PASSWORD_FILE).read_text()
    server = LocalServer.joined(rundir, facts, password)
    if runtime.postmaster_pid(server.datadir) is None:
        raise ServerStartError(
            f"the shared server in {rundir} is not running any more",
            "run again; if it repeats, stop kept servers with 'dbarch server stop'",
        )
    return server


def _hold(path: Path, mode: int) -> int | None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, mode)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _write_error(rundir: Path, exc: BaseException) -> None:
    with contextlib.suppress(OSError):
        text = exc.cause if isinstance(exc, DbarchError) else f"{type(exc).__name__}: {exc}"
        (rundir / ERROR_FILE).write_text(text)


def guardian_command(*args: str) -> list[str]:
    """The guardian in an interpreter without ``site`` (``-I -S``): it needs only this
    package's standard-library-only ``runtime`` module, and a plain interpreter starts
    in a fraction of the time (each xdist worker and each session starts one)."""
    package_parent = str(Path(__file__).resolve().parents[2])
    bootstrap = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
                 "from pytest_dbarch.postgres.guardian import main; sys.exit(main(sys.argv[1:]))")
    return [sys.executable, "-I", "-S", "-c", bootstrap, package_parent, *args]


def _start_guardian(rundir: Path, token: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        guardian_command(str(rundir), token),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def _start_keeper(rundir: Path) -> None:
    """``guardian --keep``, detached: started through a shell that exits at once, so
    it is nobody's child (it outlives this process by design)."""
    command = shlex.join(guardian_command("--keep", str(rundir)))
    subprocess.run(
        ["/bin/sh", "-c", f"{command} </dev/null >/dev/null 2>&1 &"],
        check=True,
        start_new_session=True,
        close_fds=True,
    )


def _parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 1


def keep_owner_token() -> str:
    """Who a kept server lives for: the terminal session pytest was started from
    (its session leader), so wrappers such as make, tox or uv that exit with pytest
    do not end it; pytest's parent when pytest leads its own session."""
    me = os.getpid()
    pytest_pid = _parent_of(me) if os.environ.get("PYTEST_XDIST_WORKER") else me
    leader = os.getsid(0)
    owner = leader if leader not in (0, 1, me, pytest_pid) else _parent_of(pytest_pid)
    return runtime.token_for(owner)
