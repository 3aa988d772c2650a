"""What one pytest run re-checked, for the task's ledger (``report/ledger.py``).

The tests whose call phase ran (their items are re-checked), each test's outcome (failing
tests keep a task open), and what the run's collection covered: a run collects "in full"
the directories and files its arguments name, unless an option narrows the selection
(``-k``, ``-m``, ``--lf``, ...) or collecting failed somewhere. A test the ledger knows
that such a collection did not find no longer exists; so does one whose file is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from pytest_dbarch.report.ledger import ERROR, FAILED, Run
from pytest_dbarch.report.scrub import scrub


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
