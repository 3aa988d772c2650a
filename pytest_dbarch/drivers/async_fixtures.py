"""asyncpg fixtures, registered only when pytest-asyncio is active."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from pytest_dbarch.drivers.fixtures import enter_isolation, require
from pytest_dbarch.drivers.sharing import asyncpg_dsn

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from pytest_dbarch.postgres.isolation import TestDatabase


@pytest_asyncio.fixture
async def dbarch_asyncpg(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A raw asyncpg connection on this test's database, inside its isolation.

    ``transaction`` isolation: a connection of its own, in a transaction rolled back
    after the test; ``async with conn.transaction():`` blocks become savepoints. Unlike
    production, a statement outside such a block is not autocommitted: one that fails
    aborts the rest of the test's work, so run statements expected to fail inside a
    ``transaction()`` block. It cannot share the psycopg 3 connection of
    ``dbarch_session`` and friends: a test that asks for both runs in ``clone``
    isolation (a database of its own; commit the rows other connections must see).
    ``clone`` isolation: a plain connection, autocommit as in production.
    Needs asyncpg and pytest-asyncio.
    """
    asyncpg = require("asyncpg", "asyncpg", "dbarch_asyncpg")
    # Only now: a missing driver fails without starting a server.
    database: TestDatabase = request.getfixturevalue("_dbarch_database")
    enter_isolation(request, "dbarch_asyncpg", database)
    if database.isolation != "transaction":
        conn = await asyncpg.connect(asyncpg_dsn(database.url))
        try:
            yield conn
        finally:
            await conn.close()
        return
    from pytest_dbarch.drivers.asyncpg_connection import IsolatedConnection

    isolated = await asyncpg.connect(asyncpg_dsn(database.url), connection_class=IsolatedConnection)
    try:
        await isolated.dbarch_begin()
    except BaseException:
        await isolated.dbarch_close()
        raise
    try:
        yield isolated
    finally:
        if not await isolated.dbarch_end():
            # The test's own connection broke isolation: the database gets rebuilt.
            database.async_intact = False


@pytest_asyncio.fixture
async def dbarch_asyncpg_engine(
    dbarch_asyncpg: Any, _dbarch_database: TestDatabase, dbarch_engine_options: dict[str, Any]
) -> AsyncIterator[AsyncEngine]:
    """A SQLAlchemy AsyncEngine (``postgresql+asyncpg``) on this test's database, inside
    its isolation: in ``transaction`` isolation every connection it hands out is
    ``dbarch_asyncpg``'s, rolled back after the test. ``AsyncSession(dbarch_asyncpg_engine)``
    gives an ORM session on asyncpg. Needs asyncpg and pytest-asyncio."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import StaticPool

    url = make_url(_dbarch_database.url).set(drivername="postgresql+asyncpg")
    if _dbarch_database.isolation == "transaction":

        async def shared() -> Any:
            return dbarch_asyncpg

        engine = create_async_engine(
            url,
            async_creator=shared,
            poolclass=StaticPool,
            pool_reset_on_return=None,
            **dbarch_engine_options,
        )
    else:
        engine = create_async_engine(url, **dbarch_engine_options)
    try:
        # The dialect's first-connect queries belong to setup, not to the test's count.
        async with engine.connect():
            pass
        yield engine
    finally:
        await engine.dispose()
