"""Finding, the one value every check produces, and the ledger that collects them.

Checks only make Findings; outputs (terminal, reports, JUnit, CI annotations) only
render them. Findings travel on test reports as JSON user properties, so they reach
the xdist controller the same way they reach the local session.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace
from enum import Enum

USER_PROPERTY = "dbarch_finding"


class Status(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    WARNING = "warning"
    ERROR = "error"
    #: A finding the user's ignore list matched: shown as ignored, never as passed.
    IGNORED = "ignored"


class Area(str, Enum):
    DATABASES = "databases"
    QUERIES = "queries"
    MIGRATIONS = "migrations"
    MODELS = "models"
    SCHEMA = "schema"
    PERFORMANCE = "performance"
    CONCURRENCY = "concurrency"


@dataclass(frozen=True)
class Finding:
    """One check's verdict on one thing.

    ``rule`` is a stable id (``area.rule-name``) that baselines and waivers key on;
    ``where`` is a ``file:line`` or a migration revision; ``nodeid`` the test it came
    from, if any.
    """

    rule: str
    area: Area
    status: Status
    title: str
    evidence: str = ""
    where: str = ""
    fix: str = ""
    nodeid: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "area", Area(self.area))
        object.__setattr__(self, "status", Status(self.status))

    @property
    def is_problem(self) -> bool:
        return self.status not in (Status.PASSED, Status.IGNORED)

    def for_test(self, nodeid: str) -> Finding:
        return self if self.nodeid else replace(self, nodeid=nodeid)

    def to_json(self) -> str:
        # Not dataclasses.asdict: it deep-copies every field, and this runs for every
        # finding of every test.
        data = {name: getattr(self, name) for name in _FIELDS}
        data["area"], data["status"] = self.area.value, self.status.value
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Finding:
        return cls(**json.loads(text))


_FIELDS = tuple(f.name for f in fields(Finding))


class Ledger:
    """The session's findings, in the order they arrived, without duplicates."""

    def __init__(self) -> None:
        self._findings: dict[Finding, None] = {}

    def add(self, finding: Finding) -> None:
        self._findings.setdefault(finding, None)

    def extend(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self.add(finding)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self._findings)

    def __len__(self) -> int:
        return len(self._findings)

    def by_area(self) -> dict[Area, list[Finding]]:
        grouped: dict[Area, list[Finding]] = {}
        for finding in self:
            grouped.setdefault(finding.area, []).append(finding)
        return grouped

    def problems(self) -> list[Finding]:
        return [f for f in self if f.is_problem]
