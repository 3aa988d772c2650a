"""Session state kept in ``config.stash``; never as attributes on ``config``."""

from __future__ import annotations

import os

import pytest

from pytest_dbarch.config import Settings
from pytest_dbarch.findings import Ledger

SETTINGS = pytest.StashKey[Settings]()
LEDGER = pytest.StashKey[Ledger]()


def worker_id(config: pytest.Config) -> str:
    """``gw0``, ``gw1``... under xdist, ``main`` otherwise: keys every name we create."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput:
        return str(workerinput["workerid"])
    return os.environ.get("PYTEST_XDIST_WORKER", "main")
