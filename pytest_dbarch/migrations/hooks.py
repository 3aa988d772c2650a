"""Migration checks inside a pytest run: generated items and the ``dbarch_migrations`` fixture.

With ``dbarch_migrations = alembic.ini`` (or a SQL directory) every check becomes a
plain test item under one collector named after the history, e.g.
``alembic.ini::round-trip[0002]``, built with public collection APIs only
(``pytest.File.from_parent``, ``pytest.Item``). The history is read at collection (no
database); the checks run once, when the first item runs, and each item reports its
own Findings (attached as user properties, like ``dbarch_findings``).

Registered from ``plugin.py``; importing this module loads nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_dbarch.collection import in_scope
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import USER_PROPERTY, Finding, Status
from pytest_dbarch.stash import SETTINGS, session_databases

if TYPE_CHECKING:
    from pytest_dbarch.migrations.observe import StatementObserver
    from pytest_dbarch.migrations.suite import Plan, Results

_STATE = pytest.StashKey[dict[str, Any]]()


class MigrationCheckFailed(Exception):
    """A generated item's problem Findings, shown without a traceback."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__(findings[0].title)
        self.findings = findings


def _render(findings: Iterable[Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(finding.title)
        lines.append(f"  [{finding.rule}] {finding.status.value}" + (f" at {finding.where}" if finding.where else ""))
        lines += [f"  | {line}" for line in finding.evidence.splitlines()]
        if finding.fix:
            lines.append(f"  fix: {finding.fix}")
    return "\n".join(lines)


class MigrationCheck(pytest.Item):
    """One check of one revision (or of the whole history)."""

    def __init__(self, *, check: str, revision: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.revision = revision
        # Under pytest-xdist --dist loadgroup all checks share one worker, so the history
        # is walked once; with other modes each worker that gets one walks it itself.
        self.add_marker(pytest.mark.xdist_group("dbarch-migrations"))

    def runtest(self) -> None:
        results = _results(self.config)
        findings = [f.for_test(self.nodeid) for f in results.for_item(self.check, self.revision)]
        for finding in findings:
            self.user_properties.append((USER_PROPERTY, finding.to_json()))
        if not findings:
            broken = results.broken  # the walk itself stopped (env.py, no server): shown once
            if broken and self.check in ("history", "deploy-transaction"):
                raise MigrationCheckFailed(broken)
            pytest.skip(results.why_empty(self.check, self.revision) or _why_nothing(self.check))
        problems = [f for f in findings if f.status in (Status.FAILED, Status.ERROR)]
        if problems:
            raise MigrationCheckFailed(problems)
        if all(f.status is Status.WARNING for f in findings):
            pytest.skip(findings[0].title)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, MigrationCheckFailed):
            return _render(excinfo.value.findings)
        if isinstance(excinfo.value, DbarchError):
            return f"pytest-dbarch: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"migrations: {self.name}"


def _why_nothing(check: str) -> str:
    if check == "drift":
        return "no models to compare: env.py has no target_metadata and dbarch_migrations_metadata is not set (or dbarch_migrations_drift = off)"
    if check == "lock-safety":
        return "the lint and lock report saw nothing of this revision (not upgraded, or outside --since)"
    if check == "deploy-transaction":
        return "env.py never ran (the history could not be walked)"
    if check == "data-round-trip":
        return "data round trip off, or the revision was waived or could not be upgraded"
    return "not checked"


class MigrationHistory(pytest.File):
    """The collector the generated items hang from: the alembic.ini or SQL directory."""

    def collect(self) -> Iterable[pytest.Item]:
        from pytest_dbarch.migrations.suite import describe

        the_plan = _plan(self.config)
        for (check, revision), name in zip(the_plan.item_keys(), describe(the_plan.item_keys())):
            yield MigrationCheck.from_parent(self, name=name, check=check, revision=revision)


def _state(config: pytest.Config) -> dict[str, Any]:
    if _STATE not in config.stash:
        config.stash[_STATE] = {}
    return config.stash[_STATE]


def _plan(config: pytest.Config) -> Plan:
    from pytest_dbarch.migrations.suite import plan

    state = _state(config)
    if "plan" not in state:
        settings = config.stash[SETTINGS]
        state["plan"] = plan(settings.migrations or "", settings.rootdir)
    return state["plan"]  # type: ignore[no-any-return]


def _results(config: pytest.Config) -> Results:
    """Run every check once per session (on first use)."""
    from pytest_dbarch.migrations import suite

    state = _state(config)
    if "error" in state:
        raise state["error"]
    if "results" not in state:
        try:
            state["results"] = suite.run(
                _plan(config), session_databases(config), suite.options_from(config.stash[SETTINGS])
            )
        except DbarchError as exc:
            state["error"] = exc
            raise
    return state["results"]  # type: ignore[no-any-return]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = config.stash[SETTINGS]
    if not settings.migrations or settings.migrations == "off":
        return
    source = (Path(settings.rootdir) / settings.migrations).resolve()
    if not in_scope(config, source):
        return
    history = MigrationHistory.from_parent(session, path=source)
    items.extend(history.collect())


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """What did not go as planned in the run itself (a checking process that failed)."""
    results = _state(config).get("results")
    for note in getattr(results, "notes", ()):
        terminalreporter.write_line(f"pytest-dbarch migrations: {note}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """After the fixtures' teardown: close the databases if only migration items used them."""
    from pytest_dbarch.stash import DATABASES

    databases = session.config.stash.get(DATABASES, None)
    if databases is not None:
        databases.close()


class MigrationChecker:
    """What ``dbarch_migrations`` hands a test: run the checks by hand and assert."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def run(
        self,
        source: str | None = None,
        *,
        observers: Iterable[Callable[[], StatementObserver]] | None = None,
        **options: Any,
    ) -> Results:
        """Run every check on ``source`` (default: dbarch_migrations); the Findings are
        attached to this test. ``options``: heads, min_downgrade, data, drift, metadata."""
        from pytest_dbarch.migrations import suite

        config = self._request.config
        settings = config.stash[SETTINGS]
        source = source or settings.migrations
        if not source:
            raise pytest.UsageError(
                "dbarch_migrations.run() needs a migration source: pass one, or set "
                "dbarch_migrations = alembic.ini (or a SQL directory) in the ini file"
            )
        the_plan = suite.plan(source, settings.rootdir)
        try:
            results = suite.run(
                the_plan, session_databases(config), suite.options_from(settings, options), observers
            )
        except DbarchError as exc:
            raise pytest.fail.Exception(f"pytest-dbarch: {exc}", pytrace=False) from None
        node = self._request.node
        for finding in results.all():
            node.user_properties.append((USER_PROPERTY, finding.for_test(node.nodeid).to_json()))
        return results


@pytest.fixture
def dbarch_migrations(request: pytest.FixtureRequest) -> MigrationChecker:
    """Run the migration checks by hand: ``results = dbarch_migrations.run()``, then
    assert on ``results.problems()``, ``results.by_rule('migrations.round-trip')``..."""
    return MigrationChecker(request)
