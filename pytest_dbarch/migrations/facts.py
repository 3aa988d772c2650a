"""Runtime facts read from the catalog on the migration's own connection.

The lint's severities depend on what the SQL text cannot say: whether the table
already existed before the revision and holds rows, the column's old type, how volatile
a default's functions are, which locks the transaction already holds, the timeouts in
effect and the server version. Every read leaves the connection as it found it: inside
a transaction block it runs in a savepoint that is rolled back (so the locks the read
itself takes are released and never show up in the lock report, and an error cannot
abort the migration's transaction); outside one it runs on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

_SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast')"


def read(connection: psycopg.Connection[Any], query: Any, params: Any = None) -> list[tuple[Any, ...]] | None:
    """Rows of a read-only catalog query, or None when it cannot run here (a failed
    transaction, a closed connection, or the query itself failed)."""
    from psycopg import ClientCursor, pq

    if connection.closed:
        return None
    status = connection.info.transaction_status
    if status == pq.TransactionStatus.INTRANS:
        # One round trip: savepoint, query, rollback to it (releasing the query's own
        # locks), release; the parameters are bound client-side for the batch.
        text = ClientCursor(connection).mogrify(query, params) if params is not None else query
        batch = f"SAVEPOINT dbarch_facts; {text}; ROLLBACK TO SAVEPOINT dbarch_facts; RELEASE SAVEPOINT dbarch_facts"
        try:
            with connection.cursor() as cur:
                cur.execute(batch.encode())  # bytes: sent as is, no placeholder parsing
                cur.nextset()  # past SAVEPOINT, to the query's rows
                return cur.fetchall()
        except Exception:
            try:  # the query failed: undo only the savepoint, the migration's transaction lives on
                connection.execute("ROLLBACK TO SAVEPOINT dbarch_facts")
                connection.execute("RELEASE SAVEPOINT dbarch_facts")
            except Exception:
                pass
            return None
    if status != pq.TransactionStatus.IDLE:
        return None
    try:
        with connection.cursor() as cur:
            cur.execute(query, params)
            rows = cur.fetchall()
    except Exception:
        rows = None
    if not connection.autocommit and connection.info.transaction_status != pq.TransactionStatus.IDLE:
        connection.rollback()  # we opened it; close it so the migration finds the state it left
    return rows


def relation_oids(connection: psycopg.Connection[Any]) -> frozenset[int] | None:
    """Every user table, partitioned table, materialized view and index that exists now."""
    rows = read(
        connection,
        "SELECT c.oid::int8 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE c.relkind IN ('r', 'p', 'm', 'i', 'I') AND n.nspname NOT IN {_SYSTEM_SCHEMAS} "
        "AND n.nspname NOT LIKE 'pg_temp%'",
    )
    return None if rows is None else frozenset(r[0] for r in rows)


@dataclass(frozen=True)
class TableFacts:
    """What the catalog says about one relation just before a statement runs."""

    name: str  # as written in the statement
    oid: int | None = None  # None: no such relation (yet)
    regclass: str = ""  # the qualified name PostgreSQL prints
    has_rows: bool | None = None  # None: could not look
    relfilenode: int | None = None
    reltuples: float | None = None

    @property
    def exists(self) -> bool:
        return self.oid is not None

    def describe(self) -> str:
        if not self.exists:
            return f"{self.name}: does not exist yet"
        rows = {True: "has rows", False: "empty", None: "rows unknown"}[self.has_rows]
        return (
            f"{self.regclass}: {rows} (reltuples {self.reltuples:g})"
            if self.reltuples is not None
            else f"{self.regclass}: {rows}"
        )


def table_facts(connection: psycopg.Connection[Any], name: str) -> TableFacts:
    """Existence, rows (whether a first row exists, since reltuples is -1 or 0 before
    ANALYZE; one round trip via query_to_xml) and the relfilenode (a changed relfilenode
    afterwards proves a rewrite)."""
    if not name:
        return TableFacts(name)
    rows = read(
        connection,
        "SELECT c.oid::int8, c.oid::regclass::text, c.relfilenode::int8, c.reltuples::float8, "
        "CASE WHEN c.relkind IN ('r', 'p', 'm') THEN query_to_xml("
        "format('SELECT 1 AS x FROM %%s LIMIT 1', c.oid::regclass), false, true, '')::text <> '' END "
        "FROM pg_class c WHERE c.oid = to_regclass(%s)",
        (name,),
    )
    if not rows:
        return TableFacts(name)
    oid, regclass, relfilenode, reltuples, has_rows = rows[0]
    return TableFacts(name, oid, regclass, has_rows, relfilenode, reltuples)


def index_table(connection: psycopg.Connection[Any], index: str) -> str:
    """The table an index belongs to ('' when the index does not exist)."""
    rows = read(
        connection,
        "SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = to_regclass(%s)",
        (index,),
    )
    return rows[0][0] if rows else ""


def column_type(connection: psycopg.Connection[Any], table: str, column: str) -> str:
    rows = read(
        connection,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attname = %s AND NOT attisdropped",
        (table, column.strip('"') if column.startswith('"') else column.lower()),
    )
    return rows[0][0] if rows else ""


def volatility(connection: psycopg.Connection[Any], functions: tuple[str, ...]) -> dict[str, str]:
    """``pg_proc.provolatile`` per function name: 'v' volatile, 's' stable, 'i' immutable
    (the most volatile overload wins; unknown names are left out)."""
    if not functions:
        return {}
    names = [f.rsplit(".", 1)[-1].lower() for f in functions]
    rows = read(
        connection,
        "SELECT proname, CASE WHEN bool_or(provolatile = 'v') THEN 'v' "
        "WHEN bool_or(provolatile = 's') THEN 's' ELSE 'i' END "
        "FROM pg_proc WHERE proname = ANY(%s) GROUP BY proname",
        (names,),
    )
    return dict(rows or [])


def timeouts(connection: psycopg.Connection[Any]) -> tuple[str, str]:
    """The effective (lock_timeout, statement_timeout), SET LOCAL included."""
    rows = read(connection, "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
    return (rows[0][0], rows[0][1]) if rows else ("?", "?")


# Statement kinds that may change lock_timeout / statement_timeout for what follows:
# SET / RESET, transaction ends (SET LOCAL vanishes), and anything that can call
# set_config() (SELECT, DO, CALL, unknown statements).
_MAY_CHANGE_SETTINGS = {"set", "select", "other", "commit", "rollback", "savepoint", "unparseable", "empty"}


class TimeoutsCache:
    """The timeouts in effect, re-read only after a statement that may have changed them
    (or when the transaction state changed), instead of before every statement."""

    def __init__(self) -> None:
        self._value: tuple[str, str] | None = None
        self._status: int | None = None

    def get(self, connection: psycopg.Connection[Any]) -> tuple[str, str]:
        status = int(connection.info.transaction_status)
        if self._value is None or status != self._status:
            self._value, self._status = timeouts(connection), status
        return self._value

    def after(self, kind: str, error: BaseException | None) -> None:
        if error is not None or kind in _MAY_CHANGE_SETTINGS:
            self._value = None


def held_locks(connection: psycopg.Connection[Any]) -> list[tuple[int, str, str]] | None:
    """Granted relation locks of this backend: (oid, relation, mode). System catalogs and
    the runner's version table (a table with a ``version_num`` column, as Alembic's
    ``alembic_version``, and its index) are left out: they are bookkeeping, not the
    migration's work."""
    # Scalar subqueries on the few locks of this backend rather than joins: the read runs
    # after nearly every statement, right after DDL has flushed the catalog caches, and the
    # joined form cost about six times as much to plan as to run.
    rows = read(
        connection,
        "SELECT l.relation::int8, l.relation::regclass::text, l.mode FROM pg_locks l "
        "WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted "
        "AND (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE c.oid = l.relation) NOT IN {_SYSTEM_SCHEMAS} "
        "AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = coalesce("
        "(SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = l.relation), l.relation) "
        "AND a.attname = 'version_num' AND a.attnum > 0 AND NOT a.attisdropped) ORDER BY 2, 3",
    )
    return None if rows is None else [(r[0], r[1], r[2]) for r in rows]


def referencing_tables(connection: psycopg.Connection[Any], oid: int) -> list[str]:
    """Tables with a foreign key to ``oid`` (what TRUNCATE ... CASCADE also empties)."""
    rows = read(
        connection,
        "SELECT DISTINCT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' AND confrelid = %s "
        "AND conrelid <> confrelid",
        (oid,),
    )
    return [r[0] for r in rows or []]


def server_version(connection: psycopg.Connection[Any]) -> int:
    """E.g. 150004 for 15.4."""
    return int(connection.info.server_version)
