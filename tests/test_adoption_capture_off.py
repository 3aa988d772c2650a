"""Issue 15, point 8: ``--dbarch-capture=off`` (ini ``dbarch_capture``, env
``DBARCH_CAPTURE``) switches the per-test query capture off and keeps every fixture."""

from __future__ import annotations

import pytest

from tests.queries_support import application_tests, project

TESTS = '''
import pytest
from sqlalchemy import select

from models import Account


def load_contacts(session):
    for account in session.scalars(select(Account)).all():
        len(account.contacts)


def test_nplusone_is_not_looked_for(seeded, dbarch_queries):
    load_contacts(seeded)
    assert dbarch_queries.count == 0


def test_fixtures_and_blocks_still_work(seeded, dbarch_psycopg, dbarch_assert_num_queries):
    with dbarch_assert_num_queries(1):
        assert dbarch_psycopg.execute("SELECT count(*) FROM accounts").fetchone() == (3,)


@pytest.mark.max_queries(1)
def test_a_budget_the_test_asks_for_still_counts(seeded):
    load_contacts(seeded)
'''


def test_capture_off_keeps_the_fixtures(external_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    project(external_pytester, "dbarch_nplusone = error\n")
    application_tests(external_pytester, "off", TESTS)
    monkeypatch.setenv("DBARCH_CAPTURE", "off")
    result = external_pytester.runpytest("-p", "no:randomly", "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_off.py::test_nplusone_is_not_looked_for PASSED*",
            "*test_off.py::test_fixtures_and_blocks_still_work PASSED*",
            "*test_off.py::test_a_budget_the_test_asks_for_still_counts FAILED*",
            "*@pytest.mark.max_queries(1): Expected to perform 1 query or less but 4 were done*",
        ]
    )
    out = result.stdout.str()
    assert "queries.nplusone" not in out.replace("queries.max-queries", "")
    assert "queries.lint" not in out

    # The flag wins over the env; a bad value is a usage error naming its source.
    on = external_pytester.runpytest("-p", "no:randomly", "--dbarch-capture=on", "-k", "not_looked_for")
    on.assert_outcomes(failed=1)
    on.stdout.fnmatch_lines(["*N+1: Account.contacts lazy-loaded for 3 parents*"])
    monkeypatch.setenv("DBARCH_CAPTURE", "sometimes")
    bad = external_pytester.runpytest("-p", "no:randomly")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*dbarch_capture*sometimes*"])
