"""API tests through Starlette's TestClient (FastAPI's is the same class).

The application runs in the client's own threads, yet every statement is attributed
to the test line that sent the request: two requests on two lines are not an N+1, the
endpoint's own loop is one (at its line in crm/reports.py), and the queries SQLAlchemy
sends when an engine first connects never count toward a budget.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from crm.factories import AccountFactory, ContactFactory
from crm.models import Account
from crm.web import make_app
from pytest_dbarch.queries.log import QueryLog


@pytest.fixture
def client(dbarch_session: Session) -> Iterator[TestClient]:
    """The app on the test's isolated session (a FastAPI app gets the same through
    ``app.dependency_overrides[get_db]``)."""
    with TestClient(make_app(lambda: contextlib.nullcontext(dbarch_session))) as test_client:
        yield test_client


@pytest.fixture
def accounts(dbarch_session: Session, bind_factories: None) -> list[Account]:
    made = []
    for i, name in enumerate(("Acme", "Globex", "Initech")):
        account = AccountFactory(name=name)
        ContactFactory.create_batch(i + 1, account=account)
        made.append(account)
    dbarch_session.flush()
    dbarch_session.expunge_all()  # every request loads what it needs itself
    return made


@pytest.mark.nplusone(mode="error")
def test_two_requests_on_two_lines_are_no_nplusone(
    client: TestClient, accounts: list[Account], dbarch_queries: QueryLog
) -> None:
    acme, globex = accounts[0], accounts[1]
    assert client.get(f"/accounts/{acme.id}").json() == {"id": str(acme.id), "name": "Acme"}
    assert client.get(f"/accounts/{globex.id}").json() == {"id": str(globex.id), "name": "Globex"}
    assert dbarch_queries.nplusone() == []


@pytest.mark.nplusone(mode="warn")  # the known N+1 is reported, not failed
def test_the_endpoints_own_loop_is_an_nplusone(client: TestClient, accounts: list[Account], dbarch_queries: QueryLog) -> None:
    assert client.get("/reports/contacts-slow").json() == {"Acme": 1, "Globex": 2, "Initech": 3}
    [finding] = dbarch_queries.nplusone()
    assert finding.rule == "queries.nplusone-lazy-load"
    assert finding.where.startswith("crm/reports.py:")
    assert "tests/test_crm_web.py:" in finding.evidence  # the request's line, in the stack


@pytest.mark.nplusone(mode="error")
@pytest.mark.max_queries(2)
def test_fixed_endpoint_runs_two_queries(client: TestClient, accounts: list[Account], dbarch_queries: QueryLog) -> None:
    assert client.get("/reports/contacts").json() == {"Acme": 1, "Globex": 2, "Initech": 3}
    assert dbarch_queries.by_kind() == {"select": 2}


@pytest.mark.max_queries(1)
def test_an_engines_first_connection_does_not_count(dbarch_url: str, dbarch_queries: QueryLog) -> None:
    """An app that makes its own engine (from settings) connects first inside the test:
    the dialect's start-up queries are driver work, not the endpoint's."""
    engine = create_engine(dbarch_url)
    try:
        with TestClient(make_app(lambda: Session(engine))) as own:
            assert own.get("/reports/contacts").json() == {}
    finally:
        engine.dispose()
    assert [s.kind for s in dbarch_queries.queries] == ["select"]
    assert any("version()" in s.sql for s in dbarch_queries.statements)
