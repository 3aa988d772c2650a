"""Rules judged by traffic (``pg_stat_*``): unused indexes, tables read by sequential
scans, dead-row bloat (X04, X10, S07).

They run only when the statistics cover enough time (``stats.py``): never on a fresh
test database, not right after a restore or a statistics reset.
"""

from __future__ import annotations

from collections.abc import Iterable

from pytest_dbarch.schema_lint import ddl
from pytest_dbarch.schema_lint.facts import drop_index
from pytest_dbarch.schema_lint.options import LintOptions
from pytest_dbarch.schema_lint.rule import Schema, Violation

MIN_ROWS = 10_000  # below this, a sequential scan is as good as an index
MIN_INDEX_BYTES = 1 << 20
MIN_DEAD_SHARE = 0.2


def _age(days: float) -> str:
    return f"{days:.0f} days ago" if days >= 2 else f"{days * 24:.0f} hours ago"


def unused_index(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """X04: an index no query has used since the statistics began (not unique, not tiny)."""
    stats = schema.stats
    if stats is None:
        return
    for table in schema.indexed():
        for index in table.indexes:
            if index.unique or index.size_bytes < MIN_INDEX_BYTES:
                continue
            scans = stats.index_scans.get((table.oid, index.name))
            if scans is None or scans > 0:
                continue
            yield Violation(
                table.qualified,
                f"index {index.name} on {table.qualified} ({index.size_bytes // (1 << 20)} MB) was never used "
                f"since the statistics began {_age(stats.window_days)}",
                fix=drop_index(table, index) + " -- after checking replicas and rare jobs (statistics are per server)",
                evidence=f"{index.definition}\nidx_scan = 0 since the statistics began {stats.window_days:.1f} days ago",
                names=(index.name,),
            )


def seq_scan_heavy(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """X10: a large table read mostly by sequential scans (a missing index)."""
    stats = schema.stats
    if stats is None:
        return
    for table in schema.tables():
        figures = stats.table(table.oid)
        if figures is None or figures.live_rows < MIN_ROWS or figures.seq_scan < 100:
            continue
        share = figures.idx_scan / (figures.seq_scan + figures.idx_scan)
        if share >= 0.95:
            continue
        per_scan = figures.seq_tup_read // max(1, figures.seq_scan)
        yield Violation(
            table.qualified,
            f"{table.qualified} had {figures.seq_scan:,} sequential scans vs {figures.idx_scan:,} index scans "
            f"on {figures.live_rows:,} rows",
            fix=f"-- find the statements (pg_stat_statements, or dbarch_budget.explain) that scan "
            f"{ddl.relation(table.schema, table.name)} and index their WHERE columns: CREATE INDEX CONCURRENTLY ...",
            evidence=f"{share:.0%} of scans use an index; each sequential scan reads about {per_scan:,} rows",
        )


def bloat(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """S07: a table with a large share of dead rows (vacuum is not keeping up)."""
    stats = schema.stats
    if stats is None:
        return
    for table in schema.tables():
        figures = stats.table(table.oid)
        if figures is None or figures.live_rows + figures.dead_rows < MIN_ROWS:
            continue
        share = figures.dead_rows / (figures.live_rows + figures.dead_rows)
        if share < MIN_DEAD_SHARE:
            continue
        yield Violation(
            table.qualified,
            f"{share:.0%} of the rows of {table.qualified} are dead ({figures.dead_rows:,})",
            fix=f"VACUUM (VERBOSE, ANALYZE) {ddl.relation(table.schema, table.name)}; -- and lower its "
            "autovacuum_vacuum_scale_factor",
            evidence="dead rows are still read by scans and make the table and its indexes larger "
            "(an estimate from n_dead_tup; pgstattuple measures it exactly)",
        )
