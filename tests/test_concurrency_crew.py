"""The workers' clean-up when a run is interrupted: a connection a worker thread is
still inside is never closed under it (libpq freed under a running call crashes the
process); its backend is ended all the same."""

from __future__ import annotations

import threading

import psycopg

from pytest_dbarch.concurrency.connections import SessionSettings
from pytest_dbarch.concurrency.crew import Crew
from pytest_dbarch.concurrency.outcome import Outcome
from pytest_dbarch.postgres.info import ServerInfo


def test_a_busy_workers_connection_is_left_to_it_and_its_backend_ended(
    dbarch_server: ServerInfo, admin: psycopg.Connection
) -> None:
    crew = Crew(SessionSettings(dbarch_server.dsn()))
    crew.open(["w0", "w1"])
    release = threading.Event()
    busy = threading.Thread(target=release.wait, args=(30,), daemon=True)  # still "inside" w0
    busy.start()
    done = threading.Thread(target=lambda: None)
    done.start()
    done.join()
    crew.threads.update(w0=busy, w1=done)
    pids = dict(crew.pids)
    outcome = Outcome("run", ["w0", "w1"], pids, crew.timeline)
    try:
        crew.monitor.terminate(pids.values())  # as the interrupt path does first
        crew.close(outcome)
        assert not crew.conns["w0"].closed  # left to its thread
        assert crew.conns["w1"].closed
        running = admin.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", [list(pids.values())])
        assert running.fetchall() == []
    finally:
        release.set()
        busy.join()
        crew.conns["w0"].close()
