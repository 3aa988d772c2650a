"""The models' CHECKs against the database's, both ways, proven by rows.

``constraints.model-check-not-enforced``: a CHECK the models declare that the database
does not enforce the same way.

Behaviour is compared, never text: rows that break the models' CHECK are drawn (aimed at
its edges, where off-by-one mistakes live), and for each the server evaluates both the
models' expression, compiled by SQLAlchemy, and every CHECK and NOT NULL of the
database on the same typed row. A row the models refuse and the database accepts is
shrunk by hypothesis to the smallest one, then inserted for real (in a savepoint) to
prove it: ``rating=0`` accepted; the models say ``rating BETWEEN 1 AND 5``. A database
CHECK written as ``rating >= 1 AND rating <= 5`` agrees, so nothing is reported.

``constraints.database-check-stricter``: the other way, a database CHECK that refuses a
row every CHECK of the models allows (models ``rating BETWEEN 1 AND 5``, database
``rating BETWEEN 1 AND 4``: ``rating=5`` refused). Only CHECKs reading columns the models'
CHECKs speak about are compared; a database CHECK on columns the models leave unchecked
is a rule the models do not state, not a contradiction. A warning: the application's
valid writes fail, loudly, where the other direction lets bad data in silently.
"""

from __future__ import annotations

from typing import Any

from hypothesis import errors as hypothesis_errors
from hypothesis import find
from hypothesis import strategies as st

from pytest_dbarch.constraints.checks_parse import Rule
from pytest_dbarch.constraints.context import Context, quiet
from pytest_dbarch.constraints.intent import ModelCheck
from pytest_dbarch.constraints.rows import Aim, NoParentRows, draw_bytes
from pytest_dbarch.constraints.schema import TableSpec
from pytest_dbarch.constraints.search import first, mutations
from pytest_dbarch.findings import Area, Finding, Status
from psycopg import sql

RULE = "constraints.model-check-not-enforced"
STRICTER = "constraints.database-check-stricter"


def check(ctx: Context, spec: TableSpec) -> list[Finding]:
    declared = ctx.intent.checks.get(spec.qualified, [])
    if not declared:
        return []
    ctx.ensure_parents(spec)
    findings: list[Finding] = []
    enforced: list[str] = []
    for model_check in declared:
        reason = ctx.skips.constraint(spec, model_check.name)
        if reason:
            enforced.append(f"{model_check.name}: skipped: {reason}")
            continue
        rule = Rule.of(model_check.name, model_check.sql, spec.categories, spec.categories, kind="model",
                       padded=spec.padded)
        unknown = sorted(c for c in rule.columns if not spec.table.has_column(c))
        if unknown:
            enforced.append(f"{model_check.name}: not compared, the database lacks {', '.join(unknown)} "
                            "(a schema-lint finding)")
            continue
        if rule.columns & set(spec.left_out):
            enforced.append(f"{model_check.name}: not compared, it reads a column the database fills")
            continue
        counterexample = _search(ctx, spec, rule)
        if counterexample is None:
            enforced.append(f"{model_check.name}: CHECK ({model_check.sql}): enforced")
            continue
        proof = ctx.probe.insert(spec, counterexample)
        if not proof.ok:
            enforced.append(f"{model_check.name}: the row the database's CHECKs accept is refused on insert "
                            f"({proof.describe()})")
            continue
        findings.append(_finding(spec, model_check, rule, counterexample))
    if enforced and not findings:
        findings.append(Finding(RULE, Area.MODELS, Status.PASSED,
                                f"{spec.qualified}: the database enforces the models' {len(declared)} CHECKs",
                                evidence="\n".join(enforced), where=spec.qualified))
    return findings


def _finding(spec: TableSpec, model_check: ModelCheck, rule: Rule, row: dict[str, Any]) -> Finding:
    shown = ", ".join(f"{c}={row.get(c)!r}" for c in sorted(rule.columns))
    database = [f"CHECK {r.name}: ({r.sql})" for r in spec.check_rules() if r.columns & rule.columns]
    evidence = [
        f"accepted by PostgreSQL: {shown}",
        f"models ({model_check.source}) say: CHECK ({model_check.sql})  [{model_check.name}]",
        "database: " + ("; ".join(database) if database else "no CHECK on " + ", ".join(sorted(rule.columns))),
        "whole row: " + ", ".join(f"{k}={v!r}" for k, v in row.items()),
    ]
    table = sql.Identifier(spec.table.schema, spec.table.name).as_string(None)
    name = sql.Identifier(model_check.name).as_string(None) if model_check.name != "(unnamed CHECK)" else "<name>"
    same = [r for r in spec.check_rules() if r.columns == rule.columns]
    drop = f"DROP CONSTRAINT {sql.Identifier(same[0].name).as_string(None)}, " if len(same) == 1 else ""
    fix = (f"make the database agree with the models: ALTER TABLE {table} {drop}ADD CONSTRAINT {name} "
           f"CHECK ({model_check.sql}) NOT VALID, then VALIDATE CONSTRAINT in a later migration; or correct "
           "the models if the database is right")
    return Finding(RULE, Area.MODELS, Status.FAILED,
                   f"{spec.qualified}: {shown} accepted; models say {model_check.sql}",
                   evidence="\n".join(evidence), where=f"{spec.qualified}.{model_check.name}", fix=fix)


def _search(ctx: Context, spec: TableSpec, rule: Rule) -> dict[str, Any] | None:
    """The smallest row the models' CHECK refuses and the database accepts, if any."""
    return _smallest_row(ctx, spec, rule, spec.check_rules(), RULE, "model", Aim(violate=rule))


def _smallest_row(ctx: Context, spec: TableSpec, refusing: Rule, allowing: list[Rule], rule_id: str,
                  label: str, aim: Aim, base_aim: Aim | None = None,
                  model_not_null: frozenset[str] = frozenset()) -> dict[str, Any] | None:
    """The smallest row that ``refusing`` refuses and every rule of ``allowing`` allows
    (columns of ``refusing`` that the table or the models declare NOT NULL filled),
    judged by PostgreSQL: hypothesis searches first, then mutations of one valid row."""
    required = [c.name for c in spec.table.columns
                if (c.not_null or c.name in model_not_null) and c.name in refusing.columns]
    tests = [f"(({refusing.sql})) IS FALSE"]
    tests += [f"(({r.sql})) IS NOT FALSE" for r in allowing]
    tests += [f"{sql.Identifier(c).as_string(None)} IS NOT NULL" for c in required]

    def wanted(row: dict[str, Any]) -> bool:
        outcome = ctx.probe.evaluate(spec, row, tests)
        return bool(outcome.ok and outcome.returned is not None and all(outcome.returned))

    drawer = ctx.drawer(spec)

    @st.composite
    def candidates(draw: Any) -> dict[str, Any]:
        row = draw_bytes(drawer, draw, None, aim, attempts=6)
        if row is None:
            from hypothesis import reject

            reject()
        return row  # type: ignore[return-value]

    try:
        with quiet():
            return find(candidates(), wanted, settings=ctx.settings,
                        database_key=f"{rule_id}:{spec.qualified}:{refusing.name}".encode())
    except (hypothesis_errors.NoSuchExample, hypothesis_errors.Unsatisfiable):
        pass
    except NoParentRows:
        return None
    salt = f"{label}:{refusing.name}"
    base = ctx.row(spec, f"{salt}:base", aim=base_aim)
    if base is None:
        return None
    return first(mutations(spec, base, refusing, ctx.rng(salt)), wanted)


# --- the other way: the database refuses what the models allow


def stricter(ctx: Context, spec: TableSpec) -> list[Finding]:
    pairs = [(m, Rule.of(m.name, m.sql, spec.categories, spec.categories, kind="model",
                                   padded=spec.padded))
             for m in ctx.intent.checks.get(spec.qualified, [])]
    pairs = [(m, r) for m, r in pairs if all(spec.table.has_column(c) for c in r.columns)
             and not r.columns & set(spec.left_out)]
    models = [r for _, r in pairs]
    if not models:
        return []
    spoken = frozenset().union(*(m.columns for m in models))
    compared = [d for d in spec.check_rules() if d.columns and d.columns <= spoken
                and not d.columns & set(spec.left_out) and not ctx.skips.constraint(spec, d.name)]
    if not compared:
        return []
    ctx.ensure_parents(spec)
    findings: list[Finding] = []
    agreed: list[str] = []
    for database_check in compared:
        row = _search_refused(ctx, spec, database_check, models)
        if row is None:
            agreed.append(f"CHECK {database_check.name}: refuses no row the models allow")
            continue
        proof = ctx.probe.insert(spec, row)
        if proof.ok or proof.constraint != database_check.name:
            agreed.append(f"CHECK {database_check.name}: the row found is {proof.describe()} on insert")
            continue
        related = [m for m, r in pairs if r.columns & database_check.columns]
        findings.append(_stricter_finding(spec, database_check, related, row))
    if agreed and not findings:
        findings.append(Finding(STRICTER, Area.MODELS, Status.PASSED,
                                f"{spec.qualified}: the database's CHECKs refuse no row the models' CHECKs allow",
                                evidence="\n".join(agreed), where=spec.qualified))
    return findings


def _search_refused(ctx: Context, spec: TableSpec, database_check: Rule, models: list[Rule]) -> dict[str, Any] | None:
    """The smallest row every model CHECK allows and ``database_check`` alone refuses.

    A NULL the models' CHECK lets through (a CHECK is not false on NULL) counts only where
    the models leave the column nullable: ``rating IS NOT NULL AND ...`` in the database
    refuses what an ``Optional`` rating may hold, but a NOT NULL model column never sends
    NULL (and the NOT NULL mismatch itself is the schema lint's to report)."""
    others = [r for r in spec.check_rules() if r is not database_check]
    return _smallest_row(ctx, spec, database_check, [*models, *others], STRICTER, "stricter",
                         Aim(violate=database_check, extra=tuple(models)), base_aim=Aim(extra=tuple(models)),
                         model_not_null=ctx.intent.not_null.get(spec.qualified, frozenset()))


def _stricter_finding(spec: TableSpec, database_check: Rule, models: list[ModelCheck],
                      row: dict[str, Any]) -> Finding:
    shown = ", ".join(f"{c}={row.get(c)!r}" for c in sorted(database_check.columns))
    said = " AND ".join(f"({m.sql})" if len(models) > 1 else m.sql for m in models)
    evidence = [
        f"refused by PostgreSQL ({database_check.name}): {shown}",
        f"database: CHECK {database_check.name}: ({database_check.sql})",
        *(f"models ({m.source}) say: CHECK ({m.sql})  [{m.name}]" for m in models),
        "whole row: " + ", ".join(f"{k}={v!r}" for k, v in row.items()),
    ]
    fix = (f"make the database agree with the models (replace {database_check.name} with the models' CHECK in a "
           "migration), or add the database's rule to the models if it is the intent")
    return Finding(STRICTER, Area.MODELS, Status.WARNING,
                   f"{spec.qualified}: {shown} refused by {database_check.name}; models allow it ({said})",
                   evidence="\n".join(evidence), where=f"{spec.qualified}.{database_check.name}", fix=fix)
