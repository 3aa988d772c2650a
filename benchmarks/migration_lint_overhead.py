"""What the lock-safety lint and the lock report cost per migration statement.

Runs a generated 150-revision history (a table per revision, then typical changes to
the tables of earlier revisions, rows in every table so the facts are real) through
``lint_sql`` three ways on a disposable server: no observers, the lint alone, the lint
and the lock report. Prints the best of several interleaved rounds: milliseconds per
statement, the added milliseconds and the ratio to the bare run.

    .venv/bin/python benchmarks/migration_lint_overhead.py [revisions] [rounds]
"""

from __future__ import annotations

import sys
import time

import psycopg

from pytest_dbarch.config import Settings
from pytest_dbarch.migrations.lint import LockReport, LockSafetyLint, lint_sql
from pytest_dbarch.migrations.statements import split_script
from pytest_dbarch.postgres.databases import Databases


def history(revisions: int) -> list[tuple[str, str]]:
    steps = []
    for n in range(1, revisions + 1):
        script = [
            f"CREATE TABLE t{n} (id bigint PRIMARY KEY, name text, score int)",
            f"INSERT INTO t{n} SELECT g, 'x', g FROM generate_series(1, 100) g",
            f"CREATE INDEX ix_t{n}_name ON t{n} (name)",
        ]
        if n > 1:
            old = f"t{n - 1}"
            script += [
                "SET lock_timeout = '2s'",
                f"ALTER TABLE {old} ADD COLUMN note text",
                f"ALTER TABLE {old} ADD CONSTRAINT ck_{old}_score CHECK (score >= 0) NOT VALID",
                f"CREATE INDEX ix_{old}_score ON {old} (score)",
                f"ALTER TABLE {old} ALTER COLUMN name SET NOT NULL",
            ]
        steps.append((f"{n:04d}", ";\n".join(script)))
    return steps


def run(dsn: str, steps: list[tuple[str, str]], observers: str) -> tuple[float, int]:
    statements = 0
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        for revision, script in steps:
            made = {"none": [], "lint": [LockSafetyLint()], "lint+locks": [LockSafetyLint(), LockReport()]}
            lint_sql(conn, script, revision, observers=made[observers])
            statements += len(split_script(script))
        return time.perf_counter() - started, statements


def main() -> None:
    revisions = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    steps = history(revisions)
    databases = Databases(Settings())
    try:
        server = databases.start()
        janitor = databases.janitor
        assert janitor is not None
        print(f"PostgreSQL {server.version}, {revisions} revisions, best of {rounds} interleaved rounds")
        best: dict[str, float] = {}
        statements = 0
        for _ in range(rounds):  # interleaved, so a noisy neighbour hurts every variant alike
            for observers in ("none", "lint", "lint+locks"):
                name = janitor.create(janitor.new_name("bench"))
                seconds, statements = run(server.dsn(name), steps, observers)
                janitor.drop(name)
                best[observers] = min(best.get(observers, seconds), seconds)
        for observers, seconds in best.items():
            per = seconds / statements * 1000
            extra = (seconds - best["none"]) / statements * 1000
            print(
                f"{observers:>11}: {seconds:6.2f} s for {statements} statements, {per:.2f} ms/statement, "
                f"+{extra:.2f} ms/statement, {seconds / best['none']:.2f}x"
            )
    finally:
        databases.close()


if __name__ == "__main__":
    main()
