"""Per-test isolation: a rolled-back transaction, or a clone of the template.

``transaction``: all of a test's sync fixtures share one psycopg connection that sits
in an outer transaction with a savepoint. Its ``commit()`` releases and re-opens the
savepoint and its ``rollback()`` rolls back to it, so code under test may commit (the
SQLAlchemy dialect commits through these methods) while everything still vanishes when
the test ends. A test that ends the outer transaction itself (a literal ``COMMIT``) is
caught: the work database is rebuilt and the test gets an error.

``clone``: a database of its own, ``CREATE DATABASE ... TEMPLATE``, dropped afterwards
off the critical path.
"""

from __future__ import annotations

import select
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import tuple_row

from pytest_dbarch.errors import IsolationBroken
from pytest_dbarch.origin import plugin_statements, transaction_control

SAVEPOINT = "dbarch_test"
_RELEASE = f"RELEASE SAVEPOINT {SAVEPOINT}; SAVEPOINT {SAVEPOINT}".encode()
_ROLLBACK = f"ROLLBACK TO SAVEPOINT {SAVEPOINT}".encode()
_OPEN = f"SAVEPOINT {SAVEPOINT}".encode()
_XID = b"SELECT txid_current()"
_ACTIVE = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)


def _refuse_aborted(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    # A real COMMIT here would end the outer transaction; PostgreSQL would roll it back.
    if conn.info.transaction_status == pq.TransactionStatus.INERROR:
        raise psycopg.errors.InFailedSqlTransaction(
            "current transaction is aborted; call rollback() before committing"
        )


class SavepointConnection(psycopg.Connection[Any]):
    """A psycopg connection whose commit and rollback stay inside the test's transaction.

    It outlives the test: ``dbarch_end`` rolls back and resets the session, and the
    next transaction-mode test on the same database begins on it again, which saves
    a backend start per test.
    """

    _dbarch_xid: int | None = None
    _dbarch_defaults: tuple[Any, Any] | None = None

    def dbarch_begin(self) -> None:
        with plugin_statements():
            self._dbarch_begin()

    def _dbarch_begin(self) -> None:
        if self._dbarch_defaults is None:
            self._dbarch_defaults = (self.row_factory, self.prepare_threshold)
        cur = self.cursor(row_factory=tuple_row).execute(_OPEN + b"; " + _XID)
        cur.nextset()
        self._dbarch_xid = cur.fetchone()[0]  # type: ignore[index]

    def commit(self) -> None:
        _refuse_aborted(self)
        if self.info.transaction_status in _ACTIVE:
            with transaction_control():
                self.execute(_RELEASE)

    def rollback(self) -> None:
        if self.info.transaction_status in _ACTIVE:
            with transaction_control():
                self.execute(_ROLLBACK)

    def close(self) -> None:
        """Kept open for the rest of the test; ``dbarch_close`` really closes it."""

    def dbarch_end(self) -> bool:
        """Roll everything back and reset the session; False when the test ended the
        transaction itself (or broke the connection)."""
        with plugin_statements():
            return self._dbarch_end()

    def _dbarch_end(self) -> bool:
        intact = False
        try:
            if self.info.transaction_status in _ACTIVE:
                if self.info.transaction_status == pq.TransactionStatus.INERROR:
                    self.execute(_ROLLBACK)
                row = self.cursor(row_factory=tuple_row).execute(_XID).fetchone()
                intact = row is not None and row[0] == self._dbarch_xid
            psycopg.Connection.rollback(self)
            # Session state a test may leave behind: advisory locks, GUCs, temp tables.
            self.autocommit = True
            self.execute(b"DISCARD ALL")
            self.autocommit = False
            self.row_factory, self.prepare_threshold = self._dbarch_defaults  # type: ignore[misc]
        except psycopg.Error:
            intact = False
        return intact

    def dbarch_close(self) -> None:
        if not self.closed:
            psycopg.Connection.close(self)


class SavepointAsyncConnection(psycopg.AsyncConnection[Any]):
    """The async twin of ``SavepointConnection``."""

    _dbarch_xid: int | None = None

    async def dbarch_begin(self) -> None:
        with plugin_statements():
            await self._dbarch_begin()

    async def _dbarch_begin(self) -> None:
        await self.execute(_OPEN)
        row = await (await self.cursor(row_factory=tuple_row).execute(_XID)).fetchone()
        self._dbarch_xid = row[0]  # type: ignore[index]

    async def commit(self) -> None:
        _refuse_aborted(self)
        if self.info.transaction_status in _ACTIVE:
            with transaction_control():
                await self.execute(_RELEASE)

    async def rollback(self) -> None:
        if self.info.transaction_status in _ACTIVE:
            with transaction_control():
                await self.execute(_ROLLBACK)

    async def close(self) -> None:
        """Kept open for the rest of the test; ``dbarch_end`` really closes it."""

    async def dbarch_end(self) -> bool:
        with plugin_statements():
            return await self._dbarch_end()

    async def _dbarch_end(self) -> bool:
        intact = False
        try:
            if self.info.transaction_status in _ACTIVE:
                if self.info.transaction_status == pq.TransactionStatus.INERROR:
                    await self.execute(_ROLLBACK)
                row = await (await self.cursor(row_factory=tuple_row).execute(_XID)).fetchone()
                intact = row[0] == self._dbarch_xid  # type: ignore[index]
        except psycopg.Error:
            intact = False
        finally:
            if not self.closed:
                await psycopg.AsyncConnection.rollback(self)
                await psycopg.AsyncConnection.close(self)
        return intact


def broken_isolation(nodeid: str, *, rebuilt: bool = True) -> IsolationBroken:
    after = (
        "the shared database, which was rebuilt"
        if rebuilt
        else "the module's or session's database and stay there until its scope ends"
    )
    return IsolationBroken(
        f"{nodeid} ended the transaction that isolates it (a literal COMMIT, ROLLBACK or "
        f"END, or autocommit); its writes reached {after}",
        "call commit() on the connection or session instead of running COMMIT"
        + (", or mark the test @pytest.mark.dbarch(isolation='clone')" if rebuilt else ""),
    )


def _said_something(conn: psycopg.Connection[Any]) -> bool:
    """An idle connection's socket has something to read: most likely its backend was
    terminated meanwhile (a test's ``pg_terminate_backend``, a restart), so it is
    not handed out. Checked without a round trip."""
    try:
        return bool(select.select([conn.fileno()], [], [], 0)[0])
    except (OSError, ValueError, psycopg.Error):
        return True


@dataclass
class TestDatabase:
    """The database one test works in, and how it is isolated."""

    __test__ = False  # not a test class, despite the name

    name: str
    isolation: str
    dsn: str
    url: str
    async_intact: bool = True
    reusable: SavepointConnection | None = field(default=None, repr=False)
    #: A clone's first connection, opened ahead by the clone pool (``pool``).
    ready: psycopg.Connection[Any] | None = field(default=None, repr=False)
    _sync: SavepointConnection | None = field(default=None, repr=False)

    def connect(self) -> psycopg.Connection[Any]:
        """A new connection to this database (``clone`` isolation): the first time,
        the one the clone pool opened ahead."""
        conn, self.ready = self.ready, None
        if conn is not None and not conn.closed and not _said_something(conn):
            return conn
        if conn is not None:
            conn.close()
        return psycopg.connect(self.dsn)

    def shared_connection(self) -> SavepointConnection:
        """The one sync connection every fixture of a transaction-mode test uses."""
        if self._sync is None:
            conn, self.reusable = self.reusable, None
            if conn is None or conn.closed:
                conn = SavepointConnection.connect(self.dsn)
            conn.dbarch_begin()
            self._sync = conn
        return self._sync

    def end(self) -> tuple[bool, SavepointConnection | None]:
        """Roll back; returns whether isolation held, and the connection to reuse."""
        if self.ready is not None:  # opened ahead, never asked for
            self.ready.close()
            self.ready = None
        if self._sync is None:
            return self.async_intact, self.reusable
        sync, self._sync = self._sync, None
        intact = sync.dbarch_end()
        if not intact or sync.closed:
            sync.dbarch_close()
            return intact and self.async_intact, None
        return self.async_intact, sync
