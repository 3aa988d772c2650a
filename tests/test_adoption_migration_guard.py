"""Issue 15, point 1 carried to the migration checks: while the checks run the
project's env.py (``dbarch migrations check``, the collected migration items) it is
kept on the scratch database the checks gave it, as during the template build: the
settings variables point there, and a connection anywhere else is refused."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from pytest_dbarch.postgres.info import ServerInfo
from tests.test_adoption_schema import (  # noqa: F401
    ACCOUNTS,
    OWN_ENGINE_ENV_PY,
    SETTINGS_ENV_PY,
    decoy,
)
from tests.test_schema_sources import alembic_project


def decoy_tables(server: ServerInfo) -> int:
    with psycopg.connect(server.dsn("dbarch_adoption_decoy")) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    return int(row[0]) if row else 0


def test_migration_checks_keep_env_py_off_other_databases(
    external_pytester: pytest.Pytester, decoy: str, dbarch_server: ServerInfo, inner_dsn: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # DATABASE_URL names the 'live' database; env.py reads it while it runs.
    monkeypatch.setenv("DATABASE_URL", decoy)
    alembic_project(external_pytester, ACCOUNTS, env=SETTINGS_ENV_PY)
    external_pytester.makeini("[pytest]\ndbarch_migrations = alembic.ini\n")
    items = external_pytester.runpytest("-p", "no:randomly", "-n", "0", "-v")
    assert items.ret == 0, items.stdout.str()
    items.stdout.fnmatch_lines(["*round-trip?r001? PASSED*"])

    env = {**os.environ, "DBARCH_DSN": inner_dsn}
    gate = subprocess.run(
        [sys.executable, "-m", "pytest_dbarch.cli", "migrations", "check", "--report-dir", "off"],
        cwd=external_pytester.path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert "1 revisions checked" in gate.stdout or "1 revision checked" in gate.stdout, gate.stdout
    assert decoy_tables(dbarch_server) == 0, "the migration checks migrated the decoy"

    # A URL of the application's own (no variable the guard knows): refused, named.
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("APP_DB_URL", decoy)
    (external_pytester.path / "migrations" / "env.py").write_text(OWN_ENGINE_ENV_PY)
    refused = subprocess.run(
        [sys.executable, "-m", "pytest_dbarch.cli", "migrations", "check", "--report-dir", "off"],
        cwd=external_pytester.path, env={**os.environ, "DBARCH_DSN": inner_dsn}, capture_output=True, text=True,
        timeout=300, check=False,
    )
    assert refused.returncode != 0
    assert "env.py asked for a connection to database 'dbarch_adoption_decoy'" in refused.stdout, refused.stdout
    assert "Traceback" not in refused.stdout + refused.stderr
    assert decoy_tables(dbarch_server) == 0
