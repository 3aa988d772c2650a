"""``dbarch_schema_lint = true``: collected items over the template, one per rule that
found something, one passed item for the rest, the JSONB item after the tests."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import database_names

SCHEMA = """
CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL, doc jsonb);
CREATE TABLE contacts (id bigint PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts, email text);
CREATE TABLE events (at timestamptz, what text);
"""

# The query lives in application code: statements of test code are not the application's
# queries, so they never count as evidence for the JSONB rule.
APP = """
def gold_accounts(conn):
    return conn.execute("SELECT id FROM accounts WHERE doc ->> 'plan' = 'gold'").fetchall()
"""

APP_TEST = """
from accounts import gold_accounts


def test_gold_accounts(dbarch_psycopg):
    gold_accounts(dbarch_psycopg)
"""


def _project(pytester: pytest.Pytester, *ini: str) -> None:
    pytester.makefile(".sql", schema=SCHEMA)
    pytester.makepyfile(accounts=APP, test_app=APP_TEST)
    pytester.makeini("\n".join(["[pytest]", "dbarch_sql_files = schema.sql", "dbarch_schema_lint = true", *ini]))


def test_items_per_rule_clean_item_and_jsonb_last(
    external_pytester: pytest.Pytester, admin: psycopg.Connection
) -> None:
    before = database_names(admin)
    _project(external_pytester)
    result = external_pytester.runpytest("-v", "-rs", "-p", "no:randomly", "--dbarch-report-dir", "off")
    result.assert_outcomes(passed=2, failed=1, skipped=3)
    result.stdout.fnmatch_lines([
        "test_app.py::test_gold_accounts PASSED*",
        "schema.sql::schema-lint[[]schema.primary-key[]] FAILED*",
        "schema.sql::schema-lint[[]schema.fk-index[]] SKIPPED*",
        "schema.sql::schema-lint[[]schema.all-columns-nullable[]] SKIPPED*",
        "schema.sql::schema-lint[[]clean[]] PASSED*",
        "schema.sql::schema-lint[[]schema.jsonb-unindexed-filter[]] SKIPPED*",
    ])
    result.stdout.fnmatch_lines([
        "*public.events has no primary key  [[]schema.primary-key[]] failed",
        "*fix: ALTER TABLE events ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;",
        "*SKIPPED*public.contacts(account_id) has no index for foreign key contacts_account_id_fkey to public.accounts",
        "*SKIPPED*public.accounts.doc is filtered by doc ->> 'plan' = in the application's queries, with no index for it",
    ])
    assert "Traceback" not in result.stdout.str()
    assert database_names(admin) == before  # the template and work databases are gone


def test_policy_in_ini_waivers_and_severities(external_pytester: pytest.Pytester) -> None:
    _project(
        external_pytester,
        "dbarch_schema_lint_ignore = schema.primary-key events append-only log, rows never updated",
        "dbarch_schema_lint_rules =",
        "    schema.fk-index = failed",
        "    schema.all-columns-nullable = off",
        "    schema.jsonb-unindexed-filter = off",
        "    schema.serial-column = warning",
    )
    result = external_pytester.runpytest("-v", "-p", "no:randomly", "--dbarch-report-dir", "off")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "schema.sql::schema-lint[[]schema.fk-index[]] FAILED*",
        "schema.sql::schema-lint[[]clean[]] PASSED*",
        "*ok [[]schema.primary-key[]] Every table has a primary key (1 waived)",
        "*ok [[]schema.serial-column[]] No serial columns",
    ])
    assert "schema.all-columns-nullable" not in result.stdout.str()


def test_bad_ini_value_stops_the_session_with_its_fix(external_pytester: pytest.Pytester) -> None:
    _project(external_pytester, "dbarch_schema_lint_rules = schema.pk = failed")
    result = external_pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*dbarch: dbarch_schema_lint_rules: no schema-lint rule matches 'schema.pk'*",
        "*fix: run 'dbarch lint --list-rules' for the rule ids*",
    ])


def test_broken_schema_is_one_failed_item(external_pytester: pytest.Pytester) -> None:
    external_pytester.makefile(".sql", schema="CREATE TABLE broken (id bigint PRIMARY KEY,);")
    external_pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\ndbarch_schema_lint = true\n")
    result = external_pytester.runpytest("--dbarch-report-dir", "off")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pytest-dbarch: schema lint could not run: SQL schema file *schema.sql:1 failed*"])


def test_no_items_when_other_tests_are_picked(external_pytester: pytest.Pytester) -> None:
    _project(external_pytester)
    result = external_pytester.runpytest("test_app.py", "--dbarch-report-dir", "off")
    result.assert_outcomes(passed=1)
