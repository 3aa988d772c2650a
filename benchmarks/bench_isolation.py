#!/usr/bin/env python
"""Per-test database cost: pytest-dbarch's two isolation modes vs pytest-postgresql.

Usage::

    python benchmarks/bench_isolation.py [--tests N] [--groups a,b] [--keep] [--json PATH]

Writes a throw-away test project into a temporary directory (a small CRM schema,
a conftest, a test module) and runs pytest on it once, in a subprocess. In that one
session the same schema is served four ways, and the tests of the four groups are
interleaved round-robin, in an order where every group follows every other group
equally often, so machine noise hits every group alike:

  empty               a test that touches no database (the floor: pytest's own cost)
  transaction         ``dbarch_psycopg`` under ``@pytest.mark.dbarch(isolation="transaction")``
  clone               ``dbarch_psycopg`` under ``@pytest.mark.dbarch(isolation="clone")``
  pytest-postgresql   pytest-postgresql's own ``postgresql`` client fixture (a database
                      created from its template per test, dropped after it)

pytest-postgresql runs against the very server pytest-dbarch started: its process
fixture cannot start PostgreSQL as root (initdb refuses), so the conftest builds
what ``factories.postgresql_noproc`` would build (a ``NoopExecutor`` plus a template
loaded by its ``DatabaseJanitor``) from ``dbarch_server.conninfo()``, and the
per-test part is pytest-postgresql's unmodified ``factories.postgresql`` fixture.

Every database test runs ``SELECT count(*) FROM accounts`` on its connection. The
cost of a test is setup + call + teardown as pytest reports them; the first test of
each group is a warm-up and is left out. Nothing is asserted: the numbers are
printed as they come.

Clone mode drops its databases in a background thread, so part of its cost can land
in whichever test runs next; the "spill-over" lines show how much. A filesystem probe
(creating 320 files where the server keeps its data) runs before and after the
session, because CREATE DATABASE is mostly that and it varies between machines and
from minute to minute; set DBARCH_RUNTIME_DIR to move the server's data (e.g.
/dev/shm). ``clone_breakdown.py`` times every statement of each way separately.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

GROUPS = ("empty", "transaction", "clone", "pytest-postgresql")

SCHEMA_SQL = """\
-- A slice of a CRM: three tables, their keys and a handful of indexes.
CREATE TABLE accounts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        varchar(255) NOT NULL,
    industry    varchar(100),
    website     varchar(255),
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE INDEX ix_accounts_name ON accounts (name text_pattern_ops);
CREATE INDEX ix_accounts_industry_live ON accounts (industry) WHERE deleted_at IS NULL;
CREATE INDEX ix_accounts_metadata_gin ON accounts USING gin (metadata);

CREATE TABLE contacts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    first_name  varchar(100) NOT NULL,
    last_name   varchar(100) NOT NULL,
    email       varchar(255) NOT NULL,
    title       varchar(100),
    phone       varchar(50),
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE INDEX ix_contacts_account_id ON contacts (account_id);
CREATE INDEX ix_contacts_last_name_first_name ON contacts (last_name, first_name);
CREATE UNIQUE INDEX ux_contacts_email_live ON contacts (email) WHERE deleted_at IS NULL;

CREATE TABLE opportunities (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id           uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    contact_id           uuid REFERENCES contacts (id) ON DELETE SET NULL,
    name                 varchar(255) NOT NULL,
    amount               numeric(12, 2) NOT NULL CHECK (amount >= 0),
    currency             varchar(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    stage                varchar(20) NOT NULL DEFAULT 'prospecting' CHECK (stage IN
                         ('prospecting', 'qualification', 'proposal', 'negotiation', 'won', 'lost')),
    expected_close_date  date,
    closed_at            timestamptz,
    metadata             jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz
);
CREATE INDEX ix_opportunities_account_id ON opportunities (account_id);
CREATE INDEX ix_opportunities_contact_id ON opportunities (contact_id);
CREATE INDEX ix_opportunities_expected_close_open ON opportunities (expected_close_date)
    WHERE stage NOT IN ('won', 'lost') AND deleted_at IS NULL;
"""

PYTEST_INI = """\
[pytest]
addopts = -p no:cacheprovider -p no:randomly -p no:benchmark
dbarch_sql_files = schema.sql
"""

CONFTEST = '''\
"""Benchmark conftest: pytest-postgresql pointed at pytest-dbarch's server, the
round-robin order, and a collector of per-phase durations."""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

import pytest
from pytest_postgresql import factories
from pytest_postgresql.executors import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

SCHEMA = Path(__file__).with_name("schema.sql")
GROUPS = {GROUPS!r}
FUNCTIONS = {{
    "test_empty": "empty",
    "test_transaction": "transaction",
    "test_clone": "clone",
    "test_pytest_postgresql": "pytest-postgresql",
}}
ROUNDS = ((0, 1, 2, 3), (0, 2, 1, 3), (2, 0, 3, 1))
NODE = re.compile(r"::(test_\\w+)\\[(\\d+)\\]$")


@pytest.fixture(scope="session")
def pg_noproc(dbarch_server):
    """What ``factories.postgresql_noproc`` builds, but aimed at dbarch's server.

    postgresql_noproc reads host and port when its fixture is defined (or from its
    ini options), before dbarch's server exists; so the same two objects are made
    here from ``dbarch_server.conninfo()``.
    """
    info = dbarch_server.conninfo()
    executor = NoopExecutor(
        host=str(info["host"]),
        port=info["port"],
        user=str(info["user"]),
        password=info.get("password"),
        options="",
        dbname=f"bench_pgpg_{{secrets.token_hex(3)}}",
        maintenance_dbname=str(info["dbname"]),
    )
    janitor = DatabaseJanitor(
        user=executor.user,
        host=executor.host,
        port=executor.port,
        dbname=executor.template_dbname,
        maintenance_dbname=executor.maintenance_dbname,
        as_template=True,
        password=executor.password,
    )
    with janitor:
        janitor.load(SCHEMA)
        yield executor


# pytest-postgresql's own per-test fixture, unmodified.
postgresql = factories.postgresql("pg_noproc")


def _key(item):
    match = NODE.search(item.nodeid)
    if not match or match.group(1) not in FUNCTIONS:
        return (float("inf"), 0)  # the session-end sentinel goes last
    index = int(match.group(2))
    group = GROUPS.index(FUNCTIONS[match.group(1)])
    # Round ``index`` runs one test of every group, in the order ROUNDS[index % 3].
    # Read as one continuous sequence, three rounds hold each of the 12 ordered pairs
    # (a, b) of different groups exactly once (an Eulerian circuit of the complete
    # directed graph on 4 groups), so every group follows every other group equally
    # often and none always pays for, or profits from, what ran just before it.
    return (index, ROUNDS[index % len(ROUNDS)].index(group))


def pytest_collection_modifyitems(items):
    items.sort(key=_key)


class Collector:
    def __init__(self):
        self.tests = {{}}
        self.order = []
        self.session_end = None

    def pytest_runtest_logreport(self, report):
        if report.nodeid.endswith("::test_zz_session_end"):
            if report.when == "teardown":
                self.session_end = report.duration
            return
        match = NODE.search(report.nodeid)
        if not match:
            return
        entry = self.tests.get(report.nodeid)
        if entry is None:
            entry = self.tests[report.nodeid] = {{
                "group": FUNCTIONS[match.group(1)],
                "index": int(match.group(2)),
                "outcome": "passed",
            }}
            self.order.append(report.nodeid)
        entry[report.when] = report.duration
        if report.failed:
            entry["outcome"] = "failed"

    def pytest_sessionfinish(self, session):
        out = os.environ.get("BENCH_RESULTS")
        if out:
            Path(out).write_text(json.dumps({{
                "tests": [self.tests[n] for n in self.order],
                "session_end_teardown": self.session_end,
            }}))


def pytest_configure(config):
    config.pluginmanager.register(Collector(), "bench-collector")
'''.format(GROUPS=GROUPS)

TEST_MODULE = '''\
"""Four groups of N tests; the conftest interleaves them."""

import os

import pytest

N = int(os.environ["BENCH_N"])
QUERY = "SELECT count(*) FROM accounts"


@pytest.mark.parametrize("i", range(N))
def test_empty(i):
    pass


@pytest.mark.dbarch(isolation="transaction")
@pytest.mark.parametrize("i", range(N))
def test_transaction(i, dbarch_psycopg):
    assert dbarch_psycopg.execute(QUERY).fetchone() == (0,)


@pytest.mark.dbarch(isolation="clone")
@pytest.mark.parametrize("i", range(N))
def test_clone(i, dbarch_psycopg):
    assert dbarch_psycopg.execute(QUERY).fetchone() == (0,)


@pytest.mark.parametrize("i", range(N))
def test_pytest_postgresql(i, postgresql):
    assert postgresql.execute(QUERY).fetchone() == (0,)


def test_zz_session_end():
    """Runs last: its teardown is the session teardown (queued drops, server stop)."""
'''


def write_project(root: Path) -> None:
    (root / "schema.sql").write_text(SCHEMA_SQL)
    (root / "pytest.ini").write_text(PYTEST_INI)
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_bench.py").write_text(TEST_MODULE)


def run_pytest(
    root: Path, n: int, results: Path, groups: tuple[str, ...]
) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "BENCH_N": str(n), "BENCH_RESULTS": str(results)}
    functions = [f"test_{g.replace('-', '_')}" for g in groups] + ["test_zz_session_end"]
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfE", "-k", " or ".join(functions), "test_bench.py"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    return proc, time.perf_counter() - started


def filesystem_probe(count: int = 320, size: int = 8192) -> float:
    """ms to create ``count`` files where the server's data directory will live.

    CREATE DATABASE is mostly this (a template of this schema has ~320 files), and on
    some machines it swings by an order of magnitude from one minute to the next; the
    probe runs before and after the session so a reader can tell.
    """
    base = runtime_location()
    directory = Path(tempfile.mkdtemp(prefix="dbarch-bench-fs-", dir=base))
    payload = b"\0" * size
    try:
        start = time.perf_counter()
        for i in range(count):
            fd = os.open(directory / str(i), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, payload)
            os.close(fd)
        return (time.perf_counter() - start) * 1000
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def runtime_location() -> Path:
    """Where the plugin keeps its servers' data: DBARCH_RUNTIME_DIR, else /dev/shm
    when it has room, else the temp directory."""
    from pytest_dbarch.postgres.paths import runtime_root

    return runtime_root(os.environ.get("DBARCH_RUNTIME_DIR"))[0]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def total_ms(test: dict) -> float:
    return 1000 * (test.get("setup", 0.0) + test.get("call", 0.0) + test.get("teardown", 0.0))


def summarise(data: dict) -> dict:
    tests = data["tests"]
    by_group: dict[str, list[dict]] = {g: [] for g in GROUPS}
    for test in tests:
        by_group[test["group"]].append(test)
    summary: dict[str, dict] = {}
    for group, members in by_group.items():
        measured = sorted((t for t in members if t["index"] > 0), key=lambda t: t["index"])
        totals = sorted(total_ms(t) for t in measured)
        phases = {
            phase: statistics.median(1000 * t.get(phase, 0.0) for t in measured)
            for phase in ("setup", "call", "teardown")
        } if measured else {}
        summary[group] = {
            "n": len(totals),
            "failed": sum(t["outcome"] != "passed" for t in members),
            "median": statistics.median(totals) if totals else math.nan,
            "mean": statistics.fmean(totals) if totals else math.nan,
            "p95": percentile(totals, 95) if totals else math.nan,
            "min": totals[0] if totals else math.nan,
            "max": totals[-1] if totals else math.nan,
            "phases": phases,
        }
    # Spill-over check: clone mode drops its database in a background thread, so the
    # drop's server-side work can land in whatever test runs next.
    after: dict[str, dict[str, list[float]]] = {g: {"after clone": [], "otherwise": []} for g in GROUPS}
    for prev, test in zip(tests, tests[1:]):
        if test["index"] == 0:
            continue
        key = "after clone" if prev["group"] == "clone" else "otherwise"
        after[test["group"]][key].append(total_ms(test))
    summary["_after_clone"] = {
        g: {k: (statistics.median(v) if v else math.nan, len(v)) for k, v in d.items()}
        for g, d in after.items()
    }
    summary["_session_end_ms"] = 1000 * (data.get("session_end_teardown") or math.nan)
    return summary


def server_version() -> str:
    for candidate in ("/usr/lib/postgresql/15/bin/postgres", shutil.which("postgres")):
        if candidate and os.path.exists(candidate):
            try:
                return subprocess.run([candidate, "--version"], capture_output=True, text=True).stdout.strip()
            except OSError:
                pass
    return "unknown (the plugin finds its own binaries)"


def report(
    summary: dict, n: int, wall: float, groups: tuple[str, ...], fs_probe: tuple[float, float]
) -> None:
    from importlib.metadata import version

    runtime = runtime_location()
    print()
    print(f"pytest-dbarch isolation benchmark: {n} tests per group ({n - 1} measured, "
          f"first is warm-up), groups interleaved, one pytest session")
    print(f"python {platform.python_version()}, pytest {version('pytest')}, "
          f"pytest-postgresql {version('pytest-postgresql')}, psycopg {version('psycopg')}, "
          f"{os.cpu_count()} CPUs, load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"server: {server_version()}, data directory under {runtime}; "
          f"whole pytest run {wall:.1f} s")
    print(f"filesystem probe (create 320 files of 8 kB under {runtime}): "
          f"{fs_probe[0]:.1f} ms before the run, {fs_probe[1]:.1f} ms after")
    print()
    print("per-test cost = setup + call + teardown, in ms")
    header = f"{'group':<19}{'n':>4}{'median':>9}{'mean':>9}{'p95':>9}{'min':>9}{'max':>9}  " \
             f"{'setup':>7}{'call':>7}{'teardown':>9}  (phase medians)"
    print(header)
    print("-" * len(header))
    for group in groups:
        s = summary[group]
        p = s["phases"]
        fail = f"  {s['failed']} FAILED" if s["failed"] else ""
        print(f"{group:<19}{s['n']:>4}{s['median']:>9.2f}{s['mean']:>9.2f}{s['p95']:>9.2f}"
              f"{s['min']:>9.2f}{s['max']:>9.2f}  {p.get('setup', math.nan):>7.2f}"
              f"{p.get('call', math.nan):>7.2f}{p.get('teardown', math.nan):>9.2f}{fail}")
    print()
    lines = []
    pg, tx, cl, empty = (summary[g] if g in groups else None
                         for g in ("pytest-postgresql", "transaction", "clone", "empty"))
    if pg and tx:
        lines.append(("pytest-postgresql / transaction", pg["median"] / tx["median"], pg["mean"] / tx["mean"], "x"))
    if pg and cl:
        lines.append(("pytest-postgresql / clone (target >= 5)", pg["median"] / cl["median"],
                      pg["mean"] / cl["mean"], "x"))
    if tx and empty:
        lines.append(("transaction - empty (ms)", tx["median"] - empty["median"], tx["mean"] - empty["mean"], ""))
    if cl and empty:
        lines.append(("clone - empty (ms, target <= 10)", cl["median"] - empty["median"],
                      cl["mean"] - empty["mean"], ""))
    if lines:
        print(f"{'':<44}{'median':>9}{'mean':>9}")
        for label, med, mean, unit in lines:
            print(f"  {label:<42}{med:>8.2f}{unit or ' '}{mean:>8.2f}{unit}")
        print()
    if cl and len(groups) > 1:
        print("spill-over (clone drops its databases in a background thread): median ms of the")
        print("tests that run right after a clone test, and of the others")
        for group in groups:
            if group == "clone":
                continue
            d = summary["_after_clone"][group]
            (m1, n1), (m2, n2) = d["after clone"], d["otherwise"]
            print(f"  {group:<19} after clone {m1:>7.2f} (n={n1:<3})  otherwise {m2:>7.2f} (n={n2})")
        print()
    print(f"session teardown (queued drops, templates, server stop): {summary['_session_end_ms']:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", "-n", type=int, default=60, help="tests per group (default 60)")
    parser.add_argument("--keep", action="store_true", help="keep the generated project and print its path")
    parser.add_argument("--json", type=Path, help="also write the raw per-test durations here")
    parser.add_argument(
        "--groups",
        default=",".join(GROUPS),
        help=f"comma-separated subset of {','.join(GROUPS)} (default: all)",
    )
    args = parser.parse_args()
    if args.tests < 2:
        parser.error("--tests must be at least 2 (the first of each group is a warm-up)")
    groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
    unknown = set(groups) - set(GROUPS)
    if unknown or not groups:
        parser.error(f"--groups: unknown {', '.join(sorted(unknown)) or '(none given)'}; "
                     f"choose from {', '.join(GROUPS)}")

    root = Path(tempfile.mkdtemp(prefix="dbarch-bench-"))
    try:
        write_project(root)
        results = root / "results.json"
        print(f"load average before the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        fs_before = filesystem_probe()
        proc, wall = run_pytest(root, args.tests, results, groups)
        fs_after = filesystem_probe()
        if proc.returncode != 0 or not results.exists():
            print(proc.stdout[-6000:])
            print(proc.stderr[-3000:], file=sys.stderr)
            print(f"pytest exited with {proc.returncode}", file=sys.stderr)
            if not results.exists():
                return 1
        data = json.loads(results.read_text())
        data["filesystem_probe_ms"] = [fs_before, fs_after]
        if args.json:
            args.json.write_text(json.dumps(data, indent=1))
        report(summarise(data), args.tests, wall, groups, (fs_before, fs_after))
        return proc.returncode
    finally:
        if args.keep:
            print(f"project kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
