"""The baseline gate: measured figures saved per test and statement, compared later.

``--dbarch-budget-save=FILE`` writes what the budgets measured (blocks first, then
p95 and plan facts) per test node id and statement id (the fingerprint's 8 hex
digits); ``--dbarch-budget-compare=FILE`` fails a test whose statement now touches
more blocks than its baseline by more than the tolerance. Blocks do not depend on the
machine, so that comparison can gate CI; a p95 that grew only warns, because it does.

The figures ride on each test's report as a user property (JSON), so under
pytest-xdist the controller receives every worker's and writes the file alone.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.performance.measure import Measured

BASELINE = "performance.baseline"
FIGURES_PROPERTY = "dbarch_budget_figures"
FORMAT = "pytest-dbarch query budgets"
VERSION = 1


@dataclass(frozen=True)
class Figures:
    """What was measured of one statement."""

    fingerprint: str
    buffers: int | None = None
    p95_ms: float | None = None
    cv: float | None = None
    seq_scans: tuple[str, ...] = ()
    indexes: tuple[str, ...] = ()
    rows: int | None = None

    @classmethod
    def of(cls, measured: Measured) -> Figures:
        plan = measured.plan
        latency = measured.latency
        return cls(
            fingerprint=measured.target.fingerprint[:500],
            buffers=plan.buffers if plan is not None else None,
            p95_ms=round(latency.p95, 4) if latency is not None else None,
            cv=round(latency.cv, 3) if latency is not None else None,
            seq_scans=plan.seq_scans if plan is not None else (),
            indexes=plan.indexes if plan is not None else (),
            rows=plan.rows_actual if plan is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seq_scans"], data["indexes"] = list(self.seq_scans), list(self.indexes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figures:
        return cls(
            fingerprint=str(data.get("fingerprint", "")),
            buffers=data.get("buffers"),
            p95_ms=data.get("p95_ms"),
            cv=data.get("cv"),
            seq_scans=tuple(data.get("seq_scans", ())),
            indexes=tuple(data.get("indexes", ())),
            rows=data.get("rows"),
        )


def property_value(nodeid: str, figures: dict[str, Figures]) -> str:
    """The user property that carries one test's figures to the controller."""
    return json.dumps({"nodeid": nodeid, "statements": {k: f.to_dict() for k, f in figures.items()}},
                      sort_keys=True)


def from_property(value: str) -> tuple[str, dict[str, Figures]]:
    data = json.loads(value)
    return str(data["nodeid"]), {k: Figures.from_dict(v) for k, v in data["statements"].items()}


@dataclass
class Baseline:
    """Figures per test node id and statement id."""

    tests: dict[str, dict[str, Figures]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path, source: str) -> Baseline:
        where = f"the query-budget baseline {path} (from {source})"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DbarchError(f"{where} does not exist",
                              f"save one first: pytest --dbarch-budget-save={path}") from None
        except (OSError, ValueError) as exc:
            raise DbarchError(f"{where} cannot be read: {exc}",
                              f"save it again: pytest --dbarch-budget-save={path}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("tests"), dict):
            raise DbarchError(f"{where} is not a baseline file written by --dbarch-budget-save",
                              f"save one: pytest --dbarch-budget-save={path}")
        if data.get("version") != VERSION:
            raise DbarchError(f"{where} has version {data.get('version')!r}; this pytest-dbarch reads {VERSION}",
                              f"save it again: pytest --dbarch-budget-save={path}")
        try:
            tests = {nodeid: {sid: Figures.from_dict(f) for sid, f in stmts.items()}
                     for nodeid, stmts in data["tests"].items()}
        except (AttributeError, TypeError) as exc:
            raise DbarchError(f"{where} is damaged: {exc}", f"save it again: pytest --dbarch-budget-save={path}") from None
        return cls(tests)

    def write(self, path: Path) -> None:
        """Atomically: a crash leaves the old file or the new one, never half of one."""
        document = {
            "format": FORMAT,
            "version": VERSION,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tests": {nodeid: {sid: f.to_dict() for sid, f in sorted(stmts.items())}
                      for nodeid, stmts in sorted(self.tests.items())},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, staged = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=1, sort_keys=False)
                out.write("\n")
            os.replace(staged, path)
        except BaseException:
            Path(staged).unlink(missing_ok=True)
            raise

    def statements(self) -> int:
        return sum(len(s) for s in self.tests.values())

    def compare(self, nodeid: str, now: dict[str, Figures], tolerance: float) -> list[Finding]:
        """Findings for ``now`` against this baseline: blocks fail, latency warns."""
        before = self.tests.get(nodeid)
        if before is None or not now:
            return []
        findings: list[Finding] = []
        lines: list[str] = []
        for sid, figures in now.items():
            old = before.get(sid)
            if old is None:
                lines.append(f"{sid}: new since the baseline  {_short(figures.fingerprint)}")
                continue
            lines.append(f"{sid}: {_pair('blocks', old.buffers, figures.buffers)}; "
                         f"{_pair('p95 ms', old.p95_ms, figures.p95_ms)}  {_short(figures.fingerprint)}")
            if _worse(old.buffers, figures.buffers, tolerance):
                findings.append(_regression(sid, old, figures, tolerance, blocks=True))
            elif _worse(old.p95_ms, figures.p95_ms, tolerance):
                findings.append(_regression(sid, old, figures, tolerance, blocks=False))
        if not findings:
            findings.append(Finding(
                BASELINE, Area.PERFORMANCE, Status.PASSED,
                f"Within {tolerance:.0%} of the baseline ({len(now)} statement{'s' if len(now) != 1 else ''})",
                evidence="\n".join(lines),
            ))
        return findings


def _worse(old: float | None, new: float | None, tolerance: float) -> bool:
    return old is not None and new is not None and new > old * (1 + tolerance) and new > old


def _pair(label: str, old: float | None, new: float | None) -> str:
    def show(value: float | None) -> str:
        return "-" if value is None else f"{value:g}"
    return f"{label} {show(old)} -> {show(new)}"


def _short(sql: str, limit: int = 70) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _regression(sid: str, old: Figures, new: Figures, tolerance: float, blocks: bool) -> Finding:
    if blocks:
        before, after, unit = old.buffers, new.buffers, "blocks"
    else:
        before, after, unit = old.p95_ms, new.p95_ms, "ms p95"
    assert before is not None and after is not None
    growth = (after - before) / before if before else float("inf")
    plan_change = []
    if tuple(old.seq_scans) != tuple(new.seq_scans) or tuple(old.indexes) != tuple(new.indexes):
        plan_change.append(f"plan changed: seq scans {list(old.seq_scans)} -> {list(new.seq_scans)}, "
                           f"indexes {list(old.indexes)} -> {list(new.indexes)}")
    return Finding(
        BASELINE, Area.PERFORMANCE, Status.FAILED if blocks else Status.WARNING,
        f"{_short(new.fingerprint)}: {after:g} {unit}, baseline {before:g} "
        f"(+{growth:.0%}, tolerance {tolerance:.0%})",
        evidence="\n".join([f"statement {sid}: {new.fingerprint}", *plan_change,
                            f"rows returned: {old.rows} -> {new.rows}"]),
        fix="Find what made it read more (the plan facts above; an index dropped or no longer "
            "matching, more rows); if the growth is intended, save a new baseline "
            "(--dbarch-budget-save)" if blocks else
            "Latency moves with the machine's load: check the blocks figure first; save a new "
            "baseline on the machine that compares",
    )
