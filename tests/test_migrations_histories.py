"""Migration checks as real histories exercise them (issue 12): one small synthetic
history per point, run through the ``dbarch_migrations`` fixture (the outer server) or,
where the user-visible outcome is the point, through pytester or the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Loaded at collection: pytester's in-process runs elsewhere in the suite (test_catalog)
# drop modules first imported during them from sys.modules, and SQLAlchemy or Alembic
# loaded twice in one process mixes classes of both copies.
import alembic.autogenerate  # noqa: F401
import alembic.runtime.migration  # noqa: F401
import sqlalchemy.orm  # noqa: F401
from pytest_dbarch.findings import Status
from pytest_dbarch.migrations import alembic_runner, drift, roundtrip  # noqa: F401
from tests.conftest import database_names
from tests.migrations_support import ENV_PY, Rev, write_alembic


def by_rule(results, rule: str):  # type: ignore[no-untyped-def]
    return [f for f in results.all() if f.rule == rule]


def one(results, check: str, rev: str):  # type: ignore[no-untyped-def]
    found = results.for_item(check, rev)
    assert len(found) == 1, (check, rev, [f.title for f in found])
    return found[0]


# --- 1. seeded rows never leak into a later revision's verdict -------------------------

LEAK_HISTORY = [
    Rev("p1", ["CREATE TABLE parent (id serial PRIMARY KEY, name text NOT NULL)"], ["DROP TABLE parent"]),
    Rev(
        "p2",
        ["CREATE TABLE child (id serial PRIMARY KEY, parent_id int NOT NULL REFERENCES parent (id), note text NOT NULL)"],
        ["DROP TABLE child"],
    ),
    # Seeding child needs a parent row: the checker writes one, and must remove it.
    Rev("p3", ["ALTER TABLE child ADD COLUMN extra int"], ["ALTER TABLE child DROP COLUMN extra"]),
    # Fails on any row left in parent (NOT NULL without default), and the lint's severity
    # depends on rows: on the empty table it is a warning.
    Rev("p4", ["ALTER TABLE parent ADD COLUMN code text NOT NULL"], ["ALTER TABLE parent DROP COLUMN code"]),
    # A downgrade that fails only once the table holds rows with NULL in note.
    Rev(
        "p5",
        ["ALTER TABLE child ALTER COLUMN note DROP NOT NULL"],
        ["ALTER TABLE child ALTER COLUMN note SET NOT NULL"],
    ),
    Rev("p6", ["ALTER TABLE parent ADD COLUMN tag text NOT NULL"], ["ALTER TABLE parent DROP COLUMN tag"]),
]


def test_seeded_rows_never_reach_a_later_revision(dbarch_migrations, tmp_path: Path, admin) -> None:  # type: ignore[no-untyped-def]
    before = database_names(admin)
    ini = write_alembic(tmp_path, LEAK_HISTORY)
    results = dbarch_migrations.run(str(ini), drift=False)
    # p3 seeded child (and a parent for its NOT NULL foreign key); every row is gone
    # again, so p4 and p6 upgrade on empty tables.
    assert one(results, "data-round-trip", "p3").status is Status.PASSED
    for rev in ("p4", "p6"):
        assert one(results, "round-trip", rev).status is Status.PASSED, rev
        lint = [f for f in results.for_item("lock-safety", rev) if f.rule.endswith("add-column-required")]
        assert [f.status for f in lint] == [Status.WARNING], rev  # empty table: not failed
    # p5's downgrade fails only with the seeded rows: the schema round trip is judged on
    # empty tables (passed), and the data finding says the verdict depends on rows.
    assert one(results, "round-trip", "p5").status is Status.PASSED
    data = one(results, "data-round-trip", "p5")
    assert data.status is Status.WARNING
    assert data.title.startswith("revision p5: downgrade fails once ") and "child" in data.title
    assert "rows seeded by this check" in data.evidence
    # ... on the same database: the failed downgrade rolled back, the seeded rows were
    # deleted and every row count matched, so nothing had to be rebuilt.
    assert results.rebuilds == 0
    assert results.problems() == []
    assert database_names(admin) == before  # work databases and checkpoints are gone


REFERENCE_ROWS = [
    Rev(
        "s1",
        ["CREATE TABLE status (id int PRIMARY KEY, name text NOT NULL)",
         "INSERT INTO status VALUES (1, 'todo'), (2, 'done'), (3, 'wip')"],
        ["DROP TABLE status"],
    ),
    Rev("s2", ["ALTER TABLE status ADD COLUMN is_wip bool", "CREATE INDEX ix_status_is_wip ON status (is_wip)"],
        ["DROP INDEX ix_status_is_wip", "ALTER TABLE status DROP COLUMN is_wip"]),
]


def test_rows_the_history_wrote_itself_do_not_fail_the_lint(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The walk starts from an empty database: the three rows are the history's reference
    data, no sign of a large table in production (zou's task_status)."""
    results = dbarch_migrations.run(str(write_alembic(tmp_path, REFERENCE_ROWS)), drift=False)
    lint = [f for f in results.for_item("lock-safety", "s2") if f.rule.endswith("require-concurrent-index-creation")]
    assert [f.status for f in lint] == [Status.WARNING], [f.title for f in lint]
    assert "written by the history's own migrations" in lint[0].evidence and "has rows" in lint[0].evidence


def test_rows_a_downgrade_derives_from_seeded_ones_are_a_warning(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """CKAN's e8283ffb257e: a downgrade fills a table from the rows it finds (here an
    audit row per item). Those rows outlive the removal of the seeded ones; that is the
    checker's limit, not a defect of the revision, so it never fails the history."""
    history = [
        Rev("a1", ["CREATE TABLE item (id int PRIMARY KEY, name text NOT NULL)",
                   "CREATE TABLE audit (id serial PRIMARY KEY, item_id int NOT NULL)"],
            ["DROP TABLE audit", "DROP TABLE item"]),
        Rev("a2", ["ALTER TABLE item ADD COLUMN note text"],
            ["INSERT INTO audit (item_id) SELECT id FROM item", "ALTER TABLE item DROP COLUMN note"]),
        Rev("a3", ["ALTER TABLE item ADD COLUMN code text NOT NULL"], ["ALTER TABLE item DROP COLUMN code"]),
    ]
    results = dbarch_migrations.run(str(write_alembic(tmp_path, history)), drift=False)
    leaks = [f for f in results.for_item("data-round-trip", "a2") if "could not be removed" in f.title]
    assert [f.status for f in leaks] == [Status.WARNING], [f.title for f in results.for_item("data-round-trip", "a2")]
    assert "audit" in leaks[0].title
    # The database was rebuilt without them: a3 upgrades on empty tables.
    assert one(results, "round-trip", "a3").status is Status.PASSED
    assert [f for f in results.problems() if f.status is not Status.WARNING] == []


# --- 2. rebuilds start from the nearest good point, not from base -----------------------


def _leaky(n: int) -> Rev:
    if n % 5 == 0:  # the downgrade forgets the index: the round trip fails, a rebuild follows
        return Rev(f"s{n:02d}", [f"CREATE INDEX ix_{n} ON t (c{n - 1})", f"ALTER TABLE t ADD COLUMN c{n} int"],
                   [f"ALTER TABLE t DROP COLUMN c{n}"])
    return Rev(f"s{n:02d}", [f"ALTER TABLE t ADD COLUMN c{n} int"], [f"ALTER TABLE t DROP COLUMN c{n}"])


def test_rebuilds_replay_each_revision_at_most_once_more(dbarch_migrations, tmp_path: Path, admin) -> None:  # type: ignore[no-untyped-def]
    revisions = [Rev("s00", ["CREATE TABLE t (id int PRIMARY KEY, c0 int)"], ["DROP TABLE t"])]
    revisions += [_leaky(n) for n in range(1, 31)]
    before = database_names(admin)
    # One process: the step count below is one walk's (a second process adds its own).
    results = dbarch_migrations.run(str(write_alembic(tmp_path, revisions)), drift=False, data=False, workers=1)
    failed = sorted(f.title.split(":")[0] for f in by_rule(results, "migrations.round-trip") if f.is_problem)
    assert failed == [f"revision s{n:02d}" for n in range(5, 31, 5)]
    assert results.rebuilds == 6
    # 31 revisions x 3 steps, plus the replays since the last checkpoint (6 from base for
    # the first, 5 for each later one); rebuilding from base would replay 6 + 11 + ... + 31.
    assert results.steps == 3 * 31 + 6 + 5 * 5, results.steps
    assert database_names(admin) == before


# --- 3. drift honours env.py's comparison options and speaks SQL ------------------------

DRIFT_ENV = """\
from alembic import context
import sqlalchemy as sa

metadata = sa.MetaData()
sa.Table("things", metadata, sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("label", sa.Text, server_default="new"))

def include_object(obj, name, type_, reflected, compare_to):
    return not (type_ == "table" and name == "scratch_only")

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, include_object=include_object{extra})
with context.begin_transaction():
    context.run_migrations()
"""
DRIFT_HISTORY = [
    Rev(
        "d1",
        ["CREATE TABLE things (id serial PRIMARY KEY, label text DEFAULT 'old')",
         "CREATE TABLE scratch_only (id int)"],
        ["DROP TABLE scratch_only", "DROP TABLE things"],
    )
]


def test_drift_compares_what_env_py_asks_for(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plain = write_alembic(tmp_path / "plain", DRIFT_HISTORY, env=DRIFT_ENV.format(extra=""))
    [drift] = by_rule(dbarch_migrations.run(str(plain), data=False), "migrations.drift")
    # No compare_server_default in env.py, and include_object hides scratch_only.
    assert drift.status is Status.PASSED, drift.evidence

    strict = write_alembic(tmp_path / "strict", DRIFT_HISTORY, env=DRIFT_ENV.format(extra=", compare_server_default=True"))
    [drift] = by_rule(dbarch_migrations.run(str(strict), data=False), "migrations.drift")
    assert drift.status is Status.FAILED
    assert drift.evidence == (
        "column things.label: server default is 'old'::text in the migrated schema, 'new' in the models"
    ), drift.evidence
    assert "scratch_only" not in drift.evidence
    assert "object at 0x" not in drift.evidence and "DefaultClause" not in drift.evidence


# --- 4. empty downgrades of data-only revisions -----------------------------------------

EMPTY_HISTORY = [
    Rev("e1", ["CREATE TYPE mood AS ENUM ('calm')", "CREATE TABLE t (id int PRIMARY KEY, m mood, name text)"],
        ["DROP TABLE t", "DROP TYPE mood"]),
    Rev("e2", "op.execute(\"UPDATE t SET m = 'calm' WHERE m IS NULL\")",
        '"""Nothing to undo: a missing mood means calm, before and after."""'),
    Rev("e3", "op.execute(\"UPDATE t SET name = upper(name)\")", "pass"),
    Rev("e4", "op.execute(\"ALTER TYPE mood ADD VALUE 'busy'\")", "pass"),
    # A downgrade that refuses by design (warehouse's 'Cannot downgrade past ...').
    Rev("e5", ["ALTER TABLE t ADD COLUMN z int"], 'raise RuntimeError("Cannot downgrade past e5")'),
]


def test_empty_downgrades_of_data_migrations(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results = dbarch_migrations.run(str(write_alembic(tmp_path, EMPTY_HISTORY)), drift=False)
    said = one(results, "empty-downgrade", "e2")
    assert said.status is Status.PASSED and "Nothing to undo" in said.title
    bare = one(results, "empty-downgrade", "e3")
    assert bare.status is Status.WARNING and "changes data only" in bare.title
    # The enum value left behind is one finding (the round trip's), naming the empty downgrade.
    assert results.for_item("empty-downgrade", "e4") == []
    assert results.why_empty("empty-downgrade", "e4") == "its empty downgrade is reported by round-trip[e4]"
    [trip] = [f for f in results.for_item("round-trip", "e4")]
    assert trip.status is Status.FAILED
    assert "(its downgrade is empty: its body is only 'pass')" in trip.title
    assert "enum type mood: labels changed" in trip.title or "labels" in trip.title
    refused = one(results, "round-trip", "e5")
    assert refused.status is Status.WARNING
    assert refused.title == "revision e5: one-way by design: its downgrade raises 'Cannot downgrade past e5'"


# --- 5. one finding per cause, and a screen of output -----------------------------------

NO_TIMEOUTS = [
    Rev("n1", ["CREATE TABLE t (id int PRIMARY KEY)", "CREATE TABLE u (id int PRIMARY KEY)"], ["DROP TABLE u", "DROP TABLE t"]),
    Rev("n2", ["ALTER TABLE t ADD COLUMN a int"], ["ALTER TABLE t DROP COLUMN a"]),
    Rev("n3", ["ALTER TABLE u ADD COLUMN b int"], ["ALTER TABLE u DROP COLUMN b"]),
    Rev("n4", ["ALTER TABLE t ADD COLUMN c int"], ["ALTER TABLE t DROP COLUMN c"]),
]
# A new table whose foreign key locks t: seen by the lock report only, the same cause.
NEW_TABLE_LOCKS_T = Rev("n5", ["CREATE TABLE v (id int PRIMARY KEY, t_id int REFERENCES t (id))"], ["DROP TABLE v"])


def test_missing_timeouts_are_one_finding_for_the_history(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results = dbarch_migrations.run(
        str(write_alembic(tmp_path, [*NO_TIMEOUTS, NEW_TABLE_LOCKS_T])), drift=False, data=False
    )
    timeouts = [
        f for f in results.all()
        if f.is_problem and f.rule in (
            "migrations.lint.require-lock-timeout", "migrations.lint.require-statement-timeout", "migrations.locks.timeouts"
        )
    ]
    assert len(timeouts) == 1, [f.title for f in timeouts]
    [finding] = timeouts
    assert finding.rule == "migrations.lint.require-lock-timeout"
    assert finding.title.startswith("no lock_timeout or statement_timeout in any revision: 4 revisions")
    assert finding.where == "migrations/env.py" or finding.where.endswith("env.py")
    assert "revisions: n2, n3, n4, n5" in finding.evidence


def test_one_revision_without_timeouts_is_one_finding_for_it(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results = dbarch_migrations.run(str(write_alembic(tmp_path, NO_TIMEOUTS[:2])), drift=False, data=False)
    found = [f for f in results.for_item("lock-safety", "n2") if f.is_problem and "timeout" in f.rule]
    assert [f.rule for f in found] == ["migrations.lint.require-lock-timeout"]
    assert "without a lock_timeout or statement_timeout" in found[0].title


TIMEOUTS_ON_GIVEN_CONNECTION = """\
from alembic import context
from sqlalchemy import text

connection = context.config.attributes["connection"]
"""
TIMEOUTS_ON_OWN_ENGINE = """\
from alembic import context
from sqlalchemy import create_engine, pool, text

connection = create_engine(context.config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool).connect()
"""
TIMEOUTS_ENV = """\
connection.execute(text("SET lock_timeout = '4s'"))
connection.execute(text("SET statement_timeout = '5s'"))
context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
"""
SWITCHES_TIMEOUT_OFF = [
    NO_TIMEOUTS[0],
    # warehouse's 9ca7d5668af4: a session SET, so it would stay on the walk's connection
    Rev("n2", ["SET statement_timeout = 0", "ALTER TABLE t ADD COLUMN a int"], ["ALTER TABLE t DROP COLUMN a"]),
    Rev("n3", ["ALTER TABLE u ADD COLUMN b int"], ["ALTER TABLE u DROP COLUMN b"]),
]


@pytest.mark.parametrize("opening", [TIMEOUTS_ON_GIVEN_CONNECTION, TIMEOUTS_ON_OWN_ENGINE], ids=["given", "own-engine"])
def test_a_session_setting_does_not_carry_into_later_revisions(dbarch_migrations, tmp_path: Path, opening: str) -> None:  # type: ignore[no-untyped-def]
    """Each revision is judged with the timeouts env.py sets up, as a deploy of it alone
    would run; what an earlier revision SET on the session is not carried over (it
    would be on one connection and not after a rebuild or on another process's)."""
    ini = str(write_alembic(tmp_path, SWITCHES_TIMEOUT_OFF, env=opening + TIMEOUTS_ENV))
    results = dbarch_migrations.run(ini, drift=False, data=False, workers=1)

    def timeout_rules(rev: str) -> list[str]:
        return [f.rule for f in results.for_item("lock-safety", rev) if f.is_problem and "timeout" in f.rule]

    assert timeout_rules("n2") == ["migrations.lint.require-statement-timeout"]
    assert timeout_rules("n3") == []


def test_a_session_setting_does_not_carry_into_later_sql_revisions(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The same in a directory of SQL files: each starts with the session's own settings."""
    files = {
        "0001_tables": ("CREATE TABLE t (id int PRIMARY KEY);\nCREATE TABLE u (id int PRIMARY KEY);",
                        "DROP TABLE u;\nDROP TABLE t;"),
        "0002_careful": ("SET lock_timeout = '4s';\nSET statement_timeout = '5s';\nALTER TABLE t ADD COLUMN a int;",
                         "ALTER TABLE t DROP COLUMN a;"),
        "0003_careless": ("SET lock_timeout = '4s';\nALTER TABLE u ADD COLUMN b int;", "ALTER TABLE u DROP COLUMN b;"),
    }
    for name, (up, down) in files.items():
        (tmp_path / f"{name}.up.sql").write_text(up + "\n")
        (tmp_path / f"{name}.down.sql").write_text(down + "\n")
    results = dbarch_migrations.run(str(tmp_path), drift=False, data=False, workers=1)
    found = {rev: [f.rule for f in results.for_item("lock-safety", rev) if f.is_problem and "timeout" in f.rule]
             for rev in ("0002_careful", "0003_careless")}
    # 0003 sets no statement_timeout: deployed alone it has none, whatever 0002 set
    # before it on the same connection.
    assert found == {"0002_careful": [], "0003_careless": ["migrations.lint.require-statement-timeout"]}, found


# --- 6. column order ------------------------------------------------------------------------

ORDER_HISTORY = [
    Rev("o1", ["CREATE TABLE t (id int PRIMARY KEY, a int, b int)"], ["DROP TABLE t"]),
    Rev("o2", ["ALTER TABLE t DROP COLUMN a"], ["ALTER TABLE t ADD COLUMN a int"]),
]


def test_column_order_alone_is_a_warning_and_configurable(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ini = str(write_alembic(tmp_path, ORDER_HISTORY))
    warned = one(dbarch_migrations.run(ini, drift=False, data=False), "round-trip", "o2")
    assert warned.status is Status.WARNING
    assert warned.title.startswith("revision o2: downgrade restores the schema but not the column order")
    failed = one(dbarch_migrations.run(ini, drift=False, data=False, column_order="failed"), "round-trip", "o2")
    assert failed.status is Status.FAILED


# --- 7. the env.py pytest-alembic documents ---------------------------------------------------

ENGINE_ENV = """\
from alembic import context
from sqlalchemy import engine_from_config, pool

connectable = context.config.attributes.get("connection", None)
if connectable is None:
    connectable = engine_from_config(context.config.get_section(context.config.config_ini_section),
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
"""


def test_env_py_written_for_pytest_alembic_runs(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    revisions = ORDER_HISTORY[:1] + [Rev("o9", ["ALTER TABLE t ADD COLUMN z int"], ["ALTER TABLE t DROP COLUMN z"])]
    results = dbarch_migrations.run(str(write_alembic(tmp_path, revisions, env=ENGINE_ENV)))
    assert results.broken == []
    assert one(results, "round-trip", "o1").status is Status.PASSED


def test_env_py_that_wants_another_shape_names_its_line(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = ENV_PY.replace("connection = context.config.attributes[\"connection\"]",
                         "connection = context.config.attributes[\"connection\"].engine.raw_connection().cursor().nothere")
    results = dbarch_migrations.run(str(write_alembic(tmp_path, ORDER_HISTORY[:1], env=env)))
    [broken] = results.broken
    assert "env.py" in broken.where and broken.where.endswith(":3")
    assert "(line: connection = " in broken.title


# --- 8. an env.py that cannot import: one error for the history -----------------------------


def test_env_py_import_error_is_one_error(external_pytester: pytest.Pytester) -> None:
    env = "import crm_app.models  # the application, not importable here\n" + ENV_PY
    write_alembic(external_pytester.path, ORDER_HISTORY + NO_TIMEOUTS[1:], env=env)
    external_pytester.makeini("[pytest]\ndbarch_migrations = alembic.ini\n")
    result = external_pytester.runpytest("-rfE")
    count = len(ORDER_HISTORY + NO_TIMEOUTS[1:])
    # One failure (env.py's item); what is read without a database still passes (single
    # head, each revision has a downgrade); everything else is skipped, saying why.
    result.assert_outcomes(failed=1, passed=1 + count, skipped=3 * count + 1)
    output = result.stdout.str()
    # The short summary repeats the message when the terminal is wide enough; count above it.
    assert output.split("short test summary info")[0].count("ModuleNotFoundError: No module named 'crm_app'") == 1  # once, not per revision
    assert "FAILED alembic.ini::deploy-transaction" in output
    assert "prepend_sys_path = ." in output
    assert "hint about connections" not in output and "config.attributes['connection']" not in output


# --- 9. intended data migrations --------------------------------------------------------------

BACKFILL = [
    Rev("b1", ["CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL)"], ["DROP TABLE t"]),
    Rev("b2", ["ALTER TABLE t ADD COLUMN name_key text", "UPDATE t SET name = upper(name), name_key = lower(name)"],
        ["ALTER TABLE t DROP COLUMN name_key"], doc="backfill name_key"),
]


def test_backfill_is_information_unless_the_downgrade_restores(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results = dbarch_migrations.run(str(write_alembic(tmp_path / "one-way", BACKFILL)), drift=False)
    data = one(results, "data-round-trip", "b2")
    assert data.status is Status.PASSED, data.title
    assert "(information)" in data.title
    assert "changed by the upgrade's own data migration" in data.evidence and "name 'v2' -> 'V2'" in data.evidence

    # A downgrade that writes the data back claims to restore it: a difference is a loss.
    claims = BACKFILL[:1] + [Rev("b2", BACKFILL[1].upgrade, ["UPDATE t SET name = name || '!'", "ALTER TABLE t DROP COLUMN name_key"])]
    results = dbarch_migrations.run(str(write_alembic(tmp_path / "claims", claims)), drift=False)
    data = one(results, "data-round-trip", "b2")
    assert data.status is Status.FAILED
    assert "row id=2 changed: name 'v2' -> 'V2!'" in data.title


ROW_BY_ROW = [
    Rev("r1", ["CREATE TABLE person (id int PRIMARY KEY, password text, updated_at timestamp)"], ["DROP TABLE person"]),
    # A backfill row by row, as an ORM session does it: no UPDATE at all while the table is
    # empty (the first upgrade), one per row once the check's rows are there (upgrading
    # again); the downgrade writes nothing back.
    Rev(
        "r2",
        """
        op.add_column("person", sa.Column("from_ldap", sa.Boolean()))
        bind = op.get_bind()
        for (key,) in bind.execute(sa.text("SELECT id FROM person")).fetchall():
            bind.execute(sa.text("UPDATE person SET from_ldap = false, updated_at = now() WHERE id = :k"), {"k": key})
        """,
        ["ALTER TABLE person DROP COLUMN from_ldap"],
        extra="import sqlalchemy as sa",
    ),
]


def test_row_by_row_backfill_seen_when_upgrading_again(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results = dbarch_migrations.run(str(write_alembic(tmp_path, ROW_BY_ROW)), drift=False)
    data = one(results, "data-round-trip", "r2")
    assert data.status is Status.PASSED, data.title
    assert "(information)" in data.title
    assert "changed by the upgrade's own data migration" in data.evidence and "updated_at None ->" in data.evidence


SHARED_ENUM = [
    Rev("e1", ["CREATE TABLE account (id int PRIMARY KEY)"], ["DROP TABLE account"]),
    # The enum type is created by create_table (SQLAlchemy remembers it in the migration
    # context's memo) and dropped by hand: upgrading again must create it again, as a
    # second `alembic upgrade` would (warehouse 7f0d1b5af8c7).
    Rev(
        "e2",
        """
        op.create_table("mail", sa.Column("id", sa.Integer, primary_key=True), sa.Column("status", STATUS))
        """,
        """
        op.drop_table("mail")
        STATUS.drop(op.get_bind())
        """,
        extra='import sqlalchemy as sa\nSTATUS = sa.Enum("sent", "bounced", name="mail_status")',
    ),
]


def test_upgrading_again_after_a_downgrade_starts_a_new_alembic_command(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results = dbarch_migrations.run(str(write_alembic(tmp_path, SHARED_ENUM)), drift=False)
    trip = one(results, "round-trip", "e2")
    assert trip.status is Status.PASSED, (trip.title, trip.evidence)


FUNCTION_PATH = [
    Rev(
        "g1",
        ["CREATE SCHEMA util", "CREATE SCHEMA legacy",
         *[f"CREATE FUNCTION {schema}make_id() RETURNS int LANGUAGE sql AS 'SELECT 1'" for schema in ("", "util.", "legacy.")],
         "CREATE FUNCTION util.other_id() RETURNS int LANGUAGE sql AS 'SELECT 2'",
         "CREATE TABLE t (id int PRIMARY KEY DEFAULT make_id())"],
        ["DROP TABLE t", "DROP SCHEMA util CASCADE", "DROP SCHEMA legacy CASCADE", "DROP FUNCTION make_id()"],
    ),
    # Restores the function its authors' server bound the unqualified name to (warehouse
    # adb74475e8a4: public.gen_random_uuid() of pgcrypto against the built-in one).
    Rev("g2", ["ALTER TABLE t ALTER COLUMN id SET DEFAULT util.make_id()"],
        ["ALTER TABLE t ALTER COLUMN id SET DEFAULT legacy.make_id()"]),
    # Another function altogether: still a failure.
    Rev("g3", ["ALTER TABLE t ALTER COLUMN id SET DEFAULT make_id()"],
        ["ALTER TABLE t ALTER COLUMN id SET DEFAULT util.other_id()"]),
]


def test_a_default_bound_to_a_same_named_function_elsewhere_is_a_warning(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results = dbarch_migrations.run(str(write_alembic(tmp_path, FUNCTION_PATH)), drift=False, data=False)
    moved = one(results, "round-trip", "g2")
    assert moved.status is Status.WARNING, moved.title
    assert "default changed from make_id() to legacy.make_id()" in moved.title
    assert "same name in another schema" in moved.fix
    other = one(results, "round-trip", "g3")
    assert other.status is Status.FAILED and "util.other_id()" in other.title


BODY = "CREATE OR REPLACE FUNCTION total() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n{}RETURN {};\nEND;\n$$"
FUNCTION_LAYOUT = [
    Rev("f1", [BODY.format("    ", 1)], ["DROP FUNCTION total()"]),
    # The downgrade re-creates f1's body with other indentation (warehouse 87509f4ae027).
    Rev("f2", [BODY.format("    ", 2)], [BODY.format("\t\t", 1)]),
    Rev("f3", [BODY.format("  ", 3)], [BODY.format("  ", 4)]),  # another body: still a failure
]


def test_a_function_body_re_created_with_other_whitespace_is_restored(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results = dbarch_migrations.run(str(write_alembic(tmp_path, FUNCTION_LAYOUT)), drift=False, data=False)
    assert one(results, "round-trip", "f2").status is Status.PASSED
    other = one(results, "round-trip", "f3")
    assert other.status is Status.FAILED and "RETURN 2" in other.title and "RETURN 4" in other.title, other.title


EXTENSION_KEPT = [
    Rev("x1", ["CREATE TABLE word (id int PRIMARY KEY, w text)"], ["DROP TABLE word"]),
    # The downgrade keeps the extension (warehouse 128a0ead322: pgcrypto): a warning.
    Rev("x2", ["CREATE EXTENSION IF NOT EXISTS pg_trgm", "CREATE INDEX ix_word_trgm ON word USING gin (w gin_trgm_ops)"],
        ["DROP INDEX ix_word_trgm"]),
    # Dropping an extension that was there before is a loss: a failure.
    Rev("x3", ["ALTER TABLE word ADD COLUMN n int"], ["ALTER TABLE word DROP COLUMN n", "DROP EXTENSION pg_trgm CASCADE"]),
    Rev("x4", ["CREATE EXTENSION IF NOT EXISTS fuzzystrmatch"], "pass"),
]


def test_an_extension_the_downgrade_keeps_is_a_warning(dbarch_migrations, tmp_path: Path, admin) -> None:  # type: ignore[no-untyped-def]
    available = {r[0] for r in admin.execute("SELECT name FROM pg_available_extensions").fetchall()}
    if not {"pg_trgm", "fuzzystrmatch"} <= available:
        pytest.skip("pg_trgm or fuzzystrmatch is not available on this server (PostgreSQL contrib)")
    results = dbarch_migrations.run(str(write_alembic(tmp_path, EXTENSION_KEPT)), drift=False, data=False)
    kept = one(results, "round-trip", "x2")
    assert kept.status is Status.WARNING, kept.title
    assert "extension pg_trgm left behind" in kept.title and "DROP EXTENSION" in kept.fix
    # Only installs an extension, downgrade `pass` (warehouse 13c1c0ac92e9): one warning, from the round trip.
    only = one(results, "round-trip", "x4")
    assert only.status is Status.WARNING and "its downgrade is empty" in only.title, only.title
    assert results.for_item("empty-downgrade", "x4") == []
    dropped = one(results, "round-trip", "x3")
    assert dropped.status is Status.FAILED and "extension pg_trgm lost" in dropped.title, dropped.title


# --- issue 13: the CLI's usage errors -----------------------------------------------------------


def dbarch(cwd: Path, *args: str, dsn: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DBARCH_DSN"}
    if dsn:
        env["DBARCH_DSN"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "pytest_dbarch.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_usage_errors(tmp_path: Path, inner_dsn: str) -> None:
    missing = dbarch(tmp_path, "migrations", "check", "nothere.ini", dsn=inner_dsn)
    assert missing.returncode == 2
    assert "dbarch: nothere.ini does not exist" in missing.stderr
    assert not (tmp_path / ".temp").exists() and missing.stdout == ""

    write_alembic(tmp_path, ORDER_HISTORY)
    for dsn in ("postgresql://nobody@127.0.0.1:1/nowhere", "mysql://root@127.0.0.1/app"):
        result = dbarch(tmp_path, "migrations", "check", "--dsn", dsn)
        assert result.returncode == 2, (dsn, result.stdout, result.stderr)
        assert result.stderr.startswith("dbarch: the server was not reached: "), result.stderr
        assert "--dsn" in result.stderr and "--dbarch-dsn" not in result.stderr
        assert "revisions checked" not in result.stdout and not (tmp_path / ".temp").exists()
        assert "Traceback" not in result.stderr

    workers = dbarch(tmp_path, "migrations", "check", "--workers", "two", dsn=inner_dsn)
    assert workers.returncode == 2, (workers.stdout, workers.stderr)
    assert "--workers = 'two' is not a number of processes" in workers.stderr and "Traceback" not in workers.stderr
    assert not (tmp_path / ".temp").exists()

    help_text = dbarch(tmp_path, "migrations", "check", "--help").stdout
    assert "2 bad usage" in " ".join(help_text.split())


def test_cli_default_output_fits_a_screen(tmp_path: Path, inner_dsn: str) -> None:
    revisions = NO_TIMEOUTS + [Rev(f"x{n}", [f"CREATE INDEX ix_x{n} ON t (id)"], [f"DROP INDEX ix_x{n}"]) for n in range(12)]
    revisions.append(Rev("bad", ["CREATE INDEX ix_bad ON u (id)"], ["SELECT 1"]))
    write_alembic(tmp_path, revisions)
    result = dbarch(tmp_path, "migrations", "check", "--no-data", "--report-dir", "off", dsn=inner_dsn)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) <= 30, result.stdout
    assert "problems by rule:" in lines
    assert any(line.split() == ["13", "warning", "migrations.lint.require-concurrent-index-creation"] for line in lines)
    assert "revisions with failures or errors (1 of 17):" in lines
    assert any(
        line.startswith("    FAIL [migrations.round-trip] downgrade does not restore the schema: index ix_bad left behind")
        for line in lines
    )
    assert "12 more revisions have warnings only" in lines
    verbose = dbarch(tmp_path, "migrations", "check", "--no-data", "--report-dir", "off", "-v", dsn=inner_dsn)
    assert len(verbose.stdout.splitlines()) > 3 * len(lines)
