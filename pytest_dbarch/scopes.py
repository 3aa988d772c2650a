"""Module- and session-scoped databases: ``dbarch_module_database``,
``dbarch_session_database``.

A fixture of a wider scope than a test (an application, a logged-in client) may
depend on them without ``ScopeMismatch``. Each is a clone of the template (seed rows
included), made when its scope first asks for it and dropped when the scope ends.
A test that uses one (itself or through its fixtures) runs its per-test fixtures
(``dbarch_session``, ``dbarch_connection``, ...) in that database, in a transaction
rolled back after the test; see ``postgres/scoped.py`` for the engine's two modes.

Imported by every session: psycopg and SQLAlchemy are loaded only inside the fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_dbarch.errors import DbarchError

if TYPE_CHECKING:
    from pytest_dbarch.postgres.databases import Databases
    from pytest_dbarch.postgres.scoped import ScopedDatabase


def _scoped(databases: Databases, template: str, scope: str, options: dict[str, Any]) -> Iterator[ScopedDatabase]:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from pytest_dbarch.fixtures import _engine_url, fail_on_dbarch_error

    try:
        database = databases.scoped(template, scope)
    except DbarchError as exc:
        fail_on_dbarch_error(exc)
    try:
        database.engine = create_engine(
            _engine_url(database.url),
            **{**options, "creator": database.connect, "poolclass": NullPool, "pool_reset_on_return": None},
        )
        yield database
    finally:
        databases.drop_scoped(database)


@pytest.fixture(scope="session")
def dbarch_session_database(
    _dbarch_databases: Databases, dbarch_template: str, dbarch_engine_options: dict[str, Any]
) -> Iterator[ScopedDatabase]:
    """A database shared by every test of the session (per xdist worker): ``.url``,
    ``.dsn``, ``.name``, ``.engine``. Made from the template on first use, never reset,
    dropped when the session ends."""
    yield from _scoped(_dbarch_databases, dbarch_template, "session", dbarch_engine_options)


@pytest.fixture(scope="module")
def dbarch_module_database(
    _dbarch_databases: Databases, dbarch_template: str, dbarch_engine_options: dict[str, Any]
) -> Iterator[ScopedDatabase]:
    """A database shared by the tests of one module: like ``dbarch_session_database``,
    dropped when the module's last test ends."""
    yield from _scoped(_dbarch_databases, dbarch_template, "module", dbarch_engine_options)
