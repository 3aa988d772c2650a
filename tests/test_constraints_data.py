"""``.rows()``, ``.lists()``, ``.fill()`` and ``.factory()`` on real tables: what they draw is
what PostgreSQL accepts, every type and the pitfalls of the issue pinned one by one."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any, Optional

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from pytest_dbarch.constraints import valid_rows
from pytest_dbarch.constraints.context import Context, Skips, check_settings
from pytest_dbarch.constraints.fill import FillError
from pytest_dbarch.constraints.intent import Intent
from pytest_dbarch.constraints.rows import DrawStats, NoParentRows
from pytest_dbarch.errors import DbarchError

QUICK = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def accepted_rows(constraints: Any, table: str, keep: bool = False, examples: int = 60) -> list[dict[str, Any]]:
    """Rows of ``.rows(table)`` hypothesis draws under QUICK, each inserted (kept or rolled
    back); fails on the first one PostgreSQL refuses."""
    spec, seen = constraints.spec(table), []

    @settings(QUICK, max_examples=examples)
    @given(constraints.rows(table))
    def insert(row: dict[str, Any]) -> None:
        outcome = constraints._probe.insert(spec, row, keep=keep)
        assert outcome.ok, (outcome.describe(), row)
        seen.append(row)

    insert()
    return seen

EVERY_TYPE = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN percent AS integer NOT NULL CHECK (VALUE BETWEEN 0 AND 100);
CREATE DOMAIN code AS text CHECK (VALUE ~ '^[A-Z]{2}-[0-9]{3}$');
CREATE TABLE everything (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    small smallint NOT NULL, big bigint, price numeric(5, 2) NOT NULL, loose numeric,
    ratio real, measure double precision, name varchar(12) NOT NULL, note text, fixed char(4),
    flag boolean NOT NULL, born date, seen timestamp(3), at timestamptz NOT NULL, clock time,
    span interval, token uuid NOT NULL, doc json, body jsonb NOT NULL, blob bytea, host inet,
    net cidr, mac macaddr, feeling mood NOT NULL, share percent, ref code, counts int[],
    labels text[] NOT NULL, moods mood[], during daterange, window_ tstzrange, bits bit(3),
    varying varbit(5), cost money, words tsvector,
    upper_name text GENERATED ALWAYS AS (upper(name)) STORED
);
"""


def test_every_type_draws_rows_postgresql_accepts(dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    dbarch_psycopg.execute(EVERY_TYPE)
    spec = dbarch_constraints.spec("everything")
    assert "id" in spec.left_out and "upper_name" in spec.left_out  # identity ALWAYS, generated
    inserted = []

    @QUICK
    @given(dbarch_constraints.rows("everything"))
    def insert(row: dict[str, Any]) -> None:
        outcome = dbarch_constraints._probe.insert(spec, row, keep=True)
        assert outcome.ok, (outcome.describe(), row)
        inserted.append(row)

    insert()
    assert len(inserted) >= 60
    assert dbarch_constraints.fill("everything", 300) == 300
    # Pitfall: text never carries NUL (PostgreSQL refuses it), JSON strings neither.
    assert all("\x00" not in str(v) for row in inserted for v in row.values())
    # char(n) gets no trailing spaces (they would not count for length() there).
    assert all(not (row.get("fixed") or "x").endswith(" ") for row in inserted)


def test_numeric_precision_and_edges_never_overflow(dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Pitfall: numeric(p, s) overflow; bounds come from CHECKs and from the type."""
    dbarch_psycopg.execute("CREATE TABLE prices (amount numeric(5, 2) NOT NULL CHECK (amount > 990), "
                           "tiny numeric(3, 3), qty smallint NOT NULL CHECK (qty >= 32760))")
    seen: list[dict[str, Any]] = []

    @QUICK
    @given(dbarch_constraints.rows("prices"))
    def insert(row: dict[str, Any]) -> None:
        outcome = dbarch_constraints._probe.insert(dbarch_constraints.spec("prices"), row)
        assert outcome.ok, (outcome.describe(), row)
        seen.append(row)

    insert()
    amounts = {r["amount"] for r in seen}
    assert min(amounts) > 990 and max(amounts) <= 999.99
    assert {r["qty"] for r in seen} <= set(range(32760, 32768))
    assert max(r["qty"] for r in seen) == 32767  # the edge is drawn on purpose


def test_numeric_wider_than_pythons_28_digits(dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on lago (billing): numeric(30, 5) amounts. Python's default decimal context
    rounds to 28 digits, which turned the type's bound into 10**25, one digit too many."""
    dbarch_psycopg.execute("CREATE TABLE wallets (credits numeric(30, 5) NOT NULL CHECK (credits >= 0), "
                           "paid numeric(30, 5) NOT NULL, units numeric(60, 30), whole numeric(38, 0) NOT NULL)")
    spec = dbarch_constraints.spec("wallets")

    @QUICK
    @given(dbarch_constraints.rows("wallets"))
    def insert(row: dict[str, Any]) -> None:
        outcome = dbarch_constraints._probe.insert(spec, row, keep=True)
        assert outcome.ok, (outcome.describe(), row)

    insert()
    assert dbarch_constraints.fill("wallets", 500) == 500
    extremes = dbarch_psycopg.execute("SELECT min(paid), max(credits), max(whole) FROM wallets").fetchone()
    edge = "9" * 25 + "." + "9" * 5  # the largest numeric(30, 5); Decimal's own minus would round it
    assert extremes == (Decimal("-" + edge), Decimal(edge), Decimal(10**38 - 1))  # the edges are drawn, exactly
    findings = dbarch_constraints.check("wallets")
    assert [(f.rule, f.title) for f in findings if f.is_problem] == []


def test_unique_holds_across_examples_and_against_rows_already_there(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Pitfall: UNIQUE collisions across examples and with rows already present."""
    dbarch_psycopg.execute("CREATE TABLE seats (code smallint UNIQUE NOT NULL CHECK (code BETWEEN 1 AND 90), "
                           "email text NOT NULL, deleted_at timestamptz)")
    dbarch_psycopg.execute("CREATE UNIQUE INDEX seats_live_email ON seats (lower(email)) WHERE deleted_at IS NULL")
    dbarch_constraints.fill("seats", 30)
    spec = dbarch_constraints.spec("seats")

    @settings(QUICK, max_examples=50)
    @given(dbarch_constraints.rows("seats"))
    def insert(row: dict[str, Any]) -> None:
        outcome = dbarch_constraints._probe.insert(spec, row, keep=True)  # kept: the next example must avoid it
        assert outcome.ok, (outcome.describe(), row)

    insert()
    assert dbarch_psycopg.execute("SELECT count(*) FROM seats").fetchone()[0] >= 80  # type: ignore[index]

    @QUICK
    @given(dbarch_constraints.lists("seats", min_size=2, max_size=5))
    def together(rows: list[dict[str, Any]]) -> None:
        assert len({r["code"] for r in rows}) == len(rows)
        # lower(email) is an expression index: the rows were drawn against each other in the
        # database, and none of them is left there
        assert dbarch_psycopg.execute("SELECT count(*) FROM seats").fetchone()[0] == 0  # type: ignore[index]
        with dbarch_psycopg.transaction(force_rollback=True):
            for row in rows:
                assert dbarch_constraints._probe.insert(spec, row, keep=True).ok, rows

    dbarch_psycopg.execute("DELETE FROM seats")
    together()


def test_unique_keys_a_before_insert_trigger_rewrites_are_judged_as_stored(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on warehouse (PyPI): a BEFORE INSERT trigger sets ``normalized`` from ``name``,
    so the value drawn for the UNIQUE column is not the one stored. Rows already hold every
    name of at most one letter: the simplest rows hypothesis draws collide once lowered."""
    dbarch_psycopg.execute("""
        CREATE TABLE projects (id serial PRIMARY KEY, name varchar(20) NOT NULL, normalized text NOT NULL UNIQUE);
        CREATE FUNCTION projects_normalize() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN NEW.normalized := lower(NEW.name); RETURN NEW; END $$;
        CREATE TRIGGER projects_normalize BEFORE INSERT ON projects FOR EACH ROW EXECUTE FUNCTION projects_normalize();
        INSERT INTO projects (name, normalized)
            SELECT n, '' FROM (SELECT '' UNION ALL SELECT chr(c) FROM generate_series(32, 126) c WHERE c NOT BETWEEN 65 AND 90) AS names(n);""")
    spec = dbarch_constraints.spec("projects")
    assert spec.table.before_insert_triggers == ("projects_normalize",)

    accepted_rows(dbarch_constraints, "projects", keep=True, examples=40)

    @settings(QUICK, max_examples=15)
    @given(dbarch_constraints.lists("projects", min_size=2, max_size=4))
    def together(rows: list[dict[str, Any]]) -> None:
        with dbarch_psycopg.transaction(force_rollback=True):
            for row in rows:
                assert dbarch_constraints._probe.insert(spec, row, keep=True).ok, rows

    together()
    # the violator of UNIQUE normalized is rewritten by the trigger too: not a failure of the key
    findings = dbarch_constraints.check("projects")
    assert [(f.rule, f.title) for f in findings if f.is_problem] == []
    [held] = [f for f in findings if f.rule == "constraints.rejects-violator"]
    assert "UNIQUE projects_normalized_key: holds: a trigger or rule rewrote the row" in held.evidence


def test_lists_keep_rows_apart_under_keys_only_the_database_can_judge(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """An expression index (n % 3): three rows of a list must take the three remainders,
    which equality of values cannot see; the rows are drawn against each other in a
    savepoint that is gone when the test body runs."""
    dbarch_psycopg.execute("CREATE TABLE thirds (n int NOT NULL CHECK (n >= 0))")
    dbarch_psycopg.execute("CREATE UNIQUE INDEX thirds_mod ON thirds ((n % 3))")
    spec = dbarch_constraints.spec("thirds")

    @QUICK
    @given(dbarch_constraints.lists("thirds", min_size=3, max_size=3))
    def three(rows: list[dict[str, Any]]) -> None:
        assert sorted(r["n"] % 3 for r in rows) == [0, 1, 2], rows
        assert dbarch_psycopg.execute("SELECT count(*) FROM thirds").fetchone()[0] == 0  # type: ignore[index]
        with dbarch_psycopg.transaction(force_rollback=True):
            for row in rows:
                assert dbarch_constraints._probe.insert(spec, row, keep=True).ok, rows

    three()


def test_fill_stops_with_a_clear_error_when_unique_values_run_out(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    dbarch_psycopg.execute("CREATE TABLE tiny (flag boolean PRIMARY KEY)")
    with pytest.raises(FillError, match=r"only 2 of 3 rows could be inserted into public.tiny"):
        dbarch_constraints.fill("tiny", 3)


def test_rows_stop_with_a_clear_error_when_the_parents_offer_no_free_key(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """A key made of foreign keys only (pagila's film_actor): once every pair the parents
    offer is taken, a draw says so at once instead of colliding until hypothesis gives up."""
    dbarch_psycopg.execute("""
        CREATE TABLE actor (id int PRIMARY KEY);
        CREATE TABLE film (id int PRIMARY KEY);
        CREATE TABLE film_actor (actor_id int NOT NULL REFERENCES actor, film_id int NOT NULL REFERENCES film,
                                 PRIMARY KEY (actor_id, film_id));
        INSERT INTO actor VALUES (1), (2), (3);
        INSERT INTO film VALUES (1), (2);
        INSERT INTO film_actor SELECT a.id, f.id FROM actor a, film f WHERE (a.id, f.id) <> (3, 2);
    """)
    spec = dbarch_constraints.spec("film_actor")
    drawn: list[dict[str, Any]] = []

    @settings(QUICK, max_examples=20)
    @given(dbarch_constraints.rows("film_actor"))
    def insert(row: dict[str, Any]) -> None:
        outcome = dbarch_constraints._probe.insert(spec, row, keep=True)
        assert outcome.ok, (outcome.describe(), row)
        drawn.append(row)

    with pytest.raises(DbarchError, match=r"every value of UNIQUE film_actor_pkey \(actor_id, film_id\) that the "
                                          r"rows of public.actor, public.film offer is taken: 6 rows hold 6 possible"):
        insert()
    assert drawn == [{"actor_id": 3, "film_id": 2}]  # the one free pair, then the clear stop


def test_fill_copies_straight_in_only_when_nothing_can_be_refused(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """``.fill`` COPYs into the table itself when Python decided every CHECK and no UNIQUE
    key can meet a row already there; otherwise (and when the server refuses anyway) the
    rows go through the staging table, which skips what the table refuses."""
    dbarch_psycopg.execute("""
        CREATE TABLE codes (code smallint UNIQUE NOT NULL CHECK (code BETWEEN 1 AND 90),
                            starts date NOT NULL, ends date NOT NULL, CHECK (ends >= starts),
                            tag text NOT NULL CHECK (md5(tag) <> md5('none')));
        CREATE FUNCTION codes_odd() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.code = 13 THEN RAISE EXCEPTION 'unlucky' USING ERRCODE = '23514'; END IF;
                  RETURN NEW; END $$;""")
    assert dbarch_constraints.fill("codes", 30) == 30  # md5(): only the server can tell
    assert dbarch_constraints.fill("codes", 30) == 30  # the second half: collisions skipped
    assert dbarch_psycopg.execute("SELECT count(DISTINCT code), bool_and(ends >= starts) FROM codes").fetchone() == (
        60, True)
    dbarch_psycopg.execute("""
        DELETE FROM codes; ALTER TABLE codes DROP CONSTRAINT codes_tag_check;
        CREATE TRIGGER codes_odd BEFORE INSERT ON codes FOR EACH ROW EXECUTE FUNCTION codes_odd();""")
    dbarch_constraints.refresh()
    assert dbarch_constraints.fill("codes", 80) == 80  # the COPY straight in fails on 13: staged, one by one
    assert dbarch_psycopg.execute("SELECT count(*) FILTER (WHERE code = 13) FROM codes").fetchone()[0] == 0  # type: ignore[index]


def test_columns_bounded_by_another_column_respect_the_type_step(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """A column compared with another (``ends > starts``) is drawn within the other's value,
    in whole steps of its type: seconds for ``timestamp(0)``, cents for ``numeric(8, 2)``."""
    dbarch_psycopg.execute("""
        CREATE TABLE slots (starts timestamp(0) NOT NULL, ends timestamp(0) NOT NULL CHECK (ends > starts),
                            low numeric(8, 2) NOT NULL, high numeric(8, 2) NOT NULL CHECK (high > low),
                            first_day date NOT NULL, last_day date NOT NULL CHECK (last_day >= first_day),
                            a smallint NOT NULL, b smallint NOT NULL CHECK (b < a))""")
    spec = dbarch_constraints.spec("slots")
    seen: list[dict[str, Any]] = []

    @QUICK
    @given(dbarch_constraints.rows("slots"))
    def insert(row: dict[str, Any]) -> None:
        outcome = dbarch_constraints._probe.insert(spec, row)
        assert outcome.ok, (outcome.describe(), row)
        assert row["ends"].microsecond == 0 and row["high"] == row["high"].quantize(Decimal("0.01"))
        seen.append(row)

    insert()
    assert len(seen) >= 30
    assert dbarch_constraints.fill("slots", 500) == 500


def test_check_shapes_guide_generation(dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    dbarch_psycopg.execute("""
        CREATE TABLE deals (
            stage text NOT NULL CHECK (stage IN ('open', 'won', 'lost')),
            closed_at timestamptz,
            starts date NOT NULL, ends date,
            currency varchar(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
            code text CHECK (char_length(code) BETWEEN 2 AND 4),
            a int, b int,
            CHECK ((stage IN ('won', 'lost')) = (closed_at IS NOT NULL)),
            CHECK (ends > starts),
            CHECK (num_nonnulls(a, b) = 1)
        )""")
    rows = []

    @QUICK
    @given(dbarch_constraints.rows("deals"))
    def collect(row: dict[str, Any]) -> None:
        assert dbarch_constraints._probe.insert(dbarch_constraints.spec("deals"), row).ok, row
        rows.append(row)

    collect()
    assert {r["stage"] for r in rows} == {"open", "won", "lost"}
    assert all((r["stage"] != "open") == (r["closed_at"] is not None) for r in rows)
    assert all(r["ends"] is None or r["ends"] > r["starts"] for r in rows)
    stats = dbarch_constraints.stats("deals")
    assert stats.acceptance >= 0.99, stats.summary()  # aimed, not filtered
    # Pinned columns: the rest follows the CHECKs.
    won = dbarch_constraints.rows("deals", stage="won")

    @QUICK
    @given(won)
    def closed(row: dict[str, Any]) -> None:
        assert row["closed_at"] is not None

    closed()


def test_a_check_the_parser_cannot_read_is_verified_by_the_server(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Pitfall: an unreadable CHECK is not a failure; candidates are judged by the server
    and the acceptance rate is reported (a warning when it is low)."""
    dbarch_psycopg.execute("CREATE TABLE hashed (code text NOT NULL CHECK (md5(code) <> 'x'))")
    dbarch_psycopg.execute("CREATE TABLE rare (code text NOT NULL CHECK (md5(code) LIKE 'a%'))")
    spec = dbarch_constraints.spec("hashed")
    assert not spec.rules[0].understood

    @QUICK
    @given(dbarch_constraints.rows("hashed"))
    def insert(row: dict[str, Any]) -> None:
        assert dbarch_constraints._probe.insert(spec, row).ok, row

    insert()
    stats = dbarch_constraints.stats("hashed")
    assert stats.server_checked > 0 and stats.acceptance == 1
    findings = {f.where: f for f in dbarch_constraints.check("hashed", "rare") if f.rule == "constraints.valid-rows"}
    assert findings["public.hashed"].status.value == "passed"
    assert "checked by the server" in findings["public.hashed"].evidence
    rare = findings["public.rare"]
    assert rare.status.value == "warning", rare.title  # about one in sixteen: reported, not failed
    assert "cannot read (checked by the server)" in rare.title and "candidate rows kept" in rare.evidence


def test_foreign_keys_draw_existing_parents_and_null_only_where_nullable(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    dbarch_psycopg.execute("""
        CREATE TABLE parents (id serial PRIMARY KEY, name text NOT NULL);
        CREATE TABLE kids (id serial PRIMARY KEY, parent_id int NOT NULL REFERENCES parents,
                           other_id int REFERENCES parents)""")
    with pytest.raises(NoParentRows, match=r"(?s)public.parents has none.*fill\('parents', 10\)"):
        given(dbarch_constraints.rows("kids"))(settings(QUICK, max_examples=1)(lambda row: None))()
    dbarch_constraints.fill("parents", 3)
    ids = {r[0] for r in dbarch_psycopg.execute("SELECT id FROM parents")}
    seen = []

    @QUICK
    @given(dbarch_constraints.rows("kids"))
    def check(row: dict[str, Any]) -> None:
        assert row["parent_id"] in ids
        assert row["other_id"] is None or row["other_id"] in ids
        seen.append(row["other_id"])

    check()
    assert None in seen and set(seen) - {None}


def test_fill_creates_parents_first_and_handles_self_references(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Pitfall: self-referencing and cyclic foreign keys."""
    dbarch_psycopg.execute("""
        CREATE TABLE regions (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);
        CREATE TABLE staff (id serial PRIMARY KEY, region_id bigint NOT NULL REFERENCES regions,
                            manager_id int NOT NULL REFERENCES staff, mentor_id int REFERENCES staff);
        CREATE TABLE teams (id serial PRIMARY KEY, lead_id int);
        CREATE TABLE members (id serial PRIMARY KEY, team_id int NOT NULL REFERENCES teams);
        ALTER TABLE teams ADD FOREIGN KEY (lead_id) REFERENCES members;""")
    assert dbarch_constraints.fill("staff", 200) == 200
    counts = dbarch_psycopg.execute(
        "SELECT (SELECT count(*) FROM regions), count(*) FILTER (WHERE manager_id = id), "
        "count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM staff m WHERE m.id = s.manager_id)) "
        "FROM staff s").fetchone()
    assert counts[0] == 20  # about one parent per ten children
    assert counts[1] >= 1  # the first row points at itself
    assert counts[2] == 0
    # A cycle with one nullable side: teams first (lead NULL), then members.
    assert dbarch_constraints.fill("members", 30) == 30
    assert dbarch_constraints.fill("teams", 10) == 10
    assert dbarch_psycopg.execute("SELECT count(*) FROM teams WHERE lead_id IS NOT NULL").fetchone()[0] > 0  # type: ignore[index]


def test_fill_gives_nullable_foreign_keys_parents_when_a_check_needs_one_set(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on warehouse (PyPI, ``macaroons``): two nullable foreign keys, a CHECK that wants
    exactly one of them set, both parents empty. Filling it (or a child of it) must give the
    parents rows rather than give up."""
    dbarch_psycopg.execute("""
        CREATE TABLE people (id serial PRIMARY KEY, name text NOT NULL);
        CREATE TABLE publishers (id serial PRIMARY KEY);
        CREATE TABLE tokens (id serial PRIMARY KEY, person_id int REFERENCES people,
                             publisher_id int REFERENCES publishers,
                             CHECK ((person_id::text IS NULL) <> (publisher_id::text IS NULL)));
        CREATE TABLE warnings (token_id int NOT NULL REFERENCES tokens ON DELETE CASCADE, note text);""")
    assert dbarch_constraints.fill("tokens", 20) == 20
    filled = dbarch_psycopg.execute(
        "SELECT (SELECT count(*) FROM people) + (SELECT count(*) FROM publishers)").fetchone()[0]  # type: ignore[index]
    assert filled > 0
    dbarch_psycopg.execute("TRUNCATE tokens, people, publishers CASCADE")
    findings = dbarch_constraints.check("warnings")
    assert [(f.rule, f.status.value, f.title) for f in findings if f.is_problem] == []


def test_valid_rows_of_a_key_made_of_foreign_keys_end_with_the_parents_keys(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on warehouse (PyPI): one-to-one extension tables (``github_oidc_publishers.id``
    references ``oidc_publishers.id``) and association tables hold one row per parent key.
    The check's few parent rows run out of keys: the sample ends there, it is no error."""
    dbarch_psycopg.execute("""
        CREATE TABLE publishers (id serial PRIMARY KEY);
        CREATE TABLE github_publishers (id int PRIMARY KEY REFERENCES publishers, repository text NOT NULL);
        CREATE TABLE members (id serial PRIMARY KEY);
        CREATE TABLE memberships (publisher_id int NOT NULL REFERENCES publishers,
                                  member_id int NOT NULL REFERENCES members, UNIQUE (publisher_id, member_id));""")
    findings = dbarch_constraints.check("github_publishers", "memberships")
    assert [(f.rule, f.status.value, f.title) for f in findings if f.is_problem] == []
    valid = {f.where: f.title for f in findings if f.rule == "constraints.valid-rows"}
    assert "as many as the parent rows offer keys for" in valid["public.github_publishers"]
    assert "as many as the parent rows offer keys for" in valid["public.memberships"]


def test_violators_claim_redundancy_only_when_the_rules_show_it(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on warehouse (PyPI): ``length(username) <= 50`` beside a regex CHECK was called
    "implied by the other CHECKs" because no long enough match was drawn. A long match is
    drawn now; a duplicate CHECK, a CHECK implied by another, and a UNIQUE key holding a
    smaller one are proven redundant; anything else unfound is said to be unfound."""
    dbarch_psycopg.execute("""
        CREATE TABLE accounts (
            id serial PRIMARY KEY, tenant int NOT NULL,
            username text NOT NULL CHECK (username ~* '^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$'),
            digest text CONSTRAINT digest_hex CHECK (digest ~ '^[a-f0-9]{8}$'),
            score int CONSTRAINT score_positive CHECK (score > 0) CONSTRAINT score_above_five CHECK (score > 5),
            CONSTRAINT username_length CHECK (length(username) <= 50),
            CONSTRAINT digest_hex_again CHECK (digest ~ '^[a-f0-9]{8}$'),
            CONSTRAINT one_per_tenant UNIQUE (tenant, username), CONSTRAINT username_key UNIQUE (username));
        CREATE TABLE thresholds (id serial PRIMARY KEY, subscription int NOT NULL, amount int NOT NULL,
                                 recurring boolean NOT NULL);
        -- lago: a partial key on a part of the other's columns catches only recurring rows
        CREATE UNIQUE INDEX amount_per_subscription ON thresholds (amount, subscription, recurring);
        CREATE UNIQUE INDEX one_recurring ON thresholds (subscription, recurring) WHERE recurring IS TRUE;""")
    findings = dbarch_constraints.check("accounts", "thresholds")
    problems = {f.where.rsplit(".", 1)[1]: (f.title, f.evidence) for f in findings if f.is_problem}
    assert set(problems) == {"digest_hex", "digest_hex_again", "score_positive", "one_per_tenant"}, problems
    assert "says the same" in problems["digest_hex"][1]
    assert "implied by them" in problems["score_positive"][1]
    assert "UNIQUE username_key on a part of its columns (username)" in problems["one_per_tenant"][1]
    assert all("cannot be violated alone" in title for title, _ in problems.values())
    held = "\n".join(f.evidence for f in findings if f.rule == "constraints.rejects-violator" and not f.is_problem)
    assert "CHECK username_length: refused with 23514" in held
    assert "UNIQUE amount_per_subscription: refused with 23505" in held


def test_fill_grows_the_parents_of_a_key_made_of_foreign_keys(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on CKAN (``file_owner``: its key is a foreign key to ``file``) and zou (an
    association table): such a table holds one row per parent key, so the one parent row
    made for a few children is not enough; the fill adds parent rows instead of failing."""
    dbarch_psycopg.execute("""
        CREATE TABLE files (id serial PRIMARY KEY, name text NOT NULL);
        CREATE TABLE file_owner (file_id int PRIMARY KEY REFERENCES files, owner text NOT NULL);
        CREATE TABLE transfers (id serial PRIMARY KEY, file_id int NOT NULL REFERENCES file_owner ON DELETE CASCADE);
        CREATE TABLE tags (id serial PRIMARY KEY);
        CREATE TABLE file_tags (file_id int NOT NULL REFERENCES files, tag_id int NOT NULL REFERENCES tags,
                                UNIQUE (file_id, tag_id));""")
    assert dbarch_constraints.fill("file_owner", 30) == 30
    assert dbarch_constraints.fill("file_tags", 40) == 40
    dbarch_psycopg.execute("TRUNCATE files, tags CASCADE")
    findings = dbarch_constraints.check("transfers", "file_tags")
    assert [(f.rule, f.status.value, f.title) for f in findings if f.is_problem] == []


def test_checks_forget_parent_keys_a_rollback_removed(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on zou (``entity.parent_id`` references ``entity``): each check runs in a
    savepoint that is rolled back, and a parent key read inside it named a row that was
    gone for the next check, whose violators were then refused by the wrong foreign key.
    Its UNIQUE key includes the self-reference: the violator's parent row is inserted first."""
    dbarch_psycopg.execute("""
        CREATE TABLE projects (id serial PRIMARY KEY);
        CREATE TABLE people (id serial PRIMARY KEY);
        CREATE TABLE entity (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL,
                             parent_id uuid REFERENCES entity, project_id int NOT NULL REFERENCES projects,
                             created_by int REFERENCES people,
                             CONSTRAINT entity_uc UNIQUE (name, project_id, parent_id));""")
    findings = dbarch_constraints.check("entity")
    assert [(f.rule, f.status.value, f.title) for f in findings if f.is_problem] == []


def test_json_checks_on_objects_do_not_crash_the_search(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on lago: ``CHECK (jsonb_typeof(value) = 'object')``; the violator search tried
    JSON objects against a set of excluded values and crashed (a dict cannot be hashed)."""
    dbarch_psycopg.execute("CREATE TABLE item_metadata (id serial PRIMARY KEY, value jsonb NOT NULL "
                           "CONSTRAINT value_is_object CHECK (jsonb_typeof(value) = 'object'))")
    findings = dbarch_constraints.check("item_metadata")
    assert [(f.rule, f.title) for f in findings if f.status.value in ("failed", "error")] == []
    [held] = [f for f in findings if f.rule == "constraints.rejects-violator" and not f.is_problem]
    assert "CHECK value_is_object: refused with 23514" in held.evidence


def test_a_regex_on_char_n_sees_the_padding(dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on MusicBrainz: ``iswc char(15) CHECK (iswc ~ '^T-?\\d{3}.?\\d{3}.?\\d{3}[-.]?\\d$')``.
    PostgreSQL matches a regex or LIKE against char(n) with its trailing spaces, so only
    15-character codes pass; rows of a shorter code were drawn as valid and refused. An
    explicit ``::text`` cast drops the padding: there a short code is fine."""
    dbarch_psycopg.execute(r"""
        CREATE TABLE iswc (id serial PRIMARY KEY,
            iswc char(15) NOT NULL CONSTRAINT iswc_format CHECK (iswc ~ E'^T-?\\d{3}.?\\d{3}.?\\d{3}[-.]?\\d$'),
            code char(6) CONSTRAINT code_prefix CHECK (code LIKE 'AB%9'),
            loose char(8) CONSTRAINT loose_format CHECK (loose::text ~ '^[a-z]{2,4}$'))""")
    seen = accepted_rows(dbarch_constraints, "iswc", keep=True)
    assert {len(row["iswc"]) for row in seen} == {15}
    assert all(row["code"] is None or len(row["code"]) == 6 for row in seen)
    assert any(row["loose"] is not None and len(row["loose"]) < 8 for row in seen)
    assert dbarch_constraints.fill("iswc", 200) == 200
    findings = dbarch_constraints.check("iswc")
    assert [(f.rule, f.title) for f in findings if f.is_problem] == []
    [held] = [f for f in findings if f.rule == "constraints.rejects-violator"]
    for name in ("iswc_format", "code_prefix", "loose_format"):
        assert f"CHECK {name}: refused with 23514" in held.evidence


def test_fill_moves_rows_past_those_a_partial_unique_index_drops(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on lago (billing): one active version per quote, a partial UNIQUE index on the
    foreign key. Staged rows that meet it are dropped by ON CONFLICT; the ones after them
    must still be moved in, not cut off by a LIMIT taken before the conflicts."""
    dbarch_psycopg.execute("""
        CREATE TYPE quote_status AS ENUM ('draft', 'approved', 'voided', 'sent');
        CREATE TABLE quotes (id serial PRIMARY KEY);
        CREATE TABLE quote_versions (
            id serial PRIMARY KEY, quote_id int NOT NULL REFERENCES quotes,
            status quote_status NOT NULL DEFAULT 'draft', approved_at timestamp,
            CONSTRAINT approved_at_matches_status CHECK ((status = 'approved') = (approved_at IS NOT NULL)));
        CREATE UNIQUE INDEX one_active_version ON quote_versions (quote_id) WHERE status IN ('draft', 'approved');
        CREATE TABLE order_forms (id serial PRIMARY KEY, quote_version_id int NOT NULL REFERENCES quote_versions);""")
    assert dbarch_constraints.fill("quote_versions", 12) == 12
    dbarch_psycopg.execute("TRUNCATE quotes, quote_versions CASCADE")
    findings = dbarch_constraints.check("order_forms")
    assert [(f.rule, f.title) for f in findings if f.is_problem] == []


def test_a_partition_missing_its_siblings_foreign_key_is_named(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on pagila (2024): ``payment_p2022_07`` lacks the foreign keys its six sibling
    partitions declare, so a payment there keeps a customer id whose customer is gone. The
    finding names that partition, not a sibling's key that did nothing wrong."""
    dbarch_psycopg.execute("""
        CREATE TABLE customers (id serial PRIMARY KEY);
        CREATE TABLE payments (id serial, customer_id int NOT NULL, paid_on date NOT NULL,
                               PRIMARY KEY (id, paid_on)) PARTITION BY RANGE (paid_on);
        CREATE TABLE payments_old PARTITION OF payments FOR VALUES FROM ('1990-01-01') TO ('1990-01-02');
        CREATE TABLE payments_new PARTITION OF payments FOR VALUES FROM ('1990-01-02') TO ('2100-01-01');
        ALTER TABLE payments_old ADD FOREIGN KEY (customer_id) REFERENCES customers;""")
    findings = dbarch_constraints.check("payments")
    problems = [f for f in findings if f.is_problem]
    assert [(f.status.value, f.where) for f in problems] == [("failed", "public.payments_new.customer_id")]
    assert all("partition public.payments_new has no foreign key on customer_id to public.customers" in f.title
               for f in problems)
    assert "DELETE FROM" in problems[0].evidence  # seen on a row that landed there
    # a partition no generated row lands in is listed from the catalog
    dbarch_psycopg.execute("CREATE TABLE payments_future PARTITION OF payments FOR VALUES FROM ('2100-01-01') "
                           "TO ('2200-01-01')")
    dbarch_constraints.refresh()
    problems = [f for f in dbarch_constraints.check("payments") if f.is_problem]
    assert sorted(f.where for f in problems) == ["public.payments_future.customer_id", "public.payments_new.customer_id"]
    # the generated row lands in one of the two; the other is listed from the catalog
    assert sorted("read from the catalog: 1 of 3 partitions of public.payments declare it" in f.evidence
                  for f in problems) == [False, True]
    for partition in ("payments_new", "payments_future"):
        dbarch_psycopg.execute(f"ALTER TABLE {partition} ADD FOREIGN KEY (customer_id) REFERENCES customers")
    dbarch_constraints.refresh()
    assert [f.title for f in dbarch_constraints.check("payments") if f.is_problem] == []


def test_a_parent_trigger_refusing_the_change_is_no_referential_failure(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on lago: a BEFORE UPDATE trigger on ``roles`` raises "Predefined role cannot be
    modified". The key change never reached the foreign key, so its ON UPDATE action is not
    to blame: a warning that it was not checked, not a failure."""
    dbarch_psycopg.execute("""
        CREATE TABLE roles (id serial PRIMARY KEY, name text NOT NULL);
        CREATE FUNCTION roles_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'Predefined role cannot be modified'; END $$;
        CREATE TRIGGER roles_frozen BEFORE UPDATE ON roles FOR EACH ROW EXECUTE FUNCTION roles_frozen();
        CREATE TABLE membership_roles (id serial PRIMARY KEY, role_id int NOT NULL REFERENCES roles);""")
    findings = [f for f in dbarch_constraints.check("membership_roles") if f.rule == "constraints.referential-action"]
    assert [(f.status.value, f.title) for f in findings if f.is_problem] == [
        ("warning", "public.membership_roles: membership_roles_role_id_fkey on update not checked: "
                    "could not change the parent row")]
    assert "on delete of public.roles: NO ACTION" in next(f for f in findings if not f.is_problem).evidence


def test_fill_grows_parents_a_trigger_refuses_and_says_what_the_server_said(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on MusicBrainz: a BEFORE INSERT trigger refuses a link whose link_type is
    deprecated. The one parent row filled for five links was, so every row was refused and
    the error blamed the table's CHECKs and UNIQUE keys. Now the parents grow once, and when
    nothing gets in the error quotes the server."""
    dbarch_psycopg.execute("""
        CREATE TABLE kinds (id serial PRIMARY KEY, retired boolean NOT NULL);
        CREATE TABLE things (id serial PRIMARY KEY, kind_id int NOT NULL REFERENCES kinds);
        CREATE FUNCTION refuse_retired() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF (SELECT retired FROM kinds WHERE id = NEW.kind_id) THEN
                RAISE EXCEPTION 'kind % is retired', NEW.kind_id;
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_retired BEFORE INSERT ON things FOR EACH ROW EXECUTE FUNCTION refuse_retired();
        INSERT INTO kinds (retired) VALUES (true);
        CREATE TABLE walls (id serial PRIMARY KEY, note text);
        CREATE FUNCTION refuse_all() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'walls are read-only'; END $$;
        CREATE TRIGGER refuse_all BEFORE INSERT ON walls FOR EACH ROW EXECUTE FUNCTION refuse_all();""")
    assert dbarch_constraints.fill("things", 5) == 5
    retired = dbarch_psycopg.execute(
        "SELECT count(*) FROM things JOIN kinds ON kinds.id = kind_id WHERE retired").fetchone()[0]  # type: ignore[index]
    assert retired == 0
    with pytest.raises(FillError, match=r"PostgreSQL refused the others one by one: P0001: walls are read-only "
                                        r"\(\d+ rows\).*\n  fix: a trigger"):
        dbarch_constraints.fill("walls", 3)


SEARCH_HINTS = """
    CREATE TABLE alias_types (id serial PRIMARY KEY, name text NOT NULL);
    CREATE TABLE tags (id serial PRIMARY KEY, uses int NOT NULL DEFAULT 0);
    CREATE TABLE aliases (
        id serial PRIMARY KEY, type int REFERENCES alias_types, name text NOT NULL, sort_name text NOT NULL,
        locale text, primary_for_locale boolean NOT NULL DEFAULT false, tag int REFERENCES tags,
        a1 int, a2 int, a3 int, a4 int, a5 int, a6 int, a7 int, a8 int,
        CONSTRAINT primary_check CHECK ((locale IS NULL AND primary_for_locale IS FALSE) OR locale IS NOT NULL),
        CONSTRAINT search_hints_are_empty CHECK (type <> 3 OR (type = 3 AND sort_name = name AND locale IS NULL
            AND primary_for_locale IS FALSE)),
        CONSTRAINT wide CHECK (a1 IS NULL OR num_nonnulls(a2, a3, a4, a5, a6, a7, a8) <> 7 OR name = sort_name));
    CREATE FUNCTION simplify_search_hints() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.type = 3 THEN
            NEW.sort_name := NEW.name; NEW.locale := NULL;
            IF TG_ARGV[0] = 'consistent' THEN NEW.primary_for_locale := false; END IF;
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER search_hint BEFORE INSERT ON aliases FOR EACH ROW EXECUTE FUNCTION simplify_search_hints('consistent');
    CREATE TABLE area_aliases (LIKE aliases INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
    CREATE TRIGGER search_hint BEFORE INSERT ON area_aliases FOR EACH ROW EXECUTE FUNCTION simplify_search_hints('as MusicBrainz');
    CREATE FUNCTION count_tag() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE tags SET uses = uses + 1 WHERE id = NEW.tag;
        RETURN NEW;
    END $$;
    CREATE TRIGGER count_tag AFTER INSERT ON aliases FOR EACH ROW EXECUTE FUNCTION count_tag();
"""


def test_checks_on_triggers_that_rewrite_rows_and_on_wide_checks(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on MusicBrainz's alias tables: (1) a CHECK over eleven columns made the violator
    search list billions of combinations and the run was killed for lack of memory; (2) a
    violator of ``search_hints_are_empty`` needs type = 3, which the parent lacked, so the
    foreign key refused it first; with that parent inserted, the BEFORE INSERT trigger
    rewrites it so the CHECK holds, a pass, not an accepted violator; (3) the same trigger
    nulls ``locale`` and ``primary_check`` then refuses a row that met it as sent: a warning
    about the schema, not an error of ours; (4) an AFTER INSERT trigger's counter overflowing
    on generated parent data is a warning naming the function."""
    dbarch_psycopg.execute(SEARCH_HINTS)
    findings = {(f.rule, f.where): f for f in dbarch_constraints.check("aliases")}
    problems = [(f.rule, f.status.value, f.title) for f in findings.values() if f.status.value in ("failed", "error")]
    assert problems == []
    [violators] = [f for (rule, _), f in findings.items() if rule == "constraints.rejects-violator"
                   and f.where == "public.aliases"]
    assert "CHECK wide: refused with 23514" in violators.evidence
    assert "CHECK search_hints_are_empty: holds: a trigger or rule rewrote the row" in violators.evidence

    hint = {"type": 3, "name": "a", "sort_name": "a", "locale": "en", "primary_for_locale": True}
    dbarch_psycopg.execute("INSERT INTO alias_types (id, name) VALUES (3, 'search hint') ON CONFLICT DO NOTHING")
    spec = dbarch_constraints.spec("aliases")
    ctx = Context(dbarch_constraints._probe, dbarch_constraints.catalog, dbarch_constraints.spec, Intent(),
                  check_settings(), Skips(), 1)
    refusal = dbarch_constraints._probe.insert(dbarch_constraints.spec("area_aliases"), hint)
    assert refusal.constraint == "primary_check"
    rewritten = valid_rows.classify(ctx, dbarch_constraints.spec("area_aliases"), hint, refusal, DrawStats())
    assert rewritten.status.value == "warning", rewritten.title
    assert "a BEFORE INSERT trigger turned a valid row into one primary_check refuses" in rewritten.title
    assert "BEFORE INSERT triggers: search_hint" in rewritten.evidence
    assert dbarch_constraints._probe.insert(spec, hint).ok  # the consistent trigger keeps the CHECK

    dbarch_psycopg.execute("INSERT INTO tags (uses) VALUES (2147483647)")
    tag = dbarch_psycopg.execute("SELECT max(id) FROM tags").fetchone()[0]  # type: ignore[index]
    overflow = dbarch_constraints._probe.insert(spec, {"name": "b", "sort_name": "b", "tag": tag})
    assert overflow.sqlstate == "22003" and overflow.in_function
    raised = valid_rows.classify(ctx, spec, {"name": "b", "sort_name": "b", "tag": tag}, overflow, DrawStats())
    assert raised.status.value == "warning" and "a function raised 22003" in raised.title
    assert "count_tag() line" in raised.evidence


def test_unique_indexes_of_partitions_only_are_kept(dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on MusicBrainz: ``artist_release`` is partitioned by a boolean and each partition
    has its own UNIQUE index on (release, artist); the partitioned table has none. Rows were
    drawn without that key, and the check blamed itself for the duplicate."""
    dbarch_psycopg.execute("""
        CREATE TABLE credits (is_track boolean NOT NULL, artist int NOT NULL CHECK (artist BETWEEN 1 AND 20),
            release int NOT NULL CHECK (release BETWEEN 1 AND 20), name text NOT NULL) PARTITION BY LIST (is_track);
        CREATE TABLE credits_release PARTITION OF credits FOR VALUES IN (false);
        CREATE TABLE credits_track PARTITION OF credits FOR VALUES IN (true);
        CREATE UNIQUE INDEX credits_release_uniq ON credits_release (release, artist);
        CREATE UNIQUE INDEX credits_track_uniq ON credits_track (release, artist);""")
    spec = dbarch_constraints.spec("credits")
    assert {k.name for k in spec.uniques} == {"credits_release_uniq", "credits_track_uniq"}
    accepted_rows(dbarch_constraints, "credits", keep=True)  # 400 keys a partition: 60 rows collide now and then
    findings = dbarch_constraints.check("credits")
    assert [(f.rule, f.title) for f in findings if f.is_problem] == []
    [held] = [f for f in findings if f.rule == "constraints.rejects-violator"]
    assert "UNIQUE credits_release_uniq: refused with 23505" in held.evidence
    assert "UNIQUE credits_track_uniq: refused with 23505" in held.evidence


def test_referential_actions_try_another_row_when_a_trigger_refuses_one(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on MusicBrainz: triggers refuse relationships of a deprecated type, so the one
    child row drawn for a foreign key was refused and 341 actions were "not checked". A few
    rows are tried; here the trigger refuses every other insert (a sequence, which a
    rollback does not rewind), so the first row drawn for each event is refused."""
    from pytest_dbarch.constraints import referential

    dbarch_psycopg.execute("""
        CREATE TABLE owners (id serial PRIMARY KEY);
        CREATE TABLE pets (id serial PRIMARY KEY,
            owner_id int NOT NULL REFERENCES owners ON DELETE CASCADE ON UPDATE CASCADE);
        CREATE SEQUENCE gate;
        CREATE FUNCTION every_other() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('gate') % 2 = 1 THEN RAISE EXCEPTION 'every other pet is refused'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER every_other BEFORE INSERT ON pets FOR EACH ROW EXECUTE FUNCTION every_other();""")
    ctx = Context(dbarch_constraints._probe, dbarch_constraints.catalog, dbarch_constraints.spec, Intent(),
                  check_settings(), Skips(), 1)
    findings = referential.check(ctx, dbarch_constraints.spec("pets"))
    assert [(f.status.value, f.title) for f in findings if f.status.value != "passed"] == []
    assert dbarch_psycopg.execute("SELECT last_value FROM gate").fetchone()[0] >= 4  # type: ignore[index]


def test_a_check_between_two_foreign_keys_holds(dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on MusicBrainz: ``l_area_area`` links two areas, ``CHECK (entity0 <> entity1)``.
    Both columns take a parent's key as it is, so the CHECK was trusted as enforced by the
    plan while nothing bounded one column by the other: rows linking an area to itself were
    drawn as valid and refused."""
    dbarch_psycopg.execute("""
        CREATE TABLE areas (id serial PRIMARY KEY);
        INSERT INTO areas SELECT FROM generate_series(1, 3);
        CREATE TABLE area_links (id serial PRIMARY KEY, entity0 int NOT NULL REFERENCES areas,
            entity1 int NOT NULL REFERENCES areas, CONSTRAINT non_loop_relationship CHECK (entity0 <> entity1));""")
    seen = accepted_rows(dbarch_constraints, "area_links")
    assert len(seen) >= 30 and len({(r["entity0"], r["entity1"]) for r in seen}) > 1


def test_a_repaired_unique_key_stays_inside_the_checks(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """A row whose UNIQUE key collides gets fresh key values; two integer columns are
    shifted together by one distance, and that moved ``artist`` to 0 past its CHECK, in a
    row then trusted to the plan. A repaired row is judged by every rule again."""
    dbarch_psycopg.execute("""
        CREATE TABLE credits (artist int NOT NULL CHECK (artist BETWEEN 1 AND 20),
            release int NOT NULL CHECK (release BETWEEN 1 AND 20), UNIQUE (release, artist))""")
    assert dbarch_constraints.fill("credits", 300) == 300  # of 400 keys: most draws collide
    accepted_rows(dbarch_constraints, "credits")
    assert dbarch_constraints.stats("credits").repairs > 0


def test_a_cycle_of_not_null_foreign_keys_is_a_clear_error(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    dbarch_psycopg.execute("""
        CREATE TABLE eggs (id serial PRIMARY KEY, hen_id int NOT NULL);
        CREATE TABLE hens (id serial PRIMARY KEY, egg_id int NOT NULL REFERENCES eggs);
        ALTER TABLE eggs ADD FOREIGN KEY (hen_id) REFERENCES hens;""")
    with pytest.raises(FillError, match=r"cycle \(public.eggs -> public.hens -> public.eggs\)"):
        dbarch_constraints.fill("eggs", 5)


def test_bad_input_gets_one_clear_error(dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    dbarch_psycopg.execute("CREATE TABLE things (id serial PRIMARY KEY, name text)")
    with pytest.raises(DbarchError, match=r"no table 'nothing'.*\n  fix: name a table"):
        dbarch_constraints.rows("nothing")
    with pytest.raises(DbarchError, match=r"public.things has no column 'nme'\n  fix: its columns are id, name"):
        dbarch_constraints.fill("things", 1, nme="x")


class Base(DeclarativeBase):
    pass


class Shop(Base):
    __tablename__ = "shops"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (CheckConstraint("(status = 'paid') = (paid_at IS NOT NULL)", name="paid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    status: Mapped[str] = mapped_column(String(10))
    paid_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True))
    shop: Mapped[Shop] = relationship()


def test_factory_draws_valid_objects_bound_to_the_session(dbarch_session: Any, dbarch_constraints: Any) -> None:
    Base.metadata.create_all(dbarch_session.connection())
    OrderFactory = dbarch_constraints.factory(Order)
    orders = OrderFactory.create_batch(20)  # no shop yet: one is created first
    assert all((o.status == "paid") == (o.paid_at is not None) for o in orders)
    assert dbarch_session.query(Shop).count() >= 1
    acme = dbarch_constraints.factory(Shop, name="Acme").create()
    paid = OrderFactory.create(shop=acme, status="paid")
    assert paid.shop_id == acme.id and paid.paid_at is not None
    assert OrderFactory.build().id is None  # build does not touch the database


def test_checks_understand_triggers_and_partitions(dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Shapes met on real schemas (pagila): a NOT NULL column a BEFORE trigger fills is
    enforced, not "accepting a violator"; a partitioned table takes rows inside its
    partitions' bounds, and foreign keys declared on each partition bind it."""
    dbarch_psycopg.execute("""
        CREATE TABLE films (id serial PRIMARY KEY, title text NOT NULL, fulltext tsvector NOT NULL);
        CREATE FUNCTION films_fill() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN NEW.fulltext := to_tsvector('simple', NEW.title); RETURN NEW; END $$;
        CREATE TRIGGER films_fill BEFORE INSERT ON films FOR EACH ROW EXECUTE FUNCTION films_fill();
        CREATE TABLE customers (id serial PRIMARY KEY);
        CREATE TABLE payments (id serial, customer_id int NOT NULL, paid_at date NOT NULL,
                               PRIMARY KEY (id, paid_at)) PARTITION BY RANGE (paid_at);
        CREATE TABLE payments_2024 PARTITION OF payments FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE payments_2025 PARTITION OF payments FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        ALTER TABLE payments_2024 ADD FOREIGN KEY (customer_id) REFERENCES customers;
        ALTER TABLE payments_2025 ADD FOREIGN KEY (customer_id) REFERENCES customers;""")
    findings = dbarch_constraints.check("films", "customers", "payments")
    problems = [(f.rule, f.title) for f in findings if f.is_problem]
    assert problems == []
    [held] = [f for f in findings if f.rule == "constraints.rejects-violator" and f.where == "public.films"]
    assert "NOT NULL fulltext: holds: a trigger or rule rewrote the row" in held.evidence
    assert dbarch_constraints.fill("payments", 50) == 50
    assert dbarch_psycopg.execute("SELECT count(*) FROM payments_2024").fetchone()[0] > 0  # type: ignore[index]


def test_referential_actions_find_the_child_a_before_insert_trigger_rewrote(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """Met on warehouse (PyPI): a BEFORE INSERT trigger sets a column from ``version``
    (there ``is_prerelease``); the child row must be found again by what was stored, not
    by what was drawn, or ON DELETE SET NULL reads as CASCADE (the child "gone")."""
    dbarch_psycopg.execute("""
        CREATE TABLE uploaders (id serial PRIMARY KEY);
        CREATE TABLE releases (version text NOT NULL, canonical text,
                               uploader_id int REFERENCES uploaders ON DELETE SET NULL ON UPDATE CASCADE);
        CREATE FUNCTION releases_prerelease() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN NEW.canonical := 'canonical ' || lower(NEW.version); RETURN NEW; END $$;
        CREATE TRIGGER releases_prerelease BEFORE INSERT ON releases FOR EACH ROW
            EXECUTE FUNCTION releases_prerelease();""")
    findings = dbarch_constraints.check("releases")
    assert [(f.rule, f.title) for f in findings if f.is_problem] == []
    [proven] = [f for f in findings if f.rule == "constraints.referential-action"]
    assert "on delete of public.uploaders: SET NULL" in proven.evidence
    assert "on update of public.uploaders: CASCADE" in proven.evidence


def test_domains_draw_inside_their_checks_and_refuse_violators(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    dbarch_psycopg.execute("""
        CREATE DOMAIN percent AS int CHECK (VALUE BETWEEN 0 AND 100);
        CREATE DOMAIN code AS varchar(8) NOT NULL CONSTRAINT code_shape CHECK (VALUE ~ '^[A-Z]{3}$')
            CONSTRAINT code_not_xxx CHECK (VALUE <> 'XXX');
        CREATE TABLE scores (id serial PRIMARY KEY, share percent NOT NULL, bonus percent, tag code UNIQUE,
                             CHECK (bonus IS NULL OR bonus <= share))""")
    seen: list[dict[str, Any]] = []

    @QUICK
    @given(dbarch_constraints.rows("scores"))
    def insert(row: dict[str, Any]) -> None:
        assert 0 <= row["share"] <= 100 and re.fullmatch("[A-Z]{3}", row["tag"]) and row["tag"] != "XXX"
        outcome = dbarch_constraints._probe.insert(dbarch_constraints.spec("scores"), row, keep=True)
        assert outcome.ok, (outcome.describe(), row)
        seen.append(row)

    insert()
    assert len(seen) >= 30
    findings = dbarch_constraints.check("scores")
    assert [f.title for f in findings if f.is_problem] == []
    [held] = [f for f in findings if f.rule == "constraints.rejects-violator"]
    for label in ("DOMAIN CHECK percent_check on share", "DOMAIN CHECK percent_check on bonus",
                  "DOMAIN CHECK code_shape on tag", "DOMAIN CHECK code_not_xxx on tag", "NOT NULL tag"):
        assert f"{label}: refused with 23514" in held.evidence or f"{label}: refused with 23502" in held.evidence, (
            label, held.evidence)


def test_a_domain_over_a_domain_keeps_both_checks(dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """The catalog resolves one level of domain; the chain is followed to the base type and
    every CHECK (and NOT NULL) on the way applies, each with a violator of its own."""
    dbarch_psycopg.execute("""
        CREATE DOMAIN positive AS int CHECK (VALUE > 0);
        CREATE DOMAIN small_positive AS positive CHECK (VALUE < 10);
        CREATE DOMAIN code AS varchar(5) NOT NULL;
        CREATE DOMAIN short_code AS code CHECK (VALUE ~ '^[a-z]+$');
        CREATE TABLE nested (id serial PRIMARY KEY, n small_positive NOT NULL, m small_positive, c short_code)""")
    spec = dbarch_constraints.spec("nested")
    assert spec.columns["n"].kind.name == "int" and spec.columns["c"].kind.max_len == 5
    seen: list[dict[str, Any]] = []

    @QUICK
    @given(dbarch_constraints.rows("nested"))
    def insert(row: dict[str, Any]) -> None:
        assert 0 < row["n"] < 10 and (row["m"] is None or 0 < row["m"] < 10)
        assert re.fullmatch("[a-z]{1,5}", row["c"])
        outcome = dbarch_constraints._probe.insert(spec, row)
        assert outcome.ok, (outcome.describe(), row)
        seen.append(row)

    insert()
    assert len({r["n"] for r in seen}) > 3
    findings = dbarch_constraints.check("nested")
    assert [f.title for f in findings if f.is_problem] == []
    [held] = [f for f in findings if f.rule == "constraints.rejects-violator"]
    for label in ("DOMAIN CHECK small_positive_check on n: refused with 23514",
                  "DOMAIN CHECK positive_check on n: refused with 23514",
                  "DOMAIN CHECK short_code_check on c: refused with 23514", "NOT NULL c: refused with 23502"):
        assert label in held.evidence, (label, held.evidence)


def test_an_exclusion_constraint_on_an_expression(dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    """``tsrange(starts, ends) WITH &&``: rows kept one after another never overlap, lists
    neither, and its violator is refused with 23P01."""
    dbarch_psycopg.execute("""
        CREATE TABLE meetings (id serial PRIMARY KEY, starts timestamp NOT NULL, ends timestamp NOT NULL,
                               CHECK (ends > starts), EXCLUDE USING gist (tsrange(starts, ends) WITH &&))""")
    spec = dbarch_constraints.spec("meetings")

    accepted_rows(dbarch_constraints, "meetings", keep=True, examples=40)  # kept: later rows must avoid it

    @settings(QUICK, max_examples=15)
    @given(dbarch_constraints.lists("meetings", min_size=2, max_size=4))
    def together(rows: list[dict[str, Any]]) -> None:
        with dbarch_psycopg.transaction(force_rollback=True):
            for row in rows:
                outcome = dbarch_constraints._probe.insert(spec, row, keep=True)
                assert outcome.ok, (outcome.describe(), rows)

    together()
    # The rows kept above may leave the time line little room for one more (the check says
    # so as a warning, tested below); the violators are built on an emptier table.
    dbarch_psycopg.execute("DELETE FROM meetings")
    findings = dbarch_constraints.check("meetings")
    assert [f.title for f in findings if f.is_problem] == []
    [held] = [f for f in findings if f.rule == "constraints.rejects-violator"]
    assert "EXCLUDE meetings_tsrange_excl: refused with 23P01" in held.evidence

    # One meeting over all of time: no row can be valid, so no violator can be built. That
    # is the generator's limit, not the table's defect: a warning that says so.
    dbarch_psycopg.execute("INSERT INTO meetings (starts, ends) VALUES ('-infinity', 'infinity')")
    crowded_findings = dbarch_constraints.check("meetings", settings=settings(QUICK, max_examples=3))
    [crowded] = [f for f in crowded_findings if f.rule == "constraints.rejects-violator"]
    assert crowded.status.value == "warning"
    assert crowded.title == "public.meetings: violators not checked: no valid row to build them from"
    assert "dbarch_constraints_skip = public.meetings: <why>" in crowded.fix


def test_exclusion_constraints_are_kept_and_refuse_violators(
        dbarch_psycopg: psycopg.Connection, dbarch_constraints: Any) -> None:
    dbarch_psycopg.execute("SAVEPOINT gist")
    try:
        dbarch_psycopg.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    except psycopg.Error as exc:
        dbarch_psycopg.execute("ROLLBACK TO SAVEPOINT gist")
        pytest.skip(f"btree_gist is not available on this PostgreSQL: {exc}")
    dbarch_psycopg.execute("""
        CREATE TABLE bookings (id serial PRIMARY KEY, room smallint NOT NULL CHECK (room BETWEEN 1 AND 3),
                               during tstzrange NOT NULL, cancelled boolean NOT NULL,
                               EXCLUDE USING gist (room WITH =, during WITH &&) WHERE (NOT cancelled));
        CREATE TABLE slots (id serial PRIMARY KEY, span int4range, EXCLUDE USING gist (span WITH &&))""")
    spec = dbarch_constraints.spec("bookings")
    [key] = [k for k in spec.uniques if k.kind == "exclusion"]
    assert key.comparisons == ("=", "&&") and key.predicate is not None and not key.plain
    assert dbarch_constraints.fill("bookings", 300) == 300
    assert dbarch_constraints.fill("slots", 200) == 200

    @settings(QUICK, max_examples=40)
    @given(dbarch_constraints.rows("bookings"))
    def insert(row: dict[str, Any]) -> None:
        outcome = dbarch_constraints._probe.insert(spec, row, keep=True)  # kept: later rows must avoid it
        assert outcome.ok, (outcome.describe(), row)

    insert()

    @settings(QUICK, max_examples=25)
    @given(dbarch_constraints.lists("slots", min_size=2, max_size=6))
    def overlapping_never(rows: list[dict[str, Any]]) -> None:
        """Ranges of one list never overlap each other (nor the 200 rows already there)."""
        slots = dbarch_constraints.spec("slots")
        with dbarch_psycopg.transaction(force_rollback=True):
            for row in rows:
                outcome = dbarch_constraints._probe.insert(slots, row, keep=True)
                assert outcome.ok, (outcome.describe(), rows)

    overlapping_never()
    findings = dbarch_constraints.check("bookings", "slots")
    assert [f.title for f in findings if f.is_problem] == []
    evidence = "\n".join(f.evidence for f in findings if f.rule == "constraints.rejects-violator")
    assert "EXCLUDE bookings_room_during_excl: refused with 23P01" in evidence
    assert "EXCLUDE slots_span_excl: refused with 23P01" in evidence


def test_a_database_check_refusing_null_is_stricter_only_where_the_models_allow_null(
        dbarch_psycopg: psycopg.Connection) -> None:
    """``rating IS NOT NULL AND rating BETWEEN 1 AND 5`` in the database, ``rating BETWEEN 1
    AND 5`` in the models: NULL passes the models' CHECK, so where the model column is
    nullable the application may write it and the database refuses (a warning, with the
    row); where the model column is NOT NULL it never sends NULL: silent."""
    from pytest_dbarch.constraints.api import Constraints

    dbarch_psycopg.execute("""
        CREATE TABLE reviews (id serial PRIMARY KEY, rating smallint
            CONSTRAINT rating_range CHECK (rating IS NOT NULL AND rating BETWEEN 1 AND 5))""")

    def models(nullable: bool) -> Any:
        class Base(DeclarativeBase):
            pass

        class Review(Base):
            __tablename__ = "reviews"
            __table_args__ = (CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),)
            id: Mapped[int] = mapped_column(primary_key=True)
            rating: Mapped[Optional[int]] = mapped_column(nullable=nullable)

        return Base.metadata

    def stricter(nullable: bool) -> list[Any]:
        api = Constraints(dbarch_psycopg, models=lambda: models(nullable), seed="null-gap")
        return [f for f in api.check("reviews") if f.rule == "constraints.database-check-stricter"]

    [found] = stricter(nullable=True)
    assert found.status.value == "warning", found.title
    assert found.title == ("public.reviews: rating=None refused by rating_range; models allow it "
                           "(rating BETWEEN 1 AND 5)")
    [silent] = stricter(nullable=False)
    assert silent.status.value == "passed", silent.title
