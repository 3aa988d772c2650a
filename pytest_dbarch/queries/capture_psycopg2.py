"""psycopg2 hooks: every connection ``psycopg2.connect`` makes, its cursors, and the
batch helpers of ``psycopg2.extras``.

psycopg2's connection and cursor are C types: their methods cannot be replaced on
the class. But ``connect`` is Python, and takes a ``connection_factory``; so the hook
wraps ``connect`` to build each connection from a subclass of the class asked for
(``connection`` by default) whose ``cursor()`` hands out a subclass of the cursor class
asked for (``cursor``, ``RealDictCursor``, a user's own...). Those subclasses record
``execute``, ``executemany``, ``callproc``, ``copy_expert``, ``copy_from``,
``copy_to``, ``commit`` and ``rollback``, and otherwise behave exactly like their
parents: ``isinstance`` checks, extras and adapters keep working.

``execute_values`` and ``execute_batch`` send one statement per page of rows; each is
recorded as one batched statement (like ``executemany``), not as N pages.

Connections made without ``connect`` (``psycopg2.extensions.connection(dsn)``, or a
``connection_factory`` that is a function) are not hooked: through SQLAlchemy their
statements are still captured, at the engine.
"""

from __future__ import annotations

import functools
from time import perf_counter as _now
from types import ModuleType
from typing import Any

from pytest_dbarch.queries.recorder import ACTIVE, HOOKED, Counting, record, record_word, text_of

DRIVER = "psycopg2"
_IDLE = 0  # psycopg2.extensions.TRANSACTION_STATUS_IDLE
_ACTIVE_TX = (2, 3)  # INTRANS, INERROR
#: Set on a connection class that turns commit/rollback into savepoint work itself
#: (the plugin's own transaction isolation): those calls are not a COMMIT round trip.
COMMITS_ITSELF = "_dbarch_commits_itself"

_connections: dict[type, type] = {}
_cursors: dict[type, type] = {}


def _begins(conn: Any) -> bool:
    """psycopg2 sends BEGIN first when the connection is idle and not in autocommit."""
    return not conn.autocommit and conn.get_transaction_status() == _IDLE


def _run(cur: Any, text: Any, params: Any, call: Any, *args: Any, **kwargs: Any) -> Any:
    if not ACTIVE or cur._dbarch_quiet:
        return call(*args, **kwargs)
    conn = cur.connection
    began = _begins(conn)
    start = _now()
    error = True
    try:
        result = call(*args, **kwargs)
        error = False
        return result
    finally:
        record(conn, text_of(text, conn), params, 0, _now() - start, cur.rowcount, began, error, DRIVER, 4)


def hooked_cursor(base: type) -> type:
    """A subclass of ``base`` (a psycopg2 cursor class) that records what it sends."""
    if getattr(base, HOOKED, False):
        return base
    hooked = _cursors.get(base)
    if hooked is not None:
        return hooked

    class Cursor(base):  # type: ignore[valid-type,misc]
        _dbarch_hooked = True
        _dbarch_quiet = False  # set while an extras batch helper records the batch

        def execute(self, query: Any, vars: Any = None) -> Any:
            if not ACTIVE:
                return super().execute(query, vars)
            return _run(self, query, vars, super().execute, query, vars)

        def executemany(self, query: Any, vars_list: Any) -> Any:
            if not ACTIVE or self._dbarch_quiet:
                return super().executemany(query, vars_list)
            conn = self.connection
            began = _begins(conn)
            counting = Counting(vars_list)
            start = _now()
            error = True
            try:
                result = super().executemany(query, counting)
                error = False
                return result
            finally:
                record(conn, text_of(query, conn), counting.first, max(counting.n, 1), _now() - start,
                       self.rowcount, began, error, DRIVER)

        def callproc(self, procname: Any, *args: Any, **kwargs: Any) -> Any:
            params = args[0] if args else kwargs.get("parameters")
            return _run(self, f"SELECT * FROM {procname}(...)", params, super().callproc, procname, *args, **kwargs)

        def copy_expert(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
            return _run(self, sql, None, super().copy_expert, sql, *args, **kwargs)

        def copy_from(self, file: Any, table: Any, *args: Any, **kwargs: Any) -> Any:
            return _run(self, f"COPY {table} FROM STDIN", None, super().copy_from, file, table, *args, **kwargs)

        def copy_to(self, file: Any, table: Any, *args: Any, **kwargs: Any) -> Any:
            return _run(self, f"COPY {table} TO STDOUT", None, super().copy_to, file, table, *args, **kwargs)

    Cursor.__name__, Cursor.__qualname__, Cursor.__module__ = base.__name__, base.__qualname__, base.__module__
    _cursors[base] = Cursor
    return Cursor


def hooked_connection(base: type, plain: type, default_cursor: type) -> type:
    """A subclass of ``base`` (a subclass of psycopg2's ``plain`` connection class)
    whose cursors are hooked."""
    if getattr(base, HOOKED, False):
        return base
    hooked = _connections.get(base)
    if hooked is not None:
        return hooked
    picks_own_cursor = base.cursor is not plain.cursor
    attrs: dict[str, Any] = {HOOKED: True}

    def cursor(self: Any, *args: Any, **kwargs: Any) -> Any:
        if len(args) > 1:  # cursor(name, cursor_factory, ...)
            args = (args[0], hooked_cursor(args[1] or self.cursor_factory or default_cursor), *args[2:])
        elif kwargs.get("cursor_factory") is not None or self.cursor_factory is not None or not picks_own_cursor:
            factory = kwargs.get("cursor_factory") or self.cursor_factory or default_cursor
            kwargs["cursor_factory"] = hooked_cursor(factory)
        else:  # a connection class that chooses its own cursor class: ask it, then hook that class
            cur = super(hooked, self).cursor(*args, **kwargs)
            if getattr(cur, HOOKED, False):
                return cur
            cur.close()
            kwargs["cursor_factory"] = hooked_cursor(type(cur))
        return super(hooked, self).cursor(*args, **kwargs)

    attrs["cursor"] = cursor
    if not getattr(base, COMMITS_ITSELF, False):

        def commit(self: Any) -> Any:
            if ACTIVE and self.get_transaction_status() in _ACTIVE_TX:
                record_word("COMMIT", DRIVER, conn=self)
            return super(hooked, self).commit()

        def rollback(self: Any) -> Any:
            if ACTIVE and self.get_transaction_status() in _ACTIVE_TX:
                record_word("ROLLBACK", DRIVER, conn=self)
            return super(hooked, self).rollback()

        attrs.update(commit=commit, rollback=rollback)
    hooked = type(base.__name__, (base,), attrs)
    hooked.__qualname__, hooked.__module__ = base.__qualname__, base.__module__
    _connections[base] = hooked
    return hooked


def _batch(original: Any) -> Any:
    """``execute_values`` / ``execute_batch``: one recorded statement for all the pages."""

    def helper(cur: Any, sql: Any, argslist: Any, *args: Any, **kwargs: Any) -> Any:
        if not ACTIVE:
            return original(cur, sql, argslist, *args, **kwargs)
        conn = cur.connection
        began = _begins(conn)
        counting = Counting(argslist)
        quiet = getattr(cur, HOOKED, False)
        if quiet:
            cur._dbarch_quiet = True
        start = _now()
        error = True
        result = None
        try:
            result = original(cur, sql, counting, *args, **kwargs)
            error = False
            return result
        finally:
            if quiet:
                cur._dbarch_quiet = False
            rows = len(result) if isinstance(result, list) else -1
            record(conn, text_of(sql, conn), counting.first, max(counting.n, 1), _now() - start, rows, began,
                   error, DRIVER)

    functools.update_wrapper(helper, original)
    return helper


def install(psycopg2: ModuleType) -> None:
    """Make ``psycopg2.connect`` build hooked connections (once)."""
    original = psycopg2.connect
    if getattr(original, HOOKED, False):
        return
    extensions = psycopg2.extensions

    @functools.wraps(original)
    def connect(dsn: Any = None, connection_factory: Any = None, cursor_factory: Any = None, **kwargs: Any) -> Any:
        factory = connection_factory or extensions.connection
        if isinstance(factory, type) and issubclass(factory, extensions.connection):
            factory = hooked_connection(factory, extensions.connection, extensions.cursor)
        return original(dsn, connection_factory=factory, cursor_factory=cursor_factory, **kwargs)

    setattr(connect, HOOKED, True)
    psycopg2.connect = connect


def install_extras(extras: ModuleType) -> None:
    """Record ``execute_values`` and ``execute_batch`` as one batched statement each (once)."""
    for name in ("execute_values", "execute_batch"):
        original = getattr(extras, name, None)
        if original is not None and not getattr(original, HOOKED, False):
            helper = _batch(original)
            setattr(helper, HOOKED, True)
            setattr(extras, name, helper)
