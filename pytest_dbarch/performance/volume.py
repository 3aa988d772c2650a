"""Data volume for budgets: tables filled to a row count in one statement, then ANALYZEd.

A budget judged on a dozen rows judges nothing: the planner reads tiny tables whole
whatever the indexes. ``fill`` inserts ``rows`` rows with ``INSERT ... SELECT ... FROM
generate_series(1, rows) AS i`` (20,000 rows in tens of milliseconds), each column
given as a SQL expression of ``i``, and ANALYZEs the table so the planner sees it
(``Volume`` also VACUUMs it, for the visibility map index-only scans rely on).

Two places to fill:
- ``Volume`` (the ``dbarch_volume`` fixture, for a module- or class-scoped fixture of
  yours): rows committed to the database that transaction-isolated tests share, for as
  long as the ``with`` block lasts; at its end exactly those rows (found by the
  inserting transaction's id) are deleted and the tables vacuumed and re-analyzed, so
  the next module sees what it saw before. Clone-isolated tests get a fresh copy of the
  template and do not see these rows.
- ``fill_in_transaction`` (``dbarch_budget.fill``): inside the test's own transaction,
  rolled back with it (or committed to a clone, which is dropped anyway).

Where the constraints work's ``dbarch_constraints.fill(table, n)`` lands, it can supply
rows that satisfy every constraint by itself; until then a column without an
expression gets its DEFAULT, and a NOT NULL column without one is named in the error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.origin import plugin_statements

_XID_MODULUS = 2**32  # txid_current() carries an epoch; xmin is the low 32 bits


def _table(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*name.split("."))


def fill_statement(table: str, rows: int, columns: dict[str, Any]) -> Any:
    """``INSERT INTO table (cols) SELECT exprs FROM generate_series(1, rows) AS i``.

    A ``str`` value is a SQL expression (``"'Account ' || i"``); any other value is a
    literal (``42``, ``None``, a ``datetime``).
    """
    from psycopg import sql

    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise DbarchError(f"fill({table!r}, {rows!r}): the row count must be a whole number >= 1",
                          f"e.g. fill({table!r}, 10_000)")
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    values = sql.SQL(", ").join(
        sql.SQL(v) if isinstance(v, str) else sql.Literal(v) for v in columns.values()
    )
    if not columns:
        return sql.SQL("INSERT INTO {} SELECT FROM generate_series(1, {}) AS i").format(_table(table), sql.Literal(rows))
    return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM generate_series(1, {}) AS i").format(
        _table(table), names, values, sql.Literal(rows)
    )


def pick(table: str, column: str = "id") -> str:
    """A SQL expression that cycles through ``table``'s existing ``column`` values, for
    foreign keys: ``fill("contacts", 5000, account_id=pick("accounts"))``. The keys are
    read once (an InitPlan), not once per row."""
    quoted_table = ".".join(_quote(p) for p in table.split("."))
    quoted_column = _quote(column)
    return (f"(SELECT array_agg({quoted_column} ORDER BY {quoted_column}) FROM {quoted_table})"
            f"[1 + (i - 1) % (SELECT count(*) FROM {quoted_table})::int]")


def _quote(name: str) -> str:
    """An identifier quoted as PostgreSQL does (the expression is text, not a psycopg object)."""
    return '"' + name.replace('"', '""') + '"'


def _failure(table: str, rows: int, exc: Exception) -> DbarchError:
    import psycopg

    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    diag = getattr(exc, "diag", None)
    column = getattr(diag, "column_name", None)
    constraint = getattr(diag, "constraint_name", None)
    if isinstance(exc, psycopg.errors.NotNullViolation) and column:
        fix = f"give {column} an expression of i: fill({table!r}, {rows}, {column}=\"...\")"
    elif isinstance(exc, psycopg.errors.ForeignKeyViolation):
        fix = "take the keys from the parent table: column=pick('parent_table')"
    elif isinstance(exc, (psycopg.errors.CheckViolation, psycopg.errors.UniqueViolation)):
        fix = f"change the expressions so that every row satisfies {constraint or 'the constraint'}"
    else:
        fix = "check the table and column names and that each value is a SQL expression of i"
    return DbarchError(f"filling {table} with {rows} rows failed: {first}", fix)


def fill_in_transaction(connection: Any, table: str, rows: int, columns: dict[str, Any]) -> int:
    """Fill on ``connection`` inside a savepoint, then ANALYZE; an error leaves nothing."""
    import psycopg

    statement = fill_statement(table, rows, columns)
    with plugin_statements():
        try:
            with connection.transaction():
                connection.execute(statement)
                connection.execute(_analyze(table))
        except psycopg.Error as exc:
            raise _failure(table, rows, exc) from None
    return rows


def _analyze(table: str) -> Any:
    from psycopg import sql

    return sql.SQL("ANALYZE {}").format(_table(table))


def _vacuum(table: str) -> Any:
    from psycopg import sql

    return sql.SQL("VACUUM (ANALYZE) {}").format(_table(table))


class Volume:
    """Rows committed to the shared database of transaction-isolated tests, removed at
    the end of the ``with`` block. Built by the ``dbarch_volume`` fixture."""

    def __init__(self, dsn: str, database: str) -> None:
        self._dsn = dsn
        self.database = database
        self._filled: list[tuple[str, int]] = []  # (table, inserting transaction id)

    def fill(self, table: str, rows: int, **columns: Any) -> int:
        """Insert ``rows`` rows into ``table`` (columns as SQL expressions of ``i``), commit,
        VACUUM ANALYZE (statistics for the planner, and the visibility map index-only
        scans need, as autovacuum leaves a production table). Returns the row count."""
        import psycopg

        statement = fill_statement(table, rows, columns)
        with plugin_statements():
            try:
                with psycopg.connect(self._dsn) as conn:
                    # The disposable server commits asynchronously; VACUUM cannot mark a
                    # page all-visible before the inserting commit is flushed.
                    conn.execute("SET synchronous_commit = on")
                    conn.execute(statement)
                    row = conn.execute("SELECT txid_current()").fetchone()
                    conn.commit()
                    conn.autocommit = True
                    conn.execute(_vacuum(table))
            except psycopg.Error as exc:
                raise _failure(table, rows, exc) from None
        assert row is not None
        self._filled.append((table, int(row[0]) % _XID_MODULUS))
        return rows

    pick = staticmethod(pick)

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for t, _ in self._filled))

    def remove(self) -> None:
        """Delete exactly the rows ``fill`` inserted (last filled first), then VACUUM
        ANALYZE the tables: the shared database is as it was."""
        import psycopg
        from psycopg import sql

        if not self._filled:
            return
        with plugin_statements(), psycopg.connect(self._dsn, autocommit=True) as conn:
            for table, xid in reversed(self._filled):
                conn.execute(sql.SQL("DELETE FROM {} WHERE xmin = %s::text::xid").format(_table(table)), (str(xid),))
            for table in self.tables:
                conn.execute(_vacuum(table))
        self._filled.clear()


@contextmanager
def volume(dsn: str, database: str) -> Iterator[Volume]:
    filled = Volume(dsn, database)
    try:
        yield filled
    finally:
        filled.remove()
