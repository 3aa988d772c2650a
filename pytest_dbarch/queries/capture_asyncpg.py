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


def _on_connection(self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, str, Any]:
    """``Connection.fetch(query, *args)`` and friends."""
    return self, text_of(args[0] if args else kwargs.get("query", kwargs.get("command"))), args[1:] or None


def _on_statement(self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, str, Any]:
    """``PreparedStatement.fetch(*args)`` and friends."""
    return self._connection, self._query, args or None


def _copying(describe: Any) -> Any:
    """``copy_*``: the COPY statement asyncpg builds, described from the arguments."""

    def locate(self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, str, Any]:
        return (self, *describe(*args, **kwargs))

    return locate


def _statement(original: Any, locate: Any, rows_of: Any, batch_at: int | None = None) -> Any:
    """Record one call of a statement method. ``locate`` tells the connection, text and
    parameters from the arguments; ``batch_at`` is the position of an executemany's
    parameter sets (one statement of many rows)."""

    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not ACTIVE:
            return await original(self, *args, **kwargs)
        conn, text, params = locate(self, args, kwargs)
        many = 0
        counting = None
        if batch_at is not None:
            many = 1
            if len(args) > batch_at and hasattr(args[batch_at], "__iter__"):
                counting = Counting(args[batch_at])
                args = (*args[:batch_at], counting, *args[batch_at + 1:])
        start = _now()
        error, result = True, None
        try:
            result = await original(self, *args, **kwargs)
            error = False
            return result
        finally:
            if counting is not None:
                params, many = counting.first, max(counting.n, 1)
            record(conn, text, params, many, _now() - start, -1 if error else rows_of(result), False, error, DRIVER)

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
    from asyncpg import utils
    from asyncpg.connection import Connection
    from asyncpg.prepared_stmt import PreparedStatement

    if getattr(Connection, HOOKED, False):
        return
    rows = {"execute": _status_rows, "fetch": _list_rows, "fetchrow": _row_rows, "fetchval": _row_rows,
            "executemany": _list_rows, "fetchmany": _list_rows}
    copies = {"copy_from_table": _copy_out_of_table, "copy_from_query": _copy_out_of_query,
              "copy_to_table": _copy_into_table, "copy_records_to_table": _copy_into_table}
    for cls, locate, batch_at in ((Connection, _on_connection, 1), (PreparedStatement, _on_statement, 0)):
        methods = vars(cls)
        for name, rows_of in rows.items():
            if name in methods:
                many = batch_at if name in ("executemany", "fetchmany") else None
                setattr(cls, name, _statement(methods[name], locate, rows_of, many))
        cls.cursor = _cursor(methods["cursor"], prepared=cls is PreparedStatement)  # type: ignore[method-assign]
    for name, describe in copies.items():
        if name in vars(Connection):
            setattr(Connection, name, _statement(vars(Connection)[name], _copying(describe), _status_rows))
    Connection.reset = _housekeeping(vars(Connection)["reset"])  # type: ignore[method-assign]
    if hasattr(utils, "_mogrify"):  # private; without it that query counts as the app's
        utils._mogrify = _housekeeping(utils._mogrify)
    setattr(Connection, HOOKED, True)
