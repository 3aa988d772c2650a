"""All migration checks of one history, run once, as Findings keyed by check and revision.

Used by the pytest items (one per check per revision), the ``dbarch_migrations``
fixture and ``dbarch migrations check``. Every run watches each revision's first upgrade
with the lock-safety lint and the lock report (``default_observers``); projects may add
observers of their own to ``OBSERVERS`` (factories called once per revision).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.migrations import checks, timeouts, workers
from pytest_dbarch.migrations.observe import StatementObserver
from pytest_dbarch.migrations.roundtrip import relative
from pytest_dbarch.migrations.runners import MigrationError, MigrationRunner, Revision
from pytest_dbarch.migrations.share import Share
from pytest_dbarch.origin import plugin_statements

if TYPE_CHECKING:
    from pytest_dbarch.postgres.databases import Databases

# Factories of extra observers every run gets besides the defaults, one new observer per
# revision (see migrations/observe.py).
OBSERVERS: list[Callable[[], StatementObserver]] = []

# Checks in the order their items are listed; "" as revision for history-wide ones.
PER_HISTORY = ("single-head", "deploy-transaction", "drift")
PER_REVISION = ("empty-downgrade", "round-trip", "data-round-trip", "lock-safety")
HISTORY = "migrations.history"


@dataclass(frozen=True)
class Options:
    """What to check and how; from the dbarch_migrations_* settings or CLI flags."""

    heads: tuple[str, ...] = ()
    min_downgrade: str | None = None
    data: bool = True
    drift: bool = True
    metadata: str | None = None  # module:attribute; default: env.py's target_metadata
    extensions: tuple[str, ...] = ()
    only: frozenset[str] | None = None  # round-trip only these revisions (e.g. added since a branch)
    lint_ignore: tuple[str, ...] = ()  # lock-safety lint rules switched off
    column_order: str = "warning"  # severity of a column order a downgrade does not restore
    workers: int | None = None  # processes sharing the round trips (None: one per core for long histories)

    def to_json(self) -> dict[str, Any]:
        """What another checking process needs (see workers.py)."""
        from dataclasses import asdict

        data = asdict(self)
        data["only"] = sorted(self.only) if self.only is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Options:
        values = {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}
        values["only"] = frozenset(data["only"]) if data["only"] is not None else None
        return cls(**values)


@dataclass
class Plan:
    """The history as read without a database: enough to name the items."""

    source: str
    rootdir: str
    runner: MigrationRunner | None
    revisions: list[Revision]
    error: MigrationError | None = None

    def item_keys(self) -> list[tuple[str, str]]:
        if self.error is not None:
            return [("history", "")]
        keys = [("single-head", ""), ("deploy-transaction", "")]
        for check in PER_REVISION:
            keys += [(check, rev.id) for rev in self.revisions]
        keys.append(("drift", ""))
        return keys


@dataclass
class Results:
    """Every finding of one run, by (check, revision id or '')."""

    plan: Plan
    findings: dict[tuple[str, str], list[Finding]] = field(default_factory=dict)
    seconds: float = 0.0
    not_checked: dict[str, str] = field(default_factory=dict)  # revision -> why not
    skipped: dict[tuple[str, str], str] = field(default_factory=dict)  # (check, revision) -> why no finding
    steps: int = 0  # upgrades and downgrades run
    rebuilds: int = 0
    processes: int = 1  # processes that shared the round trips
    notes: list[str] = field(default_factory=list)  # how the run went, when it did not go as planned

    def for_item(self, check: str, revision: str = "") -> list[Finding]:
        return list(self.findings.get((check, revision), []))

    def all(self) -> list[Finding]:
        return [f for group in self.findings.values() for f in group]

    def problems(self) -> list[Finding]:
        return [f for f in self.all() if f.status in (Status.FAILED, Status.ERROR)]

    def by_rule(self, rule: str) -> list[Finding]:
        return [f for f in self.all() if f.rule == rule]

    @property
    def broken(self) -> list[Finding]:
        """The error that stopped the whole history (reported once), if any."""
        return list(self.findings.get(("history", ""), []))

    def why_empty(self, check: str, revision: str) -> str:
        """Why an item has no finding of its own ('' when nothing explains it)."""
        if revision in self.not_checked:
            return self.not_checked[revision]
        if (check, revision) in self.skipped:
            return self.skipped[(check, revision)]
        if check == "empty-downgrade" and self.for_item("round-trip", revision):
            return f"its empty downgrade is reported by round-trip[{revision}]"
        if self.broken:
            return "not checked: the history could not be walked (the cause is reported once, under deploy-transaction)"
        return ""


def plan(source: str, rootdir: str | Path = ".") -> Plan:
    try:
        runner = open_runner(source, rootdir)
        return Plan(source, str(rootdir), runner, runner.revisions())
    except MigrationError as exc:
        return Plan(source, str(rootdir), None, [], exc)


def run(
    the_plan: Plan,
    databases: Databases,
    options: Options = Options(),
    observers: Iterable[Callable[[], StatementObserver]] | None = None,
) -> Results:
    """Run every check; problems of the history become Findings, never exceptions.

    Everything the migrations send is the plugin's own work: the query capture of the
    test that runs the checks (an item, or ``dbarch_migrations.run()``) does not count it.
    """
    with plugin_statements():
        return _run(the_plan, databases, options, observers)


def _run(
    the_plan: Plan,
    databases: Databases,
    options: Options,
    observers: Iterable[Callable[[], StatementObserver]] | None,
) -> Results:
    import time

    from pytest_dbarch.migrations.roundtrip import Outcome, RoundTrip
    from pytest_dbarch.migrations.scratch import Scratch

    started = time.perf_counter()
    results = Results(the_plan)
    if the_plan.error is not None or the_plan.runner is None:
        results.findings[("history", "")] = [_history_error(the_plan.error, the_plan)]
        return results
    runner = the_plan.runner
    results.findings[("single-head", "")] = [
        checks.single_head(runner.heads(), options.heads, runner.source, the_plan.rootdir)
    ]
    factories = default_observers(options) + OBSERVERS if observers is None else list(observers)
    drift_findings: list[Finding] = []

    def at_head(runner: MigrationRunner, database: Any) -> None:
        if options.drift:
            from pytest_dbarch.migrations import drift

            drift_findings.extend(drift.check(runner, options.metadata, the_plan.rootdir))

    def round_trip(share: Share | None, head: Callable[[MigrationRunner, Any], None] | None) -> RoundTrip:
        return RoundTrip(
            runner,
            Scratch(databases, options.extensions),
            rootdir=the_plan.rootdir,
            observers=lambda: [make() for make in factories],
            floor=options.min_downgrade,
            data=options.data,
            at_head=head,
            only=options.only,
            column_order=options.column_order,
            share=share,
        )

    team: workers.Team | None = None
    walk: RoundTrip | None = None
    try:
        team = _team(the_plan, databases, options, observers)
        walk = round_trip(team.share if team is not None else None, at_head)
        outcome = walk.run()
        if team is not None:
            outcome = team.join(outcome, lambda share: round_trip(share, None).run())
    except DbarchError as exc:  # env.py cannot run, the server could not start: once, keep what was found
        outcome = walk.outcome if walk is not None else Outcome()
        results.findings.update(outcome.findings)
        results.findings[("history", "")] = [_history_error(exc, the_plan)]
    else:
        results.findings.update(outcome.findings)
    finally:
        if team is not None:
            team.close()
            results.processes, results.notes = team.count, team.notes
    results.not_checked = dict(outcome.not_checked)
    results.skipped = dict(outcome.skipped)
    results.steps, results.rebuilds = outcome.steps, outcome.rebuilds
    for rev in the_plan.revisions:
        if (options.only is None or rev.id in options.only) and rev.id not in outcome.not_checked:
            failed = rev.id in outcome.minor or any(
                f.status is Status.FAILED for f in outcome.findings.get(("round-trip", rev.id), [])
            )
            finding = checks.empty_downgrade(rev, the_plan.rootdir, outcome.schema_changed.get(rev.id), failed)
            if finding is not None:
                results.findings[("empty-downgrade", rev.id)] = [finding]
    if results.broken:
        results.seconds = time.perf_counter() - started
        return results
    deploy = checks.deploy_transaction(runner.transaction_per_revision, runner.source, the_plan.rootdir)
    if deploy is not None:
        results.findings[("deploy-transaction", "")] = [deploy]
    timeouts.regroup(results.findings, getattr(runner, "env_path", runner.source), the_plan.rootdir)
    if options.drift:
        results.findings[("drift", "")] = drift_findings
    results.seconds = time.perf_counter() - started
    return results


def _team(
    the_plan: Plan,
    databases: Databases,
    options: Options,
    observers: Iterable[Callable[[], StatementObserver]] | None,
) -> workers.Team | None:
    """The other processes sharing the round trips, if more than one is worth it; never
    with observers of the project's own, which cannot cross a process boundary."""
    if observers is not None or OBSERVERS:
        return None
    checked = len(the_plan.revisions) if options.only is None else len(options.only)
    count = workers.count_for(options.workers, checked)
    if count <= 1:
        return None
    dsn = str(databases.start().dsn())
    return workers.start(count, the_plan.source, the_plan.rootdir, dsn, options.to_json(), the_plan.revisions)


def _history_error(exc: DbarchError | None, the_plan: Plan) -> Finding:
    return Finding(
        rule=HISTORY,
        area=Area.MIGRATIONS,
        status=Status.ERROR,
        title=f"migration history {the_plan.source} cannot be checked: {exc.cause if exc else 'unknown'}",
        evidence="",
        where=_env_where(exc, the_plan),
        fix=exc.fix if exc else "",
    )


def _env_where(exc: DbarchError | None, the_plan: Plan) -> str:
    where = getattr(exc, "where", "") or the_plan.source
    path, _, line = where.rpartition(":")
    if path and line.isdigit():
        return f"{relative(path, the_plan.rootdir)}:{line}"
    return relative(where, the_plan.rootdir)


def options_from(settings: Any, overrides: dict[str, Any] | None = None) -> Options:
    """Options from the session Settings (dbarch_migrations_* and dbarch_extensions)."""
    values = {
        "heads": tuple(getattr(settings, "migrations_heads", ()) or ()),
        "min_downgrade": getattr(settings, "migrations_min_downgrade", None),
        "data": getattr(settings, "migrations_data", "on") != "off",
        "drift": getattr(settings, "migrations_drift", "on") != "off",
        "metadata": getattr(settings, "migrations_metadata", None),
        "extensions": tuple(getattr(settings, "extensions", ()) or ()),
        "lint_ignore": tuple(getattr(settings, "migration_lint_ignore", ()) or ()),
        "column_order": getattr(settings, "migrations_column_order", "warning"),
        "workers": workers.parse_setting(getattr(settings, "migrations_workers", "auto"), "dbarch_migrations_workers"),
    }
    values.update(overrides or {})
    return Options(**values)


def default_observers(options: Options) -> list[Callable[[], StatementObserver]]:
    """The lock-safety lint and the lock report, new ones for every revision.

    The lint is built once here so that a bad ``dbarch_migration_lint_ignore`` is one
    clear error before any migration runs.
    """
    from pytest_dbarch.migrations.lint import LockSafetyLint
    from pytest_dbarch.migrations.locks import LockReport

    LockSafetyLint(ignore=options.lint_ignore)
    return [lambda: LockSafetyLint(ignore=options.lint_ignore, from_empty=True), LockReport]


def describe(keys: Sequence[tuple[str, str]]) -> list[str]:
    return [f"{check}[{rev}]" if rev else check for check, rev in keys]


def open_runner(source: str, rootdir: str | Path = ".") -> MigrationRunner:
    """The runner for ``source``: an alembic.ini file or a directory of SQL migrations."""
    path = (Path(rootdir) / source).resolve()
    if path.is_dir():
        from pytest_dbarch.migrations.sql_runner import SqlDirectoryRunner

        return SqlDirectoryRunner(path)
    if path.is_file():
        from pytest_dbarch.migrations.alembic_runner import AlembicRunner

        return AlembicRunner(path)
    raise MigrationError(
        f"the migration source {source!r} ({path}) does not exist",
        "set dbarch_migrations to an alembic.ini or a directory of .sql migrations, "
        "relative to the pytest rootdir (or give the path to 'dbarch migrations check')",
    )
