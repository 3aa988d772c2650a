"""The database itself rejects bad data, whatever the application does.

Each case asserts on the violated constraint's name, so a test cannot pass
because some other constraint happened to fire.
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

from crm.factories import AccountFactory, ContactFactory, OpportunityFactory
from crm.services import add_contact


def _constraint(exc: pytest.ExceptionInfo[IntegrityError]) -> str | None:
    """Name of the constraint PostgreSQL reported (a unique index counts too)."""
    orig = exc.value.orig
    assert isinstance(orig, psycopg.Error)
    return orig.diag.constraint_name


@pytest.mark.usefixtures("bind_factories")
@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"amount": Decimal("-0.01")}, "ck_opportunities_amount_non_negative"),
        ({"stage": "pending"}, "ck_opportunities_stage_valid"),
        ({"stage": "won", "closed_at": None}, "ck_opportunities_closed_at_matches_stage"),
        ({"currency": "usd"}, "ck_opportunities_currency_iso"),
    ],
    ids=["negative-amount", "unknown-stage", "closed-without-date", "lowercase-currency"],
)
def test_opportunity_checks(
    dbarch_session: Session, fields: dict[str, Any], constraint: str
) -> None:
    account = AccountFactory.create()
    with pytest.raises(IntegrityError) as exc:
        OpportunityFactory.create(account=account, **fields)
    assert _constraint(exc) == constraint
    dbarch_session.rollback()


def test_contact_needs_existing_account(dbarch_session: Session) -> None:
    with pytest.raises(IntegrityError) as exc:
        add_contact(dbarch_session, uuid.uuid4(), "No", "Body", "nobody@example.com")
    assert _constraint(exc) == "fk_contacts_account_id_accounts"
    dbarch_session.rollback()


@pytest.mark.usefixtures("bind_factories")
def test_live_contact_emails_are_unique(dbarch_session: Session) -> None:
    ContactFactory.create(email="dup@example.com", deleted_at=datetime.now(UTC))
    ContactFactory.create(email="dup@example.com")  # the soft-deleted one does not count

    with pytest.raises(IntegrityError) as exc:
        ContactFactory.create(email="dup@example.com")
    assert _constraint(exc) == "ux_contacts_email_live"
    dbarch_session.rollback()
