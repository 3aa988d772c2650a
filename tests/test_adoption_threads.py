"""Issue 15, point 2: statements the application runs in another thread on the test's
behalf (Starlette's TestClient, a thread pool) belong to the test line that caused
them: two requests from two lines are no N+1, a loop of requests is an API client's
N+1 (a warning), and a loop inside the endpoint is the usual N+1 at its line."""

from __future__ import annotations

import pytest

from tests.queries_support import project

pytest.importorskip("starlette.testclient")

WEBAPP = '''
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from models import Account


def make_app(session):
    async def account(request):
        found = session.execute(
            select(Account.id).where(Account.name == request.path_params["name"])
        ).scalar_one()
        return JSONResponse({"found": found > 0})

    def accounts_with_contacts(request):  # a sync endpoint: Starlette runs it in a worker thread
        return JSONResponse(
            {account.name: len(account.contacts) for account in session.scalars(select(Account)).all()}
        )

    return Starlette(routes=[Route("/accounts/{name}", account), Route("/accounts", accounts_with_contacts)])


def account_id(session, name):
    return session.execute(select(Account.id).where(Account.name == name)).scalar_one()
'''

API_TESTS = '''
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.testclient import TestClient

from webapp import account_id, make_app


@pytest.fixture
def client(seeded):
    with TestClient(make_app(seeded)) as client:
        yield client


def test_two_requests_on_two_lines(client):
    assert client.get("/accounts/a1").json() == {"found": True}
    assert client.get("/accounts/a2").json() == {"found": True}


def test_a_loop_of_requests(client):
    for name in ("a1", "a2", "a3"):
        client.get(f"/accounts/{name}")


def test_a_loop_inside_the_endpoint(client):
    assert client.get("/accounts").json() == {"a1": 2, "a2": 2, "a3": 2}


def test_two_jobs_on_two_lines(seeded):
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(account_id, seeded, "a1").result() > 0
        assert pool.submit(account_id, seeded, "a2").result() > 0
'''


def test_requests_are_attributed_to_the_test_line(external_pytester: pytest.Pytester) -> None:
    project(external_pytester)
    external_pytester.makepyfile(test_api=API_TESTS, webapp=WEBAPP)
    result = external_pytester.runpytest("-p", "no:randomly", "--dbarch-nplusone=error", "-v")
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*test_api.py::test_two_requests_on_two_lines PASSED*",
            "*test_api.py::test_a_loop_of_requests PASSED*",
            "*test_api.py::test_a_loop_inside_the_endpoint FAILED*",
            "*test_api.py::test_two_jobs_on_two_lines PASSED*",
        ]
    )
    # The endpoint's own loop: the usual N+1, at the endpoint's line, with the request's line.
    result.stdout.fnmatch_lines(
        [
            "*?queries.nplusone-lazy-load? N+1: Account.contacts lazy-loaded for 3 parents (3 queries)",
            "    query:  webapp.py:18",
            "    loop:   webapp.py:18  {account.name: len(account.contacts) for account in *",
            "*stack:  webapp.py:18 <- test_api.py:26",
        ]
    )
    # The test's loop of requests: its own warning, naming the loop; never a failure.
    result.stdout.fnmatch_lines(
        [
            "*?queries.nplusone-client-loop? API client N+1: a loop in the test calls the application "
            "once per item, each call running this query (3 queries*",
            "*fix: the application does not loop; the test's loop at test_api.py:21 sends one request per item*",
            "*test: test_api.py::test_a_loop_of_requests",
            "*query:  webapp.py:11",
            "*loop:   test_api.py:21  for name in (\"a1\", \"a2\", \"a3\"):",
        ]
    )
    assert out.count("queries.nplusone-client-loop") == 1, out
    assert out.count("queries.nplusone-repeated-query") == 0, out
    assert "repeated-identical-query" not in out
