"""Reading CHECKs: atoms and DNF, the Python evaluator against PostgreSQL's own answers,
and PostgreSQL regexes against Python's (the server is the judge in every comparison)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from pytest_dbarch.constraints import evaluate as ev
from pytest_dbarch.constraints import regex
from pytest_dbarch.constraints.checks_parse import Compare, Members, Null, Other, Relation, Rule

CATEGORIES = {"rating": "N", "stage": "S", "closed_at": "D", "status": "S", "contact": "U", "at": "D",
              "a": "N", "b": "N", "code": "S", "active": "B", "start_day": "D", "end_day": "D"}


def rule(sql: str) -> Rule:
    return Rule.of("r", sql, CATEGORIES, CATEGORIES)


def test_between_is_two_comparisons_and_its_violations_two_ways() -> None:
    r = rule("((rating >= 1) AND (rating <= 5))")
    assert r.dnf == [(Compare("rating", ">=", 1), Compare("rating", "<=", 5))]
    assert r.violations == [(Compare("rating", "<", 1),), (Compare("rating", ">", 5),)]
    assert r.understood


def test_boolean_equality_spreads_into_both_branches() -> None:
    r = rule("(((stage)::text = ANY ((ARRAY['won'::character varying, 'lost'::character varying])::text[])) "
             "= (closed_at IS NOT NULL))")
    assert r.dnf == [
        (Members("stage", ("won", "lost")), Null("closed_at", negated=True)),
        (Members("stage", ("won", "lost"), negated=True), Null("closed_at")),
    ]


def test_null_counts_and_cross_column_comparisons() -> None:
    assert rule("(num_nonnulls(a, b) = 1)").dnf == [
        (Null("a"), Null("b", negated=True)),
        (Null("a", negated=True), Null("b")),
    ]
    # warehouse's macaroons: a cast is NULL exactly when its column is
    assert rule("((((contact)::text IS NULL) <> ((a)::text IS NULL)))").dnf == [
        (Null("contact"), Null("a", negated=True)),
        (Null("contact", negated=True), Null("a")),
    ]
    assert rule("(end_day >= start_day)").dnf == [(Relation("end_day", ">=", "start_day"),)]
    assert rule("(NOT active)").dnf == [(Compare("active", "=", False),)]


def test_what_cannot_be_aimed_at_stays_an_other_atom() -> None:
    r = rule("(jsonb_typeof(doc) = 'object'::text)")
    assert isinstance(r.dnf[0][0], Other)  # type: ignore[index]
    assert not r.understood
    assert r.holds({"doc": {}}) is ev.OPAQUE
    unparsable = Rule.of("r", "(((( broken", CATEGORIES, ["a"])
    assert unparsable.tree is None and unparsable.dnf is None and unparsable.holds({}) is ev.OPAQUE


# The evaluator must agree with PostgreSQL wherever it gives an answer.
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("(rating BETWEEN 1 AND 5)", "rating smallint", {"rating": 0}),
    ("(rating BETWEEN 1 AND 5)", "rating smallint", {"rating": None}),
    ("((status)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[]))",
     "status varchar(5)", {"status": "b"}),
    ("(status <> ALL (ARRAY['a'::text, NULL::text]))", "status text", {"status": "c"}),
    ("(code ~ '^[A-Z]{3}$'::text)", "code text", {"code": "ABC\n"}),
    ("(code ~ '^[A-Z]{3}$'::text)", "code text", {"code": "ABC"}),
    ("(code ~~ 'a\\%%'::text)", "code text", {"code": "a%x"}),
    ("(code ~~* 'ab%'::text)", "code text", {"code": "ABc"}),
    ("(length(code) <= 3)", "code text", {"code": "abcd"}),
    ("(btrim(code) <> ''::text)", "code text", {"code": "  "}),
    ("(num_nonnulls(a, b) = 1)", "a int, b int", {"a": None, "b": None}),
    ("((a / b) = 2)", "a int, b int", {"a": -5, "b": 2}),
    ("((a % b) = 1)", "a int, b int", {"a": -5, "b": 3}),
    ("((a)::numeric > 1.5)", "a int", {"a": 2}),
    ("(CASE WHEN (a > 0) THEN (b IS NOT NULL) ELSE true END)", "a int, b int", {"a": 1, "b": None}),
    ("(end_day > start_day)", "start_day date, end_day date", {"start_day": dt.date(2024, 1, 2),
                                                                 "end_day": dt.date(2024, 1, 2)}),
    ("(amount >= (0)::numeric)", "amount numeric(12,2)", {"amount": Decimal("-0.01")}),
    ("(greatest(a, b) > 3)", "a int, b int", {"a": None, "b": 4}),
    ("(coalesce(a, 0) > 1)", "a int", {"a": None}),
    ("(active IS NOT TRUE)", "active boolean", {"active": None}),
]


@pytest.mark.parametrize(("expression", "columns", "row"), CASES)
def test_evaluator_agrees_with_postgresql(dbarch_psycopg: psycopg.Connection, expression: str, columns: str,
                                          row: dict[str, Any]) -> None:
    dbarch_psycopg.execute(f"CREATE TEMP TABLE t ({columns})")
    names = list(row)
    dbarch_psycopg.execute(f"INSERT INTO t ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",
                           list(row.values()))
    server = dbarch_psycopg.execute(f"SELECT ({expression}) IS NOT FALSE FROM t").fetchone()[0]  # type: ignore[index]
    verdict = rule(expression).holds(row)
    assert verdict is not ev.OPAQUE, expression
    assert verdict == server, (expression, row)


# char(n): a regex or LIKE sees the padding, ``=`` and a ``::text`` cast do not.
PADDED_CASES: list[tuple[str, dict[str, Any]]] = [
    ("(code ~ '^ab$'::text)", {"code": "ab"}),
    ("(code ~ '^ab  $'::text)", {"code": "ab"}),
    ("(code ~~ 'ab'::text)", {"code": "ab"}),
    ("(code ~~ 'ab%'::text)", {"code": "ab"}),
    ("((code)::text ~ '^ab$'::text)", {"code": "ab"}),
    ("(code = 'ab'::bpchar)", {"code": "ab"}),
    ("(rpad((code)::text, 3, 'x'::text) = 'abx'::text)", {"code": "ab"}),
    ("(lpad((code)::text, 1) = 'a'::text)", {"code": "ab"}),
]


@pytest.mark.parametrize(("expression", "row"), PADDED_CASES)
def test_char_n_matches_agree_with_postgresql(dbarch_psycopg: psycopg.Connection, expression: str,
                                             row: dict[str, Any]) -> None:
    dbarch_psycopg.execute("CREATE TEMP TABLE t (code char(4))")
    dbarch_psycopg.execute("INSERT INTO t VALUES (%s)", [row["code"]])
    server = dbarch_psycopg.execute(f"SELECT ({expression}) IS NOT FALSE FROM t").fetchone()[0]  # type: ignore[index]
    verdict = Rule.of("r", expression, {"code": "S"}, ["code"], padded={"code": 4}).holds(row)
    assert verdict is not ev.OPAQUE, expression
    assert verdict == server, (expression, row)


def test_a_regex_on_char_n_is_aimed_at_with_the_padding() -> None:
    [(match,)] = Rule.of("r", "(code ~ '^[A-Z]{3}$'::text)", {"code": "S"}, ["code"], padded={"code": 4}).dnf
    assert match.column == "code" and match.pattern.pad_to == 4
    assert match.pattern.search("ABC") is False and match.pattern.search("ABCD") is False
    [(cast,)] = Rule.of("r", "((code)::text ~ '^[A-Z]{3}$'::text)", {"code": "S"}, ["code"], padded={"code": 4}).dnf
    assert cast.pattern.pad_to is None and cast.pattern.search("ABC") is True


def test_text_order_and_volatile_functions_are_left_to_the_server() -> None:
    assert rule("(code > 'm'::text)").holds({"code": "z"}) is ev.OPAQUE  # collation decides
    assert rule("(at < now())").holds({"at": dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)}) is ev.OPAQUE
    assert rule("(lower(code) = code)").holds({"code": "Ä"}) is ev.OPAQUE  # the server's locale folds it


# Pitfall: POSIX regexes are not Python's. Each pattern is judged by PostgreSQL.
REGEX_CASES = [
    ("^[A-Z]{3}$", ["ABC", "ABC\n", "\nABC", "AB"]),  # Python's $ matches before a final newline
    ("a.c", ["a\nc", "abc"]),  # . matches a newline in PostgreSQL
    ("[[:digit:]]+", ["123", "x"]),
    ("\\y(cat)\\y", ["a cat sat", "concatenate"]),  # \y is PostgreSQL's word boundary
    ("\\mfoo", ["foo bar", "afoo"]),  # \m: start of a word
    ("x\\x41y", ["xAy", "xay"]),  # \x takes hex digits
    ("^a\\b", ["a\b", "a"]),  # \b is a backspace, not a word boundary
    ("(?i)^abc$", ["ABC", "abd"]),
    ("***=a.c", ["a.c", "abc"]),  # a literal pattern
    ("[^[:space:]]+@[a-z]+\\.[a-z]{2,}", ["me@example.org", "me @x.y"]),
]


@pytest.mark.parametrize(("pattern", "subjects"), REGEX_CASES)
def test_regex_translation_agrees_with_postgresql(dbarch_psycopg: psycopg.Connection, pattern: str,
                                                  subjects: list[str]) -> None:
    translated = regex.translate(pattern)
    server = dbarch_psycopg.execute("SELECT array_agg(s ~ %s ORDER BY n) FROM unnest(%s::text[]) "
                                    "WITH ORDINALITY AS u(s, n)", [pattern, subjects]).fetchone()[0]  # type: ignore[index]
    assert [translated.search(s) for s in subjects] == server, pattern


def test_untranslatable_regexes_are_refused_not_guessed() -> None:
    with pytest.raises(regex.Untranslatable):
        regex.translate("[[.space.]]")
    r = rule("(code ~ '[[=e=]]'::text)")
    assert isinstance(r.dnf[0][0], Other)  # type: ignore[index]


def test_locale_dependent_classes_on_non_ascii_text_ask_the_server() -> None:
    pattern = regex.translate("^[[:alpha:]]+$")
    assert pattern.search("abc") is True
    assert pattern.search("äbc") is None  # glibc and ICU disagree with Python's ASCII classes


def test_generated_strings_match_whole_patterns(dbarch_psycopg: psycopg.Connection) -> None:
    """Strings drawn from a pattern match it in PostgreSQL (anchors, classes, alternation)."""
    import random

    rng = random.Random(7)
    for pattern in ("^[A-Z]{3}$", "^E[0-9]{4}$", "^(ab|cd)+-[[:digit:]]{2}$", "^[a-z]+@[a-z]+\\.(com|org)$"):
        translated = regex.translate(pattern)
        drawn = [regex.sample(translated.generator, translated.flags, rng) for _ in range(20)]
        matched = dbarch_psycopg.execute("SELECT array_agg(s ~ %s) FROM unnest(%s::text[]) AS s",
                                         [pattern, drawn]).fetchone()[0]  # type: ignore[index]
        assert all(matched), (pattern, drawn)


def test_combinations_of_many_columns_are_sampled_not_listed() -> None:
    """Met on MusicBrainz: the violator search listed every combination of the values tried
    for each column a CHECK reads; eleven columns of eight values each are 8.6 billion
    tuples, and the run was killed for lack of memory. Past a bound they are sampled."""
    import random

    from pytest_dbarch.constraints.search import LISTED_COMBINATIONS, _combinations

    wide = [list(range(8))] * 11
    picked = _combinations(wide, 60, random.Random(1))
    assert len(picked) == len(set(picked)) == 60
    assert all(len(combo) == 11 and all(0 <= v < 8 for v in combo) for combo in picked)
    assert len({combo[0] for combo in picked}) > 1  # spread, not the first corner of the product
    narrow = [[0, 1]] * 3
    assert sorted(_combinations(narrow, 100, random.Random(1))) == sorted(
        (a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1))
    assert 2 ** 3 <= LISTED_COMBINATIONS
