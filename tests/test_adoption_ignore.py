"""Issue 15, point 7: ``dbarch_nplusone_ignore = file:...`` matches the query's own
line, not any file on the stack, and an ignored finding is reported as ignored, never
as a passed "No N+1 queries" check."""

from __future__ import annotations

import pytest

from tests.queries_support import project

LOOP = '''
from sqlalchemy import select

from models import Account


def contact_counts(session):
    return [len(account.contacts) for account in session.scalars(select(Account)).all()]
'''

TESTS = '''
import legacy
import webapp


def test_application_code_called_from_a_test_file(seeded):
    webapp.contact_counts(seeded)


def test_ignored_legacy_code(seeded):
    legacy.contact_counts(seeded)
'''


def test_file_ignore_matches_the_query_line_and_reports_ignored(external_pytester: pytest.Pytester) -> None:
    project(external_pytester, "dbarch_nplusone_ignore =\n    file:test_*.py\n    file:legacy.py\n")
    external_pytester.makepyfile(test_calls=TESTS, webapp=LOOP, legacy=LOOP)
    result = external_pytester.runpytest("-p", "no:randomly", "--dbarch-nplusone=error", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_calls.py::test_application_code_called_from_a_test_file FAILED*",
            "*test_calls.py::test_ignored_legacy_code PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ignored ?queries.nplusone-lazy-load? N+1: Account.contacts lazy-loaded for 3 parents (3 queries) "
            "(ignored: dbarch_nplusone_ignore file:legacy.py) at legacy.py:7",
            "*test: test_calls.py::test_ignored_legacy_code",
        ]
    )
    passed_checks = [line for line in result.stdout.lines if "No N+1 queries" in line]
    assert passed_checks == [], "a test with an ignored N+1 must not count as a passed N+1 check"
    result.stdout.fnmatch_lines(["*findings: *1 ignored*"])
    # Without -v the summary still names each problem's test (issue 15, point 9).
    quiet = external_pytester.runpytest("-p", "no:randomly", "--dbarch-nplusone=error")
    quiet.stdout.fnmatch_lines(
        [
            "  FAIL ?queries.nplusone-lazy-load? N+1: Account.contacts lazy-loaded for 3 parents (3 queries) at webapp.py:7",
            "      fix: *",
            "      test: test_calls.py::test_application_code_called_from_a_test_file",
        ],
        consecutive=True,
    )
