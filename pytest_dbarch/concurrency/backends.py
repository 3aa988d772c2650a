"""The server's view of the workers: who waits for whom, and stopping the stuck ones.

One autocommit *monitor* connection per run reads ``pg_stat_activity`` and
``pg_blocking_pids`` (a worker waiting for a lock has a non-empty list), cancels a
stuck statement with ``pg_cancel_backend`` and ends a stuck session with
``pg_terminate_backend``. Its statements are the plugin's own: they never count as the
test's queries.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from pytest_dbarch.origin import plugin_statements


@dataclass(frozen=True)
class Activity:
    """One backend as ``pg_stat_activity`` shows it."""

    pid: int
    state: str
    wait_event_type: str
    wait_event: str
    blocked_by: tuple[int, ...]
    query: str
    application_name: str
    wrote: bool  # has a transaction id: it changed something not yet committed

    @property
    def waits_for_lock(self) -> bool:
        return self.wait_event_type == "Lock" or bool(self.blocked_by)

    def describe(self) -> str:
        query = " ".join(self.query.split())
        query = query if len(query) <= 160 else query[:157] + "..."
        who = self.application_name or "a client"
        return f"pid {self.pid} ({who}, {self.state or 'unknown state'}; last statement: {query or '-'})"


_ACTIVITY = (
    "SELECT pid, coalesce(state, ''), coalesce(wait_event_type, ''), coalesce(wait_event, ''), "
    "pg_blocking_pids(pid), coalesce(query, ''), coalesce(application_name, ''), backend_xid IS NOT NULL "
    "FROM pg_stat_activity "
)


class Monitor:
    """An autocommit connection that watches the workers' backends."""

    def __init__(self, dsn: str) -> None:
        with plugin_statements():
            self.conn = psycopg.connect(dsn, autocommit=True, row_factory=tuple_row,
                                        application_name="dbarch-concurrency monitor")
        self.pid = self.conn.info.backend_pid

    def _rows(self, query: str, params: Any) -> list[tuple[Any, ...]]:
        with plugin_statements():
            return self.conn.execute(query, params).fetchall()

    def activity(self, pids: Iterable[int]) -> dict[int, Activity]:
        rows = self._rows(_ACTIVITY + "WHERE pid = ANY(%s)", (list(pids),))
        return {row[0]: _activity(row) for row in rows}

    def blocked(self, pids: Iterable[int]) -> dict[int, tuple[int, ...]]:
        """The pids each of ``pids`` waits for; only those that wait."""
        rows = self._rows("SELECT pid, pg_blocking_pids(pid) FROM unnest(%s::int[]) AS pid", (list(pids),))
        return {row[0]: tuple(row[1]) for row in rows if row[1]}

    def others_with_writes(self, exclude: Iterable[int]) -> list[Activity]:
        """Other sessions on this database holding uncommitted changes (e.g. the test's own
        connection that has not committed its arrange step): workers cannot see that data
        and block on its locks."""
        rows = self._rows(
            _ACTIVITY + "WHERE datname = current_database() AND backend_xid IS NOT NULL "
            "AND NOT pid = ANY(%s)",
            ([*exclude, self.pid],),
        )
        return [_activity(row) for row in rows]

    def alive(self, pids: Iterable[int]) -> list[int]:
        rows = self._rows("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),))
        return sorted(row[0] for row in rows)

    def cancel(self, pids: Iterable[int]) -> None:
        self._rows("SELECT pg_cancel_backend(pid) FROM unnest(%s::int[]) AS pid", (list(pids),))

    def terminate(self, pids: Iterable[int]) -> None:
        self._rows("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (list(pids),))

    def relation_name(self, oid: int) -> str | None:
        rows = self._rows("SELECT %s::oid::regclass::text", (oid,))
        return str(rows[0][0]) if rows else None

    def close(self) -> None:
        """Close, and wait until the server has ended the backend (it does so a moment after
        the client leaves): the monitor is the harness's last connection, so when this
        returns the harness has nothing left on the server."""
        if not self.conn.closed:
            close_and_wait(self.conn)


def close_and_wait(*conns: psycopg.Connection[Any], timeout: float = 5.0) -> None:
    """Close the connections and wait for the server to close its end of each socket,
    which it does when the backend process has exited (a plain ``close()`` returns while
    the backend is still in ``pg_stat_activity``)."""
    sockets = []
    for conn in conns:
        try:
            sockets.append(socket.socket(fileno=os.dup(conn.fileno())))
        except (OSError, psycopg.Error):
            pass
        try:
            conn.close()
        except Exception:
            pass
    deadline = time.monotonic() + timeout
    for sock in sockets:
        try:
            sock.settimeout(max(0.0, deadline - time.monotonic()))
            while sock.recv(4096):
                pass
        except OSError:  # a timeout or a reset: nothing more to wait for
            pass
        finally:
            sock.close()


def _activity(row: tuple[Any, ...]) -> Activity:
    return Activity(row[0], row[1], row[2], row[3], tuple(row[4] or ()), row[5], row[6], bool(row[7]))
