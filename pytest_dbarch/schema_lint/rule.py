"""What every schema-lint rule shares: its input (``Schema``), its output
(``Violation``, in ``violation.py``) and its description (``Rule``).

A rule is a pure function ``check(schema, options) -> Iterable[Violation]``. It says
what it found on which object; the lint (``lint.py``) then applies the user's waivers
and severities and turns what is left into ``Finding``s. Rules never read the database
and never import each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pytest_dbarch.findings import Status
from pytest_dbarch.schema_lint.violation import Violation

if TYPE_CHECKING:
    from pytest_dbarch.postgres.catalog import Catalog, Column, Table
    from pytest_dbarch.schema_lint.intent import Models
    from pytest_dbarch.schema_lint.options import LintOptions
    from pytest_dbarch.schema_lint.stats import Stats

#: The evidence a rule may need besides the catalog.
CATALOG, MODELS, STATS, QUERIES = "catalog", "models", "stats", "queries"
#: Bookkeeping tables of migration tools: their shape is the tool's, not the project's.
TOOL_TABLES = frozenset({
    "alembic_version", "flyway_schema_history", "schema_migrations", "ar_internal_metadata", "django_migrations",
    "knex_migrations", "knex_migrations_lock", "SequelizeMeta", "__EFMigrationsHistory", "goose_db_version",
    "databasechangelog", "databasechangeloglock",
})


@dataclass(frozen=True)
class Query:
    """A statement the application ran, as captured (the first parameters seen with it)."""

    sql: str
    params: Any = None


@dataclass(frozen=True)
class Schema:
    """Everything the rules look at: the catalog, and the evidence some rules need."""

    catalog: Catalog
    models: Models | None = None
    stats: Stats | None = None
    queries: tuple[Query, ...] = ()
    extension_schemas: frozenset[str] = frozenset()  # schemas an extension was installed into

    def tables(self, *kinds: str) -> list[Table]:
        """Tables of the given kinds (default: plain and partitioned tables), without
        partitions (a partitioned table's rules are checked once, on the parent), without
        the migration tools' bookkeeping tables, and without the tables in a schema of an
        extension's own (pg_partman's templates in ``partman``: the tool's, not the project's)."""
        wanted = kinds or ("table", "partitioned table")
        return [t for t in self._linted if t.kind in wanted]

    @cached_property
    def _linted(self) -> list[Table]:
        return [t for t in self.catalog
                if t.name not in TOOL_TABLES and t.schema not in self.extension_schemas
                and not _is_partition(self.catalog, t)]

    @cached_property
    def _columns(self) -> dict[int, dict[str, Column]]:
        return {t.oid: {c.name: c for c in t.columns} for t in self.catalog}

    def column(self, table: Table, name: str) -> Column | None:
        """``table``'s column ``name``, or None (a dictionary lookup, for rules that ask often)."""
        return self._columns[table.oid].get(name)

    def indexed(self) -> list[Table]:
        """Tables whose indexes the index rules read: tables and materialized views."""
        return self.tables("table", "partitioned table", "materialized view")


def _is_partition(catalog: Catalog, table: Table) -> bool:
    return table.is_partition and any(
        catalog.tables.get(p) is not None and catalog.tables[p].kind == "partitioned table" for p in table.parents
    )


Check = Callable[["Schema", "LintOptions"], Iterable[Violation]]


@dataclass(frozen=True)
class Rule:
    """A rule's description: id, default severity (None: opt-in), why, and its check."""

    id: str
    ref: str  # the id in shared/reference/schema-lint-rules.md, e.g. "K02"
    severity: Status | None
    why: str
    clean: str  # the passed checklist line: "every foreign key is covered by an index"
    check: Check = field(repr=False)
    needs: str = CATALOG
    policy: str = ""  # the setting whose value turns this opt-in rule on

    @property
    def default(self) -> str:
        return {Status.FAILED: "failed", Status.WARNING: "warning", None: "off (opt-in)"}[self.severity]
