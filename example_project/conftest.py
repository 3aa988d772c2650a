"""Project fixtures on top of pytest-dbarch's ``dbarch_*`` fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from crm import factories


@pytest.fixture
def bind_factories(dbarch_session: Session) -> Iterator[None]:
    """Bind the factory-boy factories to this test's isolated session."""
    factories.bind_factories(dbarch_session)
    try:
        yield
    finally:
        factories.bind_factories(None)
