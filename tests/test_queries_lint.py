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


def _reads(*texts: str, stack_of: dict[str, int] | None = None) -> list:
    """Captured application SELECTs, each from its own call site unless ``stack_of``
    puts several on one (a loop)."""
    from pytest_dbarch.origin import APP
    from pytest_dbarch.queries.statement import Statement

    code = compile("def repository(): pass", "/srv/shop/repository.py", "exec")
    sites = stack_of or {}
    return [
        Statement(text, None, APP, 0.0, 1, 0, ((code, 10 + sites.get(text, n)),))
        for n, text in enumerate(texts)
    ]


def test_the_prefilter_keeps_every_statement_a_rule_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """The text-only prefilter (which spares simple statements a sqlglot parse) never
    drops a statement that a rule flags: the findings are those of linting every read."""
    from pytest_dbarch.queries import lint

    flagged = {
        "SELECT * FROM accounts WHERE id = 1": lint.SELECT_STAR,
        "SELECT a.* FROM accounts AS a JOIN contacts AS c ON c.account_id = a.id WHERE c.id = 2": lint.SELECT_STAR,
        'SELECT id, kind FROM "Events"': lint.UNBOUNDED_READ,
        "SELECT id FROM public.events ORDER BY id": lint.UNBOUNDED_READ,
        'SELECT id FROM "audit""log"': lint.UNBOUNDED_READ,
        "SELECT id, email FROM contacts": lint.TABLE_READ_IN_LOOP,
    }
    simple = [
        "SELECT id, name FROM accounts WHERE id = %s",
        "SELECT count(*) FROM events",  # a star, but one row: a candidate all the same, never flagged
        "SELECT c.id FROM contacts c WHERE c.account_id = $1 LIMIT 10",
    ]
    texts = [*flagged, "SELECT id, email FROM contacts", *simple]
    loop_site = {"SELECT id, email FROM contacts": 99}
    reads = _reads(*texts, stack_of=loop_site)
    rules = lint.LintRules.from_settings(("events", 'audit"log'), ())

    kept = lint.candidates(reads, rules)
    assert {s.sql for s in kept} >= set(flagged)
    assert "SELECT id, name FROM accounts WHERE id = %s" not in {s.sql for s in kept}
    assert "SELECT c.id FROM contacts c WHERE c.account_id = $1 LIMIT 10" not in {s.sql for s in kept}

    with_prefilter = lint.lint(reads, rules)
    monkeypatch.setattr(lint, "candidates", lambda reads, rules: reads)
    without = lint.lint(reads, rules)
    assert [(f.rule, f.title) for f in with_prefilter] == [(f.rule, f.title) for f in without]
    assert {f.rule for f in with_prefilter} == set(flagged.values())
    assert sum(f.rule == lint.UNBOUNDED_READ for f in with_prefilter) == 3


def test_the_prefilter_follows_the_rules_switched_on() -> None:
    from pytest_dbarch.queries import lint

    reads = _reads("SELECT * FROM accounts WHERE id = 1", "SELECT id FROM events")
    only_star = lint.LintRules.from_settings((), ("unbounded-read", "table-read-in-loop"))
    assert [s.sql for s in lint.candidates(reads, only_star)] == ["SELECT * FROM accounts WHERE id = 1"]
    no_star = lint.LintRules.from_settings(("events",), ("select-star",))
    assert [s.sql for s in lint.candidates(reads, no_star)] == ["SELECT id FROM events"]
    assert lint.candidates(reads, lint.LintRules.from_settings((), ("select-star",))) == []
