"""The N+1 detector on the example's report: it catches the slow one, passes the fixed one."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from crm.factories import AccountFactory, ContactFactory
from crm.reports import contacts_per_account, contacts_per_account_slow
from pytest_dbarch.queries.log import QueryLog


@pytest.fixture
def three_accounts(dbarch_session: Session, bind_factories: None) -> dict[str, int]:
    expected = {}
    for i, name in enumerate(("Acme", "Globex", "Initech")):
        account = AccountFactory(name=name)
        ContactFactory.create_batch(i + 1, account=account)
        expected[name] = i + 1
    dbarch_session.expunge_all()  # the report must load everything itself
    return expected


@pytest.mark.nplusone(mode="warn")  # the known N+1 is reported, not failed
def test_slow_report_is_caught_as_nplusone(
    dbarch_session: Session, three_accounts: dict[str, int], dbarch_queries: QueryLog
) -> None:
    assert contacts_per_account_slow(dbarch_session) == three_accounts

    assert dbarch_queries.count == 1 + len(three_accounts)  # one per account: it grows with the data
    [finding] = dbarch_queries.nplusone()
    assert finding.rule == "queries.nplusone-lazy-load"
    assert finding.title == "N+1: Account.contacts lazy-loaded for 3 parents (3 queries)"
    assert finding.where.startswith("crm/reports.py:")
    assert "selectinload(Account.contacts)" in finding.fix


@pytest.mark.nplusone(mode="error")  # any N+1 here fails the test
@pytest.mark.max_queries(2)
def test_fixed_report_runs_two_queries(
    dbarch_session: Session, three_accounts: dict[str, int], dbarch_queries: QueryLog
) -> None:
    assert contacts_per_account(dbarch_session) == three_accounts

    assert dbarch_queries.by_kind() == {"select": 2}
    assert dbarch_queries.nplusone() == []
