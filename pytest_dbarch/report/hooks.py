"""pytest hooks of the outputs: the ``.temp/`` report, the CI gate, JUnit properties and
GitHub annotations. Registered from ``plugin.py``; runs its writing only on the xdist
controller (or a plain session), where every worker's findings have arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import Any

import pytest

from pytest_dbarch.findings import Finding
from pytest_dbarch.report import github_annotations as gh_annotations
from pytest_dbarch.report.gate import GateSyntaxError, parse_gate, summary_line, tripped
from pytest_dbarch.report.junit import rewrite_properties
from pytest_dbarch.report.ledger import ERROR, FAILED, Run
from pytest_dbarch.report.scrub import scrub
from pytest_dbarch.report.terminal import report_line
from pytest_dbarch.report.write import ReportFiles, now_iso, write_report
from pytest_dbarch.stash import LEDGER, SETTINGS

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
        self.started_at = now_iso()
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
        settings = self.config.stash[SETTINGS]
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
            for line in gh_annotations.annotations(self.config.stash[LEDGER], self.config.rootpath):
                terminalreporter.write_line(line)


class RunTracker:
    """What this pytest run re-checked: tests that ran, their outcomes, and whether its
    collection covered a test the ledger knows (to tell that a test no longer exists)."""

    # Options that select fewer tests than the paths name: no test's absence means anything.
    NARROWING = ("keyword", "markexpr", "deselect", "lf", "stepwise", "ignore", "ignore_glob", "pyargs")

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.ran: set[str] = set()
        self.outcomes: dict[str, str] = {}
        self.seen: set[str] | None = None
        self.collection_failed = False

    def saw(self, report: pytest.TestReport) -> None:
        if report.outcome not in ("passed", "failed", "skipped"):
            return  # e.g. pytest-rerunfailures' "rerun"
        nodeid = report.nodeid
        if report.when == "call":
            self.ran.add(nodeid)
        if report.failed:
            self.outcomes[nodeid] = FAILED if report.when == "call" else ERROR
        elif self.outcomes.get(nodeid) not in (FAILED, ERROR):
            self.outcomes[nodeid] = report.outcome

    def collected(self, nodeids: Iterable[str]) -> None:
        self.seen = (self.seen or set()) | set(nodeids)

    def roots(self) -> list[Path]:
        """The directories and files this run's collection covered in full ([] if narrowed)."""
        option = self.config.option
        if any(getattr(option, name, None) for name in self.NARROWING):
            return []
        base = self.config.invocation_params.dir
        return [(base / arg).resolve() for arg in self.config.args if "::" not in arg]

    def _covered(self, path: Path, roots: list[Path]) -> bool:
        return any(path == r or r in path.parents for r in roots)

    def whole(self) -> bool:
        """Did this run collect at least what the project's default run collects?"""
        if self.seen is None or self.collection_failed:
            return False
        root = self.config.rootpath.resolve()
        testpaths = self.config.getini("testpaths")
        defaults = [p.resolve() for pattern in testpaths for p in root.glob(pattern)] or [root]
        roots = self.roots()
        return bool(roots) and all(self._covered(p, roots) for p in defaults)

    def gone(self) -> Callable[[str], bool]:
        """Whether a test the ledger knows no longer exists: its file is gone, or this run
        collected its directory in full without finding it."""
        root = self.config.rootpath.resolve()
        roots = [] if self.seen is None or self.collection_failed else self.roots()
        seen = self.seen or set()

        def is_gone(nodeid: str) -> bool:
            path = root / nodeid.split("::", 1)[0]
            if path.suffix == ".py" and not path.exists():
                return True
            return nodeid not in seen and self._covered(path, roots)

        return is_gone

    def label(self) -> str:
        """What selected this run's tests, as a command line: ``pytest tests/test_x.py -k feed``."""
        option = self.config.option
        words = ["pytest"]
        if self.config.args_source == pytest.Config.ArgsSource.ARGS:
            words += self.config.args
        for flag, name in (("-k", "keyword"), ("-m", "markexpr")):
            if getattr(option, name, None):
                words += [flag, repr(getattr(option, name))]
        for flag, name in (("--lf", "lf"), ("--sw", "stepwise"), ("--deselect", "deselect"), ("--ignore", "ignore")):
            if getattr(option, name, None):
                words.append(flag)
        text = scrub(" ".join(words))
        return text if len(text) <= 100 else text[:97] + "..."

    def run(self) -> Run:
        return Run(
            source="pytest",
            tests_ran=frozenset(self.ran),
            outcomes=dict(self.outcomes),
            whole=self.whole(),
            gone=self.gone(),
            label=self.label(),
        )
