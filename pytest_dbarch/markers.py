"""Marker signatures, written as functions so that a bad marker fails loudly at setup."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
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


class MarkerError(ValueError):
    """A marker given arguments it does not take."""


def dbarch(*, isolation: str | None = None) -> dict[str, Any]:
    if isolation is not None and isolation not in ISOLATION_MODES:
        raise MarkerError(f"isolation={isolation!r}; choose one of {', '.join(ISOLATION_MODES)}")
    return {"isolation": isolation}


def read_dbarch(item: pytest.Item) -> dict[str, Any]:
    """The closest ``dbarch`` marker's arguments, validated (``MarkerError`` if bad)."""
    marker = item.get_closest_marker("dbarch")
    if marker is None:
        return dbarch()
    try:
        return dbarch(*marker.args, **marker.kwargs)
    except TypeError:
        raise MarkerError(_signature_problem(marker.args, marker.kwargs)) from None


def _signature_problem(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    usage = f"write @pytest.mark.dbarch(isolation={' or '.join(repr(m) for m in ISOLATION_MODES)})"
    unknown = [k for k in kwargs if k != "isolation"]
    if unknown:
        close = difflib.get_close_matches(unknown[0], ["isolation"], n=1)
        hint = " (did you mean isolation?)" if close else ""
        return f"unknown argument {', '.join(repr(k) for k in unknown)}{hint}; {usage}"
    return f"positional argument {', '.join(repr(a) for a in args)}; {usage}"


def marker_message(item: pytest.Item, exc: MarkerError) -> str:
    return f"pytest-dbarch: {item.nodeid}: bad @pytest.mark.dbarch: {exc}"
