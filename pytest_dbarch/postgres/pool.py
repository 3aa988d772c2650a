"""Clones made ahead: ``clone`` tests take a database that already exists.

``CREATE DATABASE ... TEMPLATE`` is most of a clone test's cost, and opening the
first connection to the new database (a new backend that builds its catalog caches
from scratch) most of the rest. A background thread keeps a few clones of a template
ready, each with a connection already open, so a test takes one at once and the next
one is made while it runs; dropping used ones already happens off the critical path
(``janitor.drop_later``). The clones belong to the janitor from the moment they are
named, so ``Janitor.close`` drops whatever the pool still holds; ``close`` closes
the connections nobody took.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

import psycopg

from pytest_dbarch.origin import background_statements
from pytest_dbarch.postgres.janitor import Janitor, create_statement

Ready = tuple[str, "psycopg.Connection[Any] | None"]


class ClonePool:
    """Up to ``size`` ready clones of ``template``, each with an open connection."""

    def __init__(self, janitor: Janitor, conninfo: dict[str, Any], template: str, size: int = 2) -> None:
        self._janitor = janitor
        self._conninfo = conninfo
        self._template = template
        self._size = max(1, size)
        self._ready: collections.deque[Ready] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._fill, name=f"dbarch-clones-{template}", daemon=True)
        self._thread.start()

    def take(self) -> Ready:
        """A ready clone and a connection to it (None if it could not be opened ahead:
        the test then connects itself and sees why); waits for the one being made
        when none is ready."""
        with self._cond:
            while not self._ready and self._error is None and not self._closing:
                self._cond.wait()
            if self._ready:
                ready = self._ready.popleft()
                self._cond.notify_all()
                return ready
        # The background connection failed: make one here, which raises the real error.
        return self._janitor.create(self._janitor.new_name("t"), self._template), None

    def _fill(self) -> None:
        try:
            with background_statements(), psycopg.connect(**self._conninfo, autocommit=True) as conn:
                major = conn.info.server_version // 10000
                while True:
                    with self._cond:
                        while len(self._ready) >= self._size and not self._closing:
                            self._cond.wait()
                        if self._closing:
                            return
                    name = self._janitor.adopt(self._janitor.new_name("t"))
                    conn.execute(create_statement(name, self._template, major))
                    first = self._open(name)
                    with self._cond:
                        if self._closing:  # closed meanwhile: nobody will take it
                            if first is not None:
                                first.close()
                            return
                        self._ready.append((name, first))
                        self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001  (reported through take())
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def _open(self, name: str) -> psycopg.Connection[Any] | None:
        """The clone's first connection, opened as the test would open it."""
        try:
            return psycopg.connect(**{**self._conninfo, "dbname": name})
        except psycopg.Error:
            return None

    def close(self) -> None:
        """Stop making clones; those made stay with the janitor, which drops them, and
        their connections are closed."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=60)
        with self._cond:
            for _, conn in self._ready:
                if conn is not None:
                    conn.close()
            self._ready.clear()
