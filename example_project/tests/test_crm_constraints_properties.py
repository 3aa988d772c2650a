"""Property tests on generated data: what the services do to any valid row keeps it valid.

``dbarch_constraints.rows(table)`` is a hypothesis strategy of rows the database accepts
(the seed's CHECKs included: rating 1-5, probability 0-100, known currencies, lead
conversion recorded consistently); ``.fill(table, n)`` inserts many at once. The
``constraints[<table>]`` items that ``dbarch_constraints = true`` adds to this run
prove, table by table, that the database enforces what ``crm/models.py`` declares.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from crm.models import CLOSED_STAGES, OPEN_STAGES, Account, Lead, Opportunity
from crm.services import close_opportunity, open_pipeline_value

EXAMPLES = settings(max_examples=40, deadline=None)  # database round trips are not the code under test
# Each example runs the same statements again: that is the point, not an N+1.
pytestmark = pytest.mark.nplusone(mode="off")


def test_any_open_opportunity_closes_into_a_valid_row(dbarch_session: Session, dbarch_constraints: Any) -> None:
    dbarch_constraints.fill("accounts", 5)
    # Soft-deleted deals cannot be closed (LookupError): hypothesis found that case first.
    open_deals = dbarch_constraints.rows("opportunities", stage=st.sampled_from(OPEN_STAGES), deleted_at=None)

    @EXAMPLES
    @given(row=open_deals, won=st.booleans())
    def close(row: dict[str, Any], won: bool) -> None:
        opp_id = dbarch_session.execute(insert(Opportunity.__table__).values(**row).returning(Opportunity.id)).scalar_one()
        closed = close_opportunity(dbarch_session, opp_id, won=won)
        assert closed.stage in CLOSED_STAGES
        dbarch_session.refresh(closed)  # closed_at came from the database clock
        assert closed.closed_at is not None

    close()


def test_pipeline_value_is_the_sum_of_open_amounts(dbarch_session: Session, dbarch_constraints: Any) -> None:
    account_id = dbarch_constraints.factory(Account).create().id
    dbarch_constraints.fill("opportunities", 300, account_id=account_id, deleted_at=None)
    expected = dbarch_session.scalar(
        select(func.coalesce(func.sum(Opportunity.amount), 0)).where(
            Opportunity.account_id == account_id, Opportunity.stage.in_(OPEN_STAGES)
        )
    )
    assert open_pipeline_value(dbarch_session, account_id) == expected


def test_generated_leads_respect_the_seed_rules(dbarch_session: Session, dbarch_constraints: Any) -> None:
    dbarch_constraints.fill("contacts", 5)

    @EXAMPLES
    @given(dbarch_constraints.rows("leads"))
    def lead(row: dict[str, Any]) -> None:
        assert row["rating"] is None or 1 <= row["rating"] <= 5
        assert (row["status"] == "converted") == (row["converted_at"] is not None)
        dbarch_session.execute(insert(Lead.__table__).values(**row))

    lead()


@pytest.mark.parametrize("table", ["leads", "opportunities"])
def test_the_database_enforces_the_models(dbarch_constraints: Any, table: str) -> None:
    problems = [f for f in dbarch_constraints.check(table) if f.is_problem]
    assert problems == [], [f.title for f in problems]

