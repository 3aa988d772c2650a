"""Query lint: SELECT *, unbounded reads of large tables, whole-table reads in a loop."""

from __future__ import annotations

import pytest

from tests.queries_support import application_tests, project

LINT = '''
def test_lint(seeded, dbarch_psycopg):
    dbarch_psycopg.execute("SELECT * FROM accounts WHERE id = 1").fetchall()
    dbarch_psycopg.execute("SELECT id, kind FROM events").fetchall()
    dbarch_psycopg.execute("SELECT count(*) FROM events").fetchall()
    for _ in range(2):
        dbarch_psycopg.execute("SELECT id, email FROM contacts").fetchall()
'''


def test_lint_rules_and_switching_them_off(external_pytester: pytest.Pytester) -> None:
    project(external_pytester, "dbarch_large_tables = events\n")
    application_tests(external_pytester, "lint", LINT)
    result = external_pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*WARN ?queries.lint-select-star? SELECT * reads every column of accounts at lint.py:2",
            "      fix: name the columns the code needs*",
        ]
    )
    result.stdout.fnmatch_lines(["*WARN ?queries.lint-unbounded-read? Unbounded read of large table events at lint.py:3"])
    result.stdout.fnmatch_lines(
        [
            "*WARN ?queries.lint-table-read-in-loop? Whole-table read of contacts inside a loop (2 times) at lint.py:6",
            "      fix: read the table once before the loop and reuse the rows",
            "*",
            "      | query:  lint.py:6",
            "      | loop:   lint.py:5  for _ in range(2):",
        ]
    )
    assert "count(*)" not in result.stdout.str().split("= dbarch =")[1]  # one row: bounded

    project(external_pytester, "dbarch_large_tables = events\ndbarch_query_lint_off =\n    select-star\n    table-read-in-loop\n")
    result = external_pytester.runpytest()
    out = result.stdout.str()
    assert "lint-unbounded-read" in out and "lint-select-star" not in out and "table-read-in-loop" not in out

    project(external_pytester, "dbarch_query_lint_off = select-stars\n")
    result = external_pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dbarch_query_lint_off names unknown rule(s) 'select-stars'; choose from select-star, unbounded-read, table-read-in-loop or all"])
