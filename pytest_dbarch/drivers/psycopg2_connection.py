"""The psycopg2 connection of a transaction-mode test: commits stay inside the test.

Like psycopg 3's ``SavepointConnection`` (``postgres/isolation.py``): the connection
sits in an outer transaction with a savepoint; ``commit()`` releases and re-opens the
savepoint, ``rollback()`` returns to it (so ``with conn:`` blocks and SQLAlchemy's
psycopg2 dialect work unchanged), ``close()`` waits for the end of the test, and the
end rolls everything back. A test that ends the outer transaction itself (a literal
``COMMIT``) is caught by comparing transaction ids.

Imported only by the fixture, when psycopg2 is installed.
"""

from __future__ import annotations

import psycopg2
import psycopg2.errors
from psycopg2 import extensions

from pytest_dbarch.origin import plugin_statements, transaction_control

SAVEPOINT = "dbarch_test"
_IDLE, _INTRANS, _INERROR = (
    extensions.TRANSACTION_STATUS_IDLE,
    extensions.TRANSACTION_STATUS_INTRANS,
    extensions.TRANSACTION_STATUS_INERROR,
)


class IsolatedConnection(extensions.connection):  # type: ignore[misc]
    """A psycopg2 connection whose commit and rollback stay inside the test's transaction."""

    _dbarch_commits_itself = True  # capture: its commit() is savepoint work, not a COMMIT
    _dbarch_xid: int | None = None

    def _run(self, sql: str) -> object:
        cur = self.cursor()
        try:
            cur.execute(sql)
            return cur.fetchone()[0] if cur.description else None
        finally:
            cur.close()

    def dbarch_begin(self) -> None:
        with plugin_statements():
            self._dbarch_xid = self._run(f"SAVEPOINT {SAVEPOINT}; SELECT txid_current()")  # type: ignore[assignment]

    def commit(self) -> None:
        status = self.get_transaction_status()
        if status == _INERROR:
            # A real COMMIT here would end the outer transaction; PostgreSQL would roll it back.
            raise psycopg2.errors.InFailedSqlTransaction(
                "current transaction is aborted; call rollback() before committing"
            )
        if status == _INTRANS:
            with transaction_control():
                self._run(f"RELEASE SAVEPOINT {SAVEPOINT}; SAVEPOINT {SAVEPOINT}")

    def rollback(self) -> None:
        if self.get_transaction_status() in (_INTRANS, _INERROR):
            with transaction_control():
                self._run(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")

    def close(self) -> None:
        """Kept open for the rest of the test; ``dbarch_end`` really closes it."""

    def dbarch_end(self) -> bool:
        """Roll everything back and close; False when the test ended the transaction
        itself (or broke the connection)."""
        intact = False
        with plugin_statements():
            try:
                status = self.get_transaction_status()
                if status in (_INTRANS, _INERROR):
                    if status == _INERROR:
                        self._run(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
                    intact = self._run("SELECT txid_current()") == self._dbarch_xid
                extensions.connection.rollback(self)
            except psycopg2.Error:
                intact = False
            finally:
                self.dbarch_close()
        return intact

    def dbarch_close(self) -> None:
        if not self.closed:
            extensions.connection.close(self)
