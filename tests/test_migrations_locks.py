"""Lock report against a real PostgreSQL: which locks each statement took, for how
long, histories that run every revision in one transaction, and the timeouts in effect."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_dbarch.findings import Finding, Status
from pytest_dbarch.migrations.lint import LockReport, lint_sql
from tests.test_migrations_lint import connect, lint_dsn, schema  # noqa: F401  (fixtures)


def report(findings: list[Finding], kind: str) -> Finding:
    (found,) = [f for f in findings if f.rule == f"migrations.locks.{kind}"]
    return found


def held_seconds(evidence: str, relation: str, mode: str) -> float:
    match = re.search(rf"\| {relation} \| {mode} \| (?:>= )?([0-9.]+) s", evidence)
    assert match, evidence
    return float(match.group(1))


def test_access_exclusive_held_until_commit(lint_dsn: str, schema: str) -> None:
    script = "ALTER TABLE t ADD COLUMN z int; SELECT pg_sleep(0.2); UPDATE u SET id = id"
    with connect(lint_dsn, schema, autocommit=False) as conn:
        findings = lint_sql(conn, script, "r1", observers=[LockReport()])
    held = report(findings, "held")
    assert held.status is Status.PASSED and "ACCESS EXCLUSIVE on existing t" in held.title
    lines = held.evidence.splitlines()
    assert any(
        line.startswith("1  ALTER TABLE t ADD COLUMN z int | t | ACCESS EXCLUSIVE |") for line in lines
    )
    assert any(line.startswith("3  UPDATE u SET id = id | u | ROW EXCLUSIVE |") for line in lines)
    assert any("pg_sleep" in line and "no new lock on an existing relation" in line for line in lines)
    # taken by statement 1, released at the commit after statement 3: the sleep is inside
    assert held_seconds(held.evidence, "t", "ACCESS EXCLUSIVE") >= 0.2
    assert held_seconds(held.evidence, "u", "ROW EXCLUSIVE") < held_seconds(
        held.evidence, "t", "ACCESS EXCLUSIVE"
    )


def test_statements_outside_a_transaction_are_marked(lint_dsn: str, schema: str) -> None:
    with connect(lint_dsn, schema, autocommit=True) as conn:
        findings = lint_sql(conn, "CREATE INDEX CONCURRENTLY ix_c ON t (c)", "r1", observers=[LockReport()])
    held = report(findings, "held")
    assert "outside a transaction: locks held for the statement only" in held.evidence
    assert "no ACCESS EXCLUSIVE" in held.title


def test_all_revisions_in_one_transaction_is_flagged(lint_dsn: str, schema: str) -> None:
    """env.py without transaction_per_migration: revision 1's ACCESS EXCLUSIVE lasts into revision 2."""
    observer = LockReport()
    with connect(lint_dsn, schema, autocommit=False) as conn:
        first = lint_sql(conn, "ALTER TABLE t ADD COLUMN z int", "0001", observers=[observer], end="keep")
        second = lint_sql(conn, "ALTER TABLE u ADD COLUMN z int", "0002", observers=[observer], end="keep")
        conn.rollback()
    assert report(first, "one-transaction").status is Status.PASSED  # nothing held before it began
    flagged = report(second, "one-transaction")
    assert flagged.status is Status.FAILED
    assert "runs in the transaction of revision 0001" in flagged.title
    assert "t: ACCESS EXCLUSIVE since revision 0001 statement 1" in flagged.evidence
    assert "transaction_per_migration=True" in flagged.fix
    assert "(still held)" in report(first, "held").evidence


def test_one_transaction_seen_by_a_fresh_observer_per_revision(lint_dsn: str, schema: str) -> None:
    """Runners may build new observers for every revision: pg_locks still tells."""
    with connect(lint_dsn, schema, autocommit=False) as conn:
        lint_sql(conn, "ALTER TABLE t ADD COLUMN z int", "0001", observers=[LockReport()], end="keep")
        second = lint_sql(
            conn, "ALTER TABLE u ADD COLUMN z int", "0002", observers=[LockReport()], end="keep"
        )
        conn.rollback()
    flagged = report(second, "one-transaction")
    assert flagged.status is Status.FAILED and "an earlier revision" in flagged.title
    assert "t: ACCESS EXCLUSIVE already held when this revision began" in flagged.evidence


def test_commit_per_revision_passes(lint_dsn: str, schema: str) -> None:
    observer = LockReport()
    with connect(lint_dsn, schema, autocommit=False) as conn:
        lint_sql(conn, "ALTER TABLE t ADD COLUMN z int", "0001", observers=[observer])
        second = lint_sql(conn, "ALTER TABLE u ADD COLUMN z int", "0002", observers=[observer])
    assert report(second, "one-transaction").status is Status.PASSED


@pytest.mark.parametrize(
    ("prefix", "status", "shown"),
    [
        ("", Status.WARNING, "lock_timeout=0"),
        (
            "SET lock_timeout = '2s'; SET statement_timeout = '1min';",
            Status.PASSED,
            "lock_timeout=2s, statement_timeout=1min",
        ),
        ("SET LOCAL lock_timeout = 1500;", Status.PASSED, "lock_timeout=1500ms"),
        ("SELECT set_config('lock_timeout', '3s', false);", Status.PASSED, "lock_timeout=3s"),
    ],
    ids=["none", "session", "local", "set_config"],
)
def test_effective_timeouts_are_reported(
    lint_dsn: str, schema: str, prefix: str, status: Status, shown: str
) -> None:
    with connect(lint_dsn, schema, autocommit=False) as conn:
        findings = lint_sql(conn, prefix + "ALTER TABLE t ADD COLUMN z int", "r1", observers=[LockReport()])
    timeouts = report(findings, "timeouts")
    assert timeouts.status is status, timeouts
    assert shown in timeouts.evidence
    if status is Status.WARNING:
        assert (
            "t ACCESS EXCLUSIVE without lock_timeout" in timeouts.evidence and "lock_timeout" in timeouts.fix
        )


def test_new_tables_need_no_timeout(lint_dsn: str, schema: str) -> None:
    with connect(lint_dsn, schema, autocommit=False) as conn:
        findings = lint_sql(
            conn,
            "CREATE TABLE fresh (id int); ALTER TABLE fresh ADD COLUMN z int",
            "r1",
            observers=[LockReport()],
        )
    assert report(findings, "timeouts").status is Status.PASSED
    assert "no ACCESS EXCLUSIVE" in report(findings, "held").title
    assert "also locked, created in this revision: fresh" in report(findings, "held").evidence


def test_version_table_bookkeeping_is_left_out(lint_dsn: str, schema: str) -> None:
    """Alembic creates and locks alembic_version in the revision's transaction, unobserved."""
    with connect(lint_dsn, schema, autocommit=False) as conn:
        conn.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
        findings = lint_sql(conn, "ALTER TABLE t ADD COLUMN z int", "0001", observers=[LockReport()])
    assert report(findings, "one-transaction").status is Status.PASSED
    assert "alembic_version" not in report(findings, "held").evidence


def test_autocommit_ddl_on_existing_table_without_timeout(lint_dsn: str, schema: str) -> None:
    with connect(lint_dsn, schema, autocommit=True) as conn:
        findings = lint_sql(conn, "ALTER TABLE t ADD COLUMN z int", "r1", observers=[LockReport()])
    timeouts = report(findings, "timeouts")
    assert (
        timeouts.status is Status.WARNING
        and "DDL outside a transaction without lock_timeout" in timeouts.evidence
    )


def test_lint_and_lock_report_together(lint_dsn: str, schema: str) -> None:
    """The default observers; the lint's own catalog reads never show up as locks."""
    with connect(lint_dsn, schema, autocommit=False) as conn:
        findings: list[Any] = lint_sql(conn, "ALTER TABLE t ADD COLUMN z int DEFAULT random()", "r1")
    rules = {f.rule for f in findings}
    assert {"migrations.lint.add-column-volatile-default", "migrations.locks.held"} <= rules
    held = report(findings, "held").evidence
    assert "ACCESS SHARE" not in held  # the lint's EXISTS on t ran in a rolled-back savepoint
