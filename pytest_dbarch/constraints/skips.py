"""The ``dbarch_constraints_skip`` lines: ``table: reason`` or ``table.constraint: reason``.

Kept apart from ``context.py`` so that pytest can validate the ini at configure time
without importing hypothesis or psycopg.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_dbarch.constraints.schema import TableSpec


@dataclass(frozen=True)
class Skip:
    target: str
    reason: str


def parse_skips(lines: Iterable[str]) -> list[Skip]:
    """``target: reason`` lines; a skip without a reason is refused (ValueError)."""
    skips = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        target, colon, reason = line.partition(":")
        if not colon or not reason.strip() or not target.strip():
            raise ValueError(
                f"dbarch_constraints_skip line {line!r} has no reason; write '<table>: <why>' or "
                "'<table>.<constraint or column>: <why>'"
            )
        skips.append(Skip(target.strip(), reason.strip()))
    return skips


@dataclass
class Skips:
    entries: list[Skip] = field(default_factory=list)

    def table(self, spec: TableSpec) -> str | None:
        for skip in self.entries:
            if skip.target in (spec.qualified, spec.name):
                return skip.reason
        return None

    def constraint(self, spec: TableSpec, name: str) -> str | None:
        for skip in self.entries:
            for prefix in (spec.qualified, spec.name):
                if skip.target == f"{prefix}.{name}":
                    return skip.reason
        return None
