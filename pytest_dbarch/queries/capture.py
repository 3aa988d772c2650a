"""Capture every statement the code under test sends, whichever driver sends it.

Each driver is hooked where it sends statements, so raw use and SQLAlchemy use are
one and the same record (``recorder.record``), with call sites and origin marks:

- psycopg 3 (``capture_psycopg``): cursors, COPY, streams, commits, transaction blocks;
- psycopg2 (``capture_psycopg2``): connections from ``psycopg2.connect``, their cursors,
  ``execute_values`` / ``execute_batch``;
- asyncpg (``capture_asyncpg``): connection and prepared-statement methods;
- SQLAlchemy (``capture_sqlalchemy``): relationship names for lazy-load detection, and
  the statements of any other driver, at the engine;
- asyncio (``handoff``): tasks remember where they were created, so a statement in a
  task or a worker thread is attributed to the test line that caused it.

``install()`` arranges for each hook to go in the moment its library is imported
(``import_hook``), so nothing is imported that the application does not import
itself, and a first import inside a test body is captured too.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType

from pytest_dbarch.queries.import_hook import when_imported
from pytest_dbarch.queries.log import QueryLog
from pytest_dbarch.queries.recorder import recording as _recording

#: Drivers besides psycopg 3 whose own API can be hooked (``dbarch_driver_hooks``).
OPTIONAL_HOOKS = ("psycopg2", "asyncpg")

_installed: set[str] = set()


def install(driver_hooks: Iterable[str] = OPTIONAL_HOOKS) -> None:
    """Hook psycopg 3 and SQLAlchemy, and the drivers named, as each gets imported."""
    wanted = {"psycopg", "sqlalchemy", "asyncio", *driver_hooks} - _installed
    _installed.update(wanted)
    if "asyncio" in wanted:  # tasks carry where they were created (``handoff``)
        when_imported("asyncio", _hook("handoff", "install"))
    if "psycopg" in wanted:
        when_imported("psycopg", _hook("capture_psycopg", "install"))
    if "sqlalchemy" in wanted:
        when_imported("sqlalchemy", _hook("capture_sqlalchemy", "install_engine"))
        when_imported("sqlalchemy.orm", _hook("capture_sqlalchemy", "install_orm"))
    if "psycopg2" in wanted:
        when_imported("psycopg2", _hook("capture_psycopg2", "install"))
        when_imported("psycopg2.extras", _hook("capture_psycopg2", "install_extras"))
    if "asyncpg" in wanted:
        when_imported("asyncpg", _hook("capture_asyncpg", "install"))


def _hook(module: str, function: str) -> Callable[[ModuleType], None]:
    """``function`` of ``capture_*``/``handoff``, imported only once its library is: a
    session that never loads asyncpg never loads its wrappers either."""

    def install(library: ModuleType) -> None:
        getattr(importlib.import_module(f"pytest_dbarch.queries.{module}"), function)(library)

    return install


@contextmanager
def recording(log: QueryLog | None = None) -> Iterator[QueryLog]:
    """Record every statement sent inside the block into ``log`` (a new one by default)."""
    with _recording(QueryLog() if log is None else log) as active:
        yield active  # type: ignore[misc]
