"""An inner project for the concurrency tests: counters, leads and contacts.

``RACES`` holds the worker functions the inner tests share. The races are made certain
with ``threading`` barriers *inside* the worker functions (both workers read before
either writes), so every run of a test reproduces them; the harness itself does not
rely on that.
"""

from __future__ import annotations

import pytest

SCHEMA = """
CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL);
INSERT INTO counters VALUES (1, 0), (2, 0);
CREATE TABLE leads (id int PRIMARY KEY, email text NOT NULL, status text NOT NULL DEFAULT 'new');
INSERT INTO leads VALUES (1, 'ada@example.com');
CREATE TABLE contacts (id serial PRIMARY KEY, lead_id int NOT NULL, email text NOT NULL);
CREATE TABLE emails (email text PRIMARY KEY);
"""

RACES = '''
import threading


class Once:
    """A barrier each worker passes on its first call only: first attempts race, retries run alone."""

    def __init__(self, parties):
        self.barrier = threading.Barrier(parties, timeout=20)
        self.passed = set()

    def wait(self, worker):
        if worker not in self.passed:
            self.passed.add(worker)
            self.barrier.wait()


def read_then_write(both_read):
    def fn(conn, worker):
        n = conn.execute("SELECT n FROM counters WHERE id = 1").fetchone()[0]
        both_read.wait(worker)
        conn.execute("UPDATE counters SET n = %s WHERE id = 1", [n + 1])
    return fn


def locked_read_then_write(conn, worker):
    n = conn.execute("SELECT n FROM counters WHERE id = 1 FOR UPDATE").fetchone()[0]
    conn.execute("UPDATE counters SET n = %s WHERE id = 1", [n + 1])


def opposite_orders(both_locked):
    def fn(conn, worker):
        first, second = (1, 2) if worker % 2 == 0 else (2, 1)
        conn.execute("UPDATE counters SET n = n + 1 WHERE id = %s", [first])
        both_locked.wait(worker)
        conn.execute("UPDATE counters SET n = n + 1 WHERE id = %s", [second])
    return fn


def one_order(conn, worker):
    ids = [1, 2] if worker % 2 == 0 else [2, 1]
    conn.execute("SELECT id FROM counters WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [ids])
    for row_id in ids:
        conn.execute("UPDATE counters SET n = n + 1 WHERE id = %s", [row_id])


def convert_lead(both_read):
    """Check-then-act without a lock: two workers both see 'new' and both insert a contact."""
    def fn(conn, worker):
        status, email = conn.execute("SELECT status, email FROM leads WHERE id = 1").fetchone()
        both_read.wait(worker)
        if status == "new":
            conn.execute("INSERT INTO contacts (lead_id, email) VALUES (1, %s)", [email])
            conn.execute("UPDATE leads SET status = 'converted' WHERE id = 1")
    return fn
'''


def project(pytester: pytest.Pytester, ini: str = "") -> None:
    pytester.makefile(".sql", schema=SCHEMA)
    pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\ndbarch_report_dir = off\n" + ini)
    pytester.makepyfile(races=RACES)
