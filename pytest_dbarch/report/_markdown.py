"""Small Markdown pieces shared by the renderers."""

from __future__ import annotations

from pytest_dbarch.findings import Finding
from pytest_dbarch.report.model import Report, item_text

EVIDENCE_LINES = 20


def header(title: str, report: Report) -> list[str]:
    return [
        f"# {title} - {report.task_id}",
        "",
        f"Project: {report.project} · agent: {report.agent_id} · run {report.run} · "
        f"started {report.started_at} · updated {report.updated_at}",
        f"Task status: `task-status-{report.task_id}.json` · phase: **{report.phase}**",
        "",
    ]


def checklist_item(finding: Finding) -> str:
    box = "x" if not finding.is_problem else " "
    context = [f"{finding.status.value}", f"`{finding.rule}`"]
    if finding.nodeid:
        context.append(f"test `{finding.nodeid}`")
    if finding.where:
        context.append(f"at `{finding.where}`")
    return f"- [{box}] {item_text(finding)} ({'; '.join(context)})"


def evidence_block(text: str) -> list[str]:
    lines = text.splitlines()
    shown = lines[:EVIDENCE_LINES]
    if len(lines) > EVIDENCE_LINES:
        shown.append(f"... ({len(lines) - EVIDENCE_LINES} more lines)")
    fence = "````" if "```" in text else "```"
    return [fence, *shown, fence]


def counts_line(counts: dict[str, int]) -> str:
    return (
        f"{counts['checks']} checks: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['warning']} warning, {counts['error']} error"
    )
