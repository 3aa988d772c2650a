"""Service layer: the operations the rest of the application calls.

Every function takes the caller's ``Session`` instead of creating one, so tests
can hand in an isolated session.  ``create_account`` is a complete use case and
commits; the others are building blocks that only flush, leaving the
transaction boundary to the caller.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.models import CLOSED_STAGES, OPEN_STAGES, Account, AuditLog, Contact, Opportunity


def _audit(
    session: Session, table_name: str, row_id: uuid.UUID, action: str, changed: dict[str, Any]
) -> None:
    """Record a change in the same transaction as the change itself."""
    session.add(AuditLog(table_name=table_name, row_id=row_id, action=action, changed=changed))


def create_account(session: Session, name: str, industry: str | None = None) -> Account:
    """Create an account and its audit entry, and commit both atomically."""
    account = Account(name=name, industry=industry)
    session.add(account)
    session.flush()  # the id comes from gen_random_uuid(); the audit row needs it
    _audit(session, "accounts", account.id, "insert", {"name": name, "industry": industry})
    session.commit()
    return account


def add_contact(
    session: Session,
    account_id: uuid.UUID,
    first_name: str,
    last_name: str,
    email: str,
    *,
    title: str | None = None,
    phone: str | None = None,
) -> Contact:
    """Attach a new contact to an account.

    Email is normalised to lower case because uniqueness among live contacts
    is enforced by the database on the stored value.
    """
    contact = Contact(
        account_id=account_id,
        first_name=first_name,
        last_name=last_name,
        email=email.strip().lower(),
        title=title,
        phone=phone,
    )
    session.add(contact)
    session.flush()
    return contact


def open_pipeline_value(session: Session, account_id: uuid.UUID) -> Decimal:
    """Total amount of an account's live, still-open opportunities.

    Summed in SQL so the answer does not depend on loading every row, and
    coalesced so an account with no open deals reports 0 rather than None.
    """
    stmt = select(func.coalesce(func.sum(Opportunity.amount), 0)).where(
        Opportunity.account_id == account_id,
        Opportunity.stage.in_(OPEN_STAGES),
        Opportunity.deleted_at.is_(None),
    )
    return Decimal(session.execute(stmt).scalar_one())


def open_opportunities_by_stage(session: Session, account_id: uuid.UUID) -> dict[str, tuple[int, Decimal]]:
    """Number and total amount of an account's live, open opportunities per stage.

    The account page's pipeline panel runs this on every view, so it is held to a query
    budget (``tests/test_crm_performance.py``). ``deleted_at IS NULL`` is spelled out
    so the partial covering index ``ix_opportunities_account_id_stage_live`` (revision
    0011) answers it from the index alone; stages without deals report ``(0, 0)``.
    """
    stmt = (
        select(Opportunity.stage, func.count(), func.sum(Opportunity.amount))
        .where(
            Opportunity.account_id == account_id,
            Opportunity.stage.in_(OPEN_STAGES),
            Opportunity.deleted_at.is_(None),
        )
        .group_by(Opportunity.stage)
    )
    by_stage = {stage: (0, Decimal(0)) for stage in OPEN_STAGES}
    for stage, count, amount in session.execute(stmt):
        by_stage[stage] = (count, amount)
    return by_stage


def search_accounts(session: Session, name_prefix: str, limit: int = 50) -> list[Account]:
    """Live accounts whose name starts with ``name_prefix`` (case-sensitive).

    ``autoescape`` keeps user-typed ``%`` and ``_`` literal; a plain prefix
    LIKE can use the ``text_pattern_ops`` index on ``accounts.name``.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    stmt = (
        select(Account)
        .where(Account.name.startswith(name_prefix, autoescape=True))
        .where(Account.deleted_at.is_(None))
        .order_by(Account.name, Account.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def close_opportunity(session: Session, opp_id: uuid.UUID, won: bool) -> Opportunity:
    """Move an open opportunity to ``won`` or ``lost`` and audit the change.

    Raises LookupError for an unknown id and ValueError if it is already
    closed, so a double submit cannot overwrite the original outcome.
    ``SELECT ... FOR UPDATE`` serialises concurrent closes of the same deal.
    """
    opp = session.get(Opportunity, opp_id, with_for_update=True)
    if opp is None or opp.deleted_at is not None:
        raise LookupError(f"opportunity {opp_id} not found")
    if opp.stage in CLOSED_STAGES:
        raise ValueError(f"opportunity {opp_id} is already {opp.stage}")
    old_stage = opp.stage
    opp.stage = "won" if won else "lost"
    # Database time, like created_at, so all timestamps share one clock.
    opp.closed_at = func.now()
    _audit(session, "opportunities", opp.id, "update", {"stage": [old_stage, opp.stage]})
    session.flush()
    return opp
