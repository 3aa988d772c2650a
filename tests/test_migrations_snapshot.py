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


# Each step is one committed change; "partial" steps must be seen by reading only the
# relations (and kinds) whose catalog marks changed, so a mark that missed the change
# would fail the comparison with a full read; "full" steps rename or move something
# other objects print, which only a full read may follow.
TRACKED_STEPS = [
    ("partial", "ALTER TABLE trk.parent ALTER COLUMN status SET DEFAULT 'open'"),
    ("partial", "ALTER TABLE trk.parent ADD CONSTRAINT parent_qty CHECK (qty >= 0)"),
    ("partial", "CREATE INDEX parent_qty_idx ON trk.parent (qty) WHERE qty > 0"),
    ("partial", "CREATE INDEX parent_name_idx ON trk.parent (name)"),
    ("partial", "ALTER INDEX trk.parent_name_idx SET (fillfactor = 70)"),
    ("partial", "CREATE TRIGGER parent_touch BEFORE UPDATE ON trk.parent FOR EACH ROW EXECUTE FUNCTION trk.touch()"),
    ("partial", "ALTER TABLE trk.parent DISABLE TRIGGER parent_touch"),
    ("partial", "GRANT SELECT ON trk.parent TO PUBLIC"),
    ("partial", "GRANT UPDATE (qty) ON trk.parent TO PUBLIC"),
    ("partial", "COMMENT ON TABLE trk.parent IS 'parents'"),
    ("partial", "COMMENT ON COLUMN trk.parent.qty IS 'how many'"),
    ("partial", "COMMENT ON CONSTRAINT parent_qty ON trk.parent IS 'never negative'"),
    ("partial", "COMMENT ON INDEX trk.parent_name_idx IS 'by name'"),
    ("partial", "COMMENT ON TRIGGER parent_touch ON trk.parent IS 'stamps'"),
    ("partial", "ALTER TYPE trk.mood ADD VALUE 'grumpy'"),
    ("partial", "ALTER TABLE trk.parent ALTER COLUMN qty TYPE bigint"),
    ("partial", "CREATE OR REPLACE VIEW trk.open_parents AS SELECT id, name, qty FROM trk.parent WHERE status = 'open'"),
    ("partial", "ALTER TABLE trk.parent ALTER COLUMN name SET NOT NULL"),
    ("partial", "ALTER SEQUENCE trk.counter INCREMENT BY 5"),
    ("partial", "ALTER SEQUENCE trk.counter OWNED BY trk.parent.qty"),
    ("partial", "ALTER TABLE trk.parent ENABLE ROW LEVEL SECURITY"),
    ("partial", "CREATE POLICY parent_own ON trk.parent USING (qty > 1)"),
    ("partial", "ALTER TABLE trk.parent ALTER COLUMN status DROP DEFAULT"),
    ("partial", "CREATE TABLE trk.child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES trk.parent (id))"),
    ("partial", "ALTER TABLE trk.child DROP CONSTRAINT child_parent_id_fkey"),
    ("partial", "CREATE OR REPLACE FUNCTION trk.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$"),
    ("partial", "ALTER DOMAIN trk.positive ADD CONSTRAINT positive_small CHECK (VALUE < 1000)"),
    ("partial", "DROP INDEX trk.parent_qty_idx"),
    ("partial", "DROP TABLE trk.child"),
    ("full", "ALTER TABLE trk.parent RENAME COLUMN name TO full_name"),
    ("full", "ALTER TABLE trk.parent RENAME TO folks"),
    ("full", "ALTER TYPE trk.mood RENAME VALUE 'sad' TO 'blue'"),
    ("full", "ALTER TYPE trk.mood RENAME TO feeling"),
    ("full", "ALTER FUNCTION trk.next_qty() RENAME TO following_qty"),
    ("full", "CREATE SCHEMA trk2"),
    ("full", "ALTER TABLE trk.folks SET SCHEMA trk2"),
]

TRACKED_SETUP = """
CREATE SCHEMA trk;
CREATE TYPE trk.mood AS ENUM ('happy', 'sad');
CREATE DOMAIN trk.positive AS int CHECK (VALUE > 0);
CREATE SEQUENCE trk.counter;
CREATE FUNCTION trk.next_qty() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
CREATE FUNCTION trk.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TABLE trk.parent (
    id int PRIMARY KEY, name text, status text, qty int DEFAULT trk.next_qty(),
    feeling trk.mood DEFAULT 'sad', amount trk.positive
);
CREATE VIEW trk.open_parents AS SELECT id, name FROM trk.parent WHERE status = 'open';
"""


def test_tracker_reads_only_what_changed_and_sees_every_change(lint_dsn: str) -> None:  # noqa: F811
    with psycopg.connect(lint_dsn, autocommit=True) as ddl, psycopg.connect(lint_dsn, autocommit=True) as reader:
        ddl.execute(TRACKED_SETUP)
        tracker = snapshot.Tracker(reader)
        before = tracker.take()
        with psycopg.connect(lint_dsn, autocommit=True) as fresh:
            assert before == snapshot.take(fresh)
        for expected, step in TRACKED_STEPS:
            partial, full = tracker.partial, tracker.full
            ddl.execute(step)
            after = tracker.take()
            with psycopg.connect(lint_dsn, autocommit=True) as fresh:
                assert after == snapshot.take(fresh), step
            assert after != before, f"the change is not in the snapshot: {step}"
            if expected == "partial":
                assert (tracker.partial, tracker.full) == (partial + 1, full), step
            else:
                assert (tracker.partial, tracker.full) == (partial, full + 1), step
            before = after
        unchanged = tracker.take()
        assert unchanged == before and tracker.partial > partial
        ddl.execute("DROP SCHEMA trk CASCADE")
        ddl.execute("DROP SCHEMA trk2 CASCADE")


def test_tracker_in_a_transaction_reads_everything(lint_dsn: str) -> None:  # noqa: F811
    """Inside a transaction rows changed twice keep one xmin: no marks, a full read."""
    with psycopg.connect(lint_dsn) as conn:
        tracker = snapshot.Tracker(conn)
        conn.execute("CREATE SCHEMA trk_tx")
        conn.execute("CREATE TABLE trk_tx.t (id int PRIMARY KEY, name text)")
        first = tracker.take()
        conn.execute("ALTER TABLE trk_tx.t ALTER COLUMN name SET DEFAULT 'x'")
        second = tracker.take()
        assert first != second and second == snapshot.take(conn)
        assert tracker.partial == 0
        conn.rollback()
