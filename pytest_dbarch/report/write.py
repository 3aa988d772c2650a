"""Write a task's files all together, so a crash never leaves a half-updated report.

Every file is rendered in memory first (a renderer that raises touches nothing), then
written to a staging directory inside the report dir, each file flushed to disk. Last,
a manifest naming every move and removal is renamed into place: that rename is the
commit. Applying the manifest replaces the files one ``os.replace`` each. A crash
before the commit leaves the previous report untouched (the staging leftover is
deleted by the next write); a crash while applying (a few renames) is rolled forward by
the next write, which first finishes the committed set. Writers take an
exclusive ``flock`` on the report dir, so two sessions never interleave.

``write_report`` is also the entry point for the ``dbarch`` console script.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pytest_dbarch.findings import Finding
from pytest_dbarch.report import (
    render_architecture_notes,
    render_checklist,
    render_completion_summary,
    render_plan,
    render_progress,
    render_task_status,
)
from pytest_dbarch.report.ids import (
    COMPLETED,
    STAGING_PREFIX,
    PreviousTask,
    file_name,
    ids_in_use,
    new_id,
    previous_task,
    related_files,
    task_files,
)
from pytest_dbarch.report.ledger import Merged, Run, TaskLedger, merge
from pytest_dbarch.report.model import Report, build_report

DEFAULT_AGENT_ID = "pytest-dbarch"
MANIFEST = "manifest.json"
RENDERERS = (
    render_task_status,
    render_checklist,
    render_progress,
    render_plan,
    render_architecture_notes,
)


@dataclass(frozen=True)
class ReportFiles:
    """What was written: the task id, where its files now are, and whether it completed."""

    task_id: str
    directory: Path
    paths: tuple[Path, ...]
    completed: bool
    reused: bool
    report: Report

    @property
    def checklist(self) -> Path:
        return self.directory / f"checklist-{self.task_id}.md"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def default_description(project: str) -> str:
    return f"Database architecture checks of {project} (pytest-dbarch)"


def write_report(
    findings: Iterable[Finding],
    *,
    directory: Path | str,
    project: str,
    agent_id: str = DEFAULT_AGENT_ID,
    description: str | None = None,
    started_at: str | None = None,
    reuse: bool = True,
    run: Run | None = None,
) -> ReportFiles | None:
    """Merge one run's ``findings`` into the task's ledger and write the ``.temp/`` files
    atomically.

    ``run`` says what the run re-checked (``report.ledger``); the default is a run of a
    console command that covered its whole source. With ``reuse``, the newest open task
    of the same agent and project is updated (same id, start time, decisions); with none
    open, a run that keeps the newest completed task complete refreshes it, anything
    else starts a new task. Returns ``None`` when there is nothing to write: no findings
    and no open task to update.
    """
    directory = Path(directory)
    findings = list(findings)
    run = run or Run()
    if not findings and not directory.is_dir():
        return None
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory):
        recover(directory)
        stamp = now_iso()

        def merged_into(task: PreviousTask | None) -> Merged:
            ledger = _load_ledger(directory, task)
            runs = max(ledger.runs, int(task.status.get("runs", 0) or 0)) if task else 0
            return merge(ledger, findings, run, runs + 1, stamp)

        task = previous_task(directory, agent_id=agent_id, project=project, include_completed=False) if reuse else None
        if task is None and not findings:
            return None
        if task is not None:
            merged = merged_into(task)
        else:
            done = previous_task(directory, agent_id=agent_id, project=project, include_completed=True) if reuse else None
            merged = merged_into(done) if done else merged_into(None)
            task = done if done and merged.ledger.complete else None
            if task is None and done:
                merged = merged_into(None)
        task_id = task.task_id if task else new_id(ids_in_use(directory))
        report = build_report(
            merged,
            task_id=task_id,
            agent_id=agent_id,
            project=project,
            description=description or default_description(project),
            started_at=started_at or stamp,
            updated_at=stamp,
            related_files=related_files(directory, task_id),
            directory=directory,
            previous=task.status if task else None,
        )
        renderers = RENDERERS + ((render_completion_summary,) if report.complete else ())
        contents = {report.file_name(r.KIND): r.render(report) for r in renderers}
        contents[report.file_name("ledger")] = merged.ledger.to_json(task_id)
        target = directory / COMPLETED if report.complete else directory
        _stage_and_commit(directory, task_id, target, contents)
        return ReportFiles(
            task_id=task_id,
            directory=target,
            paths=tuple(target / name for name in contents),
            completed=report.complete,
            reused=task is not None,
            report=report,
        )


def _load_ledger(directory: Path, task: PreviousTask | None) -> TaskLedger:
    """The task's ledger; a task written before ledgers existed starts an empty one."""
    if task is None:
        return TaskLedger()
    path = (directory / COMPLETED if task.completed else directory) / file_name("ledger", task.task_id)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return TaskLedger()
    try:
        return TaskLedger.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise LedgerDamaged(
            f"{path} cannot be read ({type(exc).__name__}: {exc}); delete it to restart the "
            "task's ledger, or --dbarch-report-reuse=off for a new task"
        ) from None


class LedgerDamaged(ValueError):
    """A task's ledger file is not valid: nothing is written over it."""


def _stage_and_commit(directory: Path, task_id: str, target: Path, contents: dict[str, str]) -> None:
    staging = directory / f"{STAGING_PREFIX}{task_id}-{os.getpid()}"
    destinations = {target / name for name in contents}
    stale = [
        p
        for folder in (directory, directory / COMPLETED)
        for p in task_files(folder, task_id)
        if p not in destinations
    ]
    manifest = {
        "moves": [[name, str((target / name).relative_to(directory))] for name in contents],
        "remove": [str(p.relative_to(directory)) for p in stale],
    }
    staging.mkdir()
    try:
        for name, text in contents.items():
            _stage_file(staging / name, text)
        _stage_file(staging / (MANIFEST + ".tmp"), json.dumps(manifest))
        os.replace(staging / (MANIFEST + ".tmp"), staging / MANIFEST)  # the commit point
        _fsync_dir(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _apply(directory, staging)


def _stage_file(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _commit_one(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, destination)


def _apply(directory: Path, staging: Path) -> None:
    """Carry out a committed manifest; safe to repeat after a crash halfway."""
    manifest = json.loads((staging / MANIFEST).read_text(encoding="utf-8"))
    for name, destination in manifest["moves"]:
        source = staging / name
        if source.exists():
            _commit_one(source, directory / destination)
    for stale in manifest["remove"]:
        with contextlib.suppress(FileNotFoundError):
            (directory / stale).unlink()
    _fsync_dir(directory)
    if (directory / COMPLETED).is_dir():
        _fsync_dir(directory / COMPLETED)
    shutil.rmtree(staging, ignore_errors=True)


def recover(directory: Path) -> None:
    """Finish (committed) or discard (uncommitted) what an interrupted write left."""
    for staging in sorted(directory.glob(STAGING_PREFIX + "*")):
        if not staging.is_dir():
            continue
        if (staging / MANIFEST).is_file():
            _apply(directory, staging)
        else:
            shutil.rmtree(staging, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on the report dir for the whole write (POSIX; none elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
