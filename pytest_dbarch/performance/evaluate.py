"""Budgets turned into Findings, and the failure message that needs no ``-v``.

Pure: it reads what ``measure`` gathered. Severity follows what the evidence can
carry. A seq scan or a skipped index on a table of ``SMALL_TABLE_ROWS`` rows or fewer,
where the planner does use an index once sequential scans are off, is a warning: the
test data cannot show the problem, so a failure would be a false alarm. So is an index
asked for that lost to one leading with the same columns, and latency over budget that
the samples cannot pin on the statement (see ``latency``). Everything else over budget
fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.performance import latency as latency_rules
from pytest_dbarch.performance.budget import Budget
from pytest_dbarch.performance.explain import IndexFacts
from pytest_dbarch.performance.measure import Measured
from pytest_dbarch.performance.plan import Plan

BUFFER_BUDGET = "performance.buffer-budget"
SEQ_SCAN = "performance.seq-scan"
INDEX_NOT_USED = "performance.index-not-used"
LATENCY_BUDGET = "performance.latency-budget"
LATENCY_NOISY = "performance.latency-noisy"
ROW_ESTIMATE = "performance.row-estimate"
UNMEASURED = "performance.unmeasured"

_SQL_IN_TITLE = 70
_SQL_IN_EVIDENCE = 400
_PLANS_SHOWN = 3
#: A seq scan of this many rows or fewer is cheap whatever the plan: with an index the
#: planner would use at size, it is the test data that is too small, not the query.
SMALL_TABLE_ROWS = 1000


@dataclass(frozen=True)
class Context:
    """How to judge: the CI scale factor for latency, and whether the CPU is shared."""

    latency_scale: float = 1.0
    shared_cpu: bool = False


def evaluate(measured: list[Measured], budget: Budget, context: Context = Context()) -> list[Finding]:
    """Every finding of ``budget`` over the ``measured`` statements."""
    findings: list[Finding] = []
    judged = [m for m in measured if m.plan is not None]
    for m in measured:
        if m.problem:
            findings.append(_unmeasured(m))
    if not measured:
        findings.append(Finding(
            UNMEASURED, Area.PERFORMANCE, Status.WARNING,
            f"{budget.describe()} had no statement to measure",
            evidence="The budget covers the application's SELECT, INSERT, UPDATE and DELETE "
                     "statements; none ran (fixture set-up is not covered).",
            fix="Run the query under test inside the test (or the limit() block), or remove the budget",
        ))
    if budget.buffers is not None:
        findings += _buffers(judged, budget.buffers)
    if budget.no_seq_scan:
        findings += _seq_scans(judged, budget)
    for name in budget.uses_index:
        findings += _index_used(judged, name)
    if budget.p95_ms is not None:
        findings += _latency(judged, budget.p95_ms, context)
    for m in judged:
        findings += _misestimates(m)
    return findings


# --- evidence shared by every rule
def short(sql: str, limit: int = _SQL_IN_TITLE) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def statement_evidence(m: Measured, *lines: str, plan: bool = True) -> str:
    """Fingerprint, call site, parameters, the rule's own lines, then the plan."""
    target = m.target
    out = [f"statement {target.id}: {short(target.fingerprint, _SQL_IN_EVIDENCE)}"]
    if target.sites:
        out.append(f"at {target.sites}")
    if target.shown_params:
        out.append(f"params: {target.shown_params}")
    out += lines
    if plan and m.plan is not None:
        out.append("plan:" if m.plan.text else "plan (estimated, not run):")
        out += [f"  {line}" for line in (m.plan.text or _outline(m.plan)).splitlines()]
    return "\n".join(out)


def _outline(plan: Plan) -> str:
    return "\n".join(node.label for node in plan.nodes)


def _blocks(plan: Plan) -> str:
    return (f"{plan.buffers} blocks (shared hit {plan.shared_hit}, shared read {plan.shared_read}, "
            f"temp {plan.temp})")


# --- buffers
def _buffers(judged: list[Measured], limit: int) -> list[Finding]:
    counted = [m for m in judged if m.plan is not None and m.plan.buffers is not None]
    over = [m for m in counted if m.plan.buffers > limit]  # type: ignore[union-attr,operator]
    findings = [
        Finding(
            BUFFER_BUDGET, Area.PERFORMANCE, Status.FAILED,
            f"{short(m.target.fingerprint)} touched {m.plan.buffers} blocks, over the budget of {limit}",  # type: ignore[union-attr]
            evidence=statement_evidence(m, f"budget: buffers <= {limit}; measured: {_blocks(m.plan)}"),  # type: ignore[arg-type]
            where=m.target.where,
            fix="Make it read fewer blocks: an index that serves its WHERE and ORDER BY (see the "
                "plan's scans and filters), fewer rows or columns; or raise buffers= if this much "
                "data is intended",
        )
        for m in over
    ]
    if counted and not over:
        heaviest = max(counted, key=lambda m: m.plan.buffers)  # type: ignore[union-attr,arg-type,return-value]
        skipped = [m for m in judged if m not in counted]
        # The figures and plans of a passing budget are the report's performance notes.
        blocks = [statement_evidence(m, f"measured: {_blocks(m.plan)}") for m in counted]  # type: ignore[arg-type]
        blocks += [statement_evidence(m, f"not run again: {m.estimated_only}") for m in skipped]
        findings.append(Finding(
            BUFFER_BUDGET, Area.PERFORMANCE, Status.PASSED,
            f"{_n(len(counted), 'statement')} within {limit} blocks (most: {heaviest.plan.buffers})",  # type: ignore[union-attr]
            evidence="\n\n".join(blocks),
        ))
    return findings


# --- sequential scans
def _seq_scans(judged: list[Measured], budget: Budget) -> list[Finding]:
    findings = []
    checked: set[str] = set()
    for m in judged:
        plan = m.plan
        assert plan is not None
        checked.update(t for t in plan.tables if budget.forbids_seq_scan(t))
        for table in plan.seq_scans:
            node = plan.seq_scan_of(table)
            if node is not None and node.may_stop_early and not node.filter:
                continue  # the first rows of the table under a LIMIT: nothing for an index to narrow
            if budget.forbids_seq_scan(table):
                findings.append(_seq_scan(m, plan, table))
    if not findings and checked:
        findings.append(Finding(
            SEQ_SCAN, Area.PERFORMANCE, Status.PASSED,
            f"No seq scan on {', '.join(sorted(checked))} ({_n(len(judged), 'statement')})",
        ))
    return findings


def _seq_scan(m: Measured, plan: Plan, table: str) -> Finding:
    """Judge one seq scan by what the planner does with sequential scans switched off."""
    node = plan.seq_scan_of(table)
    rows = plan.seq_scan_rows(table)
    size = f"{rows} rows read" if rows is not None else f"{int(node.estimated) if node else '?'} rows estimated"
    small = rows is not None and rows <= SMALL_TABLE_ROWS
    usable = _usable_indexes(m, table)
    walked = [] if m.probe is None else list(dict.fromkeys(n.index for n in m.probe.index_scans_of(table)))
    if small and (usable or walked):
        names = ", ".join(usable or walked)
        title = (f"Seq scan on {table}: table too small for the planner to use {names} ({size})" if usable else
                 f"Seq scan on {table}: table too small to judge ({size})")
        why = (f"with enable_seqscan = off the planner uses {names}: the index serves this query, "
               f"the test's {table} is just too small for it to pay off" if usable else
               f"with enable_seqscan = off the planner walks all of {names}; on {rows} rows any plan is cheap")
        return Finding(SEQ_SCAN, Area.PERFORMANCE, Status.WARNING, title,
                       evidence=statement_evidence(m, why), where=m.target.where, fix=_fill_fix(table))
    if usable:
        probe_rows = max(int(n.estimated) for n in m.probe.index_scans_of(table) if n.index in usable)  # type: ignore[union-attr]
        return Finding(
            SEQ_SCAN, Area.PERFORMANCE, Status.FAILED,
            f"Seq scan on {table} ({size}): the planner prefers it to {', '.join(usable)}",
            evidence=statement_evidence(
                m, f"with enable_seqscan = off the planner uses {', '.join(usable)}, expecting {probe_rows} "
                   f"of the table's rows from it: a condition that matches much of {table} makes reading "
                   "it whole the cheaper plan"),
            where=m.target.where,
            fix=f"Narrow the condition on {table} (or the rows it returns) so an index lookup pays off, "
                "or allow the seq scan if this statement really reads most of the table",
        )
    return Finding(
        SEQ_SCAN, Area.PERFORMANCE, Status.FAILED,
        f"Seq scan on {table}: no usable index ({size}{f' filtered by {node.filter}' if node and node.filter else ''})",
        evidence=statement_evidence(m, _no_index_reason(m, table, walked)),
        where=m.target.where,
        fix=f"Add an index on {table} that matches the filter{(' ' + node.filter) if node and node.filter else ''} "
            f"(CREATE INDEX CONCURRENTLY in a migration), or read fewer rows",
    )


def _usable_indexes(m: Measured, table: str) -> list[str]:
    """Indexes on ``table`` the probe plan uses to narrow the read (a condition, or a
    partial index whose predicate the query implies)."""
    if m.probe is None or m.probe.seq_scan_of(table) is not None:
        return []
    found = []
    for node in m.probe.index_scans_of(table):
        facts = m.indexes.get(node.index)
        if node.condition or (facts is not None and facts.partial):
            found.append(node.index)
    return list(dict.fromkeys(found))


def _no_index_reason(m: Measured, table: str, walked: list[str]) -> str:
    if m.probe is None:
        return f"could not re-plan with enable_seqscan = off: {m.probe_error or 'not tried'}"
    if walked:
        return (f"with enable_seqscan = off the planner walks all of {', '.join(walked)} "
                f"with no condition: no index narrows this query's read of {table}")
    return f"with enable_seqscan = off the planner still reads {table} whole: no index fits this query"


# --- indexes
def _index_used(judged: list[Measured], name: str) -> list[Finding]:
    facts = next((m.indexes.get(name) for m in judged if name in m.indexes), None)
    if facts is None:
        return [_index_missing(judged, f"Index {name} not used: it does not exist in the test database",
                               f"Create {name} (a migration with CREATE INDEX CONCURRENTLY), or correct uses_index=")]
    readers = [m for m in judged if m.plan is not None and facts.table in m.plan.tables]
    if not readers:
        return [_index_missing(judged, f"Index {name} not used: no statement read {facts.table}",
                               f"Budget the statement that reads {facts.table}, or drop uses_index={name!r}")]
    findings = []
    for m in readers:
        plan = m.plan
        assert plan is not None
        if plan.uses(facts.name):
            continue
        instead = _what_it_read(plan, facts.table)
        rows = plan.seq_scan_rows(facts.table)
        if m.probe is not None and m.probe.uses(facts.name) and rows is not None and rows <= SMALL_TABLE_ROWS:
            size = f" ({rows} rows)"
            findings.append(Finding(
                INDEX_NOT_USED, Area.PERFORMANCE, Status.WARNING,
                f"Index {facts.name} not used: table too small for the planner to use it{size}; it chose {instead}",
                evidence=statement_evidence(m, f"with enable_seqscan = off the planner uses {facts.name}"),
                where=m.target.where,
                fix=_fill_fix(facts.table),
            ))
            continue
        twin = _same_leading_columns(m, facts)
        if twin is not None:
            findings.append(Finding(
                INDEX_NOT_USED, Area.PERFORMANCE, Status.WARNING,
                f"Index {facts.name} not used on {facts.table}: {twin.name} served it, leading with the "
                f"same column{'s' if len(twin.columns) > 1 else ''} ({', '.join(twin.columns[:len(facts.columns)])})",
                evidence=statement_evidence(
                    m, f"{facts.name} keys: {', '.join(facts.columns)}; {twin.name} keys: {', '.join(twin.columns)}"),
                where=m.target.where,
                fix=f"Either index serves this lookup: name {twin.name} in uses_index=; if nothing needs "
                    "the longer one's extra columns (index-only scans, sort order), drop it: every write "
                    "maintains both",
            ))
            continue
        if m.probe is None:
            probe = f"could not re-plan: {m.probe_error or 'not tried'}"
        elif m.probe.uses(facts.name):
            probe = (f"with enable_seqscan = off the planner uses {facts.name}, but on {facts.table} as it is "
                     f"it prefers {instead}")
        else:
            probe = f"with enable_seqscan = off it still does not use {facts.name}"
        findings.append(Finding(
            INDEX_NOT_USED, Area.PERFORMANCE, Status.FAILED,
            f"Index {facts.name} not used on {facts.table}: the planner chose {instead}",
            evidence=statement_evidence(m, probe),
            where=m.target.where,
            fix=f"Make the query match {facts.name}'s columns{' and predicate' if facts.partial else ''} "
                f"(see the plan's conditions), or name the index it should use",
        ))
    if not findings:
        findings.append(Finding(
            INDEX_NOT_USED, Area.PERFORMANCE, Status.PASSED,
            f"Index {facts.name} used by {_n(len(readers), 'statement')} reading {facts.table}",
        ))
    return findings


def _index_missing(judged: list[Measured], title: str, fix: str) -> Finding:
    """The index cannot have served any statement: the first few plans show what did."""
    return Finding(
        INDEX_NOT_USED, Area.PERFORMANCE, Status.FAILED, title,
        evidence="\n\n".join(statement_evidence(m) for m in judged[:_PLANS_SHOWN]),
        where=judged[0].target.where if judged else "",
        fix=fix,
    )


def _fill_fix(table: str) -> str:
    return (f"Fill {table} to a realistic size and ANALYZE it (dbarch_volume, or dbarch_budget.fill) "
            "so the budget judges the plan production gets")


def _same_leading_columns(m: Measured, expected: IndexFacts) -> IndexFacts | None:
    """An index the plan used on the same table whose keys start with ``expected``'s
    (or the other way round): a twin, so the budget's intent, an index lookup, is met."""
    assert m.plan is not None
    for node in m.plan.index_scans_of(expected.table):
        chosen = m.indexes.get(node.index)
        if chosen is None or not node.condition or not expected.columns or not chosen.columns:
            continue
        shorter = min(len(expected.columns), len(chosen.columns))
        if chosen.columns[:shorter] == expected.columns[:shorter] and chosen.partial == expected.partial:
            return chosen
    return None


def _what_it_read(plan: Plan, table: str) -> str:
    if plan.seq_scan_of(table) is not None:
        return f"a seq scan of {table}"
    used = [n.index for n in plan.index_scans_of(table)]
    return ", ".join(dict.fromkeys(used)) if used else f"another way to read {table}"


# --- latency
def _latency(judged: list[Measured], budget_ms: float, context: Context) -> list[Finding]:
    findings = []
    passed = []
    for m in judged:
        if m.latency is None:
            continue
        verdict = latency_rules.judge(m.latency, budget_ms, context.latency_scale, context.shared_cpu)
        if verdict.outcome == latency_rules.PASSED:
            passed.append((m, verdict))
            continue
        noisy = verdict.outcome == latency_rules.NOISY
        findings.append(Finding(
            LATENCY_NOISY if noisy else LATENCY_BUDGET, Area.PERFORMANCE,
            Status.WARNING if noisy else Status.FAILED,
            f"{short(m.target.fingerprint)}: {verdict.reason}",
            evidence=statement_evidence(m, f"measured: {m.latency.describe()}", f"budget: p95_ms <= {budget_ms:g}"
                                        + (f" x scale {context.latency_scale:g}" if context.latency_scale != 1.0 else "")),
            where=m.target.where,
            fix="Run on a quieter machine or raise dbarch_budget_latency_scale, or rely on the buffers "
                "budget (deterministic)" if noisy else
                "Make the statement cheaper (the plan shows where the time goes), or raise p95_ms",
        ))
    if passed:
        slowest = max(passed, key=lambda pv: pv[0].latency.p95)  # type: ignore[union-attr]
        scaled = f" ({budget_ms:g} ms x scale {context.latency_scale:g})" if context.latency_scale != 1.0 else ""
        findings.append(Finding(
            LATENCY_BUDGET, Area.PERFORMANCE, Status.PASSED,
            f"{_n(len(passed), 'statement')} within p95 {budget_ms * context.latency_scale:g} ms{scaled} "
            f"(slowest p95 {slowest[0].latency.p95:.3f} ms)",  # type: ignore[union-attr]
            evidence="\n".join(f"{m.target.id}: {m.latency.describe()}  {short(m.target.fingerprint)}"  # type: ignore[union-attr]
                               for m, _ in passed),
        ))
    return findings


# --- statistics and problems
def _misestimates(m: Measured) -> list[Finding]:
    assert m.plan is not None
    wrong = m.plan.misestimates
    if not wrong:
        return []
    worst = wrong[0]
    return [Finding(
        ROW_ESTIMATE, Area.PERFORMANCE, Status.WARNING,
        f"Row estimate {worst.factor:.0f}x off in {short(m.target.fingerprint, 50)}: {worst.node}",
        evidence=statement_evidence(m, *(str(w) for w in wrong)),
        where=m.target.where,
        fix="ANALYZE the tables if their data changed since (stale statistics); for conditions on "
            "related columns the planner multiplies as if independent, CREATE STATISTICS ... "
            "(dependencies, mcv) on them, or rewrite the redundant condition",
    )]


def _unmeasured(m: Measured) -> Finding:
    return Finding(
        UNMEASURED, Area.PERFORMANCE, Status.ERROR,
        f"Could not measure {short(m.target.fingerprint)}: {m.problem}",
        evidence=statement_evidence(m, f"EXPLAIN failed: {m.problem}", plan=False),
        where=m.target.where,
        fix="Leave the transaction usable at the end of the test (roll back what failed), or "
            "measure the statement with dbarch_budget.explain()",
    )


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def failure_message(headline: str, findings: list[Finding]) -> str:
    """The test's failure text: every failed finding with its evidence and fix; a plan
    already shown for an earlier finding is referred to, not repeated."""
    failed = [f for f in findings if f.status is Status.FAILED]
    lines = [headline]
    shown: set[str] = set()
    for finding in failed:
        head, marker, plan = finding.evidence.partition("\nplan")
        evidence = head
        if marker:
            if plan in shown:
                evidence += "\nplan: as above"
            else:
                evidence += marker + plan
                shown.add(plan)
        lines += ["", f"[{finding.rule}] {finding.title}"]
        lines += [f"    {line}" for line in evidence.splitlines()]
        if finding.fix:
            lines.append(f"    fix: {finding.fix}")
    return "\n".join(lines)
