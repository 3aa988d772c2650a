"""Real Alembic histories: ``dbarch migrations check`` against pytest-alembic, side by side.

For every history of the corpus (``benchmarks/corpus.py``: prepared from local git
mirrors, skipped when a mirror is missing) this runs, on one server, in one go:

- ``dbarch migrations check`` (a subprocess, as CI runs it), with its findings counted
  by rule and status and written, one per line, to ``<work>/<name>.findings.txt``;
- pytest-alembic's built-in tests (``test_single_head_revision``, ``test_upgrade``,
  ``test_up_down_consistency``) in a pytest subprocess with ``-p no:dbarch``, on a fresh
  database of the same server;
- the floor (``history_floor.py``): the checker's own walk with every check taken out
  (upgrade, downgrade, upgrade again per revision, env.py once), the same walk with only
  the schema round trip (catalog snapshots and comparisons), the same walk with the lint
  and the lock report but no snapshots (the check's cost with free snapshots), and pytest-alembic's
  two-step walk without its env.py per step: what no check can go below.

and prints wall times and their ratio, with the machine's load average next to them.

    python benchmarks/bench_histories.py [--dsn postgresql://...] [--only ckan] [--work DIR]

Without ``--dsn`` (or ``DBARCH_DSN``) a disposable server is started for the run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402

CONFTEST = """\
import pytest
import sqlalchemy
from pytest_alembic.config import Config


@pytest.fixture
def alembic_config():
    return Config(config_options={{"file": {ini!r}, "sqlalchemy.url": {url!r}}})


@pytest.fixture
def alembic_engine():
    engine = sqlalchemy.create_engine({url!r}, poolclass=sqlalchemy.pool.NullPool)
    yield engine
    engine.dispose()
"""

TESTS = "from pytest_alembic.tests import test_single_head_revision, test_up_down_consistency, test_upgrade  # noqa\n"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_dbarch(ini: Path, dsn: str, out: Path) -> tuple[float, int, list[dict[str, str]]]:
    """Wall time, exit code and findings (JSON lines) of ``dbarch migrations check``."""
    env = {**os.environ, "DBARCH_DSN": dsn}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest_dbarch.cli", "migrations", "check", str(ini), "--report-dir", "off",
         "--json", str(out)],
        cwd=ini.parent,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    (out.with_suffix(".stdout.txt")).write_text(result.stdout + result.stderr)
    findings = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return seconds, result.returncode, findings


def run_pytest_alembic(ini: Path, dsn: str, work: Path) -> tuple[float, str]:
    """Wall time and the last line of pytest-alembic's run; a run that did not get to
    migrate (a setup error) is said, never timed as if it had."""
    import psycopg
    from psycopg import sql

    from pytest_dbarch.postgres.external import connect_external

    server = connect_external(dsn, "the benchmark")
    name = f"bench_pytest_alembic_{os.getpid()}"
    with psycopg.connect(server.dsn(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        url = server.url(name)
        project = work / f"pytest-alembic-{ini.parent.name}"
        project.mkdir(parents=True, exist_ok=True)
        (project / "conftest.py").write_text(CONFTEST.format(ini=str(ini), url=url))
        (project / "test_history.py").write_text(TESTS)
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:dbarch", "-p", "no:cacheprovider", "-q", "--tb=line",
             "--rootdir", str(project), str(project)],
            cwd=ini.parent,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
        (project / "output.txt").write_text(result.stdout + result.stderr)
        if " error" in summary:
            raise SystemExit(f"pytest-alembic did not run on {ini}: {summary} (see {project / 'output.txt'})")
        return seconds, summary
    finally:
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run_floor(ini: Path, dsn: str) -> dict[str, float]:
    """The walks with no checks (``history_floor.py``), in a subprocess like the others."""
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parent / "history_floor.py"), str(ini), dsn],
        cwd=ini.parent,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        print(f"  floor: failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
        return {}
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def tally(findings: list[dict[str, str]]) -> str:
    counts = collections.Counter(f["status"] for f in findings if f["status"] != "passed")
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("DBARCH_DSN"))
    parser.add_argument("--only", action="append", default=[], help="history name (repeatable)")
    parser.add_argument("--work", default="/tmp/dbarch-corpus", help="where histories are prepared")
    parser.add_argument("--skip-pytest-alembic", action="store_true")
    parser.add_argument("--skip-floor", action="store_true")
    args = parser.parse_args()
    work = Path(args.work)

    databases = None
    dsn = args.dsn
    if not dsn:
        from pytest_dbarch.config import Settings
        from pytest_dbarch.postgres.databases import Databases

        databases = Databases(Settings(), "bench")
        dsn = databases.start().dsn()
    rows = []
    try:
        for history in corpus.HISTORIES:
            if args.only and history.name not in args.only:
                continue
            why = corpus.missing(history)
            if why:
                print(f"{history.name}: skipped: {why}")
                continue
            ini = corpus.prepare(history, work)
            count = corpus.revisions(ini)
            before = load()
            ours, code, findings = run_dbarch(ini, dsn, work / f"{history.name}.findings.jsonl")
            by_rule = collections.Counter((f["status"], f["rule"]) for f in findings if f["status"] != "passed")
            print(f"\n{history.name}: {count} revisions; dbarch migrations check: {ours:.1f} s, exit {code}, "
                  f"problems: {tally(findings)} (load {before})")
            for (status, rule), n in sorted(by_rule.items()):
                print(f"  {n:4d} {status:8s} {rule}")
            theirs, summary = (0.0, "skipped")
            if not args.skip_pytest_alembic:
                theirs, summary = run_pytest_alembic(ini, dsn, work)
                print(f"  pytest-alembic: {theirs:.1f} s ({summary}) (load {load()})")
            floor: dict[str, float] = {}
            if not args.skip_floor:
                floor = run_floor(ini, dsn)
                if floor:
                    print(f"  floor, our walk with no checks: {floor['round_trip']:.1f} s "
                          f"({floor['round_trip_steps']:.0f} steps, {floor['round_trip_rebuilds']:.0f} rebuilds); "
                          f"two-step walk, env.py once: {floor['two_steps']:.1f} s "
                          f"({floor['two_step_count']:.0f} steps) (load {load()})")
                    print(f"  walk + schema snapshots and comparisons only (no lint, locks, data): "
                          f"{floor['schema_only']:.1f} s ({floor['schema_steps']:.0f} steps, "
                          f"{floor['schema_rebuilds']:.0f} rebuilds)")
                    print(f"  walk + lint and lock report only (no snapshots, no data): "
                          f"{floor['observers_only']:.1f} s ({floor['observers_steps']:.0f} steps)")
            rows.append((history.name, count, ours, theirs, tally(findings), floor))
    finally:
        if databases is not None:
            databases.close()
    print("\n| history | revisions | dbarch | pytest-alembic | ratio | floor: our walk, no checks (ratio) "
          "| walk + schema snapshots only (ratio) | walk + lint and locks, free snapshots (ratio) "
          "| floor: two steps, env.py once | problems |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, count, ours, theirs, problems, floor in rows:
        ratio = f"{ours / theirs:.2f}x" if theirs else "-"
        walk = floor.get("round_trip")
        walk_text = f"{walk:.1f} s ({walk / theirs:.2f}x)" if walk and theirs else (f"{walk:.1f} s" if walk else "-")
        two = f"{floor['two_steps']:.1f} s" if floor else "-"
        schema = floor.get("schema_only")
        schema_text = f"{schema:.1f} s ({schema / theirs:.2f}x)" if schema and theirs else (f"{schema:.1f} s" if schema else "-")
        observed = floor.get("observers_only")
        observed_text = f"{observed:.1f} s" if observed else "-"
        if observed and theirs:
            observed_text += f" ({observed / theirs:.2f}x)"
        print(f"| {name} | {count} | {ours:.1f} s | {theirs:.1f} s | {ratio} | {walk_text} | {schema_text} "
              f"| {observed_text} | {two} | {problems} |")
    print(f"load average after the run: {load()}")


if __name__ == "__main__":
    main()
