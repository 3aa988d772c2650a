"""The condensed terminal view of one history's results: it fits a screen.

A long history can produce hundreds of findings (lint warnings on every statement of
every revision). Without ``-v`` the CLI shows counts per rule, then each failed or
erroring revision once with its problems one line each, then the history-wide
findings; warnings are only counted. ``-v`` shows every finding with its evidence.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from pytest_dbarch.findings import Status

if TYPE_CHECKING:
    from pytest_dbarch.migrations.suite import Results

_MARK = {Status.WARNING: "WARN", Status.FAILED: "FAIL", Status.ERROR: "ERROR"}
_ORDER = {Status.ERROR: 0, Status.FAILED: 1, Status.WARNING: 2}


def lines(results: Results) -> list[str]:
    findings = results.all()
    problems = [f for f in findings if f.is_problem]
    out: list[str] = []
    if problems:
        out.append("problems by rule:")
        counts = Counter((f.status, f.rule) for f in problems)
        for (status, rule), n in sorted(counts.items(), key=lambda item: (_ORDER[item[0][0]], item[0][1])):
            out.append(f"  {n:5d} {status.value:8s} {rule}")
    order = {rev.id: n for n, rev in enumerate(results.plan.revisions)}
    by_revision: dict[str, list] = {}
    history = []
    for (check, rev), group in results.findings.items():
        for finding in group:
            if not finding.is_problem:
                continue
            if rev:
                by_revision.setdefault(rev, []).append(finding)
            else:
                history.append(finding)
    serious = {rev: fs for rev, fs in by_revision.items() if any(f.status is not Status.WARNING for f in fs)}
    if serious:
        out.append(f"revisions with failures or errors ({len(serious)} of {len(results.plan.revisions)}):")
        for rev in sorted(serious, key=lambda r: order.get(r, len(order))):
            group = serious[rev]
            warnings = sum(1 for f in group if f.status is Status.WARNING)
            path = next((r.path for r in results.plan.revisions if r.id == rev), "")
            name = path.rsplit("/", 1)[-1]
            out.append(f"  {rev} {name}" + (f" (+{warnings} warnings)" if warnings else ""))
            for finding in sorted(group, key=lambda f: _ORDER[f.status]):
                if finding.status is Status.WARNING:
                    continue
                title = finding.title.removeprefix(f"revision {rev}: ")
                out.append(f"    {_MARK[finding.status]} [{finding.rule}] {title}")
    warned = len(by_revision) - len(serious)
    if warned:
        out.append(f"{warned} more revisions have warnings only")
    if history:
        out.append("whole history:")
        for finding in sorted(history, key=lambda f: _ORDER[f.status]):
            where = f" at {finding.where}" if finding.where else ""
            out.append(f"  {_MARK[finding.status]} [{finding.rule}] {finding.title}{where}")
            if finding.fix:
                out.append(f"      fix: {finding.fix}")
    statuses = Counter(f.status for f in findings)
    parts = [f"{statuses[s]} {s.value}" for s in Status if statuses[s]]
    out.append(f"{len(findings)} findings: {', '.join(parts)} (use -v for every finding with its evidence and fix)")
    return out
