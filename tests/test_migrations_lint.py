"""Lock-safety lint against a real PostgreSQL: every rule fires on its bad SQL and stays
silent on its safe recipe; severities follow the runtime facts.

Each test gets a fresh schema in one module database and drives the observer exactly
as a runner does (``lint_sql``: begin_revision, before/after each statement executed on
the connection, end_revision).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Finding, Status
from pytest_dbarch.migrations import facts
from pytest_dbarch.migrations.lint import RULES, LockSafetyLint, lint_sql
from pytest_dbarch.postgres.info import ServerInfo

SETUP = """
CREATE TABLE u (id int PRIMARY KEY);
INSERT INTO u SELECT g FROM generate_series(1, 10) g;
CREATE TABLE t (id int PRIMARY KEY, a int, b varchar(20), c text, d int NOT NULL DEFAULT 0, r int4range);
INSERT INTO t SELECT g, g, 'x', 'y', 0, int4range(g, g + 1) FROM generate_series(1, 10) g;
CREATE INDEX ix_t_a ON t (a);
CREATE TABLE nopk (id int NOT NULL);
INSERT INTO nopk VALUES (1), (2);
CREATE TABLE child (id int, u_id int REFERENCES u (id));
INSERT INTO child VALUES (1, 1);
CREATE TABLE empty (id int PRIMARY KEY, a int);
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE p (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);
INSERT INTO p VALUES (1, 1);
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
INSERT INTO alembic_version VALUES ('0001');
"""


@pytest.fixture(scope="module")
def lint_dsn(dbarch_server: ServerInfo) -> Iterator[str]:
    """A database of this module's own, dropped at the end."""
    name = f"dbarch_lint_{secrets.token_hex(4)}"
    with psycopg.connect(dbarch_server.dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield dbarch_server.dsn(name)
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def schema(lint_dsn: str) -> Iterator[str]:
    """A fresh schema holding SETUP (committed, not linted); the connections below use it."""
    name = f"s_{secrets.token_hex(4)}"
    with psycopg.connect(lint_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
        conn.execute(f"SET search_path = {name}")
        conn.execute(SETUP)
        try:
            yield name
        finally:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def connect(dsn: str, schema: str, autocommit: bool) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=autocommit, options=f"-c search_path={schema}")


def run(dsn: str, schema: str, script: str, autocommit: bool = False, **kwargs: Any) -> list[Finding]:
    with connect(dsn, schema, autocommit) as conn:
        return lint_sql(conn, script.replace("{schema}", schema), "r1", observers=[LockSafetyLint(**kwargs)])


def by_rule(findings: list[Finding]) -> dict[str, Finding]:
    return {f.rule.removeprefix("migrations.lint."): f for f in findings if f.is_problem}


F_, W_ = "failed", "warning"
# rule id, expected status on the bad SQL, bad SQL (autocommit?), safe SQL (autocommit?)
CASES: list[tuple[str, str, str, bool, str, bool]] = [
    (
        "require-concurrent-index-creation",
        F_,
        "CREATE INDEX ix2 ON t (c)",
        False,
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix2 ON t (c)",
        True,
    ),
    (
        "require-concurrent-index-deletion",
        F_,
        "DROP INDEX ix_t_a",
        False,
        "DROP INDEX CONCURRENTLY IF EXISTS ix_t_a",
        True,
    ),
    (
        "concurrently-in-transaction",
        F_,
        "SELECT 1; CREATE INDEX CONCURRENTLY ix3 ON t (c)",
        False,
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix3 ON t (c)",
        True,
    ),
    ("require-concurrent-reindex", F_, "REINDEX TABLE t", False, "REINDEX TABLE CONCURRENTLY t", True),
    (
        "index-after-exclusive-lock",
        F_,
        "ALTER TABLE t ADD COLUMN z int; CREATE INDEX ix5 ON t (z)",
        False,
        "ALTER TABLE t ADD COLUMN z int; CREATE INDEX CONCURRENTLY IF NOT EXISTS ix5 ON t (z)",
        True,
    ),
    (
        "add-column-volatile-default",
        F_,
        "ALTER TABLE t ADD COLUMN z timestamptz DEFAULT clock_timestamp()",
        False,
        "ALTER TABLE t ADD COLUMN z timestamptz DEFAULT now(); ALTER TABLE t ADD COLUMN y int DEFAULT 0",
        False,
    ),
    (
        "add-column-required",
        F_,
        "ALTER TABLE t ADD COLUMN z int NOT NULL",
        False,
        "ALTER TABLE t ADD COLUMN z int NOT NULL DEFAULT 0",
        False,
    ),
    (
        "set-not-null",
        F_,
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
        False,
        "ALTER TABLE t ADD CONSTRAINT a_nn CHECK (a IS NOT NULL) NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT a_nn;"
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL; ALTER TABLE t DROP CONSTRAINT a_nn",
        True,
    ),
    (
        "foreign-key-not-valid",
        F_,
        "ALTER TABLE t ADD CONSTRAINT t_u FOREIGN KEY (a) REFERENCES u (id)",
        False,
        "ALTER TABLE t ADD CONSTRAINT t_u FOREIGN KEY (a) REFERENCES u (id) NOT VALID;"
        "ALTER TABLE t VALIDATE CONSTRAINT t_u",
        True,
    ),
    (
        "check-not-valid",
        F_,
        "ALTER TABLE t ADD CONSTRAINT a_pos CHECK (a > 0)",
        False,
        "ALTER TABLE t ADD CONSTRAINT a_pos CHECK (a > 0) NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT a_pos",
        True,
    ),
    (
        "validate-in-same-transaction",
        F_,
        "ALTER TABLE t ADD CONSTRAINT a_pos CHECK (a > 0) NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT a_pos",
        False,
        "ALTER TABLE t ADD CONSTRAINT a_pos CHECK (a > 0) NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT a_pos",
        True,
    ),
    (
        "add-unique-constraint",
        F_,
        "ALTER TABLE t ADD CONSTRAINT t_uq UNIQUE (id, c)",
        False,
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_uq_ix ON t (id, c);"
        "ALTER TABLE t ADD CONSTRAINT t_uq UNIQUE USING INDEX t_uq_ix",
        True,
    ),
    (
        "add-primary-key",
        F_,
        "ALTER TABLE nopk ADD PRIMARY KEY (id)",
        False,
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS nopk_ix ON nopk (id);"
        "ALTER TABLE nopk ADD CONSTRAINT nopk_pkey PRIMARY KEY USING INDEX nopk_ix",
        True,
    ),
    (
        "add-exclusion-constraint",
        F_,
        "ALTER TABLE t ADD CONSTRAINT t_ex EXCLUDE USING gist (r WITH &&)",
        False,
        "CREATE TABLE booking (r int4range); ALTER TABLE booking ADD CONSTRAINT b_ex EXCLUDE USING gist (r WITH &&)",
        False,
    ),
    (
        "change-column-type",
        F_,
        "ALTER TABLE t ALTER COLUMN a TYPE bigint",
        False,
        "ALTER TABLE t ALTER COLUMN b TYPE text; ALTER TABLE t ALTER COLUMN c TYPE varchar",
        False,
    ),
    (
        "prefer-text-field",
        W_,
        "ALTER TABLE t ADD COLUMN z varchar(50)",
        False,
        "ALTER TABLE t ADD COLUMN z text",
        False,
    ),
    (
        "rename-column",
        W_,
        "ALTER TABLE t RENAME COLUMN c TO c2",
        False,
        "CREATE TABLE n (a int); ALTER TABLE n RENAME COLUMN a TO b",
        False,
    ),
    (
        "rename-table",
        W_,
        "ALTER TABLE t RENAME TO t2",
        False,
        "CREATE TABLE n (a int); ALTER TABLE n RENAME TO n2",
        False,
    ),
    (
        "rename-schema",
        W_,
        "CREATE SCHEMA {schema}_x; ALTER SCHEMA {schema}_x RENAME TO {schema}_y",
        False,
        "CREATE SCHEMA {schema}_x; ALTER SCHEMA {schema}_x OWNER TO CURRENT_USER; DROP SCHEMA {schema}_x",
        False,
    ),
    (
        "drop-column",
        F_,
        "ALTER TABLE t DROP COLUMN c",
        False,
        "CREATE TABLE n (a int, b int); ALTER TABLE n DROP COLUMN b",
        False,
    ),
    ("drop-table", F_, "DROP TABLE nopk", False, "CREATE TABLE n (a int); DROP TABLE n", False),
    (
        "drop-not-null",
        W_,
        "ALTER TABLE t ALTER COLUMN d DROP NOT NULL",
        False,
        "CREATE TABLE n (a int NOT NULL); ALTER TABLE n ALTER COLUMN a DROP NOT NULL",
        False,
    ),
    ("truncate-cascade", F_, "TRUNCATE u CASCADE", False, "TRUNCATE child", False),
    (
        "add-column-serial",
        F_,
        "ALTER TABLE t ADD COLUMN z bigserial",
        False,
        "ALTER TABLE t ADD COLUMN z bigint",
        False,
    ),
    (
        "add-column-generated-stored",
        F_,
        "ALTER TABLE t ADD COLUMN z int GENERATED ALWAYS AS (a * 2) STORED",
        False,
        "ALTER TABLE t ADD COLUMN z int",
        False,
    ),
    ("prefer-jsonb", W_, "ALTER TABLE t ADD COLUMN z json", False, "ALTER TABLE t ADD COLUMN z jsonb", False),
    (
        "require-enum-value-ordering",
        W_,
        "ALTER TYPE mood ADD VALUE 'ok'",
        False,
        "ALTER TYPE mood ADD VALUE 'ok' BEFORE 'happy'",
        False,
    ),
    (
        "rename-enum-value",
        W_,
        "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'",
        False,
        "ALTER TYPE mood ADD VALUE 'ok' AFTER 'sad'",
        False,
    ),
    (
        "domain-with-check",
        W_,
        "CREATE DOMAIN posint AS int CHECK (VALUE > 0)",
        False,
        "CREATE DOMAIN posint AS int",
        False,
    ),
    (
        "require-concurrent-partition-detach",
        F_,
        "ALTER TABLE p DETACH PARTITION p1",
        False,
        "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY",
        True,
    ),
    ("prefer-repack", F_, "VACUUM FULL t", True, "VACUUM (ANALYZE) t", True),
    (
        "require-lock-timeout",
        W_,
        "ALTER TABLE t ADD COLUMN z int",
        False,
        "SET lock_timeout = '2s'; ALTER TABLE t ADD COLUMN z int",
        False,
    ),
    (
        "require-statement-timeout",
        W_,
        "ALTER TABLE t ADD COLUMN z int",
        False,
        "SET LOCAL statement_timeout = '60s'; ALTER TABLE t ADD COLUMN z int",
        False,
    ),
    (
        "backfill-in-ddl-transaction",
        F_,
        "ALTER TABLE t ADD COLUMN z int; UPDATE t SET z = a",
        False,
        "ALTER TABLE t ADD COLUMN z int; UPDATE t SET z = a",
        True,
    ),
    (
        "prefer-robust-statements",
        W_,
        "CREATE INDEX CONCURRENTLY ix35 ON t (c)",
        True,
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix35 ON t (c)",
        True,
    ),
    ("transaction-nesting", F_, "BEGIN; BEGIN; SELECT 1; COMMIT", True, "BEGIN; SELECT 1; COMMIT", True),
]


def test_readme_lists_every_rule() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Migration lint", 1)[1].split("\n## ", 1)[0]
    listed = {line.split("`")[1] for line in section.splitlines() if line.startswith("| ") and "`" in line}
    assert listed == set(RULES)


def test_every_rule_has_a_case() -> None:
    covered = {case[0] for case in CASES}
    # index-corruption-pg14 needs PostgreSQL 14.0-14.3: test_concurrent_index_on_a_buggy_postgresql_14 fakes it
    assert set(RULES) - covered == {"index-corruption-pg14"}


@pytest.mark.parametrize(
    ("rule", "status", "bad", "bad_ac", "good", "good_ac"), CASES, ids=[c[0] for c in CASES]
)
def test_rule_flags_bad_sql_and_not_its_recipe(
    lint_dsn: str, schema: str, rule: str, status: str, bad: str, bad_ac: bool, good: str, good_ac: bool
) -> None:
    findings = by_rule(run(lint_dsn, schema, bad, bad_ac))
    assert rule in findings, f"{rule} not flagged; got {sorted(findings)}"
    finding = findings[rule]
    assert finding.status.value == status, finding
    assert finding.fix and "SQL: " in finding.evidence and "lock: " in finding.evidence
    assert finding.where.startswith("r1:")


@pytest.mark.parametrize(
    ("rule", "status", "bad", "bad_ac", "good", "good_ac"), CASES, ids=[c[0] for c in CASES]
)
def test_safe_recipe_is_not_flagged(
    lint_dsn: str, schema: str, rule: str, status: str, bad: str, bad_ac: bool, good: str, good_ac: bool
) -> None:
    findings = by_rule(run(lint_dsn, schema, good, good_ac))
    assert rule not in findings, findings.get(rule)


# --- runtime facts decide the severity -------------------------------------------------


def test_empty_table_is_a_warning_and_rows_make_it_fail(lint_dsn: str, schema: str) -> None:
    both = [
        f
        for f in run(lint_dsn, schema, "CREATE INDEX ix_e3 ON empty (a); CREATE INDEX ix_t3 ON t (c)")
        if f.rule.endswith("require-concurrent-index-creation")
    ]
    assert {(f.title.split(":")[0], f.status) for f in both} == {
        ("ix_e3", Status.WARNING),
        ("ix_t3", Status.FAILED),
    }
    assert "empty: empty" in both[0].evidence and "t: has rows" in both[1].evidence


def test_default_volatility_comes_from_pg_proc(lint_dsn: str, schema: str) -> None:
    """A user function is judged by its declared volatility; the rewrite is observed."""
    script = """
        CREATE FUNCTION pick_volatile() RETURNS int LANGUAGE plpgsql VOLATILE AS 'BEGIN RETURN 1; END';
        CREATE FUNCTION pick_immutable() RETURNS int LANGUAGE plpgsql IMMUTABLE AS 'BEGIN RETURN 1; END';
        CREATE FUNCTION inlined() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 1';
        ALTER TABLE t ADD COLUMN v int DEFAULT pick_volatile();
        ALTER TABLE t ADD COLUMN i int DEFAULT pick_immutable();
        ALTER TABLE t ADD COLUMN k text DEFAULT 'constant';
        ALTER TABLE t ADD COLUMN s int DEFAULT inlined();
    """  # inlined(): PostgreSQL folds the SQL body to a constant, so no rewrite happens
    hits = [f for f in run(lint_dsn, schema, script) if f.rule.endswith("add-column-volatile-default")]
    assert [f.title.split(":")[0] for f in hits] == ["t.v"]
    assert "pick_volatile" in hits[0].evidence and "table rewritten: yes" in hits[0].evidence


def test_before_postgresql_11_every_default_rewrites(
    lint_dsn: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server version is a runtime fact; pretend the server is 10 to see the rule move."""
    script = "ALTER TABLE t ADD COLUMN k text DEFAULT 'constant'"
    assert "add-column-volatile-default" not in by_rule(run(lint_dsn, schema, script))
    monkeypatch.setattr(facts, "server_version", lambda connection: 100023)
    flagged = by_rule(run(lint_dsn, schema, script.replace(" k ", " k2 ")))["add-column-volatile-default"]
    assert "100023 < 110000" in flagged.evidence


@pytest.mark.parametrize(("version", "flagged"), [(140002, True), (140004, False)])
def test_concurrent_index_on_a_buggy_postgresql_14(
    lint_dsn: str, schema: str, monkeypatch: pytest.MonkeyPatch, version: int, flagged: bool
) -> None:
    monkeypatch.setattr(facts, "server_version", lambda connection: version)
    findings = by_rule(run(lint_dsn, schema, "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_14 ON t (c)", True))
    assert ("index-corruption-pg14" in findings) is flagged
    if flagged:
        assert findings["index-corruption-pg14"].status is Status.WARNING
        assert f"server_version_num {version}" in findings["index-corruption-pg14"].evidence


def test_tables_created_in_the_same_revision_are_exempt(lint_dsn: str, schema: str) -> None:
    script = """
        CREATE TABLE fresh (id int, a int);
        INSERT INTO fresh VALUES (1, 1);
        CREATE INDEX ix_fresh ON fresh (a);
        ALTER TABLE fresh ALTER COLUMN a SET NOT NULL;
        ALTER TABLE fresh ADD COLUMN b int DEFAULT random();
    """
    findings = run(lint_dsn, schema, script)
    assert [f.rule for f in findings] == ["migrations.lint.lock-safety"]
    assert findings[0].status is Status.PASSED and "fresh" in findings[0].evidence
    # the same statements a revision later are flagged: the table existed before it
    later = by_rule(run(lint_dsn, schema, "ALTER TABLE fresh ALTER COLUMN b SET NOT NULL"))
    assert later["set-not-null"].status is Status.FAILED


def test_lint_leaves_the_transaction_as_it_found_it(lint_dsn: str, schema: str) -> None:
    """Fact reads neither open, end nor abort the migration's transaction."""
    from psycopg import pq

    lint = LockSafetyLint()
    with connect(lint_dsn, schema, autocommit=False) as conn:
        lint.begin_revision("r", conn)
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        conn.execute("ALTER TABLE t ADD COLUMN z int")
        from pytest_dbarch.migrations.observe import RanStatement

        ran = RanStatement("r", "ALTER TABLE no_such_table ALTER COLUMN a TYPE bigint")
        lint.before_statement(ran, conn)
        lint.after_statement(ran, conn, 0.0, None)
        assert conn.info.transaction_status == pq.TransactionStatus.INTRANS
        assert facts.table_facts(conn, "bad..name").oid is None  # to_regclass raises: the read fails alone
        assert conn.info.transaction_status == pq.TransactionStatus.INTRANS
        assert conn.execute("SELECT count(z) FROM t").fetchone() == (0,)  # the transaction still works
        assert conn.execute(
            "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'u'::regclass"
        ).fetchone() == (0,)  # facts' own locks released
        lint.end_revision("r", conn)
        conn.rollback()


# --- reading SQL ------------------------------------------------------------------------


def test_unparseable_sql_degrades_to_a_finding(lint_dsn: str, schema: str) -> None:
    findings = by_rule(run(lint_dsn, schema, "FROBNICATE TABLE t WITH VIGOUR"))
    unread = findings["unparseable-statement"]
    assert unread.status is Status.WARNING and "FROBNICATE" in unread.evidence
    unterminated = by_rule(run(lint_dsn, schema, "SELECT 'no end"))["unparseable-statement"]
    assert "unterminated" in unterminated.evidence


def test_each_subject_is_reported_once_per_revision(lint_dsn: str, schema: str) -> None:
    script = """
        CREATE TABLE a1 (name varchar(10));
        CREATE TABLE a2 (name varchar(10), nick varchar(5));
        ALTER TABLE t ADD COLUMN z1 int;
        ALTER TABLE u ADD COLUMN z2 int;
    """
    findings = [f for f in run(lint_dsn, schema, script) if f.is_problem]
    text = sorted(f.title for f in findings if f.rule.endswith("prefer-text-field"))
    # The title names every column (issue 13), one finding per statement.
    assert text == [
        "a1.name varchar(10): varchar(n) column",
        "a2.name varchar(10), a2.nick varchar(5): varchar(n) column",
    ]
    assert "name varchar(10), nick varchar(5)" in [f for f in findings if f.title.startswith("a2")][0].evidence
    assert len([f for f in findings if f.rule.endswith("require-lock-timeout")]) == 1


def test_inline_references_on_add_column_is_a_validated_foreign_key(lint_dsn: str, schema: str) -> None:
    flagged = by_rule(run(lint_dsn, schema, "ALTER TABLE t ADD COLUMN u_id int REFERENCES u (id)"))
    assert flagged["foreign-key-not-valid"].status is Status.FAILED
    assert "inline REFERENCES" in flagged["foreign-key-not-valid"].evidence


def test_commands_sqlglot_cannot_type_are_read_from_tokens(lint_dsn: str, schema: str) -> None:
    """CLUSTER fails to parse in sqlglot and multi-action ALTER TABLE mixes forms; both are read."""
    script = (
        "CLUSTER t USING ix_t_a; ALTER TABLE t ADD COLUMN z int DEFAULT random(), VALIDATE CONSTRAINT t_pkey"
    )
    findings = by_rule(run(lint_dsn, schema, script))
    assert findings["prefer-repack"].status is Status.FAILED
    assert findings["add-column-volatile-default"].status is Status.FAILED
    assert "unparseable-statement" not in findings


def test_routines_with_named_arguments_over_several_lines_are_read(lint_dsn: str, schema: str) -> None:
    """sqlglot refuses argument names in a DROP FUNCTION signature; the tokens read it,
    and a statement that cannot be read is titled on one line."""
    script = """
        CREATE FUNCTION pair_equal(new_val int, old_val int) RETURNS bool
            LANGUAGE sql IMMUTABLE AS $$ SELECT new_val = old_val $$;
        DROP FUNCTION "public".pair_equal(
            new_val int,
            old_val int
        );
    """
    findings = by_rule(run(lint_dsn, schema, script))
    assert "unparseable-statement" not in findings, findings.get("unparseable-statement")
    unread = by_rule(run(lint_dsn, schema, "FROBNICATE\n    TABLE t\n    WITH VIGOUR"))["unparseable-statement"]
    assert unread.title.startswith("FROBNICATE TABLE t WITH VIGOUR:"), unread.title


def test_version_bookkeeping_is_not_a_backfill(lint_dsn: str, schema: str) -> None:
    script = "ALTER TABLE t ADD COLUMN z int; UPDATE alembic_version SET version_num = '0002'"
    assert "backfill-in-ddl-transaction" not in by_rule(run(lint_dsn, schema, script))


def test_uncommitted_begin_is_reported(lint_dsn: str, schema: str) -> None:
    with connect(lint_dsn, schema, autocommit=True) as conn:
        findings = lint_sql(
            conn, "BEGIN; ALTER TABLE t ADD COLUMN z int", "r1", observers=[LockSafetyLint()], end="keep"
        )
        conn.rollback()
    flagged = by_rule(findings)["transaction-nesting"]
    assert flagged.status is Status.FAILED and "BEGIN without COMMIT" in flagged.title


# --- waivers and disabled rules ---------------------------------------------------------


def test_waiver_in_the_statement(lint_dsn: str, schema: str) -> None:
    script = (
        "-- dbarch: allow require-concurrent-index-creation because t is a 10-row lookup table\n"
        "CREATE INDEX ix_w ON t (c)"
    )
    findings = run(lint_dsn, schema, script)
    waived = [f for f in findings if f.rule.endswith("require-concurrent-index-creation")]
    assert [f.status for f in waived] == [Status.PASSED]
    assert "waived: t is a 10-row lookup table" in waived[0].title
    assert "require-concurrent-index-creation" not in by_rule(findings)


def test_waiver_in_the_migration_file(lint_dsn: str, schema: str, tmp_path: Path) -> None:
    migration = tmp_path / "0005_index.py"
    migration.write_text(
        "# dbarch: allow migrations.lint.require-concurrent-index-creation, require-lock-timeout "
        "because maintenance window\n"
        "op.create_index('ix_f', 't', ['c'])\n"
    )
    with connect(lint_dsn, schema, autocommit=False) as conn:
        findings = lint_sql(
            conn, "CREATE INDEX ix_f ON t (c)", "0005", observers=[LockSafetyLint()], where=str(migration)
        )
    problems = by_rule(findings)
    assert "require-concurrent-index-creation" not in problems and "require-lock-timeout" not in problems
    assert "require-statement-timeout" in problems  # not waived
    assert any(f.status is Status.PASSED and "maintenance window" in f.title for f in findings)


@pytest.mark.parametrize(
    ("comment", "cause"),
    [
        ("-- dbarch: allow require-concurrent-index-creation", "no reason given"),
        ("-- dbarch: allow no-such-rule because it is fine", "unknown rule(s) no-such-rule"),
    ],
)
def test_bad_waiver_is_a_finding_and_waives_nothing(
    lint_dsn: str, schema: str, comment: str, cause: str
) -> None:
    findings = by_rule(run(lint_dsn, schema, f"{comment}\nCREATE INDEX ix_b ON t (c)"))
    assert findings["bad-waiver"].status is Status.FAILED and cause in findings["bad-waiver"].title
    assert findings["require-concurrent-index-creation"].status is Status.FAILED
    # also on a statement nothing else flags
    quiet = by_rule(run(lint_dsn, schema, f"{comment}\nSELECT 1"))
    assert set(quiet) == {"bad-waiver"}


def test_disabled_rules(lint_dsn: str, schema: str) -> None:
    from pytest_dbarch.config import Settings

    script = "CREATE INDEX ix_d ON t (c)"
    findings = by_rule(
        run(lint_dsn, schema, script, ignore=["require-lock-timeout", "require-statement-timeout"])
    )
    assert set(findings) == {"require-concurrent-index-creation"}
    settings = Settings(migration_lint_ignore=("migrations.lint.require-concurrent-index-creation",))
    with connect(lint_dsn, schema, autocommit=False) as conn:
        quiet = by_rule(lint_sql(conn, script.replace("ix_d", "ix_d2"), observers=[LockSafetyLint(settings)]))
    assert "require-concurrent-index-creation" not in quiet and "require-lock-timeout" in quiet


def test_unknown_disabled_rule_is_a_clear_error() -> None:
    with pytest.raises(DbarchError, match="unknown rule.*no-such-rule") as info:
        LockSafetyLint(ignore=["no-such-rule"])
    assert "set-not-null" in info.value.fix
