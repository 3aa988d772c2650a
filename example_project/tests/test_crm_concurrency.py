"""Races in the CRM, caught by pytest-dbarch's concurrency harness.

``dbarch_concurrency`` runs code on connections of its own, so these tests run in
``clone`` isolation (switched on by the fixture) and their arrange step commits.
The naive versions in ``crm/races.py`` are shown failing with ``expect_race``: the
race is recorded as reproduced, and the test would fail if it ever stopped happening.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.orm import Session

from crm import races
from crm.models import Lead, Opportunity
from crm.services import close_opportunity, create_account

ONE_CONTACT = (
    "SELECT count(*) = 1 AND bool_and(c.id = l.converted_contact_id) "
    "FROM contacts c JOIN leads l ON l.email = c.email"
)


def in_session(harness: Any, operation: Callable[..., Any], *args: Any) -> Callable[..., Any]:
    """A worker that runs one service call in an ORM session on the worker's own
    connection and commits it, as a request handler would."""

    def work(conn: Any, worker: int | None = None) -> None:
        with harness.session(conn) as session:
            operation(session, *args)
            session.commit()

    return work


@pytest.fixture
def lead(dbarch_session: Session) -> tuple[uuid.UUID, uuid.UUID]:
    """A new lead and the account it converts into, committed so every worker sees them."""
    account = create_account(dbarch_session, "Initech")
    lead = Lead(first_name="Ada", last_name="Lovelace", email="ada@example.com", company="Initech")
    dbarch_session.add(lead)
    dbarch_session.commit()
    return lead.id, account.id


@pytest.fixture
def opportunity(dbarch_session: Session) -> uuid.UUID:
    """An open opportunity worth 100.00, committed."""
    account = create_account(dbarch_session, "Globex")
    opp = Opportunity(account_id=account.id, name="Globex renewal", amount=Decimal("100.00"))
    dbarch_session.add(opp)
    dbarch_session.commit()
    return opp.id


# --- lead conversion: two clicks on "Convert" must make one contact
def test_naive_lead_conversion_races(dbarch_concurrency: Any, lead: tuple[uuid.UUID, uuid.UUID]) -> None:
    convert = in_session(dbarch_concurrency, races.convert_lead_naive, *lead)
    with dbarch_concurrency.expect_race("worker-error") as race:
        result = dbarch_concurrency.schedule(A=convert, B=convert).run(
            "A select",  # A reads the lead: 'new'
            "B select",  # B reads it too: still 'new'
            "A insert",  # A makes the contact
            "B insert",  # B makes one with the same email: it waits for A (unique index)
            "A update",  # A marks the lead converted
            "A commit",  # B's insert now fails: duplicate key
            invariant=ONE_CONTACT,
        )
    assert "IntegrityError [23505]: duplicate key value violates unique constraint \"ux_contacts_email_live\"" in (
        race.findings[0].title)
    assert result.invariant_held  # the unique index saved the data; the second request crashed


def test_locked_lead_conversion_makes_one_contact(dbarch_concurrency: Any, lead: tuple[uuid.UUID, uuid.UUID]) -> None:
    convert = in_session(dbarch_concurrency, races.convert_lead_locked, *lead)
    result = dbarch_concurrency.schedule(A=convert, B=convert).run(
        "A select",  # A reads and locks the lead
        "B select",  # B waits for A's lock
        "A insert",
        "A update",
        "A commit",  # B goes on, reads 'converted', returns A's contact
        "B commit",
        invariant=ONE_CONTACT,
    )
    assert result.steps[1].outcome == "blocked by A"
    dbarch_concurrency.run(convert, workers=4, repeat=3, invariant=ONE_CONTACT)


def test_idempotent_lead_conversion_makes_one_contact(
    dbarch_concurrency: Any, lead: tuple[uuid.UUID, uuid.UUID]
) -> None:
    convert = in_session(dbarch_concurrency, races.convert_lead_idempotent, *lead)
    dbarch_concurrency.schedule(A=convert, B=convert).run(
        "A select", "B select", "A insert", "B insert", "A select", "A update", "A commit",
        invariant=ONE_CONTACT,
    )
    dbarch_concurrency.run(convert, workers=4, repeat=3, invariant=ONE_CONTACT)


# --- opportunity amounts: two adjustments of +10 and +20 must add up to 130.00
def adjustments(harness: Any, operation: Callable[..., Any], opp_id: uuid.UUID) -> dict[str, Any]:
    return {"A": in_session(harness, operation, opp_id, Decimal("10")),
            "B": in_session(harness, operation, opp_id, Decimal("20"))}


def amount_is(expected: str) -> str:
    return f"SELECT amount = {expected} FROM opportunities WHERE name = 'Globex renewal'"


def test_naive_amount_update_loses_an_update(dbarch_concurrency: Any, opportunity: uuid.UUID) -> None:
    transactions = adjustments(dbarch_concurrency, races.add_to_amount_naive, opportunity)
    with dbarch_concurrency.expect_race("lost-update"):
        dbarch_concurrency.schedule(**transactions).run(
            "A select",  # A reads 100.00
            "B select",  # B reads 100.00
            "A update",  # A writes 110.00
            "B update",  # B writes 120.00: waits for A's row lock
            "A commit",  # B's write goes through, over A's
            "B commit",
            invariant=amount_is("130.00"),
        )


def test_locked_amount_update_adds_up(dbarch_concurrency: Any, opportunity: uuid.UUID) -> None:
    transactions = adjustments(dbarch_concurrency, races.add_to_amount_locked, opportunity)
    dbarch_concurrency.schedule(**transactions).run(
        "A select", "B select", "A update", "A commit", "B update", "B commit", invariant=amount_is("130.00"))

    def add_one(conn: Any, worker: int) -> None:
        in_session(dbarch_concurrency, races.add_to_amount_locked, opportunity, Decimal("1"))(conn)

    dbarch_concurrency.run(add_one, workers=4, repeat=5, invariant=amount_is("150.00"))


def test_serializable_without_retry_fails(dbarch_concurrency: Any, opportunity: uuid.UUID) -> None:
    transactions = adjustments(dbarch_concurrency, races.add_to_amount_naive, opportunity)
    with dbarch_concurrency.expect_race("serialization-failure"):
        dbarch_concurrency.schedule(isolation_level="serializable", **transactions).run(
            "A select", "B select", "A update", "B update", "A commit", invariant=amount_is("110.00"))


def test_serializable_with_retry_adds_up(dbarch_concurrency: Any, opportunity: uuid.UUID) -> None:
    def add_one(conn: Any, worker: int) -> None:
        in_session(dbarch_concurrency, races.add_to_amount_naive, opportunity, Decimal("1"))(conn)

    dbarch_concurrency.run(add_one, workers=4, repeat=5, isolation_level="serializable", retry=20,
                           invariant=amount_is("120.00"))


# --- an existing service, already written for concurrency
def test_close_opportunity_twice_closes_it_once(dbarch_concurrency: Any, opportunity: uuid.UUID) -> None:
    """``close_opportunity`` locks the row: of four simultaneous closes one wins, the
    others see it closed and are refused (a ValueError the request handler expects)."""

    def close(conn: Any, worker: int) -> None:
        with dbarch_concurrency.session(conn) as session:
            try:
                close_opportunity(session, opportunity, won=worker % 2 == 0)
            except ValueError:
                return  # "already won/lost": the double submit is refused
            session.commit()

    dbarch_concurrency.run(
        close, workers=4,
        invariant="SELECT count(*) = 1 FROM audit_log WHERE table_name = 'opportunities' AND action = 'update'",
    )
