"""psycopg 3 hooks: cursors, COPY, streams, commits and ``transaction()`` blocks.

One recording point per thing psycopg sends: cursor ``execute`` / ``executemany``
(sync and async, client- and server-side cursors; ``Connection.execute`` goes through
them), ``copy()`` and ``stream()``, ``commit()`` / ``rollback()``, and the BEGIN,
SAVEPOINT, RELEASE, COMMIT and ROLLBACK of ``conn.transaction()`` blocks. The implicit
BEGIN psycopg sends before the first statement of a transaction is recorded with it.
Each hook is installed on the class once; while nothing records it costs one
truthiness test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from time import perf_counter as _now
from types import ModuleType
from typing import Any

from pytest_dbarch.queries.recorder import ACTIVE, HOOKED, Counting, record, record_word, text_of

DRIVER = "psycopg"
_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE
_ACTIVE_TX = (2, 3)  # INTRANS, INERROR


def _begins(conn: Any) -> bool:
    """psycopg sends BEGIN first when the connection is idle and not in autocommit."""
    return not conn.autocommit and conn.pgconn.transaction_status == _IDLE


def _execute(original: Any) -> Any:
    def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if not ACTIVE:
            return original(self, query, params, **kwargs)
        conn = self._conn
        began = _begins(conn)
        start = _now()
        error = True
        try:
            result = original(self, query, params, **kwargs)
            error = False
            return result
        finally:
            record(conn, text_of(query, conn), params, 0, _now() - start, self.rowcount, began, error, DRIVER)

    execute.__wrapped__ = original  # type: ignore[attr-defined]
    return execute


def _executemany(original: Any) -> Any:
    def executemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        if not ACTIVE:
            return original(self, query, params_seq, **kwargs)
        conn = self._conn
        began = _begins(conn)
        counting = Counting(params_seq)
        start = _now()
        error = True
        try:
            result = original(self, query, counting, **kwargs)
            error = False
            return result
        finally:
            record(conn, text_of(query, conn), counting.first, max(counting.n, 1), _now() - start,
                   self.rowcount, began, error, DRIVER)

    executemany.__wrapped__ = original  # type: ignore[attr-defined]
    return executemany


def _async_execute(original: Any) -> Any:
    async def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if not ACTIVE:
            return await original(self, query, params, **kwargs)
        conn = self._conn
        began = _begins(conn)
        start = _now()
        error = True
        try:
            result = await original(self, query, params, **kwargs)
            error = False
            return result
        finally:
            record(conn, text_of(query, conn), params, 0, _now() - start, self.rowcount, began, error, DRIVER)

    execute.__wrapped__ = original  # type: ignore[attr-defined]
    return execute


def _async_executemany(original: Any) -> Any:
    async def executemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        if not ACTIVE:
            return await original(self, query, params_seq, **kwargs)
        conn = self._conn
        began = _begins(conn)
        counting = Counting(params_seq)
        start = _now()
        error = True
        try:
            result = await original(self, query, counting, **kwargs)
            error = False
            return result
        finally:
            record(conn, text_of(query, conn), counting.first, max(counting.n, 1), _now() - start,
                   self.rowcount, began, error, DRIVER)

    executemany.__wrapped__ = original  # type: ignore[attr-defined]
    return executemany


def _copy(original: Any) -> Any:
    """``with cur.copy(...)``: one statement, recorded when it starts, timed to the block's end."""

    @contextmanager
    def copy(self: Any, statement: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
        if not ACTIVE:
            with original(self, statement, params, **kwargs) as copier:
                yield copier
            return
        conn = self._conn
        entry = record(conn, text_of(statement, conn), params, 0, 0.0, -1, _begins(conn), False, DRIVER)
        start = _now()
        try:
            with original(self, statement, params, **kwargs) as copier:
                yield copier
        except BaseException:
            entry.error = True
            raise
        finally:
            entry.duration, entry.rows = _now() - start, self.rowcount

    copy.__wrapped__ = original  # type: ignore[attr-defined]
    return copy


def _async_copy(original: Any) -> Any:
    @asynccontextmanager
    async def copy(self: Any, statement: Any, params: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        if not ACTIVE:
            async with original(self, statement, params, **kwargs) as copier:
                yield copier
            return
        conn = self._conn
        entry = record(conn, text_of(statement, conn), params, 0, 0.0, -1, _begins(conn), False, DRIVER)
        start = _now()
        try:
            async with original(self, statement, params, **kwargs) as copier:
                yield copier
        except BaseException:
            entry.error = True
            raise
        finally:
            entry.duration, entry.rows = _now() - start, self.rowcount

    copy.__wrapped__ = original  # type: ignore[attr-defined]
    return copy


def _stream(original: Any) -> Any:
    """``for row in cur.stream(...)``: recorded when the first row is asked for, with the
    rows read by the time the loop ends (a ``break`` is not an error)."""

    def stream(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
        rows = original(self, query, params, **kwargs)
        if not ACTIVE:
            yield from rows
            return
        conn = self._conn
        entry = record(conn, text_of(query, conn), params, 0, 0.0, 0, _begins(conn), False, DRIVER)
        start = _now()
        try:
            for row in rows:
                entry.rows += 1
                yield row
        except GeneratorExit:
            raise
        except BaseException:
            entry.error = True
            raise
        finally:
            rows.close()
            entry.duration = _now() - start

    stream.__wrapped__ = original  # type: ignore[attr-defined]
    return stream


def _async_stream(original: Any) -> Any:
    async def stream(self: Any, query: Any, params: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        rows = original(self, query, params, **kwargs)
        entry = None
        if ACTIVE:
            conn = self._conn
            entry = record(conn, text_of(query, conn), params, 0, 0.0, 0, _begins(conn), False, DRIVER)
        start = _now()
        try:
            async for row in rows:
                if entry is not None:
                    entry.rows += 1
                yield row
        except GeneratorExit:
            raise
        except BaseException:
            if entry is not None:
                entry.error = True
            raise
        finally:
            await rows.aclose()
            if entry is not None:
                entry.duration = _now() - start

    stream.__wrapped__ = original  # type: ignore[attr-defined]
    return stream


def _end(original: Any, word: str) -> Any:
    def end(self: Any) -> Any:
        if ACTIVE and self.pgconn.transaction_status in _ACTIVE_TX:
            record_word(word, DRIVER, conn=self)
        return original(self)

    end.__wrapped__ = original  # type: ignore[attr-defined]
    return end


def _async_end(original: Any, word: str) -> Any:
    async def end(self: Any) -> Any:
        if ACTIVE and self.pgconn.transaction_status in _ACTIVE_TX:
            record_word(word, DRIVER, conn=self)
        return await original(self)

    end.__wrapped__ = original  # type: ignore[attr-defined]
    return end


def _commands(original: Any) -> Any:
    """The commands a ``transaction()`` block sends on entry and exit (BEGIN, SAVEPOINT,
    RELEASE, COMMIT, ROLLBACK): each is a round trip, none is counted as a query."""

    def commands(self: Any) -> Iterator[bytes]:
        for command in original(self):
            if ACTIVE:
                record_word(text_of(command), DRIVER, conn=getattr(self, "_conn", None))
            yield command

    commands.__wrapped__ = original  # type: ignore[attr-defined]
    return commands


def install(psycopg: ModuleType) -> None:
    """Hook psycopg 3's classes (once)."""
    if getattr(psycopg.Connection, HOOKED, False):
        return
    from psycopg import AsyncCursor, AsyncServerCursor, Cursor, ServerCursor

    for cls in (Cursor, ServerCursor):
        cls.execute = _execute(cls.__dict__["execute"])  # type: ignore[method-assign]
        cls.executemany = _executemany(cls.__dict__["executemany"])  # type: ignore[method-assign]
    for acls in (AsyncCursor, AsyncServerCursor):
        acls.execute = _async_execute(acls.__dict__["execute"])  # type: ignore[method-assign]
        acls.executemany = _async_executemany(acls.__dict__["executemany"])  # type: ignore[method-assign]
    Cursor.copy = _copy(Cursor.__dict__["copy"])  # type: ignore[method-assign]
    Cursor.stream = _stream(Cursor.__dict__["stream"])  # type: ignore[method-assign]
    AsyncCursor.copy = _async_copy(AsyncCursor.__dict__["copy"])  # type: ignore[method-assign]
    AsyncCursor.stream = _async_stream(AsyncCursor.__dict__["stream"])  # type: ignore[method-assign]
    psycopg.Connection.commit = _end(psycopg.Connection.commit, "COMMIT")  # type: ignore[method-assign]
    psycopg.Connection.rollback = _end(psycopg.Connection.rollback, "ROLLBACK")  # type: ignore[method-assign]
    psycopg.AsyncConnection.commit = _async_end(psycopg.AsyncConnection.commit, "COMMIT")  # type: ignore[method-assign]
    psycopg.AsyncConnection.rollback = _async_end(psycopg.AsyncConnection.rollback, "ROLLBACK")  # type: ignore[method-assign]
    transaction = getattr(psycopg, "transaction", None)
    base = getattr(transaction, "BaseTransaction", None)
    # Private generators (psycopg >= 3.1); without them transaction() blocks still run,
    # only their BEGIN/COMMIT are missing from the round trips.
    for name in ("_get_enter_commands", "_get_commit_commands", "_get_rollback_commands"):
        if base is not None and name in vars(base):
            setattr(base, name, _commands(vars(base)[name]))
    for conn_cls in (psycopg.Connection, psycopg.AsyncConnection):
        setattr(conn_cls, HOOKED, True)
