#!/usr/bin/env python
"""Session start and xdist: whole pytest processes against one bare ``initdb``.

Usage::

    python benchmarks/bench_start.py [--rounds N] [--only start,xdist] [--keep]

**start**: a throw-away project with a three-revision Alembic history and one test
that queries the migrated schema. Timed, interleaved round-robin so machine noise
hits every variant alike (the first round is a warm-up and is left out):

  bare initdb           ``initdb`` alone, run as the plugin runs it (as the server's
                        account, ``--no-sync``, into the same directory the plugin
                        keeps its data in): the floor of any cold start
  warm, all plugins     ``pytest`` as users run it: every installed plugin loads
                        (here hypothesis, Faker, pytest-postgresql, xdist, asyncio...)
  warm, dbarch only     the same with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 -p pytest_dbarch.plugin``
  no database, dbarch   the same project, a test that touches no database: what loading
                        pytest-dbarch costs a session that uses none of it
  pytest alone          one empty test, no plugin at all (``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``
                        and no ``-p``): the floor of any pytest plugin's session
  floor: pytest +       no plugin, a test that imports psycopg: what any fixture handing
    psycopg import      out a psycopg connection costs at least, with a server already up
  cold (cache off)      ``--dbarch-cache=off``: initdb and the migrations every time
                        (what every session cost before the cluster cache)
  kept server, dbarch   ``--dbarch-keep-server``: the first (warm-up) run starts the
                        server and leaves it running, every later run joins it (the
                        fastest edit-test loop); stopped with ``dbarch server stop`` at the
                        end. Its run directory lives under a private DBARCH_RUNTIME_DIR so
                        the stop touches no one else's kept server

Each warm run uses the cache the first round filled (in a private cache directory,
so your own ``~/.cache/pytest-dbarch`` is untouched). pytest-postgresql's process
fixture is not among the rows: it cannot start PostgreSQL as root (``initdb``
refuses), and where it can it runs ``initdb`` plus ``pg_ctl start`` plus the schema,
so the bare ``initdb`` row is a lower bound of its start.

**xdist**: 100 transaction-isolation tests (one query each), whole pytest process,
``-n 0`` against ``-n 2`` (one shared server for both workers), warm cache,
interleaved. The floor rows run 100 empty tests with xdist and no other plugin at all:
what ``-n 2`` costs any suite this small on this machine (two more interpreters, each
importing pytest and xdist, plus the controller's scheduling). pytest-dbarch's own
share is each dbarch row minus the floor row with the same ``-n``; the target is that
share under ``-n 2`` no larger than under ``-n 0``.

Every pytest runs with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` is dropped from
its environment), as for any installed package; the warm-up round writes the plugin's
``__pycache__``.

Nothing is asserted; figures and ratios are printed with the machine's load
average before and after, since this machine is shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ALEMBIC_INI = "[alembic]\nscript_location = migrations\n"
ENV_PY = '''\
from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
'''
REVISIONS = (
    ("0001", None, "CREATE TABLE accounts (id bigserial PRIMARY KEY, name text NOT NULL, "
                   "created_at timestamptz NOT NULL DEFAULT now())"),
    ("0002", "0001", "CREATE TABLE contacts (id bigserial PRIMARY KEY, account_id bigint NOT NULL "
                     "REFERENCES accounts (id), email text NOT NULL UNIQUE)"),
    ("0003", "0002", "CREATE INDEX ix_contacts_account_id ON contacts (account_id)"),
)
REVISION = '''\
from alembic import op

revision = {rev!r}
down_revision = {down!r}


def upgrade():
    op.execute({sql!r})


def downgrade():
    pass
'''
ONE_TEST = '''\
def test_accounts(dbarch_psycopg):
    assert dbarch_psycopg.execute("SELECT count(*) FROM accounts").fetchone() == (0,)
'''
NO_DB_TEST = "def test_nothing():\n    pass\n"
# The floor of any plugin that hands a test a psycopg connection: pytest, no plugin, and
# the driver's import (connecting to a running server adds a few milliseconds more).
DRIVER_ONLY_TEST = "def test_driver():\n    import psycopg\n\n    assert psycopg.connect\n"
MANY_EMPTY = """\
import pytest


@pytest.mark.parametrize("i", range(100))
def test_empty(i):
    pass
"""
MANY_TESTS = '''\
import pytest


@pytest.mark.parametrize("i", range(100))
def test_transaction(i, dbarch_psycopg):
    dbarch_psycopg.execute("INSERT INTO accounts (name) VALUES (%s)", (str(i),))
    assert dbarch_psycopg.execute("SELECT count(*) FROM accounts").fetchone() == (1,)
'''


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def write_project(root: Path) -> None:
    (root / "pytest.ini").write_text(
        "[pytest]\naddopts = -p no:cacheprovider -p no:randomly\ndbarch_alembic_ini = alembic.ini\n"
        "dbarch_report_dir = off\n"
    )
    (root / "alembic.ini").write_text(ALEMBIC_INI)
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    for rev, down, sql in REVISIONS:
        (versions / f"{rev}.py").write_text(REVISION.format(rev=rev, down=down, sql=sql))
    (root / "test_one.py").write_text(ONE_TEST)
    (root / "test_nodb.py").write_text(NO_DB_TEST)
    (root / "test_driver.py").write_text(DRIVER_ONLY_TEST)
    (root / "test_many.py").write_text(MANY_TESTS)
    (root / "test_many_empty.py").write_text(MANY_EMPTY)


def pytest_runner(root: Path, env: dict[str, str], *args: str) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", *args], cwd=root, env=env,
                              capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"pytest {' '.join(args)} failed with exit code {proc.returncode}")
        return elapsed
    return run


def initdb_runner(scratch: Path) -> Callable[[], float]:
    """One bare initdb as the plugin runs it (account, options, place)."""
    from pytest_dbarch.postgres.accounts import choose_account, demote
    from pytest_dbarch.postgres.binaries import find_binaries, usable_by
    from pytest_dbarch.postgres.runtime import base_dir
    from pytest_dbarch.postgres.server import INITDB_ARGS

    account = choose_account(None)
    base = base_dir(None)
    binaries = usable_by(account, find_binaries(os.environ.get("DBARCH_PG_BIN")), base)
    work = Path(tempfile.mkdtemp(prefix="bench-initdb-", dir=base))
    os.chmod(work, 0o755)
    if not account.is_self:
        os.chown(work, account.uid, account.gid)
    scratch.joinpath("initdb-dirs").write_text(str(work))

    def run() -> float:
        target = work / "data"
        started = time.perf_counter()
        proc = subprocess.run([binaries.tool("initdb"), "-D", str(target), *INITDB_ARGS],
                              capture_output=True, text=True, cwd="/", **demote(account))  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"initdb failed: {proc.stderr}")
        shutil.rmtree(target)
        return elapsed
    return run


def measure(variants: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds + 1):
        order = names[r % len(names):] + names[: r % len(names)]  # rotate the order
        for name in order:
            elapsed = variants[name]()
            if r > 0:
                times[name].append(elapsed)
        print(f"  round {r}{' (warm-up)' if r == 0 else ''} done", file=sys.stderr)
    return times


def table(times: dict[str, list[float]]) -> None:
    width = max(len(n) for n in times) + 2
    print(f"  {'':<{width}}{'median s':>10}{'min s':>8}{'max s':>8}")
    for name, values in times.items():
        print(f"  {name:<{width}}{statistics.median(values):>10.3f}{min(values):>8.3f}{max(values):>8.3f}")


def ratio(times: dict[str, list[float]], a: str, b: str, target: str = "") -> None:
    value = statistics.median(times[a]) / statistics.median(times[b])
    print(f"  {a} / {b}: {value:.2f}{'  (target ' + target + ')' if target else ''}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (after one warm-up)")
    parser.add_argument("--only", default="start,xdist", help="start, xdist or both (default)")
    parser.add_argument("--keep", action="store_true", help="keep the generated project")
    args = parser.parse_args()
    parts = {p.strip() for p in args.only.split(",")}

    root = Path(tempfile.mkdtemp(prefix="dbarch-bench-start-"))
    scratch = Path(tempfile.mkdtemp(prefix="dbarch-bench-scratch-"))
    cache = scratch / "cache"
    # Bytecode caching on, as in any installed package (pip compiles a wheel's .pyc): with
    # PYTHONDONTWRITEBYTECODE set, an editable install recompiles every module of the
    # plugin in every process (about 0.1 s per process here), which pytest and the
    # other libraries, installed with their .pyc, never pay.
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("PYTEST_", "DBARCH_CACHE")) and k != "PYTHONDONTWRITEBYTECODE"}
    base_env["XDG_CACHE_HOME"] = str(cache)
    lean_env = {**base_env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    lean = ("-p", "pytest_dbarch.plugin")
    kept_dir = Path(tempfile.mkdtemp(prefix="dbarch-bench-kept-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    os.chmod(kept_dir, 0o755)  # the server's account passes through
    kept_env = {**lean_env, "DBARCH_RUNTIME_DIR": str(kept_dir)}
    print(f"pytest-dbarch session start; {load()}; python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    try:
        write_project(root)
        if "start" in parts:
            variants = {
                "bare initdb": initdb_runner(scratch),
                "warm, all plugins": pytest_runner(root, base_env, "test_one.py"),
                "warm, dbarch only": pytest_runner(root, lean_env, *lean, "test_one.py"),
                "no database, dbarch only": pytest_runner(root, lean_env, *lean, "test_nodb.py"),
                "pytest alone, no plugin": pytest_runner(root, lean_env, "test_nodb.py"),
                "floor: pytest + psycopg import": pytest_runner(root, lean_env, "test_driver.py"),
                "cold (cache off), dbarch only": pytest_runner(root, lean_env, *lean, "--dbarch-cache=off",
                                                               "test_one.py"),
                "kept server, dbarch only": pytest_runner(root, kept_env, *lean, "--dbarch-keep-server=on",
                                                          "test_one.py"),
            }
            times = measure(variants, args.rounds)
            print(f"\nsession start, {args.rounds} rounds (a one-test project, 3 Alembic revisions); {load()}")
            table(times)
            ratio(times, "warm, all plugins", "bare initdb", "<= 0.8")
            ratio(times, "warm, dbarch only", "bare initdb", "<= 0.8")
            ratio(times, "cold (cache off), dbarch only", "bare initdb")
            ratio(times, "kept server, dbarch only", "bare initdb", "<= 0.8")
            ratio(times, "no database, dbarch only", "bare initdb")
            ratio(times, "pytest alone, no plugin", "bare initdb")
            ratio(times, "floor: pytest + psycopg import", "bare initdb")
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"  warm start's cost over a session without a database: "
                  f"{med['warm, dbarch only'] - med['no database, dbarch only']:.3f} s")
            print(f"  loading pytest-dbarch (no database, over pytest alone): "
                  f"{med['no database, dbarch only'] - med['pytest alone, no plugin']:.3f} s")
            print(f"  pytest-dbarch's whole share of a warm start (over pytest alone): "
                  f"{med['warm, dbarch only'] - med['pytest alone, no plugin']:.3f} s; "
                  f"the target leaves it {0.8 * med['bare initdb'] - med['pytest alone, no plugin']:.3f} s")
        if "xdist" in parts:
            xd = (*lean, "-p", "xdist.plugin")
            variants = {
                "-n 0": pytest_runner(root, base_env, "test_many.py"),
                "-n 2": pytest_runner(root, base_env, "-n", "2", "test_many.py"),
                "-n 0, dbarch+xdist only": pytest_runner(root, lean_env, *xd, "test_many.py"),
                "-n 2, dbarch+xdist only": pytest_runner(root, lean_env, *xd, "-n", "2", "test_many.py"),
                "-n 0, no database": pytest_runner(root, lean_env, *xd, "test_many_empty.py"),
                "-n 2, no database": pytest_runner(root, lean_env, *xd, "-n", "2", "test_many_empty.py"),
                "-n 0, floor (xdist only)": pytest_runner(root, lean_env, "-p", "xdist.plugin", "test_many_empty.py"),
                "-n 2, floor (xdist only)": pytest_runner(root, lean_env, "-p", "xdist.plugin", "-n", "2",
                                                          "test_many_empty.py"),
            }
            times = measure(variants, args.rounds)
            print(f"\n100 transaction tests, whole pytest process, {args.rounds} rounds; {load()}")
            table(times)
            ratio(times, "-n 2", "-n 0", "<= 1.0")
            ratio(times, "-n 2, dbarch+xdist only", "-n 0, dbarch+xdist only", "<= 1.0")
            ratio(times, "-n 2, no database", "-n 0, no database")
            med = {k: statistics.median(v) for k, v in times.items()}
            db0 = med["-n 0, dbarch+xdist only"] - med["-n 0, no database"]
            db2 = med["-n 2, dbarch+xdist only"] - med["-n 2, no database"]
            print(f"  the database's share (same tests minus 100 empty ones): -n 0 {db0:.3f} s, "
                  f"-n 2 {db2:.3f} s, ratio {db2 / db0:.2f}" if db0 > 0 else "")
            ratio(times, "-n 2, floor (xdist only)", "-n 0, floor (xdist only)")
            own0 = med["-n 0, dbarch+xdist only"] - med["-n 0, floor (xdist only)"]
            own2 = med["-n 2, dbarch+xdist only"] - med["-n 2, floor (xdist only)"]
            print(f"  pytest-dbarch's own share (dbarch+xdist minus the floor with the same -n): "
                  f"-n 0 {own0:.3f} s, -n 2 {own2:.3f} s (target: -n 2 <= -n 0)")
            print(f"  -n 2 / -n 0 with the floor's own ratio taken out: "
                  f"{(med['-n 2, dbarch+xdist only'] / med['-n 0, dbarch+xdist only']) / (med['-n 2, floor (xdist only)'] / med['-n 0, floor (xdist only)']):.2f}")
    finally:
        subprocess.run([sys.executable, "-m", "pytest_dbarch.cli", "server", "stop", "--runtime-dir", str(kept_dir)],
                       env=kept_env, capture_output=True)
        shutil.rmtree(kept_dir, ignore_errors=True)
        initdb_dirs = scratch / "initdb-dirs"
        if initdb_dirs.exists():
            shutil.rmtree(initdb_dirs.read_text(), ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
        if args.keep:
            print(f"project kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
