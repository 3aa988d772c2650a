"""Use an existing server given by DSN, after checking it can serve the session.

The plugin creates its own uniquely named databases there (see ``janitor``) and drops
only those; it never alters the databases it finds.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from pytest_dbarch.errors import ExternalServerError
from pytest_dbarch.postgres.info import ServerInfo

POSTGRES_SCHEMES = ("postgres", "postgresql")
FIX_DSN = "set --dbarch-dsn / DBARCH_DSN to postgresql://user:password@host:port/dbname, or unset it"


def parse_dsn(dsn: str) -> dict[str, Any]:
    """The DSN as libpq parameters; rejects anything that is not PostgreSQL."""
    text = dsn.strip()
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        base, _, driver = scheme.partition("+")
        if base not in POSTGRES_SCHEMES:
            raise ExternalServerError(f"the DSN is a {scheme!r} URL, not PostgreSQL", FIX_DSN)
        if driver:  # a SQLAlchemy URL such as postgresql+psycopg://
            text = "postgresql://" + text.split("://", 1)[1]
    try:
        return conninfo_to_dict(text)
    except psycopg.ProgrammingError as exc:
        raise ExternalServerError(f"the DSN cannot be parsed: {exc}", FIX_DSN) from None


def _masked(params: dict[str, Any]) -> str:
    shown = {k: v for k, v in params.items() if k != "password"}
    return " ".join(f"{k}={v}" for k, v in shown.items()) or "(defaults)"


def connect_external(dsn: str, source: str) -> ServerInfo:
    """Check connection and CREATEDB right, and describe the server."""
    params = parse_dsn(dsn)
    maintenance = params.pop("dbname", None) or "postgres"
    try:
        with psycopg.connect(
            **{"connect_timeout": 5, **params}, dbname=maintenance, autocommit=True
        ) as conn:
            version = str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]  # type: ignore[index]
            can_create = conn.execute(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            user = conn.info.user
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ExternalServerError(
            f"cannot connect to the server from {source} ({_masked(params)}): {reason}",
            "check that the server runs and the DSN's host, port, user and password are "
            "right; " + FIX_DSN,
        ) from None
    if not (can_create and can_create[0]):
        raise ExternalServerError(
            f"role {user!r} on the server from {source} may not create databases",
            f"ALTER ROLE {user} CREATEDB; (pytest-dbarch creates and drops its own "
            "databases there), or use a role that can",
        )
    return ServerInfo("external", version, f"{source} ({_masked(params)})", params, maintenance)
