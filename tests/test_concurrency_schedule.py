"""``dbarch_concurrency.schedule``: one exact interleaving, the same every time, no sleeps."""

from __future__ import annotations

import pytest

from tests.concurrency_support import project

SCHEDULES = '''
import pytest
from sqlalchemy import text


def read_then_write(conn):
    n = conn.execute("SELECT n FROM counters WHERE id = 1").fetchone()[0]
    conn.execute("UPDATE counters SET n = %s WHERE id = 1", [n + 1])


def lock_then_write(conn):
    n = conn.execute("SELECT n FROM counters WHERE id = 1 FOR UPDATE").fetchone()[0]
    conn.execute("UPDATE counters SET n = %s WHERE id = 1", [n + 1])


def reset(conn):
    conn.execute("UPDATE counters SET n = 0")
    conn.commit()


LOST_UPDATE = """\\
  1. A    SELECT n FROM counters WHERE id = 1  -> ok
  2. B    SELECT n FROM counters WHERE id = 1  -> ok
  3. A    UPDATE counters SET n = %s WHERE id = 1  [1]  -> ok
  4. B    UPDATE counters SET n = %s WHERE id = 1  [1]  -> blocked by A
  5. A    COMMIT  -> ok
       B's step 4 went on: ok
  6. B    COMMIT  -> ok"""


def test_lost_update_the_same_20_times(dbarch_concurrency, dbarch_psycopg):
    schedule = dbarch_concurrency.schedule(A=read_then_write, B=read_then_write)
    seen = set()
    with dbarch_concurrency.expect_race("lost-update") as race:
        for _ in range(20):
            reset(dbarch_psycopg)
            result = schedule.run("A select", "B select", "A update", "B update", "A commit", "B commit",
                                  invariant="SELECT n = 2 FROM counters WHERE id = 1")
            seen.add(str(result))
    assert seen == {LOST_UPDATE}
    assert len(race.findings) == 20


def test_a_row_lock_makes_b_wait(dbarch_concurrency):
    result = dbarch_concurrency.schedule(A=lock_then_write, B=lock_then_write).run(
        "A select", "B select", "A update", "A commit", "B update", "B commit",
        invariant="SELECT n = 2 FROM counters WHERE id = 1")
    assert str(result) == """\\
  1. A    SELECT n FROM counters WHERE id = 1 FOR UPDATE  -> ok
  2. B    SELECT n FROM counters WHERE id = 1 FOR UPDATE  -> blocked by A
  3. A    UPDATE counters SET n = %s WHERE id = 1  [1]  -> ok
  4. A    COMMIT  -> ok
       B's step 2 went on: ok
  5. B    UPDATE counters SET n = %s WHERE id = 1  [2]  -> ok
  6. B    COMMIT  -> ok"""


UP = "UPDATE counters SET n = n + 1 WHERE id = %s"
DEADLOCK = """\\
  1. A    UPDATE counters SET n = n + 1 WHERE id = %s  [1]  -> ok
  2. B    UPDATE counters SET n = n + 1 WHERE id = %s  [2]  -> ok
  3. A    UPDATE counters SET n = n + 1 WHERE id = %s  [2]  -> blocked by B
  4. B    UPDATE counters SET n = n + 1 WHERE id = %s  [1]  -> error 40P01 deadlock detected
       A's step 3 went on: ok
  5. A    COMMIT  -> ok (auto)"""


def test_deadlock_the_same_20_times(dbarch_concurrency):
    """The transaction whose step closes the cycle is the victim, every time."""
    schedule = dbarch_concurrency.schedule(A=[(UP, [1]), (UP, [2])], B=[(UP, [2]), (UP, [1])])
    with dbarch_concurrency.expect_race("deadlock") as race:
        seen = {str(schedule.run("A", "B", "A", "B")) for _ in range(20)}
    assert seen == {DEADLOCK}
    assert "B was chosen as the deadlock victim" in race.findings[0].evidence


def test_deadlock_failure_names_both_transactions(dbarch_concurrency):
    dbarch_concurrency.schedule(A=[(UP, [1]), (UP, [2])], B=[(UP, [2]), (UP, [1])]).run("A", "B", "A", "B")


def conversion(harness):
    """Lead conversion in ORM code: check the status, make the contact, mark the lead."""
    def convert(conn):
        with harness.session(conn) as session:
            status = session.execute(text("SELECT status FROM leads WHERE id = 1")).scalar_one()
            if status == "new":
                session.execute(text("INSERT INTO contacts (lead_id, email) VALUES (1, 'ada@example.com')"))
                session.execute(text("UPDATE leads SET status = 'converted' WHERE id = 1"))
            session.commit()
    return convert


CONVERT_TWICE = ("A select", "B select", "A insert", "A update", "A commit", "B insert", "B update", "B commit")


def test_orm_session_code_makes_two_contacts(dbarch_concurrency):
    with dbarch_concurrency.expect_race("lost-update"):
        convert = conversion(dbarch_concurrency)
        result = dbarch_concurrency.schedule(A=convert, B=convert).run(
            *CONVERT_TWICE, invariant="SELECT count(*) = 1 FROM contacts")
    assert [step.outcome for step in result.steps] == ["ok"] * 8


def test_serializable_refuses_the_second_conversion(dbarch_concurrency):
    with dbarch_concurrency.expect_race("serialization-failure") as race:
        convert = conversion(dbarch_concurrency)
        result = dbarch_concurrency.schedule(A=convert, B=convert, isolation_level="serializable").run(
            *CONVERT_TWICE[:-1], invariant="SELECT count(*) = 1 FROM contacts")
    assert result.steps[6].outcome.startswith("error 40001 could not serialize access")
    # the session's own rollback after the error is B's last action
    assert (result.steps[7].action, result.steps[7].auto) == ("ROLLBACK", True)
    assert result.invariant_held and "isolation serializable" in race.findings[0].evidence


STEPS_THAT_DO_NOT_FIT = [
    (("A", "C"), "schedule step 'C' names no transaction\\n  fix: the transactions are A, B"),
    (("A update",), "step 1 'A update': transaction A's next action is 'SELECT n FROM counters WHERE id = 1 FOR UPDATE'"),
    (("A", "A", "A", "A"), "step 4 'A': transaction A has already finished (it committed)"),
    (("A", "B", "B"), "step 3 'B': transaction B is still waiting for a lock held by A (since step 2)"),
    ((3,), "schedule step 3 is not a transaction name"),
]


def test_steps_that_do_not_fit(dbarch_concurrency, dbarch_psycopg):
    schedule = dbarch_concurrency.schedule(A=lock_then_write, B=lock_then_write)
    for steps, message in STEPS_THAT_DO_NOT_FIT:
        with pytest.raises(pytest.fail.Exception) as caught:
            schedule.run(*steps)
        assert message in str(caught.value) and "\\n  fix: " in str(caught.value), str(caught.value)
        # nothing is left running or holding a lock: the next schedule starts clean
        assert dbarch_psycopg.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name LIKE 'dbarch-concurrency%'").fetchone()[0] == 0
    for transactions, message in [
        ({"A": read_then_write}, "a schedule needs two or more transactions, got 1"),
        ({"A": read_then_write, "B": 42}, "transaction B=42 is neither a function nor a list of SQL statements"),
    ]:
        with pytest.raises(pytest.fail.Exception) as caught:
            dbarch_concurrency.schedule(**transactions)
        assert message in str(caught.value), str(caught.value)


def test_step_error_message(dbarch_concurrency):
    dbarch_concurrency.schedule(A=lock_then_write, B=lock_then_write).run("A", "B", "B")
'''


def test_schedules(external_pytester: pytest.Pytester) -> None:
    project(external_pytester)
    external_pytester.makepyfile(test_schedules=SCHEDULES)
    result = external_pytester.runpytest("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=6, failed=2)
    out = result.stdout
    out.fnmatch_lines([
        "*test_lost_update_the_same_20_times PASSED*",
        "*test_a_row_lock_makes_b_wait PASSED*",
        "*test_deadlock_the_same_20_times PASSED*",
        "*test_deadlock_failure_names_both_transactions FAILED*",
        "*test_orm_session_code_makes_two_contacts PASSED*",
        "*test_serializable_refuses_the_second_conversion PASSED*",
    ])
    out.fnmatch_lines([
        "*[[]concurrency.deadlock[]] Deadlock (40P01) between B and A: B's transaction was rolled back",
        "*Process * (B) waits for ShareLock on transaction *; blocked by process * (A).",
        "*A: UPDATE counters SET n = n + 1 WHERE id = %s [[]1[]]  ->  UPDATE counters SET n = n + 1 WHERE id = %s [[]2[]]",
        "*B: UPDATE counters SET n = n + 1 WHERE id = %s [[]2[]]  ->  UPDATE * [[]1[]] <- waited here",
        "*A and B take the same locks in opposite orders",
        "*steps:",
        "*4. B    UPDATE counters SET n = n + 1 WHERE id = %s  [[]1[]]  -> error 40P01 deadlock detected",
    ])
    out.fnmatch_lines([
        "*test_steps_that_do_not_fit PASSED*",
        "pytest-dbarch: step 3 'B': transaction B is still waiting for a lock held by A (since step 2)",
        "  the steps so far:",
        "      1. A    SELECT n FROM counters WHERE id = 1 FOR UPDATE  -> ok",
        "      2. B    SELECT n FROM counters WHERE id = 1 FOR UPDATE  -> blocked by A",
        "  fix: put a step of A that releases it (e.g. its commit) before this one",
    ])
    assert "Traceback" not in out.str()
