"""What a run or a schedule left behind, before it is judged: failures, stuck workers,
steps, the timeline. ``classify`` turns an ``Outcome`` into Findings.
"""

from __future__ import annotations

import os
import sysconfig
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from pytest_dbarch.concurrency.backends import Activity
from pytest_dbarch.concurrency.timeline import Timeline, compact_sql

_LIBRARY_DIRS = tuple(
    str(Path(p).resolve()) + os.sep
    for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
)
_OWN_DIR = str(Path(__file__).resolve().parent.parent) + os.sep


def is_user_file(filename: str) -> bool:
    """Code of the project under test: not the standard library, an installed package
    or pytest-dbarch itself."""
    if not filename or filename.startswith("<"):  # generated code (<string>, SQLAlchemy's wrappers)
        return False
    path = str(Path(filename).resolve())
    return not path.startswith(_LIBRARY_DIRS) and not path.startswith(_OWN_DIR)


def relative(filename: str, lineno: int, rootdir: str) -> str:
    try:
        name = os.path.relpath(filename, rootdir)
    except ValueError:
        name = filename
    if name.startswith(".."):
        name = filename
    return f"{name}:{lineno}"


def user_where(tb: TracebackType | None, rootdir: str) -> str:
    """``file:line`` of the innermost frame of user code in a traceback."""
    where = ""
    for frame, lineno in traceback.walk_tb(tb):
        if is_user_file(frame.f_code.co_filename):
            where = relative(frame.f_code.co_filename, lineno, rootdir)
    return where


def function_where(fn: Any, rootdir: str) -> str:
    """``file:line`` where a user function is defined ('' for anything else)."""
    code = getattr(fn, "__code__", None) or getattr(getattr(fn, "__call__", None), "__code__", None)
    if code is None or not is_user_file(code.co_filename):
        return ""
    return relative(code.co_filename, code.co_firstlineno, rootdir)


def user_traceback(exc: BaseException, rootdir: str, limit_frames: int = 12) -> str:
    """The frames of user code and the error: the harness's, the driver's and the ORM's
    frames are noise here, and an ORM error's text carries the full SQL and parameters,
    which the timeline already shows (secrets hidden)."""
    summary = traceback.StackSummary.extract(traceback.walk_tb(exc.__traceback__))
    frames = [f for f in summary if is_user_file(f.filename)][-limit_frames:]
    for frame in frames:
        frame.filename = relative(frame.filename, 0, rootdir).rsplit(":", 1)[0]
    lines = ["Traceback (most recent call last, user code only):"]
    lines += [line.rstrip() for line in traceback.format_list(frames)]
    error = database_error(exc)
    kind = type(exc).__qualname__ if type(exc).__module__ == "builtins" else f"{type(exc).__module__}.{type(exc).__qualname__}"
    lines.append(f"{kind}: {_first_line(error or exc)}")
    detail = getattr(getattr(error, "diag", None), "message_detail", None)
    if detail:
        lines.append(f"DETAIL: {detail}")
    return "\n".join(lines)


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [""])[0]


@dataclass
class Failure:
    """A call (or scheduled transaction) that raised."""

    actor: str
    transaction: int
    call: int
    attempt: int
    error: BaseException
    traceback: str
    where: str
    at: float
    retried: bool = False
    #: The harness cancelled or ended it after a timeout: the Stuck entry tells the story.
    stopped: bool = False

    @property
    def database_error(self) -> BaseException | None:
        """The driver's error behind this one (SQLAlchemy wraps it as ``.orig``)."""
        return database_error(self.error)

    @property
    def sqlstate(self) -> str | None:
        error = self.database_error
        return getattr(error, "sqlstate", None) if error is not None else None

    @property
    def message(self) -> str:
        error = self.database_error or self.error
        return (str(error).splitlines() or [type(error).__name__])[0]

    @property
    def detail(self) -> str:
        diag = getattr(self.database_error, "diag", None)
        return (getattr(diag, "message_detail", None) or "") if diag is not None else ""

    @property
    def context(self) -> str:
        diag = getattr(self.database_error, "diag", None)
        return (getattr(diag, "context", None) or "") if diag is not None else ""


def database_error(error: BaseException) -> BaseException | None:
    """The first error with a SQLSTATE in ``error``, its ``.orig`` (SQLAlchemy) or its causes."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "sqlstate", None):
            return current
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException) and getattr(orig, "sqlstate", None):
            return orig
        current = current.__cause__ or current.__context__
    return None


@dataclass
class Stuck:
    """A worker still busy when the timeout ran out, and how it was stopped."""

    actor: str
    activity: Activity | None  # its backend when the timeout ran out
    python_stack: str
    blockers: list[str]  # whom it waited for directly, in words
    holders: list[str]  # the head of that wait chain: who really held the lock
    stopped_with: str  # pg_cancel_backend / pg_terminate_backend / '' (nothing to stop)
    thread_still_running: bool


@dataclass
class Step:
    """One step of a schedule and what it did."""

    number: int
    actor: str
    label: str
    action: str
    outcome: str
    effects: list[str] = field(default_factory=list)
    auto: bool = False
    params: str = ""

    def lines(self) -> list[str]:
        sql = compact_sql(self.action)
        sql = sql if len(sql) <= 200 else sql[:197] + "..."
        params = f"  [{self.params}]" if self.params else ""
        auto = " (auto)" if self.auto else ""
        lines = [f"{self.number:>3}. {self.actor:<4} {sql}{params}  -> {self.outcome}{auto}"]
        lines += [f"       {effect}" for effect in self.effects]
        return lines


@dataclass
class Outcome:
    """Everything a run or a schedule produced, for judging."""

    kind: str  # run / schedule
    actors: list[str]
    pids: dict[str, int]
    timeline: Timeline
    calls: int = 0
    committed: int = 0
    failures: list[Failure] = field(default_factory=list)
    stuck: list[Stuck] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    workers: int = 0
    repeat: int = 0
    isolation: str = "read committed"
    timeout: float = 30.0
    deadlock_timeout: str = ""
    deadlock_timeout_note: str = ""
    outside_writers: list[Activity] = field(default_factory=list)
    leftover_pids: list[int] = field(default_factory=list)
    relations: dict[int, str] = field(default_factory=dict)
    fn_where: str = ""
    invariant: str = ""
    invariant_held: bool | None = None

    def actor_of(self, pid: int) -> str | None:
        return next((actor for actor, p in self.pids.items() if p == pid), None)

    @property
    def retried(self) -> list[Failure]:
        return [f for f in self.failures if f.retried]

    @property
    def unretried(self) -> list[Failure]:
        return [f for f in self.failures if not f.retried and not f.stopped]
