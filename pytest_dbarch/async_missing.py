"""Stand-ins for the async fixtures when pytest-asyncio is not active: they say why."""

from __future__ import annotations

import pytest

_WHY = (
    "pytest-dbarch: {name} needs pytest-asyncio: pip install pytest-asyncio "
    "(or 'pytest-dbarch[dev]'), and do not disable it with -p no:asyncio"
)


@pytest.fixture
def dbarch_async_engine() -> None:
    """A SQLAlchemy AsyncEngine on this test's database (needs pytest-asyncio)."""
    pytest.fail(_WHY.format(name="dbarch_async_engine"), pytrace=False)


@pytest.fixture
def dbarch_async_session() -> None:
    """A SQLAlchemy AsyncSession on this test's database (needs pytest-asyncio)."""
    pytest.fail(_WHY.format(name="dbarch_async_session"), pytrace=False)
