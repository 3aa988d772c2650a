"""``constraints.referential-action``: deleting a parent, and changing its key, does what the
models' ``ondelete`` / ``onupdate`` say, shown on generated rows.

For each foreign key of a table: a fresh parent row and a child pointing at it are
inserted, then the parent is deleted (and, separately, its key changed) in a savepoint
that is rolled back. What happened to the child is observed: gone (CASCADE), its key
NULL (SET NULL) or back to the default (SET DEFAULT), or the statement refused (RESTRICT
and NO ACTION, which behave alike unless deferred; a deferred one is asked to check at
once, as COMMIT would). The expectation is the models' foreign key; without models (or a
foreign key the models do not declare) it is the catalog's own action, which proves the
database does what its DDL says (triggers and rules can make it lie).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from pytest_dbarch.constraints.context import Context
from pytest_dbarch.constraints.literals import cast_type, literal
from pytest_dbarch.constraints.probe import Outcome, qualified_ident, table_ident
from pytest_dbarch.constraints.rows import RandomSource
from pytest_dbarch.constraints.schema import ForeignKey, TableSpec
from pytest_dbarch.constraints.spaces import Space
from pytest_dbarch.findings import Area, Finding, Status

RULE = "constraints.referential-action"
REFUSES = {"RESTRICT", "NO ACTION"}


@dataclass
class Observation:
    event: str  # "delete" or "update"
    expected: str  # the action the models (or the catalog) declare
    source: str  # "models" or "catalog"
    observed: str  # CASCADE, SET NULL, SET DEFAULT, NO ACTION (refused), nothing, kept, conflict
    detail: str = ""
    conflict: str = ""  # the constraint that refused the action's effect on the child

    @property
    def agrees(self) -> bool:
        if self.expected in REFUSES:
            return self.observed in REFUSES
        return self.observed == self.expected


def _ident(name: str) -> str:
    return sql.Identifier(name).as_string(None)


def check(ctx: Context, spec: TableSpec) -> list[Finding]:
    findings: list[Finding] = []
    proven: list[str] = []
    for fk in spec.foreign_keys:
        reason = ctx.skips.constraint(spec, fk.name)
        if reason:
            proven.append(f"{fk.name}: skipped: {reason}")
            continue
        model = ctx.intent.foreign_key(spec.qualified, fk.columns, fk.parent)
        source = "models" if model is not None else "catalog"
        expected = {
            "delete": model.on_delete if model else (fk.constraint.on_delete or "NO ACTION"),
            "update": model.on_update if model else (fk.constraint.on_update or "NO ACTION"),
        }
        for event in ("delete", "update"):
            observation = _observe(ctx, spec, fk, event, expected[event], source)
            if observation.agrees:
                proven.append(f"{fk.name}: on {event} of {fk.parent}: {observation.observed} ({source} "
                              f"{'say' if source == 'models' else 'says'} {observation.expected})")
            elif observation.observed == "unprotected partition":
                findings.append(_finding(spec, fk, observation))
                break  # one cause, whatever the event: the partition has no such key at all
            else:
                findings.append(_finding(spec, fk, observation))
    findings += _unprotected_partitions(ctx, spec, {f.where for f in findings})
    if proven:
        findings.append(Finding(RULE, Area.MODELS, Status.PASSED,
                                f"{spec.qualified}: deleting and updating parents does what "
                                f"{'the models' if ctx.intent.tables else 'the catalog'} say "
                                f"({len(spec.foreign_keys)} foreign keys)",
                                evidence="\n".join(proven), where=spec.qualified))
    return findings


def _finding(spec: TableSpec, fk: ForeignKey, seen: Observation) -> Finding:
    where = f"{spec.qualified}.{fk.name}"
    event = seen.event.upper()
    if seen.observed.startswith("could not"):
        return Finding(RULE, Area.MODELS, Status.WARNING,
                       f"{spec.qualified}: {fk.name} on {seen.event} not checked: {seen.observed}",
                       evidence=seen.detail, where=where)
    verb = "deleting" if seen.event == "delete" else "changing the key of"
    columns = ", ".join(fk.columns)
    if seen.observed == "unprotected partition":
        return Finding(RULE, Area.MODELS, Status.FAILED,
                       f"{spec.qualified}: partition {seen.conflict} has no foreign key on {columns} to "
                       f"{fk.parent}: its rows can keep keys whose parent is gone (other partitions declare "
                       f"{fk.name})",
                       evidence=seen.detail, where=f"{seen.conflict}.{', '.join(fk.columns)}",
                       fix=f"ALTER TABLE {seen.conflict} ADD FOREIGN KEY ({', '.join(_ident(c) for c in fk.columns)}) "
                           f"REFERENCES {qualified_ident(fk.parent)} ({', '.join(_ident(c) for c in fk.parent_columns)}) "
                           "NOT VALID, then VALIDATE CONSTRAINT (or declare the key on the partitioned table itself)")
    if seen.observed == "conflict":
        return Finding(RULE, Area.MODELS, Status.FAILED,
                       f"{spec.qualified}: {verb} a {fk.parent} row is refused: the ON {event} {seen.expected} "
                       f"of {fk.name} breaks {seen.conflict}",
                       evidence=seen.detail, where=where,
                       fix=f"ON {event} {seen.expected} cannot work while {seen.conflict} needs {columns}: let it "
                           f"accept what {seen.expected} leaves there, or choose another action (models and "
                           "database together)")
    what = {"CASCADE": "removed the child row", "SET NULL": "set the child's key to NULL",
            "SET DEFAULT": "set the child's key to its default", "NO ACTION": "was refused",
            "nothing": "left the child pointing at a parent that is gone",
            "kept": "did not happen (a trigger or rule kept the parent row)"}.get(seen.observed, seen.observed)
    actual = {"nothing": "NO ACTION", "kept": "NO ACTION"}.get(seen.observed, seen.observed)
    fix = (f"ALTER TABLE {table_ident(spec)} DROP CONSTRAINT {_ident(fk.name)}, ADD CONSTRAINT {_ident(fk.name)} "
           f"FOREIGN KEY ({', '.join(_ident(c) for c in fk.columns)}) REFERENCES {qualified_ident(fk.parent)} "
           f"({', '.join(_ident(c) for c in fk.parent_columns)}) ON {event} {seen.expected} NOT VALID, then "
           f"VALIDATE CONSTRAINT; or change the models to ON {event} {actual}")
    if seen.observed in ("nothing", "kept"):
        fix = (f"find what stops {fk.name} from acting (disabled triggers, session_replication_role, a rule or "
               "trigger on the parent) and remove it")
    return Finding(RULE, Area.MODELS, Status.FAILED,
                   f"{spec.qualified}: {verb} a {fk.parent} row {what} ({fk.name} on {columns}); "
                   f"the {seen.source} {'say' if seen.source == 'models' else 'says'} ON {event} {seen.expected}",
                   evidence=seen.detail, where=where, fix=fix)


def _observe(ctx: Context, spec: TableSpec, fk: ForeignKey, event: str, expected: str, source: str) -> Observation:
    parent = ctx.specs(fk.parent)
    seen = Observation(event, expected, source, "could not build rows")
    with ctx.savepoint():
        try:
            ctx.ensure_parents(parent)
            ctx.ensure_parents(spec)
            ctx.filler().make_room(parent)  # a new parent row needs a free key of its own parents
            ctx.keys.forget()
        except Exception as exc:  # a parent we cannot fill: say so, do not crash the run
            seen.detail = str(exc)
            return seen
        parent_row, inserted = _insert_one(ctx, parent, f"referential:{fk.name}:parent", {}, fk.parent_columns)
        if parent_row is None:
            seen.observed = f"could not draw a {fk.parent} row"
            return seen
        if not inserted.ok or inserted.returned is None:
            seen.observed = f"could not insert a {fk.parent} row"
            seen.detail = inserted.describe()
            return seen
        key = dict(zip(fk.columns, inserted.returned))
        identity = _identity(spec, fk)
        child_row, child = _insert_one(ctx, spec, f"referential:{fk.name}:child", key, [*identity, "tableoid"])
        if child_row is None:
            seen.observed = f"could not draw a {spec.qualified} row for it"
            return seen
        if not child.ok or child.returned is None:
            seen.observed = f"could not insert a {spec.qualified} row"
            seen.detail = child.describe()
            return seen
        find_child = _locator(spec, dict(zip(identity, child.returned)))
        landed = _partition_without(ctx, fk, child.returned[-1]) if fk.from_partition else None
        where_parent = " AND ".join(f"{_ident(p)} = {literal(v)}" for p, v in zip(fk.parent_columns, inserted.returned))
        if event == "delete":
            statement = f"DELETE FROM {qualified_ident(fk.parent)} WHERE {where_parent}"
        else:
            assignment = _new_key(ctx, parent, fk, inserted.returned)
            if assignment is None:
                seen.observed = "could not find a free key for the parent"
                return seen
            statement = f"UPDATE {qualified_ident(fk.parent)} SET {assignment} WHERE {where_parent}"
        if fk.constraint.deferrable:
            statement += f"; SET CONSTRAINTS {sql.Identifier(spec.table.schema, fk.name).as_string(None)} IMMEDIATE"
        outcome = ctx.probe.attempt(statement, keep=True)
        seen.observed, seen.detail = _what_happened(ctx, spec, fk, find_child, key, outcome)
        if landed is not None and seen.observed in ("nothing", "SET NULL", "SET DEFAULT", "CASCADE"):
            seen.observed, seen.conflict = "unprotected partition", landed
        if seen.observed == "conflict":
            seen.conflict = outcome.constraint or (f"NOT NULL on {outcome.column}" if outcome.column else "")
        seen.detail = f"parent {fk.parent}: {dict(zip(fk.parent_columns, inserted.returned))}\n" \
                      f"child {spec.qualified}: {child_row}\n{statement}\n{seen.detail}"
    return seen


def _insert_one(ctx: Context, spec: TableSpec, salt: str, fixed: dict[str, Any], returning: Sequence[str],
                tries: int = 4) -> tuple[dict[str, Any] | None, Outcome]:
    """A drawn row inserted (kept), trying up to ``tries`` rows: a trigger may refuse some
    for a rule of its own (MusicBrainz refuses a relationship of a deprecated type). The
    last row and outcome when none goes in; (None, ...) when none could be drawn."""
    row, outcome = None, Outcome(False)
    for attempt in range(tries):
        drawn = ctx.row(spec, salt + (f":{attempt}" if attempt else ""), fixed=fixed or None)
        if drawn is None:
            break
        row, outcome = drawn, ctx.probe.insert(spec, drawn, keep=True, returning=returning)
        if outcome.ok:
            break
    return row, outcome


def _unprotected_partitions(ctx: Context, spec: TableSpec, reported: set[str]) -> list[Finding]:
    """Partitions that lack a foreign key their siblings declare, read from the catalog:
    the generated child row lands in one partition only, so the others are listed here
    (pagila's ``payment_p2022_07`` has none of the three keys of its six siblings)."""
    partitions = [t for t in ctx.catalog if spec.qualified in t.parents]
    found = []
    for fk in spec.foreign_keys:
        if not fk.from_partition or ctx.skips.constraint(spec, fk.name):
            continue
        declaring = [p.qualified for p in partitions
                     if any(c.columns == fk.columns and c.ref == fk.parent for c in p.foreign_keys)]
        for partition in partitions:
            where = f"{partition.qualified}.{', '.join(fk.columns)}"
            if partition.qualified in declaring or where in reported:
                continue
            seen = Observation("delete", fk.constraint.on_delete or "NO ACTION", "catalog", "unprotected partition",
                               detail=f"read from the catalog: {len(declaring)} of {len(partitions)} partitions of "
                                      f"{spec.qualified} declare it ({', '.join(declaring)}); "
                                      f"{partition.qualified} does not",
                               conflict=partition.qualified)
            found.append(_finding(spec, fk, seen))
    return found


def _partition_without(ctx: Context, fk: ForeignKey, oid: int) -> str | None:
    """The partition the child row landed in, when it lacks a foreign key like ``fk`` (same
    columns, same parent) that its siblings declare: its rows are not protected."""
    partition = next((t for t in ctx.catalog if t.oid == oid), None)
    if partition is None:
        return None
    has = any(c.columns == fk.columns and c.ref == fk.parent for c in partition.foreign_keys)
    return None if has else partition.qualified


def _identity(spec: TableSpec, fk: ForeignKey) -> list[str]:
    """Columns that find the child row again after the action changed its key columns: a
    primary or unique key without them, else every other column with an equality (the
    stored values are compared, read back with RETURNING: a BEFORE trigger may have
    rewritten what was sent)."""
    for key in spec.uniques:
        if key.plain and key.predicate is None and key.kind != "exclusion" and not set(key.key_columns) & set(fk.columns):
            return list(key.key_columns)
    return [c.name for c in spec.table.columns
            if c.name not in fk.columns and c.type_name not in ("json", "xml", "_json", "_xml")]


def _locator(spec: TableSpec, stored: dict[str, Any]) -> str:
    """A WHERE clause matching the stored values of ``stored``'s columns."""
    parts = []
    for name, value in stored.items():
        kind = spec.columns[name].kind.name if name in spec.columns else ""
        parts.append(f"{_ident(name)} IS NOT DISTINCT FROM {literal(value, kind)}::{cast_type(spec.table.column(name))}")
    return " AND ".join(parts) or "true"


def _new_key(ctx: Context, parent: TableSpec, fk: ForeignKey, old: tuple[Any, ...]) -> str | None:
    parts = []
    source = RandomSource(ctx.rng(f"referential:{fk.name}:newkey"))
    for column, value in zip(fk.parent_columns, old):
        spec_column = parent.columns.get(column)
        catalog_column = parent.table.column(column)
        if spec_column is None:
            if catalog_column.default or catalog_column.identity:
                parts.append(f"{_ident(column)} = DEFAULT")
                continue
            return None
        for _ in range(20):
            candidate = source.value(Space.of(spec_column.kind, nullable=False))
            if candidate == value:
                continue
            taken = ctx.probe.query(f"SELECT EXISTS (SELECT 1 FROM {table_ident(parent)} WHERE {_ident(column)} = "
                                    f"{literal(candidate, spec_column.kind.name)})")
            if not (taken and taken[0][0]):
                parts.append(f"{_ident(column)} = {literal(candidate, spec_column.kind.name)}")
                break
        else:
            return None
    return ", ".join(parts)


def _what_happened(ctx: Context, spec: TableSpec, fk: ForeignKey, find_child: str,
                   old_key: dict[str, Any], outcome: Outcome) -> tuple[str, str]:
    if not outcome.ok:
        if outcome.sqlstate in ("23503", "23001"):
            return "NO ACTION", f"refused: {outcome.describe()}"
        if (outcome.sqlstate or "").startswith("23") and outcome.table != fk.parent.split(".", 1)[1]:
            return "conflict", f"refused: {outcome.describe()}"  # the action's effect on the child
        # a trigger on the parent (lago's roles: "Predefined role cannot be modified"), or the
        # parent's own constraint: the foreign key's action never ran
        return "could not change the parent row", f"refused before the action ran: {outcome.describe()}"
    if outcome.rowcount == 0:
        return "kept", "0 parent rows changed"
    columns = ", ".join(_ident(c) for c in fk.columns)
    rows = ctx.probe.query(f"SELECT {columns} FROM {table_ident(spec)} WHERE {find_child}")
    if not rows:
        return "CASCADE", "the child row is gone"
    now = dict(zip(fk.columns, rows[0]))
    if now == old_key:
        return "nothing", f"the child still has {now}"
    if all(v is None for v in now.values()):
        return "SET NULL", f"the child's key is now {now}"
    defaults = [spec.table.column(c).default for c in fk.columns]
    if all(defaults):
        found = ctx.probe.query("SELECT " + ", ".join(f"({d})" for d in defaults))
        if found and tuple(found[0]) == tuple(now.values()):
            return "SET DEFAULT", f"the child's key is now its default {now}"
    if any(v is None for v in now.values()):
        return "SET NULL", f"the child's key is now {now}"
    return "CASCADE", f"the child's key followed the parent: {now}"
