"""Round trips of one history in several processes at once (``dbarch_migrations_workers``).

A round trip spends half its time in Python (Alembic, the lint, comparisons) and half
waiting for the server, so one walk keeps about one core busy. This process walks the
history as before and also starts ``count - 1`` more, each on a database of its own on
the same server; they share the history part by part (see ``share.py``). This process
goes on to the head (drift and the head snapshot stay here) and merges what the others
found into its own outcome: the same findings as one process, in the same order.

The other processes (``checking_process.py``) get everything they need on standard
input (the DSN included, so it never shows in a process list), write their outcome to a
file in a private temporary directory, and drop their own databases on every exit path
(a SIGTERM from here included). A process that fails leaves its parts unchecked: they are then checked
here, after the walk, and the run says so. Projects that register observers of their
own (``suite.OBSERVERS``) run in one process: those cannot cross a process boundary.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Finding
from pytest_dbarch.migrations.roundtrip import Outcome
from pytest_dbarch.migrations.runners import Revision
from pytest_dbarch.migrations.share import Share

MIN_REVISIONS = 24  # below this, a second process costs more than it saves (its start-up is ~1 s)
MAX_PROCESSES = 4
COMMAND = [sys.executable, "-m", "pytest_dbarch.migrations.checking_process"]


def auto_count() -> int:
    """One process per core, at most four; one under pytest-xdist, whose workers already
    keep every core busy."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_PROCESSES))


def count_for(setting: int | None, checked: int) -> int:
    """How many processes check a history of ``checked`` revisions: the setting, or
    (None: auto) one per core when the history is long enough to gain from it."""
    try:
        import fcntl  # noqa: F401  (the shared counter's lock)
    except ImportError:  # not a POSIX system
        return 1
    if setting is not None:
        return max(1, min(setting, checked))
    if checked < MIN_REVISIONS:
        return 1
    return auto_count()


def parse_setting(value: Any, where: str) -> int | None:
    """``auto`` (None) or a positive number of processes."""
    text = str(value).strip().lower()
    if text in ("", "auto"):
        return None
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise DbarchError(
        f"{where} = {value!r} is not a number of processes",
        f"set {where} to 'auto' (one process per core for long histories) or a whole number such as 1 or 2",
    )


@dataclass
class Team:
    """The other processes of one run, and the share of this one."""

    share: Share
    revisions: list[Revision]
    work: tempfile.TemporaryDirectory[str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return 1 + len(self.processes)

    def join(self, own: Outcome, check_here: Callable[[Share], Outcome]) -> Outcome:
        """Wait for the others and merge their outcomes into ``own``; the parts a failed
        process left are checked here with ``check_here``."""
        outcomes = [own]
        done = set(self.share.done)
        for index, process in enumerate(self.processes):
            process.wait()
            result = Path(self.work.name) / f"outcome{index}.json"
            if process.returncode == 0 and result.exists():
                data = json.loads(result.read_text())
                outcomes.append(outcome_from_json(data))
                done.update(data["done"])
            else:
                self.notes.append(f"checking process {index + 1} failed ({self._failure(index, process)})")
        missing = [part for part in range(self.share.parts) if part not in done]
        if missing:
            if self.notes:
                self.notes[-1] += f"; the {len(missing)} parts of the history left unchecked were checked in the main process"
            outcomes.append(check_here(Share(self.share.starts, fixed=missing)))
        return merge(outcomes, self.revisions)

    def _failure(self, index: int, process: subprocess.Popen[bytes]) -> str:
        log = Path(self.work.name) / f"output{index}.txt"
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        return f"exit {process.returncode}" + (f": {tail[0]}" if tail else "")

    def stop(self) -> None:
        """End the other processes (this run failed or was interrupted): each drops its
        own databases on SIGTERM; one that does not end within 30 s is killed."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        self.stop()
        self.work.cleanup()


def start(
    count: int, source: str, rootdir: str, dsn: str, options: dict[str, Any], revisions: list[Revision]
) -> Team | None:
    """Start ``count - 1`` more processes on the history (``options``: suite.Options as
    JSON); None for one process."""
    starts = Share.cut(len(revisions), count)
    count = min(count, len(starts))
    if count <= 1:
        return None
    work = tempfile.TemporaryDirectory(prefix="dbarch-workers-")  # 0700: the spec holds the DSN
    counter = Path(work.name) / "counter"
    counter.write_text(str(count))  # parts 0 .. count - 1 are every process's first
    team = Team(Share(starts, counter=counter, to_head=True), revisions, work)
    spec = {
        "source": source,
        "rootdir": str(rootdir),
        "sys_path": sys.path,
        "dsn": dsn,
        "options": options,
        "starts": starts,
        "counter": str(counter),
    }
    # This interpreter's path, so that the other processes import what this one does
    # (pytest_dbarch itself and the project's modules, wherever they come from).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(entry for entry in sys.path if entry)}
    try:
        for index in range(count - 1):
            with open(Path(work.name) / f"output{index}.txt", "wb") as output:  # the child keeps its own handle
                process = subprocess.Popen(
                    COMMAND, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT, cwd=os.getcwd(), env=env
                )
            team.processes.append(process)
            assert process.stdin is not None
            outcome = str(Path(work.name) / f"outcome{index}.json")
            process.stdin.write(json.dumps({**spec, "first": index + 1, "outcome": outcome}).encode())
            process.stdin.close()
    except BaseException:
        team.close()
        raise
    return team


# --- what crosses the process boundary ---


def outcome_to_json(outcome: Outcome, share: Share) -> dict[str, Any]:
    return {
        "findings": [[check, rev, [f.to_json() for f in found]] for (check, rev), found in outcome.findings.items()],
        "not_checked": outcome.not_checked,
        "skipped": [[check, rev, why] for (check, rev), why in outcome.skipped.items()],
        "minor": sorted(outcome.minor),
        "schema_changed": outcome.schema_changed,
        "steps": outcome.steps,
        "rebuilds": outcome.rebuilds,
        "done": share.done,
    }


def outcome_from_json(data: dict[str, Any]) -> Outcome:
    return Outcome(
        findings={(check, rev): [Finding.from_json(f) for f in found] for check, rev, found in data["findings"]},
        not_checked=dict(data["not_checked"]),
        skipped={(check, rev): why for check, rev, why in data["skipped"]},
        minor=set(data["minor"]),
        schema_changed=dict(data["schema_changed"]),
        steps=data["steps"],
        rebuilds=data["rebuilds"],
    )


def merge(outcomes: list[Outcome], revisions: list[Revision]) -> Outcome:
    """One outcome, its findings in the order one process would have found them (by
    revision, base first); the head (snapshot, metadata) from the first."""
    position = {rev.id: index for index, rev in enumerate(revisions)}
    merged = Outcome(head_snapshot=outcomes[0].head_snapshot, metadata=outcomes[0].metadata)
    keys: list[tuple[int, int, tuple[str, str], list[Finding]]] = []
    for outcome in outcomes:
        for order, (key, found) in enumerate(outcome.findings.items()):
            keys.append((position.get(key[1], -1), order, key, found))
        merged.not_checked.update(outcome.not_checked)
        merged.skipped.update(outcome.skipped)
        merged.minor |= outcome.minor
        merged.schema_changed.update(outcome.schema_changed)
        merged.steps += outcome.steps
        merged.rebuilds += outcome.rebuilds
    for _, _, key, found in sorted(keys, key=lambda item: (item[0], item[1])):
        merged.findings.setdefault(key, []).extend(found)
    merged.not_checked = {rev.id: merged.not_checked[rev.id] for rev in revisions if rev.id in merged.not_checked}
    return merged
