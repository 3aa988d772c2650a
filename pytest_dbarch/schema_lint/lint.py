"""Run the rules: read the evidence, apply the policy, make the Findings.

``read`` gathers what the enabled rules need from one connection (the catalog in ten
set-based SELECTs, ``pg_stat_*`` only when a statistics rule runs); ``check`` is pure.
Every rule that runs ends as Findings: its problems (what the waivers leave), or one
passed Finding that says what holds. A rule that raises becomes an ``error`` Finding,
never a crashed lint.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.postgres import catalog as catalog_module
from pytest_dbarch.schema_lint.registry import RULES
from pytest_dbarch.schema_lint import stats as stats_module
from pytest_dbarch.schema_lint.intent import Models
from pytest_dbarch.schema_lint.options import LintOptions
from pytest_dbarch.schema_lint.rule import MODELS, QUERIES, STATS, Query, Rule, Schema, Violation

# Schemas an extension was installed into (``CREATE EXTENSION pg_partman SCHEMA partman``);
# public, where extensions usually live beside the application, is not one of them.
_EXTENSION_SCHEMAS = """
    SELECT DISTINCT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE n.nspname NOT IN ('public', 'pg_catalog')"""


@dataclass
class LintResult:
    """What one lint run found, rule by rule."""

    findings: list[Finding] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # rule id -> why it did not run
    waived: dict[str, int] = field(default_factory=dict)  # rule id -> findings waived
    tables: int = 0
    seconds: float = 0.0

    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.is_problem]

    def failed(self) -> list[Finding]:
        return [f for f in self.findings if f.status in (Status.FAILED, Status.ERROR)]

    def by_rule(self, rule: str) -> list[Finding]:
        return [f for f in self.findings if f.rule == rule]

    def fired(self) -> list[str]:
        """Ids of the rules with problem findings, in rule order."""
        with_problems = {f.rule for f in self.problems()}
        return [r for r in self.ran if r in with_problems]


def _needs(rules: Iterable[Rule], options: LintOptions) -> set[str]:
    return {rule.needs for rule in rules if options.severity(rule) is not None}


def read(
    conn: psycopg.Connection[Any],
    options: LintOptions,
    models: Models | None = None,
    queries: Sequence[Query] = (),
    rules: Sequence[Rule] = RULES,
    fresh: bool = False,
) -> Schema:
    """The evidence for ``rules`` from the database ``conn`` is connected to (SELECTs only).

    ``fresh``: the database was built for this run (a test database, the template), so
    it has no usage statistics worth reading unless ``stats = on`` insists."""
    catalog = catalog_module.read(conn, options.schemas or None)
    extension_schemas = frozenset(row[0] for row in conn.execute(_EXTENSION_SCHEMAS, prepare=False))
    stats = None
    wanted = options.stats == "on" or (options.stats == "auto" and not fresh)
    if STATS in _needs(rules, options) and wanted:
        stats = stats_module.read(conn)
    return Schema(catalog, models, stats, tuple(queries), extension_schemas)


def _skip_reason(rule: Rule, schema: Schema, options: LintOptions) -> str | None:
    if rule.needs == MODELS and schema.models is None:
        return "no models to compare (set dbarch_models, or pass models=)"
    if rule.needs == STATS:
        stats = schema.stats
        if stats is None:
            return ("statistics not read: the database was built for this run, or "
                    "dbarch_schema_lint_stats = off (= on forces them)")
        if not stats.usable(options.stats, options.min_stats_days):
            return (f"statistics cover {stats.window_days:.1f} days, fewer than {options.min_stats_days:g} "
                    "(a fresh, restored or reset database); dbarch_schema_lint_stats = on forces it")
    if rule.needs == QUERIES and not schema.queries:
        return "no captured queries to read"
    return None


def _finding(rule: Rule, status: Status, violation: Violation) -> Finding:
    evidence = "\n".join(part for part in (violation.evidence, f"why: {rule.why}") if part)
    return Finding(rule.id, Area.SCHEMA, status, violation.title, evidence=evidence, fix=violation.fix)


def check(schema: Schema, options: LintOptions, rules: Sequence[Rule] = RULES) -> LintResult:
    """Run every enabled rule over ``schema``; pure (no database)."""
    started = time.perf_counter()
    result = LintResult(tables=len(schema.catalog))
    for rule in rules:
        severity, explicit = options.resolve(rule)
        if severity is None:
            continue
        reason = _skip_reason(rule, schema, options)
        if reason is not None:
            result.skipped[rule.id] = reason
            continue
        result.ran.append(rule.id)
        try:
            violations = list(rule.check(schema, options))
        except Exception as exc:  # a rule's bug must not hide the other rules' findings
            result.findings.append(Finding(
                rule.id, Area.SCHEMA, Status.ERROR, f"rule {rule.id} could not run: {type(exc).__name__}: {exc}",
                fix="report this to pytest-dbarch with the schema that triggers it; switch the rule off meanwhile "
                f"({rule.id} = off)",
            ))
            continue
        found = 0
        for violation in sorted(violations, key=lambda v: (v.table, v.title)):
            if options.waiver(rule.id, violation) is not None:
                result.waived[rule.id] = result.waived.get(rule.id, 0) + 1
                continue
            status = severity if explicit else (violation.status or severity)
            result.findings.append(_finding(rule, status, violation))
            found += 1
        if not found:
            waived = result.waived.get(rule.id, 0)
            note = f" ({waived} waived)" if waived else ""
            result.findings.append(Finding(
                rule.id, Area.SCHEMA, Status.PASSED, rule.clean[:1].upper() + rule.clean[1:] + note,
            ))
    result.seconds = time.perf_counter() - started
    return result


def lint(
    conn: psycopg.Connection[Any],
    options: LintOptions,
    models: Models | None = None,
    queries: Sequence[Query] = (),
    rules: Sequence[Rule] = RULES,
    fresh: bool = False,
) -> LintResult:
    """Read the evidence through ``conn`` and run the rules (``fresh``: see ``read``)."""
    started = time.perf_counter()
    schema = read(conn, options, models, queries, rules, fresh)
    result = check(schema, options, rules)
    result.seconds = time.perf_counter() - started
    return result
