"""All files together or none: a renderer that raises, a process killed while staging,
and a process killed while committing (rolled forward by the next write)."""

from __future__ import annotations

import pytest

from pytest_dbarch.report.write import recover
from tests.report_sessions import CHECKS, expected_names, lean_inner_sessions, names, snapshot, status, task_ids  # noqa: F401 (autouse fixture)

FAILING_RENDERER = """
from pytest_dbarch.report import render_plan

def _broken(report):
    raise RuntimeError("plan renderer broke")

render_plan.render = _broken
"""

# Kill the process (no cleanup, like SIGKILL or a power cut) after N files of a phase.
KILL_AFTER = """
import os
from pytest_dbarch.report import write

_real = write.{function}
_done = []

def _then_die(*args):
    _real(*args)
    _done.append(args)
    if len(_done) == {count}:
        os._exit(9)

write.{function} = _then_die
"""


@pytest.fixture
def previous_report(pytester: pytest.Pytester) -> tuple[str, dict[str, bytes]]:
    """A first, successful run: its task id and every byte of its files."""
    pytester.makepyfile(test_checks=CHECKS.replace("def test_databases", "def _no_database"))
    pytester.runpytest().assert_outcomes(passed=4, skipped=1)
    temp = pytester.path / ".temp"
    [task_id] = task_ids(temp)
    return task_id, snapshot(temp)


@pytest.mark.slow  # several inner sessions
def test_a_renderer_that_raises_leaves_the_previous_report_intact(
    pytester: pytest.Pytester, previous_report: tuple[str, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id, before = previous_report
    pytester.makeconftest(FAILING_RENDERER)
    monkeypatch.setenv("CHECK_OUTCOME", "pass")  # would complete and move the task
    result = pytester.runpytest()
    result.assert_outcomes(passed=5)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["dbarch report NOT written to */.temp: RuntimeError: plan renderer broke (the previous report is unchanged)"]
    )
    assert snapshot(pytester.path / ".temp") == before


@pytest.mark.slow  # several inner sessions
def test_killed_while_staging_leaves_the_previous_report_intact(
    pytester: pytest.Pytester, previous_report: tuple[str, dict[str, bytes]]
) -> None:
    task_id, before = previous_report
    temp = pytester.path / ".temp"
    pytester.makeconftest(KILL_AFTER.format(function="_stage_file", count=2))
    result = pytester.runpytest()
    assert result.ret == 9
    # The visible report is byte for byte the previous one; only a hidden staging dir is new.
    visible = {k: v for k, v in snapshot(temp).items() if not k.startswith(".")}
    assert visible == before
    [staging] = [p for p in temp.iterdir() if p.name.startswith(".dbarch-staging-")]
    assert len(list(staging.iterdir())) == 2

    (pytester.path / "conftest.py").unlink()
    pytester.runpytest().assert_outcomes(passed=4, skipped=1)
    assert names(temp) == expected_names(task_id), "the next write discards the uncommitted leftover"
    assert status(temp, task_id)["runs"] == 2


@pytest.mark.slow  # several inner sessions
def test_killed_while_committing_is_rolled_forward(
    pytester: pytest.Pytester, previous_report: tuple[str, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id, before = previous_report
    temp = pytester.path / ".temp"
    pytester.makeconftest(KILL_AFTER.format(function="_commit_one", count=2))
    monkeypatch.setenv("CHECK_OUTCOME", "pass")  # this run completes the task: files move
    assert pytester.runpytest().ret == 9
    assert any(p.name.startswith(".dbarch-staging-") for p in temp.iterdir())

    recover(temp)  # what every write does first

    assert names(temp) == {"completed"}, "all of the task's files moved, none left behind"
    assert names(temp / "completed") == expected_names(task_id, completed=True)
    for path in (temp / "completed").iterdir():
        text = path.read_text()
        assert "· run 2 ·" in text or '"runs": 2' in text or '"run": 2' in text, path.name
