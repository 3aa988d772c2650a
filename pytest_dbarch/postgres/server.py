"""One disposable PostgreSQL server: initdb, launch, shut down.

pytest-postgresql's ``PostgreSQLExecutor`` is not reused here, by design: it runs
``pg_ctl`` as the current user (so it dies as root with a raw CalledProcessError), it
starts the server with trust authentication on TCP, where any local user can log in
as superuser, and it waits for ``pg_ctl``'s polling. This module instead:

- runs ``initdb`` and ``postgres`` as an unprivileged account when pytest runs as
  root (see ``accounts``), with binaries that account can execute (``binaries``);
- listens on a unix socket only, in a directory of mode 0700 owned by the server's
  account (so only that account and root get in); TCP only when asked for
  (``dbarch_listen = tcp`` or a port), and then with a random per-run password
  checked by SCRAM, never trust;
- starts ``postgres`` directly with test settings and polls ``postmaster.pid`` every
  few milliseconds until it says "ready";
- shuts down with an immediate stop (milliseconds; the data is thrown away), or a
  fast, clean one for a cluster that goes into the cache.

Where the data directory comes from (the cache, or initdb) is ``cluster``'s business;
who shares the server and who stops it last, ``shared``'s.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from pytest_dbarch.errors import ServerStartError
from pytest_dbarch.postgres import runtime
from pytest_dbarch.postgres.accounts import RunAs, demote
from pytest_dbarch.postgres.binaries import Binaries
from pytest_dbarch.postgres.paths import private_dir

SUPERUSER = "postgres"
SOCKET_PORT = 5432  # names the socket file only; the socket directory is private
LISTEN_MODES = ("socket", "tcp")
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
    "logging_collector": "off",
}
# Settings that decide who can connect: the plugin's, not the user's.
MANAGED_SETTINGS = (
    "listen_addresses",
    "port",
    "unix_socket_directories",
    "unix_socket_permissions",
    "unix_socket_group",
    "hba_file",
    "ident_file",
)
PG_HBA = """\
# Written by pytest-dbarch; see "Security" in its README.
# The socket's directory has mode 0700 and belongs to the server's account: only that
# account and root can reach it.
local   all   all                 trust
# TCP is off unless dbarch_listen = tcp; then every TCP login needs this run's random
# password, checked with SCRAM. Never trust over TCP.
host    all   all   0.0.0.0/0     scram-sha-256
host    all   all   ::/0          scram-sha-256
"""
START_TIMEOUT = 30.0
INITDB_ARGS = (
    "-U", SUPERUSER,
    "--auth-local=trust",
    "--auth-host=scram-sha-256",
    "--encoding=UTF8",
    "--locale=C",
    "--no-sync",
    "--wal-segsize=1",  # 1 MB WAL segments: a smaller cluster to cache and copy
)


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


def parse_options(options: tuple[str, ...]) -> dict[str, str]:
    """``name=value`` lines as settings; the ones that decide who may connect are refused."""
    settings: dict[str, str] = {}
    for line in options:
        name, _, value = line.partition("=")
        name = name.strip()
        if name.lower() in MANAGED_SETTINGS:
            raise ServerStartError(
                f"dbarch_server_options sets {name}, which pytest-dbarch manages: it "
                "decides who can connect to the server",
                "remove it; for TCP set dbarch_listen = tcp (and --dbarch-port for a fixed "
                "port): the server then also listens on 127.0.0.1, with a password",
            )
        settings[name] = value.strip()
    return settings


@dataclass(frozen=True)
class Listen:
    """How clients reach the server: ``socket`` only, or also ``tcp`` on 127.0.0.1."""

    mode: str = "socket"
    port: int | None = None

    @property
    def tcp(self) -> bool:
        return self.mode == "tcp" or self.port is not None

    def describe(self) -> str:
        if self.tcp:
            where = f"127.0.0.1:{self.port}" if self.port else "127.0.0.1 (a free port)"
            return f"unix socket and TCP {where} with a per-run password (SCRAM)"
        return "unix socket only (directory mode 0700)"


@dataclass
class LocalServer:
    """One postmaster and its run directory's data and socket; ``shutdown`` is
    idempotent. ``process`` is None when this process joined a server another one
    started (an xdist worker, a kept-running server)."""

    binaries: Binaries
    account: RunAs
    rundir: Path
    port: int
    listen: Listen = field(default_factory=Listen)
    settings: dict[str, str] = field(default_factory=dict)
    password: str | None = field(default=None, repr=False)
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def plan(
        cls,
        binaries: Binaries,
        account: RunAs,
        rundir: Path,
        listen: Listen,
        settings: dict[str, str],
    ) -> LocalServer:
        """A server to be started in ``rundir``: port and password chosen here."""
        if listen.port is not None and not port_is_free(listen.port):
            raise ServerStartError(
                f"port {listen.port} on 127.0.0.1 is already in use",
                "choose another with --dbarch-port / DBARCH_PORT, or leave it unset "
                "to get a free one",
            )
        port = (listen.port or free_port()) if listen.tcp else SOCKET_PORT
        password = secrets.token_urlsafe(24) if listen.tcp else None
        return cls(binaries, account, rundir, port, listen, settings, password)

    @property
    def datadir(self) -> Path:
        return self.rundir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.rundir / "sock"

    @property
    def log_path(self) -> Path:
        return self.rundir / "server.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else runtime.postmaster_pid(self.datadir)

    def socket_params(self) -> dict[str, object]:
        """Connection parameters through the private socket (no password needed)."""
        return {"host": str(self.socket_dir), "port": self.port, "user": SUPERUSER}

    def params(self) -> dict[str, object]:
        """What clients get: the socket, or TCP with the password in TCP mode."""
        if self.listen.tcp:
            return {"host": "127.0.0.1", "port": self.port, "user": SUPERUSER, "password": self.password}
        return self.socket_params()

    def owned_dir(self, path: Path) -> Path:
        """A new 0700 directory of the server's account (its data, its socket)."""
        private_dir(path, 0o700)
        self.give(path)
        return path

    def give(self, path: Path) -> None:
        if not self.account.is_self:
            os.chown(path, self.account.uid, self.account.gid)

    def _run_as_account(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HOME": str(self.rundir), "LC_ALL": "C", "LANG": "C"}
        env.pop("PGPASSWORD", None)
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            cwd=self.rundir,
            env=env,
            **demote(self.account),  # type: ignore[arg-type]
        )

    def initdb(self) -> None:
        """A new cluster in the data directory."""
        self.owned_dir(self.datadir)
        result = self._run_as_account(
            [self.binaries.tool("initdb"), "-D", str(self.datadir), *INITDB_ARGS]
        )
        if result.returncode != 0:
            raise ServerStartError(
                f"initdb failed (exit {result.returncode}) running as {self.account.name}:\n"
                + (result.stderr or result.stdout).strip(),
                "check the binaries with --dbarch-pg-bin, or use an existing server "
                "with --dbarch-dsn",
            )
        hba = self.datadir / "pg_hba.conf"
        hba.write_text(PG_HBA)
        os.chmod(hba, 0o600)
        self.give(hba)

    def launch(self, *, tcp: bool | None = None) -> None:
        """Start ``postgres`` on the data directory and wait until it accepts
        connections. ``tcp=False``: socket only, whatever the mode (cache builds)."""
        tcp = self.listen.tcp if tcp is None else tcp
        if not self.socket_dir.exists():
            self.owned_dir(self.socket_dir)
        for attempt in range(3):
            if self._try_launch(tcp):
                if tcp and self.password:
                    self._set_password()
                return
            log = self._log_tail()
            if "already in use" in log and self.listen.port is None and attempt < 2 and tcp:
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

    def _try_launch(self, tcp: bool) -> bool:
        settings = {
            **FAST_SETTINGS,
            **self.settings,
            "listen_addresses": "127.0.0.1" if tcp else "",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "unix_socket_permissions": "0700",
        }
        args = [self.binaries.tool("postgres"), "-D", str(self.datadir)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with open(fd, "ab") as log:
            self.process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.rundir,
                start_new_session=True,
                close_fds=True,
                **demote(self.account),  # type: ignore[arg-type]
            )
        deadline = time.monotonic() + START_TIMEOUT
        pidfile = self.datadir / "postmaster.pid"
        delay = 0.001
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                lines = pidfile.read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return True
            time.sleep(delay)
            delay = min(delay * 1.5, 0.01)
        self.process.kill()
        self.process.wait()
        return False

    def _set_password(self) -> None:
        """Give the superuser this run's password, sent as a SCRAM verifier so the
        password itself never reaches the server or its log."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(**self.socket_params(), dbname="postgres", autocommit=True) as conn:
            verifier = conn.pgconn.encrypt_password(
                str(self.password).encode(), SUPERUSER.encode(), b"scram-sha-256"
            )
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(SUPERUSER), sql.Literal(verifier.decode())
                )
            )

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def shutdown(self, *, clean: bool = False) -> None:
        """Stop the postmaster: immediately, or (``clean``) with a shutdown checkpoint
        that leaves the data directory fit for the cache."""
        gone = runtime.stop_postmaster(self.datadir, self.pid, clean=clean)
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.process = None
        if clean and not gone:
            raise ServerStartError(
                f"PostgreSQL did not shut down cleanly (log {self.log_path}):\n{self._log_tail()}",
                "this cluster is not cached; read the log",
            )

    def facts(self) -> dict[str, object]:
        """What a process joining this server needs (``server.json``; no password)."""
        return {
            "bindir": str(self.binaries.bindir),
            "source": self.binaries.source,
            "version": self.binaries.version,
            "account": [self.account.name, self.account.uid, self.account.gid],
            "port": self.port,
            "listen": [self.listen.mode, self.listen.port],
            "postmaster": self.pid,
        }

    @classmethod
    def joined(cls, rundir: Path, facts: dict[str, object], password: str | None) -> LocalServer:
        name, uid, gid = facts["account"]  # type: ignore[misc]
        mode, port = facts["listen"]  # type: ignore[misc]
        binaries = Binaries(Path(str(facts["bindir"])), str(facts["source"]), str(facts["version"]))
        return cls(binaries, RunAs(name, uid, gid), rundir, int(facts["port"]),  # type: ignore[call-overload]
                   Listen(mode, port), password=password)
