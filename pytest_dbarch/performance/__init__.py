"""Query budgets: blocks touched, plan facts and latency of the statements a test runs.

``plan`` reads EXPLAIN's JSON, ``explain`` runs EXPLAIN on the test's database without
changing it, ``latency`` judges samples, ``budget`` validates what a budget asks,
``measure`` gathers the evidence, ``evaluate`` turns it into Findings, ``baseline``
saves and compares figures, ``volume`` fills tables, ``fixture`` is ``dbarch_budget``
and ``hooks`` the pytest face.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BudgetExceeded", "Latency", "Plan", "QueryBudgets"]

_HOMES = {
    "BudgetExceeded": "budget",
    "Latency": "latency",
    "Plan": "plan",
    "QueryBudgets": "fixture",
}


def __getattr__(name: str) -> Any:
    """The public names load their modules on first use: the package's pytest hooks are
    imported by every session, most of which never measure a query."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
