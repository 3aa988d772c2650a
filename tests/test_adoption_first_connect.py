"""Issue 15, point 4: what SQLAlchemy's dialect sends on an engine's first connection
(server version, schema, isolation level, type oids) is the driver's own work: it
never counts toward a budget or an N+1 rule, so a count does not depend on which test
connected first. (Loops in test code around application calls are covered in
test_queries_nplusone.py.)"""

from __future__ import annotations

import pytest

TESTS = '''
import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine


@pytest.mark.max_queries(1)
def test_first_connection_of_a_new_engine(dbarch_url, dbarch_queries):
    engine = create_engine(dbarch_url)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    engine.dispose()
    assert [s.sql for s in dbarch_queries.queries] == ["SELECT 1"]
    assert any("version()" in s.sql for s in dbarch_queries.statements), "still in the log, not counted"


@pytest.mark.asyncio
@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
@pytest.mark.max_queries(1)
async def test_first_connection_of_an_async_engine(dbarch_url, dbarch_queries, driver):
    engine = create_async_engine(make_url(dbarch_url).set(drivername=f"postgresql+{driver}"))
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    await engine.dispose()
    assert [s.sql for s in dbarch_queries.queries] == ["SELECT 1"]
'''


def test_dialect_first_connect_queries_never_count(external_pytester: pytest.Pytester) -> None:
    external_pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    external_pytester.makepyfile(test_first=TESTS)
    result = external_pytester.runpytest("-p", "no:randomly", "--dbarch-nplusone=error")
    result.assert_outcomes(passed=3)
