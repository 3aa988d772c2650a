"""Clones made ahead: ``clone`` tests take a database that already exists.

``CREATE DATABASE ... TEMPLATE`` is most of a clone test's cost. A background thread
keeps a few clones of a template ready on a connection of its own, so a test takes
one at once and the next one is made while it runs; dropping used ones already
happens off the critical path (``janitor.drop_later``). The clones belong to the
janitor from the moment they are named, so ``Janitor.close`` drops whatever the pool
still holds.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

import psycopg

from pytest_dbarch.origin import background_statements
from pytest_dbarch.postgres.janitor import Janitor, create_statement


class ClonePool:
    """Up to ``size`` ready clones of ``template``."""

    def __init__(self, janitor: Janitor, conninfo: dict[str, Any], template: str, size: int = 2) -> None:
        self._janitor = janitor
        self._conninfo = conninfo
        self._template = template
        self._size = max(1, size)
        self._ready: collections.deque[str] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._fill, name=f"dbarch-clones-{template}", daemon=True)
        self._thread.start()

    def take(self) -> str:
        """A ready clone; waits for the one being made when none is."""
        with self._cond:
            while not self._ready and self._error is None and not self._closing:
                self._cond.wait()
            if self._ready:
                name = self._ready.popleft()
                self._cond.notify_all()
                return name
        # The background connection failed: make one here, which raises the real error.
        return self._janitor.create(self._janitor.new_name("t"), self._template)

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
                    with self._cond:
                        self._ready.append(name)
                        self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001  (reported through take())
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def close(self) -> None:
        """Stop making clones; those made stay with the janitor, which drops them."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=60)
