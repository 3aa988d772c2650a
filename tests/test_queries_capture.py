"""Capture and counters as a user sees them: inner test files assert on ``dbarch_queries``."""

from __future__ import annotations

import pytest

from tests.queries_support import application_tests, project

CAPTURE_TESTS = '''
import psycopg
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session, selectinload

from models import Account, Contact


def test_raw_psycopg_sync_counts_kinds_rows_params_and_call_site(seeded, dbarch_psycopg, dbarch_queries):
    rows = dbarch_psycopg.execute("SELECT id FROM accounts WHERE name <> %(password)s", {"password": "hunter2"}).fetchall()
    with dbarch_psycopg.cursor() as cur:
        cur.executemany("INSERT INTO events (kind) VALUES (%s)", [("a",), ("b",), ("c",)])
    assert dbarch_queries.count == 2
    first, second = dbarch_queries.queries
    assert (first.kind, first.rows, first.many) == ("select", len(rows), 0)
    assert first.duration > 0 and not first.error
    assert (second.kind, second.many) == ("insert", 3)
    assert first.where.startswith("test_capture.py:")
    assert "hunter2" not in first.shown_params() and "password=***" in first.shown_params()
    assert dbarch_queries.by_kind() == {"select": 1, "insert": 1}
    dbarch_psycopg.execute("SELECT %s::text AS api_token", ("s3cret",))
    assert dbarch_queries.queries[-1].shown_params() == "*** (1 values hidden: the statement mentions a secret)"
    assert dbarch_queries.by_table() == {"accounts": 1, "events": 1}
    assert dbarch_queries.queries[0].shown_params() == "password=***"


def test_fixture_setup_is_outside_the_window_and_commits_are_round_trips_not_queries(seeded, dbarch_queries):
    seeded.add(Account(name="new"))
    seeded.commit()
    kinds = [(s.kind, s.origin) for s in dbarch_queries.statements]
    assert dbarch_queries.count == 1  # the INSERT; the seed data came before the call phase
    assert ("tx", "transaction") in kinds  # commit() became RELEASE SAVEPOINT: visible, not counted
    assert dbarch_queries.round_trips == 2


def test_sqlalchemy_statements_are_counted_once_with_orm_relationship(seeded, dbarch_queries):
    accounts = seeded.scalars(select(Account).options(selectinload(Account.contacts))).all()
    first = accounts[0]
    seeded.expire(first, ["contacts"])
    first.contacts
    assert dbarch_queries.count == 3
    parent, batch, lazy = dbarch_queries.queries
    assert parent.relationship is None
    assert (batch.relationship.name, batch.relationship.lazy) == ("Account.contacts", False)
    assert (lazy.relationship.name, lazy.relationship.lazy, lazy.relationship.direction) == (
        "Account.contacts", True, "ONETOMANY")
    fingerprints = dbarch_queries.by_fingerprint()
    assert any("IN ($1 /*, ... */)" in f for f in fingerprints)


def test_connections_opened_outside_sqlalchemy_and_own_engines_are_seen(dbarch_url, dbarch_queries):
    engine = create_engine(dbarch_url)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    engine.dispose()
    dsn = dbarch_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT 2")
    sql = dbarch_queries.sql
    assert "SELECT 1" in sql and "SELECT 2" in sql
    begins = [s for s in dbarch_queries.statements if s.sql == "BEGIN"]
    assert begins, "the implicit BEGIN of the engine connection is a round trip"


def test_narrow_block_and_clear(seeded, dbarch_psycopg, dbarch_queries):
    dbarch_psycopg.execute("SELECT 1")
    with dbarch_queries.capture() as block:
        dbarch_psycopg.execute("SELECT 2")
        dbarch_psycopg.execute("SELECT 3")
    assert block.count == 2 and dbarch_queries.count == 3
    dbarch_queries.clear()
    assert dbarch_queries.count == 0


def test_fixtures_requested_mid_test_keep_their_savepoint_out_of_the_count(request, dbarch_queries):
    conn = request.getfixturevalue("dbarch_psycopg")  # SAVEPOINT + txid_current now, in the call phase
    conn.execute("SELECT 1")
    own = [s for s in dbarch_queries.statements if s.origin == "plugin"]
    assert any("SAVEPOINT dbarch_test" in s.sql for s in own)
    assert dbarch_queries.count == 1 and dbarch_queries.sql == ["SELECT 1"]
    assert dbarch_queries.round_trips == 1


@pytest.mark.dbarch(isolation="clone")
def test_clone_mode_commit_is_a_real_commit_round_trip(dbarch_session, dbarch_queries):
    dbarch_session.add(Account(name="cloned"))
    dbarch_session.commit()
    assert [(s.sql, s.kind) for s in dbarch_queries.statements if s.kind == "tx"] == [
        ("BEGIN", "tx"), ("COMMIT", "tx")]
    assert dbarch_queries.count == 1 and dbarch_queries.round_trips == 3


@pytest.mark.asyncio
async def test_async_psycopg_and_async_session(dbarch_url, dbarch_async_session, dbarch_queries):
    await dbarch_async_session.execute(select(Account.id).where(Account.id == 1))
    await dbarch_async_session.scalars(select(Account).options(selectinload(Account.contacts)))
    dsn = dbarch_url.replace("postgresql+psycopg://", "postgresql://")
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        async with conn.cursor() as cur:
            await cur.executemany("SELECT %s", [(1,), (2,)])
    queries = dbarch_queries.queries
    assert [q.kind for q in queries] == ["select", "select", "select"]
    assert queries[1].relationship is None  # no accounts: selectinload has nothing to load
    assert queries[2].many == 2
    assert all(q.where.startswith("test_capture.py:") for q in queries)


def test_assertion_fixtures_pass(seeded, dbarch_assert_num_queries, dbarch_assert_max_num_queries):
    with dbarch_assert_num_queries(2) as block:
        seeded.scalars(select(Account).options(selectinload(Account.contacts))).all()
    assert block.count == 2
    with dbarch_assert_max_num_queries(1):
        seeded.execute(text("SELECT 1"))


@pytest.mark.max_queries(1)
def test_marker_within_budget(dbarch_psycopg):
    dbarch_psycopg.execute("SELECT 1")
'''

BUDGET_FAILURES = '''
import pytest
from sqlalchemy import select

from models import Account


@pytest.mark.max_queries(2)
def test_over_budget(seeded):
    for account in seeded.scalars(select(Account)):
        account.contacts


def test_exact_count_fails(seeded, dbarch_assert_num_queries):
    with dbarch_assert_num_queries(1, info="the report page"):
        seeded.execute(select(Account.id))
        seeded.execute(select(Account.name))


@pytest.mark.max_queries("ten")
def test_bad_marker():
    pass
'''


def test_capture_and_counters(external_pytester: pytest.Pytester) -> None:
    project(external_pytester)
    external_pytester.makepyfile(test_capture=CAPTURE_TESTS)
    result = external_pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=10)


def test_budget_failures_print_numbered_sql_with_call_sites(external_pytester: pytest.Pytester) -> None:
    project(external_pytester)
    application_tests(external_pytester, "budget", BUDGET_FAILURES)
    result = external_pytester.runpytest("-p", "no:randomly", "--dbarch-nplusone=off")
    result.assert_outcomes(failed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*pytest-dbarch: @pytest.mark.max_queries(2): Expected to perform 2 queries or less but 4 were done",
            "4 queries (4 select), 4 round trips",
            "  1. SELECT accounts.id, accounts.name FROM accounts",
            "       at budget.py:9",
            "  2. SELECT contacts.id, contacts.account_id, contacts.email FROM contacts WHERE *contacts.account_id",
            "       params: param_1=1",
            "       at budget.py:10",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*Expected to perform 1 query but 2 were done", "the report page", "*at budget.py:15"]
    )
    # The fix names the repeat that broke the budget, and speaks of a loop only when there is one.
    result.stdout.fnmatch_lines([
        "*fix: SELECT contacts.id, * FROM contacts WHERE $1 = contacts.account_id ran 3 times from the loop at "
        "budget.py:9: fetch those rows in one query (selectinload / WHERE key IN (...)) before it, or raise "
        "the budget to 4 if the extra statements are intended",
        "*FAIL ?queries.num-queries? Expected to perform 1 query but 2 were done at budget.py:15",
        "*fix: remove or combine statements (a JOIN instead of a second SELECT, one INSERT of many rows), or set "
        "the budget to 2 if the extra statements are intended",
    ])
    result.stdout.fnmatch_lines(
        ["*bad @pytest.mark.max_queries: n='ten'; give a whole number of statements >= 0*"]
    )
    result.stdout.fnmatch_lines(["*FAIL ?queries.max-queries? Expected to perform 2 queries or less*"])
    assert "Traceback" not in result.stdout.str() and "During handling" not in result.stdout.str()
