"""pytest face of query budgets: the marker, the fixtures, the baseline gate.

Registered from ``plugin.py``. A test marked ``@pytest.mark.query_budget(...)`` has its
call phase's statements measured once the call has ended (fixture set-up is not
covered) and fails with a message that needs no ``-v``; findings and figures travel on
the test's report, so under pytest-xdist the controller sees them all and writes the
``--dbarch-budget-save`` file alone. Importing this module loads no database driver.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Status
from pytest_dbarch.performance.budget import MARKER, Budget, query_budget
from pytest_dbarch.performance.fixture import BudgetExceeded
from pytest_dbarch.stash import SETTINGS

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from pytest_dbarch.performance.baseline import Baseline, Figures
    from pytest_dbarch.performance.fixture import QueryBudgets
    from pytest_dbarch.performance.volume import Volume
    from pytest_dbarch.postgres.databases import Databases
    from pytest_dbarch.postgres.isolation import TestDatabase


@dataclass(frozen=True)
class Gate:
    """The session's budget settings, parsed once."""

    tolerance: float = 0.1
    latency_scale: float = 1.0
    save: Path | None = None
    compare: Path | None = None
    baseline: Baseline | None = None


_GATE = pytest.StashKey[Gate]()
_MARKED = pytest.StashKey[Budget]()
_BUDGETS = pytest.StashKey["QueryBudgets"]()


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _number(name: str, raw: str, source: str, minimum: float, strict: bool) -> float:
    text = str(raw).strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = float("nan")
    if not (value > minimum if strict else value >= minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise pytest.UsageError(f"dbarch: dbarch_{name} from {source} is {raw!r}; give a number {bound} "
                                f"(e.g. {'10%' if name == 'budget_tolerance' else '2.5'})")
    return value


def _path(config: pytest.Config, name: str) -> Path | None:
    settings = config.stash[SETTINGS]
    value = getattr(settings, name)
    if not value:
        return None
    # A command-line path is relative to where pytest was started; an ini one to the rootdir.
    from_cli = settings.sources.get(name, "").startswith("--")
    base = config.invocation_params.dir if from_cli else config.rootpath
    return (base / os.path.expanduser(value)).resolve()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    settings = config.stash[SETTINGS]
    tolerance = _number("budget_tolerance", settings.budget_tolerance, settings.sources.get("budget_tolerance", "default"), 0, strict=False)
    scale = _number("budget_latency_scale", settings.budget_latency_scale, settings.sources.get("budget_latency_scale", "default"), 0, strict=True)
    compare = _path(config, "budget_compare")
    baseline = None
    if compare is not None:
        from pytest_dbarch.performance.baseline import Baseline

        try:
            baseline = Baseline.read(compare, settings.sources.get("budget_compare", ""))
        except DbarchError as exc:
            raise pytest.UsageError(f"dbarch: {exc}") from None
    gate = Gate(tolerance, scale, _path(config, "budget_save"), compare, baseline)
    config.stash[_GATE] = gate
    if gate.save is not None and not _is_worker(config):
        config.pluginmanager.register(SaveFile(config, gate.save), "dbarch-budget-save")


def pytest_report_header(config: pytest.Config) -> list[str]:
    gate = config.stash.get(_GATE, None)
    if gate is None or (gate.save is None and gate.compare is None):
        return []
    parts = []
    if gate.compare is not None and gate.baseline is not None:
        parts.append(f"comparing with {gate.compare} ({gate.baseline.statements()} statements, "
                     f"tolerance {gate.tolerance:.0%})")
    if gate.save is not None:
        parts.append(f"saving figures to {gate.save}")
    return [f"dbarch budgets: {'; '.join(parts)}"]


# --- fixtures
@pytest.fixture(autouse=True)
def _dbarch_query_budget_marker(request: pytest.FixtureRequest) -> None:
    """Reads ``@pytest.mark.query_budget`` and brings in ``dbarch_budget`` for it."""
    marker = request.node.get_closest_marker("query_budget")
    if marker is None:
        return
    try:
        budget = query_budget(*marker.args, **marker.kwargs)
    except (TypeError, ValueError) as exc:
        problem = f"pytest-dbarch: {request.node.nodeid}: bad @pytest.mark.query_budget: {exc}"
    else:
        request.node.stash[_MARKED] = budget
        request.getfixturevalue("dbarch_budget")
        return
    pytest.fail(problem, pytrace=False)


@pytest.fixture
def dbarch_budget(request: pytest.FixtureRequest, _dbarch_database: TestDatabase) -> Iterator[QueryBudgets]:
    """Query budgets on this test's database: ``.explain(sql, params)`` -> plan
    (``buffers``, ``seq_scans``, ``indexes``, ``rows_estimated``, ``rows_actual``,
    ``text``); ``with .limit(buffers=..., p95_ms=..., no_seq_scan=[...], uses_index=...):``
    budgets the block's statements; ``.latency(sql)``; ``.fill(table, rows, **columns)``."""
    from pytest_dbarch.performance.evaluate import Context
    from pytest_dbarch.performance.fixture import QueryBudgets

    gate = request.config.stash[_GATE]
    budgets = QueryBudgets(
        request.node,
        _dbarch_database,
        Context(latency_scale=gate.latency_scale, shared_cpu=_is_worker(request.config)),
        gate.baseline,
        gate.tolerance,
    )
    request.node.stash[_BUDGETS] = budgets
    try:
        yield budgets
    finally:
        budgets.close()
        del request.node.stash[_BUDGETS]


@pytest.fixture(scope="session")
def dbarch_volume(_dbarch_databases: Databases, dbarch_template: str) -> Callable[[], AbstractContextManager[Volume]]:
    """Data volume for a module- or class-scoped fixture: ``with dbarch_volume() as v:
    v.fill("accounts", 20_000, name="'Account ' || i")`` commits rows (then ANALYZE) to
    the database transaction-isolated tests share; the block's end deletes exactly them."""
    from pytest_dbarch.fixtures import fail_on_dbarch_error
    from pytest_dbarch.performance.volume import volume

    @contextmanager
    def filled() -> Iterator[Volume]:
        database = _dbarch_databases.for_test(dbarch_template, "transaction")
        _dbarch_databases.finish_test(database, "dbarch_volume")  # hands back the idle connection
        try:
            with volume(database.dsn, database.name) as rows:
                yield rows
        except DbarchError as exc:
            fail_on_dbarch_error(exc)

    return filled


# --- the marker's verdict, after the call
def _record(item: pytest.Item, findings: list[Any]) -> None:
    from pytest_dbarch.fixtures import FindingRecorder

    recorder = FindingRecorder(item)
    for finding in findings:
        recorder.add(finding)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    # tryfirst: the outermost wrapper, so the query capture's window has closed and the
    # statements EXPLAIN sends are not part of the test's log.
    try:
        result = yield
    except BudgetExceeded as exc:  # a limit() block's, not caught by the test
        _record(item, exc.findings)
        raise
    budget = item.stash.get(_MARKED, None)
    budgets = item.stash.get(_BUDGETS, None)
    if budget is None or budgets is None:
        return result
    from pytest_dbarch.performance.evaluate import failure_message
    from pytest_dbarch.queries.hooks import _log_of

    findings = budgets.judge(_log_of(item).statements, budget)
    _record(item, findings)
    if any(f.status is Status.FAILED for f in findings):
        raise pytest.fail.Exception(
            failure_message(f"pytest-dbarch: @pytest.mark.{budget.describe()} exceeded", findings), pytrace=False
        )
    return result


# --- the baseline file, on the controller
class SaveFile:
    """Gathers every test's figures from the reports (all workers' under xdist) and
    writes ``--dbarch-budget-save`` once, at the end of the session."""

    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        self.path = path
        self.collected: dict[str, dict[str, Figures]] = {}
        self.written = ""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from pytest_dbarch.performance.baseline import FIGURES_PROPERTY, from_property

        for name, value in report.user_properties:
            if name == FIGURES_PROPERTY:
                nodeid, figures = from_property(str(value))
                self.collected.setdefault(nodeid, {}).update(figures)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
            self.written = f"dbarch budgets: {self.path} NOT saved (the session was interrupted)"
            return
        from pytest_dbarch.performance.baseline import Baseline

        baseline = Baseline(self.collected)
        try:
            baseline.write(self.path)
        except OSError as exc:
            self.written = f"dbarch budgets: could NOT save {self.path}: {exc}"
            return
        self.written = (f"dbarch budgets: saved {baseline.statements()} statements of "
                        f"{len(baseline.tests)} tests to {self.path}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.written:
            terminalreporter.write_line(self.written, red="NOT" in self.written)
