"""The ``dbarch`` section of pytest's terminal summary."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_dbarch.findings import Finding, Ledger, Status
from pytest_dbarch.report.scrub import scrub_finding

if TYPE_CHECKING:
    from pytest_dbarch.report.write import ReportFiles

_MARK = {Status.PASSED: "ok", Status.WARNING: "WARN", Status.FAILED: "FAIL", Status.ERROR: "ERROR",
         Status.IGNORED: "ignored"}


def summary_line(ledger: Ledger) -> str:
    counts = {status: 0 for status in Status}
    for finding in ledger:
        counts[finding.status] += 1
    parts = [f"{n} {status.value}" for status, n in counts.items() if n]
    return f"{len(ledger)} findings: " + ", ".join(parts)


def render(ledger: Ledger, verbose: bool) -> Iterable[str]:
    """One line per problem, grouped by area; passed checks and detail only with -v."""
    for area, findings in ledger.by_area().items():
        shown = [f for f in findings if verbose or f.is_problem]
        if not shown:
            continue
        yield f"{area.value}:"
        for finding in shown:
            yield from _render_one(finding, verbose)
    yield summary_line(ledger) + ("" if verbose else " (use -v for evidence and passed checks)")


def _render_one(finding: Finding, verbose: bool) -> Iterable[str]:
    finding = scrub_finding(finding)
    where = f" at {finding.where}" if finding.where else ""
    yield f"  {_MARK[finding.status]} [{finding.rule}] {finding.title}{where}"
    if finding.fix:
        yield f"      fix: {finding.fix}"
    if finding.nodeid:  # which test found it, with or without -v
        yield f"      test: {finding.nodeid}"
    if verbose:
        for line in finding.evidence.splitlines():
            yield f"      | {line}"


def report_line(files: ReportFiles, cwd: Path | None = None) -> str:
    """``dbarch report: .temp/checklist-ID.md (task ID, run 2, phase fix, ...)``; the
    path relative to ``cwd`` when it lies under it."""
    report = files.report
    if files.completed:
        state = "every check passed: moved to completed/"
    else:
        state = f"phase {report.phase}, {report.counts['passed']} of {report.counts['checks']} checks passed"
        if report.counts["stale"]:
            state += f", {report.counts['stale']} not re-checked in this run"
        if report.failing:
            state += f", {len(report.failing)} failing test{'s' if len(report.failing) != 1 else ''}"
    return f"dbarch report: {_shown(files.checklist, cwd)} (task {files.task_id}, run {report.run}, {state})"


def _shown(path: Path, cwd: Path | None) -> str:
    if cwd is None:
        return str(path)
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)
