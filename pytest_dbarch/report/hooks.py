"""pytest hooks of the outputs: the ``.temp/`` report, the CI gate, JUnit properties and
GitHub annotations. Registered from ``plugin.py``; runs its writing only on the xdist
controller (or a plain session), where every worker's findings have arrived.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pytest

from pytest_dbarch.findings import Finding
from pytest_dbarch.report import github_annotations as gh_annotations
from pytest_dbarch.report.gate import GateSyntaxError, parse_gate, summary_line, tripped
from pytest_dbarch.report.junit import rewrite_properties
from pytest_dbarch.report.terminal import report_line
from pytest_dbarch.report.tracking import RunTracker
from pytest_dbarch.stash import LEDGER, SETTINGS

if TYPE_CHECKING:
    from pytest_dbarch.report.write import ReportFiles

WORKER_OUTPUT = "dbarch_findings"
# Sessions that ended before their checks could finish leave the previous report alone.
_NO_REPORT = (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR)


def report_directory(config: pytest.Config) -> Path | None:
    """Where the report goes: ``None`` for ``off``; a command-line value is relative to
    the current directory, an ini/env/default one to the rootdir."""
    settings = config.stash[SETTINGS]
    value = (settings.report_dir or "").strip()
    if value.lower() in ("off", ""):
        return None
    base = (
        config.invocation_params.dir
        if settings.sources.get("report_dir") == "--dbarch-report-dir"
        else config.rootpath
    )
    return base / value


class ReportHooks:
    def __init__(self, config: pytest.Config) -> None:
        settings = config.stash[SETTINGS]
        try:
            self.gate = parse_gate(settings.gate)
        except GateSyntaxError as exc:
            raise pytest.UsageError(
                f"dbarch: dbarch_gate from {settings.sources.get('gate', 'default')} {exc}"
            ) from None
        self.config = config
        self.directory = report_directory(config)
        self.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.written: ReportFiles | None = None
        self.write_error = ""
        self.trips: list[Finding] = []
        self.tracker = RunTracker(config)

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, Any, Any]:
        # Before anyone reads the report: secrets out, readable JUnit properties in.
        report.user_properties = rewrite_properties(list(report.user_properties))
        self.tracker.saw(report)
        return (yield)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.tracker.collection_failed = True

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.tracker.collected(item.nodeid for item in session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.tracker.collected(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """xdist controller: findings a worker made outside any test arrive here."""
        output = getattr(node, "workeroutput", None) or {}
        self.config.stash[LEDGER].extend(Finding.from_json(s) for s in output.get(WORKER_OUTPUT, []))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        ledger = self.config.stash[LEDGER]
        if self.is_worker:
            self.config.workeroutput[WORKER_OUTPUT] = [f.to_json() for f in ledger]  # type: ignore[attr-defined]
            return
        self.trips = tripped(ledger, self.gate)
        if self.trips and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.directory is None or exitstatus in _NO_REPORT or self.config.option.collectonly:
            return
        if not len(ledger) and not self.tracker.outcomes:
            return  # nothing ran: nothing to re-check
        settings = self.config.stash[SETTINGS]
        from pytest_dbarch.report.write import write_report  # renderers: only when writing

        try:
            self.written = write_report(
                ledger,
                directory=self.directory,
                project=self.config.rootpath.name,
                agent_id=settings.agent_id,
                description=settings.report_description,
                started_at=self.started_at,
                reuse=settings.report_reuse == "on",
                run=self.tracker.run(),
            )
        except Exception as exc:  # the test results stand; say why the report did not
            self.write_error = (
                f"dbarch report NOT written to {self.directory}: {type(exc).__name__}: {exc} "
                "(the previous report is unchanged)"
            )

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker:
            return
        if self.written:
            terminalreporter.write_line(report_line(self.written, self.config.invocation_params.dir))
        if self.write_error:
            terminalreporter.write_line(self.write_error, red=True)
        if self.trips:
            terminalreporter.write_line(summary_line(self.trips, self.gate), red=True, bold=True)
        if gh_annotations.enabled():
            ledger = self.config.stash[LEDGER]
            for line in gh_annotations.workflow_commands(ledger, self.config.rootpath):
                terminalreporter.write_line(line)
