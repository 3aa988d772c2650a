"""Creates and drops the session's databases, and only those.

Unlike pytest-postgresql's ``DatabaseJanitor`` (a new connection per create or drop),
one autocommit admin connection lives for the session, and drops happen on a second
connection in a background thread: ``DROP DATABASE`` waits in 100 ms steps while the
test's backend is still exiting, and that wait must not sit between two tests.
Every name is quoted with ``psycopg.sql.Identifier``; a name this janitor did not
create is refused.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import secrets
import threading
from typing import Any

import psycopg
from psycopg import sql

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.origin import background_statements, plugin_statements


_STOP_NOW = "\0stop"  # the drop thread's signal to stop without draining its queue


class Janitor:
    """Owner of every database the session creates on one server."""

    def __init__(self, conninfo: dict[str, Any], major: int, worker: str = "main") -> None:
        self._conninfo = conninfo
        self._major = major
        self.prefix = f"dbarch_{secrets.token_hex(3)}_{worker}"
        self._owned: set[str] = set()
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._admin = psycopg.connect(**conninfo, autocommit=True)
        self._drops: queue.Queue[str | None] = queue.Queue()
        self._dropper: threading.Thread | None = None
        self._drop_errors: list[str] = []

    def __enter__(self) -> Janitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def new_name(self, label: str = "t") -> str:
        return f"{self.prefix}_{label}{next(self._counter)}"

    def create(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE, from ``template`` if given."""
        with self._lock, plugin_statements():
            self._owned.add(name)
            self._admin.execute(create_statement(name, template, self._major))
        return name

    def adopt(self, name: str) -> str:
        """Own ``name`` before another connection creates it (the clone pool), so
        ``close`` drops it whatever happens."""
        with self._lock:
            self._owned.add(name)
        return name

    def release(self, name: str) -> None:
        """Stop owning ``name``: it outlives the session (a kept failed test's clone)."""
        with self._lock:
            self._owned.discard(name)

    def disconnect(self, name: str) -> None:
        """End other sessions on ``name`` (e.g. an env.py that never closed its engine),
        so it can serve as a template."""
        self._check_owned(name)
        with self._lock, plugin_statements():
            self._admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )

    def owns(self, name: str) -> bool:
        return name in self._owned

    def _check_owned(self, name: str) -> None:
        if name not in self._owned:
            raise DbarchError(
                f"refusing to drop database {name!r}: this session did not create it",
                "pytest-dbarch only ever drops databases it created",
            )

    def drop(self, name: str) -> None:
        """Drop now, waiting for it (used at session end and for rebuilds)."""
        self._check_owned(name)
        with self._lock, plugin_statements():
            drop_database(self._admin, name, self._major)
            self._owned.discard(name)

    def drop_later(self, name: str) -> None:
        """Queue a drop on the background connection; the next test does not wait."""
        self._check_owned(name)
        if self._dropper is None:
            self._dropper = threading.Thread(target=self._drop_loop, daemon=True)
            self._dropper.start()
        self._drops.put(name)

    def _drop_loop(self) -> None:
        with background_statements(), psycopg.connect(**self._conninfo, autocommit=True) as conn:
            while (name := self._drops.get()) not in (None, _STOP_NOW):
                try:
                    drop_database(conn, name, self._major)
                    with self._lock:
                        self._owned.discard(name)
                except psycopg.Error as exc:
                    self._drop_errors.append(f"{name}: {exc}")

    def close(self, *, drop: bool = True) -> None:
        """Finish queued drops, drop what is left, close the admin connection.

        ``drop=False`` when the whole server is about to be thrown away and nobody
        else uses it: dropping first would only delay that."""
        if self._dropper is not None:
            if not drop:
                with contextlib.suppress(queue.Empty):
                    while True:
                        self._drops.get_nowait()
            self._drops.put(None if drop else _STOP_NOW)
            self._dropper.join(timeout=60)
            self._dropper = None
        # Templates last: a database cannot be dropped while it serves as a template.
        for name in sorted(self._owned, key=lambda n: "_template" in n) if drop else ():
            try:
                self.drop(name)
            except psycopg.Error as exc:
                self._drop_errors.append(f"{name}: {exc}")
        if not self._admin.closed:
            self._admin.close()

    @property
    def drop_errors(self) -> list[str]:
        return list(self._drop_errors)


def create_statement(name: str, template: str | None, major: int) -> sql.Composed:
    """CREATE DATABASE, copying files (FILE_COPY) rather than WAL-logging every block:
    faster for the small databases tests use."""
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    if major >= 15:
        query += sql.SQL(" STRATEGY FILE_COPY")
    return query


def drop_database(conn: psycopg.Connection[Any], name: str, major: int) -> None:
    ident = sql.Identifier(name)
    if major >= 13:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        return
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))
