"""``run``: the same function in N threads at once, each on its own connection.

Each worker gets a connection of its own, then every round starts behind a
``threading.Barrier``: all workers call ``fn(conn, worker)`` together, so their
transactions overlap as much as the database lets them. A call commits when ``fn``
returns and rolls back when it raises; with ``retry`` a failure with a retryable
SQLSTATE calls ``fn`` again, as the application's retry loop would.

When the timeout runs out, the stuck workers' statements are cancelled
(``pg_cancel_backend``), their sessions ended if that is not enough
(``pg_terminate_backend``), and every connection is closed; the run then checks that
none of the workers' backends is left on the server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from pytest_dbarch.concurrency.connections import SessionSettings
from pytest_dbarch.concurrency.crew import Crew
from pytest_dbarch.concurrency.outcome import Failure, Outcome, user_traceback, user_where
from pytest_dbarch.concurrency.retry import Retry
from pytest_dbarch.origin import plugin_statements


def run_workers(
    fn: Callable[[Any, int], Any],
    *,
    workers: int,
    repeat: int,
    settings: SessionSettings,
    timeout: float,
    retry: Retry | None,
    rootdir: str,
    invariant: Callable[[Any], tuple[str, bool]] | None = None,
) -> Outcome:
    """Run ``fn`` ``repeat`` times in each of ``workers`` threads, then check ``invariant``
    on the monitor connection; see the module docstring."""
    actors = [f"w{i}" for i in range(workers)]
    crew = Crew(settings)
    outcome: Outcome | None = None
    stop = threading.Event()
    barrier = threading.Barrier(workers, action=crew.timeline.release)
    try:
        crew.open(actors)
        assert crew.monitor is not None
        outcome = Outcome("run", actors, crew.pids, crew.timeline, workers=workers, repeat=repeat,
                          timeout=timeout, deadlock_timeout=settings.effective_deadlock_timeout,
                          deadlock_timeout_note=settings.deadlock_timeout_note)
        outcome.outside_writers = crew.monitor.others_with_writes(crew.pids.values())
        results: list[Failure] = []
        committed = [0]
        lock = threading.Lock()

        def work(index: int, actor: str) -> None:
            conn = crew.conns[actor]
            with plugin_statements():  # the workers' statements are evidence, not the test's queries
                for call in range(repeat):
                    try:
                        barrier.wait()
                    except threading.BrokenBarrierError:
                        return
                    attempt = 0
                    while not stop.is_set():
                        crew.set_busy(actor, True)
                        try:
                            fn(conn, index)
                            conn.commit()
                            with lock:
                                committed[0] += 1
                            break
                        except BaseException as exc:  # noqa: BLE001 - every failure is evidence
                            failure = Failure(actor, conn.dbarch_recorder.transaction if conn.dbarch_recorder else 0,
                                              call, attempt, exc, user_traceback(exc, rootdir),
                                              user_where(exc.__traceback__, rootdir), crew.timeline.now())
                            conn.quiet_rollback()
                            if not isinstance(exc, Exception):
                                failure.stopped = True
                                with lock:
                                    results.append(failure)
                                return
                            again = retry is not None and retry.covers(failure.sqlstate) and attempt < retry.times
                            failure.retried = again and not stop.is_set()
                            failure.stopped = stop.is_set()
                            with lock:
                                results.append(failure)
                            if not failure.retried:
                                break
                            attempt += 1
                        finally:
                            crew.set_busy(actor, False)

        for index, actor in enumerate(actors):
            thread = threading.Thread(target=work, args=(index, actor), daemon=True,
                                      name=f"dbarch-concurrency-{actor}")
            crew.threads[actor] = thread
            thread.start()
        deadline = time.monotonic() + timeout
        for thread in crew.threads.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in crew.threads.values()):
            stop.set()
            barrier.abort()
            crew.stop(outcome, [a for a in actors if a in crew.busy])
        outcome.calls = workers * repeat
        outcome.committed = committed[0]
        outcome.failures = sorted(results, key=lambda f: f.at)
        crew.resolve_relations(outcome)
        crew.check(outcome, invariant)
        return outcome
    finally:
        if any(t.is_alive() for t in crew.threads.values()):  # an interrupt: stop everything
            stop.set()
            barrier.abort()
            if crew.monitor is not None:
                try:
                    crew.monitor.terminate(crew.pids.values())
                except Exception:
                    pass
            crew.join_all()  # a terminated backend ends its worker's call at once
        crew.close(outcome)
