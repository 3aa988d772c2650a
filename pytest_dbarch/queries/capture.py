"""Capture every statement sent through psycopg 3, with or without SQLAlchemy.

One recording point: psycopg's cursor ``execute`` / ``executemany`` (sync and async,
client- and server-side cursors), wrapped on the classes once. Every psycopg connection
is seen, those SQLAlchemy hands out and those a test opens itself, and a SQLAlchemy
statement is recorded once, at the cursor, never twice. SQLAlchemy adds what only it
knows through two class-level listeners: Session ``do_orm_execute`` tells which
relationship a SELECT loads and whether lazily, and Engine ``before_cursor_execute``
passes that on to the cursor call that follows (async engines emit these events on
their sync engine).

While no log is active the wrappers cost one truthiness test. Hooks are installed
lazily (``install()`` when a test's call phase starts with psycopg or SQLAlchemy loaded),
so a test that touches no database imports neither.
"""

from __future__ import annotations

import sys
from time import perf_counter as _now
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from pytest_dbarch.queries.callsite import user_stack
from pytest_dbarch.queries.log import QueryLog, Relationship, Statement
from pytest_dbarch.origin import APP, ORIGIN

_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE
_ACTIVE_TX = (2, 3)  # INTRANS, INERROR
_ORM_OPTION = "_dbarch_relationship"

#: The logs currently recording (a test's log, plus any narrower blocks inside it).
_active: list[QueryLog] = []
_installed: set[str] = set()
#: (driver connection, Relationship) set by SQLAlchemy just before the cursor call.
_hint: list[Any] = [None, None]


@contextmanager
def recording(log: QueryLog | None = None) -> Iterator[QueryLog]:
    """Record every statement sent inside the block into ``log`` (a new one by default)."""
    install()
    log = QueryLog() if log is None else log
    _active.append(log)
    try:
        yield log
    finally:
        _active.remove(log)


def install() -> None:
    """Hook psycopg and SQLAlchemy if they are loaded; cheap when already done."""
    if "psycopg" in sys.modules and "psycopg" not in _installed:
        _installed.add("psycopg")
        _install_psycopg()
    if "sqlalchemy" in sys.modules and "sqlalchemy" not in _installed:
        _installed.add("sqlalchemy")
        _install_sqlalchemy()


def _text(query: Any, conn: Any) -> str:
    if type(query) is str:
        return query
    if isinstance(query, bytes):
        return query.decode("utf-8", "replace")
    as_string = getattr(query, "as_string", None)
    if as_string is not None:
        try:
            return str(as_string(conn))
        except Exception:
            pass
    return str(query)


def _record(
    conn: Any, query: Any, params: Any, many: int, duration: float, rows: int, began: bool, error: bool
) -> None:
    origin = ORIGIN.get()
    text = _text(query, conn)
    stack = user_stack(3) if origin == APP else ()
    relationship = None
    if _hint[0] is conn:
        relationship = _hint[1]
        _hint[0] = _hint[1] = None
    if began:
        begin = Statement("BEGIN", None, origin, 0.0, 0, 0, stack)
        for log in _active:
            log.add(begin)
    statement = Statement(text, params, origin, duration, rows, many, stack, relationship, error)
    for log in _active:
        log.statements.append(statement)


def _record_end(conn: Any, word: str) -> None:
    origin = ORIGIN.get()
    statement = Statement(word, None, origin, 0.0, 0, 0, user_stack(3) if origin == APP else ())
    for log in _active:
        log.add(statement)


class _Counting:
    """Counts the parameter sets an ``executemany`` consumes (they may be a generator)."""

    __slots__ = ("items", "n", "first")

    def __init__(self, items: Iterable[Any]) -> None:
        self.items, self.n, self.first = items, 0, None

    def __iter__(self) -> Iterator[Any]:
        for item in self.items:
            if self.n == 0:
                self.first = item
            self.n += 1
            yield item


def _install_psycopg() -> None:
    import psycopg
    from psycopg import AsyncCursor, AsyncServerCursor, Cursor, ServerCursor

    def wrap_execute(original: Any) -> Any:
        def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
            if not _active:
                return original(self, query, params, **kwargs)
            conn = self._conn
            # psycopg sends BEGIN first when the connection is idle and not in autocommit
            began = not conn.autocommit and conn.pgconn.transaction_status == _IDLE
            start = _now()
            error = True
            try:
                result = original(self, query, params, **kwargs)
                error = False
                return result
            finally:
                _record(conn, query, params, 0, _now() - start, self.rowcount, began, error)

        execute.__wrapped__ = original  # type: ignore[attr-defined]
        return execute

    def wrap_executemany(original: Any) -> Any:
        def executemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
            if not _active:
                return original(self, query, params_seq, **kwargs)
            conn = self._conn
            # psycopg sends BEGIN first when the connection is idle and not in autocommit
            began = not conn.autocommit and conn.pgconn.transaction_status == _IDLE
            counting = _Counting(params_seq)
            start = _now()
            error = True
            try:
                result = original(self, query, counting, **kwargs)
                error = False
                return result
            finally:
                _record(conn, query, counting.first, max(counting.n, 1), _now() - start,
                        self.rowcount, began, error)

        executemany.__wrapped__ = original  # type: ignore[attr-defined]
        return executemany

    def wrap_async_execute(original: Any) -> Any:
        async def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
            if not _active:
                return await original(self, query, params, **kwargs)
            conn = self._conn
            # psycopg sends BEGIN first when the connection is idle and not in autocommit
            began = not conn.autocommit and conn.pgconn.transaction_status == _IDLE
            start = _now()
            error = True
            try:
                result = await original(self, query, params, **kwargs)
                error = False
                return result
            finally:
                _record(conn, query, params, 0, _now() - start, self.rowcount, began, error)

        execute.__wrapped__ = original  # type: ignore[attr-defined]
        return execute

    def wrap_async_executemany(original: Any) -> Any:
        async def executemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
            if not _active:
                return await original(self, query, params_seq, **kwargs)
            conn = self._conn
            # psycopg sends BEGIN first when the connection is idle and not in autocommit
            began = not conn.autocommit and conn.pgconn.transaction_status == _IDLE
            counting = _Counting(params_seq)
            start = _now()
            error = True
            try:
                result = await original(self, query, counting, **kwargs)
                error = False
                return result
            finally:
                _record(conn, query, counting.first, max(counting.n, 1), _now() - start,
                        self.rowcount, began, error)

        executemany.__wrapped__ = original  # type: ignore[attr-defined]
        return executemany

    def wrap_end(original: Any, word: str) -> Any:
        def end(self: Any) -> Any:
            if _active and self.pgconn.transaction_status in _ACTIVE_TX:
                _record_end(self, word)
            return original(self)

        end.__wrapped__ = original  # type: ignore[attr-defined]
        return end

    def wrap_async_end(original: Any, word: str) -> Any:
        async def end(self: Any) -> Any:
            if _active and self.pgconn.transaction_status in _ACTIVE_TX:
                _record_end(self, word)
            return await original(self)

        end.__wrapped__ = original  # type: ignore[attr-defined]
        return end

    for cls in (Cursor, ServerCursor):
        cls.execute = wrap_execute(cls.__dict__["execute"])  # type: ignore[method-assign]
        cls.executemany = wrap_executemany(cls.__dict__["executemany"])  # type: ignore[method-assign]
    for acls in (AsyncCursor, AsyncServerCursor):
        acls.execute = wrap_async_execute(acls.__dict__["execute"])  # type: ignore[method-assign]
        acls.executemany = wrap_async_executemany(acls.__dict__["executemany"])  # type: ignore[method-assign]
    psycopg.Connection.commit = wrap_end(psycopg.Connection.commit, "COMMIT")  # type: ignore[method-assign]
    psycopg.Connection.rollback = wrap_end(psycopg.Connection.rollback, "ROLLBACK")  # type: ignore[method-assign]
    psycopg.AsyncConnection.commit = wrap_async_end(psycopg.AsyncConnection.commit, "COMMIT")  # type: ignore[method-assign]
    psycopg.AsyncConnection.rollback = wrap_async_end(psycopg.AsyncConnection.rollback, "ROLLBACK")  # type: ignore[method-assign]


def _install_sqlalchemy() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    def on_orm_execute(state: Any) -> None:
        if not _active or not state.is_select or not state.is_relationship_load:
            return
        relationship = _relationship_of(state)
        if relationship is not None:
            state.update_execution_options(**{_ORM_OPTION: relationship})

    def before_cursor_execute(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, many: bool) -> None:
        if _active and context is not None:
            relationship = context.execution_options.get(_ORM_OPTION)
            if relationship is not None:
                _hint[0] = conn.connection.driver_connection
                _hint[1] = relationship

    event.listen(Session, "do_orm_execute", on_orm_execute)
    event.listen(Engine, "before_cursor_execute", before_cursor_execute)


def _relationship_of(state: Any) -> Relationship | None:
    """Which relationship an ORM relationship load is for, from its loader path."""
    path = state.loader_strategy_path
    prop = None
    if path is not None:
        for element in reversed(list(path.path)):
            if getattr(element, "direction", None) is not None:
                prop = element
                break
    if prop is None:
        return None
    parent = state.lazy_loaded_from
    return Relationship(
        name=f"{prop.parent.class_.__name__}.{prop.key}",
        direction=prop.direction.name,
        lazy=parent is not None,
        parent=parent.key if parent is not None else None,
    )
