"""Parity between the models and the database (K09-K12), and the ORM's cascades against
the foreign keys (K08, D01), in an inner session whose template ``create_all`` builds
from the same models: silent there, then each defect planted in the test's transaction."""

from __future__ import annotations

import pytest

MODELS = '''
from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, Numeric, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from datetime import datetime
from sqlalchemy import DateTime


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("rating BETWEEN 1 AND 5", name="ck_rating"),
        Index("ux_accounts_email_live", "email", unique=True, postgresql_where=text("deleted_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    email: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(Enum("open", "closed", name="account_status"))
    tier: Mapped[str] = mapped_column(Enum("free", "paid", native_enum=False))
    balance: Mapped[float] = mapped_column(Numeric(12, 2))
    rating: Mapped[int | None]
    doc: Mapped[dict | None] = mapped_column(JSONB)
    seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    contacts: Mapped[list["Contact"]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class Contact(Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    note: Mapped[str | None] = mapped_column(Text)


class AccountName(Base):
    """Mapped to a view in the database (a table in the template create_all builds)."""
    __tablename__ = "account_names"
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    label: Mapped[str] = mapped_column(String(80))
'''

SLOPPY = '''
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    contacts: Mapped[list["Contact"]] = relationship()  # no cascade: deletes null account_id


class Contact(Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True, unique=True)
'''

TESTS = '''
from sqlalchemy import select

from models import Account

MODEL_RULES = ["schema.model-*", "schema.orm-*"]


def titles(findings):
    return sorted((f.rule, f.status.value, f.title) for f in findings)


def test_models_and_database_agree(dbarch_schema_lint):
    assert dbarch_schema_lint(rules=MODEL_RULES + ["schema.orm-hygiene = on"]) == []


def test_planted_drift(dbarch_psycopg, dbarch_schema_lint):
    dbarch_psycopg.execute(\"\"\"
        ALTER TABLE accounts ALTER COLUMN email DROP NOT NULL;
        ALTER TABLE accounts ALTER COLUMN email TYPE varchar(100);
        ALTER TABLE accounts DROP CONSTRAINT accounts_name_key;
        DROP INDEX ux_accounts_email_live;
        ALTER TABLE accounts ALTER COLUMN balance TYPE numeric(10, 2);
        ALTER TABLE accounts ALTER COLUMN seen_at TYPE timestamp;
        ALTER TABLE accounts ALTER COLUMN tier TYPE varchar(40);
        ALTER TABLE accounts DROP CONSTRAINT ck_rating;
        ALTER TABLE accounts ADD CONSTRAINT ck_rating CHECK (rating >= 1 AND rating <= 5);
        ALTER TYPE account_status RENAME TO account_status_old;
        CREATE TYPE account_status AS ENUM ('open');
        ALTER TABLE accounts ALTER COLUMN status TYPE account_status USING status::text::account_status;
        ALTER TABLE accounts ALTER COLUMN rating SET NOT NULL;
        ALTER TABLE accounts ADD COLUMN legacy_code text NOT NULL;
        ALTER TABLE accounts ADD COLUMN note text;
        ALTER TABLE contacts DROP COLUMN note;
        ALTER TABLE contacts DROP CONSTRAINT contacts_account_id_fkey;
        ALTER TABLE contacts ADD CONSTRAINT contacts_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts;
        CREATE TABLE legacy (id int PRIMARY KEY);
    \"\"\")
    assert titles(dbarch_schema_lint(rules=MODEL_RULES)) == [
        ("schema.model-missing", "failed", "column public.contacts.note is in the models but not in the database"),
        ("schema.model-nullable", "failed", "public.accounts.email is NOT NULL in the models but nullable in the database"),
        ("schema.model-nullable", "failed", "public.accounts.rating is nullable in the models but NOT NULL in the database"),
        ("schema.model-type", "warning", "public.accounts.balance differs from the models in precision: the models say numeric(12, 2), the database numeric(10,2)"),
        ("schema.model-type", "warning", "public.accounts.email differs from the models in length: the models say 255, the database 100 (character varying(100))"),
        ("schema.model-type", "warning", "public.accounts.seen_at differs from the models in the models say TIMESTAMP WITH TIME ZONE, the database has timestamp without time zone"),
        ("schema.model-type", "warning", "public.accounts.status differs from the models in the models' enum has values the database type account_status lacks: closed"),
        ("schema.model-unique", "failed", "the models declare public.accounts(email) unique (ux_accounts_email_live); the database does not"),
        ("schema.model-unique", "failed", "the models declare public.accounts(name) unique; the database does not"),
        ("schema.model-unmapped", "failed", "column public.accounts.legacy_code is in the database but not in the models (NOT NULL without a default: every insert through the models fails)"),
        ("schema.model-unmapped", "warning", "column public.accounts.note is in the database but not in the models"),
        ("schema.model-unmapped", "warning", "table public.legacy is in the database but not in the models"),
        ("schema.orm-cascade", "failed", "Account.contacts has cascade delete with passive_deletes=True, but contacts_account_id_fkey is ON DELETE NO ACTION"),
    ]


def test_missing_table_and_partial_unique(dbarch_psycopg, dbarch_schema_lint):
    dbarch_psycopg.execute(\"\"\"
        DROP TABLE contacts;
        DROP INDEX ux_accounts_email_live;
        CREATE UNIQUE INDEX ux_accounts_email_paid ON accounts (email) WHERE tier = 'paid';
    \"\"\")
    assert titles(dbarch_schema_lint(rules=["schema.model-missing", "schema.model-unique"])) == [
        ("schema.model-missing", "failed", "table public.contacts is in the models but not in the database"),
    ]  # two partial unique indexes are not compared by their predicates' text


def test_views_are_compared_by_presence(dbarch_psycopg, dbarch_schema_lint):
    dbarch_psycopg.execute(
        "DROP TABLE account_names; CREATE VIEW account_names AS SELECT name, name AS label FROM accounts"
    )
    assert dbarch_schema_lint(rules=MODEL_RULES) == []  # a view's columns are all nullable, unindexed
    dbarch_psycopg.execute("DROP VIEW account_names")
    assert titles(dbarch_schema_lint(rules=["schema.model-missing"])) == [
        ("schema.model-missing", "failed", "table public.account_names is in the models but not in the database"),
    ]


def test_sloppy_relationships(dbarch_psycopg, dbarch_schema_lint):
    dbarch_psycopg.execute("CREATE UNIQUE INDEX ux_contacts_account_id ON contacts (account_id)")
    found = titles(dbarch_schema_lint(models="sloppy:Base", rules=["schema.orm-cascade", "schema.orm-hygiene = on"]))
    assert found == [
        ("schema.orm-cascade", "warning", "deleting a Account that has contacts fails: without cascade delete the ORM sets public.contacts(account_id) to NULL, which is NOT NULL"),
        ("schema.orm-hygiene", "warning", "Account.contacts is a list, but public.contacts(account_id) is unique: at most one child"),
    ]


def test_jsonb_filter_from_the_orm(dbarch_session, dbarch_schema_lint):
    dbarch_session.execute(select(Account.id).where(Account.doc["plan"].astext == "gold")).all()
    (finding,) = dbarch_schema_lint(rules=["schema.jsonb-unindexed-filter"], queries="test")
    assert finding.title == (
        "public.accounts.doc is filtered by doc ->> 'plan' = in the application's queries, with no index for it"
    )
    assert finding.fix.startswith("CREATE INDEX CONCURRENTLY ix_accounts_doc_plan ON accounts ((doc ->> 'plan'));")
'''


def test_parity_and_cascades(external_pytester: pytest.Pytester) -> None:
    pytester = external_pytester
    pytester.makepyfile(models=MODELS, sloppy=SLOPPY, test_parity=TESTS)
    # sloppy's contacts.account_id is NOT NULL and unique in the template (create_all of both
    # would clash), so the template is built from the good models with the same shape.
    pytester.makeini("[pytest]\npythonpath = .\ndbarch_metadata = models:Base.metadata\n")
    result = pytester.runpytest("--dbarch-report-dir", "off", "-p", "no:randomly")
    result.assert_outcomes(passed=6)
