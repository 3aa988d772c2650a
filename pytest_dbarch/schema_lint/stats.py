"""Usage statistics (``pg_stat_*``) for the rules that judge a schema by its traffic:
unused indexes, tables read by sequential scans, dead-row bloat.

Statistics mean something only after real traffic: a fresh test database has none,
and a database restored or reset yesterday says every index is unused. So the figures
come with the age of the window they cover (since the last reset of the database's
statistics, or the server start when they were never reset), and ``usable`` decides
whether the stats rules run at all. Three set-based SELECTs, read-only safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

_WINDOW = """
    SELECT extract(epoch FROM now() - coalesce(d.stats_reset, pg_postmaster_start_time()))::float8 AS seconds
    FROM pg_stat_database d WHERE d.datname = current_database()"""
_TABLES = """
    SELECT s.relid AS oid, s.seq_scan, s.seq_tup_read, coalesce(s.idx_scan, 0) AS idx_scan,
           s.n_live_tup, s.n_dead_tup
    FROM pg_stat_user_tables s"""
_INDEXES = """
    SELECT s.relid AS oid, s.indexrelname AS name, s.idx_scan
    FROM pg_stat_user_indexes s"""


@dataclass(frozen=True)
class TableStats:
    seq_scan: int
    seq_tup_read: int
    idx_scan: int
    live_rows: int
    dead_rows: int


@dataclass(frozen=True)
class Stats:
    """Usage figures keyed by table oid (and index name), with the window they cover."""

    window_seconds: float
    tables: dict[int, TableStats] = field(default_factory=dict)
    index_scans: dict[tuple[int, str], int] = field(default_factory=dict)

    @property
    def window_days(self) -> float:
        return self.window_seconds / 86400

    def table(self, oid: int) -> TableStats | None:
        return self.tables.get(oid)

    def usable(self, mode: str, min_days: float) -> bool:
        """Whether the stats rules run: ``on`` always, ``off`` never, ``auto`` when the
        figures cover at least ``min_days`` of traffic."""
        if mode == "on":
            return True
        if mode == "off":
            return False
        return self.window_days >= min_days


def read(conn: psycopg.Connection[Any]) -> Stats:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_WINDOW, prepare=False)
        row = cur.fetchone()
        window = float(row["seconds"]) if row and row["seconds"] is not None else 0.0
        cur.execute(_TABLES, prepare=False)
        tables = {
            r["oid"]: TableStats(r["seq_scan"] or 0, r["seq_tup_read"] or 0, r["idx_scan"] or 0,
                                 r["n_live_tup"] or 0, r["n_dead_tup"] or 0)
            for r in cur.fetchall()
        }
        cur.execute(_INDEXES, prepare=False)
        indexes = {(r["oid"], r["name"]): r["idx_scan"] or 0 for r in cur.fetchall()}
    return Stats(window, tables, indexes)
