"""How much each budget figure moves: blocks touched against wall-clock time, under load.

    .venv/bin/python benchmarks/bench_budgets.py [--repeats 100] [--burners 2] [--rows 20000]

Starts a disposable server the way the plugin does (or uses DBARCH_DSN), loads a
table of ``--rows`` rows with an index, and adds load of its own so the figures do not
depend on what else the machine is doing: ``--burners`` processes spinning the CPU and
one connection scanning a second table without pause. Then, for an index lookup and a
sequential scan, ``--repeats`` times each:

- blocks, exactly as ``dbarch_budget`` measures them (``Explainer.plan``: a savepoint,
  parallel workers and JIT off, one warm-up run, shared hit + read + temp blocks);
- the wall-clock time of running the statement from the client (what a timer around
  the call sees: pytest-benchmark's figure);
- the server-side execution time EXPLAIN ANALYZE reports;

and the p95 of 30 samples, wall clock and server side (what a ``p95_ms`` budget
judges), ``--repeats / 10`` times before the added load and as many times under it.
For each figure it prints min, median, max and the spread (max / min): 1.00x means the
figure never moved; and how far the median p95 moved when the load was added.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_dbarch.config import Settings  # noqa: E402
from pytest_dbarch.performance.explain import Explainer  # noqa: E402
from pytest_dbarch.performance.latency import percentile  # noqa: E402
from pytest_dbarch.postgres.databases import Databases  # noqa: E402

QUERIES = (
    ("index lookup", ("SELECT id, name FROM bench_accounts WHERE name = %s", ("account 4242",))),
    ("seq scan", ("SELECT id, name FROM bench_accounts WHERE region = %s", (7,))),
)


def burn(stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def scan_forever(dsn: str, stop: threading.Event) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.is_set():
            conn.execute("SELECT count(*), sum(length(body)) FROM bench_noise").fetchone()


def p95_series(conn: object, explainer: Explainer, sql: str, params: object, repeats: int) -> dict[str, list[float]]:
    """p95s of 30 samples, ``repeats / 10`` times: wall clock from the client, and the
    server-side execution time a ``p95_ms`` budget judges (``Explainer.latency``)."""
    wall, server = [], []
    for _ in range(max(2, repeats // 10)):
        samples = []
        for _ in range(30):
            start = time.perf_counter()
            conn.execute(sql, params, prepare=False).fetchall()  # type: ignore[attr-defined]
            samples.append((time.perf_counter() - start) * 1000)
        conn.rollback()  # type: ignore[attr-defined]
        wall.append(percentile(samples, 95))
        with explainer.session():
            server.append(explainer.latency(sql, params).p95)
    return {"wall": wall, "server": server}


def spread(label: str, values: list[float], unit: str) -> float:
    low, high = min(values), max(values)
    ratio = high / low if low else float("inf")
    shown = "{:.0f}" if unit == "blocks" else "{:.3f}"
    print(f"  {label:<38} min {shown.format(low):>8}  median {shown.format(statistics.median(values)):>8}  "
          f"max {shown.format(high):>8} {unit:<6}  spread {ratio:6.2f}x")
    return ratio


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--burners", type=int, default=2, help="CPU-spinning processes added as load (0: none)")
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()

    import psycopg

    settings = Settings(dsn=os.environ.get("DBARCH_DSN"), sources={"dsn": "env DBARCH_DSN"})
    databases = Databases(settings, worker="bench")
    stop_burn = multiprocessing.Event()
    stop_scan = threading.Event()
    burners: list[multiprocessing.Process] = []
    scanner: threading.Thread | None = None
    try:
        server = databases.start()
        name = databases._janitor().create(databases._janitor().new_name("budgets"))
        dsn = server.dsn(name)
        with psycopg.connect(dsn, autocommit=True) as setup:
            setup.execute(
                "CREATE TABLE bench_accounts (id int PRIMARY KEY, region int NOT NULL, name text NOT NULL);"
                "CREATE INDEX bench_accounts_name ON bench_accounts (name);"
                f"INSERT INTO bench_accounts SELECT i, i % 10, 'account ' || i FROM generate_series(1, {args.rows}) i;"
                "CREATE TABLE bench_noise (id int, body text);"
                "INSERT INTO bench_noise SELECT i, repeat('x', 200) FROM generate_series(1, 200000) i"
            )
            setup.execute("VACUUM ANALYZE bench_accounts")
            setup.execute("VACUUM ANALYZE bench_noise")
        with psycopg.connect(dsn) as conn:
            explainer = Explainer(conn, own=True)
            print(f"machine load before: {load_average()} ({os.cpu_count()} cores)")
            quiet = {label: p95_series(conn, explainer, sql, params, args.repeats) for label, (sql, params) in QUERIES}
            print(f"adding {args.burners} CPU burners and one connection scanning a 200k-row table")
            for _ in range(args.burners):
                process = multiprocessing.Process(target=burn, args=(stop_burn,), daemon=True)
                process.start()
                burners.append(process)
            scanner = threading.Thread(target=scan_forever, args=(dsn, stop_scan), daemon=True)
            scanner.start()
            time.sleep(1.0)
            print(f"machine load with it: {load_average()}")

            results: dict[str, dict[str, float]] = {}
            for label, (sql, params) in QUERIES:
                blocks: list[float] = []
                wall: list[float] = []
                server_ms: list[float] = []
                for _ in range(args.repeats):
                    with explainer.session():
                        plan = explainer.plan(sql, params)
                    blocks.append(float(plan.buffers or 0))
                    server_ms.append(float(plan.execution_ms or 0))
                    start = time.perf_counter()
                    conn.execute(sql, params, prepare=False).fetchall()
                    wall.append((time.perf_counter() - start) * 1000)
                conn.rollback()
                loaded = p95_series(conn, explainer, sql, params, args.repeats)
                print(f"\n{label}: {sql}  ({args.repeats} repeats under load, plan: {', '.join(plan.indexes) or 'seq scan'})")
                results[label] = {
                    "blocks": spread("blocks (dbarch_budget)", blocks, "blocks"),
                    "wall": spread("wall clock per run (client)", wall, "ms"),
                    "server": spread("execution time (EXPLAIN ANALYZE)", server_ms, "ms"),
                }
                print(f"  distinct block counts: {sorted(set(int(b) for b in blocks))}")
                for kind in ("wall", "server"):
                    name = "wall-clock" if kind == "wall" else "server-side"
                    before, after = statistics.median(quiet[label][kind]), statistics.median(loaded[kind])
                    spread(f"{name} p95 of 30, own load off", quiet[label][kind], "ms")
                    spread(f"{name} p95 of 30, own load on", loaded[kind], "ms")
                    results[label][f"{kind}_p95_moved"] = after / before if before else float("inf")
        print(f"\nmachine load after: {load_average()}")
        print("\nspread (max / min) of each figure under load; 1.00x = did not move;")
        print("'p95 moved' = median p95 with the added load / without it")
        print(f"  {'query':<14} {'blocks':>8} {'wall clock':>11} {'server time':>12} "
              f"{'wall p95 moved':>15} {'server p95 moved':>17}")
        for label, r in results.items():
            print(f"  {label:<14} {r['blocks']:7.2f}x {r['wall']:10.2f}x {r['server']:11.2f}x "
                  f"{r['wall_p95_moved']:14.2f}x {r['server_p95_moved']:16.2f}x")
    finally:
        stop_scan.set()
        stop_burn.set()
        if scanner is not None:
            scanner.join(timeout=10)
        for process in burners:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
        databases.close()


if __name__ == "__main__":
    main()
