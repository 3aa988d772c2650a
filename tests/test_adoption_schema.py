"""Issue 15, point 1: an env.py that builds its own engine from the application's
settings never leaves the template empty without saying so, and settings read while
env.py runs land on the template."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pytest_dbarch.postgres.cache import ClusterCache
from pytest_dbarch.postgres.info import ServerInfo
from tests.test_schema_sources import COUNT_TABLES, alembic_project

ACCOUNTS = [('op.execute("CREATE TABLE accounts (id int PRIMARY KEY)")', 'op.execute("DROP TABLE accounts")')]

# The shape of many application templates: settings read at import, a URL of its own.
OWN_ENGINE_ENV_PY = """
import os

from alembic import context
from sqlalchemy import create_engine

APP_URL = os.environ["APP_DB_URL"]  # the application's own settings


def run_migrations_online():
    connectable = create_engine(APP_URL)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
"""

# Settings read while env.py runs (pydantic-settings, os.environ) from DATABASE_URL.
SETTINGS_ENV_PY = """
import os

from alembic import context
from sqlalchemy import create_engine

connectable = create_engine(os.environ["DATABASE_URL"])
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
"""


@pytest.fixture
def decoy(dbarch_server: ServerInfo, admin: psycopg.Connection) -> Iterator[str]:
    """A database the plugin was not given: the 'live' one env.py reaches."""
    admin.execute("DROP DATABASE IF EXISTS dbarch_adoption_decoy WITH (FORCE)")
    admin.execute("CREATE DATABASE dbarch_adoption_decoy")
    yield dbarch_server.url("dbarch_adoption_decoy")
    admin.execute("DROP DATABASE IF EXISTS dbarch_adoption_decoy WITH (FORCE)")


def test_env_py_that_reaches_another_database_is_refused(
    external_pytester: pytest.Pytester, decoy: str, dbarch_server: ServerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_DB_URL", decoy)
    alembic_project(external_pytester, ACCOUNTS, env=OWN_ENGINE_ENV_PY)
    external_pytester.makepyfile(COUNT_TABLES + COUNT_TABLES.replace("test_schema", "test_again"))
    result = external_pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*pytest-dbarch: env.py asked for a connection to database 'dbarch_adoption_decoy' on *, not the "
            "template the plugin gave it; the connection was refused and nothing was migrated there "
            "(*/migrations/env.py:7: APP_URL = os.environ?\"APP_DB_URL\"?*",
            "*fix: in env.py, use the connection the plugin passes (config.attributes?\"connection\"?)*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    with psycopg.connect(dbarch_server.dsn("dbarch_adoption_decoy")) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,), "the decoy must be untouched"


# A connection SQLAlchemy does not make itself (a creator function): the guard cannot
# refuse it, the check after the build finds the template empty.
CREATOR_ENV_PY = OWN_ENGINE_ENV_PY.replace(
    "connectable = create_engine(APP_URL)",
    'connectable = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(APP_DSN))',
).replace("import os\n", "import os\n\nimport psycopg\n").replace(
    'APP_URL = os.environ["APP_DB_URL"]', 'APP_DSN = os.environ["APP_DB_DSN"]'
)


def test_env_py_that_migrated_another_database_is_caught_after_the_build(
    external_pytester: pytest.Pytester, decoy: str, dbarch_server: ServerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_DB_DSN", dbarch_server.dsn("dbarch_adoption_decoy"))
    alembic_project(external_pytester, ACCOUNTS, env=CREATOR_ENV_PY)
    external_pytester.makepyfile(COUNT_TABLES)
    result = external_pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*pytest-dbarch: Alembic reported the upgrade to head (r001) done, but the template database the "
            "plugin gave it was not migrated: it has no alembic_version table. env.py ran the migrations "
            "against another database (*/migrations/env.py:9: APP_DSN = os.environ?\"APP_DB_DSN\"?*",
            "*fix: in env.py, use the connection the plugin passes*",
        ]
    )
    with psycopg.connect(dbarch_server.dsn("dbarch_adoption_decoy")) as conn:
        migrated = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert migrated == [("r001",)], "the decoy shows where env.py really went"


def test_settings_read_while_env_py_runs_point_at_the_template(
    external_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://app@live.example:5432/production")
    monkeypatch.setenv("PGDATABASE", "production")
    monkeypatch.delenv("POSTGRES_DB", raising=False)
    alembic_project(external_pytester, ACCOUNTS, env=SETTINGS_ENV_PY)
    external_pytester.makepyfile(
        COUNT_TABLES
        + """
import os

def test_environment_restored(dbarch_psycopg):
    print("AFTER", os.environ["DATABASE_URL"], os.environ["PGDATABASE"], os.environ.get("POSTGRES_DB"))
"""
    )
    result = external_pytester.runpytest("-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*TABLES accounts,alembic_version*",
            "*AFTER postgresql+psycopg://app@live.example:5432/production production None*",
        ]
    )


@pytest.mark.slow
def test_an_unmigrated_template_is_never_cached(
    pytester: pytest.Pytester, runtime_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cluster cache keys the template by migration files: a build that fails the
    check stores nothing, so the next session checks again."""
    xdg = tmp_path / "xdg-cache"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    monkeypatch.delenv("DBARCH_CACHE_DIR", raising=False)
    monkeypatch.delenv("DBARCH_CACHE", raising=False)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    # env.py migrates a database of its own on the session's server: 'elsewhere'.
    env = OWN_ENGINE_ENV_PY.replace(
        'os.environ["APP_DB_URL"]',
        'make_url(context.config.get_main_option("sqlalchemy.url")).set(database="postgres")',
    ).replace("from sqlalchemy import create_engine", "from sqlalchemy import create_engine, make_url"
    )
    alembic_project(pytester, ACCOUNTS, env=env)
    pytester.makepyfile(COUNT_TABLES)
    lean = ("-p", "no:cacheprovider", "-p", "pytest_dbarch.plugin")
    for _ in range(2):
        result = pytester.runpytest_subprocess(*lean, timeout=180)
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*env.py:11: connectable = create_engine(APP_URL)*"])
    described = sorted(e[1]["describe"] for e in ClusterCache(xdg / "pytest-dbarch").entries() if e[1])
    assert described == ["bare cluster"]
    assert list(runtime_dir.glob("pytest-dbarch-*/run-*")) == []
    shutil.rmtree(xdg, ignore_errors=True)
