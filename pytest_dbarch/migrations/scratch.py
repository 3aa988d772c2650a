"""The disposable databases migration checks run in.

Each is created empty from ``template0`` (never from the user's template or
``template1``, which an administrator may have filled) by the session's janitor, so it
is dropped on every exit path with the session's other databases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from pytest_dbarch.errors import SchemaError

if TYPE_CHECKING:
    from pytest_dbarch.postgres.databases import Databases


@dataclass(frozen=True)
class ScratchDatabase:
    name: str
    url: str
    dsn: str


class Scratch:
    """Creates empty databases (with the configured extensions) and drops them."""

    def __init__(self, databases: Databases, extensions: tuple[str, ...] = ()) -> None:
        self.databases = databases
        self.extensions = extensions
        self._dropping: list[str] = []  # queued for a background drop, not yet known gone

    def create(self, template: str | None = None) -> ScratchDatabase:
        """An empty database with the configured extensions, or a copy of ``template``
        (a checkpoint this Scratch made)."""
        server = self.databases.start()
        janitor = self.databases.janitor
        assert janitor is not None
        name = janitor.create(janitor.new_name("migrations"), template or "template0")
        database = ScratchDatabase(name, server.url(name), server.dsn(name))
        if self.extensions and template is None:
            with psycopg.connect(database.dsn, autocommit=True) as conn:
                for ext in self.extensions:
                    try:
                        conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))
                    except psycopg.Error as exc:
                        self.drop(database)
                        raise SchemaError(
                            f"extension {ext!r} could not be created: {str(exc).strip()}",
                            "install it for this server version or remove it from dbarch_extensions",
                        ) from None
        return database

    def copy(self, database: ScratchDatabase) -> str:
        """A template copy of ``database`` (a checkpoint); its name. Sessions still on
        ``database`` (an env.py that never closed its engine) are ended first."""
        janitor = self.databases.janitor
        assert janitor is not None
        janitor.disconnect(database.name)
        return janitor.create(janitor.new_name("checkpoint"), database.name)

    def drop(self, database: ScratchDatabase) -> None:
        self.drop_name(database.name)

    def drop_name(self, name: str) -> None:
        """Dropped on the janitor's background connection: a walk that replaces its
        database (a rebuild, a new checkpoint) does not wait for the files to go.
        ``settle()`` waits for them."""
        janitor = self.databases.janitor
        if janitor is not None and janitor.owns(name):
            janitor.drop_later(name)
            self._dropping.append(name)

    def settle(self, timeout: float = 60.0) -> None:
        """Return when every database this Scratch dropped is gone, so none outlives the
        run that made it; a background drop that failed is tried once more, waiting."""
        import time

        janitor = self.databases.janitor
        if janitor is None:
            return
        deadline = time.monotonic() + timeout
        while any(janitor.owns(n) for n in self._dropping) and time.monotonic() < deadline:
            time.sleep(0.005)
        for name in self._dropping:
            if janitor.owns(name):
                janitor.drop(name)
        self._dropping.clear()
