"""JUnit properties, GitHub annotations, secret scrubbing and xdist merging."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_dbarch.report.github_annotations import escape_data, escape_property
from pytest_dbarch.report.scrub import scrub
from tests.report_sessions import CHECKS, lean_inner_sessions, snapshot, status, task_ids  # noqa: F401 (autouse fixture)

ANNOTATED = """
from pytest_dbarch import Area, Finding, Status

def test_feed(dbarch_findings):
    dbarch_findings.add(Finding(
        rule="queries.n-plus-one", area=Area.QUERIES, status=Status.FAILED,
        title="SELECT contacts ran 50x, 100% of requests", where="crm/services.py:42",
        fix="use selectinload(Account.contacts)",
    ))
    dbarch_findings.add(Finding(
        rule="schema.fk-index", area=Area.SCHEMA, status=Status.WARNING,
        title="contacts.account_id has no index", where="crm/models.py:31",
    ))
    dbarch_findings.add(Finding(rule="migrations.round-trip", area=Area.MIGRATIONS, status=Status.FAILED,
        title="0004 does not round-trip", where="0004"))
    dbarch_findings.add(Finding(rule="models.not-null", area=Area.MODELS, status=Status.PASSED,
        title="enforced", where="crm/models.py:12"))
"""


def test_junit_properties_and_github_annotations(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_checks=ANNOTATED)
    result = pytester.runpytest("--junitxml=junit.xml", "--dbarch-report-dir=off")
    result.assert_outcomes(passed=1)
    assert "::error" not in result.stdout.str() and "::warning" not in result.stdout.str()
    [case] = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    assert case.get("name") == "test_feed"
    readable = {p.get("name"): p.get("value") for p in case.iter("property") if p.get("name", "").startswith("dbarch:")}
    assert readable == {
        "dbarch:queries.n-plus-one": "failed: SELECT contacts ran 50x, 100% of requests at crm/services.py:42; "
        "fix: use selectinload(Account.contacts)",
        "dbarch:schema.fk-index": "warning: contacts.account_id has no index at crm/models.py:31",
        "dbarch:migrations.round-trip": "failed: 0004 does not round-trip at 0004",
        "dbarch:models.not-null": "passed: enforced at crm/models.py:12",
    }
    raw = [p.get("value") for p in case.iter("property") if p.get("name") == "dbarch_finding"]
    assert len(raw) == 4 and '"rule": "models.not-null"' in raw[3]  # the full JSON stays for tools

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path.parent))
    result = pytester.runpytest("--dbarch-report-dir=off")
    project = pytester.path.name
    lines = [line for line in result.stdout.lines if line.startswith("::")]
    assert lines == [
        f"::error file={project}/crm/services.py,line=42,title=queries.n-plus-one%3A SELECT contacts ran 50x%2C 100%25 "
        "of requests::SELECT contacts ran 50x, 100%25 of requests%0Afix: use selectinload(Account.contacts)"
        "%0Atest: test_checks.py::test_feed",
        f"::warning file={project}/crm/models.py,line=31,title=schema.fk-index%3A contacts.account_id has no index"
        "::contacts.account_id has no index%0Atest: test_checks.py::test_feed",
    ]  # the revision-only finding and the passed one get no annotation


def test_escaping_follows_githubs_rules() -> None:
    assert escape_data("50% done\r\nnext: a, b") == "50%25 done%0D%0Anext: a, b"
    assert escape_property("50% done\nnext: a, b") == "50%25 done%0Anext%3A a%2C b"


SECRETS = """
import pytest
from pytest_dbarch import Area, Finding, Status

@pytest.mark.parametrize("dsn", ["host=db password=hunter2 dbname=crm"])
def test_leaky(dbarch_findings, dsn):
    dbarch_findings.add(Finding(
        rule="databases.connect", area=Area.DATABASES, status=Status.FAILED,
        title="could not reach postgresql://app:hunter2@db:5432/crm",
        evidence=f"dsn: {dsn}\\n{{\\"api_key\\": \\"hunter2\\"}}\\nPGPASSWORD=hunter2",
        where="crm/db.py:7", fix="set password='hunter2' in the secret store",
    ))
"""


def test_passwords_never_appear(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_checks=SECRETS)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = pytester.runpytest("-v", "--junitxml=junit.xml")
    result.assert_outcomes(passed=1)
    output = result.stdout.str()
    assert "hunter2" not in output.replace("test_leaky[host=db password=hunter2 dbname=crm]", "")
    assert "postgresql://app:***@db:5432/crm" in output  # the finding itself is still shown
    assert "::error file=crm/db.py,line=7" in output
    # pytest's own test name keeps its parameters; every property we add is scrubbed.
    junit = (pytester.path / "junit.xml").read_text()
    assert "hunter2" not in junit.replace('name="test_leaky[host=db password=hunter2 dbname=crm]"', "")
    files = snapshot(pytester.path / ".temp")
    assert len(files) == 6
    for name, content in files.items():
        assert b"hunter2" not in content, name
    [checklist] = [c for n, c in files.items() if n.startswith("checklist-")]
    assert b"test `test_checks.py::test_leaky[host=db password=*** dbname=crm]`" in checklist


def test_scrub() -> None:
    assert scrub("postgresql+psycopg://app:s3cr%40t@db:5432/crm") == "postgresql+psycopg://app:***@db:5432/crm"
    assert scrub("host=x password=hunter2 dbname=y") == "host=x password=*** dbname=y"
    assert scrub('{"password": "a b", "token": \'t\'}') == '{"password": "***", "token": \'***\'}'
    assert scrub("PGPASSWORD=xyz API_KEY=abc secret: s") == "PGPASSWORD=*** API_KEY=*** secret: ***"
    # Placeholders, column names and file names are not secrets.
    keep = "UPDATE users SET password_hash = %(password_hash)s WHERE reset_token = $1 -- tests/test_token.py:12"
    assert scrub(keep) == keep


@pytest.mark.slow  # xdist workers each load every plugin
def test_xdist_workers_findings_end_in_one_report(external_pytester: pytest.Pytester) -> None:
    external_pytester.makepyfile(test_checks=CHECKS)
    external_pytester.makeconftest(
        """
        from pytest_dbarch import Area, Finding, Status
        from pytest_dbarch.stash import LEDGER

        def pytest_sessionfinish(session):
            # A check that reports once per worker, outside any test.
            worker = getattr(session.config, "workerinput", {}).get("workerid")
            if worker:
                session.config.stash[LEDGER].add(Finding(
                    rule="migrations.drift", area=Area.MIGRATIONS, status=Status.PASSED,
                    title=f"no drift seen by {worker}",
                ))
        """
    )
    result = external_pytester.runpytest("-n", "2")
    result.assert_outcomes(passed=5, skipped=1)
    temp = external_pytester.path / ".temp"
    [task_id] = task_ids(temp)
    data = status(temp, task_id)
    # 5 recorded, one drift finding per worker, two query checks of test_databases
    assert data["counts"] == {"checks": 7, "passed": 4, "failed": 1, "warning": 1, "error": 1, "stale": 0}
    checklist = (temp / f"checklist-{task_id}.md").read_text()
    [drift] = [line for line in checklist.splitlines() if "`migrations.drift`" in line]  # one line for both
    assert drift.startswith("- [x] no drift seen by gw") and "gw0" in drift and "gw1" in drift and "2 checks)" in drift
    assert data["lastRun"]["scope"] == "whole"  # the workers' collections reach the controller
    assert "- [x] Tests run on PostgreSQL" in checklist
    result.stdout.fnmatch_lines([f"dbarch report: .temp/checklist-{task_id}.md (task {task_id}, run 1, *)"])
    assert len(list(Path(temp).glob("task-status-*.json"))) == 1
