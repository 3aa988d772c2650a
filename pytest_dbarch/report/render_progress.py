"""``progress-{ID}.md``: current phase, what this run covered, what passed, what it did
not re-check (stale items), blockers, next steps."""

from __future__ import annotations

from pytest_dbarch.findings import Status
from pytest_dbarch.report._markdown import (
    by_rule,
    counts_line,
    group_text,
    header,
    plural,
    staleness,
)
from pytest_dbarch.report.model import Report, item_text

KIND = "progress"
NEXT_STEPS = 10
SHOWN_STALE = 30


def render(report: Report) -> str:
    lines = header("Progress", report)
    lines += ["## Current phase", "", f"**{report.phase}** — {counts_line(report.counts)}.", ""]
    lines += [f"{report.run_line}.", ""]
    lines += ["## Workstreams", ""]
    for w in report.workstreams:
        c = w.counts
        detail = f"{c['passed']} of {c['checks']} checks passed" if c["checks"] else "no checks ran"
        if c["stale"]:
            detail += f"; {c['stale']} not re-checked in this run"
        lines.append(f"- {w.title}: {w.status} ({detail})")
    lines += ["", "## Completed", ""]
    passed = by_rule(i for i in report.items if not i.is_problem)
    for rule, group in passed.items():
        text = group_text(group) if len(group) > 1 else group[0].finding.title
        lines.append(f"- `{rule}`: {text}")
    if not passed:
        lines.append("- nothing yet")
    if report.closed:
        lines += ["", "## Resolved in this run", ""]
        for item in report.closed:
            f = item.finding
            why = "its test no longer exists" if f.nodeid in report.gone_tests else "re-checked: no longer reported"
            test = f", test `{f.nodeid}`" if f.nodeid else ""
            lines.append(f"- {f.title} (`{f.rule}`{test}): {why}")
    lines += _stale_section(report)
    lines += ["", "## Blockers", ""]
    blockers = [i for i in report.items if i.finding.status is Status.ERROR]
    lines += [
        f"- {i.finding.title} (`{i.finding.rule}`{', at ' + i.finding.where if i.finding.where else ''})"
        for i in blockers
    ]
    if report.failing:
        lines.append(
            f"- {plural(len(report.failing), 'failing test')}: the task completes only when no test "
            "is failing (listed in the checklist)"
        )
    if not blockers and not report.failing:
        lines.append("- none")
    lines += ["", "## Next steps", ""]
    problems = [i.finding for i in report.items if i.is_problem]
    problems.sort(key=lambda f: (f.status is not Status.ERROR, f.status is not Status.FAILED))
    steps = [item_text(f) for f in problems[:NEXT_STEPS]]
    if len(problems) > NEXT_STEPS:
        steps.append(f"... and {len(problems) - NEXT_STEPS} more in `checklist-{report.task_id}.md`")
    if report.failing:
        steps.append(f"Make the {plural(len(report.failing), 'failing test')} pass")
    stale_tests = sorted({i.finding.nodeid for i in report.stale if i.is_problem and i.finding.nodeid})
    if stale_tests:
        steps.append(f"Re-run the {plural(len(stale_tests), 'test')} whose open items this run did not re-check")
    pending = [w.area.value for w in report.pending_areas]
    if pending:
        steps.append(f"Add checks for the pending areas: {', '.join(pending)}")
    if not problems and not report.failing:
        steps.append("None: every check passed")
    lines += [f"{n}. {step}" for n, step in enumerate(steps, 1)]
    if report.related_files:
        lines += ["", "## Cross-agent coordination", ""]
        lines += [f"- {path}" for path in report.related_files]
    return "\n".join(lines) + "\n"


def _stale_section(report: Report) -> list[str]:
    stale = report.stale
    if not stale:
        return []
    lines = [
        "",
        "## Not re-checked in this run",
        "",
        f"{plural(len(stale), 'item')} kept as an earlier run left them: this run did not run "
        "their tests (or checks). They change only when those run again.",
        "",
    ]
    open_items = [i for i in stale if i.is_problem]
    for item in open_items[:SHOWN_STALE]:
        f = item.finding
        test = f", test `{f.nodeid}`" if f.nodeid else f", from {item.source}"
        lines.append(f"- [ ] {f.title} (`{f.rule}`{test}; {staleness(item, report)})")
    if len(open_items) > SHOWN_STALE:
        lines.append(f"- ... and {len(open_items) - SHOWN_STALE} more open items (see the checklist)")
    passed: dict[str, list[int]] = {}
    for item in stale:
        if not item.is_problem:
            passed.setdefault(item.finding.rule, []).append(item.last_run)
    for rule, runs in passed.items():
        last = sorted(set(runs))
        when = f"run {last[0]}" if len(last) == 1 else f"runs {last[0]}-{last[-1]}"
        lines.append(f"- [x] `{rule}`: {len(runs):,} passed, last checked in {when}")
    return lines
