"""The workers of one run or schedule: their connections, threads and monitor, and the
clean-up that must happen on every exit path.

A stuck worker is stopped in two moves: its statement is cancelled
(``pg_cancel_backend``), then, if its thread still has not finished, its session is ended
(``pg_terminate_backend``). Closing waits until the server has ended every backend, and
then checks ``pg_stat_activity``: nothing the crew opened is left on the server.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pytest_dbarch.concurrency.backends import Activity, Monitor, close_and_wait
from pytest_dbarch.concurrency.connections import SessionSettings, WorkerConnection, connect, probe
from pytest_dbarch.concurrency.outcome import Outcome, Stuck
from pytest_dbarch.concurrency.retry import DEADLOCK
from pytest_dbarch.concurrency.timeline import Timeline
from pytest_dbarch.origin import plugin_statements

#: How long a cancelled (then a terminated) worker gets to wind down.
GRACE_SECONDS = 2.0
_BACKEND_EXIT_SECONDS = 5.0


@dataclass
class Crew:
    """The workers of one run or schedule: connections, threads and the monitor, with
    the clean-up that must happen on every exit path."""

    settings: SessionSettings
    timeline: Timeline = field(default_factory=Timeline)
    monitor: Monitor | None = None
    conns: dict[str, WorkerConnection] = field(default_factory=dict)
    threads: dict[str, threading.Thread] = field(default_factory=dict)
    busy: set[str] = field(default_factory=set)  # actors inside fn (not waiting to start)
    pids: dict[str, int] = field(default_factory=dict)  # kept: a closed connection no longer tells
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, actors: Sequence[str], gate: Any = None) -> None:
        """The monitor first (it checks the session settings), then every worker's
        connection at once: each waits mostly for the server to start a backend."""
        self.monitor = Monitor(self.settings.dsn)
        with plugin_statements():
            probe(self.monitor.conn, self.settings)
        with ThreadPoolExecutor(len(actors), thread_name_prefix="dbarch-connect") as pool:
            futures = {actor: pool.submit(connect, self.settings, actor, self.timeline, gate) for actor in actors}
        errors = []
        for actor, future in futures.items():
            try:
                self.conns[actor] = future.result()
                self.pids[actor] = self.conns[actor].info.backend_pid
            except BaseException as exc:  # closed by close(), which the caller always runs
                errors.append(exc)
        if errors:
            raise errors[0]

    def set_busy(self, actor: str, busy: bool) -> None:
        with self._lock:
            (self.busy.add if busy else self.busy.discard)(actor)

    def stop(self, outcome: Outcome, actors: Sequence[str]) -> None:
        """Cancel, then terminate, the backends of ``actors``; record how each was stopped."""
        assert self.monitor is not None
        pids = {actor: self.pids[actor] for actor in actors}
        activity = self.monitor.activity(pids.values())
        frames = sys._current_frames()
        names = {pid: actor for actor, pid in self.pids.items()}
        stuck: dict[str, Stuck] = {}
        for actor, pid in pids.items():
            act = activity.get(pid)
            thread = self.threads.get(actor)
            frame = frames.get(thread.ident) if thread is not None and thread.ident is not None else None
            stack = "".join(traceback.format_stack(frame)) if frame is not None else ""
            direct = act.blocked_by if act else ()
            stuck[actor] = Stuck(actor, act, stack, self._describe(direct, names),
                                 self._describe(_roots(direct, activity), names), "", True)
        running = [a for a, s in stuck.items() if s.activity is not None and s.activity.state == "active"]
        if running:
            self.monitor.cancel(pids[a] for a in running)
            for actor in running:
                stuck[actor].stopped_with = "pg_cancel_backend"
            self._join(running)
        left = [a for a in actors if self._alive(a)]
        if left:
            self.monitor.terminate(pids[a] for a in left)
            for actor in left:
                stuck[actor].stopped_with = "pg_terminate_backend"
            self._join(left)
        for actor, entry in stuck.items():
            entry.thread_still_running = self._alive(actor)
        outcome.stuck.extend(stuck.values())

    def _describe(self, pids: Sequence[int], names: dict[int, str]) -> list[str]:
        """Backends in words: a worker by its name, any other session by what it is doing."""
        assert self.monitor is not None
        outside = [pid for pid in pids if pid not in names]
        described = self.monitor.activity(outside) if outside else {}
        words = []
        for pid in pids:
            if pid in names:
                words.append(f"{names[pid]} (pid {pid})")
            elif pid in described:
                words.append(described[pid].describe())
            else:
                words.append(f"pid {pid} (already gone)")
        return words

    def _alive(self, actor: str) -> bool:
        thread = self.threads.get(actor)
        return thread is not None and thread.is_alive()

    def _join(self, actors: Sequence[str]) -> None:
        deadline = time.monotonic() + GRACE_SECONDS
        for actor in actors:
            thread = self.threads.get(actor)
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))

    def join_all(self) -> None:
        """Give every worker thread the grace period to finish."""
        self._join(list(self.threads))

    def close(self, outcome: Outcome | None) -> None:
        """Close every connection; record any worker backend still on the server.

        A connection whose worker thread is still inside it is left to that (daemon)
        thread: closing it under a running libpq call crashes the process (seen as a
        segfault when Ctrl-C hit a run); its backend is terminated below all the same.
        """
        pids = list(self.pids.values())
        close_and_wait(*(conn for actor, conn in self.conns.items() if not self._alive(actor)))
        if self.monitor is None:
            return
        try:
            left = self._wait_backends_gone(pids)
            if left:  # a backend that outlived its client: end it, and say so
                self.monitor.terminate(left)
            if outcome is not None:
                outcome.leftover_pids = left
        finally:
            self.monitor.close()

    def _wait_backends_gone(self, pids: list[int]) -> list[int]:
        assert self.monitor is not None
        deadline = time.monotonic() + _BACKEND_EXIT_SECONDS
        left = self.monitor.alive(pids)
        while left and time.monotonic() < deadline:
            time.sleep(0.005)  # a closed connection's backend exits on its own, a moment later
            left = self.monitor.alive(left)
        return left

    def check(self, outcome: Outcome, invariant: Callable[[Any], tuple[str, bool]] | None) -> None:
        """The invariant, on the monitor's connection, after every worker finished."""
        if invariant is not None:
            assert self.monitor is not None
            outcome.invariant, outcome.invariant_held = invariant(self.monitor.conn)

    def resolve_relations(self, outcome: Outcome) -> None:
        """Name the relations a deadlock's DETAIL mentions by OID."""
        assert self.monitor is not None
        for failure in outcome.failures:
            if failure.sqlstate == DEADLOCK:
                for oid in re.findall(r"relation (\d+)", failure.detail):
                    name = self.monitor.relation_name(int(oid))
                    if name:
                        outcome.relations[int(oid)] = name


def _roots(pids: Sequence[int], activity: dict[int, Activity]) -> list[int]:
    """The backends at the head of the wait chains starting at ``pids``: a worker queued
    behind another worker really waits for whatever that one waits for."""
    roots: list[int] = []
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop(0)
        if pid in seen:
            continue
        seen.add(pid)
        waits = activity[pid].blocked_by if pid in activity else ()
        if waits:
            todo.extend(waits)
        elif pid not in roots:
            roots.append(pid)
    return roots
