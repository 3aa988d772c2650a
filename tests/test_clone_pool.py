"""Clones made ahead: each clone test gets a fresh database at once, the next one is
made while it runs, and whatever the pool holds at the end is dropped.

Inner sessions use the outer server by DSN (cheap), where every database the
session creates must be dropped again by its end.
"""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.conftest import database_names

CLONES = '''
import time
import pytest

def others(conn):
    """Clones of this session made after the test's own: the pool's, made ahead (an
    earlier test's clone, dropped in the background, may still be listed a moment)."""
    me = conn.execute("SELECT current_database()").fetchone()[0]
    prefix, number = me.rsplit("_t", 1)
    pattern = "^" + prefix + "_t[0-9]+$"  # clones, not the template
    rows = conn.execute("SELECT datname FROM pg_database WHERE datname ~ %s", (pattern,)).fetchall()
    return sorted(r[0] for r in rows if int(r[0].rsplit("_t", 1)[1]) > int(number))

@pytest.mark.dbarch(isolation="clone")
@pytest.mark.parametrize("i", range(6))
def test_fresh(i, dbarch_psycopg):
    conn = dbarch_psycopg
    assert conn.execute("SELECT to_regclass('scratch')").fetchone() == (None,)
    conn.execute("CREATE TABLE scratch (id int)")  # the next test must not see it
    conn.commit()
    deadline = time.monotonic() + 10
    ahead = others(conn)
    while not ahead and time.monotonic() < deadline:
        time.sleep(0.05)
        ahead = others(conn)
    print("AHEAD", i, len(ahead))
'''


def test_the_pool_makes_clones_ahead_and_leaves_nothing(
    external_pytester: pytest.Pytester, admin: psycopg.Connection
) -> None:
    before = database_names(admin)
    external_pytester.makepyfile(CLONES)

    result = external_pytester.runpytest("-s", "-p", "no:randomly")

    result.assert_outcomes(passed=6)
    ahead = [int(n) for _, n in re.findall(r"AHEAD (\d+) (\d+)", result.stdout.str())]
    assert len(ahead) == 6 and min(ahead) >= 1, ahead
    assert database_names(admin) == before, "the session left clones behind"


def test_no_pool_on_request(external_pytester: pytest.Pytester, admin: psycopg.Connection) -> None:
    before = database_names(admin)
    external_pytester.makeini("[pytest]\ndbarch_clone_pool = 0\n")
    external_pytester.makepyfile(CLONES.replace("time.monotonic() + 10", "time.monotonic() + 0.3"))

    result = external_pytester.runpytest("-s", "-p", "no:randomly", "-k", "fresh[0] or fresh[1]")

    result.assert_outcomes(passed=2)
    # Nothing made ahead (a dropped clone may linger a moment in the background).
    ahead = [int(n) for _, n in re.findall(r"AHEAD (\d+) (\d+)", result.stdout.str())]
    assert len(ahead) == 2 and ahead[0] == 0, result.stdout.lines
    assert database_names(admin) == before


OPENED_AHEAD = '''
import time
import pytest
from sqlalchemy import text

ENDS = []
BACKEND = "SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"

def check(started):
    if ENDS:  # the pool opened this connection while the previous test ran
        assert started < ENDS[-1], (started, ENDS[-1])
    time.sleep(1)

@pytest.mark.dbarch(isolation="clone")
@pytest.mark.parametrize("i", range(2))
def test_psycopg(i, dbarch_psycopg):
    check(dbarch_psycopg.execute(BACKEND).fetchone()[0])
    ENDS.append(dbarch_psycopg.execute("SELECT clock_timestamp()").fetchone()[0])

@pytest.mark.dbarch(isolation="clone")
@pytest.mark.parametrize("i", range(2))
def test_engine(i, dbarch_engine):
    with dbarch_engine.connect() as conn:
        check(conn.execute(text(BACKEND)).scalar())
        ENDS.append(conn.execute(text("SELECT clock_timestamp()")).scalar())

@pytest.mark.dbarch(isolation="clone")
def test_unused(dbarch_url):
    pass
'''


def test_clone_connections_are_opened_ahead(external_pytester: pytest.Pytester, admin: psycopg.Connection) -> None:
    """The first connection to each clone is opened in the pool's thread while the
    previous test runs (a new backend costs several ms), and dbarch_psycopg and
    dbarch_engine hand it to the test; one nobody takes is closed."""
    before = database_names(admin)
    external_pytester.makepyfile(OPENED_AHEAD)

    result = external_pytester.runpytest("-p", "no:randomly", "-p", "no:xdist")

    result.assert_outcomes(passed=5)
    assert database_names(admin) == before
    left = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname IS NOT NULL AND NOT datname = ANY(%s)",
        (sorted(before),),
    ).fetchone()
    assert left == (0,), "connections to the session's clones outlived it"


TERMINATED = '''
import time
import pytest

def clone_backends(conn):
    """Other backends on this session's clones (the pool's connections opened ahead)."""
    prefix = conn.execute("SELECT current_database()").fetchone()[0].rsplit("_t", 1)[0]
    return conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname ~ %s AND pid <> pg_backend_pid()",
        ("^" + prefix + "_t[0-9]+$",),
    ).fetchall()

@pytest.mark.dbarch(isolation="clone")
def test_a_terminates_the_connections_made_ahead(dbarch_psycopg):
    conn = dbarch_psycopg
    conn.autocommit = True  # pg_stat_activity is read once per transaction
    deadline = time.monotonic() + 10
    while not clone_backends(conn) and time.monotonic() < deadline:
        time.sleep(0.05)  # the pool's next clone and its connection
    assert clone_backends(conn)
    for (pid,) in clone_backends(conn):
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    while clone_backends(conn) and time.monotonic() < deadline:
        time.sleep(0.05)

@pytest.mark.dbarch(isolation="clone")
def test_b_gets_a_working_connection(dbarch_psycopg):
    assert dbarch_psycopg.execute("SELECT 1").fetchone() == (1,)
'''


def test_a_connection_made_ahead_whose_backend_died_is_not_handed_out(
    external_pytester: pytest.Pytester, admin: psycopg.Connection
) -> None:
    before = database_names(admin)
    external_pytester.makepyfile(TERMINATED)

    result = external_pytester.runpytest("-p", "no:randomly", "-p", "no:xdist")

    result.assert_outcomes(passed=2)
    assert database_names(admin) == before
