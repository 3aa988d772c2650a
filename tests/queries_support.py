"""An inner project for the query tests: two related tables and their ORM models."""

from __future__ import annotations

import pytest

SCHEMA = """
CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE contacts (id serial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts(id), email text);
CREATE TABLE events (id serial PRIMARY KEY, kind text NOT NULL);
"""

MODELS = '''
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    contacts: Mapped[list["Contact"]] = relationship(back_populates="account")


class Contact(Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    email: Mapped[str | None]
    account: Mapped[Account] = relationship(back_populates="contacts")
'''

CONFTEST = '''
import pytest


@pytest.fixture
def seeded(dbarch_psycopg, dbarch_session):
    """3 accounts with 2 contacts each, written outside the test's call phase."""
    dbarch_psycopg.execute("INSERT INTO accounts (name) SELECT 'a' || g FROM generate_series(1, 3) g")
    dbarch_psycopg.execute(
        "INSERT INTO contacts (account_id, email) SELECT a.id, a.name || '-' || g || '@x.test' "
        "FROM accounts a, generate_series(1, 2) g"
    )
    return dbarch_session
'''


def project(pytester: pytest.Pytester, ini: str = "") -> None:
    pytester.makefile(".sql", schema=SCHEMA)
    pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\nasyncio_default_fixture_loop_scope = function\n" + ini)
    pytester.makepyfile(models=MODELS, conftest=CONFTEST)
