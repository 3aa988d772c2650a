"""Gathering the evidence a budget needs about each statement, and nothing more.

The statements come from the query log (a test's call phase, or a ``limit()`` block):
one per shape (fingerprint), with the last parameters seen. Each gets a measured plan;
the expensive extras only when the budget asks: latency samples for ``p95_ms``, and a
re-plan with sequential scans switched off when a seq scan or a skipped index has to
be explained ("no usable index" or "table too small for the planner to use it").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pytest_dbarch.performance.budget import Budget
from pytest_dbarch.performance.explain import ExplainError, Explainer, IndexFacts
from pytest_dbarch.performance.latency import Latency
from pytest_dbarch.performance.plan import Plan

#: Statement kinds a budget covers; writes are explained inside a rolled-back savepoint.
MEASURED_KINDS = ("select", "insert", "update", "delete")
SEQSCAN_OFF = "SET LOCAL enable_seqscan = off"


@dataclass(frozen=True)
class Target:
    """One statement to measure: the last one seen of its shape."""

    sql: str
    params: Any
    kind: str
    fingerprint: str
    id: str  # 8 hex digits of the fingerprint
    where: str = ""  # file:line of the innermost user frame
    sites: str = ""  # the call chain, innermost first
    shown_params: str = ""

    @classmethod
    def from_statement(cls, statement: Any) -> Target:
        """From a ``pytest_dbarch.queries.log.Statement``."""
        from pytest_dbarch.queries import callsite

        shape = statement.shape
        sites = " <- ".join(str(s) for s in callsite.sites(statement.stack[:3])) if statement.stack else ""
        return cls(
            sql=statement.sql,
            params=statement.params,
            kind=statement.kind,
            fingerprint=shape.fingerprint,
            id=shape.id,
            where=statement.where,
            sites=sites,
            shown_params=statement.shown_params() if statement.params is not None else "",
        )


def targets(statements: Iterable[Any]) -> list[Target]:
    """The application's statements a budget covers: one per fingerprint, the last one
    seen of each (in order of first appearance); failed ones and catalog reads left out."""
    last: dict[str, Any] = {}
    for statement in statements:
        if statement.counted and not statement.error and statement.kind in MEASURED_KINDS:
            last[statement.shape.fingerprint] = statement
    return [Target.from_statement(s) for s in last.values()]


@dataclass
class Measured:
    """What was found out about one statement."""

    target: Target
    plan: Plan | None = None
    #: The write could not be run again (e.g. it would violate a unique key now), so
    #: the plan is the planner's estimate: no buffers, no actual rows.
    estimated_only: str = ""
    latency: Latency | None = None
    #: The plan with sequential scans off; only when a seq scan or a skipped index needs it.
    probe: Plan | None = None
    probe_error: str = ""
    indexes: dict[str, IndexFacts | None] = field(default_factory=dict)
    problem: str = ""  # why it could not be measured at all


def measure(explainer: Explainer, target: Target, budget: Budget) -> Measured:
    """Plan, then whatever else ``budget`` needs to judge it; never raises for the statement."""
    result = Measured(target)
    try:
        result.plan = explainer.plan(target.sql, target.params)
    except ExplainError as exc:
        if target.kind == "select":
            result.problem = str(exc)
            return result
        try:
            result.plan = explainer.estimate(target.sql, target.params)
            result.estimated_only = str(exc)
        except ExplainError as again:
            result.problem = str(again)
            return result
    plan = result.plan
    if budget.p95_ms is not None and not result.estimated_only:
        try:
            result.latency = explainer.latency(target.sql, target.params)
        except ExplainError as exc:
            result.problem = f"latency samples: {exc}"
    for name in budget.uses_index:
        result.indexes[name] = explainer.index(name)
    if budget.uses_index:
        for name in plan.indexes:  # what the planner chose instead, to compare key columns
            result.indexes.setdefault(name, explainer.index(name))
    if _needs_probe(plan, budget, result.indexes):
        try:
            result.probe = explainer.estimate(target.sql, target.params, SEQSCAN_OFF)
        except ExplainError as exc:
            result.probe_error = str(exc)
        if result.probe is not None:
            for name in result.probe.indexes:
                result.indexes.setdefault(name, explainer.index(name))
    return result


def _needs_probe(plan: Plan, budget: Budget, indexes: dict[str, IndexFacts | None]) -> bool:
    if any(budget.forbids_seq_scan(table) for table in plan.seq_scans):
        return True
    return any(
        facts is not None and facts.table in plan.tables and not plan.uses(facts.name)
        for facts in indexes.values()
    )
