"""The one recording point every driver hook calls.

The logs that are recording (a test's call phase, plus any narrower block inside
it), the statement record itself (text, parameters, origin, call site, timing, rows),
and the relationship hint SQLAlchemy leaves for the driver call that follows. The
driver hooks (``capture_psycopg``, ``capture_psycopg2``, ``capture_asyncpg``,
``capture_sqlalchemy``) only decide *what* was sent and call ``record``; so every
driver produces the same ``Statement``.

While nothing records, a hook costs one truthiness test of ``ACTIVE``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from pytest_dbarch.origin import APP, BACKGROUND, ORIGIN
from pytest_dbarch.queries.handoff import Frames, statement_stack
from pytest_dbarch.queries.fingerprint import TX, kind_of
from pytest_dbarch.queries.statement import Relationship, Statement


class Sink(Protocol):
    statements: list[Statement]


#: The logs currently recording, outermost first.
ACTIVE: list[Sink] = []
#: (driver connection, Relationship) set by SQLAlchemy just before the driver call.
HINT: list[Any] = [None, None]
#: Class attribute set on every connection class whose driver calls are hooked; the
#: SQLAlchemy engine events leave statements on such connections to the driver hook.
HOOKED = "_dbarch_hooked"


@contextmanager
def recording(log: Sink) -> Iterator[Sink]:
    """Record every statement sent inside the block into ``log``."""
    ACTIVE.append(log)
    try:
        yield log
    finally:
        ACTIVE.remove(log)


def text_of(query: Any, conn: Any = None) -> str:
    """The statement text of a str, bytes or composed SQL object."""
    if type(query) is str:
        return query
    if isinstance(query, (bytes, bytearray, memoryview)):
        return bytes(query).decode("utf-8", "replace")
    as_string = getattr(query, "as_string", None)
    if as_string is not None:
        try:
            return str(as_string(conn))
        except Exception:
            pass
    return str(query)


def _relationship(conn: Any, text: str) -> Relationship | None:
    """Take the hint if it is for this connection (transaction control never takes it)."""
    if HINT[0] is conn and kind_of(text) != TX:
        relationship = HINT[1]
        HINT[0] = HINT[1] = None
        return relationship  # type: ignore[no-any-return]
    return None


def _append(statement: Statement) -> None:
    if statement.origin == BACKGROUND:
        return
    for log in ACTIVE:
        log.statements.append(statement)


def record(
    conn: Any,
    text: str,
    params: Any,
    many: int,
    duration: float,
    rows: int,
    began: bool,
    error: bool,
    driver: str,
    depth: int = 3,
) -> Statement:
    """Add one statement (after an implicit BEGIN when ``began``) to every active log."""
    origin = ORIGIN.get()
    frames = app_stack(origin, depth + 1)
    where = (frames.handed, id(conn), threading.get_ident(), frames.unit, frames.bare)
    if began:
        _append(Statement("BEGIN", None, origin, 0.0, 0, 0, frames.stack, None, False, driver, *where))
    statement = Statement(
        text, params, origin, duration, rows, many, frames.stack, _relationship(conn, text), error, driver, *where
    )
    _append(statement)
    return statement


def record_word(word: str, driver: str, depth: int = 3, conn: Any = None) -> None:
    """Transaction control the driver sends by itself (COMMIT, ROLLBACK, BEGIN)."""
    origin = ORIGIN.get()
    frames = app_stack(origin, depth + 1)
    connection = 0 if conn is None else id(conn)
    _append(Statement(word, None, origin, 0.0, 0, 0, frames.stack, None, False, driver, frames.handed,
                      connection, threading.get_ident(), frames.unit, frames.bare))


_NOT_THE_APPLICATION = Frames((), False, 0, False)


def app_stack(origin: str, depth: int) -> Frames:
    """The user frames of an application statement, completed with the frames of the
    place its work was handed over from (``handoff``)."""
    if origin != APP:
        return _NOT_THE_APPLICATION
    return statement_stack(depth)  # ``depth`` counts from app_stack's caller's caller


class Counting:
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
