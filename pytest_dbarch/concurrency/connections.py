"""The connections workers run on: one psycopg connection each, recording every action.

A ``WorkerConnection`` is an ordinary psycopg 3 connection whose cursors and
``commit()`` / ``rollback()`` report to a ``Recorder``: the statement, its parameters,
start and end time, the error it raised. A schedule installs a *gate* on the recorder
that holds each action until its step comes; a plain run has none.

``probe`` checks the harness's session settings once, then ``connect`` passes them in each
worker's start-up packet. ``deadlock_timeout`` is a superuser setting (or one granted with
``GRANT SET ON PARAMETER``, PostgreSQL 15+): when the role may not set it, the server's
value stays and the result says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import IsolationLevel, pq, sql

from pytest_dbarch.concurrency.timeline import COMMIT, ROLLBACK, STATEMENT, Action, Timeline, show_params
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.origin import plugin_statements

_ACTIVE = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)
ISOLATION_LEVELS = {
    "read uncommitted": IsolationLevel.READ_UNCOMMITTED,
    "read committed": IsolationLevel.READ_COMMITTED,
    "repeatable read": IsolationLevel.REPEATABLE_READ,
    "serializable": IsolationLevel.SERIALIZABLE,
}

#: A gate is called before each action with (actor, kind, sql); it may block.
Gate = Callable[[str, str, str], int | None]


def isolation_level(value: Any) -> IsolationLevel | None:
    """``None``, a psycopg ``IsolationLevel`` or its name ('serializable', 'repeatable read', ...)."""
    if value is None or isinstance(value, IsolationLevel):
        return value
    if isinstance(value, str):
        key = " ".join(value.replace("_", " ").lower().split())
        if key in ISOLATION_LEVELS:
            return ISOLATION_LEVELS[key]
    raise DbarchError(
        f"isolation_level={value!r} is not an isolation level",
        f"give one of {', '.join(repr(k) for k in ISOLATION_LEVELS)} or a psycopg.IsolationLevel",
    )


class Recorder:
    """Turns one connection's actions into timeline entries; holds them at the gate."""

    def __init__(self, actor: str, timeline: Timeline, gate: Gate | None = None) -> None:
        self.actor = actor
        self.timeline = timeline
        self.gate = gate
        self.transaction = 1
        self._ungated = threading.local()

    @contextmanager
    def action(self, kind: str, text: str, params: Any = None) -> Iterator[Action | None]:
        if getattr(self._ungated, "on", False):
            yield None
            return
        step = self.gate(self.actor, kind, text) if self.gate is not None else None
        action = self.timeline.add(Action(self.actor, self.transaction, kind, text,
                                          show_params(text, params), self.timeline.now(), step=step))
        try:
            yield action
        except BaseException as exc:
            action.error = getattr(exc, "sqlstate", None) or type(exc).__name__
            action.message = (str(exc).splitlines() or [""])[0][:160]
            raise
        finally:
            action.end = self.timeline.now()
            if kind in (COMMIT, ROLLBACK):
                self.transaction += 1

    def failed_transaction_ended(self) -> None:
        """A transaction ended without a recorded COMMIT/ROLLBACK (the connection broke)."""
        self.transaction += 1

    @contextmanager
    def ungated(self) -> Iterator[None]:
        """Statements sent inside are neither gated nor recorded (e.g. SQLAlchemy's
        first-connect queries, which belong to no step)."""
        self._ungated.on = True
        try:
            yield
        finally:
            self._ungated.on = False


def _text(query: Any, conn: psycopg.Connection[Any]) -> str:
    if isinstance(query, str):
        return query
    if isinstance(query, bytes):
        return query.decode("utf-8", "replace")
    if isinstance(query, sql.Composable):
        return query.as_string(conn)
    return str(query)


class _Recording:
    """Cursor behaviour shared by the client- and server-side cursors of a worker."""

    _conn: Any

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        recorder: Recorder | None = getattr(self._conn, "dbarch_recorder", None)
        if recorder is None:
            return super().execute(query, params, **kwargs)  # type: ignore[misc]
        with recorder.action(STATEMENT, _text(query, self._conn), params):
            return super().execute(query, params, **kwargs)  # type: ignore[misc]


class RecordingCursor(_Recording, psycopg.Cursor[Any]):
    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        recorder: Recorder | None = getattr(self._conn, "dbarch_recorder", None)
        if recorder is None:
            return super().executemany(query, params_seq, **kwargs)
        with recorder.action(STATEMENT, _text(query, self._conn)):
            return super().executemany(query, params_seq, **kwargs)


class RecordingServerCursor(_Recording, psycopg.ServerCursor[Any]):
    pass


class WorkerConnection(psycopg.Connection[Any]):
    """A worker's own connection; ``commit()`` and ``rollback()`` are recorded (and gated)."""

    dbarch_recorder: Recorder | None = None

    @property
    def in_transaction(self) -> bool:
        return self.info.transaction_status in _ACTIVE

    def commit(self) -> None:
        if self.dbarch_recorder is None or not self.in_transaction:
            return super().commit()
        with self.dbarch_recorder.action(COMMIT, "COMMIT"):
            super().commit()

    def rollback(self) -> None:
        if self.dbarch_recorder is None or not self.in_transaction:
            return super().rollback()
        with self.dbarch_recorder.action(ROLLBACK, "ROLLBACK"):
            super().rollback()

    def quiet_rollback(self) -> None:
        """The harness's own rollback after a failure: not an application step."""
        if self.closed or not self.in_transaction:
            return
        try:
            psycopg.Connection.rollback(self)
        except psycopg.Error:
            pass
        if self.dbarch_recorder is not None:
            self.dbarch_recorder.failed_transaction_ended()


@dataclass
class SessionSettings:
    """What every worker connection sets before its first transaction."""

    dsn: str
    isolation: IsolationLevel | None = None
    deadlock_timeout: str | None = "100ms"  # None: leave the server's value
    lock_timeout: str | None = None
    #: Filled in by ``probe``: what the workers set at start-up, the deadlock_timeout in
    #: force, and why it is not ours when the role may not set it.
    startup: dict[str, str] = field(default_factory=dict)
    effective_deadlock_timeout: str = ""
    deadlock_timeout_seconds: float = 1.0
    deadlock_timeout_note: str = ""


def connect(settings: SessionSettings, actor: str, timeline: Timeline, gate: Gate | None = None) -> WorkerConnection:
    """One worker connection, set up and recording (the session settings travel in the
    start-up packet: no extra round trip). ``probe`` must have checked them first."""
    params: dict[str, Any] = {"application_name": f"dbarch-concurrency {actor}"[:63]}
    if settings.startup:
        params["options"] = " ".join(f"-c {name}={_escape(value)}" for name, value in settings.startup.items())
    with plugin_statements():
        try:
            conn = WorkerConnection.connect(settings.dsn, cursor_factory=RecordingCursor, **params)
        except psycopg.OperationalError as exc:
            raise DbarchError(
                f"a concurrency worker could not connect to the test's database: {exc}",
                "check the server's max_connections (each worker needs its own connection)",
            ) from None
    conn.server_cursor_factory = RecordingServerCursor
    conn.isolation_level = settings.isolation
    conn.dbarch_recorder = Recorder(actor, timeline, gate)
    return conn


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(" ", "\\ ")


def probe(conn: psycopg.Connection[Any], settings: SessionSettings) -> None:
    """Check the session settings on ``conn`` (an autocommit connection of the same role)
    before any worker connects with them: a bad value is one clear error, and a
    ``deadlock_timeout`` the role may not set is left out, with a note, instead of
    failing every connection."""
    if settings.deadlock_timeout:
        try:
            conn.execute(sql.SQL("SET deadlock_timeout = {}").format(sql.Literal(settings.deadlock_timeout)))
            settings.startup["deadlock_timeout"] = settings.deadlock_timeout
        except psycopg.errors.InsufficientPrivilege:
            settings.deadlock_timeout_note = (
                f"deadlock_timeout stays at the server's value: role {conn.info.user!r} may not set it "
                "(superuser, or GRANT SET ON PARAMETER deadlock_timeout on PostgreSQL 15+), so each "
                "deadlock takes that long to detect"
            )
        except psycopg.errors.InvalidParameterValue as exc:
            raise DbarchError(
                f"dbarch_concurrency_deadlock_timeout = {settings.deadlock_timeout!r}: {exc}",
                "give a duration such as 100ms or 1s, or 'server' to keep the server's value",
            ) from None
    if settings.lock_timeout:
        try:
            conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(settings.lock_timeout)))
            settings.startup["lock_timeout"] = settings.lock_timeout
        except psycopg.errors.InvalidParameterValue as exc:
            raise DbarchError(
                f"dbarch_concurrency_lock_timeout = {settings.lock_timeout!r}: {exc}",
                "give a duration such as 2s, or leave it empty for no lock timeout",
            ) from None
    row = conn.execute(
        "SELECT current_setting('deadlock_timeout'), setting::float / 1000 FROM pg_settings "
        "WHERE name = 'deadlock_timeout'"
    ).fetchone()
    if row:
        settings.effective_deadlock_timeout, settings.deadlock_timeout_seconds = str(row[0]), float(row[1])
