"""A SQLAlchemy ORM Session on a worker's connection, for application code written with it.

The engine hands out exactly the worker's connection (a ``StaticPool`` over it, no
reset on return), so the session's statements and its ``commit()`` are the worker's:
recorded, and in a schedule, steps. SQLAlchemy's first-connect queries (server version,
settings) and the rollback that ends them are sent outside any step, once per
connection, which is why the session must be made while no transaction is open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_dbarch.concurrency.connections import WorkerConnection
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.origin import plugin_statements

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def session_for(conn: Any, **options: Any) -> Session:
    """An ORM ``Session`` bound to ``conn`` (a worker's connection); ``options`` go to ``Session``."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session
    from sqlalchemy.pool import StaticPool

    if not isinstance(conn, WorkerConnection):
        raise DbarchError(
            f"dbarch_concurrency.session() needs a worker's connection, got {type(conn).__name__}",
            "call it inside the worker function with the connection it was given",
        )
    engine = getattr(conn, "dbarch_engine", None)
    if engine is None:
        if conn.in_transaction:
            raise DbarchError(
                "dbarch_concurrency.session(conn) was first called inside an open transaction: "
                "SQLAlchemy's first-connect queries end with a rollback that would undo it",
                "make the session at the start of the worker function, before any statement on conn",
            )
        engine = create_engine("postgresql+psycopg://", creator=lambda: conn, poolclass=StaticPool,
                               pool_reset_on_return=None)
        recorder = conn.dbarch_recorder
        with plugin_statements():
            if recorder is not None:
                with recorder.ungated():
                    engine.connect().close()
            else:
                engine.connect().close()
        conn.dbarch_engine = engine  # type: ignore[attr-defined]
    return Session(bind=engine, **options)
