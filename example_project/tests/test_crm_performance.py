"""Query budgets on the account page's critical query: the open pipeline by stage.

A budget judged on the three rows a unit test makes judges nothing (the planner reads
tiny tables whole), so this module runs on realistic volume: 200 accounts with 200
opportunities each, most of them closed, as in a CRM that has run for a while. The rows
are committed once for the module and removed after it (``dbarch_volume``).

The seed documents' metrics are the budget: "index use on critical queries" and
"p95 < 100 ms"; the block count is the deterministic figure that gates CI.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.models import CLOSED_STAGES, OPEN_STAGES, Account, Opportunity
from crm.services import open_opportunities_by_stage
from pytest_dbarch.performance import BudgetExceeded

ACCOUNTS = 200
DEALS_PER_ACCOUNT = 200
# Four of twenty deals are open. The stage cycles per round of accounts, so every
# account has deals in every stage, spread over the table as months of inserts spread them.
STAGES = (*OPEN_STAGES, *CLOSED_STAGES * 8)
STAGE = f"(ARRAY{list(STAGES)!r})[1 + (i / {ACCOUNTS}) % {len(STAGES)}]"
CLOSED = f"(i / {ACCOUNTS}) % {len(STAGES)} >= {len(OPEN_STAGES)}"

INDEX = "ix_opportunities_account_id_stage_live"
# With the index: a few index pages and no heap (an index-only scan). Without it: 50+
# blocks here, growing with every open deal in the table.
BUDGET = {"buffers": 20, "uses_index": INDEX, "no_seq_scan": ["opportunities"]}


@pytest.fixture(scope="module")
def pipeline(dbarch_volume: Any) -> Iterator[Any]:
    with dbarch_volume() as volume:
        volume.fill("accounts", ACCOUNTS, name="'Account ' || i", industry="'software'")
        volume.fill(
            "opportunities",
            ACCOUNTS * DEALS_PER_ACCOUNT,
            account_id=volume.pick("accounts"),
            name="'Deal ' || i",
            amount="(i % 500) * 100",
            stage=STAGE,
            closed_at=f"CASE WHEN {CLOSED} THEN now() END",
            expected_close_date="current_date + i % 90",
            deleted_at="CASE WHEN i % 50 = 0 THEN now() END",
        )
        yield volume


@pytest.fixture
def account_id(pipeline: Any, dbarch_session: Session) -> uuid.UUID:
    return dbarch_session.scalars(select(Account.id).order_by(Account.name).limit(1)).one()


@pytest.mark.query_budget(p95_ms=100, **BUDGET)
def test_open_pipeline_within_budget(dbarch_session: Session, account_id: uuid.UUID) -> None:
    by_stage = open_opportunities_by_stage(dbarch_session, account_id)

    assert list(by_stage) == list(OPEN_STAGES)
    assert sum(count for count, _ in by_stage.values()) == 40  # 4 open of every 20, a few deleted


def test_plan_is_an_index_only_scan(dbarch_budget: Any, account_id: uuid.UUID) -> None:
    """The same query through ``dbarch_budget.explain``: the plan's facts, as numbers."""
    query = (
        select(Opportunity.stage)
        .where(Opportunity.account_id == account_id, Opportunity.stage.in_(OPEN_STAGES))
        .where(Opportunity.deleted_at.is_(None))
    )
    plan = dbarch_budget.explain(query)

    assert plan.indexes == (INDEX,)
    assert plan.seq_scans == ()
    assert plan.buffers <= BUDGET["buffers"]
    assert plan.rows_actual == 40
    assert f"Index Only Scan using {INDEX} on opportunities" in plan.text


def test_budget_fails_with_the_plan_when_the_index_is_gone(
    dbarch_session: Session, dbarch_psycopg: psycopg.Connection[Any], dbarch_budget: Any, account_id: uuid.UUID
) -> None:
    """Drop the index inside the test's transaction (rolled back afterwards): the budget
    names the missing index and shows the plan the database falls back to."""
    dbarch_psycopg.execute(f"DROP INDEX {INDEX}")

    with pytest.raises(BudgetExceeded) as exceeded:
        with dbarch_budget.limit(**BUDGET):
            open_opportunities_by_stage(dbarch_session, account_id)

    message = str(exceeded.value)
    assert f"Index {INDEX} not used: it does not exist in the test database" in message
    assert "[performance.buffer-budget]" in message and "over the budget of 20" in message
    assert "at crm/services.py:" in message  # the call site of the query
    assert "Bitmap Heap Scan on opportunities" in message  # the fallback plan, as EXPLAIN prints it
    assert "ix_opportunities_expected_close_open" in message
