"""pytest face of the disposable server: the header line (who runs it, who can reach
it, where its data lives, whether the cluster cache has the schema), a failed test's
clone kept on request, and a summary line saying how the server came about.

Registered from ``plugin.py``; importing this module loads nothing heavy.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from pytest_dbarch.stash import DATABASES, SETTINGS, session_databases

_STARTS = pytest.StashKey[list[str]]()
_KEPT = pytest.StashKey[list[str]]()
WORKER_OUTPUT = "dbarch_server"
KEPT_SECTION = "dbarch: kept database"


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STARTS] = []
    config.stash[_KEPT] = []


@pytest.hookimpl(trylast=True)  # after deselection: only tests that will run count
def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the server in the background when a test that will run needs it (see
    ``early``): the main thread goes on importing psycopg and setting up fixtures."""
    config = session.config
    option = config.option
    if option.collectonly or getattr(option, "setupplan", False) or DATABASES in config.stash:
        return
    from pytest_dbarch.postgres import early

    item = early.first_database_item(session.items)
    if item is None or not early.plugin_fixtures_in_use(item):
        return
    from pytest_dbarch.postgres.template import SchemaSource

    settings = config.stash[SETTINGS]
    source = SchemaSource.from_settings(settings)
    if early.suitable(settings, source):
        background = early.EarlyStart(settings, source)
        session_databases(config).early = background  # imports psycopg meanwhile


@pytest.hookimpl(trylast=True)  # the server's stop overlaps the other plugins' ends
def pytest_unconfigure(config: pytest.Config) -> None:
    """A background start nobody took (every test skipped, Ctrl-C, ``-x``) is released,
    and a background stop waited for: nothing outlives the session."""
    databases = config.stash.get(DATABASES, None)
    if databases is not None and databases.early is not None:
        databases.early.discard()
    shared = sys.modules.get("pytest_dbarch.postgres.shared")
    if shared is not None:
        shared.finish_releases()


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash[SETTINGS]
    if settings.dsn:
        return []
    from pytest_dbarch.postgres.accounts import planned_name
    from pytest_dbarch.postgres.paths import runtime_root
    from pytest_dbarch.postgres.server import Listen

    root, why = runtime_root(settings.runtime_dir)
    listen = Listen(settings.listen, settings.port).describe()
    line = f"dbarch server: runs as {planned_name(settings.run_as)}; {listen}; data under {root} ({why})"
    return [line, f"dbarch cache: {_cache_probe(settings)}"]


def _cache_probe(settings: Any) -> str:
    """Whether the cluster cache holds this session's schema, looked up without
    starting anything (a metadata source would need its models imported: that
    waits until the server starts)."""
    if settings.cache != "on":
        return "off (initdb and the schema build run every session)"
    from pytest_dbarch.errors import DbarchError
    from pytest_dbarch.postgres.binaries import find_binaries
    from pytest_dbarch.postgres.cache import ClusterCache
    from pytest_dbarch.postgres.cluster import cache_key
    from pytest_dbarch.postgres.paths import cache_root
    from pytest_dbarch.postgres.server import parse_options
    from pytest_dbarch.postgres.template import SchemaSource, fingerprint

    cache = ClusterCache(cache_root(settings.cache_dir))
    source = SchemaSource.from_settings(settings)
    if source.metadata:
        return f"{cache.root} (looked up when the server starts)"
    try:
        binaries = find_binaries(settings.pg_bin)
        options = parse_options(settings.server_options)
    except DbarchError:
        return f"{cache.root}"
    print_ = None if source.empty else fingerprint(source, settings.cache_key_files)
    if print_ is None and not source.empty:
        return f"{cache.root}: not used, the schema's inputs cannot be read"
    key = cache_key(binaries, options, print_)
    found = cache.lookup(key)
    what = "bare cluster" if source.empty else source.describe()
    state = "hit" if found else "miss (built and stored when the server starts)"
    return f"{cache.root}: {state} {key[:12]} ({what})"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed and item.config.stash[SETTINGS].keep_failed == "on":
        database = getattr(item, "funcargs", {}).get("_dbarch_database")
        databases = item.config.stash.get(DATABASES, None)
        if database is not None and databases is not None:
            kept = databases.keep_after(database, item.nodeid)
            if kept is not None:
                text = f"{kept.name} kept for debugging: psql '{kept.dsn}'"
            else:
                text = (f"not kept: {database.isolation} isolation rolls the test's writes back; "
                        "mark it @pytest.mark.dbarch(isolation='clone') to keep its database")
            report.sections.append((KEPT_SECTION, text))
    return report


class _Collector:
    """Kept databases and server facts, gathered where the summary is written (the
    xdist controller included: reports and worker output reach it)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for title, text in report.sections:
            if title == KEPT_SECTION and "kept for debugging" in text:
                self.config.stash[_KEPT].append(f"{report.nodeid}: {text}")

    @pytest.hookimpl(optionalhook=True)  # an xdist hook
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        text = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)
        if text:
            self.config.stash[_STARTS].append(f"{node.gateway.id}: {text}")


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.pluginmanager.register(_Collector(session.config), "dbarch-server-collector")


@pytest.hookimpl(tryfirst=True)  # before xdist sends the worker's output
def pytest_sessionfinish(session: pytest.Session) -> None:
    databases = session.config.stash.get(DATABASES, None)
    text = databases.started if databases is not None else None
    if not text:
        return
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[WORKER_OUTPUT] = text
    else:
        session.config.stash[_STARTS].append(text)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    starts, kept = config.stash.get(_STARTS, []), config.stash.get(_KEPT, [])
    if not kept and not (starts and config.get_verbosity() > 0):
        return
    if config.get_verbosity() > 0:
        for text in starts:
            terminalreporter.write_line(f"dbarch server: {text}")
    if kept:
        terminalreporter.write_line(
            f"dbarch: {len(kept)} failed tests' databases kept, the server with them; "
            "'dbarch server stop' ends it:"
        )
        for line in kept:
            terminalreporter.write_line(f"  {line}")
