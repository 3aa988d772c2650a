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
        # The cases are application code; the test modules only collect them.
        pytester.makepyfile(**{f"app_{name}": source, f"test_{name}": f"from app_{name} import *  # noqa: F403"})
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
        "*FAIL ?queries.nplusone-lazy-load? N+1: Contact.account lazy-loaded for 3 parents (3 queries) at app_asyncpg.py:*",
        "*fix: load it with the parent rows: .options(joinedload(Contact.account)) on the query that loads Contact",
    ])


LOOKUPS = '''
from sqlalchemy import select

from models import Account


def names(session, ids):
    for account_id in ids:
        session.execute(select(Account.name).where(Account.id == account_id))
'''

RAW_APIS = '''
import io

import psycopg
import psycopg2
import psycopg2.extras
import pytest
from psycopg2.extras import execute_values  # bound at import: hooked all the same
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

import lookups
from models import Account


def plain(url):
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_psycopg2_cursors_batches_copy_and_commit(dbarch_psycopg2, dbarch_queries):
    cur = dbarch_psycopg2.cursor()
    cur.execute("INSERT INTO accounts (name) VALUES (%(name)s) RETURNING id", {"name": "acme"})
    cur.executemany("INSERT INTO events (kind) VALUES (%s)", ((str(i),) for i in range(4)))
    execute_values(cur, "INSERT INTO events (kind) VALUES %s", [(str(i),) for i in range(250)], page_size=100)
    psycopg2.extras.execute_batch(cur, "UPDATE events SET kind = %s WHERE kind = %s", [("x", "1"), ("y", "2")])
    rows = dbarch_psycopg2.cursor(cursor_factory=psycopg2.extras.RealDictCursor)
    rows.execute("SELECT name FROM accounts WHERE name = %s", ("acme",))
    assert rows.fetchone()["name"] == "acme"
    cur.copy_expert("COPY events (kind) TO STDOUT", io.StringIO())
    cur.copy_from(io.StringIO("y\\nz\\n"), "events", columns=("kind",))
    with dbarch_psycopg2:  # commits at the end of the block: a savepoint here
        cur.execute("SELECT 1")
    queries = dbarch_queries.queries
    assert [(q.kind, q.many) for q in queries] == [
        ("insert", 0), ("insert", 4), ("insert", 250), ("update", 2), ("select", 0), ("other", 0), ("other", 0),
        ("select", 0)]
    assert queries[2].sql == "INSERT INTO events (kind) VALUES %s"  # three pages, one batched statement
    assert queries[0].rows == 1 and queries[0].shown_params() == "name='acme'"
    assert queries[6].sql == "COPY events FROM STDIN" and queries[6].rows == 2
    assert {q.driver for q in queries} == {"psycopg2"}
    assert all(q.where.startswith("test_raw.py:") for q in queries)
    assert [(s.sql, s.origin) for s in dbarch_queries.statements if s.kind == "tx"] == [
        ("RELEASE SAVEPOINT dbarch_test; SAVEPOINT dbarch_test", "transaction")]


def test_psycopg2_connection_the_code_opens_itself(dbarch_url, dbarch_queries):
    conn = psycopg2.connect(plain(dbarch_url))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM accounts")
        conn.rollback()
    finally:
        conn.close()
    assert [s.sql for s in dbarch_queries.statements] == ["BEGIN", "SELECT count(*) FROM accounts", "ROLLBACK"]
    assert dbarch_queries.count == 1 and dbarch_queries.round_trips == 3


@pytest.mark.dbarch(isolation="clone")  # the engine below commits for real
def test_sqlalchemy_on_a_driver_not_hooked_is_captured_at_the_engine(dbarch_url, dbarch_queries):
    dsn = plain(dbarch_url)
    engine = create_engine("postgresql+psycopg2://", creator=lambda: psycopg2.extensions.connection(dsn))
    with Session(engine) as session:
        lookups.names(session, (1, 2, 3))  # the application's loop: an N+1
        session.execute(text("INSERT INTO events (kind) VALUES (:kind)"), [{"kind": "a"}, {"kind": "b"}])
        session.commit()
    engine.dispose()
    queries = dbarch_queries.queries
    assert [(q.kind, q.many, q.driver) for q in queries] == [
        ("select", 0, "sqlalchemy")] * 3 + [("insert", 2, "sqlalchemy")]
    assert [s.sql for s in dbarch_queries.statements if s.kind == "tx"] == ["BEGIN", "COMMIT"]
    assert queries[0].where.startswith("lookups.py:")
    assert [f.rule for f in dbarch_queries.nplusone()] == ["queries.nplusone-repeated-query"]


@pytest.mark.asyncio
async def test_asyncpg_connection_and_prepared_statements(dbarch_asyncpg, dbarch_queries):
    conn = dbarch_asyncpg
    await conn.execute("INSERT INTO accounts (name) VALUES ($1)", "acme")
    await conn.fetch("SELECT id FROM accounts WHERE name = $1", "acme")
    await conn.fetchrow("SELECT id FROM accounts")
    await conn.fetchval("SELECT count(*) FROM accounts")
    await conn.executemany("INSERT INTO events (kind) VALUES ($1)", [("a",), ("b",)])
    statement = await conn.prepare("SELECT kind FROM events WHERE kind = $1")
    await statement.fetch("a")
    await statement.fetchrow("b")
    await statement.fetchval("zzz")
    await conn.copy_records_to_table("events", records=[("c",), ("d",)], columns=["kind"])
    await conn.copy_from_query("SELECT kind FROM events WHERE kind > $1", "a", output=io.BytesIO())
    async with conn.transaction():  # a savepoint inside the test's transaction
        async for row in conn.cursor("SELECT kind FROM events"):
            pass
    queries = dbarch_queries.queries
    assert [(q.kind, q.many, q.rows) for q in queries] == [
        ("insert", 0, 1), ("select", 0, 1), ("select", 0, 1), ("select", 0, 1), ("insert", 2, -1),
        ("select", 0, 1), ("select", 0, 1), ("select", 0, 0), ("other", 0, 2), ("other", 0, 3),
        ("select", 0, -1)]
    assert queries[8].sql == "COPY events FROM STDIN" and queries[9].params == ("a",)
    assert {q.driver for q in queries} == {"asyncpg"}
    assert all(q.where.startswith("test_raw.py:") for q in queries)
    control = [s.sql for s in dbarch_queries.statements if s.kind == "tx"]
    assert [word.split()[0] for word in control] == ["SAVEPOINT", "RELEASE"]
    housekeeping = [s for s in dbarch_queries.statements if s.origin == "driver"]
    assert len(housekeeping) == 1  # asyncpg renders copy_from_query's parameter with a query
    assert dbarch_queries.round_trips == len(queries) + 3


@pytest.mark.asyncio
async def test_asyncpg_pool_the_code_opens_itself(dbarch_url, dbarch_queries):
    import asyncpg

    async with asyncpg.create_pool(plain(dbarch_url), min_size=1, max_size=1) as pool:
        await pool.fetchval("SELECT 1")
        async with pool.acquire() as conn:
            await conn.fetch("SELECT 2")
    assert dbarch_queries.sql == ["SELECT 1", "SELECT 2"]  # the pool's resets are not the app's queries
    resets = [s for s in dbarch_queries.statements if s.sql not in ("SELECT 1", "SELECT 2")]
    assert resets and all(s.origin == "driver" for s in resets)


def test_psycopg_copy_stream_and_transaction_blocks(dbarch_psycopg, dbarch_queries):
    with dbarch_psycopg.transaction():  # inside the test's transaction: a savepoint
        with dbarch_psycopg.cursor().copy("COPY events (kind) FROM STDIN") as copy:
            copy.write_row(("a",))
            copy.write_row(("b",))
    assert len(list(dbarch_psycopg.cursor().stream("SELECT kind FROM events"))) == 2
    for row in dbarch_psycopg.cursor().stream("SELECT kind FROM events WHERE kind > %s", ("",)):
        break
    queries = dbarch_queries.queries
    assert [(q.kind, q.rows, q.error) for q in queries] == [("other", 2, False), ("select", 2, False), ("select", 1, False)]
    assert [s.sql for s in dbarch_queries.statements if s.kind == "tx"] == ['SAVEPOINT "_pg3_1"', 'RELEASE "_pg3_1"']
    assert dbarch_queries.round_trips == 5


@pytest.mark.dbarch(isolation="clone")
def test_psycopg_transaction_block_begin_and_commit_are_round_trips(dbarch_url, dbarch_queries):
    with psycopg.connect(plain(dbarch_url), autocommit=True) as conn:
        with conn.transaction():
            conn.execute("INSERT INTO events (kind) VALUES ('x')")
        with conn.transaction():
            with conn.transaction():
                conn.execute("SELECT 1")
    assert [s.sql for s in dbarch_queries.statements] == [
        "BEGIN", "INSERT INTO events (kind) VALUES ('x')", "COMMIT",
        "BEGIN", 'SAVEPOINT "_pg3_2"', "SELECT 1", 'RELEASE "_pg3_2"', "COMMIT"]
    assert dbarch_queries.count == 2 and dbarch_queries.round_trips == 8


@pytest.mark.asyncio
@pytest.mark.dbarch(isolation="clone")
async def test_async_psycopg_copy_and_stream(dbarch_url, dbarch_queries):
    async with await psycopg.AsyncConnection.connect(plain(dbarch_url)) as conn:
        async with conn.cursor() as cur:
            async with cur.copy("COPY events (kind) FROM STDIN") as copy:
                await copy.write_row(("a",))
            rows = [row async for row in cur.stream("SELECT kind FROM events")]
        await conn.commit()
    assert [(s.sql.split()[0], s.rows) for s in dbarch_queries.statements] == [
        ("BEGIN", 0), ("COPY", 1), ("SELECT", 1), ("COMMIT", 0)]
'''


def test_raw_driver_apis_are_captured_like_psycopg(external_pytester: pytest.Pytester) -> None:
    external_pytester.makefile(".sql", schema=SCHEMA)
    external_pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\nasyncio_default_fixture_loop_scope = function\n")
    external_pytester.makepyfile(models=ASYNC_MODELS, test_raw=RAW_APIS, lookups=LOOKUPS)
    result = external_pytester.runpytest("-p", "no:randomly", "--dbarch-nplusone=off")
    result.assert_outcomes(passed=8)


FIRST_IMPORT = '''
import sys


def test_libraries_first_imported_in_the_test_body_are_captured(dbarch_url, dbarch_queries):
    assert not {"psycopg2", "asyncpg", "sqlalchemy"} & set(sys.modules), "imported before the test"
    import psycopg2
    from sqlalchemy import create_engine, text

    conn = psycopg2.connect(dbarch_url.replace("postgresql+psycopg://", "postgresql://"))
    conn.cursor().execute("SELECT 1")
    conn.close()
    engine = create_engine(dbarch_url.replace("+psycopg", "+psycopg2"))
    with engine.connect() as connection:
        connection.execute(text("SELECT 2"))
    engine.dispose()
    assert dbarch_queries.sql[0] == "SELECT 1" and dbarch_queries.sql[-1] == "SELECT 2"
    assert {q.driver for q in dbarch_queries.queries} == {"psycopg2"}
    assert "asyncpg" not in sys.modules  # nothing imported that the test did not import
'''


def test_a_first_import_inside_a_test_body_is_captured(external_pytester: pytest.Pytester) -> None:
    external_pytester.makefile(".sql", schema=SCHEMA)
    external_pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\n")
    external_pytester.makepyfile(test_first=FIRST_IMPORT)
    result = external_pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)


HOOKS_OFF = '''
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from models import Account


def test_raw_psycopg2_is_left_alone_and_sqlalchemy_on_it_is_seen_at_the_engine(
        dbarch_psycopg2, dbarch_psycopg2_engine, dbarch_queries):
    dbarch_psycopg2.cursor().execute("SELECT 1")
    with Session(dbarch_psycopg2_engine) as session:
        for account_id in (1, 2, 3):
            session.execute(select(Account.name).where(Account.id == account_id))
    assert [(q.kind, q.driver) for q in dbarch_queries.queries] == [("select", "sqlalchemy")] * 3
    assert all(q.where.startswith("test_off.py:") for q in dbarch_queries.queries)


@pytest.mark.asyncio
async def test_raw_asyncpg_is_left_alone_and_sqlalchemy_on_it_is_seen_at_the_engine(
        dbarch_asyncpg, dbarch_asyncpg_engine, dbarch_queries):
    await dbarch_asyncpg.fetchval("SELECT 1")
    async with AsyncSession(dbarch_asyncpg_engine) as session:
        for account_id in (1, 2, 3):
            await session.execute(select(Account.name).where(Account.id == account_id))
    assert [(q.kind, q.driver) for q in dbarch_queries.queries] == [("select", "sqlalchemy")] * 3
'''


def test_driver_hooks_can_be_switched_off(external_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    external_pytester.makefile(".sql", schema=SCHEMA)
    external_pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\nasyncio_default_fixture_loop_scope = function\n")
    external_pytester.makepyfile(models=ASYNC_MODELS, test_off=HOOKS_OFF)
    monkeypatch.setenv("DBARCH_DRIVER_HOOKS", "none")
    result = external_pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    monkeypatch.delenv("DBARCH_DRIVER_HOOKS")
    result = external_pytester.runpytest("-o", "dbarch_driver_hooks=psycopg2 pg8000")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*dbarch_driver_hooks from ini dbarch_driver_hooks names 'pg8000'; choose from psycopg2, asyncpg, or 'none'"])
