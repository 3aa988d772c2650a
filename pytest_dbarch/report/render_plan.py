"""``plan-{ID}.md``: the remaining fixes as audit → fix → validate phases."""

from __future__ import annotations

from pytest_dbarch.report._markdown import header
from pytest_dbarch.report.model import Report, item_text

KIND = "plan"


def render(report: Report) -> str:
    counts = report.counts
    lines = header("Plan", report)
    ran = [w.area.value for w in report.workstreams if w.findings]
    pending = [w.area.value for w in report.pending_areas]
    lines += ["## Phase 1: audit", ""]
    lines.append(f"- [x] Run the checks: {counts['checks']} checks in {', '.join(ran) or 'no area'}")
    if pending:
        lines.append(f"- Not covered by this session's checks (pending): {', '.join(pending)}")
    lines += ["", "## Phase 2: fix", ""]
    fixes = False
    for w in report.workstreams:
        if not w.open:
            continue
        fixes = True
        lines.append(f"### {w.title}")
        lines.append("")
        for finding in w.open:
            where = f" (at `{finding.where}`)" if finding.where else ""
            lines.append(f"- [ ] {item_text(finding)}{where}")
        lines.append("")
    if not fixes:
        lines += ["- [x] Nothing to fix: every check passed", ""]
    lines += ["## Phase 3: validate", ""]
    tests = sorted({f.nodeid for f in report.findings if f.is_problem and f.nodeid})
    done = "x" if report.complete else " "
    if tests:
        lines.append("- [ ] Re-run the tests that reported open items:")
        lines += [f"  - `{nodeid}`" for nodeid in tests]
    lines.append(
        f"- [{done}] Re-run the whole suite; when every check passes this task gets "
        f"`completion-summary-{report.task_id}.md` and moves to `{report.directory_name}/completed/`"
    )
    return "\n".join(lines) + "\n"
