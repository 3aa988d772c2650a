"""``completion-summary-{ID}.md``: written once every check passed, before the move."""

from __future__ import annotations

from pytest_dbarch.report._markdown import counts_line, header, plural
from pytest_dbarch.report.ids import KINDS
from pytest_dbarch.report.model import Report

KIND = "completion-summary"


def render(report: Report) -> str:
    lines = header("Completion summary", report)
    lines += [f"Every check passed: {counts_line(report.counts)}. No test is failing.", ""]
    stale = report.stale
    if stale:
        oldest = min(i.last_run for i in stale)
        lines += [
            f"{plural(len(stale), 'item')} passed in an earlier run (the oldest in run {oldest}) "
            "and were not re-checked in this one.",
            "",
        ]
    lines += ["## Workstreams", ""]
    for w in report.workstreams:
        c = w.counts
        detail = f"{c['passed']} checks passed" if c["checks"] else "no checks in this task"
        lines.append(f"- {w.title}: {w.status} ({detail})")
    lines += ["", "## Files", ""]
    lines += [f"- `{report.directory_name}/completed/{report.file_name(k)}`" for k in KINDS]
    lines += ["", "## Coordinated agent work", ""]
    lines += [f"- {path}" for path in report.related_files] or ["- none found in the report directory"]
    return "\n".join(lines) + "\n"
