"""``dbarch_constraints = true`` (or table names): one collected item per table, ``constraints[<table>]``.

The items hang from the ini file that asked for them (``pytest.ini::constraints[leads]``).
With ``true`` the tables are read from the test database's schema at collection (the
server and template are built then, as the first test would). Each item is a plain
``pytest.Function`` whose body asks the ``dbarch_constraints`` fixture for
``.check(table)``, so it gets the usual per-test database and isolation; its Findings
are attached like any test's, and it fails when one of them failed (or could not run).
Warnings are recorded and the item passes. A table skipped in ``dbarch_constraints_skip``
is a skipped item showing the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import USER_PROPERTY, Finding, Status
from pytest_dbarch.stash import SETTINGS, session_databases

OFF = {"false", "off", "no", "0"}
ALL = {"true", "on", "yes", "1", "all"}


class ConstraintsFailed(Exception):
    """An item's problem Findings, shown without a traceback."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__(findings[0].title)
        self.findings = findings


def render(findings: Iterable[Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(finding.title)
        lines.append(f"  [{finding.rule}] {finding.status.value}" + (f" at {finding.where}" if finding.where else ""))
        lines += [f"  | {line}" for line in finding.evidence.splitlines()]
        if finding.fix:
            lines.append(f"  fix: {finding.fix}")
    return "\n".join(lines)


def _body(table: str) -> Callable[..., None]:
    def check_constraints(request: pytest.FixtureRequest, dbarch_constraints: Any) -> None:
        findings = [f.for_test(request.node.nodeid) for f in dbarch_constraints.check(table)]
        for finding in findings:
            request.node.user_properties.append((USER_PROPERTY, finding.to_json()))
        problems = [f for f in findings if f.status in (Status.FAILED, Status.ERROR)]
        if problems:
            raise ConstraintsFailed(problems)

    return check_constraints


class ConstraintsItem(pytest.Function):
    """One table's constraint property tests."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:  # type: ignore[override]
        if isinstance(excinfo.value, ConstraintsFailed):
            return render(excinfo.value.findings)
        if isinstance(excinfo.value, DbarchError):
            return f"pytest-dbarch: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"dbarch {self.name}"


class ConstraintsFile(pytest.File):
    """The collector the items hang from: the ini file that enabled them."""

    tables: list[str] = []
    skips: dict[str, str] = {}

    def collect(self) -> Iterable[pytest.Item]:
        for table in self.tables:
            item = ConstraintsItem.from_parent(self, name=f"constraints[{table}]", callobj=_body(table))
            reason = self._skip(table)
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"{table}: {reason}"))
            yield item

    def _skip(self, table: str) -> str | None:
        names = {table} if "." in table else {table, f"public.{table}"}
        return next((reason for target, reason in self.skips.items() if target in names), None)


def table_list(config: pytest.Config) -> list[str] | None:
    """The tables to make items of; None when the items are off."""
    values = [v.strip() for v in config.stash[SETTINGS].constraints if v.strip()]
    if not values or (len(values) == 1 and values[0].lower() in OFF):
        return None
    if len(values) == 1 and values[0].lower() in ALL:
        return _live_tables(config)
    return values


def _live_tables(config: pytest.Config) -> list[str]:
    """Every table of the test database's schema (built now, as the first test would)."""
    import psycopg

    from pytest_dbarch.constraints.properties import tables_to_check
    from pytest_dbarch.origin import plugin_statements
    from pytest_dbarch.postgres import catalog
    from pytest_dbarch.postgres.template import SchemaSource

    settings = config.stash[SETTINGS]
    databases = session_databases(config)
    server = databases.start()
    template = databases.template_for(SchemaSource(
        alembic_ini=settings.alembic_ini, metadata=settings.metadata, sql_files=settings.sql_files,
        extensions=settings.extensions, rootdir=settings.rootdir))
    with plugin_statements(), psycopg.connect(server.dsn(template)) as conn:
        found = catalog.read(conn)
        conn.rollback()
    return [_short(name, found.search_path) for name in tables_to_check(found)]


def _short(qualified: str, search_path: tuple[str, ...]) -> str:
    schema, _, name = qualified.partition(".")
    return name if schema == (search_path[0] if search_path else "public") else qualified


def _error_body(error: Exception) -> Callable[..., None]:
    def check_constraints() -> None:
        raise error

    return check_constraints


def collect(session: pytest.Session, config: pytest.Config) -> list[pytest.Item]:
    """The generated items, or one item carrying the error that stopped listing them."""
    from pytest_dbarch.constraints.skips import Skips, parse_skips

    settings = config.stash[SETTINGS]
    path = config.inipath or Path(settings.rootdir) / "pytest.ini"
    collector = ConstraintsFile.from_parent(session, path=path)
    try:
        tables = table_list(config)
    except DbarchError as exc:
        return [ConstraintsItem.from_parent(collector, name="constraints", callobj=_error_body(exc))]
    if tables is None:
        return []
    entries = Skips(parse_skips(settings.constraints_skip)).entries
    collector.tables = tables
    collector.skips = {e.target: e.reason for e in entries}
    return list(collector.collect())
