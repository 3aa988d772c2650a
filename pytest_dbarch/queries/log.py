"""The query log: what a test (or a block of it) sent to the database, and its counts.

Every statement stays in the log, the plugin's own and transaction control included,
so a failure can show the whole conversation; only application statements count
(an ``executemany`` is one statement with a row count). Round trips are a separate
figure: the counted statements plus transaction control (implicit BEGIN, COMMIT,
ROLLBACK, and the savepoint a ``commit()`` turns into under transaction isolation).
"""

from __future__ import annotations

from collections import Counter
from contextlib import AbstractContextManager

from pytest_dbarch.findings import Finding
from pytest_dbarch.origin import DRIVER, PLUGIN
from pytest_dbarch.queries import callsite, nplusone, recorder
from pytest_dbarch.queries.statement import Relationship, Statement, show_params

__all__ = ["QueryLog", "Relationship", "Statement", "n_queries", "show_params"]


#: How an uncounted statement is labelled in a numbered listing, by origin.
_NOTES = {PLUGIN: " [pytest-dbarch]", DRIVER: " [driver housekeeping]"}


def n_queries(n: int) -> str:
    """``1 query``, ``2 queries``."""
    return f"{n} query" if n == 1 else f"{n} queries"


class QueryLog:
    """The statements captured in one window: a test's call phase, or a ``with`` block."""

    def __init__(self) -> None:
        self.statements: list[Statement] = []

    def add(self, statement: Statement) -> None:
        self.statements.append(statement)

    def capture(self) -> AbstractContextManager[QueryLog]:
        """``with log.capture() as block:`` records a narrower window into a new log
        (the statements still reach this one too)."""
        return recorder.recording(QueryLog())  # type: ignore[return-value]

    def nplusone(self, threshold: int = 2) -> list[Finding]:
        """The N+1 findings (lazy loads and repeated queries) for what was captured so far."""
        rules = nplusone.Rules(mode="warn", threshold=threshold)
        return [f for f in nplusone.detect(self.statements, rules) if f.rule in nplusone.NPLUSONE_RULES]

    def application(self) -> QueryLog:
        """The statements without those test code sent (the test, fixtures, conftest.py,
        helpers of the test tree): what ``max_queries``, query lint and N+1 rules judge."""
        view = QueryLog()
        view.statements = [s for s in self.statements if not (s.counted and s.from_test_code)]
        return view

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
            raise AssertionError(self.failure(f"Expected to perform {n_queries(expected)} but {self.count} were done", info))

    def assert_max(self, maximum: int, info: str | None = None) -> None:
        if self.count > maximum:
            raise AssertionError(
                self.failure(f"Expected to perform {n_queries(maximum)} or less but {self.count} were done", info)
            )

    def failure(self, headline: str, info: str | None = None) -> str:
        lines = [headline + (f"\n{info}" if info else ""), self.summary(), "", *self.numbered()]
        return "\n".join(lines)

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.by_kind().items()))
        trips = self.round_trips
        return f"{n_queries(self.count)} ({kinds or 'none'}), {trips} round trip{'' if trips == 1 else 's'}"

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
            note = "" if statement.counted else _NOTES.get(statement.origin, " [transaction control]")
            many = f" [executemany x{statement.many}]" if statement.many else ""
            lines.append(f"{label} {sql}{many}{note}")
            params = statement.shown_params()
            if params and statement.counted:
                lines.append(f"       params: {params}")
            if statement.stack:
                lines.append(f"       at {' <- '.join(str(s) for s in callsite.sites(statement.stack[:3]))}")
        return lines
