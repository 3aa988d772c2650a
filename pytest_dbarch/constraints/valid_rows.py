"""``constraints.valid-rows``: rows the strategies call valid are accepted by PostgreSQL.

hypothesis draws rows of the table and each is inserted (and kept, so later rows must
avoid its UNIQUE keys); a refusal is shrunk to the smallest row that shows it. What the
refusal means decides the verdict, because a false alarm costs more than a miss:

- a CHECK or domain that *raises* on a plain row (a cast of free text, a division by
  zero) instead of returning false: failed, a defect of the schema;
- a CHECK no row can satisfy (a contradiction, or ``IS NULL`` on a NOT NULL column):
  failed, with the reason;
- a trigger refusing a row that meets every constraint: a warning (business rules in
  triggers are a choice, but invisible to the models);
- a CHECK, UNIQUE, foreign key or NOT NULL we thought satisfied: an error of the plugin
  (its reading of the schema was wrong), never blamed on the schema.

CHECKs the generator cannot read are evaluated by the server; the share of drawn rows
they let through is reported instead of failing.
"""

from __future__ import annotations

from typing import Any

from hypothesis import errors as hypothesis_errors
from hypothesis import given
from hypothesis import settings as hypothesis_settings

from pytest_dbarch.constraints.checks_parse import Rule
from pytest_dbarch.constraints.context import Context, quiet
from pytest_dbarch.constraints.draws import CheckRaised
from pytest_dbarch.constraints.fill import FillError
from pytest_dbarch.constraints.probe import Outcome
from pytest_dbarch.constraints.rows import SERVER_REFUSED, DrawStats, KeysExhausted, NoParentRows, narrow, strategy
from pytest_dbarch.constraints.schema import TableSpec
from pytest_dbarch.findings import Area, Finding, Status

RULE = "constraints.valid-rows"
LOW_ACCEPTANCE = 0.5
_DATA_ERRORS = "22"  # class 22: data exception (a cast that fails, a division by zero, ...)


class RowRefused(AssertionError):
    """PostgreSQL refused a row the strategy called valid."""


def check(ctx: Context, spec: TableSpec) -> list[Finding]:
    impossible = unsatisfiable(spec)
    if impossible:
        return [_finding(spec, Status.FAILED, f"{spec.qualified}: no row can satisfy {impossible[0]}",
                         impossible[1], fix=f"correct or drop {impossible[0]}: the table can never hold a row")]
    try:
        ctx.ensure_parents(spec)
    except (FillError, NoParentRows) as exc:
        return [_finding(spec, Status.ERROR, f"{spec.qualified}: its parent tables cannot be filled", str(exc))]
    stats = DrawStats()
    drawer = ctx.drawer(spec, stats, stop_on_raise=True)
    rows = strategy(drawer, {})
    kept = {"rows": 0}
    failure: dict[str, Any] = {}

    def insert_row(row: dict[str, Any]) -> None:
        outcome = ctx.probe.insert(spec, row, keep=True)
        if not outcome.ok:
            failure["row"], failure["outcome"] = row, outcome
            raise RowRefused(outcome.describe())
        kept["rows"] += 1

    insert_row._hypothesis_internal_add_digest = f"{RULE}:{spec.qualified}".encode()  # type: ignore[attr-defined]
    insert_row.__name__ = insert_row.__qualname__ = "valid_rows_" + "".join(
        c if c.isalnum() else "_" for c in spec.qualified)
    test = hypothesis_settings(ctx.settings, report_multiple_bugs=False)(given(row=rows)(insert_row))
    try:
        with quiet():
            test()
    except CheckRaised as exc:
        stats.raised = (exc.row, exc.outcome)
        raising = _raised(ctx, spec, stats)
        if raising is not None:
            return [raising]
        return [_finding(spec, Status.ERROR, f"{spec.qualified}: the server raised while judging a row",
                         f"row: {format_row(exc.row)}\n{exc.outcome.describe()}")]
    except RowRefused:
        return [classify(ctx, spec, failure["row"], failure["outcome"], stats)]
    except NoParentRows as exc:
        return [_finding(spec, Status.ERROR, f"{spec.qualified}: rows need parent rows that do not exist", str(exc))]
    except KeysExhausted as exc:
        # A key made of foreign keys only (a one-to-one extension, an association table) holds
        # as many rows as the few parent rows the check made offer: the sample ends there.
        ctx.stats[spec.qualified] = stats
        if kept["rows"]:
            return [_finding(spec, Status.PASSED,
                             f"{spec.qualified}: {kept['rows']} generated rows accepted (as many as the parent "
                             "rows offer keys for)", f"{exc.cause}\n{stats.summary()}")]
        return [_finding(spec, Status.WARNING, f"{spec.qualified}: no row could be drawn: its keys are all taken",
                         f"{exc.cause}\n{stats.summary()}", fix=exc.fix)]
    except (hypothesis_errors.Unsatisfiable, hypothesis_errors.FailedHealthCheck):
        raising = _raised(ctx, spec, stats)
        if raising is not None:
            return [raising]
        return [_finding(spec, Status.WARNING, f"{spec.qualified}: too few valid rows could be drawn",
                         stats.summary(), fix=_low_acceptance_fix(spec))]
    ctx.stats[spec.qualified] = stats
    raising = _raised(ctx, spec, stats)
    if raising is not None:
        return [raising]
    evidence = stats.summary()
    if stats.server_checked and stats.acceptance < LOW_ACCEPTANCE:
        # name what threw most rows away: on MusicBrainz's artist_alias it was a parent key
        # that missed a CHECK's branch, not the unreadable CHECK the server judged
        [(reason, _)] = stats.rejected.most_common(1) or [(SERVER_REFUSED, 0)]
        why = ("most fail CHECKs the generator cannot read (checked by the server)" if reason == SERVER_REFUSED
               else f"most were thrown away by the generator: {reason}")
        return [_finding(spec, Status.WARNING, f"{spec.qualified}: only {stats.acceptance:.0%} of drawn rows were "
                         f"kept; {why}", evidence, fix=_low_acceptance_fix(spec))]
    return [_finding(spec, Status.PASSED, f"{spec.qualified}: {kept['rows']} generated rows accepted", evidence)]


def _low_acceptance_fix(spec: TableSpec) -> str:
    return (f"pass values or strategies for the columns those CHECKs read: dbarch_constraints.rows({spec.name!r}, "
            "column=...)")


def unsatisfiable(spec: TableSpec) -> tuple[str, str] | None:
    """A CHECK (or two together) that no row of the column types can satisfy, and why."""
    base = {name: c.space for name, c in spec.columns.items()}
    readable = [r for r in spec.rules if r.dnf is not None and r.understood and not (r.columns & set(spec.left_out))]
    for rule in readable:
        if not any(narrow(base, way) is not None for way in rule.dnf or []):
            return f"CHECK {rule.name}", _why(spec, rule, None)
    for i, first in enumerate(readable):
        for second in readable[i + 1:]:
            if not (first.columns & second.columns):
                continue
            ways = [(a, b) for a in first.dnf or [] for b in second.dnf or []]
            if len(ways) > 256:
                continue
            if not any(narrow(base, a + b) is not None for a, b in ways):
                return (f"CHECKs {first.name} and {second.name} together",
                        _why(spec, first, second))
    return None


def _why(spec: TableSpec, first: Rule, second: Rule | None) -> str:
    rules = [first] + ([second] if second else [])
    lines = [f"{r.name}: CHECK ({r.sql})" for r in rules]
    for name in sorted(set().union(*(r.columns for r in rules))):
        if name in spec.columns:
            column = spec.columns[name]
            nullness = "NOT NULL" if not column.nullable else "nullable"
            lines.append(f"{name}: {column.column.type} {nullness}")
    return "\n".join(lines)


def classify(ctx: Context, spec: TableSpec, row: dict[str, Any], outcome: Outcome, stats: DrawStats) -> Finding:
    """What a refusal of a row we drew as valid says about the schema (or about us)."""
    evidence = f"row: {format_row(row)}\nPostgreSQL: {outcome.describe()}\n{stats.summary()}"
    state = outcome.sqlstate or ""
    raising = _raising_rules(ctx, spec, row)
    if raising:
        rule, error = raising
        return _finding(spec, Status.FAILED,
                        f"{spec.qualified}: CHECK {rule.name} raises an error on a plain row instead of "
                        "accepting or refusing it", f"{evidence}\nCHECK ({rule.sql}) raised: {error}",
                        fix=f"rewrite {rule.name} so it returns false (guard casts with a regex, "
                            "divisions with NULLIF) instead of raising", where=f"{spec.qualified}.{rule.name}")
    rewritten = _rewritten_by_trigger(ctx, spec, row, outcome)
    if rewritten:
        return _finding(spec, Status.WARNING,
                        f"{spec.qualified}: a BEFORE INSERT trigger turned a valid row into one "
                        f"{outcome.constraint or 'NOT NULL on ' + str(outcome.column)} refuses",
                        f"{evidence}\n{rewritten}",
                        fix="make the trigger keep every constraint (or the constraint allow what the trigger "
                            "writes), or skip the table in dbarch_constraints_skip with the reason")
    raised_in = f"\nraised in:\n{outcome.context}" if outcome.in_function else ""
    if state == "P0001" or (state and not state.startswith(("23", _DATA_ERRORS)) and not outcome.in_function):
        return _finding(spec, Status.WARNING,
                        f"{spec.qualified}: a row meeting every constraint was refused ({outcome.sqlstate})"
                        + (f" by a trigger: {outcome.message}" if outcome.in_function else ", probably by a trigger"),
                        evidence + raised_in,
                        fix="express the rule as a CHECK constraint so models and tests see it, or skip the table "
                            "in dbarch_constraints_skip with the reason")
    if outcome.in_function:
        return _finding(spec, Status.WARNING,
                        f"{spec.qualified}: a row meeting every constraint was refused: a function raised "
                        f"{outcome.sqlstate} ({outcome.message})", evidence + raised_in,
                        fix="a trigger's function read or changed other rows the generator drew (a counter at its "
                            "type's limit, a flag of the parent): give those tables values it can work with, "
                            ".fill(table, n, column=value), or skip the table in dbarch_constraints_skip with "
                            "the reason")
    return _finding(spec, Status.ERROR,
                    f"{spec.qualified}: pytest-dbarch drew a row it read as valid and PostgreSQL refused it",
                    evidence,
                    fix="this is pytest-dbarch misreading the schema, not a schema defect: report it with the row; "
                        "meanwhile skip the constraint in dbarch_constraints_skip")


def _rewritten_by_trigger(ctx: Context, spec: TableSpec, row: dict[str, Any], outcome: Outcome) -> str:
    """Why the refusal is a BEFORE INSERT trigger's doing, or "": the row as sent met the
    CHECK (or held a value) that the stored row broke. Met on MusicBrainz: a trigger nulls
    ``locale`` of search hints, and ``primary_check`` then refuses ``primary_for_locale``."""
    triggers = spec.table.before_insert_triggers
    if not triggers or outcome.in_function:
        return ""
    said = f"BEFORE INSERT triggers: {', '.join(triggers)}"
    if outcome.sqlstate == "23502" and outcome.column and row.get(outcome.column) is not None:
        return f"the row sent {outcome.column}={row[outcome.column]!r}; {said}"
    rule = next((r for r in spec.check_rules() if r.name == outcome.constraint), None)
    if outcome.sqlstate == "23514" and rule is not None:
        verdict = ctx.probe.evaluate(spec, row, [rule.sql])
        if verdict.ok and verdict.returned is not None and verdict.returned[0] is not False:
            return f"the row as sent meets CHECK {rule.name} ({rule.sql}); {said}"
    return ""


def _raised(ctx: Context, spec: TableSpec, stats: DrawStats) -> Finding | None:
    """A CHECK that raised while candidates were judged by the server, shown on that row."""
    if stats.raised is None:
        return None
    row, outcome = stats.raised
    if not (outcome.sqlstate or "").startswith(_DATA_ERRORS):
        return None
    found = _raising_rules(ctx, spec, row)
    if found is None:
        return None
    rule, error = found
    return _finding(spec, Status.FAILED,
                    f"{spec.qualified}: CHECK {rule.name} raises an error on a plain row instead of "
                    "accepting or refusing it",
                    f"row: {format_row(row)}\nCHECK ({rule.sql}) raised: {error}\n{stats.summary()}",
                    fix=f"rewrite {rule.name} so it returns false (guard casts with a regex in a CASE, "
                        "divisions with NULLIF) instead of raising", where=f"{spec.qualified}.{rule.name}")


def _raising_rules(ctx: Context, spec: TableSpec, row: dict[str, Any]) -> tuple[Rule, str] | None:
    """The CHECK whose evaluation on ``row`` raises, if one does."""
    if not ctx.probe.evaluate(spec, row, ["true"]).ok:
        return None  # the values themselves do not fit the types: not a CHECK's fault
    for rule in spec.check_rules():
        outcome = ctx.probe.evaluate(spec, row, [rule.sql])
        if not outcome.ok and (outcome.sqlstate or "").startswith(_DATA_ERRORS):
            return rule, outcome.describe()
    return None


def format_row(row: dict[str, Any], columns: Any = None) -> str:
    names = list(columns) if columns is not None else list(row)
    return ", ".join(f"{name}={row.get(name)!r}" for name in names)


def _finding(spec: TableSpec, status: Status, title: str, evidence: str = "", fix: str = "",
             where: str | None = None) -> Finding:
    return Finding(RULE, Area.MODELS, status, title, evidence=evidence, where=where or spec.qualified, fix=fix)
