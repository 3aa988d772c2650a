"""Catalog snapshots reuse index definitions across snapshots: prove they follow every change."""

from __future__ import annotations

from typing import Any

import psycopg

from pytest_dbarch.migrations import snapshot
from tests.test_migrations_lint import lint_dsn  # noqa: F401  (a database of this module's own)


def indexes(snap: snapshot.Snapshot) -> dict[str, str]:
    return {name: fields["definition"] for (kind, name), fields in snap.objects.items() if kind == "index"}


def rendered(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """What PostgreSQL prints for every index of the test schemas right now."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname, pg_get_indexdef(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'i' AND n.nspname LIKE 'snap%'"
    ).fetchall()
    return {snapshot.qualified(schema, name): text for schema, name, text in rows}


def test_index_definitions_follow_renames_between_committed_steps(lint_dsn: str) -> None:  # noqa: F811
    with psycopg.connect(lint_dsn, autocommit=True) as ddl, psycopg.connect(lint_dsn, autocommit=True) as reader:
        ddl.execute("CREATE SCHEMA snap_a")
        ddl.execute("CREATE TABLE snap_a.t (id int PRIMARY KEY, name text, note text)")
        ddl.execute("CREATE INDEX t_name ON snap_a.t (name DESC NULLS LAST) INCLUDE (note)")
        ddl.execute("CREATE UNIQUE INDEX t_lower ON snap_a.t (lower(name))")  # an expression: never cached
        steps = [
            "ALTER TABLE snap_a.t RENAME COLUMN name TO full_name",
            "ALTER TABLE snap_a.t RENAME COLUMN note TO remark",
            "ALTER TABLE snap_a.t RENAME TO people",
            "ALTER INDEX snap_a.t_name RENAME TO people_name",
            "ALTER INDEX snap_a.people_name SET (fillfactor = 70)",
            "ALTER SCHEMA snap_a RENAME TO snap_b",
            "ALTER TABLE snap_b.people ALTER COLUMN full_name TYPE varchar(40)",
            "DROP INDEX snap_b.people_name",
            "CREATE INDEX people_name ON snap_b.people (remark)",
        ]
        assert indexes(snapshot.take(reader)) == rendered(reader)
        for step in steps:
            ddl.execute(step)
            assert indexes(snapshot.take(reader)) == rendered(reader), step
        ddl.execute("DROP SCHEMA snap_b CASCADE")


def test_index_definitions_follow_changes_inside_one_transaction(lint_dsn: str) -> None:  # noqa: F811
    """Rows a transaction changes twice keep one xmin: a snapshot taken inside the
    transaction must not reuse what an earlier snapshot of the same transaction read."""
    with psycopg.connect(lint_dsn) as conn:
        conn.execute("CREATE SCHEMA snap_c")
        conn.execute("CREATE TABLE snap_c.t (id int PRIMARY KEY, name text)")
        conn.execute("CREATE INDEX t_name ON snap_c.t (name)")
        assert indexes(snapshot.take(conn)) == rendered(conn)
        conn.execute("ALTER INDEX snap_c.t_name RENAME TO t_name2")
        conn.execute("ALTER INDEX snap_c.t_name2 SET (fillfactor = 50)")
        assert indexes(snapshot.take(conn)) == rendered(conn)
        assert "snap_c.t_name2" in indexes(snapshot.take(conn))
        conn.rollback()
