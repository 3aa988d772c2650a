"""psycopg2 fixtures, and the rule that moves tests mixing drivers to clone isolation."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from pytest_dbarch.drivers import sharing
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.fixtures import fail_on_dbarch_error

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from pytest_dbarch.postgres.isolation import TestDatabase


def require(module: str, package: str, fixture: str) -> ModuleType:
    """Import an optional driver, or fail the test saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        pytest.fail(f"pytest-dbarch: {fixture} needs {module}: pip install {package}", pytrace=False)


def enter_isolation(request: pytest.FixtureRequest, fixture: str, database: TestDatabase) -> None:
    try:
        sharing.refuse_shared_transaction(fixture, request.fixturenames, database.isolation)
    except DbarchError as exc:
        fail_on_dbarch_error(exc)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    sharing.move_mixed_tests_to_clone(items)


@pytest.fixture
def dbarch_psycopg2(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A raw psycopg2 connection on this test's database, inside its isolation.

    ``transaction`` isolation: a connection of its own, in a transaction rolled back
    after the test; ``commit()``, ``rollback()`` and ``with conn:`` work on a savepoint.
    It cannot share the psycopg 3 connection of ``dbarch_session`` and friends: a test
    that asks for both runs in ``clone`` isolation (a database of its own; commit the
    rows other connections must see). ``clone`` isolation: a plain connection.
    Needs psycopg2 (pip install psycopg2-binary).
    """
    psycopg2 = require("psycopg2", "psycopg2-binary", "dbarch_psycopg2")
    # Only now: a missing driver fails without starting a server.
    database: TestDatabase = request.getfixturevalue("_dbarch_database")
    enter_isolation(request, "dbarch_psycopg2", database)
    if database.isolation != "transaction":
        conn = psycopg2.connect(database.dsn)
        try:
            yield conn
        finally:
            conn.close()
        return
    from pytest_dbarch.drivers.psycopg2_connection import IsolatedConnection

    isolated = psycopg2.connect(database.dsn, connection_factory=IsolatedConnection)
    try:
        isolated.dbarch_begin()
    except BaseException:
        isolated.dbarch_close()
        raise
    try:
        yield isolated
    finally:
        if not isolated.dbarch_end():
            # The test's own connection broke isolation: the database gets rebuilt.
            database.async_intact = False


@pytest.fixture
def dbarch_psycopg2_engine(
    dbarch_psycopg2: Any, _dbarch_database: TestDatabase, dbarch_engine_options: dict[str, Any]
) -> Iterator[Engine]:
    """A SQLAlchemy Engine (``postgresql+psycopg2``) on this test's database, inside its
    isolation: in ``transaction`` isolation every connection it hands out is
    ``dbarch_psycopg2``'s, rolled back after the test. ``Session(dbarch_psycopg2_engine)``
    gives an ORM session on psycopg2."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import StaticPool

    url = make_url(_dbarch_database.url).set(drivername="postgresql+psycopg2")
    if _dbarch_database.isolation == "transaction":
        engine = create_engine(
            url,
            creator=lambda: dbarch_psycopg2,
            poolclass=StaticPool,
            pool_reset_on_return=None,
            **dbarch_engine_options,
        )
    else:
        engine = create_engine(url, **dbarch_engine_options)
    # The dialect's first-connect queries (and, in transaction isolation, the rollback
    # that ends them) belong to setup, not to the test's query count.
    engine.connect().close()
    yield engine
    engine.dispose()
