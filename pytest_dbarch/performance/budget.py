"""What a query budget asks for: the marker's (and ``limit()``'s) arguments, validated.

``query_budget`` is written as a function so that a bad marker fails loudly at set-up
with the argument named, the way pytest-django validates its markers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_dbarch.findings import Finding

MARKER = (
    "query_budget(buffers=None, p95_ms=None, no_seq_scan=(), uses_index=None): budgets "
    "for every SELECT (and write) of the test's call phase, per statement shape: blocks "
    "touched, server-side p95 latency, tables never read whole, indexes that must be used"
)


class BudgetExceeded(AssertionError):
    """A ``dbarch_budget.limit()`` block went over its budget; ``findings`` says how.

    Its findings reach the report only if the exception ends the test: a test that
    expects it (``pytest.raises(BudgetExceeded)``) leaves no failed check behind.
    """

    def __init__(self, message: str, findings: list[Finding]) -> None:
        super().__init__(message)
        self.findings = findings


@dataclass(frozen=True)
class Budget:
    """Limits for each statement a budget covers; ``None`` / empty: not checked."""

    buffers: int | None = None
    p95_ms: float | None = None
    #: Tables that must not be read by a sequential scan; ``("*",)``: any table.
    no_seq_scan: tuple[str, ...] = ()
    uses_index: tuple[str, ...] = ()

    @property
    def any_table(self) -> bool:
        return "*" in self.no_seq_scan

    def forbids_seq_scan(self, table: str) -> bool:
        """``table`` as a plan names it (unqualified)."""
        return self.any_table or table in {name.rsplit(".", 1)[-1] for name in self.no_seq_scan}

    def describe(self) -> str:
        parts = []
        if self.buffers is not None:
            parts.append(f"buffers={self.buffers}")
        if self.p95_ms is not None:
            parts.append(f"p95_ms={self.p95_ms:g}")
        if self.no_seq_scan:
            parts.append("no_seq_scan=True" if self.any_table else f"no_seq_scan={list(self.no_seq_scan)!r}")
        if self.uses_index:
            shown = self.uses_index[0] if len(self.uses_index) == 1 else list(self.uses_index)
            parts.append(f"uses_index={shown!r}")
        return f"query_budget({', '.join(parts)})"


def query_budget(
    buffers: int | None = None,
    p95_ms: float | None = None,
    no_seq_scan: bool | str | Iterable[str] = (),
    uses_index: str | Iterable[str] | None = None,
) -> Budget:
    """The marker's signature; raises ValueError naming the bad argument."""
    if buffers is not None and (isinstance(buffers, bool) or not isinstance(buffers, int) or buffers < 0):
        raise ValueError(f"buffers={buffers!r}; give a whole number of blocks >= 0, e.g. buffers=50")
    if p95_ms is not None and (isinstance(p95_ms, bool) or not isinstance(p95_ms, (int, float)) or p95_ms <= 0):
        raise ValueError(f"p95_ms={p95_ms!r}; give milliseconds > 0, e.g. p95_ms=100")
    return Budget(
        buffers=buffers,
        p95_ms=float(p95_ms) if p95_ms is not None else None,
        no_seq_scan=_tables(no_seq_scan),
        uses_index=_names("uses_index", uses_index),
    )


def _tables(value: Any) -> tuple[str, ...]:
    if value is True:
        return ("*",)
    if value is False or value is None:
        return ()
    return _names("no_seq_scan", value)


def _names(argument: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    try:
        names = tuple(value)
    except TypeError:
        names = (value,)
    if not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(f"{argument}={value!r}; give a name or a list of names, e.g. {argument}='accounts'")
    return tuple(n.strip() for n in names)
