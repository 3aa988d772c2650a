"""``progress-{ID}.md``: current phase, what passed, blockers, next steps."""

from __future__ import annotations

from pytest_dbarch.findings import Status
from pytest_dbarch.report._markdown import counts_line, header
from pytest_dbarch.report.model import Report, item_text

KIND = "progress"
NEXT_STEPS = 10
SHOWN = 3


def render(report: Report) -> str:
    lines = header("Progress", report)
    lines += ["## Current phase", "", f"**{report.phase}** — {counts_line(report.counts)}.", ""]
    lines += ["## Workstreams", ""]
    for w in report.workstreams:
        c = w.counts
        detail = f"{c['passed']} of {c['checks']} checks passed" if c["checks"] else "no checks ran"
        lines.append(f"- {w.title}: {w.status} ({detail})")
    lines += ["", "## Completed", ""]
    passed: dict[str, list[str]] = {}
    for finding in report.findings:
        if finding.status is Status.PASSED:
            passed.setdefault(finding.rule, []).append(finding.title)
    for rule, titles in passed.items():
        examples = "; ".join(dict.fromkeys(titles[:SHOWN]))
        more = ", ..." if len(titles) > SHOWN else ""
        lines.append(f"- `{rule}`: {len(titles)} passed ({examples}{more})")
    if not passed:
        lines.append("- nothing yet")
    lines += ["", "## Blockers", ""]
    blockers = [f for f in report.findings if f.status is Status.ERROR]
    lines += [f"- {f.title} (`{f.rule}`{', at ' + f.where if f.where else ''})" for f in blockers] or ["- none"]
    lines += ["", "## Next steps", ""]
    problems = [f for f in report.findings if f.is_problem]
    problems.sort(key=lambda f: (f.status is not Status.ERROR, f.status is not Status.FAILED))
    steps = [item_text(f) for f in problems[:NEXT_STEPS]]
    if len(problems) > NEXT_STEPS:
        steps.append(f"... and {len(problems) - NEXT_STEPS} more in `checklist-{report.task_id}.md`")
    pending = [w.area.value for w in report.pending_areas]
    if pending:
        steps.append(f"Add checks for the pending areas: {', '.join(pending)}")
    if not problems:
        steps.append("None: every check passed")
    lines += [f"{n}. {step}" for n, step in enumerate(steps, 1)]
    if report.related_files:
        lines += ["", "## Cross-agent coordination", ""]
        lines += [f"- {path}" for path in report.related_files]
    return "\n".join(lines) + "\n"
