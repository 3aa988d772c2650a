"""Session state kept in ``config.stash``; never as attributes on ``config``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from pytest_dbarch.config import Settings
from pytest_dbarch.findings import Ledger

SETTINGS = pytest.StashKey[Settings]()
LEDGER = pytest.StashKey[Ledger]()

if TYPE_CHECKING:
    from pytest_dbarch.postgres.databases import Databases

DATABASES = pytest.StashKey["Databases"]()


def session_databases(config: pytest.Config) -> Databases:
    """The session's one ``Databases`` (server, janitor), shared by the fixtures and the
    migration check items; created on first use, closed by whichever ends the session."""
    if DATABASES not in config.stash:
        from pytest_dbarch.postgres.databases import Databases

        config.stash[DATABASES] = Databases(config.stash[SETTINGS], worker_id(config))
    return config.stash[DATABASES]


def worker_id(config: pytest.Config) -> str:
    """``gw0``, ``gw1``... under xdist, ``main`` otherwise: keys every name we create."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput:
        return str(workerinput["workerid"])
    return os.environ.get("PYTEST_XDIST_WORKER", "main")
