"""Two operations that go wrong when two requests run them at the same moment.

Each comes in its naive form, the one a single-connection test never faults, and in
the forms that hold under concurrency. ``tests/test_crm_concurrency.py`` shows
pytest-dbarch's concurrency harness catching the naive ones and passing the others.

Like ``services.py``, every function takes the caller's ``Session`` and leaves the
commit to the caller.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from crm.models import Contact, Lead, Opportunity


# --- converting a lead into a contact: two clicks on "Convert" must make one contact
def convert_lead_naive(session: Session, lead_id: uuid.UUID, account_id: uuid.UUID) -> uuid.UUID:
    """Check, then act, with nothing in between held: two conversions both see the lead
    still 'new' and both insert a contact. Here the unique index on live emails refuses
    the second one, so the second request fails with a duplicate-key error."""
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise LookupError(f"lead {lead_id} not found")
    if lead.status == "converted" and lead.converted_contact_id is not None:
        return lead.converted_contact_id
    return _make_contact(session, lead, account_id)


def convert_lead_locked(session: Session, lead_id: uuid.UUID, account_id: uuid.UUID) -> uuid.UUID:
    """``SELECT ... FOR UPDATE`` on the lead: a second conversion waits for the first to
    commit, then sees 'converted' and returns the same contact."""
    lead = session.get(Lead, lead_id, with_for_update=True)
    if lead is None:
        raise LookupError(f"lead {lead_id} not found")
    if lead.status == "converted" and lead.converted_contact_id is not None:
        return lead.converted_contact_id
    return _make_contact(session, lead, account_id)


def convert_lead_idempotent(session: Session, lead_id: uuid.UUID, account_id: uuid.UUID) -> uuid.UUID:
    """Let the unique index decide: ``INSERT ... ON CONFLICT DO NOTHING`` on the live
    email, then read the one contact that exists, whoever made it. No lock is held while
    checking, and no request fails."""
    lead = session.get(Lead, lead_id)
    if lead is None or not lead.email:
        raise LookupError(f"lead {lead_id} not found or without an email")
    email = lead.email.strip().lower()
    session.execute(
        text(
            "INSERT INTO contacts (account_id, first_name, last_name, email) "
            "VALUES (:account_id, :first_name, :last_name, :email) "
            "ON CONFLICT (email) WHERE deleted_at IS NULL DO NOTHING"
        ),
        {"account_id": account_id, "first_name": lead.first_name or "", "last_name": lead.last_name or "",
         "email": email},
    )
    contact_id = session.scalars(
        select(Contact.id).where(Contact.email == email, Contact.deleted_at.is_(None))
    ).one()
    lead.status, lead.converted_contact_id, lead.converted_at = "converted", contact_id, func.now()
    session.flush()
    return contact_id


def _make_contact(session: Session, lead: Lead, account_id: uuid.UUID) -> uuid.UUID:
    contact = Contact(
        account_id=account_id,
        first_name=lead.first_name or "",
        last_name=lead.last_name or "",
        email=(lead.email or "").strip().lower(),
    )
    session.add(contact)
    session.flush()
    lead.status, lead.converted_contact_id, lead.converted_at = "converted", contact.id, func.now()
    session.flush()
    return contact.id


# --- changing an opportunity's amount: two adjustments must both count
def add_to_amount_naive(session: Session, opp_id: uuid.UUID, delta: Decimal) -> Decimal:
    """Read the amount, add in Python, write it back: two concurrent adjustments both
    read the old amount and the later write erases the earlier one (a lost update).
    Under SERIALIZABLE the database refuses the second instead (40001): correct when the
    caller retries the transaction."""
    opp = session.get(Opportunity, opp_id)
    if opp is None:
        raise LookupError(f"opportunity {opp_id} not found")
    opp.amount = opp.amount + delta
    session.flush()
    return opp.amount


def add_to_amount_locked(session: Session, opp_id: uuid.UUID, delta: Decimal) -> Decimal:
    """The same read-modify-write with the row locked first (``SELECT ... FOR UPDATE``):
    the second adjustment reads the amount the first one wrote."""
    opp = session.get(Opportunity, opp_id, with_for_update=True)
    if opp is None:
        raise LookupError(f"opportunity {opp_id} not found")
    opp.amount = opp.amount + delta
    session.flush()
    return opp.amount
