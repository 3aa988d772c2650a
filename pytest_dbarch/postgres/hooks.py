"""pytest face of the disposable server: the header line saying who runs it and who
can reach it.

Registered from ``plugin.py``; importing this module loads nothing heavy.
"""

from __future__ import annotations

import pytest

from pytest_dbarch.stash import SETTINGS


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash[SETTINGS]
    if settings.dsn:
        return []
    from pytest_dbarch.postgres.accounts import planned_name
    from pytest_dbarch.postgres.paths import runtime_root
    from pytest_dbarch.postgres.server import Listen

    root, why = runtime_root(settings.runtime_dir)
    listen = Listen(settings.listen, settings.port).describe()
    return [f"dbarch server: runs as {planned_name(settings.run_as)}; {listen}; data under {root} ({why})"]
