"""Both isolation modes as a user sees them: writes never cross from one test to the next."""

from __future__ import annotations

import pytest

from tests.conftest import database_names

SCHEMA = "CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL UNIQUE);\n"

WRITE_THEN_LOOK = """
import pytest
from sqlalchemy import text

def test_1_write(dbarch_session):
    dbarch_session.execute(text("INSERT INTO accounts (name) VALUES ('acme')"))
    dbarch_session.commit()   # code under test may commit
    assert dbarch_session.execute(text("SELECT count(*) FROM accounts")).scalar() == 1

def test_2_invisible(dbarch_connection):
    assert dbarch_connection.execute(text("SELECT count(*) FROM accounts")).scalar() == 0

def test_3_psycopg_write(dbarch_psycopg):
    with dbarch_psycopg.transaction():
        dbarch_psycopg.execute("INSERT INTO accounts (name) VALUES ('globex')")
    dbarch_psycopg.execute("INSERT INTO accounts (name) VALUES ('umbrella')")
    dbarch_psycopg.commit()

def test_4_invisible(dbarch_psycopg):
    assert dbarch_psycopg.execute("SELECT count(*) FROM accounts").fetchone()[0] == 0
"""


def _project(pytester: pytest.Pytester, isolation: str | None = None) -> None:
    pytester.makefile(".sql", schema=SCHEMA)
    ini = "[pytest]\ndbarch_sql_files = schema.sql\n"
    if isolation:
        ini += f"dbarch_isolation = {isolation}\n"
    pytester.makeini(ini)


@pytest.mark.parametrize("isolation", ["transaction", "clone"])
def test_writes_are_invisible_to_the_next_test(external_pytester: pytest.Pytester, isolation: str) -> None:
    _project(external_pytester, isolation)
    external_pytester.makepyfile(WRITE_THEN_LOOK)
    result = external_pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([f"dbarch: *isolation={isolation} (ini dbarch_isolation)*"])


def test_fixtures_share_one_transaction(external_pytester: pytest.Pytester) -> None:
    """In transaction mode the ORM session and raw psycopg see each other's writes."""
    _project(external_pytester)
    external_pytester.makepyfile(
        """
        from sqlalchemy import text

        def test_shared(dbarch_session, dbarch_psycopg, dbarch_engine):
            dbarch_psycopg.execute("INSERT INTO accounts (name) VALUES ('initech')")
            assert dbarch_session.execute(text("SELECT name FROM accounts")).scalar() == "initech"
            with dbarch_engine.begin() as conn:
                conn.execute(text("INSERT INTO accounts (name) VALUES ('hooli')"))
            assert dbarch_psycopg.execute("SELECT count(*) FROM accounts").fetchone()[0] == 2
        """
    )
    external_pytester.runpytest().assert_outcomes(passed=1)


def test_rollback_and_errors_inside_a_test(external_pytester: pytest.Pytester) -> None:
    """rollback() and a failed statement undo only the test's own work since its last commit."""
    _project(external_pytester)
    external_pytester.makepyfile(
        """
        import pytest
        from sqlalchemy import text
        from sqlalchemy.exc import IntegrityError

        def test_rollback(dbarch_session):
            dbarch_session.execute(text("INSERT INTO accounts (name) VALUES ('kept')"))
            dbarch_session.commit()
            dbarch_session.execute(text("INSERT INTO accounts (name) VALUES ('dropped')"))
            dbarch_session.rollback()
            with pytest.raises(IntegrityError):
                dbarch_session.execute(text("INSERT INTO accounts (name) VALUES ('kept')"))
                dbarch_session.commit()
            dbarch_session.rollback()
            names = dbarch_session.execute(text("SELECT name FROM accounts")).scalars().all()
            assert names == ["kept"]

        def test_next_is_clean(dbarch_session):
            assert dbarch_session.execute(text("SELECT count(*) FROM accounts")).scalar() == 0
        """
    )
    external_pytester.runpytest().assert_outcomes(passed=2)


def test_marker_overrides_the_default(external_pytester: pytest.Pytester) -> None:
    _project(external_pytester, "transaction")
    external_pytester.makepyfile(
        """
        import pytest

        seen = {}

        @pytest.mark.dbarch(isolation="clone")
        def test_clone(dbarch_psycopg):
            seen["clone"] = dbarch_psycopg.execute("SELECT current_database()").fetchone()[0]
            # DDL in a clone cannot hurt anyone
            dbarch_psycopg.execute("DROP TABLE accounts")

        def test_transaction(dbarch_psycopg):
            name = dbarch_psycopg.execute("SELECT current_database()").fetchone()[0]
            assert name != seen["clone"]
            assert dbarch_psycopg.execute("SELECT count(*) FROM accounts").fetchone()[0] == 0
        """
    )
    external_pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


@pytest.mark.parametrize("how", ["cli", "env"])
def test_isolation_option_from_cli_and_env(
    external_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    _project(external_pytester, "transaction")
    external_pytester.makepyfile(
        """
        def test_mode(dbarch_psycopg):
            name = dbarch_psycopg.execute("SELECT current_database()").fetchone()[0]
            assert name.rsplit("_", 1)[-1].startswith("t"), name   # a per-test clone
        """
    )
    if how == "cli":
        result = external_pytester.runpytest("--dbarch-isolation=clone")
        source = "--dbarch-isolation"
    else:
        monkeypatch.setenv("DBARCH_ISOLATION", "clone")
        result = external_pytester.runpytest()
        source = "env DBARCH_ISOLATION"
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"dbarch: *isolation=clone ({source})*"])


def test_bad_marker_is_a_clear_error(external_pytester: pytest.Pytester) -> None:
    _project(external_pytester)
    external_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.dbarch(isolation="snapshot")
        def test_bad(dbarch_psycopg):
            pass
        """
    )
    result = external_pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*bad @pytest.mark.dbarch: isolation='snapshot'; choose one of transaction, clone*"])


def test_literal_commit_is_caught_and_isolation_restored(external_pytester: pytest.Pytester) -> None:
    """A test that ends the outer transaction gets an error; the next test still sees a clean database."""
    _project(external_pytester)
    external_pytester.makepyfile(
        """
        def test_1_commits_for_real(dbarch_psycopg):
            dbarch_psycopg.execute("INSERT INTO accounts (name) VALUES ('leak')")
            dbarch_psycopg.execute("COMMIT")

        def test_2_clean(dbarch_psycopg):
            assert dbarch_psycopg.execute("SELECT count(*) FROM accounts").fetchone()[0] == 0
        """
    )
    result = external_pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_1_commits_for_real*",
            "*ended the transaction that isolates it*",
            "*fix: call commit() on the connection or session instead*",
        ]
    )


def test_async_fixtures_in_both_modes(external_pytester: pytest.Pytester) -> None:
    _project(external_pytester)
    external_pytester.makepyfile(
        """
        import pytest
        from sqlalchemy import text

        pytestmark = pytest.mark.asyncio

        async def test_1_write(dbarch_async_session):
            await dbarch_async_session.execute(text("INSERT INTO accounts (name) VALUES ('a')"))
            await dbarch_async_session.commit()
            count = await dbarch_async_session.scalar(text("SELECT count(*) FROM accounts"))
            assert count == 1

        async def test_2_invisible(dbarch_async_engine):
            async with dbarch_async_engine.connect() as conn:
                assert await conn.scalar(text("SELECT count(*) FROM accounts")) == 0

        @pytest.mark.dbarch(isolation="clone")
        async def test_3_clone(dbarch_async_session):
            await dbarch_async_session.execute(text("DROP TABLE accounts"))
            await dbarch_async_session.commit()

        async def test_4_table_still_there(dbarch_async_session):
            assert await dbarch_async_session.scalar(text("SELECT count(*) FROM accounts")) == 0
        """
    )
    external_pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=4)


def test_async_fixtures_without_pytest_asyncio_say_why(external_pytester: pytest.Pytester) -> None:
    _project(external_pytester)
    external_pytester.makepyfile(
        """
        def test_needs_async(dbarch_async_engine):
            pass
        """
    )
    result = external_pytester.runpytest("-p", "no:asyncio")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*dbarch_async_engine needs pytest-asyncio: pip install pytest-asyncio*"])


def test_clone_databases_are_dropped_and_others_untouched(
    external_pytester: pytest.Pytester, admin, dbarch_server
) -> None:
    """External mode creates its own databases and drops exactly those."""
    admin.execute("DROP DATABASE IF EXISTS keep_me")
    admin.execute("CREATE DATABASE keep_me")
    try:
        before = database_names(admin)
        _project(external_pytester, "clone")
        external_pytester.makepyfile(
            """
            import pytest

            @pytest.mark.parametrize("n", range(3))
            def test_clone(dbarch_psycopg, n):
                dbarch_psycopg.execute("INSERT INTO accounts (name) VALUES ('x')")
            """
        )
        external_pytester.runpytest().assert_outcomes(passed=3)
        assert database_names(admin) == before
    finally:
        admin.execute("DROP DATABASE keep_me")


def test_session_state_does_not_cross_tests(external_pytester: pytest.Pytester) -> None:
    """The transaction-mode connection is reused; settings, locks and row factories are reset."""
    _project(external_pytester)
    external_pytester.makepyfile(
        """
        from psycopg.rows import dict_row

        def test_1_dirty(dbarch_psycopg):
            dbarch_psycopg.row_factory = dict_row
            dbarch_psycopg.execute("SELECT pg_advisory_lock(42)")
            dbarch_psycopg.execute("SET statement_timeout = '1s'")
            dbarch_psycopg.commit()

        def test_2_clean(dbarch_psycopg):
            row = dbarch_psycopg.execute("SHOW statement_timeout").fetchone()
            assert row == ("0",)                                   # a tuple: row factory reset
            assert dbarch_psycopg.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            ).fetchone()[0] == 0
        """
    )
    external_pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)
