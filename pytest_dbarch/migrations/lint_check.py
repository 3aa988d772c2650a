"""The context a lint rule judges one statement in (``Check``) and what the lint keeps
about the revision being run (``RevisionState``).

Its own module, below both ``lint_rules`` (the rules read a ``Check``) and ``lint`` (the
observer that builds one per statement), so neither imports the other's internals.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_dbarch.findings import Finding
from pytest_dbarch.migrations import facts as F
from pytest_dbarch.migrations.observe import RanStatement
from pytest_dbarch.migrations.statements import Described

if TYPE_CHECKING:
    import psycopg

_TABLE_KINDS = {"alter-table", "create-index", "drop-table", "truncate", "cluster", "vacuum-full", "reindex"}


@dataclass
class RevisionState:
    """What the lint keeps about the revision being run."""

    name: str
    existing: frozenset[int] | None
    statements: int = 0
    explicit_begin: bool = False
    dml: list[str] = field(default_factory=list)  # tables updated in the open transaction
    once: set[str] = field(default_factory=set)  # rules reported once per revision
    seen: set[tuple[str, str]] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)
    exempt: set[str] = field(default_factory=set)
    waived: list[str] = field(default_factory=list)


class Check:
    """One statement as the rules see it: the SQL described, facts read on demand."""

    def __init__(
        self,
        statement: RanStatement,
        d: Described,
        connection: psycopg.Connection[Any],
        revision: RevisionState,
        timeouts: F.TimeoutsCache,
    ) -> None:
        from psycopg import pq

        self.statement, self.d, self.connection, self._rev = statement, d, connection, revision
        self.revision = revision.name
        self.server_version = F.server_version(connection)
        status = connection.info.transaction_status
        self.transaction_state = pq.TransactionStatus(status).name
        # IDLE without autocommit: psycopg opens a transaction for this very statement.
        self.transaction_open = status == pq.TransactionStatus.INTRANS or (
            status == pq.TransactionStatus.IDLE and not connection.autocommit
        )
        self._tables: dict[str, F.TableFacts] = {}
        self._timeouts = timeouts

    def table(self, name: str) -> F.TableFacts:
        if name not in self._tables:
            self._tables[name] = F.table_facts(self.connection, name)
        return self._tables[name]

    def is_new(self, table: F.TableFacts) -> bool:
        existing = self._rev.existing
        return table.exists and existing is not None and table.oid not in existing

    @functools.cached_property
    def _locks(self) -> list[tuple[int, str, str]]:
        return F.held_locks(self.connection) or []

    @property
    def held(self) -> list[tuple[str, str]]:
        """(relation, mode) locks this transaction already holds."""
        return [(rel, mode) for _, rel, mode in self._locks]

    def held_modes(self, oid: int | None) -> set[str]:
        return {mode for o, _, mode in self._locks if o == oid}

    @functools.cached_property
    def timeouts(self) -> tuple[str, str]:
        return self._timeouts.get(self.connection)

    @property
    def dml_in_transaction(self) -> list[str]:
        return self._rev.dml

    @functools.cached_property
    def ddl_on_existing(self) -> bool:
        """A DDL statement on a table that existed before this revision."""
        if self.d.kind == "drop-index" or (self.d.kind == "reindex" and self.d.option == "index"):
            names = [F.index_table(self.connection, self.d.index)]
        elif self.d.kind in _TABLE_KINDS:
            names = self.d.tables
        else:
            return False
        return any(t.exists and not self.is_new(t) for t in (self.table(n) for n in names if n))
