"""``dbarch_concurrency.run``: every finding, the barrier, retries, the fixture's rules."""

from __future__ import annotations

import pytest

from tests.concurrency_support import project

FINDINGS = '''
import threading

import psycopg
import pytest

from races import Once, convert_lead, locked_read_then_write, one_order, opposite_orders, read_then_write


def test_lost_update(dbarch_concurrency):
    dbarch_concurrency.run(read_then_write(Once(2)), workers=2,
                           invariant="SELECT n = 2 FROM counters WHERE id = 1")


def test_lock_before_write_holds(dbarch_concurrency):
    result = dbarch_concurrency.run(locked_read_then_write, workers=4, repeat=5,
                                    invariant="SELECT n = 20 FROM counters WHERE id = 1")
    assert result.committed == 20 and result.invariant_held and not result.problems


def test_deadlock(dbarch_concurrency):
    dbarch_concurrency.run(opposite_orders(Once(2)), workers=2)


def test_one_lock_order_never_deadlocks(dbarch_concurrency):
    result = dbarch_concurrency.run(one_order, workers=4, repeat=5,
                                    invariant="SELECT sum(n) = 40 FROM counters")
    assert result.deadlock_timeout == "100ms"


def test_deadlock_absorbed_by_retry_warns(dbarch_concurrency):
    result = dbarch_concurrency.run(opposite_orders(Once(2)), workers=2, retry=1,
                                    invariant="SELECT sum(n) = 4 FROM counters")
    [warning] = [f for f in result.findings if f.status.value == "warning"]
    assert warning.rule == "concurrency.deadlock" and "absorbed by retry" in warning.title
    assert [f.sqlstate for f in result.failures] == ["40P01"]


def test_serialization_failure(dbarch_concurrency):
    dbarch_concurrency.run(read_then_write(Once(2)), workers=2, isolation_level="serializable")


def test_serializable_with_retry_holds(dbarch_concurrency):
    result = dbarch_concurrency.run(read_then_write(Once(2)), workers=2, isolation_level="serializable",
                                    retry=3, invariant="SELECT n = 2 FROM counters WHERE id = 1")
    assert [f.sqlstate for f in result.failures] == ["40001"] and result.failures[0].retried
    assert "retried: 40001 x1" in result.findings[-1].evidence


def test_retries_run_out(dbarch_concurrency):
    def always_conflicts(conn, worker):
        raise psycopg.errors.SerializationFailure("could not serialize access (simulated)")

    dbarch_concurrency.run(always_conflicts, workers=1, retry=2)


def test_unique_constraint_catches_the_race(dbarch_concurrency):
    def remember(conn, worker):
        if not conn.execute("SELECT 1 FROM emails WHERE email = 'ada@example.com'").fetchone():
            both_checked.wait(worker)
            conn.execute("INSERT INTO emails VALUES ('ada@example.com')")

    both_checked = Once(2)
    dbarch_concurrency.run(remember, workers=2)


def test_lock_timeout(dbarch_concurrency):
    locked, released = threading.Event(), threading.Event()

    def hold_or_wait(conn, worker):
        if worker == 0:
            conn.execute("SELECT n FROM counters WHERE id = 1 FOR UPDATE")
            locked.set()
            released.wait(20)
            return
        locked.wait(20)
        conn.execute("SET LOCAL lock_timeout = '150ms'")
        try:
            conn.execute("UPDATE counters SET n = 7 WHERE id = 1")
        finally:
            released.set()

    dbarch_concurrency.run(hold_or_wait, workers=2)


def test_worker_error(dbarch_concurrency):
    def check_status(conn, worker):
        status = conn.execute("SELECT status FROM leads WHERE id = 1").fetchone()[0]
        if worker == 1:
            raise ValueError(f"unexpected status {status}")

    dbarch_concurrency.run(check_status, workers=2)


def test_lead_converted_twice(dbarch_concurrency):
    dbarch_concurrency.run(convert_lead(Once(2)), workers=2,
                           invariant="SELECT count(*) = 1 FROM contacts WHERE lead_id = 1")
'''


def test_each_finding(external_pytester: pytest.Pytester) -> None:
    project(external_pytester)
    external_pytester.makepyfile(test_findings=FINDINGS)
    result = external_pytester.runpytest("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=4, failed=8)
    out = result.stdout
    out.fnmatch_lines([
        "*test_lost_update FAILED*",
        "*test_lock_before_write_holds PASSED*",
        "*test_deadlock FAILED*",
        "*test_one_lock_order_never_deadlocks PASSED*",
        "*test_deadlock_absorbed_by_retry_warns PASSED*",
        "*test_serialization_failure FAILED*",
        "*test_serializable_with_retry_holds PASSED*",
        "*test_retries_run_out FAILED*",
        "*test_unique_constraint_catches_the_race FAILED*",
        "*test_lock_timeout FAILED*",
        "*test_worker_error FAILED*",
        "*test_lead_converted_twice FAILED*",
    ])
    text = out.str()
    lost = _section(text, "test_lost_update")
    assert "pytest-dbarch: concurrency: 1 problem (2 workers x 1 call)" in lost
    assert "[concurrency.lost-update] Lost update: the invariant SELECT n = 2 FROM counters WHERE id = 1 is false" in lost
    assert "committed transactions that were open at the same time: w0#1 & w1#1" in lost
    # the interleaving: both reads come before both writes, each write carries the value read
    lines = [line for line in lost.splitlines() if " ms  w" in line]
    verbs = [line.split("  w", 1)[1].split()[1] for line in lines]
    assert verbs[:2] == ["SELECT", "SELECT"] and verbs.count("UPDATE") == 2, lines
    assert sum("UPDATE counters SET n = %s WHERE id = 1  [1]" in line for line in lines) == 2
    assert "at: races.py:" in lost

    deadlock = _section(text, "test_deadlock")
    assert "[concurrency.deadlock] Deadlock (40P01) between w" in deadlock
    assert "deadlock victim and rolled back: deadlock detected" in deadlock
    assert "waits for ShareLock on transaction" in deadlock and "(w0)" in deadlock and "(w1)" in deadlock
    assert 'in relation "counters"' in deadlock
    assert "w0 and w1 take the same locks in opposite orders" in deadlock
    assert "<- waited here" in deadlock
    assert "fix: take row locks in one order" in deadlock

    serial = _section(text, "test_serialization_failure")
    assert "[concurrency.serialization-failure] Serialization failure (40001) not retried" in serial
    assert "could not serialize access due to concurrent update" in serial
    assert "isolation serializable" in serial
    assert "fix: retry the whole transaction on SQLSTATE 40001" in serial

    ran_out = _section(text, "test_retries_run_out")
    assert "Serialization failure (40001) still failing after 2 retries: w0's transaction was rolled back" in ran_out

    unique = _section(text, "test_unique_constraint_catches_the_race")
    assert "[concurrency.worker-error] w" in unique and "raised UniqueViolation [23505]" in unique
    assert "fix: a unique constraint refused a duplicate" in unique
    assert "INSERT INTO emails VALUES ('ada@example.com')" in unique

    lock = _section(text, "test_lock_timeout")
    assert "[concurrency.lock-timeout] Lock not available (55P03)" in lock
    assert "canceling statement due to lock timeout" in lock

    error = _section(text, "test_worker_error")
    assert "[concurrency.worker-error] w1 raised ValueError: unexpected status new" in error
    assert "traceback:" in error and 'raise ValueError(f"unexpected status {status}")' in error
    assert "test_findings.py:" in error and "pytest_dbarch" not in error.split("traceback:")[1].split("statements")[0]

    twice = _section(text, "test_lead_converted_twice")
    assert "SELECT count(*) = 1 FROM contacts WHERE lead_id = 1 is false" in twice
    assert twice.count("INSERT INTO contacts") == 2

    # passed and warning findings reach the summary
    out.fnmatch_lines([
        "*ok [[]concurrency.run[]] 4 workers x 5 calls: invariant held (SELECT n = 20 FROM counters WHERE id = 1); "
        "no deadlock, serialization failure, lock timeout or worker error*",
        "*WARN [[]concurrency.deadlock[]] 1 deadlock (40P01) absorbed by retry*",
    ])


def _section(text: str, test: str) -> str:
    """The failure section of one test in pytest's output."""
    start = text.index(f"_ {test} _")
    end = min([i for i in (text.find("\n___", start + 1), text.find("\n===", start + 1)) if i != -1])
    return text[start:end]


PROOF = '''
import threading

import pytest

from races import read_then_write, Once

ALL_OPEN = threading.Barrier(4, timeout=20)
SEEN = []


def overlap(conn, worker):
    """Returns only if all four transactions are open at once: a harness that started the
    workers one after the other would break this barrier."""
    conn.execute("SELECT txid_current()")
    ALL_OPEN.wait()
    SEEN.append(conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_xid IS NOT NULL AND application_name LIKE 'dbarch-concurrency w%'").fetchone()[0])
    ALL_OPEN.wait()


def test_barrier_releases_all_workers_together(dbarch_concurrency):
    result = dbarch_concurrency.run(overlap, workers=4, repeat=3)
    assert SEEN == [4] * 12
    assert result.max_overlap == 4 and result.committed == 12


def test_invariant_as_a_function(dbarch_concurrency):
    def one_row_each(conn):
        return conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 3

    def add(conn, worker):
        conn.execute("INSERT INTO contacts (lead_id, email) VALUES (1, %s)", [f"w{worker}@example.com"])

    result = dbarch_concurrency.run(add, workers=3, invariant=one_row_each)
    assert result.invariant_held is True


def test_expected_race_is_recorded_not_failed(dbarch_concurrency):
    with dbarch_concurrency.expect_race("lost-update") as race:
        dbarch_concurrency.run(read_then_write(Once(2)), workers=2,
                               invariant="SELECT n = 2 FROM counters WHERE id = 1")
    assert [f.rule for f in race.findings] == ["concurrency.lost-update"]


def test_expected_race_that_does_not_happen_fails(dbarch_concurrency):
    with dbarch_concurrency.expect_race("deadlock"):
        dbarch_concurrency.run(lambda conn, worker: None, workers=2)


def test_switched_to_clone(request, dbarch_concurrency, dbarch_psycopg):
    assert request.node.get_closest_marker("dbarch").kwargs == {"isolation": "clone"}
    dbarch_psycopg.execute("UPDATE counters SET n = 5 WHERE id = 1")
    dbarch_psycopg.commit()  # a real commit: the workers see it
    result = dbarch_concurrency.run(
        lambda conn, worker: conn.execute("UPDATE counters SET n = n + 1 WHERE id = 1"), workers=2,
        invariant="SELECT n = 7 FROM counters WHERE id = 1")
    assert result.invariant_held


@pytest.mark.max_queries(1)
@pytest.mark.nplusone(mode="error")
def test_workers_statements_are_not_the_tests_queries(dbarch_concurrency, dbarch_queries):
    """Four workers running the same lookups would be an N+1 and blow the budget if the
    test's query log counted them; the harness keeps them as its own evidence."""
    def lookups(conn, worker):
        for row_id in (1, 2, 1):
            conn.execute("SELECT n FROM counters WHERE id = %s", [row_id + worker])

    result = dbarch_concurrency.run(lookups, workers=4, repeat=2)
    assert len([a for a in result.actions if a.kind == "statement"]) == 24
    assert dbarch_queries.count == 0


@pytest.mark.dbarch(isolation="transaction")
def test_transaction_isolation_refused(dbarch_concurrency):
    pass


BAD_ARGUMENTS = [
    ({"repeat": "3"}, "repeat='3' is not a whole number >= 1"),
    ({"timeout": 0}, "timeout=0 is not a number of seconds > 0"),
    ({"isolation_level": "snapshot"}, "isolation_level='snapshot' is not an isolation level"),
    ({"retry": "yes"}, "retry='yes' is neither a number nor a Retry"),
    ({"retry": -1}, "retry times=-1 is not a whole number >= 0"),
    ({"invariant": 42}, "invariant=42 is neither SQL nor a function"),
    ({"invariant": "SELECT n FROM counters"}, "returned [(0,), (0,)], not one boolean"),
    ({"invariant": "SELECT NULL::boolean"}, "returned [(None,)], not one boolean"),
    ({"invariant": "SELECT nope FROM counters"}, 'column "nope" does not exist'),
    ({"invariant": lambda conn: 1}, "returned 1, not True or False"),
]


def test_bad_arguments(dbarch_concurrency):
    for kwargs, message in BAD_ARGUMENTS:
        with pytest.raises(pytest.fail.Exception) as caught:
            dbarch_concurrency.run(lambda conn, worker: None, workers=2, **kwargs)
        assert message in str(caught.value) and "\\n  fix: " in str(caught.value), (kwargs, str(caught.value))


def test_bad_argument_message(dbarch_concurrency):
    dbarch_concurrency.run(lambda conn, worker: None, workers=0)


def test_bad_expectation(dbarch_concurrency):
    with dbarch_concurrency.expect_race("phantom-read"):
        pass
'''


def test_barrier_expectations_and_fixture_rules(external_pytester: pytest.Pytester) -> None:
    project(external_pytester)
    external_pytester.makepyfile(test_proof=PROOF)
    result = external_pytester.runpytest("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=6, failed=3, errors=1)
    out = result.stdout
    out.fnmatch_lines([
        "*test_barrier_releases_all_workers_together PASSED*",
        "*test_invariant_as_a_function PASSED*",
        "*test_expected_race_is_recorded_not_failed PASSED*",
        "*test_expected_race_that_does_not_happen_fails FAILED*",
        "*test_switched_to_clone PASSED*",
        "*test_workers_statements_are_not_the_tests_queries PASSED*",
        "*test_transaction_isolation_refused ERROR*",
    ])
    out.fnmatch_lines(["*pytest-dbarch: expected a race (concurrency.deadlock) but none happened*"])
    out.fnmatch_lines([
        "*dbarch_concurrency needs isolation='clone'*but the test asks for isolation='transaction': "
        "remove that @pytest.mark.dbarch or set isolation='clone'",
    ])
    out.fnmatch_lines(["*test_bad_arguments PASSED*"])
    for message in ("workers=0 is not a whole number >= 1", "expect_race('phantom-read'): no such race finding"):
        out.fnmatch_lines([f"pytest-dbarch: {message}", "  fix: *"])
    assert "Traceback" not in out.str()
    out.fnmatch_lines(["*ok [[]concurrency.lost-update[]] Race reproduced as expected: Lost update*"])
