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
and the test's own are rolled back together when the test ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy import Engine

    from pytest_dbarch.postgres.isolation import TestDatabase

SCOPED_FIXTURES = {"session": "dbarch_session_database", "module": "dbarch_module_database"}


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

    def connect(self) -> psycopg.Connection[Any]:
        test = self._test
        if test is not None:
            return test.shared_connection()
        import psycopg

        return psycopg.connect(self.dsn)

    @property
    def in_test(self) -> bool:
        """Whether a test's transaction is open on this database right now."""
        return self._test is not None

    def enter(self, test: TestDatabase) -> None:
        self._test = test

    def leave(self) -> None:
        self._test = None

    def close(self) -> None:
        self._test = None
        if self.engine is not None:
            self.engine.dispose()
