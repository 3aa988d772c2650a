"""The psycopg2 and asyncpg fixtures as a user sees them: isolation, mixing drivers, errors."""

from __future__ import annotations

import pytest

from tests.conftest import database_names
from tests.queries_support import SCHEMA

ISOLATION = '''
import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session


def count(cur):
    cur.execute("SELECT count(*) FROM accounts")
    return cur.fetchone()[0]


def test_1_psycopg2_commits_and_rollbacks_stay_inside_the_test(dbarch_psycopg2, dbarch_psycopg2_engine):
    cur = dbarch_psycopg2.cursor()
    cur.execute("INSERT INTO accounts (name) VALUES ('kept')")
    dbarch_psycopg2.commit()  # a savepoint: still rolled back after the test
    cur.execute("INSERT INTO accounts (name) VALUES ('dropped')")
    dbarch_psycopg2.rollback()  # back to the last commit
    with Session(dbarch_psycopg2_engine) as session:  # the same connection
        assert session.execute(text("SELECT name FROM accounts")).scalars().all() == ["kept"]
        session.execute(text("INSERT INTO accounts (name) VALUES ('orm')"))
        session.commit()
    dbarch_psycopg2.close()  # kept open until the test ends
    assert count(cur) == 2


def test_2_nothing_left(dbarch_psycopg2):
    assert count(dbarch_psycopg2.cursor()) == 0


@pytest.mark.asyncio
async def test_3_asyncpg_transaction_blocks_are_savepoints(dbarch_asyncpg, dbarch_asyncpg_engine):
    first = await dbarch_asyncpg.fetchval("INSERT INTO accounts (name) VALUES ('kept') RETURNING id")
    with pytest.raises(Exception, match="duplicate key"):
        async with dbarch_asyncpg.transaction():  # the failure stays inside the block
            await dbarch_asyncpg.execute("INSERT INTO accounts (id, name) VALUES ($1, 'twin')", first)
    async with AsyncSession(dbarch_asyncpg_engine) as session:  # the same connection
        assert (await session.execute(text("SELECT count(*) FROM accounts"))).scalar() == 1
        await session.execute(text("INSERT INTO accounts (name) VALUES ('orm')"))
        await session.commit()
    await dbarch_asyncpg.close()  # kept open until the test ends
    assert await dbarch_asyncpg.fetchval("SELECT count(*) FROM accounts") == 2


@pytest.mark.asyncio
async def test_4_nothing_left(dbarch_asyncpg):
    assert await dbarch_asyncpg.fetchval("SELECT count(*) FROM accounts") == 0


def test_5_mixing_drivers_runs_in_clone_isolation(request, dbarch_session, dbarch_psycopg2):
    assert request.node.get_closest_marker("dbarch").kwargs == {"isolation": "clone"}
    dbarch_session.execute(text("INSERT INTO accounts (name) VALUES ('seen')"))
    dbarch_session.commit()  # a real commit: the psycopg2 connection sees it
    cur = dbarch_psycopg2.cursor()
    cur.execute("SELECT name FROM accounts")
    assert cur.fetchall() == [("seen",)]


@pytest.mark.asyncio
async def test_6_mixing_asyncpg_and_psycopg2_too(request, dbarch_asyncpg, dbarch_psycopg2):
    assert request.node.get_closest_marker("dbarch").kwargs == {"isolation": "clone"}
    await dbarch_asyncpg.execute("INSERT INTO accounts (name) VALUES ('autocommitted')")
    assert count(dbarch_psycopg2.cursor()) == 1


@pytest.mark.dbarch(isolation="transaction")
def test_7_insisting_on_one_transaction_is_an_error(dbarch_session, dbarch_psycopg2):
    pass


def test_8_a_literal_commit_breaks_isolation(dbarch_psycopg2):
    dbarch_psycopg2.cursor().execute("INSERT INTO accounts (name) VALUES ('leak'); COMMIT")


@pytest.mark.asyncio
async def test_9_a_literal_commit_breaks_isolation(dbarch_asyncpg):
    await dbarch_asyncpg.execute("INSERT INTO accounts (name) VALUES ('leak'); COMMIT")


def test_a_the_database_was_rebuilt(dbarch_psycopg2):
    assert count(dbarch_psycopg2.cursor()) == 0


def test_b_no_connection_left_behind(dbarch_psycopg):
    others = dbarch_psycopg.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchone()[0]
    assert others == 0
'''


def test_driver_fixtures_isolate_and_mixing_drivers_moves_to_clone(
    external_pytester: pytest.Pytester, admin
) -> None:
    external_pytester.makefile(".sql", schema=SCHEMA)
    external_pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\nasyncio_default_fixture_loop_scope = function\n")
    external_pytester.makepyfile(test_fixtures=ISOLATION)
    databases = database_names(admin)
    result = external_pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=10, errors=3)
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_7_insisting_on_one_transaction_is_an_error*",
        "pytest-dbarch: dbarch_psycopg2 (psycopg2) and dbarch_engine, dbarch_session (psycopg 3) cannot share one "
        "transaction: each driver has a connection of its own, so in transaction isolation neither would see the "
        "other's rows",
        "  fix: remove isolation='transaction' from the test's dbarch marker (a test that mixes drivers then runs "
        "in clone isolation, where every connection commits for real), or use the fixtures of one driver only",
    ])
    for name in ("test_8_a_literal_commit_breaks_isolation", "test_9_a_literal_commit_breaks_isolation"):
        result.stdout.fnmatch_lines([f"*ERROR at teardown of {name}*", "*ended the transaction that isolates it*"])
    assert "Traceback" not in result.stdout.str()
    assert database_names(admin) == databases, "the inner session left databases behind"
    left = admin.execute(
        "SELECT datname FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    ).fetchall()
    assert {name for (name,) in left} <= databases, "the inner session left connections behind"


MISSING = '''
import sys

sys.modules["psycopg2"] = None  # as if psycopg2 were not installed
'''


def test_missing_driver_or_pytest_asyncio_is_one_clear_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fixtures fail before asking for a database: the server given here does not exist."""
    monkeypatch.setenv("DBARCH_DSN", "host=/nonexistent-dbarch-server port=1 user=nobody")
    pytester.makeconftest(MISSING)
    pytester.makepyfile(
        """
        def test_psycopg2(dbarch_psycopg2):
            pass

        def test_asyncpg(dbarch_asyncpg):
            pass

        def test_asyncpg_engine(dbarch_asyncpg_engine):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:asyncio", "-p", "no:randomly")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines([
        "*pytest-dbarch: dbarch_psycopg2 needs psycopg2: pip install psycopg2-binary",
        "*pytest-dbarch: dbarch_asyncpg needs pytest-asyncio: pip install pytest-asyncio*",
        "*pytest-dbarch: dbarch_asyncpg_engine needs pytest-asyncio: pip install pytest-asyncio*",
    ])
    result = pytester.runpytest("--fixtures")
    for name in ("dbarch_psycopg2", "dbarch_psycopg2_engine", "dbarch_asyncpg", "dbarch_asyncpg_engine"):
        result.stdout.fnmatch_lines([f"{name}*", "    ?*"])
