"""Wider scopes and the seed: a session-scoped application on the session's database,
module-scoped rows, and the seed's journal entry in every test.

``dbarch_session_database`` lives as long as the session: the app below is built once.
A test that also asks for a per-test fixture (``dbarch_session``) wraps the app's work
and its own in one transaction rolled back afterwards; what a module- or
session-scoped fixture commits stays for its scope.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from crm.models import Account, AuditLog
from crm.seed import SEED_ROW_ID
from crm.web import make_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from pytest_dbarch.postgres.scoped import ScopedDatabase


@pytest.fixture(scope="session")
def app_client(dbarch_session_database: ScopedDatabase) -> Iterator[TestClient]:
    """The app as production builds it (a session per request from a sessionmaker),
    once for the whole session."""
    new_session = sessionmaker(dbarch_session_database.engine, expire_on_commit=False)
    with TestClient(make_app(new_session)) as client:
        yield client


@pytest.fixture(scope="module")
def house_account(dbarch_session_database: ScopedDatabase) -> Iterator[Account]:
    """Committed once for this module; deleted when the module ends."""
    with Session(dbarch_session_database.engine, expire_on_commit=False) as session:
        account = Account(name="House account")
        session.add(account)
        session.commit()
    yield account
    with Session(dbarch_session_database.engine) as session:
        session.delete(session.get(Account, account.id))
        session.commit()


def _seed_rows(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.row_id == SEED_ROW_ID)) or 0


def test_the_session_scoped_app_sees_module_rows(app_client: TestClient, house_account: Account) -> None:
    assert app_client.get(f"/accounts/{house_account.id}").json()["name"] == "House account"


def test_a_tests_own_writes_are_rolled_back_with_the_apps(
    app_client: TestClient, house_account: Account, dbarch_session: Session
) -> None:
    temporary = Account(name="Only in this test")
    dbarch_session.add(temporary)
    dbarch_session.commit()  # the app's requests run on this test's connection: they see it
    assert app_client.get(f"/accounts/{temporary.id}").json()["name"] == "Only in this test"
    assert _seed_rows(dbarch_session) == 1


def test_and_gone_in_the_next(house_account: Account, dbarch_session: Session) -> None:
    # The module's row is here, the previous test's is not.
    assert dbarch_session.scalars(select(Account.name)).all() == ["House account"]


def test_the_seed_row_is_in_every_transaction_test(dbarch_session: Session) -> None:
    assert _seed_rows(dbarch_session) == 1


@pytest.mark.dbarch(isolation="clone")
def test_and_in_every_clone(dbarch_session: Session) -> None:
    assert _seed_rows(dbarch_session) == 1
