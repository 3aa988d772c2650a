"""The asyncpg connection of a transaction-mode test: everything rolls back.

The fixture starts the outer transaction with asyncpg's own ``transaction()``, so the
test's ``async with conn.transaction():`` blocks (and SQLAlchemy's asyncpg dialect,
which uses them) become savepoints inside it. ``close()`` and ``terminate()`` wait for
the end of the test; the end rolls back. A test that ends the outer transaction itself
(a literal ``COMMIT``) is caught by comparing transaction ids.

One difference from production remains, and the fixture's docstring says it: asyncpg
runs a statement outside a ``transaction()`` block in autocommit, but here every
statement is inside the test's transaction, so one that fails aborts the rest of the
test's work unless it ran in a ``transaction()`` block (a savepoint).

Imported only by the fixture, when asyncpg is installed.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from pytest_dbarch.origin import plugin_statements

_XID = "SELECT txid_current()"
SAVEPOINT = "dbarch_test"


class IsolatedConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection held in the test's transaction until the test ends."""

    _dbarch_transaction: Any = None
    _dbarch_xid: int | None = None

    async def dbarch_begin(self) -> None:
        with plugin_statements():
            self._dbarch_transaction = self.transaction()
            await self._dbarch_transaction.start()
            # Where the end returns to if a failed statement aborted the transaction.
            await self.execute(f"SAVEPOINT {SAVEPOINT}")
            self._dbarch_xid = await self.fetchval(_XID)

    async def close(self, *, timeout: float | None = None) -> None:
        """Kept open for the rest of the test; ``dbarch_end`` really closes it."""

    def terminate(self) -> None:
        """Kept open for the rest of the test; ``dbarch_end`` really closes it."""

    async def dbarch_end(self) -> bool:
        """Roll everything back and close; False when the test ended the transaction
        itself (or broke the connection)."""
        intact = False
        with plugin_statements():
            try:
                if not self.is_closed():
                    if self.is_in_transaction():
                        # Fails unless this is still the test's transaction (its savepoint exists).
                        await self.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
                        intact = await self.fetchval(_XID) == self._dbarch_xid
                    await self._dbarch_transaction.rollback()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                intact = False
            finally:
                await self.dbarch_close()
        return intact

    async def dbarch_close(self) -> None:
        if not self.is_closed():
            await asyncpg.Connection.close(self)
