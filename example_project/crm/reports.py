"""Read-side reports: one with a real N+1 and its fixed twin.

``contacts_per_account_slow`` is how N+1s get written: it reads the accounts, then
touches ``account.contacts`` for each, and the ORM quietly sends one more query per
account. ``contacts_per_account`` asks for the contacts up front with
``selectinload``: two queries whatever the number of accounts. The tests in
``tests/test_crm_reports.py`` show pytest-dbarch catching the first and passing the
second.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from crm.models import Account


def _live_accounts():  # type: ignore[no-untyped-def]
    return select(Account).where(Account.deleted_at.is_(None)).order_by(Account.name, Account.id)


def contacts_per_account_slow(session: Session) -> dict[str, int]:
    """Live contacts per live account. N+1: one query per account (kept as the example)."""
    accounts = session.scalars(_live_accounts()).all()
    return {account.name: sum(1 for c in account.contacts if c.deleted_at is None) for account in accounts}


def contacts_per_account(session: Session) -> dict[str, int]:
    """Live contacts per live account, in two queries whatever the number of accounts."""
    accounts = session.scalars(_live_accounts().options(selectinload(Account.contacts))).all()
    return {account.name: sum(1 for c in account.contacts if c.deleted_at is None) for account in accounts}
