"""What the concurrency harness costs next to hand-rolled threads, on a real PostgreSQL.

    .venv/bin/python benchmarks/bench_concurrency.py [--rounds 5]

Starts a disposable server the way the plugin does (or uses DBARCH_DSN), makes a scratch
database, and times in adjacent pairs (order swapped every pair):

- a run as users write it by hand: N threads, a psycopg connection each, a barrier,
  ``UPDATE ... SET n = n + 1`` and a commit per call; against ``Harness.run`` with the
  same function (which adds: recording every statement, the monitor connection, the
  deadlock_timeout SET, the invariant check, the leftover-backend check);
  once with 4 workers x 1 call (connection set-up dominates) and once with 4 x 200
  (the per-statement cost);
- a schedule of two transactions of 10 statements each, stepped one statement at a
  time, against the same 20 statements and 2 commits on two connections without steps:
  the price of exactness per step.

Prints the figures, the ratios and the machine load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from pytest_dbarch.concurrency.harness import Harness, Settings as HarnessSettings  # noqa: E402
from pytest_dbarch.config import Settings  # noqa: E402
from pytest_dbarch.postgres.databases import Databases  # noqa: E402


def bump(conn: Any, worker: int) -> None:
    conn.execute("UPDATE counters SET n = n + 1 WHERE id = %s", [worker % 4 + 1])


def by_hand(dsn: str, workers: int, repeat: int) -> None:
    """Threads, a barrier, a connection each: what a user writes without the harness."""
    barrier = threading.Barrier(workers)

    def work(index: int) -> None:
        with psycopg.connect(dsn) as conn:
            for _ in range(repeat):
                barrier.wait()
                bump(conn, index)
                conn.commit()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def pairs(name: str, plain: Callable[[], object], harnessed: Callable[[], object], rounds: int) -> None:
    base: list[float] = []
    ours: list[float] = []
    for i in range(rounds):
        for side in ((False, True) if i % 2 == 0 else (True, False)):
            (ours if side else base).append(timed(harnessed if side else plain))
    ratios = sorted(b / a for a, b in zip(base, ours))
    print(f"{name:<44} by hand {statistics.median(base) * 1000:8.1f} ms   harness "
          f"{statistics.median(ours) * 1000:8.1f} ms   ratio (median pair) {statistics.median(ratios):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = Settings(dsn=os.environ.get("DBARCH_DSN"), sources={"dsn": "env DBARCH_DSN"})
    databases = Databases(settings, "bench")
    try:
        server = databases.start()
        assert databases.janitor is not None
        name = databases.janitor.create(databases.janitor.new_name("concurrency"))
        dsn = server.dsn(name)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)")
            conn.execute("INSERT INTO counters SELECT g, 0 FROM generate_series(1, 4) g")
        harness = Harness(dsn, HarnessSettings(), str(ROOT), lambda result: None)
        print(f"PostgreSQL {server.version} ({server.mode}); load average {os.getloadavg()[0]:.2f}")

        for workers, repeat in ((4, 1), (4, 200)):
            pairs(f"run: {workers} workers x {repeat} calls",
                  lambda: by_hand(dsn, workers, repeat),
                  lambda: harness.run(bump, workers=workers, repeat=repeat,
                                      invariant="SELECT true FROM counters LIMIT 1"),
                  args.rounds)

        statements = [("UPDATE counters SET n = n + 1 WHERE id = %s", [1 + i % 2]) for i in range(10)]
        other = [("UPDATE counters SET n = n + 1 WHERE id = %s", [3 + i % 2]) for i in range(10)]
        schedule = harness.schedule(A=statements, B=other)
        steps = [name for pair in zip("A" * 10, "B" * 10) for name in pair] + ["A", "B"]

        def unstepped() -> None:
            with psycopg.connect(dsn) as a, psycopg.connect(dsn) as b:
                for (sql_a, params_a), (sql_b, params_b) in zip(statements, other):
                    a.execute(sql_a, params_a)
                    b.execute(sql_b, params_b)
                a.commit()
                b.commit()

        pairs("schedule: 2 x 10 statements, 22 steps", unstepped, lambda: schedule.run(*steps), args.rounds)
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
    finally:
        databases.close()


if __name__ == "__main__":
    main()
