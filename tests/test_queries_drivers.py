"""The same query checks on every driver: psycopg 3, psycopg2 and asyncpg (issue 14).

One inner session runs the N+1 shapes and the non-cases of the query tests on four
stacks (psycopg 3 sync, psycopg2 sync, psycopg 3 async, asyncpg async), each in its
own test file, and records per test the query count and the findings; the outer test
compares them across drivers.
"""

from __future__ import annotations

import json

import pytest

from tests.queries_support import ASYNC_MODELS, RECORDER, SCHEMA, SEED

SYNC_SHAPES = '''
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload

from models import Account, Contact

SEED = {seed!r}
{setup}

def test_lazy_one_to_many(session, seeded):
    for account in session.scalars(select(Account).order_by(Account.id)).all():
        len(account.contacts)


def test_lazy_many_to_one(session, seeded):
    for contact in session.scalars(select(Contact).order_by(Contact.id)).all():
        contact.account.name


def test_session_get_loop(session, seeded):
    for account_id in seeded:
        session.get(Account, account_id)


def test_raw_loop(raw, seeded):
    for account_id in seeded:
        {raw_select}


def test_selectinload(session, seeded):
    accounts = session.scalars(select(Account).options(selectinload(Account.contacts))).all()
    assert sum(len(a.contacts) for a in accounts) == 6


def test_executemany(raw):
    {raw_many}


def test_distinct_statements(session, seeded):
    for table in ("accounts", "contacts", "events"):
        session.execute(text(f"SELECT count(*) FROM {{table}}"))
'''

ASYNC_SHAPES = '''
import pytest
import pytest_asyncio
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import Account, Contact

SEED = {seed!r}
pytestmark = pytest.mark.asyncio
{setup}

async def test_lazy_one_to_many(session, seeded):
    for account in (await session.scalars(select(Account).order_by(Account.id))).all():
        len(await account.awaitable_attrs.contacts)


async def test_lazy_many_to_one(session, seeded):
    for contact in (await session.scalars(select(Contact).order_by(Contact.id))).all():
        (await contact.awaitable_attrs.account).name


async def test_session_get_loop(session, seeded):
    for account_id in seeded:
        await session.get(Account, account_id)


async def test_raw_loop(raw, seeded):
    for account_id in seeded:
        {raw_select}


async def test_selectinload(session, seeded):
    accounts = (await session.scalars(select(Account).options(selectinload(Account.contacts)))).all()
    assert sum(len(a.contacts) for a in accounts) == 6


async def test_executemany(raw):
    {raw_many}


async def test_distinct_statements(session, seeded):
    for table in ("accounts", "contacts", "events"):
        await session.execute(text(f"SELECT count(*) FROM {{table}}"))
'''

ROWS = "[(str(i),) for i in range(20)]"
VARIANTS = {
    "psycopg": (SYNC_SHAPES, '''
@pytest.fixture
def session(dbarch_session):
    return dbarch_session


@pytest.fixture
def raw(dbarch_psycopg):
    return dbarch_psycopg


@pytest.fixture
def seeded(raw):
    raw.execute(SEED)
    return [row[0] for row in raw.execute("SELECT id FROM accounts ORDER BY id").fetchall()]
''', 'raw.execute("SELECT email FROM contacts WHERE account_id = %s", (account_id,)).fetchall()',
        f'raw.cursor().executemany("INSERT INTO events (kind) VALUES (%s)", {ROWS})'),
    "psycopg2": (SYNC_SHAPES, '''
@pytest.fixture
def session(dbarch_psycopg2_engine):
    with Session(dbarch_psycopg2_engine) as session:
        yield session


@pytest.fixture
def raw(dbarch_psycopg2):
    return dbarch_psycopg2.cursor()


@pytest.fixture
def seeded(raw):
    raw.execute(SEED)
    raw.execute("SELECT id FROM accounts ORDER BY id")
    return [row[0] for row in raw.fetchall()]
''', 'raw.execute("SELECT email FROM contacts WHERE account_id = %s", (account_id,)); raw.fetchall()',
        f'raw.executemany("INSERT INTO events (kind) VALUES (%s)", {ROWS})'),
    "psycopg_async": (ASYNC_SHAPES, '''
@pytest_asyncio.fixture
async def session(dbarch_async_session):
    return dbarch_async_session


@pytest_asyncio.fixture
async def raw(session):
    return (await (await session.connection()).get_raw_connection()).driver_connection


@pytest_asyncio.fixture
async def seeded(raw):
    for statement in SEED.split("; "):
        await raw.execute(statement)
    return [row[0] for row in await (await raw.execute("SELECT id FROM accounts ORDER BY id")).fetchall()]
''', 'await (await raw.execute("SELECT email FROM contacts WHERE account_id = %s", (account_id,))).fetchall()',
        f'await raw.cursor().executemany("INSERT INTO events (kind) VALUES (%s)", {ROWS})'),
    "asyncpg": (ASYNC_SHAPES, '''
@pytest_asyncio.fixture
async def session(dbarch_asyncpg_engine):
    async with AsyncSession(dbarch_asyncpg_engine, expire_on_commit=False) as session:
        yield session


@pytest_asyncio.fixture
async def raw(dbarch_asyncpg):
    return dbarch_asyncpg


@pytest_asyncio.fixture
async def seeded(raw):
    await raw.execute(SEED)
    return [row[0] for row in await raw.fetch("SELECT id FROM accounts ORDER BY id")]
''', 'await raw.fetch("SELECT email FROM contacts WHERE account_id = $1", account_id)',
        f'await raw.executemany("INSERT INTO events (kind) VALUES ($1)", {ROWS})'),
}

#: Shape -> (statements counted, the N+1 rule expected, or None for a non-case).
EXPECTED = {
    "test_lazy_one_to_many": (4, "queries.nplusone-lazy-load"),
    "test_lazy_many_to_one": (4, "queries.nplusone-lazy-load"),
    "test_session_get_loop": (3, "queries.nplusone-repeated-query"),
    "test_raw_loop": (3, "queries.nplusone-repeated-query"),
    "test_selectinload": (2, None),
    "test_executemany": (1, None),
    "test_distinct_statements": (3, None),
}
#: The client library each stack's statements must be recorded by (never "sqlalchemy":
#: a hooked driver is never also captured at the engine).
DRIVER_OF = {"psycopg": "psycopg", "psycopg2": "psycopg2", "psycopg_async": "psycopg", "asyncpg": "asyncpg"}


def test_same_verdicts_and_counts_on_every_driver(external_pytester: pytest.Pytester) -> None:
    pytester = external_pytester
    pytester.makefile(".sql", schema=SCHEMA)
    pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(models=ASYNC_MODELS, conftest=RECORDER)
    for name, (template, setup, raw_select, raw_many) in VARIANTS.items():
        source = template.format(seed=SEED, setup=setup, raw_select=raw_select, raw_many=raw_many)
        pytester.makepyfile(**{f"test_{name}": source})
    result = pytester.runpytest("-p", "no:randomly", "--dbarch-nplusone=error")
    n_true = sum(1 for _, rule in EXPECTED.values() if rule)
    result.assert_outcomes(failed=n_true * len(VARIANTS), passed=(len(EXPECTED) - n_true) * len(VARIANTS))
    results = json.loads(pytester.path.joinpath("results.json").read_text())

    for shape, (count, rule) in EXPECTED.items():
        entries = {variant: results[f"test_{variant}.py::{shape}"] for variant in VARIANTS}
        assert {v: e["count"] for v, e in entries.items()} == dict.fromkeys(VARIANTS, count), shape
        assert {v: e["drivers"] for v, e in entries.items()} == {v: [DRIVER_OF[v]] for v in VARIANTS}, shape
        verdicts = {v: e["verdicts"] for v, e in entries.items()}
        assert all(found == verdicts["psycopg"] for found in verdicts.values()), (shape, verdicts)
        assert {v: e["outcome"] for v, e in entries.items()} == dict.fromkeys(
            VARIANTS, "failed" if rule else "passed"), shape
        rules = {r for r, status, _ in verdicts["psycopg"] if status != "passed"}
        assert rules == ({rule} if rule else set()), (shape, verdicts["psycopg"])
    # The two implicit-transaction stacks also agree on round trips (asyncpg's explicit
    # transaction() blocks add SAVEPOINTs where psycopg sends nothing, so it may differ).
    for shape in EXPECTED:
        assert results[f"test_psycopg.py::{shape}"]["round_trips"] == results[f"test_psycopg2.py::{shape}"]["round_trips"]
    result.stdout.fnmatch_lines([
        "*FAIL ?queries.nplusone-lazy-load? N+1: Contact.account lazy-loaded for 3 parents (3 queries) at test_asyncpg.py:*",
        "*fix: load it with the parent rows: .options(joinedload(Contact.account)) on the query that loads Contact",
    ])
