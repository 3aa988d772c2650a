"""The session's databases: server, template, the shared work database, per-test ones.

One object owns them all so that one ``close`` releases them on every exit path.
A local server comes as a lease (``shared``): the session's own, or one shared with
the other xdist workers or kept running between sessions, started from the cluster
cache with the template inside when it can be.
"""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_dbarch.config import Settings
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.origin import plugin_statements
from pytest_dbarch.postgres import template
from pytest_dbarch.postgres.info import ServerInfo
from pytest_dbarch.postgres.isolation import SavepointConnection, TestDatabase, broken_isolation
from pytest_dbarch.postgres.janitor import Janitor
from pytest_dbarch.postgres.pool import ClonePool, Ready
from pytest_dbarch.postgres.scoped import ScopedDatabase
from pytest_dbarch.postgres.server import LocalServer
from pytest_dbarch.postgres.shared import Lease, start_local

if TYPE_CHECKING:
    from pytest_dbarch.postgres.early import EarlyStart

_OPEN: set[Databases] = set()
_OPEN_LOCK = threading.Lock()


@atexit.register
def _close_all() -> None:
    """Safety net for interpreters that exit without running fixture teardown."""
    for databases in list(_OPEN):
        databases.close(finish_now=True)  # no thread may start once the interpreter exits


@dataclass(frozen=True)
class KeptDatabase:
    """A failed test's clone, kept for debugging (``dbarch_keep_failed``)."""

    nodeid: str
    name: str
    dsn: str


@dataclass(eq=False)
class Databases:
    settings: Settings
    worker: str = "main"
    server: ServerInfo | None = None
    lease: Lease | None = None
    janitor: Janitor | None = None
    kept: list[KeptDatabase] = field(default_factory=list)
    started: str | None = None  # how the local server came about (terminal summary)
    early: EarlyStart | None = None  # the server being started in the background (``early``)
    _templates: dict[template.SchemaSource, str] = field(default_factory=dict)
    _template_errors: dict[template.SchemaSource, DbarchError] = field(default_factory=dict)
    _pools: dict[str, ClonePool] = field(default_factory=dict)
    _work: dict[str, str] = field(default_factory=dict)
    _idle: dict[str, SavepointConnection] = field(default_factory=dict)
    _addresses: dict[str, tuple[str, str]] = field(default_factory=dict)  # work db: dsn, url
    _keep: set[str] = field(default_factory=set)  # databases to keep when their test ends

    @property
    def local(self) -> LocalServer | None:
        return self.lease.server if self.lease is not None else None

    def start(self, source: template.SchemaSource | None = None) -> ServerInfo:
        """Start (or join, or connect to) the server once; any failure leaves nothing
        behind. ``source``: the schema the session will ask for, so that a local
        server can come from the cluster cache with its template already inside
        (default: the one the settings name)."""
        if self.server is not None:
            return self.server
        with _OPEN_LOCK:
            _OPEN.add(self)
        try:
            if self.settings.dsn:
                from pytest_dbarch.postgres.external import connect_external

                self.server = connect_external(self.settings.dsn, self.settings.sources["dsn"])
            else:
                source = source or template.SchemaSource.from_settings(self.settings)
                early = self.early.take(self.settings, source) if self.early is not None else None
                self.lease = early or start_local(self.settings, source)
                local, prepared = self.lease.server, self.lease.prepared
                self.started = ("started in the background: " if early else "") + self.lease.describe()
                self.server = ServerInfo(
                    "local",
                    local.binaries.version,
                    local.binaries.describe() + f", running as {local.account.name}",
                    local.params(),
                )
                if prepared is not None and prepared.template:
                    self._templates[source] = prepared.template
                if prepared is not None and prepared.error is not None:
                    self._template_errors[source] = prepared.error
            self.janitor = Janitor(self.server.conninfo(), self.server.major, self.worker)
        except BaseException:
            self.close()
            raise
        return self.server

    def template_for(self, source: template.SchemaSource) -> str:
        """The template database with ``source``'s schema, built on first use."""
        if source in self._templates:
            return self._templates[source]
        server, janitor = self.start(), self._janitor()
        if source in self._templates:  # it came with the server
            return self._templates[source]
        if source in self._template_errors:
            raise self._template_errors[source]
        fingerprint = (
            template.fingerprint(source, self.settings.cache_key_files) if self.lease is not None else None
        )
        if self.lease is not None and fingerprint is not None:
            # Named after its inputs and marked complete: a shared or kept server
            # builds it once, whoever asks first.
            name = template.template_name(fingerprint)
            with plugin_statements():
                template.ensure(self.lease.server.socket_params(), source, name)
            self._templates[source] = name
            return name
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
        return name

    def _janitor(self) -> Janitor:
        if self.janitor is None:
            raise DbarchError("the database server is not running", "this is a pytest-dbarch bug")
        return self.janitor

    def _work_db(self, tpl: str) -> str:
        """The long-lived clone that transaction-mode tests share."""
        if tpl not in self._work:
            self._work[tpl] = self._janitor().create(self._janitor().new_name("work"), tpl)
        return self._work[tpl]

    def _clone(self, tpl: str) -> Ready:
        janitor = self._janitor()
        if self.settings.clone_pool <= 0:
            return janitor.create(janitor.new_name("t"), tpl), None
        if tpl not in self._pools:
            self._pools[tpl] = ClonePool(janitor, self.start().conninfo(), tpl, self.settings.clone_pool)
        return self._pools[tpl].take()

    def scoped(self, tpl: str, scope: str) -> ScopedDatabase:
        """A clone of ``tpl`` for the tests of one module or of the session; ``drop_scoped``
        (or ``close``) drops it."""
        server = self.start()
        name = self._janitor().create(self._janitor().new_name(scope), tpl)
        return ScopedDatabase(name, scope, server.dsn(name), server.url(name))

    def drop_scoped(self, db: ScopedDatabase) -> None:
        """The scope ended: close its connections and drop it now."""
        db.close()
        if db.name in self._idle:
            self._idle.pop(db.name).dbarch_close()
        self._addresses.pop(db.name, None)
        if self.janitor is not None and self.janitor.owns(db.name):
            self.janitor.drop(db.name)

    def for_test(self, tpl: str, isolation: str, scoped: ScopedDatabase | None = None) -> TestDatabase:
        """The database a test runs in: a fresh clone of ``tpl``, the shared work one,
        or (``scoped``) the module's or session's, in a transaction."""
        server = self.start()
        if isolation == "clone":
            name, ready = self._clone(tpl)
            return TestDatabase(name, isolation, server.dsn(name), server.url(name), ready=ready)
        name = scoped.name if scoped is not None else self._work_db(tpl)
        if name not in self._addresses:  # parsing a conninfo per test costs 0.2 ms
            self._addresses[name] = (server.dsn(name), server.url(name))
        dsn, url = self._addresses[name]
        return TestDatabase(name, isolation, dsn, url, reusable=self._idle.pop(name, None))

    def keep_after(self, db: TestDatabase, nodeid: str) -> KeptDatabase | None:
        """Keep ``db`` (a failed test's clone) when the test ends, and the server
        running after the session; None when it cannot be kept (transaction
        isolation rolls back; an external server is not ours to leave things on)."""
        if db.isolation != "clone" or self.lease is None:
            return None
        from psycopg.conninfo import make_conninfo

        self._keep.add(db.name)
        kept = KeptDatabase(nodeid, db.name, make_conninfo(**self.lease.server.socket_params(), dbname=db.name))
        self.kept.append(kept)
        return kept

    def finish_test(self, db: TestDatabase, nodeid: str) -> None:
        """Undo the test's changes; rebuild the work database if the test leaked."""
        intact, reusable = db.end()
        janitor = self._janitor()
        if db.isolation == "clone":
            if reusable is not None:
                reusable.dbarch_close()
            if db.name in self._keep:
                janitor.release(db.name)
            else:
                janitor.drop_later(db.name)
            return
        if reusable is not None:
            self._idle[db.name] = reusable
        if not intact:
            if db.name in self._idle:
                self._idle.pop(db.name).dbarch_close()
            tpl = next((t for t, w in self._work.items() if w == db.name), None)
            if tpl is None:  # a module's or session's database: its writes stay there
                raise broken_isolation(nodeid, rebuilt=False)
            del self._work[tpl]
            janitor.drop(db.name)
            raise broken_isolation(nodeid)

    def close(self, *, finish_now: bool = False) -> None:
        """Drop every database we created, leave or stop the server. Idempotent. A
        server only this session used is stopped in the background (``release_soon``)
        unless ``finish_now``; ``pytest_unconfigure`` waits for it."""
        try:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()
            for conn in self._idle.values():
                conn.dbarch_close()
            self._idle.clear()
            if self.lease is not None and self.kept:
                self.lease.keep()
            if self.janitor is not None:
                # A server nobody else uses is thrown away whole: no drops needed.
                self.janitor.close(drop=not (self.lease is not None and self.lease.exclusive))
        finally:
            self.janitor = None
            if self.early is not None:
                self.early.discard()  # started for a session that never asked for it
            if self.lease is not None:
                if self.lease.exclusive and not finish_now:
                    self.lease.release_soon()
                else:
                    self.lease.release()
                self.lease = None
            self.server = None
            self._templates.clear()
            self._work.clear()
            with _OPEN_LOCK:
                _OPEN.discard(self)
