"""Data round trips: rows survive a revision's downgrade and upgrade, with their keys.

A schema can come back identical while the data does not: a downgrade that copies a
table and renumbers it, or one that loses a column default so the application's next
INSERT fails. Before the downgrade, a few rows are written into each table the revision
changed that existed before it (keys with gaps: 2, 5, 11, so renumbering shows); after
the downgrade, an INSERT that leaves every defaulted column to its default must still
work (rolled back); after upgrading again the same rows, with the same keys and values
in the columns that lived through both, must be there.

Values come from each column's type (enums take their first label; NOT NULL foreign
keys borrow a row of the referenced table, writing one if it has none); a table no
generated row fits (a CHECK it cannot satisfy, an unknown type) is named in the evidence
and left unchecked.

Every row written is remembered, parents included, and deleted again in reverse order
(``remove``); the row count of every table is then compared with the count before
seeding, so a row the upgrade derived from a seeded one is caught too. What could not
be removed is returned, never swallowed: the caller rebuilds the database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from pytest_dbarch.findings import Finding, Status
from pytest_dbarch.migrations.runners import Revision
from pytest_dbarch.migrations.snapshot import Snapshot

DATA_ROUND_TRIP = "migrations.data-round-trip"

KEYS = (2, 5, 11)
_INTEGERS = ("smallint", "integer", "bigint")
PROBE = 97  # the key of the row the default-INSERT probe writes

_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typtype, a.attnotnull,
       a.atthasdef OR a.attidentity <> '' AS has_default, a.attgenerated <> '' AS generated,
       coalesce(x.indisprimary AND a.attnum = ANY(x.indkey), false) AS is_key,
       (SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = a.atttypid ORDER BY e.enumsortorder LIMIT 1),
       (SELECT format('%%I.%%I', rn.nspname, rc.relname) || ':' || ra.attname
          FROM pg_constraint f
          JOIN pg_class rc ON rc.oid = f.confrelid
          JOIN pg_namespace rn ON rn.oid = rc.relnamespace
          JOIN pg_attribute ra ON ra.attrelid = f.confrelid AND ra.attnum = f.confkey[1]
         WHERE f.conrelid = a.attrelid AND f.contype = 'f' AND f.conkey = ARRAY[a.attnum] LIMIT 1)
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_index x ON x.indrelid = a.attrelid AND x.indisprimary
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


@dataclass
class Column:
    name: str
    type: str
    typtype: str
    not_null: bool
    has_default: bool
    generated: bool
    is_key: bool
    enum_label: str | None
    references: str | None


@dataclass
class SeededTable:
    table: str
    keys: list[str]
    compared: list[str]
    rows: dict[tuple[str, ...], tuple[str, ...]]


@dataclass
class Written:
    """One row the seeding wrote, by the text of its key columns."""

    table: str
    keys: tuple[str, ...]
    values: tuple[str, ...]


@dataclass
class Seeded:
    tables: list[SeededTable] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "table: why"
    considered: list[str] = field(default_factory=list)
    rows: list[Written] = field(default_factory=list)  # every row written, in order
    counts: dict[str, int] = field(default_factory=dict)  # rows per table before seeding


@dataclass(frozen=True)
class RowProblem:
    table: str
    text: str


class _NotSeeded(Exception):
    """A table no generated row fits: undo its partial rows."""


def changed_tables(before: Snapshot, after: Snapshot) -> list[str]:
    """Tables that existed before the revision, still exist, and whose definition changed."""
    if before.objects == after.objects:
        return []
    both = before.tables() & after.tables()
    touched = set()
    for key in before.objects.keys() | after.objects.keys():
        if before.objects.get(key) == after.objects.get(key):
            continue
        kind, name = key
        if kind == "table":
            touched.add(name)
        elif kind == "column":
            touched.add(name.rsplit(".", 1)[0])
        elif " on " in name:
            touched.add(name.rsplit(" on ", 1)[1])
    return sorted(touched & both)


def _ident(table: str) -> sql.Composable:
    return sql.Identifier(*table.split(".")) if "." in table else sql.Identifier(table)


def _columns(conn: psycopg.Connection[Any], table: str, reader: psycopg.Connection[Any] | None = None) -> list[Column]:
    """The table's columns as the generator needs them. Read on ``reader`` (see row_counts)
    when ``conn`` has no transaction open: there the query stays prepared, and its
    planning was most of its cost."""
    regclass = table if "." in table else f"public.{table}"
    quoted = ".".join(f'"{part}"' for part in regclass.split("."))
    idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    if reader is not None and idle and not reader.closed:
        return [Column(*row) for row in reader.execute(_COLUMNS, (quoted,), prepare=True).fetchall()]
    return [Column(*row) for row in conn.execute(_COLUMNS, (quoted,)).fetchall()]


def _value(
    column: Column,
    n: int,
    conn: psycopg.Connection[Any],
    depth: int = 0,
    written: list[Written] | None = None,
    parents: dict[str, Any] | None = None,
) -> tuple[bool, Any]:
    """(True, value) for a value of the column's type, (False, reason) when there is none.
    ``parents``: the parent keys already looked up for this table's rows (one query per
    foreign key, not per row)."""
    if column.references:
        if parents is not None and column.references in parents:
            return True, parents[column.references]
        target, _, col = column.references.rpartition(":")
        row = conn.execute(
            sql.SQL("SELECT {}::text FROM {} LIMIT 1").format(sql.Identifier(col), sql.SQL(target))
        ).fetchone()
        if row is None and column.not_null and depth < 3:
            # Borrowing needs a parent row: write one (not checked itself).
            parent = target.replace('"', "").removeprefix("public.")
            _insert(conn, parent, _columns(conn, parent), 1000 + n, None, depth + 1, written)
            row = conn.execute(
                sql.SQL("SELECT {}::text FROM {} LIMIT 1").format(sql.Identifier(col), sql.SQL(target))
            ).fetchone()
        if row is None:
            return (True, None) if not column.not_null else (False, f"no row in {target} to reference")
        if parents is not None:
            parents[column.references] = row[0]
        return True, row[0]
    if column.enum_label is not None:
        return True, column.enum_label
    t = column.type
    if t in ("smallint", "integer", "bigint") or t.startswith(("numeric", "real", "double")):
        return True, str(n)
    if t.startswith(("character varying", "text", "character", "citext", "varchar")):
        return True, f"v{n}"
    if t == "uuid":
        return True, f"00000000-0000-4000-8000-{n:012d}"
    if t == "boolean":
        return True, "true"
    if t.startswith(("timestamp", "date")):
        return True, f"2024-01-{n % 28 + 1:02d}"
    if t.startswith(("time", "interval")):
        return True, "01:00:00"
    if t in ("json", "jsonb"):
        return True, "{}"
    if t == "bytea":
        return True, "\\x00"
    if t.endswith("[]"):
        return True, "{}"
    return False, f"no generated value for type {t} (column {column.name})"


def _insert(
    conn: psycopg.Connection[Any],
    table: str,
    columns: list[Column],
    n: int,
    skip_defaulted: set[str] | None,
    depth: int = 0,
    written: list[Written] | None = None,
    parents: dict[str, Any] | None = None,
    savepoint: bool = True,
) -> tuple[str, ...] | str:
    """INSERT one row keyed by ``n``; the returned text of every column, or why it failed.

    ``skip_defaulted``: columns left to their defaults (the probe); otherwise keys are
    given explicitly and other defaulted columns use their defaults. ``savepoint``: off
    when the caller's own savepoint is rolled back on any failure.
    """
    names, values = [], []
    for column in columns:
        if column.generated:
            continue
        if skip_defaulted is not None:
            if column.name in skip_defaulted:
                continue
        elif column.has_default and not column.is_key:
            continue
        if not column.not_null and not column.is_key and not column.references:
            continue
        ok, value = _value(column, n, conn, depth, written, parents)
        if not ok:
            return str(value)
        names.append(sql.Identifier(column.name))
        values.append(sql.Literal(value) if value is None else sql.SQL("{}::{}").format(sql.Literal(value), sql.SQL(column.type)))
    query = sql.SQL("INSERT INTO {} {} OVERRIDING SYSTEM VALUE VALUES ({}) RETURNING {}").format(
        _ident(table),
        sql.SQL("({})").format(sql.SQL(", ").join(names)) if names else sql.SQL(""),
        sql.SQL(", ").join(values),
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c.name)) for c in columns),
    )
    if not names:
        query = sql.SQL("INSERT INTO {} DEFAULT VALUES RETURNING {}").format(
            _ident(table), sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c.name)) for c in columns)
        )
    try:
        if savepoint:
            with conn.transaction():
                row = conn.execute(query, prepare=False).fetchone()
        else:
            row = conn.execute(query, prepare=False).fetchone()
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    assert row is not None
    if written is not None:
        keys = [c.name for c in columns if c.is_key] or [c.name for c in columns]
        by_name = dict(zip([c.name for c in columns], row))
        written.append(Written(table, tuple(keys), tuple(by_name[k] for k in keys)))
    return tuple(row)


def _refers_to(reference: str, table: str) -> bool:
    """Whether a Column.references value (``target:column``) names ``table``."""
    target = reference.rpartition(":")[0].replace('"', "")
    return target in (table, f"public.{table}") or target.removeprefix("public.") == table


def _advance_sequences(conn: psycopg.Connection[Any], table: str, columns: list[Column]) -> None:
    """Move key sequences past the explicit keys, as an application's import would, so
    the default-INSERT probe does not collide with the seeded rows."""
    regclass = table if "." in table else f"public.{table}"
    quoted = ".".join(f'"{part}"' for part in regclass.split("."))
    for column in columns:
        conn.execute(
            sql.SQL(
                "SELECT setval(seq, (SELECT max({col}) FROM {table})) "
                "FROM pg_get_serial_sequence(%s, %s) AS seq WHERE seq IS NOT NULL"
            ).format(col=sql.Identifier(column.name), table=_ident(table)),
            (quoted, column.name),
        )


def seed(
    conn: psycopg.Connection[Any], before: Snapshot, after: Snapshot, reader: psycopg.Connection[Any] | None = None
) -> Seeded:
    """Write rows into the tables the revision changed; remember them by key (``reader``:
    see row_counts)."""
    seeded = Seeded()
    columns_before = {name for kind, name in before.objects if kind == "column"}
    tables = changed_tables(before, after)
    if tables:
        seeded.counts = row_counts(conn, reader)
    for table in tables:
        seeded.considered.append(table)
        columns = _columns(conn, table, reader)
        keys = [c.name for c in columns if c.is_key] or [c.name for c in columns]
        compared = [c.name for c in columns if f"{table}.{c.name}" in columns_before]
        new_keys = [k for k in keys if f"{table}.{k}" not in columns_before]
        if new_keys:  # a key the revision adds is made anew by every upgrade: rows cannot be matched
            seeded.skipped.append(f"{table}: its key ({', '.join(new_keys)}) is added by this revision")
            continue
        rows: dict[tuple[str, ...], tuple[str, ...]] = {}
        written: list[Written] = []
        try:
            # A savepoint: a table that cannot be seeded keeps no rows (so no row needs its
            # own); a self-reference is looked up again for every row.
            parents: dict[str, Any] = {}
            with conn.transaction():
                for n in KEYS:
                    result = _insert(conn, table, columns, n, None, 0, written, parents, savepoint=False)
                    parents = {k: v for k, v in parents.items() if not _refers_to(k, table)}
                    if isinstance(result, str):
                        seeded.skipped.append(f"{table}: {result}")
                        raise _NotSeeded
                    by_name = dict(zip([c.name for c in columns], result))
                    rows[tuple(by_name[k] for k in keys)] = tuple(by_name[c] for c in compared)
        except _NotSeeded:
            rows, written = {}, []
        seeded.rows += written
        if rows:
            seeded.tables.append(SeededTable(table, keys, compared, rows))
            integer_keys = [c for c in columns if c.is_key and c.has_default and c.type in _INTEGERS]
            _advance_sequences(conn, table, integer_keys)
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.commit()
    return seeded


_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass
                  AND e.objid = c.oid AND e.deptype = 'e')
"""


def row_counts(conn: psycopg.Connection[Any], reader: psycopg.Connection[Any] | None = None) -> dict[str, int]:
    """Rows in every user table (one statement; the scratch tables are small).

    ``reader``: an autocommit connection to the same database that runs nothing else.
    When ``conn`` has no transaction open, everything it wrote is committed and the
    reader sees the same rows; there the statements stay prepared (the migrations'
    connection forgets its prepared statements at every DDL), which halves the cost.
    """
    idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    on = reader if reader is not None and idle and not reader.closed else conn
    prepared = on is reader
    names = [r[0] for r in on.execute(_TABLES, prepare=True if prepared else None).fetchall()]
    counts: dict[str, int] = {}
    for start in range(0, len(names), 200):
        chunk = names[start : start + 200]
        query = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {}, count(*) FROM {}").format(sql.Literal(name), sql.SQL(name)) for name in chunk
        )
        counts.update({name: n for name, n in on.execute(query, prepare=prepared).fetchall()})
    if on.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        on.rollback()
    return counts


def remove(conn: psycopg.Connection[Any], seeded: Seeded, reader: psycopg.Connection[Any] | None = None) -> list[str]:
    """Delete every seeded row again, newest first, so every revision starts from the
    same data; what is left behind (a row that cannot be deleted, or a table whose row
    count differs from before seeding), one line each. Nothing is swallowed."""
    left: list[str] = []
    if not _remove_all(conn, seeded.rows):
        for row in reversed(seeded.rows):  # one by one, to say which row cannot go
            try:
                with conn.transaction():
                    conn.execute(_delete(row), row.values, prepare=False)
            except psycopg.Error as exc:
                shown = ", ".join(f"{k}={v}" for k, v in zip(row.keys, row.values))
                left.append(f"{row.table}: row {shown} cannot be deleted: {str(exc).strip().splitlines()[0]}")
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.commit()
    if seeded.counts:
        now = row_counts(conn, reader)
        for table, before in sorted(seeded.counts.items()):
            after = now.get(table)
            if after is not None and after != before:
                left.append(f"{table}: {after} rows after removing the seeded ones, {before} before seeding")
    return left


def _delete(row: Written, values: Sequence[Any] | None = None) -> sql.Composed:
    """DELETE of one seeded row: with placeholders, or with ``values`` written in.
    IS NOT DISTINCT FROM: a table without a primary key is matched on every column, NULLs too."""
    matches = sql.SQL(" AND ").join(
        sql.SQL("{}::text IS NOT DISTINCT FROM {}").format(
            sql.Identifier(k), sql.Placeholder() if values is None else sql.Literal(values[i])
        )
        for i, k in enumerate(row.keys)
    )
    return sql.SQL("DELETE FROM {} WHERE {}").format(_ident(row.table), matches)


def _remove_all(conn: psycopg.Connection[Any], rows: list[Written]) -> bool:
    """Every seeded row deleted, newest first, in one round trip (one savepoint, the
    DELETEs sent as one script); False, with nothing deleted, if any of them fails."""
    if not rows:
        return True
    script = sql.SQL("; ").join(_delete(row, row.values) for row in reversed(rows)).as_bytes(conn)
    try:
        with conn.transaction():
            conn.execute(script, prepare=False)
    except psycopg.Error:
        return False
    return True


def insert_with_defaults(
    conn: psycopg.Connection[Any],
    before: Snapshot,
    downgraded: Snapshot,
    tables: list[str],
    reader: psycopg.Connection[Any] | None = None,
) -> list[str]:
    """After the downgrade: an INSERT into ``tables`` relying on the defaults they had
    before the revision must work. Rolled back."""
    problems = []
    for table in sorted(set(tables) & before.tables() & downgraded.tables()):
        defaulted = {
            name.rsplit(".", 1)[1]
            for (kind, name), fields in before.objects.items()
            if kind == "column" and name.rsplit(".", 1)[0] == table and ("default" in fields or "identity" in fields)
        }
        if not defaulted:
            continue
        columns = _columns(conn, table, reader)
        try:
            with conn.transaction(force_rollback=True):
                result = _insert(conn, table, columns, PROBE, defaulted)
        except psycopg.Error as exc:
            result = str(exc).strip().splitlines()[0]
        # Only a NOT NULL violation says a default was lost; another refusal (a CHECK the
        # generated values do not meet) says nothing about defaults.
        if isinstance(result, str) and "violates not-null constraint" in result:
            problems.append(f"INSERT into {table} relying on the defaults of {', '.join(sorted(defaulted))} fails: {result}")
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()
    return problems


def verify(conn: psycopg.Connection[Any], seeded: Seeded) -> list[RowProblem]:
    """After upgrading again: the seeded rows, same keys, same surviving values."""
    problems: list[RowProblem] = []
    for table in seeded.tables:
        select = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in table.keys + table.compared),
            _ident(table.table),
        )
        try:
            found = {
                tuple(row[: len(table.keys)]): tuple(row[len(table.keys) :]) for row in conn.execute(select, prepare=False).fetchall()
            }
        except psycopg.Error as exc:
            problems.append(
                RowProblem(table.table, f"{table.table}: cannot read the seeded rows back: {str(exc).strip().splitlines()[0]}")
            )
            conn.rollback()
            continue
        for key, values in table.rows.items():
            shown = ", ".join(f"{k}={v}" for k, v in zip(table.keys, key))
            if key not in found:
                problems.append(RowProblem(table.table, f"{table.table}: row {shown} lost (keys renumbered or rows dropped)"))
            elif found[key] != values:
                changed = [
                    f"{c} {old!r} -> {new!r}"
                    for c, old, new in zip(table.compared, values, found[key])
                    if old != new
                ]
                problems.append(RowProblem(table.table, f"{table.table}: row {shown} changed: {', '.join(changed)}"))
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()
    return problems


def verdict(
    rev: Revision,
    seeded: Seeded,
    default_problems: list[str],
    rows: list[RowProblem] | None,
    make: Callable[..., Finding],
    transformed: set[str] = frozenset(),  # type: ignore[assignment]
) -> Finding | None:
    """The data round trip's finding. Changes to rows of a table the upgrade itself writes
    (a backfill or data migration) while the downgrade writes nothing back are the
    upgrade doing its job again, not data lost: information, in the evidence."""
    intended = [p.text for p in rows or [] if p.table in transformed]
    problems = default_problems + [p.text for p in rows or [] if p.table not in transformed]
    notes = [f"not seeded: {s}" for s in seeded.skipped]
    if intended:
        notes = [
            f"changed by the upgrade's own data migration ({', '.join(sorted(transformed))} written by upgrade(), "
            "nothing written back by downgrade()); information, not a loss:",
            *[f"  {line}" for line in intended],
            *notes,
        ]
    checked = ", ".join(t.table for t in seeded.tables) or "no table"
    if rows is None and not problems:
        return make(
            DATA_ROUND_TRIP,
            Status.WARNING,
            f"revision {rev.id}: data round trip not finished: the upgrade after the downgrade "
            "failed (see the round trip)",
            rev,
            "\n".join(notes),
        )
    if problems:
        return make(
            DATA_ROUND_TRIP,
            Status.FAILED,
            f"revision {rev.id}: data does not survive the round trip: {problems[0]}"
            + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
            rev,
            "\n".join(problems + notes + [f"rows seeded by the check into: {checked}"]),
            f"make downgrade() of revision {rev.id} keep rows, keys and column defaults as they "
            "were before upgrade() ran",
        )
    if not seeded.considered:
        title = f"revision {rev.id}: data round trip: changes no existing table; INSERTs with defaults still work after its downgrade"
    elif not seeded.tables:
        return None  # no generated row fits these tables (the caller says why the item is skipped)
    elif intended:
        title = f"revision {rev.id}: rows and keys of {checked} survive; values its data migration changes change again (information)"
    else:
        title = f"revision {rev.id}: rows and keys of {checked} survive downgrade and upgrade"
    return make(DATA_ROUND_TRIP, Status.PASSED, title, rev, "\n".join(notes))


def fails_with_rows(
    rev: Revision, seeded: Seeded, exc: Exception, action: str, also_empty: bool, make: Callable[..., Finding]
) -> Finding | None:
    """A downgrade or re-upgrade that failed while the check's seeded rows were there.

    If it fails on empty tables too, the round trip reports it (one finding per cause).
    Otherwise the verdict depends on the seeded rows, and the finding says so."""
    if also_empty:
        return None
    tables = sorted({row.table for row in seeded.rows})
    reason = getattr(exc, "reason", "") or str(exc)
    return make(
        DATA_ROUND_TRIP,
        Status.WARNING,
        f"revision {rev.id}: {action} fails once {', '.join(tables)} hold rows: {reason}",
        rev,
        "\n".join(
            [
                f"with rows seeded by this check in {', '.join(tables)} (generated values, NULL where a "
                f"column allows it) the {action} failed; on the same tables without rows it succeeds, so "
                "the schema round trip was judged on empty tables",
                str(exc),
            ]
        ),
        f"if production tables hold such rows, make the {action} of revision {rev.id} handle them "
        "(e.g. fill a column before SET NOT NULL); otherwise nothing to do",
    )
