"""Who sent a statement: the application, or the plugin itself.

The plugin's own statements (template builds, janitor work, the per-test SAVEPOINT,
``SELECT txid_current()``, ``DISCARD ALL``) are marked here explicitly, by a context
variable set around them, never guessed from their text. Capture keeps them visible
but they never count toward a test's budgets or N+1 rules.

It sits beside ``findings.py`` because ``postgres/`` marks its statements here and the
query capture reads the marks; it is imported at every test, so it must stay tiny.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar

APP = "app"
#: Transaction control done on the application's behalf (a ``commit()`` that the
#: transaction isolation turns into ``RELEASE SAVEPOINT``): a round trip, not a query.
TRANSACTION = "transaction"
#: The plugin's own infrastructure work: neither a query nor an application round trip.
PLUGIN = "plugin"
#: Work a driver does by itself on the application's behalf (a pool's session reset,
#: asyncpg rendering COPY parameters): a round trip, not a query.
DRIVER = "driver"

#: The plugin's work in threads of its own (clones made ahead, databases dropped in the
#: background): it runs while some test runs but belongs to none, so no log records it.
BACKGROUND = "background"

ORIGIN: ContextVar[str] = ContextVar("dbarch_statement_origin", default=APP)


@contextmanager
def statements_from(origin: str) -> Iterator[None]:
    """Mark every statement sent inside the block (in this thread or task) as ``origin``."""
    token = ORIGIN.set(origin)
    try:
        yield
    finally:
        ORIGIN.reset(token)


def plugin_statements() -> AbstractContextManager[None]:
    return statements_from(PLUGIN)


def transaction_control() -> AbstractContextManager[None]:
    return statements_from(TRANSACTION)


def driver_housekeeping() -> AbstractContextManager[None]:
    return statements_from(DRIVER)


def background_statements() -> AbstractContextManager[None]:
    return statements_from(BACKGROUND)
