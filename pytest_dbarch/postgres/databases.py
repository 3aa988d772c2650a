"""The session's databases: server, template, the shared work database, per-test ones.

One object owns them all so that one ``close`` releases them on every exit path.
"""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass, field

from pytest_dbarch.config import Settings
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.postgres import template
from pytest_dbarch.postgres.binaries import find_binaries
from pytest_dbarch.postgres.info import ServerInfo
from pytest_dbarch.postgres.isolation import SavepointConnection, TestDatabase, broken_isolation
from pytest_dbarch.postgres.janitor import Janitor
from pytest_dbarch.postgres.server import Listen, LocalServer
from pytest_dbarch.origin import plugin_statements

_OPEN: set[Databases] = set()
_OPEN_LOCK = threading.Lock()


@atexit.register
def _close_all() -> None:
    """Safety net for interpreters that exit without running fixture teardown."""
    for databases in list(_OPEN):
        databases.close()


@dataclass(eq=False)
class Databases:
    settings: Settings
    worker: str = "main"
    server: ServerInfo | None = None
    local: LocalServer | None = None
    janitor: Janitor | None = None
    _templates: dict[template.SchemaSource, str] = field(default_factory=dict)
    _work: dict[str, str] = field(default_factory=dict)
    _idle: dict[str, SavepointConnection] = field(default_factory=dict)
    _addresses: dict[str, tuple[str, str]] = field(default_factory=dict)  # work db: dsn, url

    def start(self) -> ServerInfo:
        """Start (or connect to) the server once; any failure leaves nothing behind."""
        if self.server is not None:
            return self.server
        with _OPEN_LOCK:
            _OPEN.add(self)
        try:
            if self.settings.dsn:
                from pytest_dbarch.postgres.external import connect_external

                self.server = connect_external(self.settings.dsn, self.settings.sources["dsn"])
            else:
                binaries = find_binaries(self.settings.pg_bin)
                self.local = LocalServer.start(
                    binaries,
                    run_as=self.settings.run_as,
                    listen=Listen(self.settings.listen, self.settings.port),
                    options=self.settings.server_options,
                    runtime_dir=self.settings.runtime_dir,
                )
                self.server = ServerInfo(
                    "local",
                    self.local.binaries.version,
                    self.local.binaries.describe() + f", running as {self.local.account.name}",
                    self.local.params(),
                )
            self.janitor = Janitor(self.server.conninfo(), self.server.major, self.worker)
        except BaseException:
            self.close()
            raise
        return self.server

    def template_for(self, source: template.SchemaSource) -> str:
        """The template database with ``source``'s schema, built on first use."""
        if source not in self._templates:
            server, janitor = self.start(), self._janitor()
            name = janitor.create(janitor.new_name("template"))
            self._templates[source] = name
            try:
                with plugin_statements():
                    template.build(source, server.dsn(name), server.url(name))
                janitor.disconnect(name)
            except BaseException:
                del self._templates[source]
                janitor.drop(name)
                raise
        return self._templates[source]

    def _janitor(self) -> Janitor:
        if self.janitor is None:
            raise DbarchError("the database server is not running", "this is a pytest-dbarch bug")
        return self.janitor

    def _work_db(self, tpl: str) -> str:
        """The long-lived clone that transaction-mode tests share."""
        if tpl not in self._work:
            self._work[tpl] = self._janitor().create(self._janitor().new_name("work"), tpl)
        return self._work[tpl]

    def for_test(self, tpl: str, isolation: str) -> TestDatabase:
        """The database a test runs in: a fresh clone of ``tpl``, or the shared work one."""
        server = self.start()
        if isolation == "clone":
            name = self._janitor().create(self._janitor().new_name("t"), tpl)
            return TestDatabase(name, isolation, server.dsn(name), server.url(name))
        name = self._work_db(tpl)
        if name not in self._addresses:  # parsing a conninfo per test costs 0.2 ms
            self._addresses[name] = (server.dsn(name), server.url(name))
        dsn, url = self._addresses[name]
        return TestDatabase(name, isolation, dsn, url, reusable=self._idle.pop(name, None))

    def finish_test(self, db: TestDatabase, nodeid: str) -> None:
        """Undo the test's changes; rebuild the work database if the test leaked."""
        intact, reusable = db.end()
        janitor = self._janitor()
        if db.isolation == "clone":
            if reusable is not None:
                reusable.dbarch_close()
            janitor.drop_later(db.name)
            return
        if reusable is not None:
            self._idle[db.name] = reusable
        if not intact:
            if db.name in self._idle:
                self._idle.pop(db.name).dbarch_close()
            tpl = next(t for t, w in self._work.items() if w == db.name)
            del self._work[tpl]
            janitor.drop(db.name)
            raise broken_isolation(nodeid)

    def close(self) -> None:
        """Drop every database we created, stop the server we started. Idempotent."""
        try:
            for conn in self._idle.values():
                conn.dbarch_close()
            self._idle.clear()
            if self.janitor is not None:
                self.janitor.close()
        finally:
            self.janitor = None
            if self.local is not None:
                self.local.stop()
                self.local = None
            self.server = None
            self._templates.clear()
            self._work.clear()
            with _OPEN_LOCK:
                _OPEN.discard(self)

