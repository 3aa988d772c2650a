"""Every setting declared once: CLI flag, ini key, env var, default and help.

Resolved once per session into a frozen ``Settings``; each value remembers where it
came from so the report header can say so. Precedence: CLI > env > ini > default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from pytest_dbarch.redact import redacted

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
        "TCP port for the disposable server; setting one turns TCP on (see dbarch_listen)",
        flag="--dbarch-port",
        env="DBARCH_PORT",
        kind="int",
    ),
    Option(
        "run_as",
        "unprivileged user that runs the server when pytest runs as root "
        "(default: a 'dbarch' system account, created on first use)",
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
    Option(
        "migrations_column_order",
        "severity when a downgrade restores every column but not their order: 'warning', "
        "'failed' or 'off' (it matters for SELECT * and COPY, not for integrity)",
        default="warning",
        choices=("warning", "failed", "off"),
    ),
    Option(
        "migrations_workers",
        "processes that share a history's round trips: 'auto' (one per core, at most 4, for "
        "histories of 24 revisions or more; one under pytest-xdist) or a number",
        default="auto",
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
    Option(
        "constraints",
        "constraint property tests as collected items, one 'constraints[<table>]' per table: "
        "'true' for every table of the test database, or the tables to check, one per line",
        kind="linelist",
        default=(),
    ),
    Option(
        "constraints_skip",
        "what the constraint property tests leave out, one per line with the reason: "
        "'<table>: <why>' or '<table>.<constraint or column>: <why>'",
        kind="linelist",
        default=(),
    ),

    # --- schema lint (issue 10)
    Option(
        "schema_lint",
        "'true': collect schema-lint items (one per rule that found something in the built "
        "schema, one passed item for the rest), failing on failed findings",
        default="false",
        flag="--dbarch-schema-lint",
    ),
    Option(
        "schema_lint_rules",
        "schema-lint rules, one per line: '<rule> = failed|warning|on|off' sets a severity or "
        "turns an opt-in rule on ('schema.* = failed': strict); a bare '<rule>' runs only the "
        "rules listed",
        kind="linelist",
        default=(),
    ),
    Option(
        "schema_lint_ignore",
        "schema-lint waivers, one per line: '<rule> <table or object> [reason]' (e.g. "
        "schema.fk-index audit_log.row_id append-only), globs allowed",
        kind="linelist",
        default=(),
    ),
    Option(
        "schema_lint_pk_types",
        "primary-key types the project allows (e.g. 'bigint uuid'); default: anything but "
        "smallint and integer",
        kind="linelist",
        default=(),
    ),
    Option(
        "schema_lint_strings",
        "string policy: 'text' (flag varchar(n): use text with a CHECK), 'varchar' (flag text "
        "and unbounded varchar) or 'any'",
        default="any",
        choices=("any", "text", "varchar"),
    ),
    Option(
        "schema_lint_naming",
        "naming patterns, one '<kind> = <regex>' per line (kinds: table, column, index, unique, "
        "primary_key, foreign_key, check, exclusion, sequence, function, view)",
        kind="linelist",
        default=(),
    ),
    Option(
        "schema_lint_required_columns",
        "columns every table must have, as 'name' or 'name:type' (e.g. created_at:timestamptz "
        "updated_at:timestamptz)",
        kind="linelist",
        default=(),
    ),
    Option(
        "schema_lint_stats",
        "rules that need usage statistics (unused indexes, sequential scans, bloat): 'auto' "
        "(only when the statistics cover 7 days or more), 'on' or 'off'",
        default="auto",
        choices=("auto", "on", "off"),
    ),
    Option(
        "schema_lint_schemas",
        "schemas the lint reads (default: every schema but the system ones)",
        kind="linelist",
        default=(),
    ),

    # --- concurrency harness (issue 11)
    Option(
        "concurrency_deadlock_timeout",
        "deadlock_timeout set on the concurrency workers' connections, so a deadlock costs "
        "this much instead of the server's 1s; 'server' keeps the server's value (a role that "
        "may not set it keeps it anyway)",
        default="100ms",
    ),
    Option(
        "concurrency_lock_timeout",
        "lock_timeout set on the concurrency workers' connections (e.g. 2s, as in production): "
        "a longer lock wait is a concurrency.lock-timeout finding; default: none",
    ),

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
    Option(
        "driver_hooks",
        "drivers besides psycopg 3 whose own calls query capture hooks, one per line: "
        "psycopg2, asyncpg (default: both); 'none' leaves both unpatched, and their "
        "statements through SQLAlchemy are then captured at the engine",
        default=("psycopg2", "asyncpg"),
        env="DBARCH_DRIVER_HOOKS",
        kind="linelist",
    ),

    # --- adoption in web apps (issue 15)
    Option(
        "capture",
        "query capture of every test's call phase: 'on', or 'off' (no N+1, lint or "
        "repeated-query findings, dbarch_queries stays empty; every fixture still works, "
        "and blocks a test asks to count, dbarch_assert_num_queries and "
        "@pytest.mark.max_queries, still count)",
        default="on",
        flag="--dbarch-capture",
        env="DBARCH_CAPTURE",
        choices=("on", "off"),
    ),
    Option(
        "session_class",
        "class of dbarch_session: 'auto' (sqlmodel.Session when the models (dbarch_models) are "
        "SQLModel's, else SQLAlchemy's Session), 'sqlalchemy', 'sqlmodel', or module:Class "
        "naming a subclass of sqlalchemy.orm.Session",
        default="auto",
    ),
    Option(
        "seed",
        "package.module:function called once with a SQLAlchemy Connection to the template "
        "after its schema is built (seed rows: a superuser, reference data); part of the "
        "template's cache key, with its module's source",
    ),

    # --- fast start, caches, security (issues 16 and 18)
    Option(
        "listen",
        "how the disposable server is reached: 'socket' (a unix socket in a directory "
        "only the server's account and root can enter) or 'tcp' (also 127.0.0.1, every "
        "login with a random per-run password, SCRAM)",
        default="socket",
        flag="--dbarch-listen",
        env="DBARCH_LISTEN",
        choices=("socket", "tcp"),
    ),
    Option(
        "runtime_dir",
        "where the disposable servers' run directories (data, socket) go (default: "
        "/dev/shm when it has 256 MB free, else the system temp directory)",
        flag="--dbarch-runtime-dir",
        env="DBARCH_RUNTIME_DIR",
    ),
    Option(
        "cache",
        "cluster cache: 'on' (start from a cached cluster with the template built, keyed "
        "by everything that shapes it) or 'off' (initdb and build every session)",
        default="on",
        flag="--dbarch-cache",
        env="DBARCH_CACHE",
        choices=("on", "off"),
    ),
    Option(
        "cache_dir",
        "the cluster cache's directory (default: $XDG_CACHE_HOME/pytest-dbarch, i.e. "
        "~/.cache/pytest-dbarch)",
        flag="--dbarch-cache-dir",
        env="DBARCH_CACHE_DIR",
    ),
    Option(
        "cache_key_files",
        "more files whose bytes go into the template's cache key, as globs relative to "
        "the rootdir (application code that migrations import)",
        kind="linelist",
        default=(),
    ),
    Option(
        "keep_server",
        "'on': keep the server running after the session for the next one to join at "
        "once, until 'dbarch server stop' or until the terminal session ends",
        default="off",
        flag="--dbarch-keep-server",
        env="DBARCH_KEEP_SERVER",
        choices=("on", "off"),
    ),
    Option(
        "keep_failed",
        "'on': a failed clone-isolated test's database is kept (its DSN printed) and the "
        "server kept running for debugging; 'dbarch server stop' ends it",
        default="off",
        flag="--dbarch-keep-failed",
        env="DBARCH_KEEP_FAILED",
        choices=("on", "off"),
    ),
    Option(
        "clone_pool",
        "clones of the template made ahead in the background for clone-isolated tests "
        "(0: none, each is made when its test starts)",
        default=2,
        kind="int",
    ),
    Option(
        "xdist_server",
        "under pytest-xdist: 'shared' (one server for all workers, each with its own "
        "databases) or 'per-worker' (a server each)",
        default="shared",
        choices=("shared", "per-worker"),
    ),
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
    migrations_column_order: str = "warning"
    migrations_workers: str = "auto"
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
    constraints: tuple[str, ...] = ()
    constraints_skip: tuple[str, ...] = ()

    # --- schema lint (issue 10)
    schema_lint: str = "false"
    schema_lint_rules: tuple[str, ...] = ()
    schema_lint_ignore: tuple[str, ...] = ()
    schema_lint_pk_types: tuple[str, ...] = ()
    schema_lint_strings: str = "any"
    schema_lint_naming: tuple[str, ...] = ()
    schema_lint_required_columns: tuple[str, ...] = ()
    schema_lint_stats: str = "auto"
    schema_lint_schemas: tuple[str, ...] = ()

    # --- concurrency harness (issue 11)
    concurrency_deadlock_timeout: str = "100ms"
    concurrency_lock_timeout: str | None = None

    # --- query budgets (issue 17)
    budget_save: str | None = None
    budget_compare: str | None = None
    budget_tolerance: str = "10%"
    budget_latency_scale: str = "1"

    # --- drivers (issue 14)
    driver_hooks: tuple[str, ...] = ("psycopg2", "asyncpg")

    # --- adoption in web apps (issue 15)
    capture: str = "on"
    session_class: str = "auto"
    seed: str | None = None

    # --- fast start, caches, security (issues 16 and 18)
    listen: str = "socket"
    runtime_dir: str | None = None
    cache: str = "on"
    cache_dir: str | None = None
    cache_key_files: tuple[str, ...] = ()
    keep_server: str = "off"
    keep_failed: str = "off"
    clone_pool: int = 2
    xdist_server: str = "shared"

    rootdir: str = "."
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The DSN works as itself everywhere; its repr (tracebacks, --showlocals) hides
        # the password.
        object.__setattr__(self, "dsn", redacted(self.dsn))


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
    workers = str(values["migrations_workers"]).strip().lower()
    if workers != "auto" and not (workers.isdigit() and int(workers) >= 1):
        raise pytest.UsageError(
            f"dbarch: dbarch_migrations_workers from {sources['migrations_workers']} is {workers!r}; "
            "it must be 'auto' or a number of processes (1 for one)"
        )
    given = [n for n in ("alembic_ini", "metadata", "sql_files") if values[n]]
    if len(given) > 1:
        raise pytest.UsageError(
            "dbarch: more than one schema source is configured "
            f"({', '.join('dbarch_' + n for n in given)}); keep exactly one"
        )
    return Settings(rootdir=str(config.rootpath), sources=sources, **values)
