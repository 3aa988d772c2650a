"""The ``.temp/`` report as a user sees it: files, structure, ids, reuse, completion."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from pytest_dbarch.report import ids, task_status_schema
from tests.report_sessions import CHECKS, expected_names, lean_inner_sessions, names, status, task_ids  # noqa: F401 (autouse fixture)

OTHER_AGENT_STATUS = {
    "agentId": "sequelize-queries-architect",
    "taskId": "K9K9K9",
    "relatedAgentFiles": [],
    "description": "query optimisation",
    "startedAt": "2026-11-20T10:00:00Z",
    "workstreams": [{"id": "queries-feed", "status": "in-progress", "crossAgentReferences": []}],
    "decisions": [],
}


def test_mixed_session_writes_the_five_files_in_the_seed_format(external_pytester: pytest.Pytester) -> None:
    temp = external_pytester.path / ".temp"
    (temp / "completed").mkdir(parents=True)
    (temp / "plan-A1B2C3.md").write_text("# another agent's plan\n")
    (temp / "progress-X9Y8Z7.json").write_text("{}\n")
    (temp / "task-status-K9K9K9.json").write_text(json.dumps(OTHER_AGENT_STATUS))
    (temp / "completed" / "checklist-Q1W2E3.md").write_text("- [x] done\n")
    before = names(temp)
    external_pytester.makepyfile(test_checks=CHECKS)

    result = external_pytester.runpytest()

    result.assert_outcomes(passed=5, skipped=1)
    assert result.ret == 0  # findings alone do not fail a session without a gate
    [task_id] = task_ids(temp) - {"A1B2C3", "X9Y8Z7", "K9K9K9"}
    assert ids.is_task_id(task_id) and task_id != "Q1W2E3"
    assert names(temp) - before == expected_names(task_id)  # exactly these, no leftovers
    assert names(temp / "completed") == {"checklist-Q1W2E3.md"}
    result.stdout.fnmatch_lines([f"dbarch report: .temp/checklist-{task_id}.md (task {task_id}, run 1, phase blocked, 2 of 5 checks passed)"])

    data = status(temp, task_id)
    jsonschema.validate(data, task_status_schema())
    assert data["agentId"] == "pytest-dbarch" and data["taskId"] == task_id
    assert data["project"] == external_pytester.path.name
    assert data["relatedAgentFiles"] == [".temp/plan-A1B2C3.md", ".temp/progress-X9Y8Z7.json", ".temp/task-status-K9K9K9.json"]
    # 5 recorded by the tests, plus the query checks of test_databases (no N+1, lint clean)
    assert data["counts"] == {"checks": 5, "passed": 2, "failed": 1, "warning": 1, "error": 1, "stale": 0}
    streams = {w["id"]: w for w in data["workstreams"]}
    assert {k: w["status"] for k, w in streams.items()} == {
        "databases": "completed",
        "queries": "in-progress",
        "migrations": "blocked",
        "models": "completed",
        "schema": "in-progress",
        "performance": "pending",
        "concurrency": "pending",
    }
    assert streams["queries"]["crossAgentReferences"] == [".temp/task-status-K9K9K9.json"]
    assert data["status"] == "blocked" and data["phase"] == "blocked" and data["runs"] == 1
    assert data["decisions"][0]["decision"] == "Run 1 (pytest, whole: 5 tests ran): 5 checks, 2 passed, 1 failed, 1 warning, 1 error"
    assert data["lastRun"]["scope"] == "whole" and data["failingTests"] == []

    checklist = (temp / f"checklist-{task_id}.md").read_text()
    assert (
        "- [ ] Use selectinload(Account.contacts) — SELECT contacts ran 50x in one request "
        "(failed; `queries.n-plus-one`; test `test_checks.py::test_feed_queries`; at `crm/services.py:42`)"
    ) in checklist
    assert "- [x] accounts.name NOT NULL is enforced (passed; `models.not-null`; test `test_checks.py::test_models`)" in checklist
    assert "- [x] Tests run on PostgreSQL 15" in checklist  # asked of the real server
    assert "- [ ] Unblock: make the downgrade drop contacts.phone — 0004 downgrade raised" in checklist
    assert "## Performance (pending)\n\n_No checks of this area ran in this task._" in checklist
    plan = (temp / f"plan-{task_id}.md").read_text()
    assert plan.index("## Phase 1: audit") < plan.index("## Phase 2: fix") < plan.index("## Phase 3: validate")
    assert "- [ ] Add index on contacts.account_id — contacts.account_id has no index (at `crm/models.py:31`)" in plan
    progress = (temp / f"progress-{task_id}.md").read_text()
    assert "**blocked**" in progress and "- 0004 downgrade raised (`migrations.round-trip`, at 0004)" in progress
    notes = (temp / f"architecture-notes-{task_id}.md").read_text()
    assert "## Query patterns" in notes and "SELECT contacts.id FROM contacts" in notes
    index_section = notes.split("## Index recommendations")[1].split("## Schema facts")[0]
    assert "contacts.account_id has no index" in index_section
    # The query checks' own passed findings (no evidence) never reach the notes. (This
    # session's one statement is test code's, so no query check ran: see README.)
    assert "No N+1 queries" not in notes


@pytest.mark.slow  # several inner sessions
def test_rerun_reuses_the_open_task_then_completes_and_moves_it(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, inner_dsn: str) -> None:
    monkeypatch.setenv("DBARCH_DSN", inner_dsn)
    pytester.makepyfile(test_checks=CHECKS)
    temp = pytester.path / ".temp"

    pytester.runpytest().assert_outcomes(passed=5, skipped=1)
    [first] = task_ids(temp)
    started = status(temp, first)["startedAt"]
    pytester.runpytest().assert_outcomes(passed=5, skipped=1)
    assert task_ids(temp) == {first}, "a re-run of the same project updates the open task"
    again = status(temp, first)
    assert again["runs"] == 2 and again["startedAt"] == started
    assert [d["decision"] for d in again["decisions"]][-1].startswith("Run 2 (pytest, whole: 5 tests ran): ")

    pytester.runpytest("--dbarch-report-reuse=off").assert_outcomes(passed=5, skipped=1)
    [second] = task_ids(temp) - {first}
    assert status(temp, second)["runs"] == 1

    monkeypatch.setenv("CHECK_OUTCOME", "pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=6)
    # The newest open task (the second) is the one this run completes.
    assert task_ids(temp) == {first}
    assert names(temp / "completed") == expected_names(second, completed=True)
    result.stdout.fnmatch_lines([f"dbarch report: .temp/completed/checklist-{second}.md (task {second}, run 2, every check passed: moved to completed/)"])
    done = status(temp / "completed", second)
    jsonschema.validate(done, task_status_schema())
    assert done["status"] == "completed" and {w["status"] for w in done["workstreams"]} == {"completed"}
    decided = [d["decision"] for d in done["decisions"]]
    assert "Workstream queries: in-progress -> completed" in decided
    assert "Workstream migrations: blocked -> completed" in decided
    assert decided[-1] == "Every check passed: completion summary written, files moved to completed/"
    summary = (temp / "completed" / f"completion-summary-{second}.md").read_text()
    assert "Every check passed: 7 checks: 7 passed" in summary
    assert f"- .temp/task-status-{first}.json" in summary  # the other open task it coordinated with
    assert "- [x]" in (temp / "completed" / f"checklist-{second}.md").read_text()

    pytester.runpytest().assert_outcomes(passed=6)  # completes the first one too
    pytester.runpytest().assert_outcomes(passed=6)  # refreshes the newest completed task
    assert task_ids(temp) == set()
    assert task_ids(temp / "completed") == {first, second}, "passing re-runs do not pile up new ids"


@pytest.mark.slow  # several inner sessions
def test_report_dir_agent_and_description_from_ini_and_off(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\ndbarch_report_dir = reports/dbarch\ndbarch_agent_id = ci-architect\n"
        "dbarch_report_description = Nightly database review\n"
    )
    pytester.makepyfile(test_checks=CHECKS.replace("def test_databases", "def _no_database"))
    pytester.runpytest().assert_outcomes(passed=4, skipped=1)
    folder = pytester.path / "reports" / "dbarch"
    [task_id] = task_ids(folder)
    data = status(folder, task_id)
    assert (data["agentId"], data["description"]) == ("ci-architect", "Nightly database review")
    assert not (pytester.path / ".temp").exists()

    pytester.runpytest("--dbarch-report-dir=off").assert_outcomes(passed=4, skipped=1)
    assert status(folder, task_id)["runs"] == 1, "off writes nothing"

    # A command-line directory is relative to where pytest was started.
    sub = pytester.mkdir("sub")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)
        pytester.runpytest(str(pytester.path), "--dbarch-report-dir=cli-out").assert_outcomes(passed=4, skipped=1)
    assert task_ids(sub / "cli-out") and not (pytester.path / "cli-out").exists()


def test_no_findings_no_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    pytester.runpytest().assert_outcomes(passed=1)
    assert not (pytester.path / ".temp").exists()


def test_new_id_avoids_ids_in_temp_and_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "completed").mkdir()
    (tmp_path / "plan-A1B2C3.md").write_text("")
    (tmp_path / "completed" / "task-status-Q1W2E3.json").write_text("{}")
    taken = ids.ids_in_use(tmp_path)
    assert taken == {"A1B2C3", "Q1W2E3"}
    # The generator offers the two taken ids first: both must be refused.
    offered = iter("A1B2C3" "Q1W2E3" "Z9Z9Z9")
    monkeypatch.setattr(ids.secrets, "choice", lambda alphabet: next(offered))
    assert ids.new_id(taken) == "Z9Z9Z9"


def test_schema_rejects_what_the_format_forbids() -> None:
    schema = task_status_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    bad = {**OTHER_AGENT_STATUS, "taskId": "abc"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_an_interrupted_session_leaves_the_report_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_dbarch import Area, Finding, Status

        def test_stops(dbarch_findings):
            dbarch_findings.add(Finding(rule="schema.pk", area=Area.SCHEMA, status=Status.PASSED, title="pk"))

        def test_then_interrupts():
            pytest.exit("stopping here", returncode=pytest.ExitCode.INTERRUPTED)
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert not (pytester.path / ".temp").exists()


def test_write_report_is_a_plain_function_for_the_console_script(tmp_path: Path) -> None:
    from pytest_dbarch import Area, Finding, Status
    from pytest_dbarch.report.write import write_report

    (tmp_path / "checklist-M1G2R3-migrations.md").write_text("")  # another tool's file about migrations
    failed = Finding(rule="migrations.lock", area=Area.MIGRATIONS, status=Status.FAILED, title="0004 locks contacts",
                     where="migrations/versions/0004.py:12", fix="add the index CONCURRENTLY")
    files = write_report([failed], directory=tmp_path, project="crm", agent_id="dbarch-cli")
    assert "M1G2R3" in ids.ids_in_use(tmp_path)
    assert (files.completed, files.reused, files.directory) == (False, False, tmp_path)
    assert {p.name for p in files.paths} == expected_names(files.task_id)
    data = status(tmp_path, files.task_id)
    jsonschema.validate(data, task_status_schema())
    streams = {w["id"]: w for w in data["workstreams"]}
    assert streams["migrations"]["crossAgentReferences"] == [f"{tmp_path.name}/checklist-M1G2R3-migrations.md"]
    assert streams["migrations"]["open"] == ["migrations.lock: 0004 locks contacts"]

    empty = write_report([], directory=tmp_path, project="crm", agent_id="dbarch-cli")
    assert empty.task_id == files.task_id and empty.reused
    data = status(tmp_path, files.task_id)
    jsonschema.validate(data, task_status_schema())
    assert (data["phase"], data["runs"]) == ("audit", 2)
    assert {w["status"] for w in data["workstreams"]} == {"pending"}
