"""The query log: what a test (or a block of it) sent to the database, and its counts.

Every statement stays in the log, the plugin's own and transaction control included,
so a failure can show the whole conversation; only application statements count
(an ``executemany`` is one statement with a row count). Round trips are a separate
figure: the counted statements plus transaction control (implicit BEGIN, COMMIT,
ROLLBACK, and the savepoint a ``commit()`` turns into under transaction isolation).
"""

from __future__ import annotations

import re
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from pytest_dbarch.findings import Finding
from pytest_dbarch.queries import callsite
from pytest_dbarch.queries.callsite import Stack
from pytest_dbarch.queries.fingerprint import TX, Shape, kind_of, shape_of
from pytest_dbarch.origin import APP, PLUGIN

_SECRET = re.compile(
    r"pass(?:word|wd|phrase)?|pwd|secret|token|credential|auth|salt|"
    r"(?:api|private|access|secret|signing|encryption)_?key|^key(?:_\d+)?$",
    re.I,
)
_MAX_PARAMS = 10
_MAX_VALUE_CHARS = 60


@dataclass(frozen=True)
class Relationship:
    """The ORM relationship a statement loads (from Session ``do_orm_execute``)."""

    name: str  # "Account.contacts"
    direction: str  # "ONETOMANY", "MANYTOONE", "MANYTOMANY"
    lazy: bool  # a lazy load on attribute access (not an eager loader's batch)
    parent: Any = None  # identity key of the object being loaded from (lazy loads)


@dataclass(eq=False, slots=True)
class Statement:
    """One statement as captured. ``stack`` holds the user frames, innermost first."""

    sql: str
    params: Any
    origin: str
    duration: float
    rows: int
    many: int  # rows of an executemany; 0 for a plain execute
    stack: Stack
    relationship: Relationship | None = None
    error: bool = False

    @property
    def kind(self) -> str:
        """select / insert / update / delete / tx / catalog / other (cached per text)."""
        return kind_of(self.sql)

    @property
    def counted(self) -> bool:
        return self.origin == APP and self.kind != TX

    @property
    def round_trip(self) -> bool:
        return self.origin != PLUGIN

    @property
    def shape(self) -> Shape:
        return shape_of(self.sql)

    @property
    def where(self) -> str:
        """``file:line`` of the innermost user frame, or '' when none was seen."""
        return str(callsite.sites(self.stack[:1])[0]) if self.stack else ""

    def param_key(self) -> str:
        """The parameter values as one comparable string (capped)."""
        return repr(self.params)[:500]

    def shown_params(self) -> str:
        if isinstance(self.params, (list, tuple)) and self.params and _SECRET.search(self.sql):
            # Positional values have no names to judge by: the statement's text decides.
            return f"*** ({len(self.params)} values hidden: the statement mentions a secret)"
        return show_params(self.params)


def _secret(name: object) -> bool:
    return _SECRET.search(str(name)) is not None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def show_params(params: Any) -> str:
    """Parameters for humans: at most 10 values, each cut short, secrets redacted."""
    if params is None:
        return ""
    if isinstance(params, dict):
        items = [f"{k}={'***' if _secret(k) else _short(v)}" for k, v in list(params.items())[:_MAX_PARAMS]]
        more = len(params) - _MAX_PARAMS
    elif isinstance(params, (list, tuple)):
        items = [_short(v) for v in params[:_MAX_PARAMS]]
        more = len(params) - _MAX_PARAMS
    else:
        return _short(params)
    if more > 0:
        items.append(f"... {more} more")
    return ", ".join(items)


class QueryLog:
    """The statements captured in one window: a test's call phase, or a ``with`` block."""

    def __init__(self) -> None:
        self.statements: list[Statement] = []

    def add(self, statement: Statement) -> None:
        self.statements.append(statement)

    def capture(self) -> AbstractContextManager[QueryLog]:
        """``with log.capture() as block:`` records a narrower window into a new log
        (the statements still reach this one too)."""
        from pytest_dbarch.queries.capture import recording

        return recording()

    def nplusone(self, threshold: int = 2) -> list[Finding]:
        """The N+1 findings (lazy loads and repeated queries) for what was captured so far."""
        from pytest_dbarch.queries import nplusone

        rules = nplusone.Rules(mode="warn", threshold=threshold)
        return [f for f in nplusone.detect(self.statements, rules) if f.rule in nplusone.NPLUSONE_RULES]

    def clear(self) -> None:
        """Forget what was captured so far (e.g. after the arrange step of a test)."""
        self.statements.clear()

    # --- figures
    @property
    def queries(self) -> list[Statement]:
        """The statements that count: the application's, without transaction control."""
        return [s for s in self.statements if s.counted]

    @property
    def count(self) -> int:
        return sum(1 for s in self.statements if s.counted)

    def __len__(self) -> int:
        return self.count

    @property
    def round_trips(self) -> int:
        return sum(1 for s in self.statements if s.round_trip)

    @property
    def rows_written(self) -> int:
        return sum(s.many or max(s.rows, 0) for s in self.queries if s.kind in ("insert", "update", "delete"))

    def by_kind(self) -> Counter[str]:
        return Counter(s.kind for s in self.queries)

    def by_fingerprint(self) -> Counter[str]:
        return Counter(s.shape.fingerprint for s in self.queries)

    def by_table(self) -> Counter[str]:
        return Counter(t for s in self.queries for t in s.shape.tables)

    @property
    def sql(self) -> list[str]:
        return [s.sql for s in self.queries]

    # --- assertions (pytest-django's names and messages, with call sites)
    def assert_count(self, expected: int, info: str | None = None) -> None:
        if self.count != expected:
            raise AssertionError(self.failure(f"Expected to perform {expected} queries but {self.count} were done", info))

    def assert_max(self, maximum: int, info: str | None = None) -> None:
        if self.count > maximum:
            raise AssertionError(
                self.failure(f"Expected to perform {maximum} queries or less but {self.count} were done", info)
            )

    def failure(self, headline: str, info: str | None = None) -> str:
        lines = [headline + (f"\n{info}" if info else ""), self.summary(), "", *self.numbered()]
        return "\n".join(lines)

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.by_kind().items()))
        return f"{self.count} queries ({kinds or 'none'}), {self.round_trips} round trips"

    def numbered(self, limit: int = 100, sql_chars: int = 300) -> list[str]:
        """Every statement, numbered; the uncounted ones marked, each with its call site."""
        lines: list[str] = []
        number = 0
        for statement in self.statements[: limit * 3]:
            if statement.counted:
                number += 1
                label = f"{number:>3}."
            else:
                label = "   -"
            if number > limit:
                lines.append(f"   ... {self.count - limit} more queries")
                break
            sql = " ".join(statement.sql.split())
            sql = sql if len(sql) <= sql_chars else sql[: sql_chars - 3] + "..."
            note = "" if statement.counted else (
                " [transaction control]" if statement.origin != PLUGIN else " [pytest-dbarch]"
            )
            many = f" [executemany x{statement.many}]" if statement.many else ""
            lines.append(f"{label} {sql}{many}{note}")
            params = statement.shown_params()
            if params and statement.counted:
                lines.append(f"       params: {params}")
            if statement.stack:
                lines.append(f"       at {' <- '.join(str(s) for s in callsite.sites(statement.stack[:3]))}")
        return lines
