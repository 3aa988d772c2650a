"""What a migration runner tells its observers about every statement it runs.

The runner (Alembic or plain SQL) owns the connection and the order of revisions; the
lock-safety lint and the lock report only watch. They meet here, so neither imports the
other's internals. Observers are told about the *first* upgrade of each revision only
(not the round-trip downgrades and re-upgrades), on the very connection the migration
runs on, so they can read catalog facts as the migration sees them (tables it created,
rows already there) and the locks it holds (``pg_locks`` for ``pg_backend_pid()``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import psycopg

    from pytest_dbarch.findings import Finding


@dataclass(frozen=True)
class RanStatement:
    """One statement a migration sent to the server."""

    revision: str  # the revision id (Alembic) or file stem (SQL directory)
    sql: str  # as sent, parameters not interpolated
    parameters: Any = None
    in_transaction: bool = True  # a transaction block was open (False: autocommit)
    where: str = ""  # file:line of the migration code that issued it, when known


class StatementObserver(Protocol):
    """Receives a revision's statements in order; returns its Findings at the end.

    ``connection`` is the raw psycopg connection the migration runs on. An observer may
    run read-only catalog queries on it between statements, and must leave the
    transaction state as it found it (never commit, roll back, or fail the transaction).
    ``end_revision`` is called after the revision's last statement; the revision's
    transaction may still be open (env.py may run all revisions in one transaction):
    ``connection.info.transaction_status`` tells.
    """

    def begin_revision(self, revision: str, connection: psycopg.Connection) -> None: ...

    def before_statement(self, statement: RanStatement, connection: psycopg.Connection) -> None: ...

    def after_statement(
        self,
        statement: RanStatement,
        connection: psycopg.Connection,
        elapsed: float,
        error: BaseException | None,
    ) -> None: ...

    def end_revision(self, revision: str, connection: psycopg.Connection) -> list[Finding]: ...
