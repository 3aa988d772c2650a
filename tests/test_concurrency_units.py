"""The harness's pure pieces: retry rules, wait graphs, step parsing, timelines."""

from __future__ import annotations

import pytest

from pytest_dbarch.concurrency import Retry
from pytest_dbarch.concurrency.backends import Activity
from pytest_dbarch.concurrency.classify import LOST_UPDATE, _opposite_pair, classify
from pytest_dbarch.concurrency.connections import isolation_level
from pytest_dbarch.concurrency.outcome import Outcome
from pytest_dbarch.concurrency.retry import as_retry
from pytest_dbarch.concurrency.schedule import ScheduleError, _cycle, _reaches, parse_step
from pytest_dbarch.concurrency.timeline import Action, Timeline, compact_sql, show_params
from pytest_dbarch.concurrency.crew import _roots
from pytest_dbarch.errors import DbarchError


def test_retry_rules() -> None:
    assert as_retry(3) == Retry(3, ("40001", "40P01"))
    assert as_retry(None) is None
    assert Retry(2, on="40p01").on == ("40P01",)
    assert Retry(1).covers("40001") and not Retry(1).covers("23505") and not Retry(1).covers(None)
    for bad in (lambda: Retry(-1), lambda: Retry(True), lambda: Retry(1, on=("4000",)), lambda: as_retry(1.5)):
        with pytest.raises(DbarchError):
            bad()


def test_isolation_level_names() -> None:
    assert isolation_level("Repeatable_Read").name == "REPEATABLE_READ"
    assert isolation_level(" serializable ").name == "SERIALIZABLE"
    assert isolation_level(None) is None
    with pytest.raises(DbarchError, match="'snapshot' is not an isolation level"):
        isolation_level("snapshot")


def test_wait_graphs() -> None:
    assert _cycle({1: (2,), 2: (1,)})
    assert _cycle({1: (2,), 2: (3,), 3: (1,)})
    assert not _cycle({1: (2,), 2: (3,)})
    assert _reaches({1: (2,), 2: (3,)}, 3) and _reaches({1: (2,)}, 2)
    assert not _reaches({1: (2,)}, 1)


def test_wait_chain_roots() -> None:
    def waiting(pid: int, *on: int) -> Activity:
        return Activity(pid, "active", "Lock", "tuple", tuple(on), "", "", False)

    activity = {10: waiting(10, 11), 11: waiting(11, 99)}
    assert _roots((11,), activity) == [99]  # a worker queued behind another waits for its holder
    assert _roots((99,), activity) == [99]
    assert _roots((11, 12), {**activity, 12: waiting(12, 11)}) == [99]


def test_step_parsing() -> None:
    assert parse_step("A", ["A", "B"]) == ("A", "")
    assert parse_step("  B   Update   leads ", ["A", "B"]) == ("B", "update leads")
    with pytest.raises(ScheduleError, match="names no transaction"):
        parse_step("C select", ["A", "B"])
    with pytest.raises(ScheduleError, match="is not a transaction name"):
        parse_step("", ["A", "B"])


def test_timeline_overlap() -> None:
    timeline = Timeline()
    for actor, tx, start, end in [("w0", 1, 0.0, 1.0), ("w1", 1, 0.5, 1.5), ("w2", 1, 1.5, 2.0), ("w0", 2, 1.6, 1.7)]:
        timeline.add(Action(actor, tx, "statement", "SELECT 1", "", start, end))
    assert timeline.max_overlap() == 2  # w1 ends as w2 starts: touching is not overlapping
    assert timeline.transaction_at("w0", 1.65) == 2 and timeline.transaction_at("w2", 0.1) is None


def test_params_shown_short_and_secrets_hidden() -> None:
    assert show_params("UPDATE t SET n = %s", [1, "x" * 80]) == "1, " + repr("x" * 80)[:37] + "..."
    assert show_params("UPDATE users SET password_hash = %s WHERE id = %s", ["s3cret", 1]).startswith("***")
    assert show_params("SELECT 1", None) == ""
    assert show_params("SELECT %(a)s", {"a": 1}) == "a=1"


def test_locking_statements() -> None:
    def action(sql: str) -> Action:
        return Action("w0", 1, "statement", sql, "", 0.0)

    assert action("SELECT * FROM t WHERE id = 1 FOR UPDATE").locks_rows
    assert action("select * from t for no key update skip locked").locks_rows
    assert action("UPDATE t SET n = 1").locks_rows and action("insert into t values (1)").locks_rows
    assert not action("SELECT * FROM t").locks_rows
    assert not Action("w0", 1, "commit", "COMMIT", "", 0.0).locks_rows


def test_opposite_lock_orders() -> None:
    assert _opposite_pair({"A": ["x", "y"], "B": ["y", "x"]}) == "A and B take the same locks in opposite orders"
    assert _opposite_pair({"B": ["y", "x"], "A": ["x", "y"]}) == "A and B take the same locks in opposite orders"
    assert _opposite_pair({"A": ["x", "y"], "B": ["x", "y"]}) == ""
    assert _opposite_pair({"A": ["x"], "B": ["y"]}) == ""


def test_orm_sql_folded_for_reading() -> None:
    select = ("SELECT leads.id, leads.first_name, leads.last_name, leads.email, leads.company, leads.status "
              "FROM leads WHERE leads.id = %(pk_1)s::UUID FOR UPDATE")
    assert compact_sql(select) == "SELECT leads.id, ... (6 columns) FROM leads WHERE leads.id = %(pk_1)s::UUID FOR UPDATE"
    insert = ("INSERT INTO contacts (account_id, first_name, email) VALUES (%(account_id)s::UUID, "
              "%(first_name)s::VARCHAR, %(email)s::VARCHAR) RETURNING contacts.id")
    assert compact_sql(insert) == "INSERT INTO contacts (account_id, first_name, email) VALUES (...) RETURNING contacts.id"
    short = "SELECT n FROM counters WHERE id = 1"
    assert compact_sql(short) == short
    nested = "SELECT count(*) FROM (SELECT a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t FROM x) y"
    assert compact_sql(nested) == nested


def test_invariant_false_after_failures_is_not_called_a_lost_update() -> None:
    timeline = Timeline()
    timeline.add(Action("w0", 1, "statement", "UPDATE t SET n = n + 1", "", 0.0, 0.001))
    outcome = Outcome("run", ["w0", "w1"], {"w0": 1, "w1": 2}, timeline, calls=2, committed=1, workers=2, repeat=1,
                      invariant="SELECT n = 2 FROM t", invariant_held=False)
    [finding] = [f for f in classify(outcome) if f.rule == LOST_UPDATE]
    assert finding.title == ("The invariant SELECT n = 2 FROM t is false; 1 of 2 transactions did not commit "
                             "(see the other findings)")
    outcome.committed = 2
    [finding] = [f for f in classify(outcome) if f.rule == LOST_UPDATE]
    assert finding.title.startswith("Lost update: the invariant SELECT n = 2 FROM t is false after 2")
