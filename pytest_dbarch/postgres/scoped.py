"""Databases shared by the tests of one module or of the whole session.

A session-scoped application fixture (a FastAPI app, a logged-in client) needs a
database that lives as long as it does. A ``ScopedDatabase`` is a clone of the
template (seed rows included) made when its scope first asks for it and dropped when
the scope ends, on every exit path.

Its ``engine`` has two modes. Outside a test's isolation (in module- or
session-scoped fixtures, and in tests that ask for no per-test fixture) each
connection is a real one: what it commits stays for the rest of the scope. While a
test runs in ``transaction`` isolation on this database, every connection the engine
hands out, from any thread, is that test's one connection: the application's work
and the test's own are rolled back together when the test ends. So SQLAlchemy's pool
must hold no connection (``NullPool``): the real ones are kept here instead, and a
connection made during a test never outlives it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import pq

from pytest_dbarch.errors import DbarchError

if TYPE_CHECKING:
    import pytest
    from sqlalchemy import Engine

    from pytest_dbarch.postgres.isolation import TestDatabase

#: The fixtures of ``pytest_dbarch/scopes.py``, by name.
SCOPED_FIXTURES = ("dbarch_session_database", "dbarch_module_database")

KEEP_IDLE = 4  # real connections kept for reuse between checkouts


class ScopeConnection(psycopg.Connection[Any]):
    """A real connection of a scoped database's engine: ``close()`` rolls back what is
    left open and hands it back for the next checkout (a new backend per request
    costs milliseconds; a pool would do the same)."""

    _dbarch_idle: list[ScopeConnection] | None = None

    def close(self) -> None:
        idle = self._dbarch_idle
        if idle is None or self.closed or self.broken or len(idle) >= KEEP_IDLE:
            psycopg.Connection.close(self)
            return
        try:
            if self.info.transaction_status != pq.TransactionStatus.IDLE:
                psycopg.Connection.rollback(self)
        except psycopg.Error:
            psycopg.Connection.close(self)
            return
        idle.append(self)

    def dbarch_close(self) -> None:
        self._dbarch_idle = None
        psycopg.Connection.close(self)


@dataclass(eq=False)
class ScopedDatabase:
    """A clone of the template shared by one module's tests or the session's."""

    name: str
    scope: str
    dsn: str
    url: str
    engine: Engine | None = field(default=None, repr=False)
    """A SQLAlchemy Engine on this database (set by the fixture that made it, disposed
    at the scope's end); inside a transaction-isolated test it joins that test's
    transaction (see the module docstring). Its pool makes no connection ahead: one
    made during a test is the test's, and must not be handed out after it."""
    _test: TestDatabase | None = field(default=None, repr=False)
    _idle: list[ScopeConnection] = field(default_factory=list, repr=False)

    def connect(self) -> psycopg.Connection[Any]:
        """The engine's ``creator``: the running test's connection, else a real one."""
        test = self._test
        if test is not None:
            return test.shared_connection()
        while self._idle:
            try:
                conn = self._idle.pop()
            except IndexError:  # another thread took the last one
                break
            if not conn.closed:
                return conn
        conn = ScopeConnection.connect(self.dsn)
        conn._dbarch_idle = self._idle
        return conn

    def enter(self, test: TestDatabase) -> None:
        self._test = test

    def leave(self) -> None:
        self._test = None

    def close(self) -> None:
        self._test = None
        if self.engine is not None:
            self.engine.dispose()
        while self._idle:
            self._idle.pop().dbarch_close()


def scoped_database_of(request: pytest.FixtureRequest) -> ScopedDatabase | None:
    """The module's or session's database the test uses (itself or through its
    fixtures), or None; DbarchError when it uses both."""
    used = [name for name in SCOPED_FIXTURES if name in request.fixturenames]
    if not used:
        return None
    if len(used) > 1:
        raise DbarchError(
            f"{request.node.nodeid} uses both dbarch_session_database and dbarch_module_database, "
            "so its per-test fixtures cannot tell which database to run in",
            "let the test's fixtures depend on one of them",
        )
    return request.getfixturevalue(used[0])  # type: ignore[no-any-return]
