"""Plans, EXPLAIN and latency verdicts, on the outer session's own database.

These use ``dbarch_budget`` and ``dbarch_psycopg`` directly (the plugin runs in this
session too): every plan below comes from a real EXPLAIN of the test's transaction.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pytest_dbarch.performance import BudgetExceeded, Plan
from pytest_dbarch.performance.budget import Budget, query_budget
from pytest_dbarch.performance.explain import single_statement
from pytest_dbarch.performance.latency import FAILED, NOISY, PASSED, Latency, judge, percentile

SCHEMA = """
CREATE TABLE pf_accounts (id int PRIMARY KEY, region int NOT NULL, name text NOT NULL);
CREATE INDEX pf_accounts_name ON pf_accounts (name);
INSERT INTO pf_accounts SELECT i, i % 10, 'account ' || i FROM generate_series(1, 20000) AS i;
ANALYZE pf_accounts;
CREATE TABLE pf_counters (id int PRIMARY KEY, n int NOT NULL);
INSERT INTO pf_counters VALUES (1, 0);
"""


@pytest.fixture
def accounts(dbarch_psycopg: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    dbarch_psycopg.execute(SCHEMA)
    return dbarch_psycopg


def test_index_lookup_facts_and_blocks_that_do_not_move(accounts: Any, dbarch_budget: Any) -> None:
    plans = [dbarch_budget.explain("SELECT id FROM pf_accounts WHERE name = %s", ("account 7",)) for _ in range(5)]
    plan = plans[0]
    assert {p.buffers for p in plans} == {plan.buffers}  # the same figure every repeat
    assert 2 <= plan.buffers <= 6
    assert plan.indexes == ("pf_accounts_name",)
    assert plan.seq_scans == ()
    assert (plan.rows_estimated, plan.rows_actual) == (1, 1)
    assert plan.execution_ms is not None and plan.planning_ms is not None
    assert "Index Scan using pf_accounts_name on pf_accounts" in plan.text
    assert f"Buffers: shared hit={plan.shared_hit}" in plan.text


def test_seq_scan_facts_with_named_parameters(accounts: Any, dbarch_budget: Any) -> None:
    plan = dbarch_budget.explain("SELECT count(*) FROM pf_accounts WHERE region = %(r)s", {"r": 3})
    assert plan.seq_scans == ("pf_accounts",)
    assert plan.indexes == ()
    assert plan.seq_scan_rows("pf_accounts") == 20000
    assert plan.buffers == plan.shared_hit + plan.shared_read + plan.temp
    assert plan.buffers >= 100  # the whole table: 20k rows are more than a hundred pages
    assert "Parallel" not in plan.text and "JIT" not in plan.text  # both switched off for the EXPLAIN


def test_sqlalchemy_text_and_select_are_compiled_with_their_parameters(accounts: Any, dbarch_budget: Any) -> None:
    from sqlalchemy import Integer, String, TypeDecorator, column, select, table, text

    class Upper(TypeDecorator[str]):
        impl = String
        cache_ok = True

        def process_bind_param(self, value: Any, dialect: Any) -> Any:
            return value.lower()

    pf = table("pf_accounts", column("id", Integer), column("name", Upper()))
    by_text = dbarch_budget.explain(text("SELECT id FROM pf_accounts WHERE name = :n AND name LIKE 'acc%'"), {"n": "account 9"})
    by_select = dbarch_budget.explain(select(pf.c.id).where(pf.c.name == "ACCOUNT 9", pf.c.id.in_([9, 10])))
    assert by_text.rows_actual == 1 and by_text.indexes == ("pf_accounts_name",)
    assert by_select.rows_actual == 1  # the TypeDecorator lowered the value before it was bound


def test_writes_are_explained_in_a_savepoint_that_is_rolled_back(accounts: Any, dbarch_budget: Any) -> None:
    plan = dbarch_budget.explain("UPDATE pf_counters SET n = n + 1 WHERE id = %s", (1,))
    assert plan.rows_estimated >= 0 and plan.buffers is not None
    assert accounts.execute("SELECT n FROM pf_counters").fetchone() == (0,)  # warm-up, run and text: all undone


def test_a_call_with_several_statements_is_not_run(accounts: Any, dbarch_budget: Any) -> None:
    from pytest_dbarch.performance.explain import ExplainError

    with pytest.raises(ExplainError, match="several statements"):
        dbarch_budget.explain("SELECT 1; UPDATE pf_counters SET n = 99")
    assert accounts.execute("SELECT n FROM pf_counters").fetchone() == (0,)


def test_stale_statistics_are_found_but_a_limit_is_not_a_misestimate(accounts: Any, dbarch_budget: Any) -> None:
    accounts.execute("CREATE TABLE pf_flags (id int, flag int); INSERT INTO pf_flags SELECT i, 1 FROM generate_series(1, 20) i")
    accounts.execute("ANALYZE pf_flags; INSERT INTO pf_flags SELECT i, 2 FROM generate_series(1, 5000) i")
    stale = dbarch_budget.explain("SELECT id FROM pf_flags WHERE flag = 2")
    [wrong] = stale.misestimates
    assert wrong.node == "Seq Scan on pf_flags" and wrong.actual == 5000 and wrong.factor > 10
    limited = dbarch_budget.explain("SELECT id FROM pf_accounts ORDER BY id LIMIT 3")
    assert limited.misestimates == ()  # the index scan below the LIMIT stops early on purpose
    sorted_first = dbarch_budget.explain("SELECT id FROM pf_flags WHERE flag = 2 ORDER BY id DESC LIMIT 3")
    assert [m.node for m in sorted_first.misestimates] == ["Seq Scan on pf_flags"]  # the sort read it all
    grouped = dbarch_budget.explain("SELECT date_trunc('day', now() - id * interval '1 minute'), count(*) FROM pf_accounts GROUP BY 1")
    assert grouped.misestimates == ()  # an aggregate's group count is no table statistic


def test_latency_samples_are_server_side_execution_times(accounts: Any, dbarch_budget: Any) -> None:
    latency = dbarch_budget.latency("SELECT id FROM pf_accounts WHERE name = %s", ("account 7",))
    assert len(latency.samples) == 30
    assert 0 < latency.fastest <= latency.median <= latency.p95 <= latency.slowest
    assert latency.cpu_ms is not None and latency.cpu_ms >= 0  # the server runs on this machine


def test_limit_block_covers_only_its_statements(accounts: Any, dbarch_budget: Any) -> None:
    accounts.execute("SELECT count(*) FROM pf_accounts").fetchone()  # outside: not budgeted
    with dbarch_budget.limit(buffers=10, uses_index="pf_accounts_name") as block:
        accounts.execute("SELECT id FROM pf_accounts WHERE name = %s", ("account 3",)).fetchall()
    assert [s.sql for s in block.queries] == ["SELECT id FROM pf_accounts WHERE name = %s"]
    with pytest.raises(BudgetExceeded) as exceeded:
        with dbarch_budget.limit(buffers=10):
            accounts.execute("SELECT count(*) FROM pf_accounts WHERE region = %s", (1,)).fetchone()
    assert "over the budget of 10" in str(exceeded.value)
    assert [f.rule for f in exceeded.value.findings if f.is_problem] == ["performance.buffer-budget"]


def test_plan_reading_without_analyze() -> None:
    document = [{"Plan": {"Node Type": "Seq Scan", "Relation Name": "t", "Plan Rows": 7}}]
    plan = Plan.from_explain(document)
    assert (plan.buffers, plan.rows_actual, plan.execution_ms) == (None, None, None)
    assert plan.seq_scans == ("t",) and plan.rows_estimated == 7 and plan.misestimates == ()


# --- latency verdicts (pure: the samples are the input)
@pytest.mark.parametrize(
    ("samples", "budget", "scale", "shared", "outcome", "reason"),
    [
        ([1.0] * 29 + [2.0], 5, 1.0, False, PASSED, "p95 1.000 ms within 5 ms"),
        ([6.0] * 28 + [9.0, 30.0], 5, 1.0, False, FAILED, "even the fastest of 30 samples took 6.000 ms"),
        ([6.0] * 28 + [9.0, 30.0], 5, 2.0, False, PASSED, "within 10 ms (5 ms x scale 2)"),
        ([1.0] * 24 + [40.0] * 6, 5, 1.0, False, NOISY, "spread too widely to judge"),
        ([4.0] * 24 + [6.0] * 6, 5, 1.0, False, FAILED, "samples consistent"),
        ([4.0] * 24 + [6.0] * 6, 5, 1.0, True, NOISY, "pytest-xdist"),
        ([6.0] * 30, 5, 1.0, False, NOISY, "only 2.0 ms of CPU per run: the machine is too busy to judge"),
        ([6.0] * 30, 5, 1.0, False, FAILED, "even the fastest of 30 samples took 6.000 ms, over the budget of 5 ms"),
    ],
)
def test_latency_verdicts(samples: list[float], budget: float, scale: float, shared: bool, outcome: str, reason: str) -> None:
    cpu = 2.0 if "CPU" in reason else (5.5 if samples == [6.0] * 30 else None)
    verdict = judge(Latency.of(samples, cpu), budget, scale, shared_cpu=shared)
    assert verdict.outcome == outcome
    assert reason in verdict.reason


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 31))
    assert percentile(values, 95) == 29 and percentile(values, 50) == 15 and percentile([4.0], 95) == 4.0


# --- marker arguments
def test_query_budget_arguments() -> None:
    assert query_budget() == Budget()
    assert query_budget(buffers=5, no_seq_scan="a", uses_index=["ix_a", "ix_b"]) == Budget(5, None, ("a",), ("ix_a", "ix_b"))
    assert query_budget(no_seq_scan=True).forbids_seq_scan("anything")
    assert query_budget(no_seq_scan=["public.accounts"]).forbids_seq_scan("accounts")
    assert query_budget(p95_ms=100).describe() == "query_budget(p95_ms=100)"
    for bad, message in [({"buffers": -1}, "buffers=-1"), ({"buffers": 2.5}, "buffers=2.5"),
                         ({"p95_ms": 0}, "p95_ms=0"), ({"uses_index": [""]}, "uses_index"),
                         ({"no_seq_scan": [3]}, "no_seq_scan")]:
        with pytest.raises(ValueError, match=message):
            query_budget(**bad)


def test_single_statement() -> None:
    assert single_statement("SELECT ';' FROM t WHERE a = $$;$$ -- ; x\n;")
    assert single_statement('/* ; */ SELECT "a;b" FROM t;  ')
    assert not single_statement("SELECT 1; DELETE FROM t")
