"""Query budgets: blocks touched, plan facts and latency of the statements a test runs.

``plan`` reads EXPLAIN's JSON, ``explain`` runs EXPLAIN on the test's database without
changing it, ``latency`` judges samples, ``budget`` validates what a budget asks,
``measure`` gathers the evidence, ``evaluate`` turns it into Findings, ``baseline``
saves and compares figures, ``volume`` fills tables, ``fixture`` is ``dbarch_budget``
and ``hooks`` the pytest face.
"""

from pytest_dbarch.performance.fixture import BudgetExceeded, QueryBudgets
from pytest_dbarch.performance.latency import Latency
from pytest_dbarch.performance.plan import Plan

__all__ = ["BudgetExceeded", "Latency", "Plan", "QueryBudgets"]
