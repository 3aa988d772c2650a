"""The baseline gate: figures saved (by the xdist controller too), compared, regressions failed."""

from __future__ import annotations

import json

import pytest

from tests.test_performance_budgets import findings_by_test

SCHEMA = """
CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL);
CREATE INDEX ix_accounts_name ON accounts (name);
"""

CONFTEST = '''
import os

import pytest


@pytest.fixture(scope="module")
def volume(dbarch_volume):
    with dbarch_volume() as filled:
        filled.fill("accounts", 5000, name="'account ' || i")
        yield filled


@pytest.fixture
def regression(dbarch_psycopg):
    """The change under review: it drops the index the lookup by name relied on."""
    if os.environ.get("DROP_NAME_INDEX"):
        dbarch_psycopg.execute("DROP INDEX ix_accounts_name")
'''

TESTS = '''
import pytest

pytestmark = pytest.mark.usefixtures("volume", "regression")


@pytest.mark.query_budget()
def test_by_name(dbarch_psycopg):
    dbarch_psycopg.execute("SELECT id FROM accounts WHERE name = %s", ("account 5",)).fetchall()


@pytest.mark.query_budget()
def test_by_id(dbarch_psycopg):
    dbarch_psycopg.execute("SELECT name FROM accounts WHERE id = %s", (5,)).fetchall()


@pytest.mark.query_budget(p95_ms=0.001)
def test_scaled_latency(dbarch_psycopg):
    dbarch_psycopg.execute("SELECT name FROM accounts WHERE id = %s", (6,)).fetchall()


def test_not_budgeted(dbarch_psycopg):
    dbarch_psycopg.execute("SELECT count(*) FROM accounts").fetchall()
'''

INI = "[pytest]\ndbarch_sql_files = schema.sql\n"


def test_save_under_xdist_then_compare_and_fail_a_regression(
    external_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    tester = external_pytester
    tester.makefile(".sql", schema=SCHEMA)
    tester.makeini(INI)
    tester.makeconftest(CONFTEST)
    tester.makepyfile(test_lookups=TESTS)

    # 1. save, with two xdist workers; the controller writes the file from both
    saved = tester.runpytest("-n", "2", "--dbarch-budget-save=baseline.json", "--dbarch-report-dir=off",
                             "--dbarch-budget-latency-scale=100000")
    saved.assert_outcomes(passed=4)
    saved.stdout.fnmatch_lines(["dbarch budgets: saved 3 statements of 3 tests to */baseline.json"])
    baseline = json.loads((tester.path / "baseline.json").read_text())
    assert baseline["format"] == "pytest-dbarch query budgets" and baseline["version"] == 1
    tests = baseline["tests"]
    assert sorted(tests) == ["test_lookups.py::test_by_id", "test_lookups.py::test_by_name",
                             "test_lookups.py::test_scaled_latency"]
    [by_name] = tests["test_lookups.py::test_by_name"].values()
    assert by_name["fingerprint"] == "SELECT id FROM accounts WHERE name = $1"
    assert by_name["indexes"] == ["ix_accounts_name"] and by_name["seq_scans"] == []
    assert 2 <= by_name["buffers"] <= 6 and by_name["p95_ms"] is None
    [scaled] = tests["test_lookups.py::test_scaled_latency"].values()
    assert scaled["p95_ms"] > 0.001 and scaled["cv"] is not None  # passed only thanks to the scale

    # 2. compare (from the ini, relative to the rootdir) after a change that drops the index
    tester.makeini(INI + "dbarch_budget_compare = baseline.json\n")
    monkeypatch.setenv("DROP_NAME_INDEX", "1")
    compared = tester.runpytest("--junitxml=junit.xml", "--dbarch-report-dir=off",
                                "--dbarch-budget-latency-scale=100000")
    compared.assert_outcomes(passed=3, failed=1)
    compared.stdout.fnmatch_lines([
        "dbarch budgets: comparing with */baseline.json (3 statements, tolerance 10%)",
        "*@pytest.mark.query_budget() exceeded",
        "[[]performance.baseline[]] SELECT id FROM accounts WHERE name = $1: * blocks, baseline * (+*%, tolerance 10%)",
        "    statement *: SELECT id FROM accounts WHERE name = $1",
        "    plan changed: seq scans [[][]] -> [[]'accounts'[]], indexes [[]'ix_accounts_name'[]] -> [[][]]",
        "    fix: Find what made it read more*",
    ])
    found = findings_by_test(tester.path / "junit.xml")
    assert found["test_by_id"]["performance.baseline"][0].startswith("passed: Within 10% of the baseline (1 statement)")

    # 3. the same change within a generous tolerance (from the command line) passes
    tolerant = tester.runpytest("--dbarch-budget-compare=baseline.json", "--dbarch-budget-tolerance=100000%",
                                "--dbarch-report-dir=off", "--dbarch-budget-latency-scale=100000")
    tolerant.assert_outcomes(passed=4)


def test_bad_gate_settings_are_one_clear_usage_error(pytester: pytest.Pytester) -> None:
    # In process: these end in pytest_configure, before any database is asked for.
    run = pytester.runpytest_inprocess
    quiet = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
    pytester.makeini(quiet)
    pytester.makepyfile("def test_nothing():\n    pass\n")
    missing = run("--dbarch-budget-compare=nowhere.json")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines([
        "*dbarch: the query-budget baseline */nowhere.json (from --dbarch-budget-compare) does not exist",
        "*fix: save one first: pytest --dbarch-budget-save=*nowhere.json",
    ])
    (pytester.path / "other.json").write_text('{"benchmarks": []}')
    foreign = run("--dbarch-budget-compare=other.json")
    foreign.stderr.fnmatch_lines(["*other.json (from --dbarch-budget-compare) is not a baseline file written by --dbarch-budget-save"])
    tolerance = run("--dbarch-budget-tolerance=lots")
    tolerance.stderr.fnmatch_lines(["*dbarch_budget_tolerance from --dbarch-budget-tolerance is 'lots'; give a number >= 0 (e.g. 10%)"])
    pytester.makeini(quiet + "dbarch_budget_latency_scale = 0\n")
    scale = run()
    assert scale.ret == pytest.ExitCode.USAGE_ERROR
    scale.stderr.fnmatch_lines(["*dbarch_budget_latency_scale from ini dbarch_budget_latency_scale is '0'; give a number > 0*"])


def test_help_lists_the_budget_options(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest_inprocess("--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([
        "*--dbarch-budget-save=DBARCH_BUDGET_SAVE",
        "*--dbarch-budget-compare=DBARCH_BUDGET_COMPARE",
        "*--dbarch-budget-tolerance=DBARCH_BUDGET_TOLERANCE",
        "*--dbarch-budget-latency-scale=DBARCH_BUDGET_LATENCY_SCALE",
    ])
    result.stdout.fnmatch_lines(["*dbarch_budget_tolerance (string):*"])
    markers = pytester.runpytest_inprocess("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.query_budget(buffers=None, p95_ms=None, no_seq_scan=(), uses_index=None): *"])
