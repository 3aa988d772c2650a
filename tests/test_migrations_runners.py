"""Runners: SQL directories (both layouts, transaction:false), Alembic branches and merges,
autocommit_block(), waivers, and statement observers wired to the first upgrade."""

from __future__ import annotations

import pytest

from tests.migrations_support import Rev, write_alembic

RECORDER = '''
import psycopg

class Recorder:
    """Records what a StatementObserver is told."""
    log = []

    def begin_revision(self, revision, connection):
        self.log.append(("begin", revision))

    def before_statement(self, statement, connection):
        self.log.append(("sql", statement.revision, statement.sql.split()[0:4], statement.in_transaction, statement.where))

    def after_statement(self, statement, connection, elapsed, error):
        assert elapsed >= 0 and error is None

    def end_revision(self, revision, connection):
        self.log.append(("end", revision))
        return []
'''


def test_sql_directory(external_pytester: pytest.Pytester) -> None:
    db = external_pytester.mkdir("db")
    (db / "0001_accounts.up.sql").write_text(
        "CREATE TABLE accounts (id bigserial PRIMARY KEY, name text NOT NULL);\n"
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
    )
    (db / "0001_accounts.down.sql").write_text("DROP FUNCTION f();\nDROP TABLE accounts;\n")
    (db / "0002_name_index.sql").write_text(
        "-- migrate:up transaction:false\n"
        "CREATE INDEX CONCURRENTLY ix_accounts_name ON accounts (name);\n"
        "-- migrate:down transaction:false\n"
        "DROP INDEX CONCURRENTLY ix_accounts_name;\n"
    )
    (db / "0003_audit.up.sql").write_text(
        "CREATE TABLE audit (id int);\nCOMMENT ON TABLE accounts IS 'customers';\n"
    )
    (db / "0003_audit.down.sql").write_text("DROP TABLE audit;\n")
    (db / "0004_drop_name.up.sql").write_text(
        "-- dbarch: one-way: the name column moved to the CRM, nothing to restore\n"
        "ALTER TABLE accounts DROP COLUMN name;\n"
    )
    external_pytester.makeini("[pytest]\ndbarch_migrations = db\n")
    external_pytester.makepyfile(
        test_observe=RECORDER
        + '''
def test_observers_hear_first_upgrades(dbarch_migrations):
    results = dbarch_migrations.run(observers=[Recorder])
    log = Recorder.log
    assert log[0] == ("begin", "0001_accounts") and ("end", "0004_drop_name") in log
    concurrently = [e for e in log if e[0] == "sql" and "CONCURRENTLY" in e[2]]
    assert len(concurrently) == 1, log  # first upgrade only, not the round trip
    assert concurrently[0][3] is False
    assert concurrently[0][4].endswith("db/0002_name_index.sql:2")
    create = [e for e in log if e[0] == "sql" and e[2][:2] == ["CREATE", "FUNCTION"]][0]
    assert create[3] is True and create[4].endswith("db/0001_accounts.up.sql:2")
    [failed] = [f.title for f in results.problems()]
    assert "revision 0003_audit" in failed and "comment customers left behind" in failed
'''
    )
    result = external_pytester.runpytest("-rfs")
    output = result.stdout.str()
    assert "FAILED db::round-trip[0003_audit]" in output
    assert "table accounts: comment customers left behind" in output
    assert "revision 0004_drop_name: round trip waived: the name column moved to the CRM" in output
    assert "revision 0004_drop_name: one-way by decision" in output
    # single-head, 3 empty-downgrade, 2 round trips, 3 data round trips, the fixture test,
    # 4 lock-safety, deploy-transaction (every SQL file commits on its own)
    result.assert_outcomes(passed=15, failed=1, skipped=4)


def test_alembic_branches_merge_autocommit_and_waivers(external_pytester: pytest.Pytester) -> None:
    write_alembic(
        external_pytester.path,
        [
            Rev("a", ["CREATE TABLE t (id int PRIMARY KEY, x int, y int)"], ["DROP TABLE t"], down=None),
            Rev("b1", ["CREATE INDEX ix_t_x ON t (x)"], ["DROP INDEX ix_t_x"], down="a"),
            Rev(
                "b2",
                """
                with op.get_context().autocommit_block():
                    op.execute("CREATE INDEX CONCURRENTLY ix_t_y ON t (y)")
                """,
                """
                with op.get_context().autocommit_block():
                    op.execute("DROP INDEX CONCURRENTLY ix_t_y")
                """,
                down="a",
            ),
            Rev("m", "pass", "pass", down=("b1", "b2")),
            Rev("c", ["ALTER TABLE t ADD COLUMN z int"], '"""Nothing to undo."""', down="m"),
            Rev(
                "d",
                ["CREATE TABLE u (id int)"],
                'raise RuntimeError("cannot undo d")',
                down="c",
                extra='dbarch_one_way = ""',
            ),
            Rev("e", ["CREATE TABLE v (id int)"], 'op.execute("DROP TABLE v")\n1 / 0', down="d"),
        ],
    )
    external_pytester.makeini("[pytest]\ndbarch_migrations = alembic.ini\ndbarch_migrations_min_downgrade = a\n")
    external_pytester.makepyfile(
        test_observe=RECORDER
        + '''
def test_observers_hear_first_upgrades(dbarch_migrations):
    dbarch_migrations.run(observers=[Recorder], data=False)
    begins = [e[1] for e in Recorder.log if e[0] == "begin"]
    assert begins[0] == "a" and begins[-1] == "e" and sorted(begins) == ["a", "b1", "b2", "c", "d", "e", "m"]
    assert begins.index("m") > max(begins.index("b1"), begins.index("b2"))
    [concurrently] = [e for e in Recorder.log if e[0] == "sql" and "CONCURRENTLY" in e[2]]
    assert concurrently[3] is False and concurrently[4].endswith("versions/b2.py:10")
    [create_u] = [e for e in Recorder.log if e[0] == "sql" and e[2][:3] == ["CREATE", "TABLE", "u"]]
    assert create_u[3] is True and create_u[4].endswith("versions/d.py:9")
    assert not any("alembic_version" in " ".join(e[2]) for e in Recorder.log if e[0] == "sql")
'''
    )
    result = external_pytester.runpytest("-rfs")
    output = result.stdout.str()
    for rev in ("b1", "b2", "m"):
        assert f"FAILED alembic.ini::round-trip[{rev}]" not in output
    assert "revision a: round trip waived: at or below the minimum downgrade revision a" in output
    # c's empty downgrade is one cause, reported once: by the round trip, which names it.
    assert "FAILED alembic.ini::empty-downgrade[c]" not in output
    assert "its empty downgrade is reported by round-trip[c]" in output
    assert (
        "revision c: downgrade does not restore the schema (its downgrade is empty: its body is empty "
        "(only a docstring or ...)): column t.z left behind" in output
    )
    assert "FAILED alembic.ini::round-trip[c]" in output
    assert "FAILED alembic.ini::round-trip[d]" in output and "revision d: waiver without a reason" in output
    assert "FAILED alembic.ini::round-trip[e]" in output
    assert "revision e: downgrade raised ZeroDivisionError: division by zero" in output
    assert "downgrade of revision e failed at" in output and "versions/e.py:14: ZeroDivisionError" in output
    assert "Traceback" not in output


def test_failures_are_named_and_other_checks_still_run(external_pytester: pytest.Pytester) -> None:
    write_alembic(
        external_pytester.path,
        [
            Rev("r1", ["CREATE TABLE t (id int)"], ["DROP TABLE t"]),
            Rev("r2", ["ALTER TABLE nowhere ADD COLUMN x int"], ["SELECT 1"]),
            Rev("r3", ["CREATE TABLE u (id int)"], ["DROP TABLE u"]),
            Rev("x", ["CREATE TABLE w (id int)"], ["DROP TABLE w"], down="r1"),
        ],
    )
    external_pytester.makeini("[pytest]\ndbarch_migrations = alembic.ini\n")
    result = external_pytester.runpytest("-rfEs")
    output = result.stdout.str()
    assert "FAILED alembic.ini::single-head" in output and "the history has 2 heads: r3, x" in output
    assert "alembic merge" in output
    assert "revision r2: upgrade failed: ProgrammingError: (psycopg.errors.UndefinedTable) relation" in output
    assert "upgrade of revision r2 failed at" in output and "versions/r2.py:9" in output
    # r3 cannot be checked: skipped with the cause, not one more error for r2's failure.
    assert "not checked: revision r2 (an ancestor) cannot be upgraded" in output
    assert "FAILED alembic.ini::round-trip[r3]" not in output
    assert "FAILED alembic.ini::round-trip[x]" not in output  # the other branch is still checked
    assert "Traceback" not in output

    (external_pytester.path / "migrations" / "env.py").write_text("import no_such_module\n")
    result = external_pytester.runpytest("-rfEs")
    output = result.stdout.str()
    assert "env.py of " in output and "ModuleNotFoundError: No module named 'no_such_module'" in output
    # The short summary repeats the message when the terminal is wide enough; count above it.
    assert output.split("short test summary info")[0].count("ModuleNotFoundError: No module named 'no_such_module'") == 1  # once, not per revision
    assert "prepend_sys_path = ." in output
    assert "FAILED alembic.ini::single-head" in output  # the static checks still ran
    assert "FAILED alembic.ini::empty-downgrade" not in output
    assert "Traceback" not in output


def test_missing_source_and_bad_sql_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pytest_dbarch.migrations.suite import plan

    missing = plan("nowhere/alembic.ini", tmp_path)
    assert missing.error is not None and "does not exist" in missing.error.cause
    assert missing.item_keys() == [("history", "")]
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "1_a.up.sql").write_text("SELECT 1;")
    (tmp_path / "db" / "01_b.up.sql").write_text("SELECT 1;")
    clash = plan("db", tmp_path)
    assert clash.error is not None and "share the number 1" in clash.error.cause
    (tmp_path / "db2").mkdir()
    (tmp_path / "db2" / "readme.sql").write_text("SELECT 1;")
    unnumbered = plan("db2", tmp_path)
    assert unnumbered.error is not None and "does not start with a number" in unnumbered.error.cause


def test_split_statements_respects_quotes_and_comments() -> None:
    from pytest_dbarch.migrations.sql_runner import split_statements

    sql = (
        "-- a comment; with a semicolon\n"
        "CREATE TABLE a (x text DEFAULT 'a;b');\n"
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n"
        "/* block; */ SELECT E'\\';';\n"
        "SELECT 2"
    )
    assert [line for _, line in split_statements(sql)] == [1, 3, 4, 5]
    assert [s.split()[-1] for s, _ in split_statements(sql)][:2] == ["'a;b')", "sql"]


def test_missing_revision_and_cycle_are_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pytest_dbarch.migrations.suite import plan

    missing = tmp_path / "missing"
    missing.mkdir()
    write_alembic(missing, [Rev("r1", ["SELECT 1"], ["SELECT 1"], down=None), Rev("r2", ["SELECT 1"], ["SELECT 1"], down="gone")])
    loaded = plan("alembic.ini", missing)
    assert loaded.error is not None
    assert "cannot be loaded" in loaded.error.cause
    assert "Revision gone referenced from gone -> r2 (head), r2 is not present" in loaded.error.cause
    assert "down_revision" in loaded.error.fix

    cycle = tmp_path / "cycle"
    cycle.mkdir()
    write_alembic(cycle, [Rev("r1", ["SELECT 1"], ["SELECT 1"], down="r2"), Rev("r2", ["SELECT 1"], ["SELECT 1"], down="r1")])
    loaded = plan("alembic.ini", cycle)
    assert loaded.error is not None and "cannot be loaded" in loaded.error.cause
    assert "r1" in loaded.error.cause and "r2" in loaded.error.cause


def test_registered_observers_get_items_of_their_own(external_pytester: pytest.Pytester) -> None:
    """Observers a project adds to suite.OBSERVERS report in the lock-safety items."""
    write_alembic(external_pytester.path, [Rev("r1", ["CREATE TABLE t (id int)"], ["DROP TABLE t"])])
    external_pytester.makeini("[pytest]\ndbarch_migrations = alembic.ini\ndbarch_migrations_data = off\n")
    external_pytester.makeconftest(
        """
from pytest_dbarch.findings import Finding
from pytest_dbarch.migrations import suite

class CountStatements:
    def begin_revision(self, revision, connection):
        self.count = 0
    def before_statement(self, statement, connection):
        self.count += 1
    def after_statement(self, statement, connection, elapsed, error):
        pass
    def end_revision(self, revision, connection):
        status = "failed" if self.count > 0 else "passed"
        return [Finding("migrations.example", "migrations", status, f"{revision} ran {self.count} statements")]

suite.OBSERVERS.append(CountStatements)
"""
    )
    result = external_pytester.runpytest("-rf")
    output = result.stdout.str()
    assert "FAILED alembic.ini::lock-safety[r1]" in output and "r1 ran 1 statements" in output
    # skipped: data round trip off, no models, deploy-transaction warns (no
    # transaction_per_migration in this env.py)
    result.assert_outcomes(passed=3, failed=1, skipped=3)


def test_waivers_are_read_in_both_spellings() -> None:
    from pytest_dbarch.migrations.runners import read_waivers

    python = 'revision = "x"\ndbarch_one_way = "splits names for good"\ndbarch_min_downgrade = \'squashed baseline\'\n'
    assert read_waivers(python) == {"one-way": "splits names for good", "min-downgrade": "squashed baseline"}
    sql = "-- dbarch: one-way: data moved to the warehouse\nALTER TABLE t DROP COLUMN c;\n"
    assert read_waivers(sql) == {"one-way": "data moved to the warehouse"}
    assert read_waivers("def upgrade():\n    pass\n") == {}
