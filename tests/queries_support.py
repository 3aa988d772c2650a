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


def application_tests(pytester: pytest.Pytester, name: str, source: str, tests: str = "") -> None:
    """``source`` written as application code (``<name>.py``), its tests collected from
    ``test_<name>.py`` (which imports them, and adds ``tests``): the statements of test
    code itself never feed the N+1 rules or budgets, so the cases live in the application."""
    pytester.makepyfile(**{name: source, f"test_{name}": f"from {name} import *  # noqa: F403\n{tests}"})


# --- the same N+1 shapes on every driver (issue 14)
ASYNC_MODELS = MODELS.replace(
    "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship",
    "from sqlalchemy.ext.asyncio import AsyncAttrs\nfrom sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship",
).replace("class Base(DeclarativeBase):", "class Base(AsyncAttrs, DeclarativeBase):")

SEED = (
    "INSERT INTO accounts (name) SELECT 'a' || g FROM generate_series(1, 3) g; "
    "INSERT INTO contacts (account_id, email) SELECT a.id, a.name || '-' || g || '@x.test' "
    "FROM accounts a, generate_series(1, 2) g"
)

RECORDER = '''
import json
import pytest

RESULTS = {}


@pytest.fixture(autouse=True)
def _count(request, dbarch_queries):
    """After each test: its query count and round trips (the log is still there)."""
    yield
    RESULTS.setdefault(request.node.nodeid, {}).update(
        count=dbarch_queries.count, round_trips=dbarch_queries.round_trips,
        drivers=sorted({s.driver for s in dbarch_queries.queries}),
    )


def pytest_runtest_logreport(report):
    if report.when == "call":
        verdicts = [json.loads(v) for k, v in report.user_properties if k == "dbarch_finding"]
        RESULTS.setdefault(report.nodeid, {}).update(
            outcome=report.outcome,
            verdicts=sorted((f["rule"], f["status"], f["title"]) for f in verdicts if f["rule"].startswith("queries.")),
        )


def pytest_sessionfinish(session):
    with open("results.json", "w") as out:
        json.dump(RESULTS, out, indent=1, sort_keys=True)
'''
