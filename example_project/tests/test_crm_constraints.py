"""The database itself rejects bad data, whatever the application does.

Rows come from ``dbarch_constraints.factory``: every field not given is drawn valid
(a closed deal gets its ``closed_at``, keys point at real parents), so each case breaks
exactly the rule it names, and asserts on the violated constraint's name: a test cannot
pass because some other constraint happened to fire.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm.models import Contact, Lead, Opportunity
from crm.services import add_contact


def _constraint(exc: pytest.ExceptionInfo[IntegrityError]) -> str | None:
    """Name of the constraint PostgreSQL reported (a unique index counts too)."""
    orig = exc.value.orig
    assert isinstance(orig, psycopg.Error)
    return orig.diag.constraint_name


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"amount": Decimal("-0.01")}, "ck_opportunities_amount_non_negative"),
        ({"stage": "pending"}, "ck_opportunities_stage_valid"),
        ({"stage": "won", "closed_at": None}, "ck_opportunities_closed_at_matches_stage"),
        ({"currency": "usd"}, "ck_opportunities_currency_known"),
        ({"probability": 101}, "ck_opportunities_probability_valid"),
    ],
    ids=["negative-amount", "unknown-stage", "closed-without-date", "lowercase-currency", "probability-101"],
)
def test_opportunity_checks(
    dbarch_session: Session, dbarch_constraints: Any, fields: dict[str, Any], constraint: str
) -> None:
    opportunities = dbarch_constraints.factory(Opportunity)
    with pytest.raises(IntegrityError) as exc:
        opportunities.create(**fields)
    assert _constraint(exc) == constraint
    dbarch_session.rollback()


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"rating": 0}, "ck_leads_rating_range"),
        ({"status": "converted", "converted_at": None}, "ck_leads_conversion_recorded"),
        ({"status": "new", "converted_at": None, "converted_contact_id": "contact"},
         "ck_leads_contact_only_when_converted"),
    ],
    ids=["rating-0", "converted-without-time", "contact-but-not-converted"],
)
def test_lead_checks(
    dbarch_session: Session, dbarch_constraints: Any, fields: dict[str, Any], constraint: str
) -> None:
    if fields.get("converted_contact_id") == "contact":
        fields["converted_contact_id"] = dbarch_constraints.factory(Contact).create().id
    with pytest.raises(IntegrityError) as exc:
        dbarch_constraints.factory(Lead).create(**fields)
    assert _constraint(exc) == constraint
    dbarch_session.rollback()


def test_contact_needs_existing_account(dbarch_session: Session) -> None:
    with pytest.raises(IntegrityError) as exc:
        add_contact(dbarch_session, uuid.uuid4(), "No", "Body", "nobody@example.com")
    assert _constraint(exc) == "fk_contacts_account_id_accounts"
    dbarch_session.rollback()


def test_live_contact_emails_are_unique(dbarch_session: Session, dbarch_constraints: Any) -> None:
    contacts = dbarch_constraints.factory(Contact)
    contacts.create(email="dup@example.com", deleted_at=datetime.now(UTC))
    contacts.create(email="dup@example.com", deleted_at=None)  # the soft-deleted one does not count

    with pytest.raises(IntegrityError) as exc:
        contacts.create(email="dup@example.com", deleted_at=None)
    assert _constraint(exc) == "ux_contacts_email_live"
    dbarch_session.rollback()
