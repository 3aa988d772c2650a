"""``plan-{ID}.md``: the remaining fixes as audit → fix → validate phases."""

from __future__ import annotations

from pytest_dbarch.report._markdown import header, plural
from pytest_dbarch.report.model import Report, item_text

KIND = "plan"
SHOWN_TESTS = 30


def render(report: Report) -> str:
    counts = report.counts
    lines = header("Plan", report)
    ran = [w.area.value for w in report.workstreams if w.items]
    pending = [w.area.value for w in report.pending_areas]
    lines += ["## Phase 1: audit", ""]
    lines.append(f"- [x] Run the checks: {counts['checks']} checks in {', '.join(ran) or 'no area'}")
    if pending:
        lines.append(f"- Not covered by this task's checks (pending): {', '.join(pending)}")
    lines += ["", "## Phase 2: fix", ""]
    fixes = False
    for w in report.workstreams:
        if not w.open:
            continue
        fixes = True
        lines.append(f"### {w.title}")
        lines.append("")
        for item in w.open:
            finding = item.finding
            where = f" (at `{finding.where}`)" if finding.where else ""
            lines.append(f"- [ ] {item_text(finding)}{where}")
        lines.append("")
    if report.failing:
        fixes = True
        lines += ["### Tests", "", f"- [ ] Make the {plural(len(report.failing), 'failing test')} pass", ""]
    if not fixes:
        lines += ["- [x] Nothing to fix: every check passed", ""]
    lines += ["## Phase 3: validate", ""]
    tests = sorted(
        {i.finding.nodeid for i in report.items if i.is_problem and i.finding.nodeid}
        | {t.nodeid for t in report.failing}
    )
    done = "x" if report.complete else " "
    if tests:
        lines.append("- [ ] Re-run the tests that reported open items or failed:")
        lines += [f"  - `{nodeid}`" for nodeid in tests[:SHOWN_TESTS]]
        if len(tests) > SHOWN_TESTS:
            lines.append(f"  - ... and {len(tests) - SHOWN_TESTS} more")
    lines.append(
        f"- [{done}] Every item passed and no test fails; then this task gets "
        f"`completion-summary-{report.task_id}.md` and moves to `{report.directory_name}/completed/`. "
        "A partial run closes only the items it re-checked."
    )
    return "\n".join(lines) + "\n"
