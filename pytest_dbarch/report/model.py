"""The task's ledger after a run → the report's model: one workstream per area.

Status rules (the same in every file):
- a workstream with no items is ``pending``;
- one with an ``error`` item (a check that could not run) is ``blocked``;
- one with a ``failed`` or ``warning`` item is ``in-progress`` (work to do);
- one whose items all passed is ``completed``.
Items not re-checked in this run count as they were last seen. The task is complete
when it has items, every one passed and no test is failing: warnings stay open items,
so "complete" always means every checklist box is ticked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.report.ids import file_name
from pytest_dbarch.report.ledger import FailingTest, Item, Merged
from pytest_dbarch.report.scrub import scrub

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
SHOWN_CLOSED = 5


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def item_text(finding: Finding) -> str:
    """A checklist line's words: what was checked, or, when open, the fix to make."""
    if finding.status in (Status.PASSED, Status.IGNORED):
        return finding.title
    if finding.status is Status.ERROR:
        action = f"Unblock: {finding.fix}" if finding.fix else "Unblock the check"
        return f"{action} — {finding.title}"
    if finding.fix:
        return f"{_capital(finding.fix)} — {finding.title}"
    return f"Resolve {finding.rule} — {finding.title}"


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


def count(items: Iterable[Item], run: int) -> dict[str, int]:
    """Items by status, plus how many were not re-checked in run ``run``."""
    # "ignored" (an ignore list matched) appears only when there is one.
    result = {"checks": 0, **{s.value: 0 for s in Status if s is not Status.IGNORED}, "stale": 0}
    for item in items:
        result["checks"] += 1
        result[item.finding.status.value] = result.get(item.finding.status.value, 0) + 1
        result["stale"] += item.last_run < run
    return result


@dataclass(frozen=True)
class Workstream:
    area: Area
    items: tuple[Item, ...]
    run: int
    cross_references: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return AREA_TITLES[self.area]

    @property
    def findings(self) -> list[Finding]:
        return [i.finding for i in self.items]

    @property
    def status(self) -> str:
        return status_of(self.findings)

    @property
    def counts(self) -> dict[str, int]:
        return count(self.items, self.run)

    @property
    def open(self) -> list[Item]:
        return [i for i in self.items if i.is_problem]


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
    last_run: dict[str, Any]
    directory_name: str
    related_files: tuple[str, ...]
    workstreams: tuple[Workstream, ...]
    failing: tuple[FailingTest, ...]
    closed: tuple[Item, ...]
    gone_tests: tuple[str, ...]
    decisions: tuple[dict[str, Any], ...]

    @property
    def items(self) -> list[Item]:
        return [i for w in self.workstreams for i in w.items]

    @property
    def findings(self) -> list[Finding]:
        return [i.finding for i in self.items]

    @property
    def counts(self) -> dict[str, int]:
        return count(self.items, self.run)

    @property
    def complete(self) -> bool:
        items = self.items
        return bool(items) and not any(i.is_problem for i in items) and not self.failing

    def is_stale(self, item: Item) -> bool:
        return item.last_run < self.run

    @property
    def stale(self) -> list[Item]:
        return [i for i in self.items if i.last_run < self.run]

    @property
    def status(self) -> str:
        """The task's own status: the workstream rules over all items; failing tests
        keep an otherwise completed task in progress."""
        status = status_of(self.findings)
        if self.failing and status in (PENDING, COMPLETED):
            return IN_PROGRESS
        return status

    @property
    def phase(self) -> str:
        return {PENDING: "audit", BLOCKED: "blocked", IN_PROGRESS: "fix", COMPLETED: "complete"}[self.status]

    @property
    def pending_areas(self) -> list[Workstream]:
        return [w for w in self.workstreams if w.status == PENDING]

    @property
    def run_line(self) -> str:
        """``Run 3 (pytest, partial: 2 tests ran, 1 failed)``: what this run covered."""
        last = self.last_run
        tests = last.get("tests", {})
        parts = [str(last.get("label") or last.get("source", "")), last.get("scope", "")]
        detail = ", ".join(p for p in parts if p)
        if tests.get("ran") or tests.get("failed") or tests.get("error"):
            ran = tests.get("ran", 0)
            detail += f": {ran:,} test{'' if ran == 1 else 's'} ran"
            if tests.get("failed"):
                detail += f", {tests['failed']:,} failed"
            if tests.get("error"):
                detail += f", {tests['error']:,} error{'' if tests['error'] == 1 else 's'}"
        return f"Run {self.run} ({detail})"

    def file_name(self, kind: str) -> str:
        return file_name(kind, self.task_id)


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


def _closed_line(item: Item, gone: Sequence[str]) -> str:
    f = item.finding
    why = "its test no longer exists" if f.nodeid in gone else "re-checked and no longer reported"
    test = f" (test {f.nodeid})" if f.nodeid else ""
    return f"{f.rule}: {f.title}{test}: {why}"


def _decisions(
    previous: dict[str, Any] | None,
    report: Report,
) -> tuple[dict[str, Any], ...]:
    """The previous runs' decisions plus this run's: the verdict, closed items, status changes."""
    before = [d for d in (previous or {}).get("decisions", []) if isinstance(d, dict)]
    old_status = {
        w.get("id"): w.get("status")
        for w in (previous or {}).get("workstreams", [])
        if isinstance(w, dict)
    }
    now = report.updated_at
    c = report.counts
    verdict = (
        f"{report.run_line}: {c['checks']} checks, {c['passed']} passed, {c['failed']} failed, "
        f"{c['warning']} warning, {c['error']} error"
    )
    if c["stale"]:
        verdict += f"; {c['stale']} not re-checked in this run"
    new = [{"timestamp": now, "decision": verdict, "referencedAgentWork": None}]
    if report.closed:
        shown = "; ".join(_closed_line(i, report.gone_tests) for i in report.closed[:SHOWN_CLOSED])
        more = f"; and {len(report.closed) - SHOWN_CLOSED} more" if len(report.closed) > SHOWN_CLOSED else ""
        new.append({"timestamp": now, "decision": f"Closed {len(report.closed)}: {shown}{more}", "referencedAgentWork": None})
    for w in report.workstreams:
        was = old_status.get(w.area.value)
        if was is not None and was != w.status:
            new.append(
                {
                    "timestamp": now,
                    "decision": f"Workstream {w.area.value}: {was} -> {w.status}",
                    "referencedAgentWork": w.cross_references[0] if w.cross_references else None,
                }
            )
    if report.complete:
        again = (previous or {}).get("status") == COMPLETED
        decision = (
            "Every check still passes: completion summary refreshed in completed/"
            if again
            else "Every check passed: completion summary written, files moved to completed/"
        )
        new.append({"timestamp": now, "decision": decision, "referencedAgentWork": None})
    elif report.failing and not any(i.is_problem for i in report.items):
        new.append(
            {
                "timestamp": now,
                "decision": f"Not complete: {len(report.failing)} failing tests; a task completes only "
                "when no test is failing",
                "referencedAgentWork": None,
            }
        )
    return tuple((before + new)[-MAX_DECISIONS:])


def build_report(
    merged: Merged,
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
    ledger = merged.ledger
    workstreams = tuple(
        Workstream(
            area,
            tuple(i for i in ledger.items if i.finding.area is area),
            merged.run,
            _cross_references(area, related_files, directory),
        )
        for area in Area
    )
    report = Report(
        task_id=task_id,
        agent_id=agent_id,
        project=project,
        description=scrub(description),
        started_at=str((previous or {}).get("startedAt") or started_at),
        updated_at=updated_at,
        run=merged.run,
        last_run=dict(ledger.history[-1]) if ledger.history else {},
        directory_name=directory.name if directory is not None else ".temp",
        related_files=tuple(related_files),
        workstreams=workstreams,
        failing=ledger.failing,
        closed=merged.closed,
        gone_tests=merged.gone_tests,
        decisions=(),
    )
    return replace(report, decisions=_decisions(previous, report))
