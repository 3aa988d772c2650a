"""A small HTTP layer over the CRM (Starlette, as FastAPI runs it): what API tests go
through. The app gets a session factory, so tests hand it their isolated session while
production would hand it ``sessionmaker(engine)``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crm.models import Account
from crm.reports import contacts_per_account, contacts_per_account_slow


def make_app(new_session: Callable[[], AbstractContextManager[Session]]) -> Starlette:
    """The CRM's HTTP API; one session per request, as in production."""

    async def account(request: Request) -> JSONResponse:
        with new_session() as session:
            found = session.get(Account, uuid.UUID(request.path_params["id"]))
            if found is None:
                return JSONResponse({"detail": "not found"}, status_code=404)
            return JSONResponse({"id": str(found.id), "name": found.name})

    def report(request: Request) -> JSONResponse:  # sync: Starlette runs it in a worker thread
        with new_session() as session:
            return JSONResponse(contacts_per_account(session))

    def slow_report(request: Request) -> JSONResponse:
        with new_session() as session:
            return JSONResponse(contacts_per_account_slow(session))

    return Starlette(
        routes=[
            Route("/accounts/{id}", account),
            Route("/reports/contacts", report),
            Route("/reports/contacts-slow", slow_report),
        ]
    )
