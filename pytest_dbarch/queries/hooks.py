"""pytest face of query capture: the call-phase window, markers, fixtures, findings.

Registered from ``plugin.py``. Capture hooks go into each database library as it is
imported (``watch_imports``, before conftest.py files load); every test's call phase
is recorded (a test that sends nothing pays for an empty list). After the call:
``max_queries``, N+1 detection and query lint turn the log into Findings; in
``error`` mode an N+1 fails the test with a message that needs no ``-v``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from pytest_dbarch.config import NPLUSONE_MODES
from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.fixtures import FindingRecorder
from pytest_dbarch.queries import callsite, capture, lint, nplusone, seen
from pytest_dbarch.queries.log import QueryLog, n_queries
from pytest_dbarch.stash import SETTINGS

MAX_QUERIES = "queries.max-queries"
NUM_QUERIES = "queries.num-queries"

_RULES = pytest.StashKey[nplusone.Rules]()
_LINT = pytest.StashKey[lint.LintRules]()
_LOG = pytest.StashKey[QueryLog]()
_MARKS = pytest.StashKey[dict[str, Any]]()


# --- marker signatures: a bad marker fails loudly at setup
def max_queries(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n={n!r}; give a whole number of statements >= 0, e.g. @pytest.mark.max_queries(10)")
    return n


def nplusone_marker(*, mode: str | None = None, threshold: int | None = None) -> dict[str, Any]:
    if mode is not None and mode not in NPLUSONE_MODES:
        raise ValueError(f"mode={mode!r}; choose one of {', '.join(NPLUSONE_MODES)}")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 2):
        raise ValueError(f"threshold={threshold!r}; give a whole number >= 2")
    return {"mode": mode, "threshold": threshold}


def _read_marks(item: pytest.Item) -> dict[str, Any]:
    marks: dict[str, Any] = {"max_queries": None, "nplusone": nplusone_marker()}
    for name, signature in (("max_queries", max_queries), ("nplusone", nplusone_marker)):
        marker = item.get_closest_marker(name)
        if marker is None:
            continue
        try:
            marks[name] = signature(*marker.args, **marker.kwargs)
            continue
        except (TypeError, ValueError) as exc:
            problem = f"pytest-dbarch: {item.nodeid}: bad @pytest.mark.{name}: {exc}"
        pytest.fail(problem, pytrace=False)
    return marks


def driver_hooks(values: tuple[str, ...] | list[str], source: str) -> tuple[str, ...]:
    """The ``dbarch_driver_hooks`` names, checked."""
    names = tuple(name for value in values for name in value.replace(",", " ").split())
    if names == ("none",):
        return ()
    unknown = [name for name in names if name not in capture.OPTIONAL_HOOKS]
    if unknown:
        raise pytest.UsageError(
            f"dbarch: dbarch_driver_hooks from {source} names {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(capture.OPTIONAL_HOOKS)}, or 'none'"
        )
    return names


def watch_imports(config: pytest.Config) -> None:
    """Hook the database libraries as they get imported, conftest.py files included.

    Runs before the settings are resolved, so it reads its one setting itself
    (env > ini > default, as ``config.resolve`` does); bad names wait for configure.
    """
    try:
        raw: Any = os.environ.get("DBARCH_DRIVER_HOOKS", "").split() or config.getini("dbarch_driver_hooks")
        names = driver_hooks(raw, "") if raw else capture.OPTIONAL_HOOKS
    except (pytest.UsageError, ValueError):
        return  # pytest_configure installs them, or reports the bad value with its source
    capture.install(names)


def pytest_configure(config: pytest.Config) -> None:
    settings = config.stash[SETTINGS]
    capture.install(driver_hooks(settings.driver_hooks, settings.sources.get("driver_hooks", "default")))
    try:
        ignores = tuple(nplusone.Ignore.parse(entry) for entry in settings.nplusone_ignore)
        baseline = nplusone.read_baseline(settings.nplusone_baseline, settings.rootdir)
        config.stash[_LINT] = lint.LintRules.from_settings(settings.large_tables, settings.query_lint_off)
    except ValueError as exc:
        raise pytest.UsageError(f"dbarch: {exc}") from None
    for name in ("nplusone_threshold", "repeated_query_threshold", "write_loop_threshold"):
        if getattr(settings, name) < 2:
            raise pytest.UsageError(
                f"dbarch: dbarch_{name} from {settings.sources[name]} is {getattr(settings, name)}; it must be 2 or more"
            )
    config.stash[_RULES] = nplusone.Rules(
        mode=settings.nplusone,
        threshold=settings.nplusone_threshold,
        repeated=settings.repeated_query_threshold,
        write_loop=settings.write_loop_threshold,
        ignore=ignores,
        baseline=baseline,
    )
    callsite.set_root(settings.rootdir)
    callsite.set_test_code(_test_files(config), _test_paths(config))


def _test_files(config: pytest.Config) -> tuple[str, ...]:
    return (*config.getini("python_files"), "conftest.py")


def _test_paths(config: pytest.Config) -> tuple[Path, ...]:
    """The ``testpaths`` directories named like test directories (``tests``, not ``src``)."""
    root = Path(config.rootpath)
    found = [callsite.test_tree(root / entry) for entry in config.getini("testpaths")]
    return tuple(path for path in found if path is not None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Test code is also every file of the collected modules' test trees: a helper in
    ``tests/utils/`` sends the test's statements, not the application's."""
    trees = {callsite.test_tree(item.path.parent) for item in session.items if getattr(item, "path", None)}
    trees.discard(None)
    callsite.set_test_code(_test_files(session.config), (*_test_paths(session.config), *trees))  # type: ignore[arg-type]


def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_MARKS] = _read_marks(item)


def _log_of(item: pytest.Item) -> QueryLog:
    log = item.stash.get(_LOG, None)
    if log is None:
        log = item.stash[_LOG] = QueryLog()
    return log


def _captured(item: pytest.Item) -> bool:
    """Whether the call phase is recorded: always, unless ``dbarch_capture = off``;
    then only for a test that asks for a count of its own (a ``max_queries`` or
    ``query_budget`` marker)."""
    if item.config.stash[SETTINGS].capture != "off":
        return True
    return any(item.get_closest_marker(name) is not None for name in ("max_queries", "query_budget"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    log = _log_of(item)
    if not _captured(item):
        return (yield)
    callsite.set_stop(getattr(getattr(item, "obj", None), "__code__", None))
    callsite.set_test_thread(threading.get_ident())
    try:
        with capture.recording(log):
            result = yield
    except BaseException:
        try:
            _check(item, log, test_failed=True)
        except Exception:  # the test's own failure is what the user must see
            pass
        raise
    finally:
        callsite.set_stop(None)
        callsite.set_test_thread(None)
    failures = _check(item, log, test_failed=False)
    if failures:
        raise pytest.fail.Exception("\n\n".join(failures), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    try:
        return (yield)
    finally:
        # Items live for the whole session: the statements must not.
        if _LOG in item.stash:
            del item.stash[_LOG]


def _check(item: pytest.Item, log: QueryLog, test_failed: bool) -> list[str]:
    """Findings for the test; the messages of those that fail it."""
    recorder = FindingRecorder(item)
    marks = item.stash.get(_MARKS, None) or _read_marks(item)
    failures: list[str] = []
    budget = marks["max_queries"]
    application = log.application()  # the test's own statements are never judged
    if budget is not None:
        finding = _budget_finding(MAX_QUERIES, application, budget, exact=False)
        recorder.add(finding)
        if finding.is_problem:
            failures.append(f"pytest-dbarch: @pytest.mark.max_queries({budget}): "
                            + application.failure(finding.title, _not_counted(log, application)))
    if not application.count or item.config.stash[SETTINGS].capture == "off":
        return failures
    seen.remember(application.statements)
    base = item.config.stash[_RULES]
    marked = marks["nplusone"]
    rules = nplusone.Rules(
        mode=marked["mode"] or base.mode,
        threshold=marked["threshold"] or base.threshold,
        repeated=base.repeated,
        write_loop=base.write_loop,
        ignore=base.ignore,
        baseline=base.baseline,
    )
    statements = log.statements
    if rules.mode != "off":
        findings = nplusone.detect(statements, rules)
        for finding in findings:
            recorder.add(finding)
        if not any(f.rule in nplusone.NPLUSONE_RULES for f in findings):
            recorder.add(Finding(nplusone.NO_NPLUSONE, Area.QUERIES, Status.PASSED,
                                 f"No N+1 queries ({_statements(application.count)} checked)"))
        failed = [f for f in findings if f.status is Status.FAILED]
        if failed and not test_failed:
            failures.append(_nplusone_message(failed, rules.mode))
    lint_rules = item.config.stash[_LINT]
    if lint_rules.enabled:
        problems = lint.lint(statements, lint_rules)
        for finding in problems:
            recorder.add(finding)
        if not problems:
            recorder.add(Finding(lint.NO_LINT, Area.QUERIES, Status.PASSED,
                                 f"Query lint clean ({_statements(application.count)} checked)"))
    return failures


def _not_counted(log: QueryLog, application: QueryLog) -> str | None:
    left_out = log.count - application.count
    if not left_out:
        return None
    return f"({_statements(left_out)} from test code not counted: the test, fixtures, conftest.py, test helpers)"


def _statements(count: int) -> str:
    return f"{count} statement" if count == 1 else f"{count} statements"


def _nplusone_message(failed: list[Finding], mode: str) -> str:
    lines = [f"pytest-dbarch: {len(failed)} N+1 quer{'y' if len(failed) == 1 else 'ies'} (nplusone mode={mode})"]
    for finding in failed:
        lines += ["", f"[{finding.rule}] {finding.title}"]
        lines += [f"    {line}" for line in finding.evidence.splitlines()]
        lines.append(f"    fix: {finding.fix}")
    lines += ["", "Accept a legacy one by adding its id to the dbarch_nplusone_baseline file, "
              "or mark the test @pytest.mark.nplusone(mode='warn')."]
    return "\n".join(lines)


def _budget_finding(rule: str, log: QueryLog, n: int, exact: bool) -> Finding:
    ok = log.count == n if exact else log.count <= n
    if exact:
        title = f"Expected to perform {n_queries(n)} but {log.count} were done"
    else:
        title = f"Expected to perform {n_queries(n)} or less but {log.count} were done"
    if ok:
        title = f"{n_queries(log.count)} within the budget of {'exactly ' if exact else ''}{n}"
    where = next((s.where for s in log.queries if s.where), "")
    return Finding(rule, Area.QUERIES, Status.PASSED if ok else Status.FAILED, title,
                   evidence="\n".join([log.summary(), *log.numbered(limit=50)]), where=where if not ok else "",
                   fix="" if ok else _budget_fix(log, n, exact))


def _budget_fix(log: QueryLog, n: int, exact: bool) -> str:
    """What to do about a count off its budget: name the repeat that explains it, if any."""
    change = "set the budget" if exact else "raise the budget"
    if exact and log.count < n:
        return f"the block ran fewer statements than expected: {change} to {log.count} if that is the intended change"
    repeats: dict[tuple[Any, ...], list[Any]] = {}
    for statement in log.queries:
        if statement.stack:
            repeats.setdefault((statement.shape.id, statement.stack), []).append(statement)
    worst = max(repeats.values(), key=len, default=[])
    if len(worst) > 1:
        loop = callsite.loop_site(worst[0].stack)
        where = f"the loop at {loop}" if loop else worst[0].where
        return (
            f"{worst[0].shape.fingerprint[:120]} ran {len(worst)} times from {where}: fetch those rows in one "
            f"query (selectinload / WHERE key IN (...)) before it, or {change} to {log.count} if the extra "
            "statements are intended"
        )
    return (
        f"remove or combine statements (a JOIN instead of a second SELECT, one INSERT of many rows), "
        f"or {change} to {log.count} if the extra statements are intended"
    )


# --- fixtures
@pytest.fixture
def dbarch_queries(request: pytest.FixtureRequest) -> QueryLog:
    """This test's query log: every statement of its call phase (SQLAlchemy on any
    driver; raw psycopg 3, psycopg2 and asyncpg). ``count``, ``queries``,
    ``statements``, ``round_trips``, ``by_kind()``,
    ``by_fingerprint()``, ``by_table()``, ``assert_count(n)``, ``assert_max(n)``,
    ``clear()``; ``with dbarch_queries.capture() as block:`` for a narrower window."""
    return _log_of(request.node)


@contextmanager
def _assert_queries(node: pytest.Item, num: int, exact: bool, info: str | None = None) -> Iterator[QueryLog]:
    with capture.recording() as block:
        yield block
    finding = _budget_finding(NUM_QUERIES if exact else MAX_QUERIES, block, num, exact)
    FindingRecorder(node).add(finding)
    if finding.is_problem:
        pytest.fail(block.failure(finding.title, info), pytrace=False)


@pytest.fixture
def dbarch_assert_num_queries(request: pytest.FixtureRequest) -> Callable[..., AbstractContextManager[QueryLog]]:
    """``with dbarch_assert_num_queries(3):`` fails unless the block runs exactly 3
    statements (like pytest-django's ``django_assert_num_queries``); the failure lists
    them, numbered, with call sites."""

    def assert_num_queries(num: int, info: str | None = None) -> AbstractContextManager[QueryLog]:
        return _assert_queries(request.node, num, True, info)

    return assert_num_queries


@pytest.fixture
def dbarch_assert_max_num_queries(request: pytest.FixtureRequest) -> Callable[..., AbstractContextManager[QueryLog]]:
    """``with dbarch_assert_max_num_queries(3):`` fails when the block runs more than 3
    statements (like pytest-django's ``django_assert_max_num_queries``)."""

    def assert_max_num_queries(num: int, info: str | None = None) -> AbstractContextManager[QueryLog]:
        return _assert_queries(request.node, num, False, info)

    return assert_max_num_queries
