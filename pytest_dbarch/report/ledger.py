"""The task's ledger: every check item it holds, and what one run may change in it.

An item is one check's verdict on one thing, keyed by (test or source, rule, where,
title). Runs are often partial (``pytest tests/test_x.py``, ``-k``, ``--lf``, a
``dbarch`` command that covers only migrations), so a run changes only what it
re-checked:

- the items of every test whose call phase ran: the test's items become exactly what
  its checks reported this time (an open item they no longer report is closed);
- the items without a test, of the run's own source (``pytest`` or a ``dbarch``
  command): all of them when the run covered the whole source, else only the objects
  (``where``) it reported again;
- an item of a test that no longer exists (the run's collection shows it) is closed.

Everything else is kept as it was last seen, with that run's number: "stale", not
re-checked in this run. Tests that failed or errored are tracked the same way, so a
task completes only when no item is open and no test is failing, whichever runs
re-checked them. The ledger is stored next to the task's other files as
``ledger-{ID}.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_dbarch.findings import Finding
from pytest_dbarch.report.scrub import scrub_finding

FORMAT = 1
HISTORY = 20
FAILED, ERROR = "failed", "error"
Key = tuple[str, str, str, str, str]


def key_of(finding: Finding, source: str) -> Key:
    """An item's identity: a test's items belong to the test, the others to their source."""
    owner = ("test", finding.nodeid) if finding.nodeid else ("source", source)
    return (*owner, finding.rule, finding.where, finding.title)


@dataclass(frozen=True)
class Item:
    """A finding as the ledger keeps it: who produced it and when it was last seen."""

    finding: Finding
    source: str
    first_run: int
    last_run: int
    last_seen: str

    @property
    def key(self) -> Key:
        return key_of(self.finding, self.source)

    @property
    def is_problem(self) -> bool:
        return self.finding.is_problem

    def to_dict(self) -> dict[str, Any]:
        f = self.finding
        return {
            "rule": f.rule,
            "area": f.area.value,
            "status": f.status.value,
            "title": f.title,
            "where": f.where,
            "fix": f.fix,
            "test": f.nodeid,
            "evidence": f.evidence,
            "source": self.source,
            "firstRun": self.first_run,
            "lastRun": self.last_run,
            "lastSeenAt": self.last_seen,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Item:
        finding = Finding(
            rule=str(data["rule"]),
            area=data["area"],
            status=data["status"],
            title=str(data.get("title", "")),
            evidence=str(data.get("evidence", "")),
            where=str(data.get("where", "")),
            fix=str(data.get("fix", "")),
            nodeid=str(data.get("test", "")),
        )
        return cls(finding, str(data["source"]), int(data["firstRun"]), int(data["lastRun"]), str(data["lastSeenAt"]))


@dataclass(frozen=True)
class FailingTest:
    """A test that failed (or errored) when it last ran."""

    nodeid: str
    outcome: str
    run: int
    at: str


@dataclass(frozen=True)
class Run:
    """What one run looked at; it decides which items the run may update or close.

    ``tests_ran``: tests whose call phase ran (their items are re-checked).
    ``outcomes``: each test's outcome (``passed``, ``failed``, ``error``, ``skipped``).
    ``whole``: the run covered every test-less check of its ``source``.
    ``gone``: whether a test no longer exists (known from a covering collection).
    """

    source: str = "dbarch"
    tests_ran: frozenset[str] = frozenset()
    outcomes: Mapping[str, str] = field(default_factory=dict)
    whole: bool = True
    gone: Callable[[str], bool] = field(default=lambda nodeid: False, compare=False)
    label: str = ""

    @property
    def scope(self) -> str:
        return "whole" if self.whole else "partial"


@dataclass(frozen=True)
class TaskLedger:
    """The items, failing tests and run history of one task."""

    items: tuple[Item, ...] = ()
    failing: tuple[FailingTest, ...] = ()
    history: tuple[dict[str, Any], ...] = ()

    @property
    def runs(self) -> int:
        return int(self.history[-1]["run"]) if self.history else 0

    @property
    def open(self) -> list[Item]:
        return [i for i in self.items if i.is_problem]

    @property
    def complete(self) -> bool:
        """Every item passed and no test is failing (and there is something to pass)."""
        return bool(self.items) and not self.open and not self.failing

    def to_json(self, task_id: str) -> str:
        data = {
            "format": FORMAT,
            "taskId": task_id,
            "runs": list(self.history),
            "failingTests": [
                {"test": t.nodeid, "outcome": t.outcome, "run": t.run, "at": t.at} for t in self.failing
            ],
            "items": [i.to_dict() for i in self.items],
        }
        return json.dumps(data, indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> TaskLedger:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not a pytest-dbarch ledger of a known format")
        return cls(
            items=tuple(Item.from_dict(d) for d in data.get("items", [])),
            failing=tuple(
                FailingTest(str(d["test"]), str(d["outcome"]), int(d["run"]), str(d["at"]))
                for d in data.get("failingTests", [])
            ),
            history=tuple(d for d in data.get("runs", []) if isinstance(d, dict)),
        )


@dataclass(frozen=True)
class Merged:
    """The ledger after a run, and what the run changed."""

    ledger: TaskLedger
    run: int
    closed: tuple[Item, ...]  # open items this run closed: fixed, or their test is gone
    gone_tests: tuple[str, ...]

    def is_stale(self, item: Item) -> bool:
        return item.last_run < self.run


def merge(previous: TaskLedger, findings: Iterable[Finding], run: Run, number: int, now: str) -> Merged:
    """``previous`` updated by run ``number``'s ``findings``, by the rules in the module docstring."""
    fresh: dict[Key, Finding] = {}
    for finding in findings:
        finding = scrub_finding(finding)
        fresh[key_of(finding, run.source)] = finding
    objects = {k[3] for k in fresh if k[0] == "source" and k[1] == run.source and k[3]}

    def rechecked(item: Item) -> bool:
        if item.finding.nodeid:
            return item.finding.nodeid in run.tests_ran
        if item.source != run.source:
            return False
        return run.whole or (bool(item.finding.where) and item.finding.where in objects)

    before = {item.key: item for item in previous.items}
    kept: list[Item] = []
    closed: list[Item] = []
    gone: set[str] = set()
    for item in previous.items:
        if item.key in fresh:
            continue
        nodeid = item.finding.nodeid
        if nodeid and nodeid not in run.tests_ran and run.gone(nodeid):
            gone.add(nodeid)
        elif not rechecked(item):
            kept.append(item)
            continue
        if item.is_problem:
            closed.append(item)
    for key, finding in fresh.items():
        old = before.get(key)
        if old is not None and old.is_problem and not finding.is_problem:
            closed.append(old)
        kept.append(Item(finding, run.source, old.first_run if old else number, number, now))
    # A problem whose title changed (e.g. a count) but that is still reported is not closed.
    still = {(k[0], k[1], k[2], k[3]) for k, f in fresh.items() if f.is_problem}
    closed = [c for c in closed if c.key[:4] not in still]

    failing = {t.nodeid: t for t in previous.failing}
    for nodeid, outcome in run.outcomes.items():
        if outcome in (FAILED, ERROR):
            failing[nodeid] = FailingTest(nodeid, outcome, number, now)
        else:
            failing.pop(nodeid, None)
    for nodeid in list(failing):
        if nodeid not in run.outcomes and run.gone(nodeid):
            gone.add(nodeid)
            del failing[nodeid]

    outcomes = list(run.outcomes.values())
    record = {
        "run": number,
        "source": run.source,
        "scope": run.scope,
        "at": now,
        "tests": {
            "ran": len(run.tests_ran),
            "failed": outcomes.count(FAILED),
            "error": outcomes.count(ERROR),
        },
    }
    if run.label:
        record["label"] = run.label
    ledger = TaskLedger(tuple(kept), tuple(failing.values()), (*previous.history, record)[-HISTORY:])
    return Merged(ledger, number, tuple(closed), tuple(sorted(gone)))
