"""Schema lint inside a pytest run: the ``dbarch_schema_lint`` fixture and, with
``dbarch_schema_lint = true``, collected items.

The items lint the template (the schema as the configured source builds it: Alembic
to head, ``create_all`` or SQL files) once, at collection, because which items exist
depends on what the rules find: one item per rule with problems
(``alembic.ini::schema-lint[schema.fk-index]``), one passed item for the rules that
found nothing (``schema-lint[clean]``), and, when the schema has JSONB columns, an
item that runs last and reads the statements the session's tests ran. An item fails
on failed findings, is skipped with the first title when it only has warnings (as the
migration items are), and carries its Findings like any test. Built with public
collection APIs (``pytest.File``, ``pytest.Item``).

Registered from ``plugin.py``; importing this module loads neither psycopg nor
SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_dbarch.collection import in_scope
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import USER_PROPERTY, Finding, Status
from pytest_dbarch.stash import SETTINGS, session_databases

if TYPE_CHECKING:
    from pytest_dbarch.config import Settings
    from pytest_dbarch.schema_lint.intent import Models
    from pytest_dbarch.schema_lint.lint import LintResult
    from pytest_dbarch.schema_lint.options import LintOptions
    from pytest_dbarch.schema_lint.rule import Query, Schema

ITEM = "schema-lint"
JSONB_RULE = "schema.jsonb-unindexed-filter"
_OPTIONS = pytest.StashKey["LintOptions"]()
_STATE = pytest.StashKey[dict[str, Any]]()


def pytest_configure(config: pytest.Config) -> None:
    """Read the lint's ini settings once; a bad value stops the session with its fix."""
    from pytest_dbarch.schema_lint import options

    settings = config.stash[SETTINGS]
    try:
        options.enabled(settings.schema_lint)
        config.stash[_OPTIONS] = options.from_settings(settings)
    except DbarchError as exc:
        raise pytest.UsageError(f"dbarch: {exc}") from None


class SchemaLintFailed(Exception):
    """An item's failed Findings, shown without a traceback."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__(findings[0].title)
        self.findings = findings


def render(findings: Iterable[Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(f"{finding.title}  [{finding.rule}] {finding.status.value}")
        lines += [f"  | {line}" for line in finding.evidence.splitlines()]
        if finding.fix:
            lines.append(f"  fix: {finding.fix}")
    return "\n".join(lines)


def _report(item: pytest.Item, findings: list[Finding]) -> None:
    """Attach the Findings to the item, then fail, skip (warnings only) or pass."""
    for finding in findings:
        item.user_properties.append((USER_PROPERTY, finding.for_test(item.nodeid).to_json()))
    failed = [f for f in findings if f.status in (Status.FAILED, Status.ERROR)]
    if failed:
        raise SchemaLintFailed(failed)
    warnings = [f for f in findings if f.status is Status.WARNING]
    if warnings:
        more = f" (and {len(warnings) - 1} more warnings: see the dbarch summary)" if len(warnings) > 1 else ""
        pytest.skip(warnings[0].title + more)


class SchemaLintItem(pytest.Item):
    """The findings of one rule, or the passed rules (``clean``)."""

    def __init__(self, *, rule: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule

    def runtest(self) -> None:
        state = _state(self.config)
        if "error" in state:
            raise state["error"]
        result: LintResult = state["result"]
        if self.rule == "clean":
            findings = [f for f in result.findings if f.rule not in result.fired()]
        elif self.rule == JSONB_RULE:
            findings = _jsonb_findings(self.config)
            if not findings:
                pytest.skip("no statements captured in this session to read JSONB filters from")
        else:
            findings = result.by_rule(self.rule)
        _report(self, findings)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, SchemaLintFailed):
            return render(excinfo.value.findings)
        if isinstance(excinfo.value, DbarchError):
            return f"pytest-dbarch: schema lint could not run: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{ITEM}: {self.rule}"


class SchemaLintSource(pytest.File):
    """The collector the items hang from: the file the schema is built from."""

    def collect(self) -> Iterable[pytest.Item]:
        state = _state(self.config)
        if "error" in state:
            yield SchemaLintItem.from_parent(self, name=ITEM, rule="clean")
            return
        result: LintResult = state["result"]
        for rule in result.fired():
            if rule != JSONB_RULE:
                yield SchemaLintItem.from_parent(self, name=f"{ITEM}[{rule}]", rule=rule)
        if any(f.rule not in result.fired() for f in result.findings):
            yield SchemaLintItem.from_parent(self, name=f"{ITEM}[clean]", rule="clean")
        if state["jsonb"]:
            yield SchemaLintItem.from_parent(self, name=f"{ITEM}[{JSONB_RULE}]", rule=JSONB_RULE)


def _state(config: pytest.Config) -> dict[str, Any]:
    """Lint the template once per session (at collection); remember an error instead."""
    if _STATE not in config.stash:
        state: dict[str, Any] = {}
        config.stash[_STATE] = state
        try:
            state["result"], state["schema"] = _lint_template(config)
            state["jsonb"] = _wants_jsonb(config, state["schema"])
        except DbarchError as exc:
            state["error"] = exc
    return config.stash[_STATE]


def _schema_source(settings: Settings) -> Any:
    from pytest_dbarch.postgres.template import SchemaSource

    return SchemaSource(
        alembic_ini=settings.alembic_ini,
        metadata=settings.metadata,
        sql_files=settings.sql_files,
        extensions=settings.extensions,
        rootdir=settings.rootdir,
    )


def _models(settings: Settings) -> Models | None:
    from pytest_dbarch.models import models_target
    from pytest_dbarch.schema_lint import intent

    found = models_target(settings)
    return intent.load(*found) if found else None


def _lint_template(config: pytest.Config) -> tuple[LintResult, Schema]:
    import psycopg

    from pytest_dbarch.origin import plugin_statements
    from pytest_dbarch.schema_lint import lint

    settings = config.stash[SETTINGS]
    options = config.stash[_OPTIONS]
    models = _models(settings)
    databases = session_databases(config)
    server = databases.start()
    template = databases.template_for(_schema_source(settings))
    try:
        with plugin_statements(), psycopg.connect(server.dsn(template)) as conn:
            conn.read_only = True
            schema = lint.read(conn, options, models, fresh=True)
    except psycopg.Error as exc:
        raise DbarchError(
            f"the catalog of the template database could not be read: {' '.join(str(exc).split())}",
            "check that the server is still running; this is otherwise a pytest-dbarch bug",
        ) from None
    # The session's queries are only known at the end: the JSONB rule runs in its own item.
    return lint.check(schema, _without_queries(options)), schema


def _without_queries(options: LintOptions) -> LintOptions:
    from dataclasses import replace

    return replace(options, severities=options.severities + ((JSONB_RULE, "off"),))


def _wants_jsonb(config: pytest.Config, schema: Schema) -> bool:
    from pytest_dbarch.schema_lint import BY_ID

    if config.stash[_OPTIONS].severity(BY_ID[JSONB_RULE]) is None:
        return False
    return any(c.type_name == "jsonb" for t in schema.catalog for c in t.columns)


def _jsonb_findings(config: pytest.Config) -> list[Finding]:
    from dataclasses import replace

    from pytest_dbarch.queries import seen
    from pytest_dbarch.schema_lint import BY_ID, lint
    from pytest_dbarch.schema_lint.rule import Query

    schema = replace(_state(config)["schema"], queries=tuple(Query(sql, params) for sql, params in seen.statements()))
    if not schema.queries:
        return []
    return lint.check(schema, config.stash[_OPTIONS], rules=(BY_ID[JSONB_RULE],)).findings


def _source_path(config: pytest.Config, settings: Settings) -> Path:
    root = Path(settings.rootdir)
    if settings.alembic_ini:
        return (root / settings.alembic_ini).resolve()
    if settings.sql_files:
        return (root / settings.sql_files[0]).resolve()
    return Path(config.inipath) if config.inipath else root


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    from pytest_dbarch.schema_lint.options import enabled

    settings = config.stash[SETTINGS]
    if not enabled(settings.schema_lint):
        return
    source = _source_path(config, settings)
    if not in_scope(config, source):
        return
    items.extend(SchemaLintSource.from_parent(session, path=source).collect())


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Close the session's databases if only the lint items used them (idempotent)."""
    from pytest_dbarch.stash import DATABASES

    databases = session.config.stash.get(DATABASES, None)
    if databases is not None:
        databases.close()


# --- the fixture
class SchemaLinter:
    """``dbarch_schema_lint(**options)``: lint this test's database, return the problems."""

    def __init__(self, request: pytest.FixtureRequest, database: Any) -> None:
        self._request = request
        self._database = database

    def __call__(self, **options: Any) -> list[Finding]:
        from pytest_dbarch.fixtures import fail_on_dbarch_error

        try:
            return self._run(options)
        except DbarchError as exc:
            fail_on_dbarch_error(exc)

    def _run(self, overrides: dict[str, Any]) -> list[Finding]:
        from pytest_dbarch.origin import plugin_statements
        from pytest_dbarch.schema_lint import intent, lint

        config = self._request.config
        options = config.stash[_OPTIONS].merged(**overrides)
        if "models" in overrides:
            models = intent.from_value(overrides["models"], "dbarch_schema_lint(models=...)")
        else:
            models = _models(config.stash[SETTINGS])
        queries = self._queries(overrides.get("queries", "session"))
        with plugin_statements():
            result = self._lint(lint, options, models, queries)
        node = self._request.node
        for finding in result.findings:
            node.user_properties.append((USER_PROPERTY, finding.for_test(node.nodeid).to_json()))
        return result.problems()

    def _lint(self, lint: Any, options: LintOptions, models: Models | None, queries: tuple[Query, ...]) -> LintResult:
        import psycopg
        from psycopg import pq

        database = self._database
        if database.isolation == "transaction":
            conn = database.shared_connection()
            if conn.info.transaction_status == pq.TransactionStatus.INERROR:
                raise DbarchError(
                    "the test's transaction is aborted, so the catalog cannot be read",
                    "call rollback() on the connection before dbarch_schema_lint()",
                )
            return lint.lint(conn, options, models, queries, fresh=True)  # type: ignore[no-any-return]
        with psycopg.connect(database.dsn) as conn:
            conn.read_only = True
            return lint.lint(conn, options, models, queries, fresh=True)  # type: ignore[no-any-return]

    def _queries(self, which: Any) -> tuple[Query, ...]:
        """``"session"``: this test's statements so far, then those of the tests before it;
        ``"test"``: this test's only; or the SQL strings given."""
        from pytest_dbarch.queries import seen
        from pytest_dbarch.schema_lint.rule import Query

        if which not in ("session", "test"):
            if isinstance(which, str) or not all(isinstance(q, str) for q in which):
                raise DbarchError(
                    f"dbarch_schema_lint(queries={which!r})",
                    "pass 'session' (default), 'test', or a list of SQL strings",
                )
            return tuple(Query(sql) for sql in which)
        log = self._request.getfixturevalue("dbarch_queries")
        found: dict[str, Any] = {}
        for statement in log.queries:
            found.setdefault(statement.sql, statement.params)
        if which == "session":
            for sql, params in seen.statements():
                found.setdefault(sql, params)
        return tuple(Query(sql, params) for sql, params in found.items())


@pytest.fixture
def dbarch_schema_lint(request: pytest.FixtureRequest, _dbarch_database: Any) -> Callable[..., list[Finding]]:
    """Lint this test's database: ``problems = dbarch_schema_lint(**options)`` returns the
    failed and warning Findings (area ``schema``); every Finding is attached to the test.

    Options (on top of the ini's ``dbarch_schema_lint_*``): ``rules`` (``["schema.fk-index"]``
    runs only that rule; ``{"schema.serial-column": "warning"}`` sets severities),
    ``ignore``, ``pk_types``, ``strings``, ``naming``, ``required_columns``, ``stats``,
    ``schemas``, ``models`` (a MetaData, a declarative base, ``"module:attr"``, or None),
    ``queries`` (for the JSONB rule: ``"session"``, ``"test"`` or a list of SQL strings).
    """
    return SchemaLinter(request, _dbarch_database)
