"""Running EXPLAIN on the test's own database, without changing what the test sees.

Every EXPLAIN runs on the connection that sees the test's data (the shared connection
in transaction isolation, a connection of its own for a clone) inside a savepoint
that is rolled back, so an EXPLAIN ANALYZE of a write leaves nothing behind, and with
``max_parallel_workers_per_gather = 0`` and ``jit = off`` set locally: parallel
workers and JIT compilation are what make block counts and timings of one statement
differ between two runs. Statements keep their parameters: psycopg binds them server
side, and EXPLAIN plans with the values (a custom plan), as the application's query
was planned. Each run skips psycopg's automatic prepare, which would switch to a
generic plan after five runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_dbarch.origin import plugin_statements
from pytest_dbarch.performance.latency import SAMPLES, WARM_UP, Latency
from pytest_dbarch.performance.plan import Plan

_OUTER = "dbarch_budget"
_RUN = "dbarch_budget_run"
_LOCAL_SETTINGS = (
    "SET LOCAL max_parallel_workers_per_gather = 0",
    "SET LOCAL jit = off",
    # Never wait long behind a lock a test's other connection holds (clone isolation).
    "SET LOCAL lock_timeout = '5s'",
)
_MEASURED = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
_SHOWN = "EXPLAIN (ANALYZE, BUFFERS) "
_ESTIMATED = "EXPLAIN (FORMAT JSON) "
_TIMED = "EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF, FORMAT JSON) "


class ExplainError(Exception):
    """EXPLAIN could not run the statement; the message says why."""


@dataclass(frozen=True)
class IndexFacts:
    name: str
    table: str
    partial: bool
    columns: tuple[str, ...] = ()  # key columns (or expressions), in order


def as_query(statement: Any, params: Any = None, connection: Any = None) -> tuple[str, Any]:
    """SQL text and parameters in psycopg's style, from whatever the user handed in.

    psycopg text (``%s`` + a sequence, ``%(name)s`` + a mapping) passes through; a
    ``psycopg.sql.Composable`` is rendered; a SQLAlchemy ``text()`` or ``select()`` is
    compiled with the postgresql+psycopg dialect, its parameters run through the
    column types' bind processors (a ``TypeDecorator``'s ``process_bind_param``).
    """
    if isinstance(statement, str):
        return statement, params
    if isinstance(statement, bytes):
        return statement.decode(), params
    as_string = getattr(statement, "as_string", None)
    if as_string is not None and not hasattr(statement, "compile"):
        return str(as_string(connection)), params
    if hasattr(statement, "compile"):
        return _compile_sqlalchemy(statement, params)
    raise TypeError(
        f"cannot explain a {type(statement).__name__}: give SQL text with psycopg placeholders, "
        "a psycopg.sql object, or a SQLAlchemy text()/select()"
    )


def _compile_sqlalchemy(statement: Any, params: Any) -> tuple[str, Any]:
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    if params:
        statement = statement.params(params)
    compiled = statement.compile(dialect=PGDialect_psycopg(), compile_kwargs={"render_postcompile": True})
    values = dict(compiled.params)
    # Private but stable since SQLAlchemy 1.4; without it a TypeDecorator's value would
    # reach the server unconverted.
    processors = getattr(compiled, "_bind_processors", {}) or {}
    for name, value in values.items():
        processor = processors.get(name)
        if processor is not None and value is not None:
            values[name] = processor(value)
    return str(compiled), values or None


_TOKENS = re.compile(
    r"""--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|E'(?:[^'\\]|\\.|'')*'|"(?:[^"]|"")*"|(\$\w*\$).*?\1|(;)""",
    re.S | re.I,
)


def single_statement(sql: str) -> bool:
    """False when ``sql`` holds more than one statement: EXPLAIN must never run the rest."""
    bare = _TOKENS.sub(lambda m: ";" if m.group(2) else " ", sql)
    return sum(1 for part in bare.split(";") if part.strip()) <= 1


class Explainer:
    """EXPLAIN on one connection: plans, estimates under other settings, latency samples.

    Use inside ``with explainer.session():``, which opens the rolled-back savepoint.
    """

    def __init__(self, connection: Any, own: bool) -> None:
        self.connection = connection
        self.own = own  # our own connection (clone isolation): really roll back at the end
        self._indexes: dict[str, IndexFacts | None] = {}
        self._backend: tuple[int, str] | None = None

    @contextmanager
    def session(self) -> Iterator[Explainer]:
        from psycopg import pq

        conn = self.connection
        if conn.info.transaction_status == pq.TransactionStatus.INERROR:
            raise ExplainError(
                "the test's transaction is aborted (a statement failed and was not rolled "
                "back), so nothing can run on its connection"
            )
        with plugin_statements():
            self._execute(f"SAVEPOINT {_OUTER}")
            try:
                for setting in _LOCAL_SETTINGS:
                    self._execute(setting)
                yield self
            finally:
                self._execute(f"ROLLBACK TO SAVEPOINT {_OUTER}")
                self._execute(f"RELEASE SAVEPOINT {_OUTER}")
                if self.own:
                    import psycopg

                    psycopg.Connection.rollback(conn)

    def _execute(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        from psycopg.rows import tuple_row

        with self.connection.cursor(row_factory=tuple_row) as cur:
            cur.execute(sql, params, prepare=False)
            return cur.fetchall() if cur.description else []

    def _run(self, prefix: str, sql: str, params: Any, *settings: str) -> list[tuple[Any, ...]]:
        """One EXPLAIN in a savepoint of its own: a write's effects and any error vanish."""
        import psycopg

        if not single_statement(sql):
            raise ExplainError("the call sent several statements at once; EXPLAIN takes one")
        self._execute(f"SAVEPOINT {_RUN}")
        try:
            for setting in settings:
                self._execute(setting)
            return self._execute(prefix + sql, params)
        except psycopg.Error as exc:
            raise ExplainError(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}") from None
        finally:
            self._execute(f"ROLLBACK TO SAVEPOINT {_RUN}")

    def plan(self, sql: str, params: Any = None) -> Plan:
        """EXPLAIN ANALYZE with buffers, after one warm-up run; with the printed plan."""
        self._run(_MEASURED, sql, params)  # warm-up: caches, hint bits, catalog lookups
        document = self._run(_MEASURED, sql, params)[0][0]
        text = "\n".join(row[0] for row in self._run(_SHOWN, sql, params))
        return Plan.from_explain(document, text)

    def estimate(self, sql: str, params: Any = None, *settings: str) -> Plan:
        """The plan the planner picks under ``settings`` (e.g. enable_seqscan = off), not run."""
        document = self._run(_ESTIMATED, sql, params, *settings)[0][0]
        return Plan.from_explain(document)

    def latency(self, sql: str, params: Any = None, samples: int = SAMPLES) -> Latency:
        """Server-side execution times of ``samples`` runs after ``WARM_UP`` runs, and
        the server process's CPU time per run when it can be read."""
        times = []
        cpu_before = None
        for run in range(WARM_UP + samples):
            if run == WARM_UP:
                cpu_before = self._backend_cpu_ms()
            document = self._run(_TIMED, sql, params)[0][0]
            if run >= WARM_UP:
                times.append(float(document[0]["Execution Time"]))
        cpu_after = self._backend_cpu_ms()
        cpu = (cpu_after - cpu_before) / samples if cpu_before is not None and cpu_after is not None else None
        return Latency.of(times, cpu)

    def _backend_cpu_ms(self) -> float | None:
        """User + system CPU time of this connection's server process, from /proc, when
        that process runs on this machine (checked by its command line); else None."""
        if self._backend is None:
            pid, database = self._execute("SELECT pg_backend_pid(), current_database()")[0]
            self._backend = (int(pid), str(database))
        pid, database = self._backend
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        if not cmdline.startswith("postgres: ") or f" {database} " not in cmdline:
            return None  # a process of this machine with that pid, but not our server's backend
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        return ticks * 1000 / os.sysconf("SC_CLK_TCK")

    def index(self, name: str) -> IndexFacts | None:
        """The index called ``name`` (``schema.name`` allowed): its table, whether partial."""
        if name not in self._indexes:
            rows = self._execute(
                "SELECT c.relname, t.relname, i.indpred IS NOT NULL, "
                "ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k) "
                "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
                "WHERE i.indexrelid = to_regclass(%s)",
                (name,),
            )
            self._indexes[name] = IndexFacts(*rows[0][:3], tuple(rows[0][3])) if rows else None
        return self._indexes[name]

    def table_indexes(self, table: str) -> list[str]:
        """Names of the indexes on ``table`` (a plan's unqualified relation name)."""
        rows = self._execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname = %s AND pg_table_is_visible(t.oid) "
            "ORDER BY 1",
            (table,),
        )
        return [r[0] for r in rows]
