"""``dbarch lint``: the schema lint of any database, outside pytest.

With ``--dsn`` it lints that database, every statement inside a READ ONLY transaction
with a statement timeout, so it is safe against a staging server or a production
replica. Without it, it builds the project's schema (the ``dbarch_alembic_ini`` /
``dbarch_metadata`` / ``dbarch_sql_files`` of the pytest configuration in the current
directory, or ``--alembic-ini`` / ``--metadata`` / ``--sql-file``) in a disposable
database (a server it starts, or the one ``DBARCH_DSN`` names) and lints that. The
project's ``dbarch_schema_lint_*`` settings apply in both cases; the options add to
them. Exit codes as for every ``dbarch`` command: 0 no failed finding, 1 failed
findings, 2 bad usage or a database that cannot be read.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from pytest_dbarch.commands import add_output_options, emit
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Ledger

STATEMENT_TIMEOUT = "60s"


def register(areas: Any) -> None:
    lint = areas.add_parser(
        "lint",
        help="schema architecture lint of a database (read-only) or of the project's schema",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    lint.add_argument("--dsn", help="lint this database (libpq DSN or postgresql:// URL), read-only")
    lint.add_argument("--models", help="the application's models as module:attribute (default: dbarch_models)")
    lint.add_argument("--rules", nargs="+", default=[], metavar="RULE",
                      help="run only these rules (ids or globs), or set severities: 'schema.fk-index=failed'")
    lint.add_argument("--ignore", action="append", default=[], metavar="'RULE OBJECT [REASON]'",
                      help="waive a rule for a table or object (repeatable)")
    lint.add_argument("--schema", action="append", default=[], help="lint only this schema (repeatable)")
    lint.add_argument("--stats", choices=("auto", "on", "off"),
                      help="statistics rules: auto (default: when 7+ days of statistics), on, off")
    lint.add_argument("--alembic-ini", help="build the schema from this alembic.ini (no --dsn)")
    lint.add_argument("--metadata", help="build the schema from this MetaData, module:attribute (no --dsn)")
    lint.add_argument("--sql-file", action="append", default=[], help="build the schema from these SQL files")
    lint.add_argument("--extension", action="append", default=[], help="extension to create first (repeatable)")
    lint.add_argument("--pg-bin", help="directory holding initdb and postgres [env: DBARCH_PG_BIN]")
    lint.add_argument("--list-rules", action="store_true", help="print every rule with its severity and exit")
    add_output_options(lint)
    lint.set_defaults(func=lint_command)


def list_rules() -> int:
    from pytest_dbarch.schema_lint.registry import RULES

    width = max(len(r.id) for r in RULES)
    for rule in RULES:
        needs = "" if rule.needs == "catalog" else f" [needs {rule.needs}]"
        policy = f" [on when dbarch_schema_lint_{rule.policy} is set]" if rule.policy else ""
        print(f"{rule.id:<{width}}  {rule.ref:<3}  {rule.default:<12}  {rule.why}{needs}{policy}")
    return 0


def _options(project: Any, args: argparse.Namespace) -> Any:
    """The project's ini policy, with the command line's on top."""
    from pytest_dbarch.schema_lint import options

    prefix = f"{project.path.name}: dbarch_schema_lint_" if project.path else "dbarch_schema_lint_"
    from_ini = options.from_values(
        {
            "rules": project.lines("dbarch_schema_lint_rules"),
            "ignore": project.lines("dbarch_schema_lint_ignore"),
            "pk_types": project.lines("dbarch_schema_lint_pk_types"),
            "strings": project.get("dbarch_schema_lint_strings"),
            "naming": project.lines("dbarch_schema_lint_naming"),
            "required_columns": project.lines("dbarch_schema_lint_required_columns"),
            "stats": project.get("dbarch_schema_lint_stats"),
            "schemas": project.lines("dbarch_schema_lint_schemas"),
        },
        prefix=prefix,
    )
    command_line = {"rules": args.rules, "ignore": args.ignore, "stats": args.stats, "schemas": args.schema}
    return options.from_values(command_line, prefix="--", base=from_ini)


def _models(project: Any, args: argparse.Namespace) -> Any:
    from pytest_dbarch.schema_lint import intent

    if args.models:
        return intent.load(args.models, "--models")
    for key in ("dbarch_models", "dbarch_metadata", "dbarch_migrations_metadata"):
        if project.get(key):
            return intent.load(str(project.get(key)).strip(), key)
    if args.metadata:
        return intent.load(args.metadata, "--metadata")
    return None


def _masked(dsn: str) -> str:
    from pytest_dbarch.postgres.external import parse_dsn

    params = parse_dsn(dsn)
    return " ".join(f"{k}={v}" for k, v in params.items() if k != "password") or "(defaults)"


def _lint_dsn(dsn: str, options: Any, models: Any) -> Any:
    import psycopg

    from pytest_dbarch.postgres.external import parse_dsn
    from pytest_dbarch.schema_lint import lint

    params = parse_dsn(dsn)
    try:
        conn = psycopg.connect(**{"connect_timeout": 10, **params})
    except psycopg.OperationalError as exc:
        raise DbarchError(
            f"cannot connect to --dsn ({_masked(dsn)}): {' '.join(str(exc).split())}",
            "check the host, port, database, user and password of the DSN",
        ) from None
    with conn:
        conn.read_only = True
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
                return lint.lint(conn, options, models)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise DbarchError(
                f"the role {conn.info.user!r} may not read the catalog of {conn.info.dbname}: "
                f"{' '.join(str(exc).split())}",
                "use a role with pg_read_all_data (or pg_monitor for the statistics), or --stats off",
            ) from None
        except psycopg.Error as exc:
            raise DbarchError(
                f"reading the catalog of {conn.info.dbname} failed: {' '.join(str(exc).split())}",
                f"retry when the server is less busy (every statement has a {STATEMENT_TIMEOUT} timeout)",
            ) from None


def _lint_build(project: Any, args: argparse.Namespace, options: Any, models: Any) -> tuple[Any, str]:
    import psycopg

    from pytest_dbarch.config import Settings
    from pytest_dbarch.postgres.databases import Databases
    from pytest_dbarch.postgres.template import SchemaSource
    from pytest_dbarch.schema_lint import lint

    root = project.rootdir
    source = SchemaSource(
        alembic_ini=args.alembic_ini or (None if args.metadata or args.sql_file else project.get("dbarch_alembic_ini")),
        metadata=args.metadata or (None if args.alembic_ini or args.sql_file else project.get("dbarch_metadata")),
        sql_files=tuple(args.sql_file) or (() if args.alembic_ini or args.metadata else project.words("dbarch_sql_files")),
        extensions=tuple(args.extension) or project.words("dbarch_extensions"),
        rootdir=str(Path.cwd() if args.alembic_ini or args.metadata or args.sql_file else root),
    )
    if source.describe() == "empty":
        raise DbarchError(
            f"no schema to lint: no --dsn, and {project.path or Path.cwd()} names no schema source",
            "give --dsn, or --alembic-ini / --metadata / --sql-file, or run where pytest's configuration sets "
            "dbarch_alembic_ini, dbarch_metadata or dbarch_sql_files",
        )
    dsn = os.environ.get("DBARCH_DSN") or None
    settings = Settings(
        dsn=dsn,
        pg_bin=args.pg_bin or os.environ.get("DBARCH_PG_BIN") or None,
        sources={"dsn": "env DBARCH_DSN"},
        rootdir=source.rootdir,
    )
    databases = Databases(settings, "cli")
    try:
        server = databases.start()
        template = databases.template_for(source)
        with psycopg.connect(server.dsn(template)) as conn:
            conn.read_only = True
            result = lint.lint(conn, options, models, fresh=True)
    finally:
        databases.close()
    return result, source.describe()


def lint_command(args: argparse.Namespace) -> int:
    from pytest_dbarch.schema_lint import project as project_module

    if args.list_rules:
        return list_rules()
    cwd = Path.cwd()
    project = project_module.read(cwd)
    project_module.add_pythonpath(project)
    options = _options(project, args)
    models = _models(project, args)
    if args.dsn:
        result, target = _lint_dsn(args.dsn, options, models), _masked(args.dsn)
    else:
        result, target = _lint_build(project, args, options, models)
    ledger = Ledger()
    ledger.extend(result.findings)
    print(
        f"dbarch lint: {target}: {len(result.ran)} rules on {result.tables} tables and views in "
        f"{result.seconds:.2f} s" + (f" (models {models.target})" if models is not None and models.target else "")
    )
    if args.verbose:
        for rule, why in result.skipped.items():
            print(f"  not run: {rule}: {why}")
    emit(ledger, args, cwd)
    return 1 if result.failed() else 0
