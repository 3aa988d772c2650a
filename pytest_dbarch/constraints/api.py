"""``dbarch_constraints``: strategies, fills, factories and checks on the test's database.

One object per test, on the test's own connection (so everything it inserts is rolled
back with the test). The catalog is read once, on first use; call ``refresh()`` after
DDL in the test.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_dbarch.constraints.probe import Probe
from pytest_dbarch.constraints.rows import DrawStats
from pytest_dbarch.constraints.schema import TableSpec, build
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.origin import plugin_statements
from pytest_dbarch.postgres import catalog as catalog_module

if TYPE_CHECKING:
    from hypothesis import settings as hypothesis_settings
    from hypothesis.strategies import SearchStrategy
    from sqlalchemy import MetaData
    from sqlalchemy.orm import Session

    from pytest_dbarch.constraints.skips import Skips
    from pytest_dbarch.findings import Finding
    from pytest_dbarch.postgres.catalog import Catalog


class UnknownTable(DbarchError):
    """The table named is not in the test's database."""


def table_name(table: Any) -> str:
    """A table name from a string, a SQLAlchemy ``Table`` or a mapped class."""
    if isinstance(table, str):
        return table
    local = getattr(table, "__table__", None)
    if local is not None:
        table = local
    name = getattr(table, "fullname", None)
    if isinstance(name, str):
        return name
    raise TypeError(f"expected a table name, a Table or a mapped class, got {table!r}")


class Constraints:
    """What ``dbarch_constraints`` hands a test; see the README's "Constraint property tests"."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        models: Callable[[], MetaData | None] = lambda: None,
        session: Callable[[], Session] | None = None,
        seed: str = "",
        skips: Skips | None = None,
    ) -> None:
        self._conn = conn
        self._probe = Probe(conn)
        self._models = models
        self._session = session
        self._seed = zlib.crc32(seed.encode())
        self._skips = skips
        self._catalog: Catalog | None = None
        self._specs: dict[str, TableSpec] = {}
        self._stats: dict[str, DrawStats] = {}

    # --- schema

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            from pytest_dbarch.constraints import domains

            with plugin_statements():
                self._catalog = domains.resolve(self._conn, catalog_module.read(self._conn))
        return self._catalog

    def refresh(self) -> None:
        """Read the schema again (after DDL in the test)."""
        self._catalog = None
        self._specs.clear()
        self._probe.forget()

    def spec(self, table: Any) -> TableSpec:
        """How rows of ``table`` are generated (columns, spaces, rules, keys)."""
        name = table_name(table)
        try:
            found = self.catalog.table(name)
        except KeyError as exc:
            raise UnknownTable(str(exc.args[0]), "name a table of the test's database (schema.table or table)") from None
        if found.qualified not in self._specs:
            self._specs[found.qualified] = build(found, self.catalog)
        return self._specs[found.qualified]

    def stats(self, table: Any) -> DrawStats:
        """Candidates drawn for ``table`` so far and why some were thrown away."""
        return self._stats.setdefault(self.spec(table).qualified, DrawStats())

    # --- data

    def rows(self, table: Any, **overrides: Any) -> SearchStrategy[dict[str, Any]]:
        """A hypothesis strategy of ``{column: value}`` rows PostgreSQL accepts into ``table``.

        ``overrides`` pins columns to a value or a strategy (``stage="won"``). Identity,
        serial and generated columns are left to the database. Foreign keys take keys the
        parent holds when the row is drawn; UNIQUE keys avoid the rows already there.
        """
        from pytest_dbarch.constraints import draws, rows

        spec = self.spec(table)
        _check_columns(spec, overrides)
        return rows.strategy(draws.live_drawer(spec, self._probe, self.stats(table), trust_plan=True), overrides)

    def lists(self, table: Any, min_size: int = 0, max_size: int = 10, **overrides: Any) -> SearchStrategy[list[dict[str, Any]]]:
        """Lists of rows that can all be inserted together: no two share a UNIQUE key, nor
        collide under an exclusion constraint, a unique index on an expression, or once a
        BEFORE INSERT trigger has rewritten them."""
        from hypothesis import strategies as st

        spec = self.spec(table)
        keys = [k for k in spec.uniques if not any(c in spec.left_out for c in k.columns)]
        plain = [k for k in keys if k.plain]  # a partial one too: kept apart even outside it, to be safe

        def key_of(index: int) -> Callable[[dict[str, Any]], Any]:
            key = plain[index]

            def value(row: dict[str, Any]) -> Any:
                found = tuple(repr(row.get(c)) for c in key.key_columns)
                if not key.nulls_not_distinct and any(row.get(c) is None for c in key.key_columns):
                    return object()  # NULLs never collide
                return found

            return value

        rows = self.rows(table, **overrides)
        if len(plain) == len(keys) and not (keys and spec.table.before_insert_triggers):
            # equality of the drawn values decides every collision (no trigger rewrites them first)
            return st.lists(rows, min_size=min_size, max_size=max_size,
                            unique_by=tuple(key_of(i) for i in range(len(plain))) or None)
        return _held_together(self._probe, spec, rows, min_size, max_size)

    def fill(self, table: Any, n: int, **fixed: Any) -> int:
        """Insert ``n`` valid rows through COPY (parents first where a NOT NULL foreign key
        needs them); returns ``n``. ``fixed`` pins columns to values."""
        from pytest_dbarch.constraints.fill import Filler

        spec = self.spec(table)
        _check_columns(spec, fixed)
        filler = Filler(self._probe, self.spec, random.Random(self._seed ^ zlib.crc32(spec.qualified.encode())))
        filler.stats = self._stats
        return filler.fill(spec, n, fixed)

    def factory(self, model: type, **declarations: Any) -> type:
        """A factory-boy ``SQLAlchemyModelFactory`` for ``model`` bound to ``dbarch_session``,
        every field not declared drawn like ``.rows()`` (valid together, CHECKs included)."""
        if self._session is None:
            raise DbarchError("factory() needs a SQLAlchemy session", "request dbarch_session in the test")
        from pytest_dbarch.constraints.factories import make_factory

        session = self._session()
        return make_factory(model, session, self.spec(model), declarations,
                            random.Random(self._seed ^ zlib.crc32(table_name(model).encode())), self.spec)

    # --- checks

    def check(self, *tables: Any, settings: hypothesis_settings | None = None) -> list[Finding]:
        """Run the constraint checks on ``tables`` (all tables when none given); returns Findings.

        Everything the checks insert is undone before this returns.
        """
        from pytest_dbarch.constraints import properties
        from pytest_dbarch.constraints.skips import Skips

        names = [self.spec(t).qualified for t in tables] if tables else None
        return properties.run(self._probe, self.catalog, self.spec, self._models(), names,
                              settings=settings, skips=self._skips or Skips(), seed=self._seed)


def _held_together(probe: Probe, spec: TableSpec, rows: SearchStrategy[dict[str, Any]], min_size: int,
                   max_size: int) -> SearchStrategy[list[dict[str, Any]]]:
    """Lists whose rows collide in ways only the database can judge (``during WITH &&``,
    ``lower(email)``): each row is inserted in a savepoint as it is drawn, so the next one
    is drawn against it, and the savepoint is rolled back before the list is handed over."""
    from hypothesis import reject
    from hypothesis import strategies as st

    @st.composite
    def together(draw: Callable[[SearchStrategy[Any]], Any]) -> list[dict[str, Any]]:
        wanted = draw(st.integers(min_size, max_size))
        found: list[dict[str, Any]] = []
        with probe.savepoint():
            for _ in range(wanted + 3):  # a few refusals (a trigger) are skipped
                if len(found) == wanted:
                    break
                row = draw(rows)
                if probe.insert(spec, row, keep=True).ok:
                    found.append(row)
        if len(found) < min_size:
            reject()
        return found

    return together()


def _check_columns(spec: TableSpec, given: Mapping[str, Any]) -> None:
    unknown = [name for name in given if not spec.table.has_column(name)]
    if unknown:
        raise DbarchError(
            f"{spec.qualified} has no column {', '.join(repr(u) for u in unknown)}",
            f"its columns are {', '.join(c.name for c in spec.table.columns)}",
        )
