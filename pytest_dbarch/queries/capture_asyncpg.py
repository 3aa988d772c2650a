"""asyncpg hooks: the statement methods of ``Connection`` and ``PreparedStatement``.

``execute``, ``fetch``, ``fetchrow``, ``fetchval``, ``executemany``, ``fetchmany``,
``cursor`` and the four ``copy_*`` methods, on connections and on prepared statements
(which is how SQLAlchemy's asyncpg dialect runs everything). Pools hand out proxies
of the same connections, so they are covered too. The reset a pool runs on release
and the query that renders ``copy_from_query`` parameters are marked as the driver's
own (``origin.DRIVER``: round trips, not queries). ``prepare()`` itself is not a
statement and is not recorded. asyncpg never sends an implicit BEGIN: the BEGIN,
SAVEPOINT, COMMIT and ROLLBACK of ``conn.transaction()`` go through ``execute`` and are
recorded as transaction control.
"""

from __future__ import annotations

from time import perf_counter as _now
from types import ModuleType
from typing import Any

from pytest_dbarch.origin import driver_housekeeping
from pytest_dbarch.queries.recorder import ACTIVE, HOOKED, Counting, record, text_of

DRIVER = "asyncpg"


def _status_rows(status: Any) -> int:
    """Rows from a command status such as ``INSERT 0 3`` or ``COPY 10``."""
    if isinstance(status, str):
        last = status.rpartition(" ")[2]
        if last.isdigit():
            return int(last)
    return -1


def _list_rows(result: Any) -> int:
    return len(result) if isinstance(result, list) else -1


def _row_rows(result: Any) -> int:
    return 0 if result is None else 1


def _query(original: Any, rows_of: Any) -> Any:
    """``Connection.execute/fetch/fetchrow/fetchval(query, *args)``."""

    async def method(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if not ACTIVE:
            return await original(self, query, *args, **kwargs)
        start = _now()
        error, result = True, None
        try:
            result = await original(self, query, *args, **kwargs)
            error = False
            return result
        finally:
            record(self, text_of(query), args or None, 0, _now() - start, -1 if error else rows_of(result),
                   False, error, DRIVER)

    method.__wrapped__ = original  # type: ignore[attr-defined]
    return method


def _query_many(original: Any) -> Any:
    """``Connection.executemany/fetchmany(query, args)``: one statement, many parameter sets."""

    async def method(self: Any, query: Any, args: Any, *rest: Any, **kwargs: Any) -> Any:
        if not ACTIVE:
            return await original(self, query, args, *rest, **kwargs)
        counting = Counting(args) if hasattr(args, "__iter__") else None
        start = _now()
        error, result = True, None
        try:
            result = await original(self, query, counting if counting is not None else args, *rest, **kwargs)
            error = False
            return result
        finally:
            first, n = (counting.first, counting.n) if counting is not None else (None, 1)
            record(self, text_of(query), first, max(n, 1), _now() - start, _list_rows(result), False, error, DRIVER)

    method.__wrapped__ = original  # type: ignore[attr-defined]
    return method


def _prepared(original: Any, rows_of: Any) -> Any:
    """``PreparedStatement.fetch/fetchrow/fetchval(*args)``."""

    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not ACTIVE:
            return await original(self, *args, **kwargs)
        start = _now()
        error, result = True, None
        try:
            result = await original(self, *args, **kwargs)
            error = False
            return result
        finally:
            record(self._connection, self._query, args or None, 0, _now() - start,
                   -1 if error else rows_of(result), False, error, DRIVER)

    method.__wrapped__ = original  # type: ignore[attr-defined]
    return method


def _prepared_many(original: Any) -> Any:
    """``PreparedStatement.executemany/fetchmany(args)``."""

    async def method(self: Any, args: Any, *rest: Any, **kwargs: Any) -> Any:
        if not ACTIVE:
            return await original(self, args, *rest, **kwargs)
        counting = Counting(args) if hasattr(args, "__iter__") else None
        start = _now()
        error, result = True, None
        try:
            result = await original(self, counting if counting is not None else args, *rest, **kwargs)
            error = False
            return result
        finally:
            first, n = (counting.first, counting.n) if counting is not None else (None, 1)
            record(self._connection, self._query, first, max(n, 1), _now() - start, _list_rows(result), False,
                   error, DRIVER)

    method.__wrapped__ = original  # type: ignore[attr-defined]
    return method


def _copy(original: Any, describe: Any) -> Any:
    """``copy_*``: the COPY statement asyncpg builds, described from the arguments."""

    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not ACTIVE:
            return await original(self, *args, **kwargs)
        text, params = describe(*args, **kwargs)
        start = _now()
        error, result = True, None
        try:
            result = await original(self, *args, **kwargs)
            error = False
            return result
        finally:
            record(self, text, params, 0, _now() - start, _status_rows(result), False, error, DRIVER)

    method.__wrapped__ = original  # type: ignore[attr-defined]
    return method


def _table(table_name: str, schema_name: str | None = None, **_: Any) -> str:
    return f"{schema_name}.{table_name}" if schema_name else str(table_name)


def _copy_out_of_table(table_name: str, **kwargs: Any) -> tuple[str, Any]:
    return f"COPY {_table(table_name, **kwargs)} TO STDOUT", None


def _copy_out_of_query(query: str, *args: Any, **_: Any) -> tuple[str, Any]:
    return f"COPY ({query}) TO STDOUT", args or None


def _copy_into_table(table_name: str, **kwargs: Any) -> tuple[str, Any]:
    return f"COPY {_table(table_name, **kwargs)} FROM STDIN", None


def _cursor(original: Any, prepared: bool) -> Any:
    """``cursor()`` returns a factory; the statement runs when it is awaited or iterated."""

    def cursor(self: Any, *args: Any, **kwargs: Any) -> Any:
        factory = original(self, *args, **kwargs)
        if ACTIVE:
            if prepared:
                conn, text, params = self._connection, self._query, args
            else:
                conn, text, params = self, text_of(args[0] if args else kwargs.get("query")), args[1:]
            record(conn, text, params or None, 0, 0.0, -1, False, False, DRIVER)
        return factory

    cursor.__wrapped__ = original  # type: ignore[attr-defined]
    return cursor


def _housekeeping(original: Any) -> Any:
    """``Connection.reset`` (a pool runs it on every release) and ``utils._mogrify``
    (renders ``copy_from_query`` parameters with a query): the driver's own round
    trips, not the application's queries."""

    async def housekeeping(*args: Any, **kwargs: Any) -> Any:
        with driver_housekeeping():
            return await original(*args, **kwargs)

    housekeeping.__wrapped__ = original  # type: ignore[attr-defined]
    return housekeeping


def install(asyncpg: ModuleType) -> None:
    """Hook asyncpg's ``Connection`` and ``PreparedStatement`` (once)."""
    from asyncpg.connection import Connection
    from asyncpg.prepared_stmt import PreparedStatement

    if getattr(Connection, HOOKED, False):
        return
    conn_methods = vars(Connection)
    for name, rows_of in (("execute", _status_rows), ("fetch", _list_rows), ("fetchrow", _row_rows),
                          ("fetchval", _row_rows)):
        setattr(Connection, name, _query(conn_methods[name], rows_of))
    for name in ("executemany", "fetchmany"):
        if name in conn_methods:
            setattr(Connection, name, _query_many(conn_methods[name]))
    for name, describe in (("copy_from_table", _copy_out_of_table), ("copy_from_query", _copy_out_of_query),
                           ("copy_to_table", _copy_into_table), ("copy_records_to_table", _copy_into_table)):
        if name in conn_methods:
            setattr(Connection, name, _copy(conn_methods[name], describe))
    Connection.cursor = _cursor(conn_methods["cursor"], prepared=False)  # type: ignore[method-assign]
    Connection.reset = _housekeeping(conn_methods["reset"])  # type: ignore[method-assign]
    stmt_methods = vars(PreparedStatement)
    for name, rows_of in (("fetch", _list_rows), ("fetchrow", _row_rows), ("fetchval", _row_rows)):
        setattr(PreparedStatement, name, _prepared(stmt_methods[name], rows_of))
    for name in ("executemany", "fetchmany"):
        if name in stmt_methods:
            setattr(PreparedStatement, name, _prepared_many(stmt_methods[name]))
    PreparedStatement.cursor = _cursor(stmt_methods["cursor"], prepared=True)  # type: ignore[method-assign]
    from asyncpg import utils

    if hasattr(utils, "_mogrify"):  # private; without it that query counts as the app's
        utils._mogrify = _housekeeping(utils._mogrify)
    setattr(Connection, HOOKED, True)
