"""No password in any output, tracebacks included.

A role with a password on the outer server; the inner session gets it in
``--dbarch-dsn``; one failing test per fixture, run with ``--tb=long --showlocals``
(``-l``) and ``-vv``; the password must appear nowhere: not in pytest's output, the
JUnit file or the ``.temp/`` report, while every URL and DSN still connects.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pytest_dbarch.postgres.info import ServerInfo
from pytest_dbarch.redact import Password, Redacted
from tests.report_sessions import lean_inner_sessions, snapshot  # noqa: F401 (autouse fixture)

FAILING_PER_FIXTURE = '''
import os
import psycopg
import pytest
from sqlalchemy import create_engine, text
from pytest_dbarch.stash import SETTINGS

PASSWORD = os.environ["SECRET_PASSWORD"]
ROLE = os.environ["SECRET_ROLE"]


def test_the_url_is_real_and_works(dbarch_url, dbarch_psycopg):
    # The real text, for every use: SQLAlchemy, psycopg, string operations.
    assert PASSWORD in str(dbarch_url) and dbarch_url.startswith("postgresql+psycopg://")
    engine = create_engine(dbarch_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT current_user").scalar() == ROLE
    engine.dispose()
    with psycopg.connect(dbarch_url.replace("+psycopg", "")) as raw:
        assert raw.execute("SELECT current_user").fetchone()[0] == ROLE
    assert dbarch_psycopg.execute("SELECT current_user").fetchone()[0] == ROLE


def test_url_equality(dbarch_url):
    assert dbarch_url == "postgresql+psycopg://somebody:else@elsewhere/db"


def test_url_contains(dbarch_url):
    assert "nothing-like-this" in dbarch_url


def test_url_in_a_local(dbarch_url):
    url = dbarch_url
    assert not url


def test_server(dbarch_server):
    dsn = dbarch_server.dsn()
    assert dbarch_server is None


def test_engine(dbarch_engine):
    with dbarch_engine.connect() as connection:
        connection.execute(text("SELEC 1"))


def test_own_engine(dbarch_url):
    engine = create_engine(dbarch_url)
    with engine.connect() as connection:
        connection.exec_driver_sql("SELEC 2")


def test_psycopg(dbarch_psycopg):
    dbarch_psycopg.execute("SELEC 3")


def test_session(dbarch_session):
    dbarch_session.execute(text("SELEC 4"))


def test_template_and_connection(dbarch_template, dbarch_connection):
    assert not dbarch_template, dbarch_connection


def test_settings(request):
    settings = request.config.stash[SETTINGS]
    assert settings.dsn is None, settings


@pytest.mark.asyncio
async def test_async_engine(dbarch_async_engine, dbarch_async_session):
    assert dbarch_async_engine is None


@pytest.mark.usefixtures("broken_engine_options")
def test_fixture_error_through_the_plugin(dbarch_engine):
    pass
'''

CONFTEST = '''
import pytest

@pytest.fixture
def broken_engine_options():
    pass

@pytest.fixture
def dbarch_engine_options(request):
    # An override that breaks create_engine inside the plugin's dbarch_engine fixture.
    if "broken_engine_options" in request.fixturenames:
        return {"no_such_create_engine_option": 1}
    return {}
'''


@pytest.fixture
def password_role(admin: psycopg.Connection, dbarch_server: ServerInfo) -> Iterator[tuple[str, str, str]]:
    """A login role with a password and CREATEDB: (role, password, its postgresql:// URL)."""
    role = f"dbarch_app_{secrets.token_hex(4)}"
    password = f"pw-{secrets.token_hex(12)}"
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
    params = conninfo_to_dict(dbarch_server.dsn())
    host, port = params.get("host", ""), params.get("port", "5432")
    if host.startswith("/"):
        url = f"postgresql://{role}:{password}@/postgres?host={host}&port={port}"
    else:
        url = f"postgresql://{role}:{password}@{host}:{port}/postgres"
    try:
        yield role, password, url
    finally:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_no_traceback_shows_the_password(
    pytester: pytest.Pytester, password_role: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    role, password, url = password_role
    monkeypatch.delenv("DBARCH_DSN", raising=False)
    monkeypatch.setenv("SECRET_PASSWORD", password)
    monkeypatch.setenv("SECRET_ROLE", role)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_secrets=FAILING_PER_FIXTURE)

    result = pytester.runpytest(f"--dbarch-dsn={url}", "--tb=long", "--showlocals", "-vv", "-rA", "--junitxml=junit.xml")

    result.assert_outcomes(passed=1, failed=11, errors=1)
    output = result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["dbarch: existing server user=" + role + " *"])
    # The failures really are shown with their locals, URLs included, masked.
    assert f"url        = 'postgresql+psycopg://{role}:***@" in output
    assert f"'user={role} password=*** host=" in output  # dbarch_server.dsn() in a local
    assert f"Settings(dsn='postgresql://{role}:***@" in output
    assert "pytest-dbarch: dbarch_engine cannot be created with the options of dbarch_engine_options ['no_such_create_engine_option']: " in output
    assert "During handling" not in output
    assert "(the password of a pytest-dbarch URL or DSN is shown as ***)" in output
    assert password not in output
    assert password not in (pytester.path / "junit.xml").read_text()
    for name, content in snapshot(pytester.path / ".temp").items():
        assert password.encode() not in content, name


def test_reprs_hide_the_password_and_values_stay_real() -> None:
    server = ServerInfo("external", "15.4", "DBARCH_DSN (host=db user=app)", {"host": "db", "user": "app", "password": "s3 cr@t"})
    assert "s3 cr@t" not in repr(server) + repr(server.conninfo()) + repr(server.dsn("x")) + repr(server.url("x"))
    assert isinstance(server.conninfo()["password"], Password) and repr(server.conninfo()["password"]) == "'***'"
    assert "password='s3 cr@t'" in str(server.dsn("x"))  # the real DSN for connecting
    assert str(server.url("x")) == "postgresql+psycopg://app:s3%20cr%40t@db/x"
    assert repr(server.url("x")) == "'postgresql+psycopg://app:***@db/x'"
    assert isinstance(server.url("x"), Redacted) and server.url("x") == "postgresql+psycopg://app:s3%20cr%40t@db/x"
    assert server.safe_dsn("x") == "host=db user=app password=*** dbname=x"


def test_settings_repr_hides_the_dsn_password() -> None:
    from pytest_dbarch.config import Settings

    settings = Settings(dsn="host=db user=app password=hunter2")
    assert "hunter2" not in repr(settings) and "password=***" in repr(settings)
    assert settings.dsn == "host=db user=app password=hunter2"


def test_a_path_only_dsn_repr_is_unchanged(tmp_path: Path) -> None:
    assert repr(Redacted(f"host={tmp_path} dbname=x")) == repr(f"host={tmp_path} dbname=x")


def test_redacted_values_stay_themselves() -> None:
    from pytest_dbarch.redact import redacted

    url = Redacted("postgresql://app:pw@db/x")
    assert redacted(url) is url and redacted(None) is None
    assert isinstance(redacted("host=db password=pw"), Redacted)
