"""Findings → the report's model: one workstream per area, one checklist item per check.

Status rules (the same in every file):
- a workstream with no findings in the session is ``pending``;
- one with an ``error`` finding (a check that could not run) is ``blocked``;
- one with a ``failed`` or ``warning`` finding is ``in-progress`` (work to do);
- one whose findings all passed is ``completed``.
The task is complete when it has findings and every one passed: warnings stay open
items, so "complete" always means every checklist box is ticked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.report.scrub import scrub, scrub_finding

PENDING, IN_PROGRESS, COMPLETED, BLOCKED = "pending", "in-progress", "completed", "blocked"
AREA_TITLES = {
    Area.DATABASES: "Databases",
    Area.QUERIES: "Queries",
    Area.MIGRATIONS: "Migrations",
    Area.MODELS: "Models and constraints",
    Area.SCHEMA: "Schema",
    Area.PERFORMANCE: "Performance",
    Area.CONCURRENCY: "Concurrency",
}
MAX_DECISIONS = 50


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def item_text(finding: Finding) -> str:
    """A checklist line's words: what was checked, or, when open, the fix to make."""
    if finding.status is Status.PASSED:
        return finding.title
    if finding.status is Status.ERROR:
        action = f"Unblock: {finding.fix}" if finding.fix else "Unblock the check"
        return f"{action} — {finding.title}"
    if finding.fix:
        return f"{_capital(finding.fix)} — {finding.title}"
    return f"Resolve {finding.rule} — {finding.title}"


@dataclass(frozen=True)
class Workstream:
    area: Area
    findings: tuple[Finding, ...]
    cross_references: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return AREA_TITLES[self.area]

    @property
    def status(self) -> str:
        return status_of(self.findings)

    @property
    def counts(self) -> dict[str, int]:
        return count(self.findings)

    @property
    def open(self) -> list[Finding]:
        return [f for f in self.findings if f.is_problem]


def status_of(findings: Iterable[Finding]) -> str:
    """pending / blocked / in-progress / completed, by the rules in the module docstring."""
    statuses = {f.status for f in findings}
    if not statuses:
        return PENDING
    if Status.ERROR in statuses:
        return BLOCKED
    if statuses & {Status.FAILED, Status.WARNING}:
        return IN_PROGRESS
    return COMPLETED


def count(findings: Iterable[Finding]) -> dict[str, int]:
    result = {"checks": 0, **{s.value: 0 for s in Status}}
    for finding in findings:
        result["checks"] += 1
        result[finding.status.value] += 1
    return result


@dataclass(frozen=True)
class Report:
    """Everything the files say, already scrubbed of secrets."""

    task_id: str
    agent_id: str
    project: str
    description: str
    started_at: str
    updated_at: str
    run: int
    directory_name: str
    related_files: tuple[str, ...]
    workstreams: tuple[Workstream, ...]
    decisions: tuple[dict[str, Any], ...]

    @property
    def findings(self) -> list[Finding]:
        return [f for w in self.workstreams for f in w.findings]

    @property
    def counts(self) -> dict[str, int]:
        return count(self.findings)

    @property
    def complete(self) -> bool:
        findings = self.findings
        return bool(findings) and not any(f.is_problem for f in findings)

    @property
    def status(self) -> str:
        """The task's own status, by the workstream rules over all findings."""
        return status_of(self.findings)

    @property
    def phase(self) -> str:
        return {PENDING: "audit", BLOCKED: "blocked", IN_PROGRESS: "fix", COMPLETED: "complete"}[self.status]

    @property
    def pending_areas(self) -> list[Workstream]:
        return [w for w in self.workstreams if w.status == PENDING]

    def file_name(self, kind: str) -> str:
        return f"{kind}-{self.task_id}.{'json' if kind == 'task-status' else 'md'}"


def _cross_references(area: Area, related: Sequence[str], directory: Path | None) -> tuple[str, ...]:
    """Related files that are about this area: by name, or a task-status with a workstream of it."""
    hits = []
    for rel in related:
        name = rel.rsplit("/", 1)[-1]
        if area.value in name.lower():
            hits.append(rel)
        elif directory is not None and name.startswith("task-status-") and name.endswith(".json"):
            try:
                data = json.loads((directory / name).read_text(encoding="utf-8"))
                ids = {str(w.get("id", "")).lower() for w in data.get("workstreams", []) if isinstance(w, dict)}
            except (OSError, ValueError, AttributeError):
                continue
            if any(area.value in i for i in ids):
                hits.append(rel)
    return tuple(hits)


def _decisions(
    previous: dict[str, Any] | None, workstreams: Sequence[Workstream], run: int, now: str, complete: bool
) -> tuple[dict[str, Any], ...]:
    """The previous runs' decisions plus this run's: the verdict and each status change."""
    before = [d for d in (previous or {}).get("decisions", []) if isinstance(d, dict)]
    old_status = {
        w.get("id"): w.get("status")
        for w in (previous or {}).get("workstreams", [])
        if isinstance(w, dict)
    }
    counts = count(f for w in workstreams for f in w.findings)
    verdict = (
        f"Run {run}: {counts['checks']} checks, {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['warning']} warning, {counts['error']} error"
    )
    new = [{"timestamp": now, "decision": verdict, "referencedAgentWork": None}]
    for w in workstreams:
        was = old_status.get(w.area.value)
        if was is not None and was != w.status:
            new.append(
                {
                    "timestamp": now,
                    "decision": f"Workstream {w.area.value}: {was} -> {w.status}",
                    "referencedAgentWork": w.cross_references[0] if w.cross_references else None,
                }
            )
    if complete:
        again = (previous or {}).get("status") == COMPLETED
        decision = (
            "Every check still passes: completion summary refreshed in completed/"
            if again
            else "Every check passed: completion summary written, files moved to completed/"
        )
        new.append({"timestamp": now, "decision": decision, "referencedAgentWork": None})
    return tuple((before + new)[-MAX_DECISIONS:])


def build_report(
    findings: Iterable[Finding],
    *,
    task_id: str,
    agent_id: str,
    project: str,
    description: str,
    started_at: str,
    updated_at: str,
    related_files: Sequence[str] = (),
    directory: Path | None = None,
    previous: dict[str, Any] | None = None,
) -> Report:
    unique = list(dict.fromkeys(scrub_finding(f) for f in findings))
    workstreams = tuple(
        Workstream(
            area,
            tuple(f for f in unique if f.area is area),
            _cross_references(area, related_files, directory),
        )
        for area in Area
    )
    run = int((previous or {}).get("runs", 0)) + 1
    complete = bool(unique) and not any(f.is_problem for f in unique)
    return Report(
        task_id=task_id,
        agent_id=agent_id,
        project=project,
        description=scrub(description),
        started_at=str((previous or {}).get("startedAt") or started_at),
        updated_at=updated_at,
        run=run,
        directory_name=directory.name if directory is not None else ".temp",
        related_files=tuple(related_files),
        workstreams=workstreams,
        decisions=_decisions(previous, workstreams, run, updated_at, complete),
    )
