"""Stand-ins for the asyncpg fixtures when pytest-asyncio is not active: they say why."""

from __future__ import annotations

import pytest

_WHY = (
    "pytest-dbarch: {name} needs pytest-asyncio: pip install pytest-asyncio "
    "(or 'pytest-dbarch[dev]'), and do not disable it with -p no:asyncio"
)


@pytest.fixture
def dbarch_asyncpg() -> None:
    """A raw asyncpg connection on this test's database (needs pytest-asyncio)."""
    pytest.fail(_WHY.format(name="dbarch_asyncpg"), pytrace=False)


@pytest.fixture
def dbarch_asyncpg_engine() -> None:
    """A SQLAlchemy AsyncEngine on asyncpg on this test's database (needs pytest-asyncio)."""
    pytest.fail(_WHY.format(name="dbarch_asyncpg_engine"), pytrace=False)
