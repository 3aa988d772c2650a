"""How long the whole schema lint takes on a generated 200-table schema (target: 1 s).

Generates N tables (default 200) with the shapes real schemas have: foreign keys (some
without an index), composite and partial indexes (some redundant), JSONB, enums,
CHECKs, timestamps with and without time zone, comments, a few partitioned tables and
a materialized view. Then times, on one disposable server, in the same run (median of
``--repeat`` runs):

- pytest-dbarch: the catalog read (ten set-based SELECTs), every rule (opt-in ones
  included) and the parity rules against models of all N tables: the whole lint;
- the same split: catalog read alone, rules alone;
- SQLAlchemy's ``MetaData.reflect()`` of the same schema: what a Python linter built on
  the inspector pays (per-table queries) before it can check anything.

    python benchmarks/bench_schema_lint.py [--tables 200] [--repeat 5] [--dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def schema_sql(count: int) -> str:
    """DDL for ``count`` tables that reference earlier ones."""
    parts = ["CREATE TYPE status AS ENUM ('new', 'active', 'closed');"]
    for n in range(count):
        t = f"t{n:03d}"
        columns = [
            "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY" if n % 7 else "id serial PRIMARY KEY",
            "name varchar(120) NOT NULL",
            "status status NOT NULL DEFAULT 'new'",
            "doc jsonb NOT NULL DEFAULT '{}'",
            "amount numeric(12, 2) CHECK (amount >= 0)",
            "created_at timestamptz NOT NULL DEFAULT now()",
            "updated_at " + ("timestamp" if n % 11 == 0 else "timestamptz"),
            "deleted_at timestamptz",
        ]
        refs = [m for m in (n - 1, n // 2, n // 3) if 0 <= m < n]
        for i, m in enumerate(dict.fromkeys(refs)):
            columns.append(f"ref{i}_id bigint REFERENCES t{m:03d} (id) ON DELETE CASCADE")
        parts.append(f"CREATE TABLE {t} ({', '.join(columns)});")
        parts.append(f"COMMENT ON TABLE {t} IS 'generated table {n}';")
        for i, m in enumerate(dict.fromkeys(refs)):
            if (n + i) % 3:  # two in three foreign keys indexed
                parts.append(f"CREATE INDEX ix_{t}_ref{i} ON {t} (ref{i}_id);")
        parts.append(f"CREATE INDEX ix_{t}_name ON {t} (name) WHERE deleted_at IS NULL;")
        parts.append(f"CREATE INDEX ix_{t}_status_created ON {t} (status, created_at);")
        if n % 5 == 0:
            parts.append(f"CREATE INDEX ix_{t}_status ON {t} (status);")  # redundant prefix
        if n % 4 == 0:
            parts.append(f"CREATE INDEX ix_{t}_doc ON {t} USING gin (doc jsonb_path_ops);")
    for n in range(max(1, count // 50)):
        parts.append(
            f"CREATE TABLE events{n} (id bigint NOT NULL, at date NOT NULL, body jsonb, PRIMARY KEY (id, at)) "
            "PARTITION BY RANGE (at);"
        )
        for year in (2024, 2025):
            parts.append(
                f"CREATE TABLE events{n}_{year} PARTITION OF events{n} "
                f"FOR VALUES FROM ('{year}-01-01') TO ('{year + 1}-01-01');"
            )
    parts.append("CREATE MATERIALIZED VIEW totals AS SELECT status, count(*) AS n FROM t000 GROUP BY status;")
    parts.append("CREATE INDEX ix_totals_status ON totals (status);")
    return "\n".join(parts)


def backend_cpu(pid: int) -> float | None:
    """CPU seconds a server backend has used (from /proc when the server is local), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median_seconds(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dsn", default=os.environ.get("DBARCH_DSN"))
    args = parser.parse_args()

    import psycopg
    from sqlalchemy import MetaData, create_engine
    from sqlalchemy.pool import NullPool

    from pytest_dbarch.config import Settings
    from pytest_dbarch.postgres import catalog
    from pytest_dbarch.postgres.databases import Databases
    from pytest_dbarch.schema_lint import RULES, lint, options
    from pytest_dbarch.schema_lint.intent import Models

    databases = Databases(Settings(dsn=args.dsn, sources={"dsn": "--dsn"}), "bench")
    try:
        server = databases.start()
        janitor = databases.janitor
        assert janitor is not None
        name = janitor.create(janitor.new_name("bench"))
        dsn, url = server.dsn(name), server.url(name)
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(schema_sql(args.tables).encode())
            every_rule = options.from_values({
                "rules": [f"{rule.id} = on" for rule in RULES],
                "strings": "text",
                "naming": ["table = ^[a-z][a-z0-9_]*$", "index = ^(ix|ux)_[a-z0-9_]+$"],
                "required_columns": ["created_at:timestamptz"],
            })
            engine = create_engine(url, poolclass=NullPool)

            def reflect() -> MetaData:
                metadata = MetaData()
                metadata.reflect(engine)
                return metadata

            reflect_s, metadata = median_seconds(reflect, args.repeat)
            engine.dispose()
            models = Models(metadata, (), "reflected")  # type: ignore[arg-type]
            with psycopg.connect(dsn) as conn:
                conn.read_only = True
                read_s, schema = median_seconds(
                    lambda: lint.read(conn, every_rule, models, fresh=True), args.repeat)
                catalog_s, found = median_seconds(lambda: catalog.read(conn), args.repeat)
                rules_s, result = median_seconds(lambda: lint.check(schema, every_rule), args.repeat)  # type: ignore[arg-type]
                server_before, python_before = backend_cpu(conn.info.backend_pid), time.process_time()
                whole_s, _ = median_seconds(lambda: lint.lint(conn, every_rule, models, fresh=True), args.repeat)
                python_cpu = (time.process_time() - python_before) / args.repeat
                server_after = backend_cpu(conn.info.backend_pid)
                server_cpu = (server_after - server_before) / args.repeat if server_before is not None else None
            tables = len(found.base_tables())  # type: ignore[attr-defined]
            indexes = sum(len(t.indexes) for t in found)  # type: ignore[attr-defined]
            print(f"server: {server.source}; cores: {os.cpu_count()}; load: {os.getloadavg()[0]:.2f}")
            print(f"schema: {args.tables} generated tables ({tables} tables with partitions, {indexes} indexes); "
                  f"median of {args.repeat} runs")
            print(f"pytest-dbarch whole lint ({len(result.ran)} rules, models of {len(metadata.tables)} tables): "  # type: ignore[attr-defined]
                  f"{whole_s * 1000:.0f} ms  (target 1000 ms: {'met' if whole_s <= 1 else 'MISSED'})")
            cpu = f"{server_cpu * 1000:.0f} ms" if server_cpu is not None else "n/a (remote server)"
            print(f"  CPU per run (load-independent): lint process {python_cpu * 1000:.0f} ms, server backend {cpu}")
            print(f"  catalog read, ten set-based SELECTs: {catalog_s * 1000:.0f} ms")
            print(f"  rules over it (pure Python): {rules_s * 1000:.0f} ms "
                  f"({len(result.problems())} findings)")  # type: ignore[attr-defined]
            print(f"SQLAlchemy MetaData.reflect() of the same schema: {reflect_s * 1000:.0f} ms")
            print(f"reflection alone / whole pytest-dbarch lint: {reflect_s / whole_s:.1f}x")
        finally:
            janitor.drop(name)
    finally:
        databases.close()


if __name__ == "__main__":
    main()
