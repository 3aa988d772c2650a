"""Hand pytest-postgresql's server to pytest-dbarch, in one line of a conftest.py.

A project that starts PostgreSQL with pytest-postgresql's ``postgresql_proc`` (or reaches
one with ``postgresql_noproc``) keeps doing so, and writes::

    from pytest_dbarch.pytest_postgresql import dsn_from

    dbarch_dsn = dsn_from("postgresql_proc")

pytest-dbarch then uses that server as an existing one (as with ``--dbarch-dsn``): it
creates its own uniquely named template and test databases there and drops only those.
pytest-postgresql's own fixtures (``postgresql``, its janitor, its loaders) work side by
side on the same server, and its process fixture outlives ours, so ours are dropped
before the server stops. Nothing of pytest-postgresql is imported until the fixture runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_dbarch.redact import Redacted


def dsn_from(process_fixture: str = "postgresql_proc") -> Callable[..., Any]:
    """A ``dbarch_dsn`` fixture that gives pytest-dbarch the server of ``process_fixture``
    (the name of a pytest-postgresql ``postgresql_proc`` / ``postgresql_noproc`` fixture)."""

    @pytest.fixture(scope="session")
    def dbarch_dsn(request: pytest.FixtureRequest) -> Redacted:
        """The server of the pytest-postgresql fixture named in the conftest, for pytest-dbarch."""
        return executor_dsn(request.getfixturevalue(process_fixture))

    return dbarch_dsn


def executor_dsn(executor: Any) -> Redacted:
    """A libpq DSN for a pytest-postgresql executor (``PostgreSQLExecutor`` or ``NoopExecutor``):
    its host, port, user, password, options, and its maintenance database."""
    from psycopg.conninfo import make_conninfo

    params = {
        "host": executor.host,
        "port": executor.port,
        "user": executor.user,
        "password": getattr(executor, "password", None) or None,
        "options": getattr(executor, "options", None) or None,
        "dbname": getattr(executor, "maintenance_dbname", None) or "postgres",
    }
    return Redacted(make_conninfo(**{k: v for k, v in params.items() if v not in (None, "")}))
