"""Issue 15, point 2, asyncio: statements run in tasks a test starts (``create_task``,
``gather``, anyio task groups) and in the worker threads those tasks hand sync code to
(an ``httpx.AsyncClient`` over ``ASGITransport`` calling a sync endpoint) belong to the
test line that caused them, as the threads of a ``TestClient`` do. And the README's
FastAPI recipe, run as written."""

from __future__ import annotations

import importlib.util

import pytest

from tests.queries_support import project

pytest.importorskip("starlette")
HTTPX = "httpx" if importlib.util.find_spec("httpx") else "httpx2"
if importlib.util.find_spec(HTTPX) is None:
    pytest.skip("needs httpx or httpx2", allow_module_level=True)

WEBAPP = '''
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from models import Account


def make_app(session, async_session=None):
    def account(request):  # a sync endpoint: Starlette runs it in a worker thread
        found = session.execute(
            select(Account.id).where(Account.name == request.path_params["name"])
        ).scalar_one()
        return JSONResponse({"found": found > 0})

    def accounts_with_contacts(request):
        return JSONResponse(
            {account.name: len(account.contacts) for account in session.scalars(select(Account)).all()}
        )

    async def async_account(request):  # runs in the request's own task
        found = (await async_session.execute(
            select(Account.id).where(Account.name == request.path_params["name"])
        )).scalar_one()
        return JSONResponse({"found": found > 0})

    return Starlette(routes=[
        Route("/accounts/{name}", account),
        Route("/accounts", accounts_with_contacts),
        Route("/async/accounts/{name}", async_account),
    ])


async def account_id(raw, name):
    cursor = await raw.execute("SELECT id FROM accounts WHERE name = %s", (name,))
    return (await cursor.fetchone())[0]
'''

API_TESTS = '''
import asyncio

import anyio
import HTTPX as httpx
import psycopg
import pytest
import pytest_asyncio

from webapp import account_id, make_app

SEED = "INSERT INTO accounts (name) VALUES ('a1'), ('a2'), ('a3')"


@pytest_asyncio.fixture
async def raw(dbarch_async_session):
    \"\"\"The async session's psycopg connection, with accounts of its own (another transaction).\"\"\"
    raw = (await (await dbarch_async_session.connection()).get_raw_connection()).driver_connection
    await raw.execute(SEED)
    return raw


@pytest_asyncio.fixture
async def client(seeded, dbarch_async_session, raw):
    transport = httpx.ASGITransport(app=make_app(seeded, dbarch_async_session))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.mark.asyncio
async def test_two_requests_to_a_sync_endpoint(client):
    assert (await client.get("/accounts/a1")).json() == {"found": True}
    assert (await client.get("/accounts/a2")).json() == {"found": True}


@pytest.mark.asyncio
async def test_two_requests_to_an_async_endpoint(client):
    assert (await client.get("/async/accounts/a1")).json() == {"found": True}
    assert (await client.get("/async/accounts/a2")).json() == {"found": True}


@pytest.mark.asyncio
async def test_a_loop_of_requests(client):
    for name in ("a1", "a2", "a3"):
        await client.get(f"/accounts/{name}")


@pytest.mark.asyncio
async def test_a_loop_of_requests_to_an_async_endpoint(client):
    for name in ("a1", "a2", "a3"):
        await client.get(f"/async/accounts/{name}")


@pytest.mark.asyncio
async def test_a_loop_inside_the_endpoint(client):
    assert (await client.get("/accounts")).json() == {"a1": 2, "a2": 2, "a3": 2}


@pytest.mark.asyncio
async def test_two_tasks_on_two_lines(raw):
    first = asyncio.create_task(account_id(raw, "a1"))
    second = asyncio.create_task(account_id(raw, "a2"))
    assert len(set(await asyncio.gather(first, second))) == 2


@pytest.mark.asyncio
async def test_gather_over_a_loop(raw):
    assert len(await asyncio.gather(*[account_id(raw, name) for name in ("a1", "a2", "a3")])) == 3


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_an_anyio_task_group(dbarch_url):
    dsn = dbarch_url.replace("postgresql+psycopg://", "postgresql://")
    async with await psycopg.AsyncConnection.connect(dsn) as own:  # this test's own event loop
        await own.execute(SEED)
        async with anyio.create_task_group() as group:
            group.start_soon(account_id, own, "a1")
            group.start_soon(account_id, own, "a2")
        await own.rollback()
'''.replace("HTTPX", HTTPX)


def test_tasks_and_their_threads_are_attributed_to_the_test_line(external_pytester: pytest.Pytester) -> None:
    project(external_pytester)
    external_pytester.makepyfile(test_api=API_TESTS, webapp=WEBAPP)
    result = external_pytester.runpytest("-p", "no:randomly", "--dbarch-nplusone=error", "-v")
    result.assert_outcomes(passed=7, failed=1)
    result.stdout.fnmatch_lines(["*test_api.py::test_a_loop_inside_the_endpoint FAILED*"])
    out = result.stdout.str()
    # The endpoint's own loop: the N+1 at its line, with the line of the request.
    result.stdout.fnmatch_lines([
        "*?queries.nplusone-lazy-load? N+1: Account.contacts lazy-loaded for 3 parents (3 queries)",
        "    query:  webapp.py:18",
        "    loop:   webapp.py:18  {account.name: len(account.contacts) for account in *",
        "*stack:  webapp.py:18 <- test_api.py:55",
    ])
    # Loops of requests (sync endpoint in a worker thread, async endpoint in the request's
    # task): the client-loop warning, never a failure. A gather over a comprehension: one
    # query per task, the repeats are the test's (a warning too where the comprehension
    # runs in the test's frame, Python 3.12+).
    assert out.count("[queries.nplusone-client-loop]") in (2, 3), out
    for line in (43, 49):
        result.stdout.fnmatch_lines([f"*the test's loop at test_api.py:{line} sends one request per item*"])
    assert "queries.nplusone-repeated-query" not in out
    assert "repeated-identical-query" not in out


FASTAPI_APP = '''
from fastapi import Depends, FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.api.deps import get_async_db, get_db
from models import Account

app = FastAPI()


@app.get("/accounts/{name}")
def account(name: str, db: Session = Depends(get_db)):
    return {"id": db.execute(select(Account.id).where(Account.name == name)).scalar_one()}


@app.get("/accounts")
def contact_counts(db: Session = Depends(get_db)):
    return {account.name: len(account.contacts) for account in db.scalars(select(Account)).all()}


@app.get("/async/accounts/{name}")
async def async_account(name: str, db: AsyncSession = Depends(get_async_db)):
    return {"id": (await db.execute(select(Account.id).where(Account.name == name))).scalar_one()}
'''

FASTAPI_DEPS = '''
def get_db():
    raise RuntimeError("tests must not reach the production database")


async def get_async_db():
    raise RuntimeError("tests must not reach the production database")
'''

#: The README's recipe (section "Adopting the plugin in a web application"), verbatim
#: but for the application's names and the httpx module installed here.
RECIPE_CONFTEST = '''
import pytest
import pytest_asyncio
from fastapi.testclient import TestClient

from app.api.deps import get_async_db, get_db   # the application's session dependencies
from app.main import app


@pytest.fixture
def client(dbarch_session):
    app.dependency_overrides[get_db] = lambda: dbarch_session
    with TestClient(app) as test_client:
        yield test_client
    app.dependency_overrides.clear()


@pytest_asyncio.fixture
async def async_client(dbarch_session, dbarch_async_session):
    import HTTPX as httpx

    app.dependency_overrides[get_db] = lambda: dbarch_session              # sync endpoints
    app.dependency_overrides[get_async_db] = lambda: dbarch_async_session  # async endpoints
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
        yield ac
    app.dependency_overrides.clear()
'''.replace("HTTPX", HTTPX)

RECIPE_TESTS = '''
import pytest
from sqlalchemy import text


@pytest.fixture(autouse=True)
def _seed(seeded):
    pass


def test_two_requests(client):
    assert client.get("/accounts/a1").json()["id"] < client.get("/accounts/a2").json()["id"]


@pytest.mark.asyncio
async def test_two_async_requests(async_client, dbarch_async_session):
    first = (await async_client.get("/accounts/a1")).json()["id"]
    second = (await async_client.get("/accounts/a2")).json()["id"]
    assert first < second
    # The async session has a connection (and transaction) of its own: seed it too.
    await dbarch_async_session.execute(text("INSERT INTO accounts (name) VALUES ('a4')"))
    assert (await async_client.get("/async/accounts/a4")).json()["id"] > 0


@pytest.mark.asyncio
async def test_the_endpoints_loop(async_client):
    assert (await async_client.get("/accounts")).json() == {"a1": 2, "a2": 2, "a3": 2}
'''


def test_the_readme_fastapi_recipe(external_pytester: pytest.Pytester) -> None:
    pytest.importorskip("fastapi")
    project(external_pytester)
    external_pytester.mkdir("app").joinpath("__init__.py").write_text("")
    external_pytester.mkdir("app/api").joinpath("__init__.py").write_text("")
    external_pytester.path.joinpath("app/main.py").write_text(FASTAPI_APP)
    external_pytester.path.joinpath("app/api/deps.py").write_text(FASTAPI_DEPS)
    tests = external_pytester.mkdir("tests")
    tests.joinpath("conftest.py").write_text(RECIPE_CONFTEST)
    tests.joinpath("test_api.py").write_text(RECIPE_TESTS)
    result = external_pytester.runpytest("-p", "no:randomly", "--dbarch-nplusone=error", "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*tests/test_api.py::test_the_endpoints_loop FAILED*",
        "*N+1: Account.contacts lazy-loaded for 3 parents (3 queries)",
        "    query:  app/main.py:20",
        "*stack:  app/main.py:20 <- tests/test_api.py:27",
    ])
