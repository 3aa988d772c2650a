"""Inner test files and helpers shared by the ``test_report_*`` tests.

``CHECKS`` records one finding per area from real tests; ``CHECK_OUTCOME`` (env) picks
``mixed`` (queries failed, migrations error, schema warning, performance not run) or
``pass`` (every area passed). The databases check asks the real server for its version.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

CHECKS = '''
import os
import pytest
from pytest_dbarch import Area, Finding, Status

MIXED = os.environ.get("CHECK_OUTCOME", "mixed") == "mixed"


def test_databases(dbarch_psycopg, dbarch_findings):
    version = dbarch_psycopg.execute("SHOW server_version").fetchone()[0]
    dbarch_findings.add(Finding(
        rule="databases.real-postgresql", area=Area.DATABASES, status=Status.PASSED,
        title=f"Tests run on PostgreSQL {version}", evidence=f"server_version = {version}",
    ))


def test_feed_queries(dbarch_findings):
    dbarch_findings.add(Finding(
        rule="queries.n-plus-one", area=Area.QUERIES,
        status=Status.FAILED if MIXED else Status.PASSED,
        title="SELECT contacts ran 50x in one request" if MIXED else "No N+1 in the account feed",
        evidence="SELECT contacts.id FROM contacts WHERE contacts.account_id = %(param_1)s",
        where="crm/services.py:42", fix="use selectinload(Account.contacts)",
    ))


def test_migrations(dbarch_findings):
    dbarch_findings.add(Finding(
        rule="migrations.round-trip", area=Area.MIGRATIONS,
        status=Status.ERROR if MIXED else Status.PASSED,
        title="0004 downgrade raised" if MIXED else "0001..0004 upgrade and downgrade cleanly",
        where="0004", fix="make the downgrade drop contacts.phone",
    ))


def test_models(dbarch_findings):
    dbarch_findings.add(Finding(
        rule="models.not-null", area=Area.MODELS, status=Status.PASSED,
        title="accounts.name NOT NULL is enforced",
    ))


def test_schema(dbarch_findings):
    dbarch_findings.add(Finding(
        rule="schema.fk-index", area=Area.SCHEMA,
        status=Status.WARNING if MIXED else Status.PASSED,
        title="contacts.account_id has no index" if MIXED else "every foreign key is indexed",
        evidence="FOREIGN KEY (account_id) REFERENCES accounts (id)",
        where="crm/models.py:31", fix="add index on contacts.account_id",
    ))


@pytest.mark.skipif(MIXED, reason="performance checks not run in the mixed session")
def test_performance(dbarch_findings):
    dbarch_findings.add(Finding(
        rule="performance.p95", area=Area.PERFORMANCE, status=Status.PASSED,
        title="open_pipeline_value p95 within budget", evidence="p95 1.8 ms (budget 5 ms)",
    ))
    dbarch_findings.add(Finding(
        rule="concurrency.lost-update", area=Area.CONCURRENCY, status=Status.PASSED,
        title="no lost update converting one lead from 4 workers",
    ))
'''

KINDS = ("task-status", "checklist", "progress", "plan", "architecture-notes", "ledger")
_ID = re.compile(r"-([A-Z0-9]{6})\.(?:json|md)$")


def task_ids(folder: Path) -> set[str]:
    return {m.group(1) for p in folder.glob("*") if (m := _ID.search(p.name))} if folder.is_dir() else set()


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def expected_names(task_id: str, completed: bool = False) -> set[str]:
    kinds = KINDS + (("completion-summary",) if completed else ())
    return {f"{k}-{task_id}.{'json' if k in ('task-status', 'ledger') else 'md'}" for k in kinds}


def status(folder: Path, task_id: str) -> dict[str, Any]:
    return dict(json.loads((folder / f"task-status-{task_id}.json").read_text()))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name → bytes), hidden ones included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True)
def lean_inner_sessions(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner sessions of the report tests skip the plugins of Faker and hypothesis
    (installed with pytest-dbarch's dependencies, unused here): seconds per session on
    a loaded machine. Set after ``pytester``, which clears ``PYTEST_ADDOPTS``."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")
        monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:faker -p no:hypothesispytest")
