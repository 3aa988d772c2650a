"""Shared fixtures for the plugin's own tests.

Inner pytest runs (pytester) use the outer session's server through ``DBARCH_DSN``
unless a test is about the server's own life cycle, so most of them cost a few
database creations instead of an initdb each.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pytest_dbarch.postgres.info import ServerInfo


INNER_SESSION_FIXTURES = frozenset({"pytester", "external_pytester", "runtime_dir"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``inner`` every test that runs pytest sessions of its own: ``-m "not inner"``
    is the quick subset (the plugin's pieces against the real server, in-process)."""
    for item in items:
        if INNER_SESSION_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.inner)


@pytest.fixture(autouse=True)
def _inner_runs_are_not_xdist_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``pytest -n 2`` the outer worker's ``PYTEST_XDIST_*`` variables would reach
    every inner session, which would then take itself for an xdist worker (a shared
    server, worker-suffixed database names): the suite must mean the same with or
    without ``-n``."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def inner_dsn(dbarch_server: ServerInfo) -> str:
    """DSN of the outer server, for inner runs in external mode."""
    return dbarch_server.dsn()


@pytest.fixture
def external_pytester(pytester: pytest.Pytester, inner_dsn: str, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose inner runs use the outer server by DSN."""
    monkeypatch.setenv("DBARCH_DSN", inner_dsn)
    return pytester


@pytest.fixture
def admin(dbarch_server: ServerInfo) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the outer server's maintenance database."""
    with psycopg.connect(dbarch_server.dsn(), autocommit=True) as conn:
        yield conn


def database_names(admin: psycopg.Connection) -> set[str]:
    return {r[0] for r in admin.execute("SELECT datname FROM pg_database").fetchall()}


@pytest.fixture
def runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private DBARCH_RUNTIME_DIR that the server's user can traverse."""
    path = Path(tempfile.mkdtemp(prefix="dbarch-test-"))
    os.chmod(path, 0o755)
    monkeypatch.setenv("DBARCH_RUNTIME_DIR", str(path))
    monkeypatch.delenv("DBARCH_DSN", raising=False)
    yield path
    from pytest_dbarch.postgres import runtime

    for rundir in path.glob("pytest-dbarch-*/run-*"):
        runtime.destroy(rundir)  # a kept server that a failing test left running
    subprocess.run(["rm", "-rf", str(path)], check=False)


def processes_under(path: Path) -> list[str]:
    """Running processes (servers, guardians) whose command line names ``path``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def leftover_runs(path: Path) -> list[Path]:
    return sorted(path.glob("pytest-dbarch-*/run-*"))
