"""What every worker sent, when, and how it ended: the evidence of a race.

Each worker connection appends an ``Action`` per statement, COMMIT and ROLLBACK, with
start and end times measured from the moment the workers were released. Findings quote
the actions of the transactions involved; the whole timeline shows how they
interleaved. Everything here is plain data, so the other modules can share it.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

STATEMENT, COMMIT, ROLLBACK = "statement", "commit", "rollback"

_SECRET_SQL = re.compile(r"pass(?:word|wd)|secret|token|credential|api_?key|private_?key", re.I)
_MAX_SQL = 200
_MAX_PARAM = 40
_MAX_LIST = 60


@dataclass(eq=False)
class Action:
    """One statement, COMMIT or ROLLBACK of one actor (a worker or a scheduled transaction)."""

    actor: str
    transaction: int  # the actor's transaction number, from 1
    kind: str  # statement / commit / rollback
    sql: str
    params: str  # shown form, secrets hidden
    start: float  # seconds since the release
    end: float | None = None  # None while running, or when it never returned
    error: str = ""  # SQLSTATE or exception class of a failure
    message: str = ""  # first line of the failure's message
    step: int | None = None  # schedule step that granted it

    @property
    def verb(self) -> str:
        """The statement's first word in lower case (select, update, commit, ...)."""
        words = self.sql.split(None, 1)
        return words[0].lower() if words else ""

    @property
    def locks_rows(self) -> bool:
        """Whether it takes row locks: writes and SELECT ... FOR UPDATE / SHARE."""
        if self.kind != STATEMENT:
            return False
        text = " ".join(self.sql.lower().split())
        return self.verb in ("update", "delete", "insert", "merge") or (
            " for update" in text or " for no key update" in text or " for share" in text or " for key share" in text
        )

    def line(self, times: bool = True) -> str:
        """One line of the timeline: time, actor, SQL, parameters, outcome."""
        text = compact_sql(self.sql)
        if len(text) > _MAX_SQL:
            text = text[: _MAX_SQL - 3] + "..."
        parts = [f"{self.start * 1000:9.2f} ms  " if times else "", f"{self.actor:<4} ", text]
        if self.params:
            parts.append(f"  [{self.params}]")
        if self.error:
            parts.append(f"  -> {self.error} {self.message}".rstrip())
        elif self.end is None:
            parts.append("  -> did not return")
        elif times and self.end - self.start >= 0.01:
            parts.append(f"  (took {(self.end - self.start) * 1000:.0f} ms)")
        return "".join(parts)


def show_params(sql: str, params: Any) -> str:
    """Parameters for humans: a few values, each cut short; hidden when the SQL
    mentions a password, token or other secret."""
    if params is None:
        return ""
    if _SECRET_SQL.search(sql):
        return "*** (hidden: the statement mentions a secret)"
    if isinstance(params, dict):
        items = [f"{k}={_short(v)}" for k, v in list(params.items())[:8]]
    elif isinstance(params, (list, tuple)):
        items = [_short(v) for v in params[:8]]
    else:
        return _short(params)
    return ", ".join(items) + (", ..." if len(params) > 8 else "")


def _short(value: Any) -> str:
    # UUIDs, decimals and timestamps read better (and shorter) without their repr().
    text = str(value) if isinstance(value, (uuid.UUID, Decimal, datetime.date)) else repr(value)
    return text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 3] + "..."


def compact_sql(sql: str) -> str:
    """One line of SQL, with an ORM's long SELECT list or INSERT value list folded: what
    a reader needs is the table, the WHERE and the FOR UPDATE at the end."""
    text = " ".join(sql.split())
    upper = text.upper()
    if upper.startswith("SELECT "):
        end = _top_level(upper, " FROM ", 7)
        if end > 0 and end - 7 > _MAX_LIST:
            columns = _split_top_level(text[7:end])
            text = f"SELECT {columns[0]}, ... ({len(columns)} columns){text[end:]}"
    elif upper.startswith("INSERT INTO "):
        start = _top_level(upper, " VALUES (", 12)
        if start > 0:
            open_at = start + len(" VALUES ")
            close_at = _closing(text, open_at)
            if close_at > 0 and close_at - open_at > _MAX_LIST:
                text = text[: open_at + 1] + "..." + text[close_at:]
    return text


def _top_level(upper: str, word: str, start: int) -> int:
    """Index of ``word`` outside parentheses and quotes, from ``start``; -1 if none."""
    depth, quote = 0, ""
    for i in range(start, len(upper)):
        char = upper[i]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and upper.startswith(word, i):
            return i
    return -1


def _closing(text: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return -1


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()]


@dataclass
class Timeline:
    """Every action of one run or schedule, in the order they started (thread-safe)."""

    actions: list[Action] = field(default_factory=list)
    released_at: float | None = None  # perf_counter() when the workers were released
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def release(self) -> None:
        """Mark time zero: the barrier opened (or the schedule began)."""
        if self.released_at is None:
            self.released_at = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - (self.released_at or time.perf_counter())

    def add(self, action: Action) -> Action:
        with self._lock:
            self.actions.append(action)
        return action

    def __iter__(self) -> Iterator[Action]:
        with self._lock:
            return iter(list(self.actions))

    def of(self, actor: str, transaction: int | None = None) -> list[Action]:
        return [a for a in self if a.actor == actor and (transaction is None or a.transaction == transaction)]

    def transaction_at(self, actor: str, moment: float) -> int | None:
        """The actor's transaction that was open at ``moment`` (its latest one begun by then)."""
        begun = [a.transaction for a in self if a.actor == actor and a.start <= moment]
        return max(begun) if begun else None

    def lines(self, actions: Iterable[Action] | None = None, limit: int = 60, times: bool = True) -> list[str]:
        chosen = list(self if actions is None else actions)
        lines = [a.line(times) for a in chosen[:limit]]
        if len(chosen) > limit:
            lines.append(f"... {len(chosen) - limit} more actions")
        return lines

    def max_overlap(self) -> int:
        """The most transactions that were open at the same moment (proof of concurrency)."""
        spans: dict[tuple[str, int], list[float]] = {}
        for action in self:
            end = action.end if action.end is not None else action.start
            span = spans.setdefault((action.actor, action.transaction), [action.start, end])
            span[0], span[1] = min(span[0], action.start), max(span[1], end)
        edges = sorted([(s, 1) for s, _ in spans.values()] + [(e, -1) for _, e in spans.values()],
                       key=lambda edge: (edge[0], edge[1]))
        # At equal times, ends sort before starts: touching transactions do not overlap.
        best = open_now = 0
        for _, delta in edges:
            open_now += delta
            best = max(best, open_now)
        return best
