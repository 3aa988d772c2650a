#!/usr/bin/env python
"""Where the time of one database test goes, step by step, with psycopg directly.

Usage::

    python benchmarks/clone_breakdown.py [--rounds N]

Starts a disposable server the way pytest-dbarch does (same binaries, same settings,
same runtime directory: ``DBARCH_RUNTIME_DIR`` or the system temp dir), builds a
template from the schema of ``bench_isolation.py``, and then, in interleaved rounds,
times every statement of four ways to give a test a database:

  clone/FILE_COPY     what ``isolation="clone"`` does: CREATE DATABASE ... TEMPLATE ...
                      STRATEGY FILE_COPY on a long-lived admin connection, connect,
                      first query, close, DROP ... WITH (FORCE) on a second long-lived
                      connection right away (the plugin runs that drop in a background
                      thread)
  clone/WAL_LOG       the same with PostgreSQL 15's default strategy, and the DROP only
                      once pg_stat_activity no longer shows the test's backend
  pytest-postgresql   the statements of pytest-postgresql's DatabaseJanitor, each on
                      the fresh connection it opens (init: terminate template users,
                      CREATE DATABASE ... TEMPLATE; drop: exists?, ALTER ... allow
                      connections false, terminate, DROP), around a test connection
  transaction         what ``isolation="transaction"`` does: connect, BEGIN + SAVEPOINT
                      + txid, query, txid check, ROLLBACK, close; and the same on a
                      connection kept open across tests

plus the raw cost of creating as many files as the template has, in a directory next
to the server's data directory, since CREATE DATABASE is mostly that.

Only the server start uses pytest-dbarch (``Databases.start``); the rest is psycopg.
The server is stopped at the end. Numbers are milliseconds.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_isolation import SCHEMA_SQL  # noqa: E402

from pytest_dbarch.config import Settings  # noqa: E402
from pytest_dbarch.postgres.databases import Databases  # noqa: E402

QUERY = "SELECT count(*) FROM accounts"


class Timer:
    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.order: list[str] = []

    def __call__(self, label: str, fn, *args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        self.add(label, (time.perf_counter() - start) * 1000)
        return result

    def add(self, label: str, ms: float) -> None:
        if label not in self.samples:
            self.order.append(label)
        self.samples[label].append(ms)


def ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def clone_round(
    t: Timer, admin, dropper, conninfo, tpl: str, name: str, strategy: str, wait_first: bool
) -> None:
    p = f"clone/{strategy}"
    start = time.perf_counter()
    t(f"{p}: CREATE DATABASE", admin.execute,
      sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY " + strategy).format(ident(name), ident(tpl)))
    conn = t(f"{p}: connect", psycopg.connect, **{**conninfo, "dbname": name})
    t(f"{p}: first query", lambda: conn.execute(QUERY).fetchone())
    t(f"{p}: close", conn.close)
    t.add(f"{p}: = the test's share", (time.perf_counter() - start) * 1000)
    drop = sql.SQL("DROP DATABASE {} WITH (FORCE)").format(ident(name))
    if not wait_first:
        t(f"{p}: DROP ... WITH (FORCE) at once [background in plugin]", dropper.execute, drop)
        return
    # Variant: let the test's backend finish exiting before DROP, which otherwise
    # finds it still there and sleeps in 100 ms steps (CountOtherDBBackends).
    start = time.perf_counter()
    while dropper.execute("SELECT 1 FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone():
        time.sleep(0.001)
    t.add(f"{p}: wait until the test's backend is gone", (time.perf_counter() - start) * 1000)
    t(f"{p}: then DROP ... WITH (FORCE)", dropper.execute, drop)


def pytest_postgresql_round(t: Timer, conninfo, tpl: str, name: str) -> None:
    p = "pytest-postgresql"
    start = time.perf_counter()
    conn = t(f"{p}: init: connect to maintenance db", psycopg.connect, **conninfo, autocommit=True)
    t(f"{p}: init: terminate template users", conn.execute,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (tpl,))
    t(f"{p}: init: CREATE DATABASE ... TEMPLATE (WAL_LOG)", conn.execute,
      sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(ident(name), ident(tpl)))
    t(f"{p}: init: close", conn.close)
    test = t(f"{p}: test: connect", psycopg.connect, **{**conninfo, "dbname": name})
    t(f"{p}: test: first query", lambda: test.execute(QUERY).fetchone())
    t(f"{p}: test: close", test.close)
    conn = t(f"{p}: drop: connect to maintenance db", psycopg.connect, **conninfo, autocommit=True)
    t(f"{p}: drop: exists?", lambda: conn.execute(
        "SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone())
    t(f"{p}: drop: ALTER allow_connections false", conn.execute,
      sql.SQL("ALTER DATABASE {} WITH allow_connections false").format(ident(name)))
    t(f"{p}: drop: terminate", conn.execute,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    t(f"{p}: drop: DROP DATABASE", conn.execute, sql.SQL("DROP DATABASE {}").format(ident(name)))
    t(f"{p}: drop: close", conn.close)
    t.add(f"{p}: = total", (time.perf_counter() - start) * 1000)


def transaction_round(t: Timer, conninfo, work: str, kept) -> None:
    p = "transaction"
    start = time.perf_counter()
    conn = t(f"{p}: connect", psycopg.connect, **{**conninfo, "dbname": work})
    t(f"{p}: BEGIN + SAVEPOINT + txid", lambda: (conn.execute("SAVEPOINT dbarch_test"),
                                                  conn.execute("SELECT txid_current()").fetchone()))
    t(f"{p}: first query", lambda: conn.execute(QUERY).fetchone())
    t(f"{p}: txid check + ROLLBACK", lambda: (conn.execute("SELECT txid_current()").fetchone(),
                                              conn.rollback()))
    t(f"{p}: close", conn.close)
    t.add(f"{p}: = total, new connection", (time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    kept.execute("SAVEPOINT dbarch_test")
    kept.execute("SELECT txid_current()").fetchone()
    kept.execute(QUERY).fetchone()
    kept.execute("SELECT txid_current()").fetchone()
    kept.rollback()
    t.add(f"{p}: = total, connection kept open", (time.perf_counter() - start) * 1000)


def files_round(t: Timer, base: Path, count: int, size: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="files-", dir=base))
    payload = b"\0" * size
    start = time.perf_counter()
    for i in range(count):
        fd = os.open(directory / str(i), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, payload)
        os.close(fd)
    t.add(f"filesystem: create {count} files of {size // 1024} kB in {base}",
          (time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    shutil.rmtree(directory)
    t.add(f"filesystem: delete them", (time.perf_counter() - start) * 1000)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", "-n", type=int, default=40, help="rounds (default 40; the first is a warm-up)")
    args = parser.parse_args()

    settings = Settings(pg_bin=os.environ.get("DBARCH_PG_BIN"), run_as=os.environ.get("DBARCH_RUN_AS"))
    databases = Databases(settings, "breakdown")
    try:
        server = databases.start()
        conninfo = server.conninfo()
        admin = psycopg.connect(**conninfo, autocommit=True)
        dropper = psycopg.connect(**conninfo, autocommit=True)
        tpl, work = "bd_template", "bd_work"
        admin.execute(sql.SQL("CREATE DATABASE {}").format(ident(tpl)))
        with psycopg.connect(**{**conninfo, "dbname": tpl}) as conn:
            conn.execute(SCHEMA_SQL)
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(ident(work), ident(tpl)))
        oid, size = admin.execute(
            "SELECT oid, pg_database_size(oid) FROM pg_database WHERE datname = %s", (tpl,)
        ).fetchone()
        files = admin.execute("SELECT count(*) FROM pg_ls_dir(%s)", (f"base/{oid}",)).fetchone()[0]
        datadir = admin.execute("SHOW data_directory").fetchone()[0]
        kept = psycopg.connect(**{**conninfo, "dbname": work})
        print(f"server {server.version} ({server.source}); data directory {datadir}")
        print(f"template: {files} files, {size / 1e6:.1f} MB; {args.rounds} rounds, first one left out")
        t = Timer()
        base = Path(datadir).parent if databases.local is not None else Path(tempfile.gettempdir())
        steps = ("clone/FILE_COPY", "clone/WAL_LOG", "pytest-postgresql", "transaction", "files")
        for r in range(args.rounds):
            measured = Timer() if r == 0 else t
            for k in range(len(steps)):
                step = steps[(r + k) % len(steps)]  # rotate so no step always follows the same one
                if step == "clone/FILE_COPY":
                    clone_round(measured, admin, dropper, conninfo, tpl, f"bd_c{r}", "FILE_COPY", False)
                elif step == "clone/WAL_LOG":
                    clone_round(measured, admin, dropper, conninfo, tpl, f"bd_w{r}", "WAL_LOG", True)
                elif step == "pytest-postgresql":
                    pytest_postgresql_round(measured, conninfo, tpl, f"bd_p{r}")
                elif step == "transaction":
                    transaction_round(measured, conninfo, work, kept)
                else:
                    files_round(measured, base, files, 8192)
        width = max(len(label) for label in t.order) + 2
        print(f"\n{'step':<{width}}{'median':>8}{'mean':>8}{'p95':>8}{'max':>8}")
        previous = None
        for label in t.order:
            group = label.split(":")[0]
            if previous is not None and group != previous:
                print()
            previous = group
            v = t.samples[label]
            print(f"{label:<{width}}{statistics.median(v):>8.2f}{statistics.fmean(v):>8.2f}"
                  f"{pct(v, 95):>8.2f}{max(v):>8.2f}")
        kept.close()
        dropper.close()
        admin.close()
    finally:
        databases.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
