"""``dbarch_budget``: EXPLAIN with the facts budgets use, budgets for a block, data volume.

One object per test, on the test's database in its isolation: the shared connection
of transaction isolation (everything it does happens in a savepoint rolled back at
once), or a connection of its own for a clone (it sees what the test committed).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Finding, Status
from pytest_dbarch.performance.baseline import FIGURES_PROPERTY, Baseline, Figures, property_value
from pytest_dbarch.performance.budget import Budget, BudgetExceeded, query_budget
from pytest_dbarch.performance.evaluate import Context, evaluate, failure_message
from pytest_dbarch.performance.explain import ExplainError, Explainer, as_query
from pytest_dbarch.performance.latency import SAMPLES, Latency
from pytest_dbarch.performance.measure import Measured, measure, targets
from pytest_dbarch.performance.plan import Plan
from pytest_dbarch.performance.volume import fill_in_transaction, pick

if TYPE_CHECKING:
    import pytest

    from pytest_dbarch.postgres.isolation import TestDatabase
    from pytest_dbarch.queries.log import QueryLog


class QueryBudgets:
    """The value of the ``dbarch_budget`` fixture."""

    def __init__(
        self,
        node: pytest.Item,
        database: TestDatabase,
        context: Context = Context(),
        baseline: Baseline | None = None,
        tolerance: float = 0.1,
    ) -> None:
        self._node = node
        self._database = database
        self._context = context
        self._baseline = baseline
        self._tolerance = tolerance
        self._own: Any = None
        #: What this test measured, per statement id: saved with --dbarch-budget-save.
        self.figures: dict[str, Figures] = {}

    # --- the connection
    def _connection(self) -> Any:
        if self._database.isolation == "transaction":
            return self._database.shared_connection()
        if self._own is None or self._own.closed:
            import psycopg

            self._own = psycopg.connect(self._database.dsn)
        return self._own

    def _explainer(self) -> Explainer:
        return Explainer(self._connection(), own=self._database.isolation != "transaction")

    def close(self) -> None:
        if self._own is not None and not self._own.closed:
            self._own.close()
        self._own = None

    # --- public
    def explain(self, sql: Any, params: Any = None) -> Plan:
        """EXPLAIN (ANALYZE, BUFFERS) of one statement after a warm-up run, rolled back.

        ``sql``: text with psycopg placeholders (``%s`` + a tuple, ``%(name)s`` + a
        dict), a ``psycopg.sql`` object, or a SQLAlchemy ``text()`` / ``select()``. The
        plan has ``buffers``, ``seq_scans``, ``indexes``, ``rows_estimated``,
        ``rows_actual``, ``execution_ms``, ``misestimates`` and ``text``.
        """
        explainer = self._explainer()
        text, values = as_query(sql, params, explainer.connection)
        with explainer.session():
            return explainer.plan(text, values)

    def latency(self, sql: Any, params: Any = None, samples: int = SAMPLES) -> Latency:
        """Server-side execution times of ``samples`` runs after a warm-up (``.p95``,
        ``.median``, ``.fastest``, ``.cv``)."""
        if samples < 1:
            raise ValueError(f"samples={samples!r}; give 1 or more (30 for a p95)")
        explainer = self._explainer()
        text, values = as_query(sql, params, explainer.connection)
        with explainer.session():
            return explainer.latency(text, values, samples)

    @contextmanager
    def limit(
        self,
        buffers: int | None = None,
        p95_ms: float | None = None,
        no_seq_scan: Any = (),
        uses_index: Any = None,
    ) -> Iterator[QueryLog]:
        """``with dbarch_budget.limit(buffers=50, uses_index="ix_x"):`` budgets the
        statements the block runs (and only those); over budget raises
        ``BudgetExceeded`` with the fingerprint, call site, figures and plan."""
        from pytest_dbarch.queries.capture import recording

        budget = query_budget(buffers, p95_ms, no_seq_scan, uses_index)
        with recording() as block:
            yield block
        findings = self.judge(block.statements, budget)
        if any(f.status is Status.FAILED for f in findings):
            raise BudgetExceeded(
                failure_message(f"pytest-dbarch: dbarch_budget.limit() over budget: {budget.describe()}", findings),
                [f.for_test(self._node.nodeid) for f in findings],
            )
        self.record(findings)

    def fill(self, table: str, rows: int, **columns: Any) -> int:
        """Insert ``rows`` rows into ``table`` in this test's database and ANALYZE it; each
        column a SQL expression of ``i`` (1..rows), e.g. ``name="'Account ' || i"``;
        foreign keys with ``dbarch_budget.pick("accounts")``. Rolled back with the test."""
        from pytest_dbarch.fixtures import fail_on_dbarch_error

        connection = self._connection()
        try:
            filled = fill_in_transaction(connection, table, rows, columns)
        except DbarchError as exc:
            fail_on_dbarch_error(exc)
        if self._database.isolation != "transaction":
            connection.commit()  # a clone is the test's own: the application must see the rows
        return filled

    pick = staticmethod(pick)

    # --- used by the marker and limit()
    def judge(self, statements: list[Any], budget: Budget) -> list[Finding]:
        """Measure the statements a budget covers and turn the figures into findings."""
        measured = self._measure(targets(statements), budget)
        findings = evaluate(measured, budget, self._context)
        now = {m.target.id: Figures.of(m) for m in measured if m.plan is not None}
        if now:
            self.figures.update(now)
            self._publish()
            if self._baseline is not None:
                findings += self._baseline.compare(self._node.nodeid, now, self._tolerance)
        return findings

    def _measure(self, wanted: list[Any], budget: Budget) -> list[Measured]:
        if not wanted:
            return []
        explainer = self._explainer()
        try:
            with explainer.session():
                return [measure(explainer, target, budget) for target in wanted]
        except ExplainError as exc:
            return [Measured(target, problem=str(exc)) for target in wanted]

    def record(self, findings: list[Finding]) -> None:
        from pytest_dbarch.fixtures import FindingRecorder

        recorder = FindingRecorder(self._node)
        for finding in findings:
            recorder.add(finding)

    def _publish(self) -> None:
        """The figures ride on the test's report (and so reach the xdist controller)."""
        properties = self._node.user_properties
        properties[:] = [(n, v) for n, v in properties if n != FIGURES_PROPERTY]
        properties.append((FIGURES_PROPERTY, property_value(self._node.nodeid, self.figures)))
