"""The small protocol every migration system is driven through, and how to pick one.

A runner knows a history (revisions, base first, with their parents), applies or
reverts one revision at a time on one connection to a disposable database, and tells
statement observers (lint, lock report) about the first upgrade of each revision.
Alembic histories live in ``alembic_runner.py``, plain SQL directories in
``sql_runner.py``; the round trip, the checks and the CLI only see this protocol.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.migrations.observe import RanStatement, StatementObserver

if TYPE_CHECKING:
    import psycopg


class MigrationError(DbarchError):
    """A history that cannot be loaded, or a revision that cannot be applied or reverted."""

    def __init__(self, cause: str, fix: str = "", revision: str = "", where: str = "", reason: str = "") -> None:
        super().__init__(cause, fix)
        self.revision = revision
        self.where = where
        self.reason = reason or cause  # the error itself, without the where


class EnvError(MigrationError):
    """env.py itself cannot run (it does not import, or fails before any revision ran):
    one cause for the whole history, reported once."""


@dataclass
class Step:
    """A walk's request: apply (``upgrade``) or revert one revision; ``relay`` hears its
    statements. The walk gets control back when the step is committed, or the step's
    MigrationError raised at its ``yield``."""

    revision: Revision
    upgrade: bool
    relay: StatementRelay | None = None


@dataclass
class Outside:
    """A walk's request: run ``action`` while the runner holds no connection in a
    migration (e.g. to replace the database); its result is sent back."""

    action: Callable[[], Any]


# A walk over a history: a generator that yields Steps and Outside requests.
Walk = Generator["Step | Outside", Any, None]


def drive_stepwise(runner: MigrationRunner, walk: Walk) -> None:
    """Run a walk one request at a time (runners whose steps are independent calls)."""
    value: Any = None
    error: MigrationError | None = None
    while True:
        try:
            request = walk.throw(error) if error is not None else walk.send(value)
        except StopIteration:
            return
        value, error = None, None
        if isinstance(request, Outside):
            value = request.action()
            continue
        try:
            if request.upgrade:
                runner.upgrade(request.revision, request.relay)
            else:
                runner.downgrade(request.revision, request.relay)
        except MigrationError as exc:
            error = exc


def session_timeouts(connection: psycopg.Connection[Any]) -> tuple[str, str]:
    """The session's lock_timeout and statement_timeout, as a new session of the
    project's migrations starts with them (read once the runner has set up, env.py run)."""
    row = connection.execute("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')").fetchone()
    assert row is not None
    return row[0], row[1]


def restore_session_timeouts(connection: psycopg.Connection[Any], baseline: tuple[str, str]) -> None:
    """Start a revision with the timeouts a deploy of it alone would have. A session SET
    in one revision (warehouse's 9ca7d5668af4 turns statement_timeout off) otherwise stays
    on the walk's connection for every later revision, and what the lint says of a
    revision would depend on which revisions ran before it on that connection."""
    from psycopg import pq

    idle = connection.info.transaction_status == pq.TransactionStatus.IDLE
    connection.execute(
        "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)", baseline
    )
    if idle and not connection.autocommit:
        connection.commit()


# Waivers are written where reviewers see them: in the revision file itself, e.g.
#   dbarch_one_way = "drops the legacy audit table; restore from backup instead"
#   -- dbarch: one-way: data is split irreversibly
#   dbarch_min_downgrade = "squashed baseline; never downgraded below this"
_WAIVER = re.compile(
    r"""dbarch[_:\s]+(one[-_]way|min[-_]downgrade)\s*[:=]\s*(?P<q>["']?)(?P<reason>.*?)(?P=q)\s*$""",
    re.IGNORECASE | re.MULTILINE,
)
WAIVER_KINDS = ("one-way", "min-downgrade")


def read_waivers(text: str) -> dict[str, str]:
    """Revision-level waivers found in a revision file's text: kind -> reason."""
    found: dict[str, str] = {}
    for match in _WAIVER.finditer(text):
        kind = match.group(1).lower().replace("_", "-")
        found[kind] = match.group("reason").strip()
    return found


@dataclass(frozen=True)
class Revision:
    """One step of a history; ``down`` is empty for a base and has two ids for a merge."""

    id: str
    down: tuple[str, ...]
    path: str  # the file that defines it
    doc: str = ""
    upgrade_empty: bool = False
    downgrade_empty: bool = False
    downgrade_note: str = ""  # why the downgrade counts as empty (pass, NotImplementedError...)
    downgrade_comment: str = ""  # what an empty downgrade's docstring or comments say
    downgrade_refuses: str = ""  # the downgrade starts with a raise: its message (one-way by design)
    waivers: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.id} ({self.doc})" if self.doc else self.id


class MigrationRunner(Protocol):
    """Drives one migration system. ``open`` before ``upgrade``/``downgrade``."""

    source: str  # what the user configured, for messages
    version_table: str  # relation the runner keeps its state in ('' if none); not schema
    # Whether a deploy commits after every revision (True), runs all pending revisions in
    # one transaction (False), or not known yet (None: env.py has not run).
    transaction_per_revision: bool | None

    def revisions(self) -> list[Revision]:
        """Every revision, base first, each after all of its parents."""
        ...

    def heads(self) -> list[str]: ...

    def open(self, url: str, dsn: str) -> None:
        """Connect to the (empty, disposable) database the history is run against."""
        ...

    def upgrade(self, revision: Revision, relay: StatementRelay | None = None) -> None:
        """Apply ``revision`` (its parents are applied); tell ``relay`` each statement."""
        ...

    def downgrade(self, revision: Revision, relay: StatementRelay | None = None) -> None:
        """Revert ``revision`` (nothing that depends on it is applied)."""
        ...

    def drive(self, walk: Walk) -> None:
        """Run every request of ``walk`` (see Step, Outside) in order; a step's
        MigrationError is thrown into the walk; an EnvError ends the drive."""
        ...

    def connection(self) -> psycopg.Connection[Any]:
        """The raw psycopg connection migrations run on, for catalog reads between steps."""
        ...

    def target_metadata(self) -> Any:
        """The SQLAlchemy MetaData the history declares (env.py's ``target_metadata``)."""
        ...

    def close(self) -> None: ...


class StatementRelay:
    """Hands a revision's statements to every observer and gathers their Findings.

    An observer that raises does not stop the migration: its failure becomes an error
    Finding naming the observer, and it hears nothing more about that revision.
    """

    def __init__(self, observers: Sequence[StatementObserver], revision: Revision) -> None:
        self.observers = list(observers)
        self.revision = revision
        self.findings: list[Finding] = []
        self.statements = 0
        self._open = False
        self._started = 0.0

    def begin(self, connection: psycopg.Connection[Any]) -> None:
        self._open = True
        self._each("begin_revision", self.revision.id, connection)

    def before(self, statement: RanStatement, connection: psycopg.Connection[Any]) -> None:
        if self._open:
            self.statements += 1
            self._started = time.perf_counter()
            self._each("before_statement", statement, connection)

    def after(
        self, statement: RanStatement, connection: psycopg.Connection[Any], error: BaseException | None
    ) -> None:
        if self._open:
            elapsed = time.perf_counter() - self._started
            self._each("after_statement", statement, connection, elapsed, error)

    def end(self, connection: psycopg.Connection[Any]) -> None:
        if not self._open:
            return
        self._open = False
        for observer in list(self.observers):
            try:
                self.findings.extend(observer.end_revision(self.revision.id, connection) or [])
            except Exception as exc:
                self._broken(observer, exc)

    @property
    def is_open(self) -> bool:
        return self._open

    def _each(self, method: str, *args: Any) -> None:
        for observer in list(self.observers):
            try:
                getattr(observer, method)(*args)
            except Exception as exc:
                self._broken(observer, exc)

    def _broken(self, observer: StatementObserver, exc: Exception) -> None:
        self.observers.remove(observer)
        name = type(observer).__name__
        self.findings.append(
            Finding(
                rule="migrations.observer-error",
                area=Area.MIGRATIONS,
                status=Status.ERROR,
                title=f"revision {self.revision.id}: statement observer {name} failed: "
                f"{type(exc).__name__}: {exc}",
                where=self.revision.path,
                fix=f"this is a bug in {name}; the migration itself ran on",
            )
        )
