"""An existing server given by DSN: checked first, and only our own databases are touched."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pytest_dbarch.postgres.info import ServerInfo
from tests.conftest import database_names

USES_DB = """
def test_db(dbarch_psycopg, dbarch_server):
    print("MODE", dbarch_server.mode)
"""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, dsn: str, how: str) -> pytest.RunResult:
    pytester.makepyfile(USES_DB)
    if how == "env":
        monkeypatch.setenv("DBARCH_DSN", dsn)
        return pytester.runpytest("-s")
    if how == "ini":
        pytester.makeini(f"[pytest]\ndbarch_dsn = {dsn}\n")
        return pytester.runpytest("-s")
    return pytester.runpytest("-s", f"--dbarch-dsn={dsn}")


@pytest.mark.parametrize("how", ["env", "ini", "cli"])
def test_dsn_from_env_ini_and_cli(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, admin: psycopg.Connection, dbarch_server: ServerInfo, how: str
) -> None:
    monkeypatch.delenv("DBARCH_DSN", raising=False)
    before = database_names(admin)
    result = _run(pytester, monkeypatch, dbarch_server.url().replace("+psycopg", ""), how)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["dbarch: existing server *", "*MODE external*"])
    assert database_names(admin) == before, "the session left or removed databases"


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("mysql://root@localhost/shop", "*the DSN is a 'mysql' URL, not PostgreSQL*"),
        ("sqlite:///app.db", "*the DSN is a 'sqlite' URL, not PostgreSQL*"),
        ("host=127.0.0.1 port=1 user=postgres connect_timeout=2", "*cannot connect to the server from env DBARCH_DSN (*host=127.0.0.1 port=1*): *Connection refused*"),
        ("not a dsn at all", "*the DSN cannot be parsed*"),
    ],
)
def test_unusable_dsn(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, dsn: str, message: str) -> None:
    result = _run(pytester, monkeypatch, dsn, "env")
    if "cannot connect" in message:  # only a connection attempt can tell
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines([message, "*fix: *"])
    else:  # a DSN that cannot work stops the session at start-up, once
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["ERROR: dbarch: dbarch_dsn from env DBARCH_DSN: " + message.lstrip("*"), "*fix: *"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.fixture
def role_without_createdb(admin: psycopg.Connection, dbarch_server: ServerInfo) -> Iterator[str]:
    admin.execute("DROP ROLE IF EXISTS dbarch_nocreate")
    admin.execute("CREATE ROLE dbarch_nocreate LOGIN PASSWORD 's3cret-pw' NOCREATEDB")
    params = dbarch_server.conninfo()
    yield f"host={params['host']} port={params['port']} user=dbarch_nocreate password=s3cret-pw dbname=postgres"
    admin.execute("DROP ROLE dbarch_nocreate")


def test_role_without_createdb(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, role_without_createdb: str) -> None:
    result = _run(pytester, monkeypatch, role_without_createdb, "env")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*role 'dbarch_nocreate' on the server from env DBARCH_DSN may not create databases*", "*ALTER ROLE dbarch_nocreate CREATEDB*"])
    assert "s3cret-pw" not in result.stdout.str()


def test_password_never_printed(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, admin: psycopg.Connection, dbarch_server: ServerInfo) -> None:
    admin.execute("DROP ROLE IF EXISTS dbarch_pw")
    admin.execute("CREATE ROLE dbarch_pw LOGIN CREATEDB PASSWORD 'hunter2-secret'")
    try:
        params = dbarch_server.conninfo()
        dsn = f"host={params['host']} port={params['port']} user=dbarch_pw password=hunter2-secret dbname=postgres"
        pytester.makepyfile(
            """
            def test_fails(dbarch_psycopg, dbarch_server):
                assert dbarch_server.safe_dsn().count("***") == 1
                assert False, "boom"
            """
        )
        monkeypatch.setenv("DBARCH_DSN", dsn)
        result = pytester.runpytest("-v")
        result.assert_outcomes(failed=1)
        assert "hunter2-secret" not in result.stdout.str() + result.stderr.str()
    finally:
        # databases the inner run created are gone; the role owns nothing
        admin.execute("DROP ROLE dbarch_pw")


def test_never_drops_a_database_it_did_not_create(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, admin: psycopg.Connection, dbarch_server: ServerInfo
) -> None:
    """Even a database whose name looks like ours survives the session."""
    lookalike = "dbarch_000000_main_t1"
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(lookalike)))
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(lookalike)))
    try:
        pytester.makeini("[pytest]\ndbarch_isolation = clone\n")
        result = _run(pytester, monkeypatch, dbarch_server.dsn(), "env")
        result.assert_outcomes(passed=1)
        assert lookalike in database_names(admin)
    finally:
        admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(lookalike)))


def test_janitor_refuses_foreign_names(dbarch_server: ServerInfo) -> None:
    from pytest_dbarch.errors import DbarchError
    from pytest_dbarch.postgres.janitor import Janitor

    with Janitor(dbarch_server.conninfo(), dbarch_server.major) as janitor:
        with pytest.raises(DbarchError, match="refusing to drop database 'postgres'"):
            janitor.drop("postgres")
        with pytest.raises(DbarchError, match="this session did not create it"):
            janitor.drop_later("template1")
