"""``.fill(table, n)``: n valid rows through COPY, parents first where they are needed.

Rows are drawn with ``random.Random`` (no hypothesis size limit), copied as text into a
temporary staging table, and moved with one ``INSERT ... SELECT`` that casts each column
to its type, keeps only rows whose CHECKs the server accepts (the ones Python could not
decide) and skips UNIQUE collisions with rows already there (``ON CONFLICT DO
NOTHING``). What was skipped is drawn again, until n rows are in. A parent table that a
NOT NULL foreign key needs and that holds no rows is filled first, recursively; a
NOT NULL self-reference gets keys from the batch itself (the first row points at itself).
"""

from __future__ import annotations

import collections
import math
import random
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg import sql

from pytest_dbarch.constraints.block import draw_block
from pytest_dbarch.constraints.draws import BatchUniques, LoadedKeys
from pytest_dbarch.constraints.literals import cast_type, text_value
from pytest_dbarch.constraints.probe import Probe, table_ident
from pytest_dbarch.constraints.rows import DrawStats, KeysExhausted, RandomSource, RowDrawer, given_on_purpose
from pytest_dbarch.constraints.schema import ForeignKey, TableSpec
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.origin import plugin_statements

ROUNDS = 6
DIRECT = "dbarch_fill_direct"
PARENT_GROWTH = 20  # parent rows added once when the server refused every row for a reason of its own
MOVE_PASSES = 50  # windows of staged rows moved into the table, at most, per round


class FillError(DbarchError):
    """The table cannot be filled with valid rows."""


def parents_for(n: int) -> int:
    """How many parent rows to create for n children (about one per ten)."""
    return max(1, min(1000, math.ceil(n / 10)))


class Filler:
    """Fills tables of one database; ``specs`` looks a table up by name."""

    def __init__(self, probe: Probe, specs: Callable[[str], TableSpec], rng: random.Random) -> None:
        self.probe = probe
        self.specs = specs
        self.rng = rng
        self.stats: dict[str, DrawStats] = {}
        # what the server said when it refused rows inserted one by one, per table
        self.refusals: dict[str, collections.Counter[str]] = {}

    def fill(self, spec: TableSpec, n: int, fixed: Mapping[str, Any] | None = None,
             _path: tuple[str, ...] = ()) -> int:
        if n <= 0:
            return 0
        fixed = dict(fixed or {})
        if spec.problems:
            raise FillError(f"{spec.qualified} cannot be filled: {'; '.join(spec.problems)}",
                            "give those columns a default, make them nullable, or pass values: "
                            f".fill({spec.name!r}, n, column=value)")
        keys = self._parent_keys(spec, n, fixed, _path + (spec.qualified,))
        self_ref = [fk for fk in spec.foreign_keys if fk.self_reference and not fk.nullable
                    and not any(c in fixed for c in fk.columns)]
        stats = self.stats.setdefault(spec.qualified, DrawStats())
        self.refusals[spec.qualified] = collections.Counter()
        drawer = RowDrawer(spec, LoadedKeys(keys), BatchUniques(spec), None, stats, trust_plan=True)
        broken = [name for name in given_on_purpose(spec, fixed).ignore if any(r.name == name for r in spec.rules)]
        if broken:
            raise FillError(f"the values given for {spec.qualified} break {', '.join(sorted(broken))}: "
                            "no valid row can hold them", "give values the table's CHECKs accept")
        source = RandomSource(self.rng)
        tight = None if self_ref else self._tight_key(spec, fixed)
        inserted = 0
        widened = False
        for round_ in range(ROUNDS):
            wanted = n - inserted
            unverified = stats.unverified
            # a round that kept few rows (CHECKs only the server reads, keys taken by rows
            # already there) is followed by a bigger one; COPY takes no more than wanted
            drawn = wanted if not round_ or self_ref else min(wanted * 4 ** round_, max(wanted, 10 * n))
            if tight is not None:
                batch = self._on_free_keys(spec, drawer, source, drawn, fixed, tight)
            else:
                batch = self._draw(spec, drawer, source, drawn, fixed, self_ref)
            direct = stats.unverified == unverified and not self_ref and self._nothing_to_collide_with(spec)
            copied = self._copy_directly(spec, batch[:wanted]) if batch and direct else None
            if copied is not None:
                inserted += copied
            elif batch:
                inserted += self._copy(spec, batch, wanted)
            if inserted >= n:
                return inserted
            if not widened:
                widened = True
                path = _path + (spec.qualified,)
                grown = self._fill_optional_parents(spec, n, fixed, path) if not inserted else False
                grown = self._grow_key_parents(spec, n - inserted, fixed, path) or grown
                if not inserted and self.refusals.get(spec.qualified):
                    grown = self._grow_parents(spec, fixed, path) or grown
                if grown:
                    keys = self._parent_keys(spec, n, fixed, path)
                    drawer = RowDrawer(spec, LoadedKeys(keys), BatchUniques(spec), None, stats, trust_plan=True)
        reasons = stats.summary()
        refused = self.refusals.get(spec.qualified)
        if refused:
            said = "; ".join(f"{reason} ({count} rows)" for reason, count in refused.most_common(3))
            raise FillError(
                f"only {inserted} of {n} rows could be inserted into {spec.qualified}: PostgreSQL refused the "
                f"others one by one: {said} ({reasons})",
                "a trigger or a CHECK calling a function decides with data the generator cannot see (often a "
                "parent row's): pass values it accepts, .fill(table, n, column=value), or fill the parent "
                "tables first with rows it accepts",
            )
        raise FillError(
            f"only {inserted} of {n} rows could be inserted into {spec.qualified} ({reasons})",
            "check the table's CHECKs and UNIQUE keys leave room for that many rows, or pass fixed "
            "values for the columns that limit them",
        )

    def _draw(self, spec: TableSpec, drawer: RowDrawer, source: RandomSource, wanted: int,
              fixed: dict[str, Any], self_ref: list[ForeignKey]) -> list[dict[str, Any]]:
        extra = max(2, wanted // 20)
        if self_ref:
            return self._self_referencing(spec, drawer, source, wanted, fixed, self_ref)
        rows: list[dict[str, Any]] = []
        tries = 0
        while len(rows) < wanted + extra and tries < 10:
            tries += 1
            try:
                draw_block(drawer, source, wanted + extra - len(rows), fixed, rows)
            except KeysExhausted:
                break  # a UNIQUE key has no value left: insert what there is, then say so
        return rows

    def _self_referencing(self, spec: TableSpec, drawer: RowDrawer, source: RandomSource, wanted: int,
                          fixed: dict[str, Any], self_ref: list[ForeignKey]) -> list[dict[str, Any]]:
        """Rows whose NOT NULL self-reference points at an earlier row of the batch (or itself)."""
        for fk in self_ref:
            if len(fk.columns) != 1 or len(fk.parent_columns) != 1:
                raise FillError(f"{spec.qualified}: composite NOT NULL self-reference {fk.name} is not supported",
                                "make it nullable or DEFERRABLE, or fill the table yourself")
        key_columns = [fk.parent_columns[0] for fk in self_ref]
        pool = self._reserve_keys(spec, key_columns, wanted)
        rows = []
        for i in range(wanted):
            pinned = dict(fixed)
            for column in key_columns:
                pinned[column] = pool[column][i]
            for fk in self_ref:
                target = pool[fk.parent_columns[0]]
                pinned[fk.columns[0]] = target[source.rng.randrange(i + 1)]
            row = drawer.draw(source, pinned, attempts=50)
            if row is not None:
                rows.append(row)
        return rows

    def _reserve_keys(self, spec: TableSpec, columns: list[str], n: int) -> dict[str, list[Any]]:
        pool: dict[str, list[Any]] = {}
        for column in columns:
            if column in spec.columns:
                space = spec.columns[column].space
                drawn: dict[Any, None] = {}
                source = RandomSource(self.rng)
                while len(drawn) < n:
                    drawn[source.value(space)] = None
                pool[column] = list(drawn)
                continue
            sequence = self.probe.query("SELECT pg_get_serial_sequence(%s, %s)", [table_ident(spec), column])
            if not sequence or sequence[0][0] is None:
                raise FillError(f"{spec.qualified}.{column} is filled by the database without a sequence",
                                "fill the table yourself")
            values = self.probe.query(f"SELECT nextval(%s) FROM generate_series(1, {int(n)})", [sequence[0][0]])
            pool[column] = [v[0] for v in values]
        return pool

    def _parent_keys(self, spec: TableSpec, n: int, fixed: Mapping[str, Any],
                     path: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
        keys: dict[str, list[tuple[Any, ...]]] = {}
        for fk in spec.foreign_keys:
            if fk.self_reference or any(c in fixed for c in fk.columns):
                if fk.self_reference:
                    keys[fk.name] = self.probe.parent_keys(fk)
                continue
            found = self.probe.parent_keys(fk)
            if not found and not fk.nullable:
                if fk.parent in path:
                    cycle = " -> ".join(path[path.index(fk.parent):] + (fk.parent,))
                    raise FillError(
                        f"NOT NULL foreign keys form a cycle ({cycle}); no row of them can be inserted first",
                        "make one of the foreign keys nullable or DEFERRABLE INITIALLY DEFERRED",
                    )
                self.fill(self.specs(fk.parent), parents_for(n), _path=path)
                found = self.probe.parent_keys(fk)
            keys[fk.name] = found
        return keys

    def _fill_optional_parents(self, spec: TableSpec, n: int, fixed: Mapping[str, Any],
                               path: tuple[str, ...]) -> bool:
        """Fill the empty parents of nullable foreign keys, once a round kept no row: a CHECK
        may need one of them set (``(user_id IS NULL) <> (publisher_id IS NULL)``). Whether
        any was filled; a parent that cannot be filled is left empty."""
        filled = False
        for fk in spec.foreign_keys:
            if (not fk.nullable or fk.self_reference or fk.parent in path or any(c in fixed for c in fk.columns)
                    or self.probe.parent_keys(fk, limit=1)):
                continue
            try:
                self.fill(self.specs(fk.parent), parents_for(n), _path=path)
            except FillError:
                continue
            filled = True
        return filled

    def _tight_key(self, spec: TableSpec, fixed: Mapping[str, Any]) -> list[ForeignKey] | None:
        """The foreign keys making up a plain UNIQUE key of ``spec`` on their own (a
        one-to-one extension, an association table), none of them pinned by ``fixed``: such
        a table holds one row per combination of its parents' keys."""
        for key in spec.uniques:
            fks = [fk for fk in spec.foreign_keys if set(fk.columns) <= set(key.key_columns)]
            covered = sorted(c for fk in fks for c in fk.columns)
            if (key.plain and key.predicate is None and covered == sorted(key.key_columns)
                    and not any(c in fixed for c in key.key_columns) and not any(fk.self_reference for fk in fks)):
                return fks
        return None

    def _on_free_keys(self, spec: TableSpec, drawer: RowDrawer, source: RandomSource, wanted: int,
                      fixed: dict[str, Any], fks: list[ForeignKey]) -> list[dict[str, Any]]:
        """Rows on parent-key combinations no row holds yet, instead of random keys that
        mostly collide once few are left."""
        columns = [c for fk in fks for c in fk.columns]
        free = self.probe.free_parent_keys(spec, fks, limit=min(10 * wanted + 10, 100_000))
        self.rng.shuffle(free)
        rows = []
        for values in free[:wanted + max(2, wanted // 20)]:
            row = drawer.draw(source, {**fixed, **dict(zip(columns, values))}, attempts=20)
            if row is not None:
                rows.append(row)
        return rows

    def make_room(self, spec: TableSpec, rows: int = 1) -> None:
        """Parent rows enough for ``rows`` more rows of ``spec`` when a UNIQUE key made of
        foreign keys only has no combination of parent keys left (a check about to insert
        a row of a one-to-one extension whose parents are all taken)."""
        fks = self._tight_key(spec, {})
        if fks and len(self.probe.free_parent_keys(spec, fks, limit=rows)) < rows:
            self._grow_key_parents(spec, rows, {}, (spec.qualified,))

    def _grow_key_parents(self, spec: TableSpec, missing: int, fixed: Mapping[str, Any],
                          path: tuple[str, ...]) -> bool:
        """Add parent rows when a UNIQUE key made of foreign keys only has too few parent
        keys left (the parents filled for a few children offer one or two). Whether any grew."""
        grown = False
        for fk in self._tight_key(spec, fixed) or []:
            if fk.parent in path:
                continue
            try:
                self.fill(self.specs(fk.parent), min(1000, missing), _path=path)
            except FillError:
                continue
            grown = True
        return grown

    def _grow_parents(self, spec: TableSpec, fixed: Mapping[str, Any], path: tuple[str, ...]) -> bool:
        """Add rows to every parent once the server refused each row for a reason of its own:
        a trigger that reads the parent (MusicBrainz refuses a link whose link_type is
        deprecated; the one parent filled for a few children was) lets rows of other parents
        through. Whether any grew."""
        grown = False
        for fk in spec.foreign_keys:
            if fk.self_reference or fk.parent in path or any(c in fixed for c in fk.columns):
                continue
            try:
                self.fill(self.specs(fk.parent), PARENT_GROWTH, _path=path)
            except FillError:
                continue
            grown = True
        return grown

    def _nothing_to_collide_with(self, spec: TableSpec) -> bool:
        """Whether rows unique among themselves are unique in the table: no UNIQUE key over
        drawn columns, or every one plain (kept unique in the batch) and the table empty."""
        keys = [k for k in spec.uniques if not any(c in spec.left_out for c in k.columns)]
        if not keys:
            return True
        if any(not k.plain or k.predicate is not None for k in keys):
            return False
        return not self.probe.query(f"SELECT 1 FROM {table_ident(spec)} LIMIT 1")

    def _copy_directly(self, spec: TableSpec, rows: list[dict[str, Any]]) -> int | None:
        """COPY the rows straight into the table, when Python has decided every CHECK and no
        UNIQUE key can collide; returns how many the table took (a trigger may drop some),
        or None (nothing kept) when the server refuses any, and the staged path sorts them out."""
        names = list(dict.fromkeys(name for row in rows for name in row))
        if not names:
            return None
        kinds = {n: spec.columns[n].kind.name if n in spec.columns else "" for n in names}
        columns = ", ".join(sql.Identifier(n).as_string(None) for n in names)
        self.probe.query(f"SAVEPOINT {DIRECT}")
        try:
            with plugin_statements(), self.probe.conn.cursor() as cur:
                with cur.copy(f"COPY {table_ident(spec)} ({columns}) FROM STDIN".encode()) as copy:
                    for row in rows:
                        copy.write_row([text_value(row.get(n), kinds[n]) for n in names])
                copied = cur.rowcount
        except psycopg.Error:
            with plugin_statements():
                self.probe.conn.execute(f"ROLLBACK TO SAVEPOINT {DIRECT}; RELEASE SAVEPOINT {DIRECT}".encode())
            return None
        self.probe.query(f"RELEASE SAVEPOINT {DIRECT}")
        return copied if copied >= 0 else len(rows)

    def _copy(self, spec: TableSpec, rows: list[dict[str, Any]], wanted: int) -> int:
        """COPY the rows into a staging table and move the valid ones; returns how many."""
        names = list(dict.fromkeys(name for row in rows for name in row))
        if not names:  # every column is filled by the database: rows of defaults
            outcome = self.probe.attempt(f"INSERT INTO {table_ident(spec)} SELECT FROM generate_series(1, "
                                         f"{int(wanted)}) ON CONFLICT DO NOTHING", keep=True)
            return max(outcome.rowcount, 0) if outcome.ok else 0
        kinds = {n: spec.columns[n].kind.name if n in spec.columns else "" for n in names}
        stage = sql.Identifier(f"dbarch_fill_{spec.table.oid}").as_string(None)
        columns = ", ".join(sql.Identifier(n).as_string(None) for n in names)
        ordinal = sql.Identifier("dbarch_fill_row").as_string(None)
        self.probe.query(f"CREATE TEMP TABLE IF NOT EXISTS {stage} ({ordinal} int, "
                         + ", ".join(f"{sql.Identifier(n).as_string(None)} text" for n in names) + ")")
        self.probe.query(f"TRUNCATE {stage}")
        with plugin_statements(), self.probe.conn.cursor() as cur:
            with cur.copy(f"COPY {stage} ({ordinal}, {columns}) FROM STDIN".encode()) as copy:
                for i, row in enumerate(rows):
                    copy.write_row([i, *(text_value(row.get(n), kinds[n]) for n in names)])
        typed = []
        for column in spec.table.columns:
            ident = sql.Identifier(column.name).as_string(None)
            source = ident if column.name in names else "NULL"
            typed.append(f"{source}::{cast_type(column)} AS {ident}")
        checks = [f"(({r.sql})) IS NOT FALSE" for r in spec.rules
                  if r.kind in ("check", "partition") and not (r.columns & set(spec.left_out))]
        where = " AND ".join(checks) or "true"
        overriding = " OVERRIDING SYSTEM VALUE" if any(spec.table.column(n).identity == "always" for n in names) else ""
        # A window of the staged rows at a time, as many as are still wanted: ON CONFLICT
        # drops rows that meet one already there (a partial UNIQUE index on a parent key),
        # and a plain LIMIT would have stopped at the first ones, colliding or not.
        inserted = start = passes = 0
        while inserted < wanted and start < len(rows) and passes < MOVE_PASSES:
            window = wanted - inserted
            statement = (f"INSERT INTO {table_ident(spec)} ({columns}){overriding} SELECT {columns} FROM "
                         f"(SELECT {', '.join(typed)} FROM {stage} WHERE {ordinal} >= {start} AND {ordinal} < "
                         f"{start + window}) AS c WHERE {where} ON CONFLICT DO NOTHING")
            outcome = self.probe.attempt(statement, keep=True)
            if not outcome.ok:
                self.probe.query(f"DROP TABLE {stage}")
                return inserted + self._one_by_one(spec, rows[start:], wanted - inserted)
            inserted += max(outcome.rowcount, 0)
            start += window
            passes += 1
        self.probe.query(f"DROP TABLE {stage}")
        return inserted

    def _one_by_one(self, spec: TableSpec, rows: list[dict[str, Any]], wanted: int) -> int:
        """The bulk move failed (a trigger, a CHECK that raises): keep the rows that insert."""
        kept = 0
        refused = self.refusals.setdefault(spec.qualified, collections.Counter())
        for row in rows:
            if kept >= wanted:
                break
            outcome = self.probe.insert(spec, row, keep=True)
            if outcome.ok:
                kept += 1
            else:
                refused[outcome.describe().splitlines()[0][:200]] += 1
        return kept
