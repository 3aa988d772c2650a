"""How long a full migration round trip with catalog diffs takes on a long history.

Generates a linear Alembic history of N revisions (default 150: tables with foreign
keys, indexes, check constraints, added columns, views, functions, comments) and times,
on one disposable server, in the same run:

- pytest-dbarch: every revision upgraded, snapshotted, downgraded, compared, upgraded
  again and compared (catalog snapshots of the whole schema), with and without the data
  round trip, in one process and with ``dbarch_migrations_workers = auto`` (one process
  per core);
- a classic stairway test on one database (``alembic upgrade rev``, ``downgrade -1``,
  ``upgrade rev`` for every revision through Alembic's commands, no comparison at all).

    python benchmarks/bench_migrations.py [--revisions 150] [--dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ENV_PY = """\
from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
"""

REVISION = '''\
"""{doc}"""
from alembic import op

revision = {rev!r}
down_revision = {down!r}


def upgrade():
{up}


def downgrade():
{down_body}
'''


def _steps(n: int) -> tuple[list[str], list[str], str]:
    """The n-th revision's upgrade and downgrade SQL (a rotation of common changes)."""
    t, prev = f"t{n}", f"t{n - 1}"
    kind = n % 5
    if n == 1 or kind == 0:
        up = [
            f"CREATE TABLE {t} (id bigserial PRIMARY KEY, name text NOT NULL, status text NOT NULL "
            f"DEFAULT 'new', created_at timestamptz NOT NULL DEFAULT now(), "
            f"CONSTRAINT ck_{t}_status CHECK (status IN ('new', 'done')))",
            f"CREATE INDEX ix_{t}_status ON {t} (status)",
        ]
        return up, [f"DROP TABLE {t}"], f"create {t}"
    base = f"t{(n // 5) * 5 or 1}"
    if kind == 1:
        return (
            [f"ALTER TABLE {base} ADD COLUMN c{n} integer", f"COMMENT ON COLUMN {base}.c{n} IS 'column {n}'"],
            [f"ALTER TABLE {base} DROP COLUMN c{n}"],
            f"add {base}.c{n}",
        )
    if kind == 2:
        return (
            [f"CREATE TABLE {t} (id bigserial PRIMARY KEY, {base}_id bigint NOT NULL REFERENCES {base} (id) ON DELETE CASCADE)",
             f"CREATE INDEX ix_{t}_{base}_id ON {t} ({base}_id)"],
            [f"DROP TABLE {t}"],
            f"create {t} referencing {base}",
        )
    if kind == 3:
        return (
            [f"CREATE VIEW v{n} AS SELECT id, name FROM {base} WHERE status = 'new'",
             f"CREATE FUNCTION f{n}() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM {base} $$"],
            [f"DROP FUNCTION f{n}()", f"DROP VIEW v{n}"],
            f"view and function on {base}",
        )
    return (
        [f"CREATE TYPE e{n} AS ENUM ('a', 'b')", f"CREATE SEQUENCE s{n}", f"GRANT SELECT ON {base} TO PUBLIC"],
        [f"REVOKE SELECT ON {base} FROM PUBLIC", f"DROP SEQUENCE s{n}", f"DROP TYPE e{n}"],
        f"enum, sequence and grant on {base}",
    )


def write_history(root: Path, count: int) -> Path:
    (root / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/migrations\n")
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    previous = None
    for n in range(1, count + 1):
        up, down, doc = _steps(n)
        rev = f"{n:04d}"
        (versions / f"{rev}.py").write_text(
            REVISION.format(
                doc=doc,
                rev=rev,
                down=previous,
                up="\n".join(f"    op.execute({s!r})" for s in up),
                down_body="\n".join(f"    op.execute({s!r})" for s in down),
            )
        )
        previous = rev
    return root / "alembic.ini"


def stairway(ini: Path, url: str, revisions: list[str]) -> float:
    """Classic stairway on one database: up, down one, up again, per revision."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    cfg = Config(str(ini))
    engine = create_engine(url, poolclass=NullPool)
    started = time.perf_counter()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        for rev in revisions:
            command.upgrade(cfg, rev)
            command.downgrade(cfg, "-1")
            command.upgrade(cfg, rev)
    engine.dispose()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=150)
    parser.add_argument("--dsn", default=os.environ.get("DBARCH_DSN"))
    args = parser.parse_args()

    from pytest_dbarch.config import Settings
    from pytest_dbarch.migrations import suite
    from pytest_dbarch.migrations.scratch import Scratch
    from pytest_dbarch.postgres.databases import Databases

    settings = Settings(dsn=args.dsn, sources={"dsn": "--dsn"})
    databases = Databases(settings, "bench")
    with tempfile.TemporaryDirectory(prefix="dbarch-bench-") as tmp:
        ini = write_history(Path(tmp), args.revisions)
        try:
            server = databases.start()
            print(f"server: {server.source}; cores: {os.cpu_count()}; revisions: {args.revisions}")
            figures = {}
            runs = (
                ("round trips + catalog diffs", False, 1),
                ("... + data round trips", True, 1),
                ("round trips + catalog diffs, workers auto", False, None),
                ("... + data round trips, workers auto", True, None),
            )
            for label, data, workers in runs:
                the_plan = suite.plan(str(ini))
                started = time.perf_counter()
                results = suite.run(the_plan, databases, suite.Options(data=data, drift=False, workers=workers))
                figures[label] = time.perf_counter() - started
                checked = len(results.by_rule("migrations.round-trip"))
                problems = len(results.problems())
                print(f"pytest-dbarch {label}: {figures[label]:.1f} s ({checked} revisions, {problems} problems, "
                      f"{results.processes} process{'es' if results.processes > 1 else ''})")
            scratch = Scratch(databases)
            db = scratch.create()
            try:
                revisions = [r.id for r in suite.plan(str(ini)).revisions]
                figures["stairway"] = stairway(ini, db.url, revisions)
            finally:
                scratch.drop(db)
            print(f"classic stairway (alembic commands, no comparison): {figures['stairway']:.1f} s")
            ratio = figures["round trips + catalog diffs"] / figures["stairway"]
            print(f"round trips with catalog diffs / stairway: {ratio:.2f}x")
        finally:
            databases.close()


if __name__ == "__main__":
    main()
