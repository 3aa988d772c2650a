"""Query budgets as a user meets them: markers, limit() blocks, verdicts and messages.

One inner session runs every budget kind on 20,000 filled rows; its JUnit properties
carry each test's findings (``dbarch:<rule>`` = ``status: title``), so the assertions
below read exactly what a CI system would.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import database_names

SCHEMA = """
CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL, region int NOT NULL DEFAULT 0);
CREATE INDEX ix_accounts_name ON accounts (name);
CREATE TABLE notes (id serial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts (id), body text NOT NULL);
CREATE INDEX ix_notes_account_id ON notes (account_id);
CREATE TABLE tiny (id serial PRIMARY KEY, code text NOT NULL);
CREATE INDEX ix_tiny_code ON tiny (code);
CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL);
CREATE SEQUENCE ticks;
"""

CONFTEST = '''
import pytest


@pytest.fixture(scope="module")
def volume(dbarch_volume):
    with dbarch_volume() as filled:
        filled.fill("accounts", 20000, name="'account ' || i", region="i % 10")
        filled.fill("notes", 20000, account_id=filled.pick("accounts"), body="'note ' || i")
        yield filled
'''

KINDS = '''
import pytest
from sqlalchemy import text

from pytest_dbarch.performance import BudgetExceeded

pytestmark = pytest.mark.usefixtures("volume")


@pytest.mark.query_budget(buffers=10, uses_index="ix_accounts_name", no_seq_scan=["accounts"])
def test_within_every_budget(dbarch_psycopg):
    dbarch_psycopg.execute("SELECT id FROM accounts WHERE name = %s", ("account 5",)).fetchall()


@pytest.mark.query_budget(buffers=10)
def test_buffers_over(dbarch_session):
    dbarch_session.execute(text("SELECT count(*) FROM notes WHERE body LIKE :p"), {"p": "note 1%"}).all()


@pytest.mark.query_budget(no_seq_scan=["accounts"])
def test_seq_scan_without_usable_index(dbarch_psycopg):
    dbarch_psycopg.execute("SELECT id FROM accounts WHERE region = %s", (3,)).fetchall()


@pytest.fixture
def tiny_rows(dbarch_psycopg):
    dbarch_psycopg.execute("INSERT INTO tiny (code) VALUES ('a'), ('b'), ('c'); ANALYZE tiny")


@pytest.mark.query_budget(no_seq_scan=True, uses_index="ix_tiny_code")
def test_tiny_table(tiny_rows, dbarch_psycopg):
    dbarch_psycopg.execute("SELECT id FROM tiny WHERE code = %s", ("b",)).fetchall()


@pytest.mark.query_budget(uses_index="ix_notes_account_id")
def test_index_skipped(dbarch_psycopg):
    dbarch_psycopg.execute("SELECT id FROM notes WHERE body = %s", ("note 7",)).fetchall()


@pytest.mark.query_budget(uses_index="ix_accounts_region")
def test_index_missing(dbarch_psycopg):
    dbarch_psycopg.execute("SELECT id FROM accounts WHERE region = 3 LIMIT 5").fetchall()


@pytest.mark.query_budget(p95_ms=0.0001)
def test_latency_even_the_fastest_over(dbarch_psycopg):
    dbarch_psycopg.execute("SELECT count(*) FROM notes").fetchone()


@pytest.mark.query_budget(p95_ms=5)
def test_latency_noisy(dbarch_psycopg):
    # Every fifth run sleeps 30 ms (a sequence is not rolled back): p95 over, fastest within.
    dbarch_psycopg.execute("SELECT pg_sleep(CASE WHEN nextval('ticks') % 5 = 0 THEN 0.03 ELSE 0 END)").fetchone()


@pytest.fixture
def heavy_setup(dbarch_psycopg):
    dbarch_psycopg.execute("SELECT count(*) FROM notes").fetchone()


@pytest.mark.query_budget(buffers=10)
def test_fixture_setup_is_not_budgeted(heavy_setup, dbarch_psycopg):
    dbarch_psycopg.execute("SELECT name FROM accounts WHERE id = %s", (1,)).fetchone()


@pytest.fixture
def stale(dbarch_psycopg):
    dbarch_psycopg.execute(
        "CREATE TABLE flags (id int, flag int); INSERT INTO flags SELECT i, 1 FROM generate_series(1, 20) i; "
        "ANALYZE flags; INSERT INTO flags SELECT i, 2 FROM generate_series(1, 5000) i"
    )


@pytest.mark.query_budget()
def test_stale_statistics(stale, dbarch_psycopg):
    dbarch_psycopg.execute("SELECT id FROM flags WHERE flag = 2").fetchall()


def test_limit_covers_the_block_and_a_write_is_rolled_back(dbarch_budget, dbarch_psycopg):
    dbarch_psycopg.execute("INSERT INTO counters VALUES (2, 0)")
    dbarch_psycopg.execute("SELECT count(*) FROM notes").fetchone()  # before the block: not covered
    with dbarch_budget.limit(buffers=20):
        dbarch_psycopg.execute("UPDATE counters SET n = n + 1 WHERE id = %s", (2,))
    assert dbarch_psycopg.execute("SELECT n FROM counters WHERE id = 2").fetchone() == (1,)


def test_limit_failure_caught_by_the_test(dbarch_budget, dbarch_psycopg):
    with pytest.raises(BudgetExceeded):
        with dbarch_budget.limit(buffers=1):
            dbarch_psycopg.execute("SELECT count(*) FROM notes").fetchone()


def test_limit_failure_ends_the_test(dbarch_budget, dbarch_psycopg):
    with dbarch_budget.limit(buffers=1):
        dbarch_psycopg.execute("SELECT count(*) FROM notes").fetchone()


CLONE_CONNECTIONS = []


@pytest.mark.dbarch(isolation="clone")
@pytest.mark.query_budget(buffers=10, uses_index="ix_accounts_name")
def test_clone_isolation(dbarch_budget, dbarch_psycopg):
    dbarch_budget.fill("accounts", 5000, name="'account ' || i")
    dbarch_psycopg.execute("SELECT id FROM accounts WHERE name = %s", ("account 5",)).fetchall()
    CLONE_CONNECTIONS.append(dbarch_budget._connection())  # the budget's own connection to the clone


def test_the_clone_connection_was_closed():
    assert CLONE_CONNECTIONS and CLONE_CONNECTIONS[0].closed


@pytest.mark.query_budget(buffers="many")
def test_bad_marker():
    pass


@pytest.mark.query_budget(buffers=10)
def test_nothing_to_measure():
    pass


def test_fill_names_the_missing_column(dbarch_budget):
    dbarch_budget.fill("notes", 10, body="'x'")
'''

AFTER = '''
def test_the_volume_is_gone_and_left_no_connection(dbarch_psycopg):
    assert dbarch_psycopg.execute("SELECT count(*) FROM accounts").fetchone() == (0,)
    assert dbarch_psycopg.execute("SELECT count(*) FROM notes").fetchone() == (0,)
    others = dbarch_psycopg.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchone()
    assert others == (0,)
'''


def _project(pytester: pytest.Pytester) -> None:
    pytester.makefile(".sql", schema=SCHEMA)
    pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\n")
    pytester.makeconftest(CONFTEST)


def findings_by_test(junit: Path) -> dict[str, dict[str, list[str]]]:
    """``{test name: {rule: ["status: title ...", ...]}}`` from the JUnit properties."""
    found: dict[str, dict[str, list[str]]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        rules = found.setdefault(str(case.get("name")), {})
        for prop in case.iter("property"):
            name = str(prop.get("name"))
            if name.startswith("dbarch:performance."):
                rules.setdefault(name.removeprefix("dbarch:"), []).append(str(prop.get("value")))
    return found


def test_every_budget_kind_and_its_message(external_pytester: pytest.Pytester, admin: Any) -> None:
    _project(external_pytester)
    external_pytester.makepyfile(test_kinds=KINDS, test_z_after=AFTER)
    before = database_names(admin)
    result = external_pytester.runpytest("-p", "no:randomly", "--junitxml=junit.xml", "--dbarch-report-dir=off")
    assert database_names(admin) == before  # the clone, the work database, the template: all dropped
    out = result.stdout.str()
    result.assert_outcomes(passed=11, failed=7, errors=1)
    found = findings_by_test(external_pytester.path / "junit.xml")

    def statuses(test: str, rule: str) -> list[str]:
        return [value.split(":")[0] for value in found[test].get(f"performance.{rule}", [])]

    assert statuses("test_within_every_budget", "buffer-budget") == ["passed"]
    assert statuses("test_within_every_budget", "index-not-used") == ["passed"]
    assert statuses("test_within_every_budget", "seq-scan") == ["passed"]

    # buffers: the failure carries fingerprint, call site, parameters, figures and plan, without -v
    assert statuses("test_buffers_over", "buffer-budget") == ["failed"]
    result.stdout.fnmatch_lines([
        "*@pytest.mark.query_budget(buffers=10) exceeded",
        "[[]performance.buffer-budget[]] SELECT COUNT(*) FROM notes WHERE body LIKE $1 touched * blocks, over the budget of 10",
        "    statement *: SELECT COUNT(*) FROM notes WHERE body LIKE $1",
        "    at test_kinds.py:16",
        "    params: p='note 1%'",
        "    budget: buffers <= 10; measured: * blocks (shared hit *, shared read *, temp 0)",
        "    plan:",
        "      Aggregate  (cost=* rows=1 *) (actual time=* rows=1 loops=1)",
        "*Seq Scan on notes*",
        "    fix: Make it read fewer blocks*",
    ])

    # the enable_seqscan probe tells "no usable index" from "too small for the planner"
    assert statuses("test_seq_scan_without_usable_index", "seq-scan") == ["failed"]
    assert "with enable_seqscan = off the planner still reads accounts whole: no index fits this query" in out
    assert "Add an index on accounts that matches the filter (region = '3'::smallint)" in out
    [tiny_scan] = found["test_tiny_table"]["performance.seq-scan"]
    assert tiny_scan.startswith("warning: Seq scan on tiny: table too small for the planner to use ix_tiny_code (3 rows read")
    [tiny_index] = found["test_tiny_table"]["performance.index-not-used"]
    assert tiny_index.startswith("warning: Index ix_tiny_code not used: table too small for the planner to use it (3 rows)")

    # indexes: skipped, or missing altogether
    assert found["test_index_skipped"]["performance.index-not-used"][0].startswith(
        "failed: Index ix_notes_account_id not used on notes: the planner chose a seq scan of notes")
    assert found["test_index_missing"]["performance.index-not-used"][0].startswith(
        "failed: Index ix_accounts_region not used: it does not exist in the test database")

    # latency: the fastest sample over fails whatever the noise; a wide spread only warns
    [fastest] = found["test_latency_even_the_fastest_over"]["performance.latency-budget"]
    assert fastest.startswith("failed: SELECT COUNT(*) FROM notes: even the fastest of 30 samples took")
    [noisy] = found["test_latency_noisy"]["performance.latency-noisy"]
    assert "over the budget of 5 ms, but the samples spread too widely to judge" in noisy
    assert noisy.startswith("warning:")

    assert statuses("test_fixture_setup_is_not_budgeted", "buffer-budget") == ["passed"]
    assert found["test_stale_statistics"]["performance.row-estimate"][0].startswith(
        "warning: Row estimate")

    # limit(): only the block, writes rolled back; an expected failure leaves no failed check
    assert statuses("test_limit_covers_the_block_and_a_write_is_rolled_back", "buffer-budget") == ["passed"]
    assert found["test_limit_failure_caught_by_the_test"] == {}
    assert statuses("test_limit_failure_ends_the_test", "buffer-budget") == ["failed"]
    result.stdout.fnmatch_lines(["E   *BudgetExceeded: pytest-dbarch: dbarch_budget.limit() over budget: query_budget(buffers=1)"])

    assert statuses("test_clone_isolation", "index-not-used") == ["passed"]
    assert statuses("test_nothing_to_measure", "unmeasured") == ["warning"]
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_bad_marker*",
        "pytest-dbarch: test_kinds.py::test_bad_marker: bad @pytest.mark.query_budget: buffers='many'; "
        "give a whole number of blocks >= 0, e.g. buffers=50",
    ])
    result.stdout.fnmatch_lines([
        "*test_fill_names_the_missing_column*",
        "pytest-dbarch: filling notes with 10 rows failed: null value in column \"account_id\"*",
        "  fix: give account_id an expression of i: fill('notes', 10, account_id=\"...\")",
    ])
