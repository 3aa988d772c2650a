"""The session's server started in a background thread while pytest goes on.

A warm start spends about as long copying the cached cluster and waiting for
``postgres`` to be ready as the main thread spends importing psycopg and setting up
the first fixtures; the copy and the wait are system calls and another process, so
they run beside it. Once collection is over and some test that will run needs a
database, ``EarlyStart`` calls ``shared.start_cached`` in a thread; the first fixture
that needs the server takes its lease (waiting for it if need be).

Only what needs no user code runs there: a schema source whose cache key comes from
file bytes (an Alembic history or SQL files, no seed), with its entry already in the
cluster cache (a miss runs the migrations, which stay in the main thread), or a
server another process already runs (a kept one, another xdist worker's). Anything
else, or a thread that finds no cache entry, leaves the start to the fixture as before.

Nothing leaks: a lease nobody takes (every test skipped, Ctrl-C, ``-x`` before the
first database test) is released at ``pytest_unconfigure``, after the thread is
joined; the thread is not a daemon, so even an interpreter leaving on a second
Ctrl-C waits for it, then the ``atexit`` hook releases it; a killed process has
the guardian the lease started, as always.
"""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported by the thread: deciding costs a session with no database nothing
    from pytest_dbarch.config import Settings
    from pytest_dbarch.postgres.shared import Lease
    from pytest_dbarch.postgres.template import SchemaSource

#: Fixtures whose plugin definition the background start assumes (an override in a
#: conftest.py could name another server or schema).
ASSUMED_FIXTURES = ("dbarch_dsn", "dbarch_schema_source")
#: Every database fixture goes through this one.
DATABASE_FIXTURE = "_dbarch_databases"

_PENDING: set[EarlyStart] = set()
_PENDING_LOCK = threading.Lock()


def suitable(settings: Settings, source: SchemaSource) -> bool:
    """Whether a background start could need no user code (see the module docstring)."""
    return not settings.dsn and settings.cache == "on" and not source.metadata and not source.seed


def first_database_item(items: list[Any]) -> Any | None:
    """The first test that will run and needs a database; None if none does."""
    for item in items:
        if DATABASE_FIXTURE in getattr(item, "fixturenames", ()):
            return item
    return None


def plugin_fixtures_in_use(item: Any) -> bool:
    """``item`` sees the plugin's own ``dbarch_dsn`` and ``dbarch_schema_source``."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    for name in ASSUMED_FIXTURES:
        defs = info.name2fixturedefs.get(name)
        if defs and getattr(defs[-1].func, "__module__", None) != "pytest_dbarch.fixtures":
            return False
    return True


class EarlyStart:
    """One background ``start_local``; its lease is taken once or released."""

    def __init__(self, settings: Settings, source: SchemaSource) -> None:
        self.settings = settings
        self.source = source
        self._lease: Lease | None = None
        self._error: BaseException | None = None
        self._done = False  # taken or released
        self._thread = threading.Thread(target=self._run, name="dbarch-server-start")
        with _PENDING_LOCK:
            _PENDING.add(self)
        self._thread.start()

    def _run(self) -> None:
        try:
            from pytest_dbarch.postgres.shared import start_cached

            self._lease = start_cached(self.settings, self.source)
        except BaseException as exc:  # handed to whoever takes the lease
            self._error = exc

    def take(self, settings: Settings, source: SchemaSource) -> Lease | None:
        """The lease, when it was started for ``settings`` and ``source``; None when
        the caller must start one itself. Raises what the start raised."""
        if self._done:
            return None
        if settings != self.settings or source != self.source:
            self.discard()
            return None
        self._thread.join()
        self._finish()
        if self._error is not None:
            raise self._error
        return self._lease

    def discard(self) -> None:
        """Wait for the thread and release a lease nobody took. Idempotent."""
        if self._done:
            return
        self._thread.join()
        lease = self._lease
        self._finish()
        if lease is not None:
            lease.release()

    def _finish(self) -> None:
        self._done = True
        with _PENDING_LOCK:
            _PENDING.discard(self)


@atexit.register
def _discard_all() -> None:
    """Safety net: an interpreter that exits without ``pytest_unconfigure``."""
    for early in list(_PENDING):
        early.discard()
