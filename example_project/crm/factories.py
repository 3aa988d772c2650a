"""factory-boy factories for test data.

The factories are declared without a session because the right session (the
test's isolated one) only exists once a test runs.  Bind it first::

    from crm.factories import AccountFactory, bind_factories

    def test_something(dbarch_session):
        bind_factories(dbarch_session)
        account = AccountFactory.create()

or request the ``bind_factories`` fixture from ``conftest.py``, which binds
before the test and unbinds after it.

Persistence is ``"flush"``: rows get their server-generated ids and are
visible to queries in the same transaction, while committing stays the
business of the code under test.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy.orm import Session

from crm.models import Account, Contact, Opportunity


class _CrmFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session = None  # set per test by bind_factories()
        sqlalchemy_session_persistence = "flush"


class AccountFactory(_CrmFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n:04d}")
    industry = "software"
    website = factory.LazyAttribute(lambda o: f"https://{o.name.lower().replace(' ', '-')}.example")


class ContactFactory(_CrmFactory):
    class Meta:
        model = Contact

    account = factory.SubFactory(AccountFactory)
    first_name = "Ada"
    last_name = factory.Sequence(lambda n: f"Tester{n}")
    # A sequence, because live emails are unique in the database.
    email = factory.Sequence(lambda n: f"contact{n}@example.com")
    title = None
    phone = None


class OpportunityFactory(_CrmFactory):
    class Meta:
        model = Opportunity

    account = factory.SubFactory(AccountFactory)
    contact = None
    name = factory.Sequence(lambda n: f"Deal {n}")
    amount = Decimal("1000.00")
    currency = "USD"
    # Open by default; closed stages also need closed_at (a CHECK enforces it).
    stage = "prospecting"
    closed_at = None


ALL_FACTORIES: tuple[type[SQLAlchemyModelFactory], ...] = (
    AccountFactory,
    ContactFactory,
    OpportunityFactory,
)


def bind_factories(session: Session | None) -> None:
    """Point every factory at ``session``; pass ``None`` to unbind.

    Unbinding after each test matters: a factory left holding a closed
    session from an earlier test fails in confusing ways.
    """
    for factory_cls in ALL_FACTORIES:
        # Options live on _meta; factory-boy's stubs do not declare this one.
        options: Any = factory_cls._meta
        options.sqlalchemy_session = session
