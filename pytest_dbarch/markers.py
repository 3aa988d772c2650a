"""Marker signatures, written as functions so that a bad marker fails loudly at setup."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_dbarch.config import ISOLATION_MODES

MARKERS = (
    "dbarch(isolation='transaction'|'clone'): per-test database isolation "
    "(default from --dbarch-isolation / dbarch_isolation)",
    # --- queries (issue 3)
    "max_queries(n): fail the test when its call phase runs more than n statements",
    "nplusone(mode='error'|'warn'|'off', threshold=2): per-test N+1 detection "
    "(default from --dbarch-nplusone / dbarch_nplusone)",
)


def dbarch(*, isolation: str | None = None) -> dict[str, Any]:
    if isolation is not None and isolation not in ISOLATION_MODES:
        raise ValueError(
            f"isolation={isolation!r}; choose one of {', '.join(ISOLATION_MODES)}"
        )
    return {"isolation": isolation}


def read_dbarch(item: pytest.Item) -> dict[str, Any]:
    """The closest ``dbarch`` marker's arguments, validated."""
    marker = item.get_closest_marker("dbarch")
    if marker is None:
        return dbarch()
    try:
        return dbarch(*marker.args, **marker.kwargs)
    except (TypeError, ValueError) as exc:
        raise pytest.UsageError(f"{item.nodeid}: bad @pytest.mark.dbarch: {exc}") from None
