"""Issue 15, points 3 and 4: what the query rules judge.

Point 4: statements sent by test code (the test, fixtures, conftest.py, helpers of the
test tree such as ``tests/utils/user.py``) are recorded but feed no N+1 rule and no
whole-test budget; the application's statements a test causes still do.
Point 3: ``queries.repeated-identical-query`` is one call site in one transaction of one
connection and thread, points at the application's line and advises what is true.
"""

from __future__ import annotations

import pytest

from tests.queries_support import project

CRUD = '''
from sqlalchemy import select, text

from models import Account


def account_id(session, name):
    return session.execute(select(Account.id).where(Account.name == name)).scalar_one()


def contact_counts(session):
    return [len(account.contacts) for account in session.scalars(select(Account)).all()]
'''

USER_HELPERS = '''
from sqlalchemy import text

from app import crud


def existing_account(session, name):
    return crud.account_id(session, name)  # the application's statement, from a test helper


def random_account(session, name):
    session.execute(text("INSERT INTO accounts (name) VALUES (:name)"), {"name": name})
    return session.execute(text("SELECT id FROM accounts WHERE name = :name"), {"name": name}).scalar_one()
'''

TESTS_CONFTEST = '''
import pytest
from sqlalchemy import text


@pytest.fixture
def make_account(dbarch_session):
    """A factory fixture: its statements run in the test's call phase, from conftest.py."""
    def make(name):
        return dbarch_session.execute(
            text("INSERT INTO accounts (name) VALUES (:name) RETURNING id"), {"name": name}
        ).scalar_one()
    return make
'''

TESTS = '''
import pytest
from sqlalchemy import select, text

from app import crud
from models import Account
from tests.utils.user import existing_account, random_account


def test_a_helper_called_twice_on_one_line(seeded):
    first, second = random_account(seeded, "u1"), random_account(seeded, "u2")
    assert first != second
    first, second = existing_account(seeded, "a1"), existing_account(seeded, "a2")
    assert first != second


@pytest.mark.max_queries(1)
def test_set_up_and_assertions_do_not_count(seeded, make_account):
    for name in ("n1", "n2", "n3"):
        make_account(name)
    assert crud.account_id(seeded, "n2")  # the one application statement
    for name in ("n1", "n2", "n3"):
        assert seeded.execute(select(Account.id).where(Account.name == name)).scalar_one()
    for account in seeded.scalars(select(Account)).all():
        len(account.contacts)  # lazy loads the test itself triggers


@pytest.mark.max_queries(1)
def test_application_statements_still_count(seeded):
    random_account(seeded, "u3")
    crud.account_id(seeded, "a1")
    crud.account_id(seeded, "a2")


def test_the_application_loop_is_still_an_nplusone(seeded):
    assert crud.contact_counts(seeded) == [2, 2, 2]


def test_counts_of_the_test_own_block(seeded, dbarch_queries, dbarch_assert_num_queries):
    with dbarch_assert_num_queries(2):  # an explicit block counts what it holds, test code too
        random_account(seeded, "u4")
    assert dbarch_queries.count == 2
'''


def test_statements_of_test_code_are_not_judged(external_pytester: pytest.Pytester) -> None:
    project(external_pytester)
    app = external_pytester.mkdir("app")
    app.joinpath("__init__.py").write_text("")
    app.joinpath("crud.py").write_text(CRUD)
    tests = external_pytester.mkdir("tests")
    tests.joinpath("__init__.py").write_text("")
    tests.joinpath("conftest.py").write_text(TESTS_CONFTEST)
    tests.joinpath("utils").mkdir()
    tests.joinpath("utils/__init__.py").write_text("")
    tests.joinpath("utils/user.py").write_text(USER_HELPERS)
    tests.joinpath("api").mkdir()
    tests.joinpath("api/__init__.py").write_text("")
    tests.joinpath("api/test_accounts.py").write_text(TESTS)
    result = external_pytester.runpytest("-p", "no:randomly", "--dbarch-nplusone=error", "-v")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines([
        "*test_accounts.py::test_a_helper_called_twice_on_one_line PASSED*",
        "*test_accounts.py::test_set_up_and_assertions_do_not_count PASSED*",
        "*test_accounts.py::test_application_statements_still_count FAILED*",
        "*test_accounts.py::test_the_application_loop_is_still_an_nplusone FAILED*",
        "*test_accounts.py::test_counts_of_the_test_own_block PASSED*",
    ])
    result.stdout.fnmatch_lines([
        "*@pytest.mark.max_queries(1): Expected to perform 1 query or less but 2 were done",
        "(2 statements from test code not counted: the test, fixtures, conftest.py, test helpers)",
    ])
    result.stdout.fnmatch_lines([
        "*N+1: Account.contacts lazy-loaded for 3 parents (3 queries)",
        "    query:  app/crud.py:12",
    ])
    out = result.stdout.str()
    assert "queries.nplusone-repeated-query" not in out  # the helper's two calls on one line
    assert "queries.repeated-identical-query" not in out


REPEATS = '''
import threading

import psycopg
from sqlalchemy import text

LOOKUP = "SELECT name FROM accounts WHERE id = %s"


def lookup(conn, account_id=1):
    return conn.execute(LOOKUP, (account_id,)).fetchone()


def settings_in_a_loop(conn):
    for _ in range(3):
        lookup(conn)  # the same row each time


def settings_through_map(conn):
    return list(map(lambda _: lookup(conn), range(3)))


def three_call_sites(conn):
    lookup(conn)
    lookup(conn)
    lookup(conn)


def once_per_connection(connections):
    for conn in connections:
        lookup(conn)


def once_per_transaction(conn):
    for _ in range(3):
        with conn.transaction():
            lookup(conn)


def once_per_thread(dsn):
    def job():
        with psycopg.connect(dsn) as conn:
            lookup(conn)
    threads = [threading.Thread(target=job) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
'''

REPEAT_TESTS = '''
import psycopg
import pytest

import repeats


@pytest.fixture
def dsn(dbarch_url):
    return dbarch_url.replace("postgresql+psycopg://", "postgresql://")


def test_in_a_loop(seeded, dbarch_psycopg):
    repeats.settings_in_a_loop(dbarch_psycopg)


def test_without_a_loop(seeded, dbarch_psycopg):
    repeats.settings_through_map(dbarch_psycopg)


def test_three_call_sites(seeded, dbarch_psycopg):
    repeats.three_call_sites(dbarch_psycopg)


def test_three_connections(seeded, dsn):
    connections = [psycopg.connect(dsn) for _ in range(3)]
    try:
        repeats.once_per_connection(connections)
    finally:
        for conn in connections:
            conn.close()


def test_three_transactions(seeded, dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        repeats.once_per_transaction(conn)


def test_three_threads(seeded, dsn):
    repeats.once_per_thread(dsn)


def test_the_test_repeats_it(seeded, dbarch_psycopg):
    for _ in range(3):
        dbarch_psycopg.execute(repeats.LOOKUP, (1,))
'''


def test_repeated_identical_query_is_one_call_site_in_one_transaction(external_pytester: pytest.Pytester) -> None:
    project(external_pytester)
    external_pytester.makepyfile(repeats=REPEATS, test_repeats=REPEAT_TESTS)
    result = external_pytester.runpytest("-p", "no:randomly", "-v")
    result.assert_outcomes(passed=7)
    summary = result.stdout.str().split("= dbarch =")[1]
    assert summary.count("WARN [queries.repeated-identical-query]") == 2, summary
    result.stdout.fnmatch_lines([
        "*WARN ?queries.repeated-identical-query? The same query with the same parameters ran 3 times from one "
        "call site in one transaction at repeats.py:10",
        "*fix: run it once before the loop at repeats.py:14 and reuse the result",
        "*test: test_repeats.py::test_in_a_loop",
    ])
    result.stdout.fnmatch_lines([
        "*WARN ?queries.repeated-identical-query? * ran 3 times from one call site in one transaction at repeats.py:10",
        "*fix: the same result is read 3 times in one transaction at repeats.py:10: reuse the first result (for a "
        "row by its primary key, session.get(Model, id) answers from the identity map without a query)",
        "*test: test_repeats.py::test_without_a_loop",
    ])
    assert "out of the loop" not in summary and "before the loop at repeats.py:10" not in summary
