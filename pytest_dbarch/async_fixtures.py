"""Async fixtures, registered only when pytest-asyncio is active.

They use psycopg's async driver. In ``transaction`` isolation they hold their own
connection and outer transaction, separate from the sync fixtures' one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest_asyncio

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

    from pytest_dbarch.postgres.isolation import TestDatabase


@pytest_asyncio.fixture
async def dbarch_async_engine(
    _dbarch_database: TestDatabase, dbarch_engine_options: dict[str, Any]
) -> AsyncIterator[AsyncEngine]:
    """A SQLAlchemy AsyncEngine (psycopg async driver) on this test's database,
    inside its isolation; needs pytest-asyncio."""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import StaticPool

    from pytest_dbarch.postgres.isolation import SavepointAsyncConnection

    if _dbarch_database.isolation != "transaction":
        engine = create_async_engine(_dbarch_database.url, **dbarch_engine_options)
        # Like the sync fixture: the dialect's first-connect queries belong to setup,
        # not to the test's query count.
        async with engine.connect():
            pass
        yield engine
        await engine.dispose()
        return
    connection = await SavepointAsyncConnection.connect(_dbarch_database.dsn)
    await connection.dbarch_begin()

    async def shared() -> SavepointAsyncConnection:
        return connection

    engine = create_async_engine(
        _dbarch_database.url,
        async_creator=shared,
        poolclass=StaticPool,
        pool_reset_on_return=None,
        **dbarch_engine_options,
    )
    try:
        async with engine.connect():
            pass
        yield engine
    finally:
        await engine.dispose()
        if not await connection.dbarch_end():
            _dbarch_database.async_intact = False


@pytest_asyncio.fixture
async def dbarch_async_session(dbarch_async_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A SQLAlchemy AsyncSession on this test's database, inside its isolation;
    needs pytest-asyncio."""
    from sqlalchemy.ext.asyncio import AsyncSession

    async with AsyncSession(bind=dbarch_async_engine, expire_on_commit=False) as session:
        yield session
