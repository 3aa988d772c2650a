"""``dbarch lint``: against an existing database through a read-only role, and over the
project's own schema built in a disposable database; exit codes 0/1/2, the report."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pytest_dbarch.postgres.info import ServerInfo
from tests.conftest import database_names

ROOT = Path(__file__).resolve().parents[1]
ROLE, PASSWORD = "dbarch_lint_reader", "s3cret-not-shown"
SCHEMA = """
CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE contacts (id bigint PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts, email text);
CREATE TABLE events (at timestamptz NOT NULL, what text);
CREATE TABLE big (id bigint PRIMARY KEY, val int NOT NULL) WITH (autovacuum_enabled = false);
"""


def dbarch(cwd: Path, *args: str, dsn: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DBARCH_DSN"}
    if dsn:
        env["DBARCH_DSN"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "pytest_dbarch.cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300,
    )


@pytest.fixture
def linted_db(admin: psycopg.Connection, dbarch_server: ServerInfo) -> Iterator[str]:
    """A database with a schema to lint and a role that may only read it; dropped after."""
    name = "dbarch_lint_target"
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(ROLE)))
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(PASSWORD)))
    try:
        with psycopg.connect(dbarch_server.dsn(name), autocommit=True) as conn:
            conn.execute(SCHEMA)
            conn.execute("INSERT INTO big SELECT g, g % 10 FROM generate_series(1, 20000) g")
            for i in range(110):
                conn.execute("SELECT count(*) FROM big WHERE val = %s", (i % 10,))
            conn.execute("SELECT pg_stat_force_next_flush()")
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(name), sql.Identifier(ROLE)))
            conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(sql.Identifier(ROLE)))
        params = {**dbarch_server.conninfo(name), "user": ROLE, "password": PASSWORD}
        yield psycopg.conninfo.make_conninfo(**params)
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(ROLE)))


def test_lint_an_existing_database_read_only(tmp_path: Path, linted_db: str, admin: psycopg.Connection) -> None:
    result = dbarch(tmp_path, "lint", "--dsn", linted_db, "-v")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert PASSWORD not in out + result.stderr
    assert out.startswith(f"dbarch lint: user={ROLE} dbname=dbarch_lint_target host=")
    assert "FAIL [schema.primary-key] public.events has no primary key" in out
    assert "fix: ALTER TABLE events ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;" in out
    assert "WARN [schema.fk-index] public.contacts(account_id) has no index" in out
    assert "fix: CREATE INDEX CONCURRENTLY ix_contacts_account_id ON contacts (account_id);" in out
    # statistics of a database that was just loaded: not judged (the window is shorter than 7 days)
    assert "not run: schema.seq-scan-heavy: statistics cover 0.0 days" in out
    (checklist,) = (tmp_path / ".temp").glob("checklist-*.md")
    text = checklist.read_text()
    assert "- [ ] ALTER TABLE events ADD COLUMN id bigint" in text and "- [x] Every index is valid" in text
    assert PASSWORD not in text

    # with the statistics forced on, the sequential scans of big show; rules narrowed to one
    forced = dbarch(tmp_path, "lint", "--dsn", linted_db, "--stats", "on", "--rules", "schema.seq-scan-heavy",
                    "--report-dir", "off")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "WARN [schema.seq-scan-heavy] public.big had 11" in forced.stdout
    assert "1 rules on" in forced.stdout

    # the role can write nothing: the lint never needed to
    with pytest.raises(psycopg.errors.InsufficientPrivilege), psycopg.connect(linted_db) as conn:
        conn.execute("CREATE TABLE intruder (id int)")
    waived = dbarch(tmp_path, "lint", "--dsn", linted_db, "--ignore", "schema.primary-key events append-only",
                    "--report-dir", "off")
    assert waived.returncode == 0, waived.stdout
    assert "WARN [schema.fk-index]" in waived.stdout


def test_clean_database_exits_0_and_bad_input_exits_2(tmp_path: Path, admin: psycopg.Connection,
                                                      dbarch_server: ServerInfo) -> None:
    clean = dbarch(tmp_path, "lint", "--dsn", dbarch_server.dsn(), "--report-dir", "off")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "findings:" in clean.stdout and "failed" not in clean.stdout.splitlines()[-1]

    unreachable = dbarch(tmp_path, "lint", "--dsn", "postgresql://nobody:hunter2@127.0.0.1:1/nothing")
    assert unreachable.returncode == 2
    assert "dbarch: cannot connect to --dsn (user=nobody dbname=nothing host=127.0.0.1 port=1)" in unreachable.stderr
    assert "hunter2" not in unreachable.stderr + unreachable.stdout
    assert "Traceback" not in unreachable.stderr

    bad_rule = dbarch(tmp_path, "lint", "--dsn", dbarch_server.dsn(), "--rules", "schema.fk-idx=failed")
    assert bad_rule.returncode == 2
    assert "dbarch: --rules: no schema-lint rule matches 'schema.fk-idx'" in bad_rule.stderr

    nothing = dbarch(tmp_path, "lint")
    assert nothing.returncode == 2
    assert f"no schema to lint: no --dsn, and {tmp_path} names no schema source" in nothing.stderr

    listed = dbarch(tmp_path, "lint", "--list-rules")
    assert listed.returncode == 0 and "schema.fk-index" in listed.stdout and "K02" in listed.stdout


def test_lint_the_projects_schema_with_its_ini_policy(tmp_path: Path, inner_dsn: str,
                                                      admin: psycopg.Connection) -> None:
    (tmp_path / "schema.sql").write_text(SCHEMA)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\n"
        "dbarch_sql_files = schema.sql\n"
        "dbarch_schema_lint_rules =\n"
        "    schema.primary-key = warning\n"
        "    schema.fk-index = failed\n"
        "dbarch_schema_lint_ignore = schema.fk-index contacts.account_id looked up by id only\n"
    )
    before = database_names(admin)
    result = dbarch(tmp_path, "lint", "--report-dir", "off", dsn=inner_dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dbarch lint: sql schema.sql: " in result.stdout
    assert "WARN [schema.primary-key] public.events has no primary key" in result.stdout
    assert "schema.fk-index" not in result.stdout
    assert database_names(admin) == before  # the disposable database is dropped

    strict = dbarch(tmp_path, "lint", "--report-dir", "off", "--rules", "schema.*=failed", dsn=inner_dsn)
    assert strict.returncode == 1
    assert "FAIL [schema.primary-key] public.events has no primary key" in strict.stdout


def test_example_project_passes(inner_dsn: str) -> None:
    result = dbarch(ROOT / "example_project", "lint", "--report-dir", "off", dsn=inner_dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dbarch lint: alembic alembic.ini: " in result.stdout
    summary = result.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "failed" not in summary and "warning" not in summary, summary
