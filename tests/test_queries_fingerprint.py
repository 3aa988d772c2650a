"""Fingerprints: one shape per query whatever its values, parameter style or IN-list size."""

from __future__ import annotations

import pytest

from pytest_dbarch.queries.fingerprint import SQLGLOT_MAX_CHARS, kind_of, shape_of


def _in_list(n: int) -> str:
    items = ", ".join(f"%(id_1_{i})s::INTEGER" for i in range(n))
    return f"SELECT contacts.id FROM contacts WHERE contacts.account_id IN ({items})"


def test_in_lists_of_any_size_share_one_fingerprint_like_pg_stat_statements() -> None:
    three, three_hundred = shape_of(_in_list(3)), shape_of(_in_list(300))
    assert three.fingerprint == three_hundred.fingerprint
    assert three.fingerprint == "SELECT contacts.id FROM contacts WHERE contacts.account_id IN ($1 /*, ... */)"
    assert three.in_list and three.parsed


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT name FROM accounts WHERE id = %s AND name = %s",
        "SELECT name FROM accounts WHERE id = %(id)s AND name = %(name)s",
        "SELECT name FROM accounts WHERE id = $1 AND name = $2",
        "SELECT name FROM accounts WHERE id = :id AND name = :name",
        "SELECT name FROM accounts WHERE id = ? AND name = ?",
        "SELECT name FROM accounts WHERE id = 42 AND name = 'acme'",
        "select name  from accounts -- a comment\n where id = %(id)s::INTEGER and name = 'it''s'",
    ],
)
def test_every_parameter_style_and_literal_becomes_dollar_n(sql: str) -> None:
    assert shape_of(sql).fingerprint == "SELECT name FROM accounts WHERE id = $1 AND name = $2"


def test_values_rows_collapse_and_huge_statements_skip_sqlglot() -> None:
    rows = ", ".join(f"(%(name_m{i})s, %(kind_m{i})s)" for i in range(3000))
    sql = f"INSERT INTO events (name, kind) VALUES {rows} RETURNING events.id"
    assert len(sql) > 10 * SQLGLOT_MAX_CHARS
    shape = shape_of(sql)
    assert shape.fingerprint == "INSERT INTO events (name, kind) VALUES ($1, $2) RETURNING events.id"
    assert shape.kind == "insert" and shape.tables == ("events",)
    padded = "SELECT id FROM events WHERE kind = '" + "x" * (SQLGLOT_MAX_CHARS + 10) + "' AND id > 5"
    huge = shape_of(padded)
    assert not huge.parsed and huge.fingerprint == "SELECT id FROM events WHERE kind = $1 AND id > $2"


def test_unparseable_sql_falls_back_to_the_regex_text() -> None:
    shape = shape_of("FROBNICATE accounts WITH 42 ((")
    assert shape.fingerprint == "FROBNICATE accounts WITH $1 (("
    assert shape.kind == "other" and not shape.parsed


def test_shape_facts() -> None:
    page = shape_of("SELECT * FROM accounts ORDER BY id LIMIT 10 OFFSET 20")
    assert page.has_limit and page.select_star and not page.has_where and not page.single_row
    for lookup in ("SELECT id FROM users WHERE username = %s LIMIT 1",
                   "SELECT id FROM users WHERE username = :username\nLIMIT 1;",
                   "SELECT id FROM users WHERE email = $1 FETCH FIRST 1 ROW ONLY"):
        assert shape_of(lookup).single_row, lookup  # a lookup by key, not a page
    for page_sql in ("SELECT id FROM t LIMIT 1 OFFSET 5", "SELECT id FROM t WHERE a = %s LIMIT %s",
                     "SELECT id FROM t ORDER BY id LIMIT 10", "SELECT * FROM (SELECT id FROM t LIMIT 1) AS s"):
        assert not shape_of(page_sql).single_row, page_sql
    assert shape_of("SELECT count(*) FROM accounts").single_row_aggregate
    assert not shape_of("SELECT accounts.*, 1 FROM accounts JOIN public.contacts c ON true").single_row_aggregate
    assert shape_of("SELECT a.* FROM accounts a").select_star
    assert not shape_of("SELECT count(*) FROM accounts").select_star
    assert shape_of("SELECT id FROM accounts WHERE id = ANY(%s)").in_list
    assert shape_of("SELECT a.id FROM accounts a JOIN public.contacts c ON c.account_id = a.id").tables == (
        "accounts", "public.contacts"
    )


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT 1", "select"),
        ("  /* hi */ (SELECT 1)", "select"),
        ("WITH x AS (SELECT 1) DELETE FROM accounts", "delete"),
        ("insert into accounts values (1)", "insert"),
        ("UPDATE accounts SET name = 'x'", "update"),
        ("RELEASE SAVEPOINT dbarch_test; SAVEPOINT dbarch_test", "tx"),
        ("BEGIN", "tx"),
        ("SELECT pg_catalog.version()", "catalog"),
        ("SELECT relname FROM pg_class WHERE relname = %s", "catalog"),
        ("show standard_conforming_strings", "catalog"),
        ("CREATE TABLE t (id int)", "other"),
    ],
)
def test_kinds(sql: str, kind: str) -> None:
    assert kind_of(sql) == kind


@pytest.mark.parametrize(
    "cast",
    [
        "TIMESTAMP WITH TIME ZONE",
        "timestamp(3) without time zone",
        "TIME WITH TIME ZONE",
        "DOUBLE PRECISION",
        "character varying(20)[]",
        "public.mood",
        '"Mood"',
        "NUMERIC(10, 2)",
        "INTEGER[]",
    ],
)
def test_casts_on_parameters_go_whole_even_multi_word_types(cast: str) -> None:
    """A cast half stripped once left ``$1 WITH TIME ZONE`` in fingerprints."""
    shape = shape_of(f"SELECT id FROM events WHERE created_at > %(created_at_1)s::{cast} AND id = $2::INTEGER")
    assert shape.fingerprint == "SELECT id FROM events WHERE created_at > $1 AND id = $2"


def test_casts_of_expressions_are_kept() -> None:
    assert shape_of("SELECT CAST(%s AS TIMESTAMP WITH TIME ZONE)").fingerprint == "SELECT CAST($1 AS TIMESTAMPTZ)"
