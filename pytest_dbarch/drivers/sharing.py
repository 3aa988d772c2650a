"""Which fixtures share a connection, and what a test that mixes drivers gets.

In ``transaction`` isolation the fixtures of one driver share one connection and one
rolled-back transaction. A psycopg2 or asyncpg connection cannot join the transaction
of psycopg 3's connection (nor each other's): each would see none of the other's rows,
and a write by one could wait forever on a lock the other holds. So a test that asks
for fixtures of more than one such family runs in ``clone`` isolation instead: a
database of its own, where every connection commits for real. An explicit
``@pytest.mark.dbarch(isolation="transaction")`` on such a test is an error that says so.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from pytest_dbarch.errors import DbarchError

#: Fixture families: the fixtures in one family share one connection (transaction mode).
FAMILIES: dict[str, frozenset[str]] = {
    "psycopg 3": frozenset({"dbarch_engine", "dbarch_connection", "dbarch_session", "dbarch_psycopg"}),
    "psycopg 3 async": frozenset({"dbarch_async_engine", "dbarch_async_session"}),
    "psycopg2": frozenset({"dbarch_psycopg2", "dbarch_psycopg2_engine"}),
    "asyncpg": frozenset({"dbarch_asyncpg", "dbarch_asyncpg_engine"}),
}
_DRIVER_FAMILIES = ("psycopg2", "asyncpg")


def families(fixturenames: Iterable[str]) -> dict[str, list[str]]:
    """The families a test's fixtures belong to, with the fixtures of each."""
    names = set(fixturenames)
    found = {family: sorted(names & members) for family, members in FAMILIES.items()}
    return {family: members for family, members in found.items() if members}


def mixes_drivers(fixturenames: Iterable[str]) -> bool:
    """True when a psycopg2 or asyncpg fixture meets fixtures of another family."""
    found = families(fixturenames)
    return len(found) > 1 and any(family in found for family in _DRIVER_FAMILIES)


def move_mixed_tests_to_clone(items: Iterable[pytest.Item]) -> None:
    """Mark each test that mixes drivers ``dbarch(isolation="clone")``, unless its
    own marker chose an isolation."""
    for item in items:
        if not mixes_drivers(getattr(item, "fixturenames", ())):
            continue
        marker = item.get_closest_marker("dbarch")
        if marker is None or marker.kwargs.get("isolation") is None:
            item.add_marker(pytest.mark.dbarch(isolation="clone"))


def refuse_shared_transaction(fixture: str, fixturenames: Iterable[str], isolation: str) -> None:
    """Raise when a test insists on transaction isolation while mixing drivers."""
    if isolation != "transaction" or not mixes_drivers(fixturenames):
        return
    found = families(fixturenames)
    own = next(family for family, members in FAMILIES.items() if fixture in members)
    others = ", ".join(f"{', '.join(members)} ({family})" for family, members in found.items() if family != own)
    raise DbarchError(
        f"{fixture} ({own}) and {others} cannot share one transaction: each driver has a "
        "connection of its own, so in transaction isolation neither would see the other's rows",
        "remove isolation='transaction' from the test's dbarch marker (a test that mixes drivers "
        "then runs in clone isolation, where every connection commits for real), or use the "
        "fixtures of one driver only",
    )


def asyncpg_dsn(url: str) -> str:
    """asyncpg takes ``postgresql://`` URLs only: the test's URL without the driver part."""
    return "postgresql://" + url.split("://", 1)[1]
