"""The distinct statements the session's tests ran, each with the first parameters seen
with it: the evidence for checks that judge the schema by the application's queries
(the schema lint's JSONB rule). Filled after every test's call phase; bounded, and only
short string parameters are kept (they name JSON keys; other values are not needed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pytest_dbarch.queries.log import Statement

MAX_STATEMENTS = 10_000
_MAX_PARAM_CHARS = 200
_seen: dict[str, Any] = {}


def _small(params: Any) -> Any:
    if isinstance(params, dict):
        return {k: v for k, v in params.items() if isinstance(v, str) and len(v) <= _MAX_PARAM_CHARS}
    if isinstance(params, (list, tuple)):
        return tuple(v if isinstance(v, str) and len(v) <= _MAX_PARAM_CHARS else None for v in params)
    return None


def remember(statements: Iterable[Statement]) -> None:
    """Keep the application's statements not seen before (up to MAX_STATEMENTS)."""
    for statement in statements:
        if statement.sql in _seen or not statement.counted or len(_seen) >= MAX_STATEMENTS:
            continue
        _seen[statement.sql] = _small(statement.params)


def statements() -> list[tuple[str, Any]]:
    """(sql, parameters) of every distinct statement remembered so far, in first-seen order."""
    return list(_seen.items())


def clear() -> None:
    _seen.clear()
