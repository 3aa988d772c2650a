"""``checklist-{ID}.md``: one box per check, grouped by area; open boxes say the fix."""

from __future__ import annotations

from pytest_dbarch.report._markdown import checklist_item, counts_line, header
from pytest_dbarch.report.model import PENDING, Report

KIND = "checklist"


def render(report: Report) -> str:
    counts = report.counts
    done = counts["passed"]
    lines = header("Database architecture checklist", report)
    lines += [f"{done} of {counts['checks']} checks done. {counts_line(counts)}.", ""]
    for w in report.workstreams:
        lines.append(f"## {w.title} ({w.status})")
        lines.append("")
        if w.status == PENDING:
            lines.append("_No checks of this area ran in this session._")
        # Open items first: they are the work.
        for finding in sorted(w.findings, key=lambda f: not f.is_problem):
            lines.append(checklist_item(finding))
        lines.append("")
    return "\n".join(lines)
