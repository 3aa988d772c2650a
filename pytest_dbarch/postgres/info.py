"""What the ``dbarch_server`` fixture hands out: where the server is and how to reach it.

The password stays out of every repr: ``params["password"]`` is a ``Password`` and
``dsn()`` / ``url()`` return ``Redacted`` strings, so tracebacks and ``--showlocals``
of anything holding them (test databases, settings, fixtures) print ``***``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from psycopg.conninfo import make_conninfo

from pytest_dbarch.redact import MASK, Password, Redacted


@dataclass(frozen=True)
class ServerInfo:
    """A PostgreSQL server in use by the session.

    ``mode`` is ``local`` (started by the plugin) or ``external`` (given by DSN);
    ``source`` says where the binaries or the DSN came from.
    """

    mode: str
    version: str
    source: str
    params: dict[str, Any] = field(repr=False)
    maintenance_db: str = "postgres"

    def __post_init__(self) -> None:
        password = self.params.get("password")
        if password is not None and not isinstance(password, Password):
            object.__setattr__(self, "params", {**self.params, "password": Password(password)})

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def conninfo(self, dbname: str | None = None) -> dict[str, Any]:
        return {**self.params, "dbname": dbname or self.maintenance_db}

    def dsn(self, dbname: str | None = None) -> Redacted:
        """A libpq connection string for ``dbname`` (contains the password, if any; its
        repr does not)."""
        return Redacted(make_conninfo(**self.conninfo(dbname)))

    def url(self, dbname: str | None = None, driver: str = "psycopg") -> Redacted:
        """A SQLAlchemy URL for ``dbname`` (contains the password, if any; its repr does not)."""
        params = self.conninfo(dbname)
        user = quote(str(params.get("user", "")), safe="")
        password = params.get("password")
        auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
        host = str(params.get("host", ""))
        query = {k: str(v) for k, v in params.items() if k not in ("user", "password", "host", "port", "dbname")}
        if host.startswith("/"):
            netloc = auth
            query = {"host": host, "port": str(params.get("port", 5432)), **query}
        else:
            netloc = auth + host + (f":{params['port']}" if params.get("port") else "")
        tail = "&".join(f"{k}={quote(v, safe='/')}" for k, v in query.items())
        return Redacted(
            f"postgresql+{driver}://{netloc}/{quote(str(params['dbname']), safe='')}" + (f"?{tail}" if tail else "")
        )

    def safe_dsn(self, dbname: str | None = None) -> str:
        """The DSN with any password masked: the only form that is ever printed."""
        params = self.conninfo(dbname)
        if params.get("password"):
            params["password"] = MASK
        return make_conninfo(**params)
