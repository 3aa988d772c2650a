"""``constraints.rejects-violator``: every NOT NULL, CHECK, UNIQUE and foreign key refuses
a row that violates it, and only it, with its own SQLSTATE and name.

For each constraint a row is built that breaks exactly that one (the others verified to
hold, by the server where Python cannot tell), inserted in a savepoint and rolled back:
about a millisecond each. Deferrable constraints are asked to check at once (``SET
CONSTRAINTS ... IMMEDIATE``), as COMMIT would. Verdicts:

- refused with the constraint's SQLSTATE and name: holds;
- accepted: failed (the constraint is not enforced: disabled triggers, a rule, a trigger
  that drops the row);
- refused by something else: a warning naming it;
- no row breaks it alone (``CHECK (x IS NOT NULL)`` on a NOT NULL column, a CHECK implied
  by another): a warning, the constraint is redundant.

One passed finding per table lists every constraint that held.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from pytest_dbarch.constraints.checks_parse import Rule
from pytest_dbarch.constraints.context import Context
from pytest_dbarch.constraints.literals import cast_type, literal
from pytest_dbarch.constraints.probe import Outcome, qualified_ident
from pytest_dbarch.constraints.rows import Aim, RandomSource
from pytest_dbarch.constraints.schema import ForeignKey, TableSpec, UniqueKey
from pytest_dbarch.constraints.search import first, mutations
from pytest_dbarch.constraints.spaces import Space
from pytest_dbarch.findings import Area, Finding, Status
from psycopg import sql

RULE = "constraints.rejects-violator"
STATES = {"NOT NULL": "23502", "CHECK": "23514", "DOMAIN CHECK": "23514", "UNIQUE": "23505", "EXCLUDE": "23P01",
          "FOREIGN KEY": "23503"}


@dataclass
class Trial:
    kind: str  # NOT NULL, CHECK, DOMAIN CHECK, UNIQUE, EXCLUDE, FOREIGN KEY
    name: str  # constraint name (the column for NOT NULL)
    column: str = ""  # the column whose type is the domain (DOMAIN CHECK)
    row: dict[str, Any] | None = None
    outcome: Outcome | None = None
    why_none: str = ""  # no violator could be built: why
    proven: bool = True  # why_none is a proof (a redundant constraint), not the search's limit
    skipped: str = ""
    millis: float = 0.0
    note: str = ""  # an accepted violator the database stored differently

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name} on {self.column}" if self.column else f"{self.kind} {self.name}"


UNIQUE_ATTEMPTS = 4  # first rows tried for a UNIQUE violator


def check(ctx: Context, spec: TableSpec) -> list[Finding]:
    ctx.ensure_parents(spec)
    base = _accepted_base(ctx, spec)
    if base is None:
        # The generator's limit, not a defect of the table (e.g. rows already there leave an
        # exclusion constraint little room): said, never failed on.
        return [Finding(RULE, Area.MODELS, Status.WARNING,
                        f"{spec.qualified}: violators not checked: no valid row to build them from",
                        evidence=ctx.drawer(spec).stats.summary(), where=spec.qualified,
                        fix="check the table while it holds fewer rows (e.g. in an empty test database), "
                            f"or skip it: dbarch_constraints_skip = {spec.qualified}: <why>")]
    trials: list[Trial] = []
    for column in spec.table.columns:
        if (column.not_null or column.domain_not_null) and column.writable and column.identity != "always":
            trials.append(_not_null(ctx, spec, base, column.name, column.domain_not_null and not column.not_null))
    for rule in spec.check_rules():
        trials.append(_check(ctx, spec, base, rule))
    for rule in spec.rules:
        if rule.kind == "domain":
            trials.append(_domain_check(ctx, spec, base, rule))
    for key in spec.uniques:
        trials.append(_unique(ctx, spec, key))
    for fk in spec.foreign_keys:
        trials.append(_foreign_key(ctx, spec, base, fk))
    return _findings(spec, trials)


def _accepted_base(ctx: Context, spec: TableSpec, tries: int = 4) -> dict[str, Any] | None:
    """The row violators are built from: the first drawn row the server takes (tried in a
    savepoint that is rolled back), else the first drawn. A trigger refusing the base row
    for a rule of its own (MusicBrainz: free text on an attribute type that allows none)
    would refuse every violator before its constraint is reached."""
    first_drawn = None
    for attempt in range(tries):
        row = ctx.row(spec, "violators:base" + (f":{attempt}" if attempt else ""))
        if row is None:
            break
        if ctx.probe.insert(spec, row).ok:
            return row
        first_drawn = first_drawn or row
    return first_drawn


def _skip(ctx: Context, spec: TableSpec, trial: Trial) -> bool:
    reason = ctx.skips.constraint(spec, trial.name)
    if reason:
        trial.skipped = reason
    return bool(reason)


def _violated(spec: TableSpec, trial: Trial) -> str | None:
    """SQL that says, in RETURNING, whether the stored row really breaks the constraint
    (a BEFORE trigger or a rule may have rewritten the row the test sent)."""
    if trial.kind == "NOT NULL":
        return f"{sql.Identifier(trial.name).as_string(None)} IS NULL"
    if trial.kind == "CHECK":
        rule = next((r for r in spec.check_rules() if r.name == trial.name), None)
        return f"(({rule.sql})) IS FALSE" if rule is not None else None
    if trial.kind == "FOREIGN KEY":
        fk = next((f for f in spec.foreign_keys if f.name == trial.name), None)
        if fk is None:
            return None
        mine = ", ".join(sql.Identifier(c).as_string(None) for c in fk.columns)
        theirs = ", ".join("p." + sql.Identifier(c).as_string(None) for c in fk.parent_columns)
        present = " AND ".join(f"{sql.Identifier(c).as_string(None)} IS NOT NULL" for c in fk.columns)
        return f"({present} AND NOT EXISTS (SELECT 1 FROM {qualified_ident(fk.parent)} p WHERE ({theirs}) = ({mine})))"
    if trial.kind in ("UNIQUE", "EXCLUDE") and trial.row is not None:
        # the row still holds the key values it was sent with, which the first row holds
        # too (a trigger normalising a key column from another one makes them differ)
        key = next((k for k in spec.uniques if k.name == trial.name), None)
        if key is None:
            return None
        same = [f"{sql.Identifier(c).as_string(None)} IS NOT DISTINCT FROM "
                f"{literal(trial.row[c], spec.columns[c].kind.name)}::{cast_type(spec.table.column(c))}"
                for c in key.columns if c in trial.row and c in spec.columns]
        return f"({' AND '.join(same)})" if same else None
    return None


def _run(ctx: Context, spec: TableSpec, trial: Trial, row: dict[str, Any], deferrable: bool = False,
         before: str = "") -> Trial:
    statement = ctx.probe.insert_sql(spec, row)
    if deferrable:
        statement += f"; SET CONSTRAINTS {sql.Identifier(spec.table.schema, trial.name).as_string(None)} IMMEDIATE"
    if before:
        statement = f"{before}; {statement}"
    started = time.perf_counter()
    trial.row = row
    trial.outcome = ctx.probe.attempt(statement)
    trial.millis = (time.perf_counter() - started) * 1000
    if trial.outcome.ok:
        violated = _violated(spec, trial)
        if violated is not None:
            stored = ctx.probe.attempt((f"{before}; " if before else "") + ctx.probe.insert_sql(spec, row)
                                       + f" RETURNING {violated}")
            if stored.ok and stored.rowcount == 0:
                trial.note = "the row was dropped without an error (a trigger or rule)"
            elif stored.ok and stored.returned is not None and stored.returned[0] is False:
                trial.note = "a trigger or rule rewrote the row so that it holds"
    return trial


def _not_null(ctx: Context, spec: TableSpec, base: dict[str, Any], column: str, domain: bool) -> Trial:
    trial = Trial("NOT NULL", column)
    if _skip(ctx, spec, trial):
        return trial
    return _run(ctx, spec, trial, {**base, column: None})


def _check(ctx: Context, spec: TableSpec, base: dict[str, Any], rule: Rule) -> Trial:
    trial = Trial("CHECK", rule.name)
    if _skip(ctx, spec, trial):
        return trial
    if rule.columns & set(spec.left_out):
        trial.why_none = "it reads a column the database fills (identity, serial or generated)"
        return trial
    others = [r for r in spec.check_rules() if r is not rule]

    def only_this_fails(row: dict[str, Any]) -> bool:
        verdicts = ctx.probe.verdicts(spec, row, [rule, *others])
        return verdicts is not None and not verdicts[0] and all(verdicts[1:])

    for attempt in range(8):
        row = ctx.row(spec, f"violators:{rule.name}:{attempt}", aim=Aim(violate=rule), attempts=25)
        if row is not None and only_this_fails(row):
            return _run(ctx, spec, trial, row, before=_missing_parents(ctx, spec, row, rule.name))
    found = first(mutations(spec, base, rule, ctx.rng(f"mutate:{rule.name}")), only_this_fails)
    if found is not None:
        return _run(ctx, spec, trial, found, before=_missing_parents(ctx, spec, found, rule.name))
    trial.why_none, trial.proven = _why_unbreakable(spec, rule)
    return trial


def _missing_parents(ctx: Context, spec: TableSpec, row: dict[str, Any], salt: str) -> str:
    """INSERTs of the parent rows a violator's foreign keys name but the parents lack, run
    before it in the same rolled-back statement: a CHECK that pins a foreign key
    (MusicBrainz: ``type <> 3 OR (type = 3 AND sort_name = name ...)``) is broken only with
    that key, and a foreign key refusing the row first would hide the CHECK's verdict."""
    inserts = []
    for fk in spec.foreign_keys:
        key = [row.get(c) for c in fk.columns]
        if fk.self_reference or any(v is None for v in key) or any(c not in spec.columns for c in fk.columns):
            continue
        parent = ctx.specs(fk.parent)
        if any(parent.table.column(c).identity == "always" for c in fk.parent_columns):
            continue
        theirs = ", ".join(sql.Identifier(c).as_string(None) for c in fk.parent_columns)
        values = ", ".join(f"{literal(v, spec.columns[c].kind.name)}::{cast_type(spec.table.column(c))}"
                           for c, v in zip(fk.columns, key))
        if ctx.probe.query(f"SELECT EXISTS (SELECT 1 FROM {qualified_ident(fk.parent)} WHERE ({theirs}) = ({values}))")[0][0]:
            continue
        seed = ctx.row(parent, f"violators:{salt}:parent:{fk.name}", fixed=dict(zip(fk.parent_columns, key)))
        if seed is not None:
            inserts.append(ctx.probe.insert_sql(parent, seed))
    return "; ".join(inserts)


def _domain_check(ctx: Context, spec: TableSpec, base: dict[str, Any], rule: Rule) -> Trial:
    """A value of the column's base type that the domain's CHECK refuses. The domain is
    checked when the value is coerced to it, before any CHECK of the table, and its CHECKs
    in name order: the violator is a value whose coercion this constraint refuses first."""
    [column] = sorted(rule.columns) or [""]
    trial = Trial("DOMAIN CHECK", rule.name, column=column)
    if _skip(ctx, spec, trial):
        return trial
    if column not in spec.columns:
        trial.why_none = "the column is filled by the database"
        return trial
    kind = spec.columns[column].kind.name
    domain = cast_type(spec.column(column))

    def refused_by_it(row: dict[str, Any]) -> bool:
        if row.get(column) is None:
            return False
        outcome = ctx.probe.attempt(f"SELECT {literal(row[column], kind)}::{domain}")
        return not outcome.ok and outcome.sqlstate == "23514" and outcome.constraint == rule.name

    for attempt in range(8):
        row = ctx.row(spec, f"violators:{rule.name}:{column}:{attempt}", aim=Aim(violate=rule), attempts=25)
        if row is not None and refused_by_it(row):
            return _run(ctx, spec, trial, row)
    found = first(mutations(spec, base, rule, ctx.rng(f"mutate:{rule.name}:{column}")), refused_by_it)
    if found is not None:
        return _run(ctx, spec, trial, found)
    trial.why_none, trial.proven = _why_unbreakable(spec, rule)
    return trial


def _why_unbreakable(spec: TableSpec, rule: Rule) -> tuple[str, bool]:
    """Why no row breaking only ``rule`` was found, and whether that is proven: a claim of
    redundancy is made only when the rules' own shapes show it; a search that came back
    empty says so, since the generator's limits (a regex with a length bound) are not the
    schema's."""
    from pytest_dbarch.constraints.rows import narrow

    same = [r.name for r in spec.check_rules() if r is not rule and r.sql == rule.sql]
    if same:
        return f"CHECK {same[0]} says the same: one of the two is redundant", True
    if rule.violations is not None and rule.understood:
        base = {name: c.space for name, c in spec.columns.items()}
        if not any(narrow(base, way) is not None for way in rule.violations):
            return "no value of the columns' types and NOT NULLs breaks it: it is implied by them (redundant)", True
        if _implied_by_others(spec, base, rule):
            return "every row that breaks it also breaks another CHECK: it is implied by them (redundant)", True
        return "no row breaking only this CHECK was found among the candidates tried (a limit of the search, not a proof)", False
    return "no violating row was found among the candidates tried (the CHECK could not be read)", False


def _implied_by_others(spec: TableSpec, base: dict[str, Any], rule: Rule, most: int = 1024) -> bool:
    """Whether every way of breaking ``rule`` contradicts some way of meeting all the other
    CHECKs on its columns, as far as the spaces can tell (False when they cannot)."""
    from itertools import product

    from pytest_dbarch.constraints.rows import narrow

    others = [r for r in spec.check_rules() if r is not rule and r.columns & rule.columns]
    if not others or any(r.dnf is None or not r.understood for r in others):
        return False
    ways = [rule.violations or [], *[r.dnf or [] for r in others]]
    if math.prod(len(w) for w in ways) > most:
        return False
    return not any(narrow(base, [atom for way in combo for atom in way]) is not None for combo in product(*ways))


def _unique(ctx: Context, spec: TableSpec, key: UniqueKey) -> Trial:
    """Two rows with the same key; for an exclusion constraint the same values collide too
    (``=`` and ``&&`` hold between a value and itself; drawn ranges are never empty)."""
    trial = Trial("EXCLUDE" if key.kind == "exclusion" else "UNIQUE", key.name)
    if _skip(ctx, spec, trial):
        return trial
    present = [c for c in key.key_columns if c in spec.columns]
    aims = []
    if present and not key.nulls_not_distinct:
        text = " AND ".join(f"{sql.Identifier(c).as_string(None)} IS NOT NULL" for c in present)
        aims.append(Rule.of(f"{key.name} keys present", text, spec.categories, spec.categories))
    if key.predicate is not None:
        aims.append(key.predicate)
    aim = Aim(extra=tuple(aims))
    ignore = frozenset({key.name})
    inner = next((k for k in spec.uniques if k is not key and k.plain and k.predicate is None
                  and k.kind != "exclusion" and set(k.key_columns) <= set(key.key_columns)), None)
    if inner is not None and key.plain and not key.nulls_not_distinct:
        # two rows equal (and present) on the key are equal on the smaller one too
        trial.why_none = (f"{inner.kind.upper()} {inner.name} on a part of its columns "
                          f"({', '.join(inner.key_columns)}) is broken with it: it is implied (redundant)")
        return trial
    trial.proven = False
    for attempt in range(UNIQUE_ATTEMPTS):  # another first row: a partial key on a part of
        suffix = f":{attempt}" if attempt else ""  # its columns may only catch some of them
        with ctx.savepoint():
            if any(fk.self_reference and set(fk.columns) & set(present) for fk in spec.foreign_keys):
                _seed_self_reference(ctx, spec, key)
            first_row = ctx.row(spec, f"violators:{key.name}:a{suffix}", aim=aim)
            if first_row is None:
                trial.why_none = "no row inside the key's index could be drawn"
                return trial
            inserted = ctx.probe.insert(spec, first_row, keep=True, returning=key.columns)
            if not inserted.ok or inserted.returned is None:
                trial.why_none = f"the first row was refused: {inserted.describe()}"
                continue
            pinned = dict(zip(key.columns, inserted.returned))
            second = ctx.row(spec, f"violators:{key.name}:b{suffix}", fixed=pinned, aim=aim, ignore_keys=ignore)
            if second is None:
                trial.why_none = "no second row with the same key fitting the other constraints was found"
                continue
            trial.proven = True
            return _run(ctx, spec, trial, second, deferrable=_deferrable(spec, key.name))
    return trial


def _seed_self_reference(ctx: Context, spec: TableSpec, key: UniqueKey) -> None:
    """A row for a key that includes a self-reference (zou's ``entity``: name, project and
    parent): its parent must be a row of the table itself, so one is inserted first."""
    for fk in spec.foreign_keys:
        if fk.self_reference and ctx.probe.parent_keys(fk, limit=1):
            return
    seed = ctx.row(spec, f"violators:{key.name}:parent", ignore_keys=frozenset({key.name}))
    if seed is not None:
        ctx.probe.insert(spec, seed, keep=True)
        ctx.keys.forget()


def _deferrable(spec: TableSpec, name: str) -> bool:
    return any(c.name == name and c.deferrable for c in spec.table.constraints)


def _foreign_key(ctx: Context, spec: TableSpec, base: dict[str, Any], fk: ForeignKey) -> Trial:
    trial = Trial("FOREIGN KEY", fk.name)
    if _skip(ctx, spec, trial):
        return trial
    if fk.from_partition:
        trial.skipped = "declared on each partition; checked through them"
        return trial
    if any(c not in spec.columns for c in fk.columns):
        trial.why_none = "a column of the key is filled by the database"
        return trial
    rng = ctx.rng(f"violators:{fk.name}")
    source = RandomSource(rng)
    parent = qualified_ident(fk.parent)
    columns = ", ".join(sql.Identifier(c).as_string(None) for c in fk.parent_columns)
    for attempt in range(20):
        missing = {}
        for column in fk.columns:
            space = Space.of(spec.columns[column].kind, nullable=False)
            missing[column] = source.value(space)
        values = ", ".join(literal(missing[c], spec.columns[c].kind.name) for c in fk.columns)
        taken = ctx.probe.query(f"SELECT EXISTS (SELECT 1 FROM {parent} WHERE ({columns}) = ({values}))")
        if taken and taken[0][0]:
            continue
        row = ctx.row(spec, f"violators:{fk.name}:{attempt}", fixed=missing, attempts=10)
        if row is not None:
            return _run(ctx, spec, trial, row, deferrable=fk.constraint.deferrable)
    trial.why_none = "no key value absent from the parent fits the table's other constraints"
    trial.proven = False
    return trial


def _verdict(spec: TableSpec, trial: Trial) -> tuple[Status, str]:
    if trial.skipped:
        return Status.PASSED, f"skipped: {trial.skipped}"
    if trial.outcome is None:
        return Status.WARNING, f"no row violates it alone: {trial.why_none}"
    outcome = trial.outcome
    if outcome.ok and trial.note.startswith("a trigger"):
        return Status.PASSED, f"holds: {trial.note}"
    if outcome.ok and trial.note:
        return Status.WARNING, trial.note
    if outcome.ok:
        return Status.FAILED, "a violating row was accepted"
    expected = STATES[trial.kind]
    if trial.kind == "NOT NULL" and outcome.sqlstate == "23514" and outcome.constraint is None and any(
            r.kind == "partition" and trial.name in r.columns for r in spec.rules):
        return Status.PASSED, "refused: partition routing finds no partition for NULL, before NOT NULL"
    if trial.kind == "NOT NULL":
        same = outcome.sqlstate == expected and (outcome.column in (trial.name, None))
    else:
        same = outcome.sqlstate == expected and (outcome.constraint == trial.name or (
            # a partitioned table's key is enforced by each partition's own index
            spec.table.kind == "partitioned table" and outcome.table not in (None, spec.table.name)))
    if same:
        return Status.PASSED, f"refused with {outcome.sqlstate} ({trial.millis:.1f} ms)"
    return Status.WARNING, f"refused, but by {outcome.describe()}"


def _findings(spec: TableSpec, trials: list[Trial]) -> list[Finding]:
    findings: list[Finding] = []
    held: list[str] = []
    for trial in trials:
        status, note = _verdict(spec, trial)
        if status is Status.PASSED:
            held.append(f"{trial.label}: {note}")
            continue
        evidence = [note]
        if trial.row is not None:
            evidence.append("row: " + ", ".join(f"{k}={v!r}" for k, v in trial.row.items()))
        if status is Status.WARNING and trial.outcome is not None and trial.outcome.ok:
            title = f"{spec.qualified}: a row violating {trial.label} was dropped without an error"
            fix = "a trigger or rule discards the row: make sure callers learn their write did not happen"
        elif status is Status.FAILED:
            title = f"{spec.qualified}: {trial.label} accepts a row that violates it"
            fix = (f"make sure {trial.name} is enforced on {spec.qualified}: no disabled triggers "
                   "(session_replication_role, ALTER TABLE ... DISABLE TRIGGER), rules or triggers that drop the row")
        elif trial.outcome is None and trial.proven:
            title = f"{spec.qualified}: {trial.label} cannot be violated alone"
            fix = f"drop {trial.name} if it is redundant, or check that it says what was meant"
        elif trial.outcome is None:
            title = f"{spec.qualified}: no row breaking only {trial.label} was found"
            fix = (f"the generator could not build one, which proves nothing about {trial.name}; skip it in "
                   "dbarch_constraints_skip with the reason, or report the table")
        else:
            title = f"{spec.qualified}: a row violating {trial.label} was refused by something else"
            fix = "check which constraint or trigger fires first, and that the intended one is there"
        findings.append(Finding(RULE, Area.MODELS, status, title, evidence="\n".join(evidence),
                                where=f"{spec.qualified}.{trial.column or trial.name}", fix=fix))
    if held:
        timed = [t.millis for t in trials if t.outcome is not None and t.millis]
        per = f"; {sum(timed) / len(timed):.1f} ms per violator" if timed else ""
        findings.append(Finding(RULE, Area.MODELS, Status.PASSED,
                                f"{spec.qualified}: {len(held)} constraints refuse their violators{per}",
                                evidence="\n".join(held), where=spec.qualified))
    return findings
