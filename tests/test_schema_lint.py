"""Schema lint: the policy (severities, opt-in, waivers, bad values), the fixture, and
the rules whose evidence a case file cannot hold: a failed CREATE INDEX CONCURRENTLY,
real traffic for the statistics rules, and the application's models."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Status
from pytest_dbarch.postgres.catalog import Catalog
from pytest_dbarch.schema_lint import BY_ID, lint, options
from pytest_dbarch.schema_lint.options import LintOptions, Waiver
from pytest_dbarch.schema_lint.rule import Rule, Schema, Violation
from pytest_dbarch.schema_lint.stats import Stats


def severity(opts: LintOptions, rule: str) -> str | None:
    found = opts.severity(BY_ID[rule])
    return found.value if found else None


def test_severities_opt_in_and_strict_mode() -> None:
    defaults = LintOptions()
    assert severity(defaults, "schema.primary-key") == "failed"
    assert severity(defaults, "schema.fk-index") == "warning"
    assert severity(defaults, "schema.serial-column") is None  # opt-in
    strict = options.from_values({"rules": ["schema.* = failed", "schema.serial-column = on"]})
    assert severity(strict, "schema.fk-index") == "failed"
    assert severity(strict, "schema.enum-type") is None  # a glob never turns an opt-in rule on
    assert severity(strict, "schema.serial-column") == "warning"  # 'on' after the glob: its default
    tuned = options.from_values({"rules": "schema.primary-key = warning\nschema.fk-index = off"})
    assert severity(tuned, "schema.primary-key") == "warning"
    assert severity(tuned, "schema.fk-index") is None
    only = options.from_values({"rules": ["fk-index", "schema.enum-type"]})  # bare ids select
    assert severity(only, "schema.fk-index") == "warning"
    assert severity(only, "schema.enum-type") == "warning"
    assert severity(only, "schema.primary-key") is None
    # a policy value turns its opt-in rule on
    assert severity(options.from_values({"strings": "text"}), "schema.string-type") == "warning"
    assert severity(options.from_values({"naming": ["table = ^[a-z_]+$"]}), "schema.naming") == "warning"
    assert severity(options.from_values({"required_columns": ["created_at"]}), "schema.required-columns") == "warning"


def test_waivers_match_tables_objects_and_globs() -> None:
    on_column = Violation("public.contacts", "t", names=("account_id", "fk_contacts_account"))
    on_function = Violation("", "t", names=("grant_admin",))
    assert Waiver("schema.fk-index", "contacts").covers("schema.fk-index", on_column)
    assert Waiver("schema.fk-index", "public.contacts").covers("schema.fk-index", on_column)
    assert Waiver("schema.fk-index", "contacts.account_id").covers("schema.fk-index", on_column)
    assert Waiver("schema.fk-index", "public.contacts.account_id").covers("schema.fk-index", on_column)
    assert Waiver("schema.fk-index", "fk_contacts_*").covers("schema.fk-index", on_column)
    assert Waiver("*", "contacts").covers("schema.fk-index", on_column)
    assert not Waiver("schema.fk-index", "accounts").covers("schema.fk-index", on_column)
    assert not Waiver("schema.primary-key", "contacts").covers("schema.fk-index", on_column)
    assert Waiver("schema.security-*", "grant_admin").covers("schema.security-definer-search-path", on_function)
    parsed = options.parse_ignore(["schema.fk-index audit_log.row_id append-only, never deleted"], "x")
    assert parsed == (Waiver("schema.fk-index", "audit_log.row_id", "append-only, never deleted"),)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rules": ["schema.fk-index = loud"]}, "gives the severity 'loud'"),
        ({"rules": ["schema.no-such-rule = off"]}, "no schema-lint rule matches 'schema.no-such-rule'"),
        ({"ignore": ["schema.fk-index"]}, "names no object"),
        ({"naming": ["table = ([a-z"]}, "is not a regular expression"),
        ({"naming": ["tables = ^x$"]}, "is not '<kind> = <regex>'"),
        ({"strings": "nvarchar"}, "dbarch_schema_lint_strings is 'nvarchar'"),
        ({"stats": "sometimes"}, "dbarch_schema_lint_stats is 'sometimes'"),
    ],
)
def test_bad_policy_is_one_clear_error(values: dict[str, Any], message: str) -> None:
    with pytest.raises(DbarchError, match=message.replace("(", r"\(").replace("[", r"\[")) as caught:
        options.from_values(values, prefix="dbarch_schema_lint_")
    assert caught.value.fix


def test_a_rule_that_raises_is_an_error_finding_not_a_crash() -> None:
    def broken(schema: Schema, opts: LintOptions) -> list[Violation]:
        raise KeyError("boom")

    def fine(schema: Schema, opts: LintOptions) -> list[Violation]:
        return [Violation("public.t", "t is wrong", fix="fix t")]

    rules = (Rule("schema.broken", "Z1", Status.FAILED, "why", "clean", broken),
             Rule("schema.fine", "Z2", Status.WARNING, "why", "clean", fine))
    result = lint.check(Schema(Catalog()), LintOptions(), rules)
    assert [(f.rule, f.status.value) for f in result.findings] == [("schema.broken", "error"), ("schema.fine", "warning")]
    assert "could not run: KeyError" in result.findings[0].title
    assert result.failed() == [result.findings[0]]


def test_statistics_window_decides_auto() -> None:
    assert not Stats(window_seconds=3600).usable("auto", 7)  # reset an hour ago (pghero#140)
    assert Stats(window_seconds=30 * 86400).usable("auto", 7)
    assert Stats(window_seconds=0).usable("on", 7)
    assert not Stats(window_seconds=30 * 86400).usable("off", 7)


SCHEMA = """
CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE contacts (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts, note text);
CREATE TABLE audit (at timestamp, what text);
"""


def test_fixture_policy_waivers_and_attached_findings(
    request: pytest.FixtureRequest, dbarch_psycopg: psycopg.Connection, dbarch_schema_lint: Any
) -> None:
    dbarch_psycopg.execute(SCHEMA)
    problems = dbarch_schema_lint()
    by_rule = {f.rule: f for f in problems}
    assert by_rule["schema.primary-key"].title == "public.audit has no primary key"
    assert by_rule["schema.primary-key"].status is Status.FAILED
    assert by_rule["schema.primary-key"].fix == "ALTER TABLE audit ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;"
    assert by_rule["schema.fk-index"].fix == "CREATE INDEX CONCURRENTLY ix_contacts_account_id ON contacts (account_id);"
    assert "why: " in by_rule["schema.fk-index"].evidence
    assert all(f.is_problem for f in problems)
    # every finding, passed ones too, is attached to the test for the summary and report
    attached = [v for k, v in request.node.user_properties if k == "dbarch_finding"]
    assert len(attached) > len(problems) and any('"status": "passed"' in v for v in attached)

    waived = dbarch_schema_lint(ignore=["schema.primary-key audit legacy import table", "* contacts.account_id"],
                                rules={"schema.timestamp-without-tz": "off"})
    assert {f.rule for f in waived} == {"schema.all-columns-nullable"}
    only = dbarch_schema_lint(rules=["schema.fk-index"])
    assert [f.rule for f in only] == ["schema.fk-index"]
    with pytest.raises(pytest.fail.Exception, match="unknown schema-lint option 'severity'"):
        dbarch_schema_lint(severity="strict")
    with pytest.raises(pytest.fail.Exception, match="no schema-lint rule matches 'schema.fk-indexes'"):
        dbarch_schema_lint(rules=["schema.fk-indexes"])


def test_titles_survive_the_secret_scrubber(dbarch_psycopg: psycopg.Connection, dbarch_schema_lint: Any) -> None:
    """Outputs mask 'token: value'-shaped text; titles never put a name before a colon."""
    from pytest_dbarch.report.scrub import scrub_finding

    dbarch_psycopg.execute("""
        CREATE TABLE users (id bigint PRIMARY KEY);
        CREATE TABLE api_tokens (id int PRIMARY KEY, user_id int, secret_key text, password_hash text,
            issued timestamp, FOREIGN KEY (user_id) REFERENCES users NOT VALID);
        CREATE INDEX ix_a ON api_tokens (secret_key); CREATE INDEX ix_b ON api_tokens (secret_key);
    """)
    findings = dbarch_schema_lint(rules={"schema.missing-comment": "on", "schema.numbered-columns": "on"})
    assert len(findings) >= 6
    for finding in findings:
        assert scrub_finding(finding).title == finding.title


def test_fixture_refuses_an_aborted_transaction(dbarch_psycopg: psycopg.Connection, dbarch_schema_lint: Any) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        dbarch_psycopg.execute("SELECT 1 / 0")
    with pytest.raises(pytest.fail.Exception, match="the test's transaction is aborted"):
        dbarch_schema_lint()
    dbarch_psycopg.rollback()
    dbarch_schema_lint()  # readable again


@pytest.mark.dbarch(isolation="clone")
def test_invalid_index_from_a_failed_concurrent_build(dbarch_psycopg: psycopg.Connection, dbarch_schema_lint: Any) -> None:
    dbarch_psycopg.autocommit = True
    dbarch_psycopg.execute("CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL)")
    dbarch_psycopg.execute("INSERT INTO users VALUES (1, 'a@example.com'), (2, 'a@example.com')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        dbarch_psycopg.execute("CREATE UNIQUE INDEX CONCURRENTLY ux_users_email ON users (email)")
    (finding,) = dbarch_schema_lint(rules=["schema.invalid-index"])
    assert finding.status is Status.FAILED
    assert finding.title == ("index ux_users_email on public.users is invalid (a failed or unfinished "
                             "CREATE INDEX CONCURRENTLY)")
    assert finding.fix.startswith("REINDEX INDEX CONCURRENTLY ux_users_email;")
    assert "a unique one may also have failed on duplicate rows" in finding.evidence
    dbarch_psycopg.execute("DELETE FROM users WHERE id = 2")
    dbarch_psycopg.execute("REINDEX INDEX CONCURRENTLY ux_users_email")
    assert dbarch_schema_lint(rules=["schema.invalid-index"]) == []


@pytest.mark.dbarch(isolation="clone")
def test_statistics_rules_on_real_traffic(dbarch_psycopg: psycopg.Connection, dbarch_schema_lint: Any) -> None:
    conn = dbarch_psycopg
    conn.autocommit = True
    conn.execute("CREATE TABLE big (id bigint PRIMARY KEY, code text, val int) WITH (autovacuum_enabled = false)")
    conn.execute("INSERT INTO big SELECT g, md5(g::text), g % 100 FROM generate_series(1, 30000) g")
    conn.execute("CREATE INDEX ix_big_code ON big (code)")
    for i in range(120):
        conn.execute("SELECT count(*) FROM big WHERE val = %s", (i % 100,)).fetchone()
    conn.execute("DELETE FROM big WHERE id % 5 < 2")
    conn.execute("SELECT pg_stat_force_next_flush()")
    rules = ["schema.seq-scan-heavy", "schema.unused-index", "schema.bloat"]
    # a fresh test database: the statistics rules do not run unless forced
    assert dbarch_schema_lint(rules=rules) == []
    found = {f.rule: f for f in dbarch_schema_lint(rules=rules, stats="on")}
    assert found["schema.seq-scan-heavy"].title.startswith("public.big had 12") and "sequential scans vs 0 index scans" in found["schema.seq-scan-heavy"].title
    assert found["schema.unused-index"].title.startswith("index ix_big_code on public.big (1 MB) was never used since the statistics began")
    assert found["schema.unused-index"].fix.startswith("DROP INDEX CONCURRENTLY ix_big_code;")
    assert found["schema.bloat"].title == "40% of the rows of public.big are dead (12,000)"


def test_models_that_fail_to_import_are_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Written with tmp_path, not pytester: pytester restores sys.modules afterwards, which
    # would unload SQLAlchemy modules first imported here and break later in-process tests.
    from pytest_dbarch.models import ModelsError
    from pytest_dbarch.schema_lint import intent

    (tmp_path / "lint_broken_models.py").write_text("class User:\n    items: list[Item] = []\n")
    (tmp_path / "lint_mapped_models.py").write_text(textwrap.dedent("""
        from sqlalchemy import ForeignKey
        from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

        class Base(DeclarativeBase):
            pass

        class Owner(Base):
            __tablename__ = "owners"
            id: Mapped[int] = mapped_column(primary_key=True)
            pets: Mapped[list["Pet"]] = relationship()

        class Pet(Base):
            __tablename__ = "pets"
            id: Mapped[int] = mapped_column(primary_key=True)
            owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelsError, match="importing it raised NameError: name 'Item' is not defined"):
        intent.load("lint_broken_models:User", "dbarch_models")
    # the mappers are found whether the base or its metadata is named
    assert {m.class_.__name__ for m in intent.load("lint_mapped_models:Base.metadata").mappers} == {"Owner", "Pet"}
    assert {m.class_.__name__ for m in intent.load("lint_mapped_models:Base").mappers} == {"Owner", "Pet"}
