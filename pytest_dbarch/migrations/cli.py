"""``dbarch migrations check``: every migration check of a history, outside pytest.

Finds ``alembic.ini`` in the current directory (or takes an alembic.ini path or a SQL
directory), starts a disposable server (or uses ``--dsn`` / ``DBARCH_DSN``), runs the
checks, prints the findings and writes the ``.temp/`` report as pytest does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path
from typing import Any

from pytest_dbarch.commands import add_output_options, emit
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Ledger


def register(areas: Any) -> None:
    migrations = areas.add_parser("migrations", help="migration checks")
    commands = migrations.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check",
        help="round trips, data round trips, drift, single head and empty downgrades of a history",
        description="Exit codes: 0 every check passed, 1 a check failed, 2 bad usage (no such source) "
        "or a server that was not reached, 130 interrupted.",
    )
    check.add_argument("source", nargs="?", help="alembic.ini or a directory of .sql migrations (default: ./alembic.ini)")
    check.add_argument("--dsn", help="use an existing server instead of starting one [env: DBARCH_DSN]")
    check.add_argument("--pg-bin", help="directory holding initdb and postgres [env: DBARCH_PG_BIN]")
    check.add_argument("--heads", nargs="*", default=(), help="the heads the history is meant to have")
    check.add_argument("--min-downgrade", help="oldest revision ever downgraded")
    check.add_argument("--metadata", help="models to compare with, as module:attribute (default: env.py's)")
    check.add_argument("--no-data", action="store_true", help="skip data round trips")
    check.add_argument("--no-drift", action="store_true", help="skip the comparison with the models")
    check.add_argument("--since", metavar="REF", help="round-trip only revisions whose files were added since git REF")
    check.add_argument("--extension", action="append", default=[], help="extension to create first (repeatable)")
    check.add_argument(
        "--column-order",
        choices=("warning", "failed", "off"),
        default="warning",
        help="severity when a downgrade restores every column but not their order (default: warning)",
    )
    check.add_argument(
        "--workers",
        default="auto",
        help="processes that share the round trips: auto (one per core, at most 4, for 24+ revisions) or a number",
    )
    check.add_argument("--json", metavar="FILE", help="also write every finding to FILE, one JSON object a line")
    add_output_options(check)
    check.set_defaults(func=check_command)


def _added_files(ref: str, cwd: Path) -> set[str]:
    try:
        out = subprocess.run(
            ["git", "diff", "--name-only", "--diff-filter=A", f"{ref}...HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise DbarchError(
            f"--since {ref}: git cannot list the files added since {ref}: {detail.strip()}",
            "run inside a git work tree and name a branch or commit that exists (e.g. origin/main)",
        ) from None
    return {str((Path(top) / line).resolve()) for line in out.splitlines() if line}


def _usable_server(databases: Any) -> None:
    """Reach the server before any check runs: a server that cannot be used is a usage
    error (exit 2), said with this command's own option names."""
    try:
        databases.start()
    except DbarchError as exc:
        databases.close()
        raise DbarchError(
            "the server was not reached: " + _cli_spelling(exc.cause), _cli_spelling(exc.fix)
        ) from None


def _cli_spelling(text: str) -> str:
    return text.replace("--dbarch-dsn", "--dsn").replace("--dbarch-pg-bin", "--pg-bin")


def suite_workers(value: str) -> int | None:
    from pytest_dbarch.migrations.workers import parse_setting

    return parse_setting(value, "--workers")


def check_command(args: argparse.Namespace) -> int:
    from pytest_dbarch.config import Settings
    from pytest_dbarch.migrations import suite, summary
    from pytest_dbarch.postgres.databases import Databases

    cwd = Path.cwd()
    source = args.source or "alembic.ini"
    if not (cwd / source).exists():
        where = f"no alembic.ini in {cwd}" if not args.source else f"{source} does not exist ({(cwd / source).resolve()})"
        raise DbarchError(
            where,
            "run in the project directory, or give the path of alembic.ini or of a directory of .sql migrations",
        )
    workers = suite_workers(args.workers)
    dsn = args.dsn or os.environ.get("DBARCH_DSN") or None
    settings = Settings(
        dsn=dsn,
        pg_bin=args.pg_bin or os.environ.get("DBARCH_PG_BIN") or None,
        sources={"dsn": "--dsn" if args.dsn else "env DBARCH_DSN"},
        rootdir=str(cwd),
    )
    the_plan = suite.plan(source, cwd)
    only = None
    if args.since:
        added = _added_files(args.since, cwd)
        only = frozenset(r.id for r in the_plan.revisions if str(Path(r.path).resolve()) in added)
    options = suite.Options(
        heads=tuple(args.heads),
        min_downgrade=args.min_downgrade,
        data=not args.no_data,
        drift=not args.no_drift,
        metadata=args.metadata,
        extensions=tuple(args.extension),
        only=only,
        column_order=args.column_order,
        workers=workers,
    )
    databases = Databases(settings, "cli")
    _usable_server(databases)
    try:
        results = suite.run(the_plan, databases, options)
    finally:
        databases.close()
    ledger = Ledger()
    ledger.extend(results.all())
    revisions = len(the_plan.revisions) if only is None else f"{len(only)} of {len(the_plan.revisions)}"
    print(
        f"dbarch migrations check: {the_plan.source}: {revisions} revisions checked in {results.seconds:.1f} s "
        f"({results.steps} upgrade/downgrade steps, {results.rebuilds} rebuilds"
        + (f", {results.processes} processes" if results.processes > 1 else "")
        + ")"
    )
    for note in results.notes:
        print(f"  note: {note}")
    if args.json:
        Path(args.json).write_text("".join(f.to_json() + "\n" for f in results.all()))
    emit(ledger, args, cwd, lines=None if args.verbose else summary.lines(results))
    return 1 if results.problems() else 0
