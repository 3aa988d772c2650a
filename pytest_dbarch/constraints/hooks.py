"""pytest face of the constraint property tests: the ``dbarch_constraints`` fixture and the
``constraints[<table>]`` items.

Registered from ``plugin.py``; importing this module loads neither hypothesis nor
sqlglot nor SQLAlchemy (the fixture and the items import them when used).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_dbarch.collection import in_scope
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.fixtures import fail_on_dbarch_error
from pytest_dbarch.stash import SETTINGS

if TYPE_CHECKING:
    from pytest_dbarch.constraints.api import Constraints


def pytest_configure(config: pytest.Config) -> None:
    from pytest_dbarch.constraints.skips import parse_skips

    try:
        parse_skips(config.stash[SETTINGS].constraints_skip)
    except ValueError as exc:
        raise pytest.UsageError(f"dbarch: {exc}") from None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = config.stash[SETTINGS]
    if not settings.constraints:
        return
    ini = (config.inipath or Path(settings.rootdir) / "pytest.ini").resolve()
    if not in_scope(config, ini):
        return
    from pytest_dbarch.constraints.items import collect

    items.extend(collect(session, config))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Close the databases if only generated items used them (listing tables starts them)."""
    from pytest_dbarch.stash import DATABASES

    databases = session.config.stash.get(DATABASES, None)
    if databases is not None:
        databases.close()


@pytest.fixture
def dbarch_constraints(request: pytest.FixtureRequest, dbarch_psycopg: Any) -> Constraints:
    """Constraint property tests on this test's database: ``.rows(table)`` (hypothesis
    strategy of valid rows), ``.fill(table, n)``, ``.factory(Model)``, ``.check(*tables)``."""
    from pytest_dbarch.constraints.api import Constraints
    from pytest_dbarch.constraints.skips import Skips, parse_skips
    from pytest_dbarch.models import load_models

    settings = request.config.stash[SETTINGS]

    def models() -> Any:
        try:
            return load_models(settings)
        except DbarchError as exc:
            fail_on_dbarch_error(exc)

    def session() -> Any:
        return request.getfixturevalue("dbarch_session")

    return Constraints(dbarch_psycopg, models=models, session=session, seed=request.node.nodeid,
                       skips=Skips(parse_skips(settings.constraints_skip)))
