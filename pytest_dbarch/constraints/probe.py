"""Questions the generator and the checks ask the database, each in one round trip.

Which keys a parent table holds, whether a drawn row collides with a UNIQUE key already
in the table (expression and partial unique indexes included), whether CHECKs that
Python cannot decide accept a row (``SELECT <expression>`` over the typed row), and what
happens when a row is inserted. Every probe that can fail runs inside its own savepoint,
so a refusal never aborts the caller's transaction, and every statement is marked as
the plugin's own (``origin.plugin_statements``): it does not count in the test's query
budget or N+1 rules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import pq, sql

from pytest_dbarch.constraints.checks_parse import Rule
from pytest_dbarch.constraints.literals import cast_type, literal
from pytest_dbarch.constraints.schema import ForeignKey, TableSpec, UniqueKey
from pytest_dbarch.origin import plugin_statements

SAVEPOINT = "dbarch_constraints"


@dataclass(frozen=True)
class Outcome:
    """What PostgreSQL did with a statement."""

    ok: bool
    sqlstate: str | None = None
    constraint: str | None = None
    column: str | None = None
    table: str | None = None
    message: str = ""
    returned: tuple[Any, ...] | None = None
    rowcount: int = -1  # rows the (last) INSERT / UPDATE / DELETE touched
    context: str = ""  # where the error arose, when inside a function ("PL/pgSQL function f() line 3 ...")

    @property
    def in_function(self) -> bool:
        """Whether the error was raised inside a function (a trigger's, most often)."""
        return "function" in self.context

    def describe(self) -> str:
        if self.ok:
            return "accepted"
        name = self.constraint or (f"NOT NULL on {self.column}" if self.column else "")
        return f"{name} ({self.sqlstate}): {self.message}" if name else f"{self.sqlstate}: {self.message}"


def _ident(name: str) -> str:
    return sql.Identifier(name).as_string(None)


def table_ident(spec: TableSpec) -> str:
    return sql.Identifier(spec.table.schema, spec.table.name).as_string(None)


def qualified_ident(qualified: str) -> str:
    schema, _, name = qualified.partition(".")
    return sql.Identifier(schema, name).as_string(None)


@lru_cache(maxsize=256)
def _parent_key_sql(parent: str, columns: tuple[str, ...]) -> str:
    """The ``%s``-th key of a parent (built once per foreign key: it runs for every row)."""
    cols = ", ".join(_ident(c) for c in columns).replace("%", "%%")
    present = " AND ".join(f"{_ident(c)} IS NOT NULL" for c in columns).replace("%", "%%")
    table = qualified_ident(parent).replace("%", "%%")
    return (f"SELECT {cols} FROM {table} WHERE {present} ORDER BY {cols} LIMIT 1 "
            f"OFFSET (%s::bigint %% greatest((SELECT count(*) FROM {table} WHERE {present}), 1))")


class Probe:
    """Database questions about generated rows, on one connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._counter = 0
        self.last_refusal: Outcome | None = None  # why the last typed row could not be evaluated
        self._insert_heads: dict[tuple[str, tuple[str, ...]], tuple[str, list[str]]] = {}

    def forget(self) -> None:
        """Drop what was built from the schema (after DDL)."""
        self._insert_heads.clear()

    # --- plumbing

    @contextmanager
    def _plugin(self) -> Iterator[None]:
        with plugin_statements():
            if self.conn.info.transaction_status == pq.TransactionStatus.INERROR:
                raise psycopg.errors.InFailedSqlTransaction(
                    "the test's transaction is aborted by an earlier error; roll back (to a savepoint) "
                    "before drawing rows")
            yield

    def query(self, text: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._plugin(), self.conn.cursor() as cur:
            cur.execute(text.encode() if params is None else text, params, prepare=False)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def attempt(self, statement: str, keep: bool = False) -> Outcome:
        """Run ``statement`` in a savepoint; undo it unless ``keep`` and it succeeded."""
        self._counter += 1
        name = f"{SAVEPOINT}_{self._counter}"
        end = f"RELEASE SAVEPOINT {name}" if keep else f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"
        with self._plugin(), self.conn.cursor() as cur:
            try:
                cur.execute(f"SAVEPOINT {name}; {statement}; {end}".encode(), prepare=False)
            except psycopg.Error as exc:
                cur.execute(f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}".encode(), prepare=False)
                diag = exc.diag
                return Outcome(False, diag.sqlstate, diag.constraint_name, diag.column_name, diag.table_name,
                               diag.message_primary or str(exc), context=diag.context or "")
            returned = None
            rowcount = -1
            while True:
                if cur.description is not None and returned is None:
                    returned = cur.fetchone()
                if (cur.statusmessage or "").startswith(("INSERT", "UPDATE", "DELETE")):
                    rowcount = cur.rowcount
                if not cur.nextset():
                    break
            return Outcome(True, returned=returned, rowcount=rowcount)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Everything inside is undone afterwards, whatever happens."""
        self._counter += 1
        name = f"{SAVEPOINT}_{self._counter}"
        with self._plugin():
            self.conn.execute(f"SAVEPOINT {name}".encode(), prepare=False)
        try:
            yield
        finally:
            with plugin_statements():
                self.conn.execute(f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}".encode(), prepare=False)

    # --- SQL of rows

    def insert_sql(self, spec: TableSpec, row: Mapping[str, Any], returning: Sequence[str] = ()) -> str:
        names = tuple(row)
        if not names:
            text = f"INSERT INTO {table_ident(spec)} DEFAULT VALUES"
        else:
            head, kinds = self._insert_head(spec, names)
            text = f"{head}{', '.join(literal(row[n], kind) for n, kind in zip(names, kinds))})"
        if returning:
            text += " RETURNING " + ", ".join(_ident(c) for c in returning)
        return text

    def _insert_head(self, spec: TableSpec, names: tuple[str, ...]) -> tuple[str, list[str]]:
        """``INSERT INTO t (a, b) VALUES (`` and the kinds of the columns, built once per
        column list: rows of a table are inserted by the hundred."""
        key = (spec.qualified, names)
        found = self._insert_heads.get(key)
        if found is None:
            kinds = [spec.columns[n].kind.name if n in spec.columns else "" for n in names]
            overriding = any(spec.table.column(n).identity == "always" for n in names)
            head = (f"INSERT INTO {table_ident(spec)} ({', '.join(_ident(n) for n in names)})"
                    f"{' OVERRIDING SYSTEM VALUE' if overriding else ''} VALUES (")
            found = self._insert_heads[key] = (head, kinds)
        return found

    def typed_row(self, spec: TableSpec, row: Mapping[str, Any]) -> str:
        """``SELECT <literal>::<type> AS <column>, ...`` for every column of the table."""
        parts = []
        for column in spec.table.columns:
            kind = spec.columns[column.name].kind.name if column.name in spec.columns else ""
            value = literal(row.get(column.name), kind)
            parts.append(f"{value}::{cast_type(column)} AS {_ident(column.name)}")
        return "SELECT " + ", ".join(parts)

    # --- questions

    def parent_key(self, fk: ForeignKey, pick: int) -> tuple[Any, ...] | None:
        """The ``pick``-th key (modulo the row count, in key order) of the parent table."""
        with self._plugin(), self.conn.cursor() as cur:
            # a parameter, and psycopg's own choice to prepare: it runs for every row drawn
            cur.execute(_parent_key_sql(fk.parent, fk.parent_columns), [int(pick)])
            found = cur.fetchone()
        return tuple(found) if found else None

    def parent_keys(self, fk: ForeignKey, limit: int = 100_000) -> list[tuple[Any, ...]]:
        cols = ", ".join(_ident(c) for c in fk.parent_columns)
        present = " AND ".join(f"{_ident(c)} IS NOT NULL" for c in fk.parent_columns)
        return [tuple(r) for r in self.query(
            f"SELECT {cols} FROM {qualified_ident(fk.parent)} WHERE {present} ORDER BY {cols} LIMIT {int(limit)}")]

    def free_parent_keys(self, spec: TableSpec, fks: Sequence[ForeignKey], limit: int) -> list[tuple[Any, ...]]:
        """Combinations of the parents' keys for ``fks`` (their columns in order) that no row
        of ``spec`` holds yet: the room left for a UNIQUE key made of those foreign keys."""
        picked, present, same = [], [], []
        for i, fk in enumerate(fks):
            for mine, theirs in zip(fk.columns, fk.parent_columns):
                picked.append(f"p{i}.{_ident(theirs)}")
                present.append(f"p{i}.{_ident(theirs)} IS NOT NULL")
                same.append((f"c.{_ident(mine)}", f"p{i}.{_ident(theirs)}"))
        parents = " CROSS JOIN ".join(f"{qualified_ident(fk.parent)} p{i}" for i, fk in enumerate(fks))
        taken = (f"SELECT 1 FROM {table_ident(spec)} c WHERE ({', '.join(a for a, _ in same)}) = "
                 f"({', '.join(b for _, b in same)})")
        return [tuple(r) for r in self.query(
            f"SELECT {', '.join(picked)} FROM {parents} WHERE {' AND '.join(present)} AND NOT EXISTS ({taken}) "
            f"LIMIT {int(limit)}")]

    def key_room(self, spec: TableSpec, key: UniqueKey, fks: Sequence[ForeignKey]) -> tuple[int, int]:
        """(how many key values the parents of ``fks`` offer at most, how many rows hold
        one): for a plain UNIQUE key made of those foreign keys' columns only."""
        offers = " * ".join(
            "(SELECT count(*) FROM {} WHERE {})".format(
                qualified_ident(fk.parent), " AND ".join(f"{_ident(c)} IS NOT NULL" for c in fk.parent_columns))
            for fk in fks)
        held = " AND ".join(f"{_ident(c)} IS NOT NULL" for c in key.key_columns)
        offered, rows = self.query(f"SELECT {offers}, (SELECT count(*) FROM {table_ident(spec)} WHERE {held})")[0]
        return int(offered), int(rows)

    def conflicts(self, spec: TableSpec, row: Mapping[str, Any], keys: Sequence[UniqueKey]) -> tuple[list[str], int]:
        """Names of the unique keys among ``keys`` that ``row`` collides with, and how many
        rows the table holds."""
        checks = []
        for key in keys:
            if any(c not in row and c in spec.left_out for c in key.columns):
                continue
            parts = ", ".join(key.keys)
            if key.nulls_not_distinct:
                same = f"ROW({parts}) IS NOT DISTINCT FROM (SELECT ROW({parts}) FROM c)"
            elif key.operators:  # an exclusion constraint: each part collides by its operator
                same = " AND ".join(f"{part} {op} (SELECT {part} FROM c)" for part, op in zip(key.keys, key.operators))
            else:
                same = f"({parts}) = (SELECT {parts} FROM c)"
            inside = f"coalesce(({key.predicate.sql}), false)" if key.predicate else "true"
            checks.append(
                f"CASE WHEN (SELECT {inside} FROM c) AND EXISTS (SELECT 1 FROM {table_ident(spec)} "
                f"WHERE {inside} AND {same}) THEN {literal(key.name)} END"
            )
        if not checks:
            return [], 0
        statement = (f"WITH c AS ({self.typed_row(spec, row)}) SELECT array_remove(ARRAY[{', '.join(checks)}]::text[], "
                     f"NULL), (SELECT count(*) FROM {table_ident(spec)})")
        outcome = self.attempt(statement)
        if not outcome.ok or not outcome.returned:
            return [f"(probe failed: {outcome.describe()})"], 0
        return list(outcome.returned[0]), int(outcome.returned[1])

    def stored_collision(self, spec: TableSpec, row: Mapping[str, Any]) -> str | None:
        """The UNIQUE or exclusion constraint ``row`` collides with once stored, found by
        inserting it in a savepoint that is rolled back: for a table whose BEFORE INSERT
        triggers may rewrite the row (``lower(name)`` into a key column), which no
        comparison of the drawn values can tell."""
        outcome = self.attempt(self.insert_sql(spec, row))
        if not outcome.ok and outcome.sqlstate in ("23505", "23P01"):
            return outcome.constraint
        return None

    def free_values(self, spec: TableSpec, key: UniqueKey, column: str, candidates: Sequence[Any]) -> list[Any]:
        """The candidates for a single-column UNIQUE key that no row holds yet, in order."""
        if not candidates:
            return []
        kind = spec.columns[column].kind.name
        cast = cast_type(spec.table.column(column))
        listed = ", ".join(f"({i}, {literal(v, kind)}::{cast})" for i, v in enumerate(candidates))
        inside = f" AND coalesce(({key.predicate.sql}), false)" if key.predicate else ""
        rows = self.query(
            f"SELECT i FROM (VALUES {listed}) AS c(i, v) WHERE NOT EXISTS (SELECT 1 FROM {table_ident(spec)} "
            f"WHERE {_ident(column)} = c.v{inside}) ORDER BY i")
        return [candidates[r[0]] for r in rows]

    def accepts(self, spec: TableSpec, row: Mapping[str, Any], rules: Sequence[Rule]) -> bool:
        """Whether the server's own evaluation of ``rules`` accepts ``row`` (and its types
        and domains take the values)."""
        verdict = self.verdicts(spec, row, rules)
        return verdict is not None and all(verdict)

    def verdicts(self, spec: TableSpec, row: Mapping[str, Any], rules: Sequence[Rule]) -> list[bool] | None:
        """Per rule: does the server accept ``row``; None when the row itself is refused
        (a value its type or domain does not take, or a CHECK that raises)."""
        tests = [f"(({r.sql})) IS NOT FALSE" for r in rules if r.kind != "domain"]
        statement = f"SELECT {', '.join(tests) or 'true'} FROM ({self.typed_row(spec, row)}) AS c"
        outcome = self.attempt(statement)
        if not outcome.ok or outcome.returned is None:
            self.last_refusal = outcome
            return None
        results = iter(outcome.returned)
        return [True if r.kind == "domain" else bool(next(results)) for r in rules]

    def evaluate(self, spec: TableSpec, row: Mapping[str, Any], expressions: Sequence[str]) -> Outcome:
        """The raw values of ``expressions`` over the typed row (NULLs kept)."""
        statement = f"SELECT {', '.join(f'({e})' for e in expressions)} FROM ({self.typed_row(spec, row)}) AS c"
        return self.attempt(statement)

    def insert(self, spec: TableSpec, row: Mapping[str, Any], keep: bool = False,
               returning: Sequence[str] = ()) -> Outcome:
        return self.attempt(self.insert_sql(spec, row, returning), keep=keep)
