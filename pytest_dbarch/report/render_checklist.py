"""``checklist-{ID}.md``: grouped by area, open items first (one line each, phrased as
the fix), then one line per passed check with its counts; failing tests last."""

from __future__ import annotations

from pytest_dbarch.report._markdown import (
    checklist_item,
    counts_line,
    failing_test_line,
    header,
    passed_lines,
    plural,
)
from pytest_dbarch.report.model import PENDING, Report

KIND = "checklist"
SHOWN_FAILING = 20


def render(report: Report) -> str:
    counts = report.counts
    lines = header("Database architecture checklist", report)
    lines += [f"{counts['passed']} of {counts['checks']} checks done. {counts_line(counts)}.", ""]
    if counts["stale"]:
        lines += [
            "Items marked \"not re-checked in this run\" are kept as an earlier run left them; "
            "they change only when their test (or check) runs again.",
            "",
        ]
    for w in report.workstreams:
        lines.append(f"## {w.title} ({w.status})")
        lines.append("")
        if w.status == PENDING:
            lines.append("_No checks of this area ran in this task._")
        lines += [checklist_item(i, report) for i in w.open]
        lines += passed_lines((i for i in w.items if not i.is_problem), report)
        lines.append("")
    if report.failing:
        lines += ["## Tests", ""]
        lines += [failing_test_line(t.nodeid, t.outcome, t.run, report) for t in report.failing[:SHOWN_FAILING]]
        if len(report.failing) > SHOWN_FAILING:
            lines.append(f"- ... and {plural(len(report.failing) - SHOWN_FAILING, 'more failing test')}")
        lines.append("")
    return "\n".join(lines)
