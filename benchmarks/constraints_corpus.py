"""Constraint property tests on real schemas: ``.rows()`` and ``.check()`` on every table.

The schemas are other projects' (never copied here): the Alembic histories of
``corpus.py`` upgraded to head (warehouse, CKAN, zou), lago's Rails ``db/structure.sql``,
pagila's schema and MusicBrainz's core schema (its ``admin/sql`` scripts in the order its
``InitDb.pl`` runs them, in schema ``musicbrainz``), each read from a local git mirror at a
pinned commit. For each:

- ``rows``: every table gets ``max_examples`` rows from ``.rows(table)`` under
  hypothesis, each inserted (empty parents filled first with ``.fill(parent, 5)``); the
  tally is drawn / accepted / refused by PostgreSQL, and the tables whose draw stopped
  with an error (a key made of foreign keys only runs out of the five parents' keys:
  that stop is the intended behaviour, listed so a new kind of error shows);
- ``check``: ``.check()`` on every table; each finding that did not pass is printed with
  its evidence, for a reviewer to judge, then the counts per rule and status.

    python benchmarks/constraints_corpus.py [rows|check] [NAME ...]   # default: both, all

Needs the corpus histories' extra modules (see ``corpus.py``) and the mirrors under
``$DBARCH_CORPUS_MIRRORS`` (default ``/work/.mirror``); a schema whose mirror is missing is
skipped with the reason. Starts its own PostgreSQL through the plugin's server code.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

import corpus  # noqa: E402
from pytest_dbarch.config import Settings  # noqa: E402
from pytest_dbarch.constraints.api import Constraints  # noqa: E402
from pytest_dbarch.postgres import catalog as catalog_module  # noqa: E402
from pytest_dbarch.postgres.databases import Databases  # noqa: E402

# SQL schemas: name -> (owner/repo, commit, path); lines a plain server cannot run are dropped
DUMPS = {
    "lago": ("getlago/lago-api", "1b1c24a6a", "db/structure.sql"),
    "pagila": ("devrimgunduz/pagila", "5ba5a57", "pagila-schema.sql"),
}
# Schemas built from several scripts: name -> (owner/repo, commit, [paths], schema the tables live in)
SCRIPTS = {
    "musicbrainz": ("metabrainz/musicbrainz-server", "11cd769a59", [
        f"admin/sql/{part}.sql" for part in (
            "Extensions", "CreateCollations", "CreateTypes", "CreateTables", "CreatePrimaryKeys",
            "CreateSearchConfiguration", "CreateFunctions", "CreateIndexes", "CreateFKConstraints",
            "CreateConstraints", "CreateViews", "CreateTriggers")], "musicbrainz"),
}
UNRUNNABLE = re.compile(r"(?m)^(CREATE EXTENSION IF NOT EXISTS pg_partman.*|.*OWNER TO .*|\\.*)$")
SKIPPED_TABLES = {"schema_migrations", "ar_internal_metadata", "alembic_version"}
ROWS_PER_TABLE = 30


def load_dump(name: str) -> Callable[[str, str], None] | str:
    repo, commit, path = DUMPS[name]
    git_dir = corpus.MIRRORS / repo.replace("/", "+") / "repo"
    if not git_dir.is_dir():
        return f"no git mirror of {repo} at {git_dir}"
    text = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"],
                          capture_output=True, text=True, check=True).stdout

    def load(dsn: str, url: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(UNRUNNABLE.sub("", text).encode())

    return load


def load_scripts(name: str) -> Callable[[str, str], None] | str:
    repo, commit, paths, schema = SCRIPTS[name]
    git_dir = corpus.MIRRORS / repo.replace("/", "+") / "repo"
    if not git_dir.is_dir():
        return f"no git mirror of {repo} at {git_dir}"
    texts = [subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"],
                            capture_output=True, text=True, check=True).stdout for path in paths]

    def load(dsn: str, url: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            database = conn.info.dbname
            conn.execute(f"CREATE SCHEMA {schema}")
            conn.execute(f"ALTER DATABASE {database} SET search_path = {schema}, public")
        with psycopg.connect(dsn, autocommit=True) as conn:  # a new session sees the search_path
            for text in texts:
                conn.execute(UNRUNNABLE.sub("", text).encode())

    return load


def load_history(name: str, scratch: Path) -> Callable[[str, str], None] | str:
    history = next(h for h in corpus.HISTORIES if h.name == name)
    why = corpus.missing(history)
    if why:
        return why
    ini = corpus.prepare(history, scratch)

    def load(dsn: str, url: str) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config(str(ini))
        config.set_main_option("sqlalchemy.url", url.replace("postgresql://", "postgresql+psycopg://", 1))
        sys.path.insert(0, str(ini.parent))
        command.upgrade(config, "heads")

    return load


def tables_of(conn: psycopg.Connection[Any]) -> list[str]:
    found = catalog_module.read(conn)
    return [name for name, table in found.tables.items()
            if table.kind in ("table", "partitioned table") and not table.is_partition
            and table.schema in ("public", *(schema for *_, schema in SCRIPTS.values()))
            and table.name not in SKIPPED_TABLES]


def rows_trial(conn: psycopg.Connection[Any], api: Constraints, tables: list[str]) -> None:
    tally: collections.Counter[str] = collections.Counter()
    stopped = []
    for table in tables:
        spec = api.spec(table)
        for fk in spec.foreign_keys:
            if not conn.execute(f"SELECT EXISTS (SELECT 1 FROM {fk.parent})").fetchone()[0]:  # type: ignore[index]
                api.fill(fk.parent, 5)
        outcomes = []

        @settings(max_examples=ROWS_PER_TABLE, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(api.rows(table))
        def insert(row: dict[str, Any]) -> None:
            outcomes.append((row, api._probe.insert(spec, row, keep=True)))

        try:
            insert()
        except Exception as exc:  # noqa: BLE001 - listed, judged by whoever reads the output
            stopped.append(f"{table}: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
        for row, outcome in outcomes:
            tally["drawn"] += 1
            tally["accepted" if outcome.ok else "refused"] += 1
            if not outcome.ok:
                print(f"   REFUSED {table}: {outcome.describe()[:200]} {row}")
    print(f"   rows: {tally['drawn']} drawn, {tally['accepted']} accepted, {tally['refused']} refused by PostgreSQL")
    for line in stopped:
        print(f"   draw stopped: {line}")


def check_trial(api: Constraints, tables: list[str]) -> None:
    started = time.perf_counter()
    findings = api.check(*tables)
    print(f"   check: {len(findings)} findings in {time.perf_counter() - started:.1f} s")
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for finding in findings:
        counts[(finding.rule, finding.status.value)] += 1
        if finding.status.value != "passed":
            print(f"   - {finding.status.value} {finding.rule} {finding.where}: {finding.title}")
            print(f"       {finding.evidence.splitlines()[0][:300] if finding.evidence else ''}")
    for (rule, status), count in sorted(counts.items()):
        print(f"   {rule:40s} {status:8s} {count}")


def main() -> None:
    args = sys.argv[1:]
    modes = [a for a in args if a in ("rows", "check")] or ["rows", "check"]
    names = [a for a in args if a not in ("rows", "check")] or [*(h.name for h in corpus.HISTORIES), *DUMPS, *SCRIPTS]
    scratch = Path(tempfile.mkdtemp(prefix="dbarch-constraints-corpus-"))
    databases = Databases(Settings(dsn=os.environ.get("DBARCH_DSN"), sources={"dsn": "env"}), "corpus")
    try:
        server = databases.start()
        for name in names:
            loader = (load_dump(name) if name in DUMPS else load_scripts(name) if name in SCRIPTS
                      else load_history(name, scratch))
            if isinstance(loader, str):
                print(f"{name}: skipped: {loader}")
                continue
            for mode in modes:
                database = databases._janitor().create(databases._janitor().new_name(name))
                loader(server.dsn(database), server.url(database))
                with psycopg.connect(server.dsn(database)) as conn:
                    tables = tables_of(conn)
                    print(f"{name} ({len(tables)} tables), {mode}:")
                    api = Constraints(conn, seed="corpus")
                    rows_trial(conn, api, tables) if mode == "rows" else check_trial(api, tables)
                    conn.rollback()
    finally:
        databases.close()
        subprocess.run(["rm", "-rf", str(scratch)], check=False)


if __name__ == "__main__":
    main()
