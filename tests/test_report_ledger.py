"""The task's ledger: partial runs keep what they did not re-check, as a user sees it.

The pure merge rules first (no database), then whole sessions through pytester: a real
N+1 found by a full run survives a green subset run, tests that fail keep the task
open, the ``dbarch`` command and pytest feed one task, deleted tests close their items,
and the checklist stays one line per passed check at scale.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from pytest_dbarch import Area, Finding, Status
from pytest_dbarch.report import task_status_schema
from pytest_dbarch.report.ledger import Run, TaskLedger, merge
from pytest_dbarch.report.write import write_report
from tests import queries_support
from tests.report_sessions import lean_inner_sessions, status, task_ids  # noqa: F401 (autouse fixture)

NOW = "2026-11-27T10:00:00+00:00"


def nplusone(nodeid: str = "t.py::test_feed", title: str = "SELECT contacts ran 3x") -> Finding:
    return Finding("queries.nplusone-lazy-load", Area.QUERIES, Status.WARNING, title,
                   where="app.py:9", fix="use selectinload(Account.contacts)", nodeid=nodeid)


def clean(nodeid: str, n: int = 2) -> Finding:
    return Finding("queries.nplusone", Area.QUERIES, Status.PASSED, f"No N+1 queries ({n} statements checked)", nodeid=nodeid)


def pytest_run(*ran: str, whole: bool = False, failed: tuple[str, ...] = (), gone: tuple[str, ...] = ()) -> Run:
    outcomes = {n: "passed" for n in ran} | {n: "failed" for n in failed}
    return Run(source="pytest", tests_ran=frozenset(ran) | frozenset(failed), outcomes=outcomes,
               whole=whole, gone=lambda nodeid: nodeid in gone)


def test_a_partial_run_keeps_what_it_did_not_recheck() -> None:
    first = merge(TaskLedger(), [nplusone(), clean("t.py::test_a")], pytest_run("t.py::test_feed", "t.py::test_a", whole=True), 1, NOW)
    second = merge(first.ledger, [clean("t.py::test_a", 3)], pytest_run("t.py::test_a"), 2, NOW)
    [kept] = [i for i in second.ledger.items if i.is_problem]
    assert kept.finding == nplusone() and (kept.first_run, kept.last_run) == (1, 1)
    assert second.is_stale(kept) and not second.closed and not second.ledger.complete
    [a] = [i for i in second.ledger.items if not i.is_problem]
    assert a.finding.title == "No N+1 queries (3 statements checked)" and a.last_run == 2


def test_an_item_closes_only_when_its_test_runs_again_and_no_longer_reports_it() -> None:
    first = merge(TaskLedger(), [nplusone()], pytest_run("t.py::test_feed"), 1, NOW)
    # The same N+1 with a new count is the same open item, not a closed and a new one.
    again = merge(first.ledger, [nplusone(title="SELECT contacts ran 4x")], pytest_run("t.py::test_feed"), 2, NOW)
    assert not again.closed and [i.finding.title for i in again.ledger.open] == ["SELECT contacts ran 4x"]
    fixed = merge(again.ledger, [clean("t.py::test_feed")], pytest_run("t.py::test_feed"), 3, NOW)
    assert [c.finding.title for c in fixed.closed] == ["SELECT contacts ran 4x"]
    assert fixed.ledger.complete


def test_setup_errors_and_failing_tests_keep_the_task_open() -> None:
    first = merge(TaskLedger(), [clean("t.py::test_a")], pytest_run("t.py::test_a", whole=True, failed=("t.py::test_b",)), 1, NOW)
    assert not first.ledger.complete and [t.nodeid for t in first.ledger.failing] == ["t.py::test_b"]
    # A green subset run that did not re-run test_b cannot complete the task.
    subset = merge(first.ledger, [clean("t.py::test_a")], pytest_run("t.py::test_a"), 2, NOW)
    assert not subset.ledger.complete and subset.ledger.failing[0].run == 1
    # test_feed errored in setup: its call never ran, so its N+1 is kept, not closed.
    with_item = merge(subset.ledger, [nplusone()], pytest_run("t.py::test_feed"), 3, NOW)
    errored = Run(source="pytest", outcomes={"t.py::test_feed": "error", "t.py::test_b": "passed"},
                  tests_ran=frozenset({"t.py::test_b"}), whole=False)
    after = merge(with_item.ledger, [], errored, 4, NOW)
    assert [i.finding.rule for i in after.ledger.open] == ["queries.nplusone-lazy-load"]
    assert [(t.nodeid, t.outcome) for t in after.ledger.failing] == [("t.py::test_feed", "error")]


def test_sources_do_not_erase_each_other_and_partial_commands_close_only_what_they_rechecked() -> None:
    def revision(rev: str, status: Status) -> Finding:
        return Finding("migrations.round-trip", Area.MIGRATIONS, status, f"{rev} round trip", where=rev)

    cli = Run(source="dbarch migrations check")
    first = merge(TaskLedger(), [nplusone()], pytest_run("t.py::test_feed", whole=True), 1, NOW)
    second = merge(first.ledger, [revision("0001", Status.FAILED), revision("0002", Status.FAILED)], cli, 2, NOW)
    assert {i.finding.rule for i in second.ledger.open} == {"queries.nplusone-lazy-load", "migrations.round-trip"}
    # A whole pytest run with no test-less findings leaves the command's items alone.
    third = merge(second.ledger, [nplusone()], pytest_run("t.py::test_feed", whole=True), 3, NOW)
    assert len(third.ledger.open) == 3
    since = Run(source="dbarch migrations check", whole=False)  # e.g. --since: only 0002 checked
    fourth = merge(third.ledger, [revision("0002", Status.PASSED)], since, 4, NOW)
    assert [c.finding.where for c in fourth.closed] == ["0002"]
    assert {i.finding.where for i in fourth.ledger.open} == {"app.py:9", "0001"}
    fifth = merge(fourth.ledger, [revision("0001", Status.PASSED), revision("0002", Status.PASSED)], cli, 5, NOW)
    assert [i.finding.rule for i in fifth.ledger.open] == ["queries.nplusone-lazy-load"]


def test_a_test_that_no_longer_exists_closes_its_items() -> None:
    first = merge(TaskLedger(), [nplusone()], pytest_run("t.py::test_feed", failed=("t.py::test_b",)), 1, NOW)
    second = merge(first.ledger, [clean("t.py::test_a")], pytest_run("t.py::test_a", gone=("t.py::test_feed", "t.py::test_b")), 2, NOW)
    assert [c.finding.nodeid for c in second.closed] == ["t.py::test_feed"]
    assert second.gone_tests == ("t.py::test_b", "t.py::test_feed")
    assert not second.ledger.failing and second.ledger.complete


def test_the_ledger_round_trips_through_json_and_scrubs_secrets() -> None:
    leaky = Finding("databases.connect", Area.DATABASES, Status.FAILED, "postgresql://app:hunter2@db/crm", nodeid="t.py::test_x")
    merged = merge(TaskLedger(), [leaky, clean("t.py::test_a")], pytest_run("t.py::test_x", "t.py::test_a"), 1, NOW)
    text = merged.ledger.to_json("AB12C3")
    assert "hunter2" not in text
    assert TaskLedger.from_json(text) == merged.ledger
    with pytest.raises(ValueError):
        TaskLedger.from_json('{"format": 99}')


def test_a_damaged_ledger_is_never_written_over(tmp_path: Path) -> None:
    files = write_report([nplusone()], directory=tmp_path, project="crm", run=pytest_run("t.py::test_feed"))
    assert files is not None
    ledger = tmp_path / f"ledger-{files.task_id}.json"
    ledger.write_text("{not json")
    with pytest.raises(ValueError, match=f"ledger-{files.task_id}.json cannot be read.*delete it"):
        write_report([nplusone()], directory=tmp_path, project="crm", run=pytest_run("t.py::test_feed"))
    assert ledger.read_text() == "{not json"


def test_no_findings_and_no_open_task_writes_nothing(tmp_path: Path) -> None:
    assert write_report([], directory=tmp_path / ".temp", project="crm") is None
    assert not (tmp_path / ".temp").exists()


FEED = """
import os
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from models import Account


def test_feed(seeded):
    query = select(Account)
    if os.environ.get("FEED_FIXED"):
        query = query.options(selectinload(Account.contacts))
    for account in seeded.scalars(query):
        account.contacts


def test_names(seeded):
    assert len(seeded.scalars(select(Account)).all()) == 3
"""


@pytest.mark.slow  # several inner sessions
def test_a_green_subset_run_keeps_the_n_plus_one_open(external_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    queries_support.project(external_pytester)
    queries_support.application_tests(external_pytester, "feed", FEED)  # the loop is the application's
    temp = external_pytester.path / ".temp"

    full = external_pytester.runpytest()
    full.assert_outcomes(passed=2)
    [task_id] = task_ids(temp)
    full.stdout.fnmatch_lines([f"dbarch report: .temp/checklist-{task_id}.md (task {task_id}, run 1, phase fix, * checks passed)"])

    subset = external_pytester.runpytest("test_feed.py::test_names")
    subset.assert_outcomes(passed=1)
    subset.stdout.fnmatch_lines([f"dbarch report: .temp/checklist-{task_id}.md (task {task_id}, run 2, phase fix, * not re-checked in this run)"])
    assert task_ids(temp) == {task_id} and not (temp / "completed").exists()
    checklist = (temp / f"checklist-{task_id}.md").read_text()
    [item] = [line for line in checklist.splitlines() if "queries.nplusone-lazy-load" in line]
    assert item.startswith("- [ ] ") and "test `test_feed.py::test_feed`" in item
    assert item.endswith("not re-checked in this run, last seen in run 1)")
    progress = (temp / f"progress-{task_id}.md").read_text()
    stale = progress.split("## Not re-checked in this run")[1].split("## ")[0]
    assert "queries.nplusone-lazy-load" in stale and "test `test_feed.py::test_feed`" in stale
    assert "Run 2 (pytest test_feed.py::test_names, partial: 1 test ran)" in progress
    data = status(temp, task_id)
    jsonschema.validate(data, task_status_schema())
    assert data["lastRun"]["scope"] == "partial" and data["counts"]["stale"] > 0
    queries = next(w for w in data["workstreams"] if w["id"] == "queries")
    assert queries["status"] == "in-progress"
    assert [s for s in queries["stale"] if s.startswith("queries.nplusone-lazy-load")]

    # -k and --deselect are partial too, even though they name no file.
    external_pytester.runpytest("-k", "test_names").assert_outcomes(passed=1, deselected=1)
    assert task_ids(temp) == {task_id} and status(temp, task_id)["lastRun"]["scope"] == "partial"

    # Fixed, and only the test that reported it re-run: it closes, and the task completes
    # (every other item passed when last seen).
    monkeypatch.setenv("FEED_FIXED", "1")
    fixed = external_pytester.runpytest("test_feed.py::test_feed")
    fixed.assert_outcomes(passed=1)
    fixed.stdout.fnmatch_lines([f"dbarch report: .temp/completed/checklist-{task_id}.md (task {task_id}, run 4, every check passed: moved to completed/)"])
    progress = (temp / "completed" / f"progress-{task_id}.md").read_text()
    assert "## Resolved in this run" in progress and "re-checked: no longer reported" in progress


FAILING_AND_CHECKED = """
import os
import pytest
from pytest_dbarch import Area, Finding, Status

def test_checked(dbarch_findings):
    dbarch_findings.add(Finding(rule="schema.pk", area=Area.SCHEMA, status=Status.PASSED, title="every table has a primary key"))

def test_flaky():
    assert not os.environ.get("BREAK_FLAKY"), "flaky broke"

@pytest.fixture
def broken():
    assert not os.environ.get("BREAK_SETUP"), "setup broke"

def test_setup_breaks(broken):
    pass
"""


@pytest.mark.slow  # several inner sessions
def test_a_run_with_failing_tests_never_completes_the_task(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_x=FAILING_AND_CHECKED)
    temp = pytester.path / ".temp"
    monkeypatch.setenv("BREAK_FLAKY", "1")
    monkeypatch.setenv("BREAK_SETUP", "1")
    first = pytester.runpytest()
    first.assert_outcomes(passed=1, failed=1, errors=1)
    [task_id] = task_ids(temp)
    first.stdout.fnmatch_lines([f"dbarch report: *(task {task_id}, run 1, phase fix, 1 of 1 checks passed, 2 failing tests)"])
    checklist = (temp / f"checklist-{task_id}.md").read_text()
    assert "- [ ] Make `test_x.py::test_flaky` pass again (failed in this run)" in checklist
    assert "- [ ] Make `test_x.py::test_setup_breaks` pass again (errored in this run)" in checklist
    data = status(temp, task_id)
    jsonschema.validate(data, task_status_schema())
    assert data["status"] == "in-progress" and {t["outcome"] for t in data["failingTests"]} == {"failed", "error"}
    assert data["decisions"][-1]["decision"].startswith("Not complete: 2 failing tests")

    monkeypatch.delenv("BREAK_FLAKY")
    pytester.runpytest("test_x.py::test_flaky", "test_x.py::test_checked").assert_outcomes(passed=2)
    checklist = (temp / f"checklist-{task_id}.md").read_text()
    assert "Make `test_x.py::test_flaky`" not in checklist
    assert "- [ ] Make `test_x.py::test_setup_breaks` pass again (errored in run 1, not re-run since)" in checklist
    assert not (temp / "completed").exists()

    monkeypatch.delenv("BREAK_SETUP")
    pytester.runpytest("test_x.py::test_setup_breaks").assert_outcomes(passed=1)
    assert task_ids(temp / "completed") == {task_id}


@pytest.mark.slow  # several inner sessions
def test_deleted_tests_close_their_items_only_when_the_collection_shows_it(pytester: pytest.Pytester) -> None:
    def module(*names: str) -> str:
        return "from pytest_dbarch import Area, Finding, Status\n" + "".join(
            f"\ndef test_{n}(dbarch_findings):\n"
            f"    dbarch_findings.add(Finding(rule='schema.fk-index', area=Area.SCHEMA, status=Status.WARNING,"
            f" title='{n}.account_id has no index', fix='add the index'))\n"
            for n in names
        )

    pytester.makepyfile(test_one=module("a", "b"), test_two=module("c"))
    temp = pytester.path / ".temp"
    pytester.runpytest().assert_outcomes(passed=3)
    [task_id] = task_ids(temp)

    def open_items() -> list[str]:
        return sorted(w for ws in status(temp, task_id)["workstreams"] for w in ws["open"])

    assert len(open_items()) == 3
    pytester.makepyfile(test_one=module("a"))  # test_b removed
    pytester.runpytest("-k", "test_a").assert_outcomes(passed=1, deselected=1)
    assert len(open_items()) == 3, "a narrowed collection says nothing about test_b"
    pytester.runpytest("test_two.py").assert_outcomes(passed=1)
    assert len(open_items()) == 3, "test_one.py was not collected"
    pytester.runpytest("test_one.py").assert_outcomes(passed=1)
    assert open_items() == ["schema.fk-index: a.account_id has no index", "schema.fk-index: c.account_id has no index"]
    assert any("its test no longer exists" in d["decision"] for d in status(temp, task_id)["decisions"])
    (pytester.path / "test_two.py").unlink()  # a deleted file closes its items in any run
    pytester.runpytest("test_one.py::test_a").assert_outcomes(passed=1)
    assert open_items() == ["schema.fk-index: a.account_id has no index"]


MIGRATION = """-- migrate:up
CREATE TABLE notes (id serial PRIMARY KEY, body text);
-- migrate:down
SELECT 1;
"""


@pytest.mark.slow  # several inner sessions
def test_the_dbarch_command_and_pytest_feed_one_task(external_pytester: pytest.Pytester, inner_dsn: str) -> None:
    queries_support.project(external_pytester)
    queries_support.application_tests(external_pytester, "feed", FEED)  # the loop is the application's
    temp = external_pytester.path / ".temp"
    external_pytester.runpytest().assert_outcomes(passed=2)
    [task_id] = task_ids(temp)
    before = status(temp, task_id)
    queries_open = next(w for w in before["workstreams"] if w["id"] == "queries")["open"]
    assert queries_open

    migrations = external_pytester.mkdir("migrations")
    (migrations / "0001_notes.sql").write_text(MIGRATION)  # a downgrade that forgets the table
    cli = [sys.executable, "-m", "pytest_dbarch.cli", "migrations", "check", "migrations", "--dsn", inner_dsn, "--no-data"]
    result = subprocess.run(cli, cwd=external_pytester.path, capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert f"task {task_id}, run 2" in result.stdout, result.stdout
    after = status(temp, task_id)
    streams = {w["id"]: w for w in after["workstreams"]}
    assert streams["queries"]["open"] == queries_open, "the command must not erase pytest's items"
    assert streams["queries"]["status"] == "in-progress" and streams["migrations"]["status"] == "in-progress"
    assert after["lastRun"]["source"] == "dbarch migrations check migrations"
    assert not any("Workstream queries" in d["decision"] for d in after["decisions"])

    # And a pytest run after it leaves the command's migration items alone.
    external_pytester.runpytest().assert_outcomes(passed=2)
    again = {w["id"]: w for w in status(temp, task_id)["workstreams"]}
    assert again["migrations"]["open"] == streams["migrations"]["open"]


def test_the_checklist_has_one_line_per_passed_check_at_scale(external_pytester: pytest.Pytester) -> None:
    external_pytester.makepyfile(
        reads="""
        def read(conn, n):  # the application's statements: test code's are not checked
            conn.execute("SELECT %s", (n,)).fetchone()
            if n % 50 == 0:
                conn.execute("SELECT 2").fetchone()
        """,
        test_reads="""
        import pytest

        from reads import read

        @pytest.mark.parametrize("n", range(150))
        def test_read(dbarch_psycopg, n):
            read(dbarch_psycopg, n)
        """,
    )
    external_pytester.runpytest("-q").assert_outcomes(passed=150)
    temp = external_pytester.path / ".temp"
    [task_id] = task_ids(temp / "completed")
    checklist = (temp / "completed" / f"checklist-{task_id}.md").read_text()
    lines = [line for line in checklist.splitlines() if line.startswith("- [")]
    assert "- [x] No N+1 queries: 150 tests, 153 statements (passed; `queries.nplusone`)" in lines
    assert len(lines) <= 3, lines  # one per check (N+1, query lint), not one per test
    ledger = json.loads((temp / "completed" / f"ledger-{task_id}.json").read_text())
    assert len(ledger["items"]) == 300  # the ledger keeps every item
