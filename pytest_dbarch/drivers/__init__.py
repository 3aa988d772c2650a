"""Fixtures on the other drivers users run: psycopg2 and asyncpg.

``dbarch_url`` and the ``dbarch_*`` SQLAlchemy fixtures stay on psycopg 3. These give
the test's database through psycopg2 (``dbarch_psycopg2``, ``dbarch_psycopg2_engine``)
and asyncpg (``dbarch_asyncpg``, ``dbarch_asyncpg_engine``), inside the test's
isolation. Neither driver is imported unless one of these fixtures is used.
"""

from __future__ import annotations

import pytest


def register(pluginmanager: pytest.PytestPluginManager, asyncio_ready: bool) -> None:
    """Register the driver fixtures; the asyncpg ones need pytest-asyncio."""
    from pytest_dbarch.drivers import fixtures

    pluginmanager.register(fixtures, "dbarch-drivers")
    if asyncio_ready:
        from pytest_dbarch.drivers import async_fixtures as async_module
    else:
        from pytest_dbarch.drivers import async_missing as async_module  # type: ignore[no-redef]
    pluginmanager.register(async_module, "dbarch-drivers-async")
