"""Every setting declared once: CLI flag, ini key, env var, default and help.

Resolved once per session into a frozen ``Settings``; each value remembers where it
came from so the report header can say so. Precedence: CLI > env > ini > default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

ISOLATION_MODES = ("transaction", "clone")
NPLUSONE_MODES = ("warn", "error", "off")


@dataclass(frozen=True)
class Option:
    """One setting: where it can be given and what it means."""

    name: str
    help: str
    default: Any = None
    flag: str | None = None
    env: str | None = None
    kind: Literal["string", "linelist", "int"] = "string"
    choices: tuple[str, ...] | None = None

    @property
    def ini(self) -> str:
        return f"dbarch_{self.name}"


OPTIONS: tuple[Option, ...] = (
    Option(
        "dsn",
        "use an existing PostgreSQL server (libpq DSN or postgresql:// URL) instead of "
        "starting one; only databases the plugin creates are ever dropped",
        flag="--dbarch-dsn",
        env="DBARCH_DSN",
    ),
    Option(
        "isolation",
        "default per-test isolation: 'transaction' (rolled back, fast) or 'clone' "
        "(a fresh database from the template)",
        default="transaction",
        flag="--dbarch-isolation",
        env="DBARCH_ISOLATION",
        choices=ISOLATION_MODES,
    ),
    Option(
        "pg_bin",
        "directory holding the PostgreSQL server binaries (initdb, postgres)",
        flag="--dbarch-pg-bin",
        env="DBARCH_PG_BIN",
    ),
    Option(
        "port",
        "TCP port for the disposable server (default: a free one)",
        flag="--dbarch-port",
        env="DBARCH_PORT",
        kind="int",
    ),
    Option(
        "run_as",
        "unprivileged user that runs the server when pytest runs as root "
        "(default: 'postgres' if it exists, else a 'dbarch' user created on demand)",
        flag="--dbarch-run-as",
        env="DBARCH_RUN_AS",
    ),
    Option(
        "alembic_ini",
        "schema source: an alembic.ini whose history is upgraded to head in the template",
        flag="--dbarch-alembic-ini",
    ),
    Option(
        "metadata",
        "schema source: SQLAlchemy MetaData as 'module:attribute' (create_all in the template)",
        flag="--dbarch-metadata",
    ),
    Option(
        "sql_files",
        "schema source: SQL files run in order in the template",
        kind="linelist",
        default=(),
    ),
    Option(
        "extensions",
        "extensions to create in the template before the schema (e.g. pg_trgm)",
        kind="linelist",
        default=(),
    ),
    Option(
        "server_options",
        "extra server settings for the disposable server, one 'name=value' per line",
        kind="linelist",
        default=(),
    ),
    # --- reports and CI gates (issue 5)
    Option(
        "report_dir",
        "directory of the .temp/ agent-checklist report, relative to the rootdir "
        "(a command-line value: to the current directory); 'off' writes none",
        default=".temp",
        flag="--dbarch-report-dir",
        env="DBARCH_REPORT_DIR",
    ),
    Option(
        "agent_id",
        "agentId written in the report's task-status file",
        default="pytest-dbarch",
        flag="--dbarch-agent-id",
        env="DBARCH_AGENT_ID",
    ),
    Option(
        "report_description",
        "description written in the report's task-status file "
        "(default: 'Database architecture checks of <rootdir name> (pytest-dbarch)')",
        flag="--dbarch-report-description",
    ),
    Option(
        "report_reuse",
        "'on': a re-run updates the same open task (same id) of this project; "
        "'off': every session starts a new task id",
        default="on",
        flag="--dbarch-report-reuse",
        env="DBARCH_REPORT_REUSE",
        choices=("on", "off"),
    ),
    Option(
        "gate",
        "finding severities that fail the session whatever the tests did: a "
        "comma-separated list of failed, error, warning (default: off)",
        flag="--dbarch-gate",
        env="DBARCH_GATE",
    ),
    # --- migration lint (issue 4)
    Option(
        "migration_lint_ignore",
        "lock-safety lint rules to switch off for the whole project, one id per line "
        "(e.g. migrations.lint.prefer-text-field); prefer a '-- dbarch: allow <rule> because "
        "<reason>' waiver in the migration",
        kind="linelist",
        default=(),
    ),
    # --- migrations (issue 4)
    Option(
        "migrations",
        "migration history to check (an alembic.ini or a directory of .sql migrations): "
        "round trips, data round trips, drift, single head, empty downgrades, one test "
        "item per check per revision",
        flag="--dbarch-migrations",
        env="DBARCH_MIGRATIONS",
    ),
    Option(
        "migrations_heads",
        "the heads the migration history is meant to have (default: exactly one)",
        kind="linelist",
        default=(),
    ),
    Option(
        "migrations_min_downgrade",
        "oldest revision that is ever downgraded; it and its ancestors are not round-tripped",
    ),
    Option(
        "migrations_metadata",
        "models to compare the migrated schema with, as 'module:attribute' "
        "(default: env.py's target_metadata)",
    ),
    Option(
        "migrations_data",
        "data round trips (seed rows, downgrade, upgrade, compare): 'on' or 'off'",
        default="on",
        choices=("on", "off"),
    ),
    Option(
        "migrations_drift",
        "compare the schema at head with the models: 'on' or 'off'",
        default="on",
        choices=("on", "off"),
    ),
    # --- queries (issue 3)
    Option(
        "nplusone",
        "N+1 detection for every test: 'warn' (findings in the summary), 'error' (the "
        "test fails) or 'off'; per test: @pytest.mark.nplusone(mode=...)",
        default="warn",
        flag="--dbarch-nplusone",
        choices=NPLUSONE_MODES,
    ),
    Option(
        "nplusone_threshold",
        "N+1: distinct parents (lazy loads) or parameter sets (same query, same call stack) "
        "that make an N+1",
        default=2,
        kind="int",
    ),
    Option(
        "repeated_query_threshold",
        "the same statement with the same parameters this many times is a warning (cacheable)",
        default=3,
        kind="int",
    ),
    Option(
        "write_loop_threshold",
        "this many single-row writes of one shape from one call stack is a warning (use a bulk write)",
        default=5,
        kind="int",
    ),
    Option(
        "nplusone_ignore",
        "N+1 findings to ignore, one per line: relationship:Account.contacts, "
        "fingerprint:<8 hex>, file:<path glob>, function:<name>",
        kind="linelist",
        default=(),
    ),
    Option(
        "nplusone_baseline",
        "file of accepted finding ids (one per line, '#' comments): they warn, never fail",
    ),
    Option(
        "large_tables",
        "tables too large to read whole: an unbounded read of one is a query-lint finding",
        kind="linelist",
        default=(),
    ),
    Option(
        "query_lint_off",
        "query-lint rules to switch off: select-star, unbounded-read, table-read-in-loop, or all",
        kind="linelist",
        default=(),
    ),
    # --- models: the application's intent (issues 9 and 10)
    Option(
        "models",
        "the application's models as 'module:attribute' (a MetaData or a declarative "
        "base): the intent constraint checks and schema lint compare the database with "
        "(default: dbarch_metadata, else dbarch_migrations_metadata)",
    ),

    # --- constraint property tests (issue 9)

    # --- schema lint (issue 10)

    # --- concurrency harness (issue 11)

    # --- query budgets (issue 17)
    Option(
        "budget_save",
        "write the figures query budgets measured (blocks, p95, plan facts per test and "
        "statement) to this JSON file, the baseline for --dbarch-budget-compare",
        flag="--dbarch-budget-save",
    ),
    Option(
        "budget_compare",
        "fail a budgeted test whose statement touches more blocks than in this baseline "
        "file (from --dbarch-budget-save) by more than the tolerance; a slower p95 warns",
        flag="--dbarch-budget-compare",
        env="DBARCH_BUDGET_COMPARE",
    ),
    Option(
        "budget_tolerance",
        "how much worse than the baseline a figure may be, as a fraction: 0.1 allows a tenth "
        "more blocks (a number with a trailing percent sign works too)",
        default="10%",
        flag="--dbarch-budget-tolerance",
    ),
    Option(
        "budget_latency_scale",
        "multiplies every p95_ms budget, for slow CI machines (e.g. 3); blocks are not scaled",
        default="1",
        flag="--dbarch-budget-latency-scale",
        env="DBARCH_BUDGET_LATENCY_SCALE",
    ),

    # --- drivers (issue 14)

    # --- adoption in web apps (issue 15)

    # --- fast start, caches, security (issues 16 and 18)

)


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one session, with the source of each value."""

    dsn: str | None = None
    isolation: str = "transaction"
    pg_bin: str | None = None
    port: int | None = None
    run_as: str | None = None
    alembic_ini: str | None = None
    metadata: str | None = None
    sql_files: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    server_options: tuple[str, ...] = ()
    # --- reports and CI gates (issue 5)
    report_dir: str = ".temp"
    agent_id: str = "pytest-dbarch"
    report_description: str | None = None
    report_reuse: str = "on"
    gate: str | None = None
    # --- migration lint (issue 4)
    migration_lint_ignore: tuple[str, ...] = ()
    # --- migrations (issue 4)
    migrations: str | None = None
    migrations_heads: tuple[str, ...] = ()
    migrations_min_downgrade: str | None = None
    migrations_metadata: str | None = None
    migrations_data: str = "on"
    migrations_drift: str = "on"
    # --- queries (issue 3)
    nplusone: str = "warn"
    nplusone_threshold: int = 2
    repeated_query_threshold: int = 3
    write_loop_threshold: int = 5
    nplusone_ignore: tuple[str, ...] = ()
    nplusone_baseline: str | None = None
    large_tables: tuple[str, ...] = ()
    query_lint_off: tuple[str, ...] = ()
    # --- models: the application's intent (issues 9 and 10)
    models: str | None = None

    # --- constraint property tests (issue 9)

    # --- schema lint (issue 10)

    # --- concurrency harness (issue 11)

    # --- query budgets (issue 17)
    budget_save: str | None = None
    budget_compare: str | None = None
    budget_tolerance: str = "10%"
    budget_latency_scale: str = "1"

    # --- drivers (issue 14)

    # --- adoption in web apps (issue 15)

    # --- fast start, caches, security (issues 16 and 18)

    rootdir: str = "."
    sources: dict[str, str] = field(default_factory=dict)


def add_options(parser: pytest.Parser) -> None:
    """Register the CLI flags (in the ``dbarch`` group) and their ini twins."""
    group = parser.getgroup("dbarch", "database architecture checks")
    for opt in OPTIONS:
        if opt.flag:
            env = f" [env: {opt.env}]" if opt.env else ""
            group.addoption(
                opt.flag,
                dest=f"dbarch_{opt.name}",
                default=None,
                choices=opt.choices,
                help=f"{opt.help}{env}",
            )
        ini_type = "linelist" if opt.kind == "linelist" else "string"
        parser.addini(opt.ini, opt.help, type=ini_type, default=[] if opt.kind == "linelist" else None)


def _convert(opt: Option, raw: Any, source: str) -> Any:
    if opt.kind == "linelist":
        if isinstance(raw, str):
            raw = raw.split()
        return tuple(str(v) for v in raw)
    value = str(raw).strip()
    if opt.choices and value not in opt.choices:
        raise pytest.UsageError(
            f"dbarch: {opt.ini} from {source} is {value!r}; "
            f"choose one of {', '.join(opt.choices)}"
        )
    if opt.kind == "int":
        try:
            return int(value)
        except ValueError:
            raise pytest.UsageError(
                f"dbarch: {opt.ini} from {source} is {value!r}; it must be a number"
            ) from None
    return value


def resolve(config: pytest.Config) -> Settings:
    """Read every option once, CLI > env > ini > default."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in OPTIONS:
        cli = config.getoption(f"dbarch_{opt.name}", None) if opt.flag else None
        env = os.environ.get(opt.env) if opt.env else None
        ini = config.getini(opt.ini)
        if cli not in (None, ""):
            raw, source = cli, opt.flag or ""
        elif env not in (None, ""):
            raw, source = env, f"env {opt.env}"
        elif ini not in (None, "", [], ()):
            raw, source = ini, f"ini {opt.ini}"
        else:
            raw, source = opt.default, "default"
        values[opt.name] = None if raw is None else _convert(opt, raw, source)
        sources[opt.name] = source
    given = [n for n in ("alembic_ini", "metadata", "sql_files") if values[n]]
    if len(given) > 1:
        raise pytest.UsageError(
            "dbarch: more than one schema source is configured "
            f"({', '.join('dbarch_' + n for n in given)}); keep exactly one"
        )
    return Settings(rootdir=str(config.rootpath), sources=sources, **values)
