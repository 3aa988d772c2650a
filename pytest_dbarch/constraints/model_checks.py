"""``constraints.model-check-not-enforced``: a CHECK the models declare that the database
does not enforce the same way, proven by a row.

Behaviour is compared, never text: rows that break the models' CHECK are drawn (aimed at
its edges, where off-by-one mistakes live), and for each the server evaluates both the
models' expression, compiled by SQLAlchemy, and every CHECK and NOT NULL of the
database on the same typed row. A row the models refuse and the database accepts is
shrunk by hypothesis to the smallest one, then inserted for real (in a savepoint) to
prove it: ``rating=0`` accepted; the models say ``rating BETWEEN 1 AND 5``. A database
CHECK written as ``rating >= 1 AND rating <= 5`` agrees, so nothing is reported.
"""

from __future__ import annotations

from typing import Any

from hypothesis import errors as hypothesis_errors
from hypothesis import find
from hypothesis import strategies as st

from pytest_dbarch.constraints.checks_parse import Rule
from pytest_dbarch.constraints.context import Context, quiet
from pytest_dbarch.constraints.intent import ModelCheck
from pytest_dbarch.constraints.rows import Aim, HypothesisSource, NoParentRows
from pytest_dbarch.constraints.schema import TableSpec
from pytest_dbarch.constraints.search import first, mutations
from pytest_dbarch.findings import Area, Finding, Status
from psycopg import sql

RULE = "constraints.model-check-not-enforced"


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
        rule = Rule.of(model_check.name, model_check.sql, spec.categories, spec.categories, kind="model")
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
    database = spec.check_rules()
    required = [c.name for c in spec.table.columns if c.not_null and c.name in rule.columns]
    tests = [f"(({rule.sql})) IS FALSE"]
    tests += [f"(({r.sql})) IS NOT FALSE" for r in database]
    tests += [f"{sql.Identifier(c).as_string(None)} IS NOT NULL" for c in required]

    def database_accepts(row: dict[str, Any]) -> bool:
        outcome = ctx.probe.evaluate(spec, row, tests)
        return bool(outcome.ok and outcome.returned is not None and all(outcome.returned))

    drawer = ctx.drawer(spec)
    aim = Aim(violate=rule)

    @st.composite
    def violators(draw: Any) -> dict[str, Any]:
        row = drawer.draw(HypothesisSource(draw), None, aim, attempts=6)
        if row is None:
            from hypothesis import reject

            reject()
        return row  # type: ignore[return-value]

    try:
        with quiet():
            return find(violators(), database_accepts, settings=ctx.settings,
                        database_key=f"{RULE}:{spec.qualified}:{rule.name}".encode())
    except (hypothesis_errors.NoSuchExample, hypothesis_errors.Unsatisfiable):
        pass
    except NoParentRows:
        return None
    base = ctx.row(spec, f"model:{rule.name}:base")
    if base is None:
        return None
    return first(mutations(spec, base, rule, ctx.rng(f"model:{rule.name}")), database_accepts)
