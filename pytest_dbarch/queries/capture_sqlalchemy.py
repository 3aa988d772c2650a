"""SQLAlchemy hooks: what only SQLAlchemy knows, and capture for drivers not hooked.

Class-level listeners, so every engine and session is seen, async ones included
(their events fire on the sync engine):

- Session ``do_orm_execute`` tells which relationship a SELECT loads and whether lazily;
- Engine ``before_cursor_execute`` hands that on to the driver call that follows;
- for a driver whose own calls are not hooked (pg8000, a psycopg2 connection made
  without ``psycopg2.connect``, a hook switched off...), ``before_cursor_execute`` /
  ``after_cursor_execute`` / ``handle_error`` record the statement at the engine, with
  ``executemany`` as one statement of many rows, and ``begin`` / ``commit`` /
  ``rollback`` as transaction control.

Exactly once: a statement is recorded at the engine only when the driver connection's
class is not hooked (``recorder.HOOKED``), and every call a hooked connection makes
reaches its driver hook; so no statement is recorded by both, and none by neither.
"""

from __future__ import annotations

import threading
from time import perf_counter as _now
from types import ModuleType
from typing import Any

from pytest_dbarch.origin import ORIGIN, driver_housekeeping
from pytest_dbarch.queries.recorder import ACTIVE, HINT, HOOKED, app_stack, record_word
from pytest_dbarch.queries.statement import Relationship, Statement

DRIVER = "sqlalchemy"
_ORM_OPTION = "_dbarch_relationship"
_INSTALLED: set[str] = set()
#: Statements seen by ``before_cursor_execute`` at the engine, by cursor, until
#: ``after_cursor_execute`` or ``handle_error`` completes them.
_pending: dict[int, tuple[float, Statement]] = {}


def _driver_connection(conn: Any) -> Any:
    try:
        return conn.connection.driver_connection
    except Exception:  # an invalidated or closed connection
        return None


def _hooked(driver_connection: Any) -> bool:
    return getattr(type(driver_connection), HOOKED, False)


def before_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    if not ACTIVE:
        return
    relationship = context.execution_options.get(_ORM_OPTION) if context is not None else None
    driver = _driver_connection(conn)
    if _hooked(driver):
        if relationship is not None:
            HINT[0], HINT[1] = driver, relationship
        return
    origin = ORIGIN.get()
    many = len(parameters) if executemany and isinstance(parameters, (list, tuple)) else 0
    params = (parameters[0] if parameters else None) if many else parameters
    frames = app_stack(origin, 3)
    entry = Statement(statement, params, origin, 0.0, -1, many, frames.stack, relationship, False, DRIVER,
                      frames.handed, id(driver), threading.get_ident(), frames.unit, frames.bare)
    _pending[id(cursor)] = (_now(), entry)


def _finish(cursor: Any, error: bool) -> None:
    pending = _pending.pop(id(cursor), None)
    if pending is None:
        return
    start, entry = pending
    entry.duration, entry.error = _now() - start, error
    if not error:
        try:
            entry.rows = cursor.rowcount
        except Exception:
            pass
    for log in ACTIVE:
        log.statements.append(entry)


def after_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    if _pending:
        _finish(cursor, error=False)


def handle_error(context: Any) -> None:
    if _pending and context.cursor is not None:
        _finish(context.cursor, error=True)


def _transaction_word(word: str) -> Any:
    def listener(conn: Any, *args: Any) -> None:
        if ACTIVE and not _hooked(_driver_connection(conn)):
            record_word(word, DRIVER, depth=2, conn=_driver_connection(conn))

    return listener


def install_engine(sqlalchemy: ModuleType) -> None:
    """Engine-class listeners (once)."""
    if "engine" in _INSTALLED:
        return
    _INSTALLED.add("engine")
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "before_cursor_execute", before_cursor_execute)
    event.listen(Engine, "after_cursor_execute", after_cursor_execute)
    event.listen(Engine, "handle_error", handle_error)
    for word in ("begin", "commit", "rollback"):
        event.listen(Engine, word, _transaction_word(word.upper()))
    event.listen(Engine, "do_connect", _quiet_initialize)


def _quiet_initialize(dialect: Any, *args: Any) -> None:
    """Before an engine's connection is made: mark what ``dialect.initialize`` sends on
    the first connection (server version, schema, isolation level, type oids) as the
    driver's own round trips, so they never count toward a budget or an N+1 rule, and
    a count does not depend on which test connected first."""
    if "initialize" in vars(dialect):
        return
    original = dialect.initialize

    def initialize(connection: Any) -> None:
        with driver_housekeeping():
            original(connection)

    dialect.initialize = initialize


def install_orm(orm: ModuleType) -> None:
    """The Session-class listener that names relationship loads (once)."""
    if "orm" in _INSTALLED:
        return
    _INSTALLED.add("orm")
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    event.listen(Session, "do_orm_execute", _on_orm_execute)


def _on_orm_execute(state: Any) -> None:
    if not ACTIVE or not state.is_select or not state.is_relationship_load:
        return
    relationship = _relationship_of(state)
    if relationship is not None:
        state.update_execution_options(**{_ORM_OPTION: relationship})


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
