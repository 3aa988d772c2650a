"""Task ids: six capitals/digits, unique among every file in ``.temp/`` and ``.temp/completed/``.

Also finds the task a re-run should update: the newest task of the same agent and
project that is still open (or, for a run where every check passed, already completed),
so repeated runs refresh one task instead of piling up new ids.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ID_ALPHABET = string.ascii_uppercase + string.digits
ID_LENGTH = 6
COMPLETED = "completed"
STAGING_PREFIX = ".dbarch-staging-"
# The file kinds of one task, in the order they are written.
KINDS = ("task-status", "checklist", "progress", "plan", "architecture-notes", "ledger", "completion-summary")
JSON_KINDS = ("task-status", "ledger")

# Any six-capital/digit segment of a name counts as taken (``plan-AB12C3.md``,
# ``notes-AB12C3-queries.md``): refusing a few extra ids costs nothing.
_ID_IN_NAME = re.compile(r"(?:^|[-_.])([A-Z0-9]{6})(?=[-_.]|$)")
_TASK_STATUS = re.compile(r"^task-status-(?P<id>[A-Z0-9]{6})\.json$")


def is_task_id(value: str) -> bool:
    return len(value) == ID_LENGTH and all(c in ID_ALPHABET for c in value)


def ids_in_use(directory: Path) -> set[str]:
    """Every id that any file (ours or another agent's) in the report dir already uses."""
    taken: set[str] = set()
    for folder in (directory, directory / COMPLETED):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            name = entry.name
            if name.startswith(STAGING_PREFIX):
                name = name[len(STAGING_PREFIX):].split("-")[0]
                taken.add(name)
                continue
            taken.update(_ID_IN_NAME.findall(name))
    return taken


def new_id(taken: set[str]) -> str:
    """A random id not in ``taken`` (36**6, about 2e9, ids: a clash is retried, not fatal)."""
    while True:
        candidate = "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))
        if candidate not in taken:
            return candidate


def task_files(folder: Path, task_id: str) -> list[Path]:
    """The files of one task in one folder (only the kinds this plugin writes)."""
    return [folder / file_name(kind, task_id) for kind in KINDS]


def file_name(kind: str, task_id: str) -> str:
    return f"{kind}-{task_id}.{'json' if kind in JSON_KINDS else 'md'}"


@dataclass(frozen=True)
class PreviousTask:
    task_id: str
    completed: bool
    status: dict[str, Any]


def previous_task(
    directory: Path, *, agent_id: str, project: str, include_completed: bool
) -> PreviousTask | None:
    """The newest task of ``agent_id`` for ``project``: open ones first, then completed."""
    folders = [(directory, False)] + ([(directory / COMPLETED, True)] if include_completed else [])
    for folder, completed in folders:
        found: list[tuple[tuple[str, int], PreviousTask]] = []
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = _TASK_STATUS.match(path.name)
            if not match:
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # someone else's or a damaged file: never ours to update
            if not isinstance(data, dict):
                continue
            if data.get("agentId") == agent_id and data.get("project") == project:
                stamp = (str(data.get("updatedAt") or ""), path.stat().st_mtime_ns)
                found.append((stamp, PreviousTask(match["id"], completed, data)))
        if found:
            return max(found, key=lambda pair: pair[0])[1]
    return None


def related_files(directory: Path, task_id: str) -> list[str]:
    """Other agents' (and other tasks') files in the report dir, as ``.temp/name`` paths."""
    if not directory.is_dir():
        return []
    ours = {p.name for p in task_files(directory, task_id)}
    return sorted(
        f"{directory.name}/{entry.name}"
        for entry in directory.iterdir()
        if entry.is_file() and not entry.name.startswith(".") and entry.name not in ours
    )
