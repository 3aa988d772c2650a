"""``.factory(Model)``: a factory-boy ``SQLAlchemyModelFactory`` whose fields are drawn like ``.rows()``.

Every column the caller (or a declaration) does not give is drawn at build time, from
one row drawn for the whole object, so CHECKs across columns hold (a closed deal gets a
``closed_at``), UNIQUE keys avoid the rows already there and foreign keys point at
existing parents. Giving a relationship (``account=acme``) pins its key columns; a NOT
NULL foreign key nobody gives takes an existing parent, or a parent row is inserted
first when the parent table is empty. Objects are flushed, not committed: committing is
the business of the code under test.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from pytest_dbarch.constraints.draws import live_drawer
from pytest_dbarch.constraints.fill import Filler
from pytest_dbarch.constraints.probe import Probe
from pytest_dbarch.constraints.rows import NoParentRows, RandomSource, given_on_purpose
from pytest_dbarch.constraints.schema import TableSpec
from pytest_dbarch.errors import DbarchError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def make_factory(model: type, session: Session, spec: TableSpec, declarations: dict[str, Any],
                 rng: random.Random, specs: Any = None) -> type:
    import factory  # noqa: F401  (factory-boy is a dependency of the plugin)
    from factory.alchemy import SQLAlchemyModelFactory
    from sqlalchemy import inspect

    mapper = inspect(model)
    table = mapper.local_table
    attribute_of: dict[str, str] = {}
    for prop in mapper.column_attrs:
        for column in prop.columns:
            if getattr(column, "table", None) is table and column.name not in attribute_of:
                attribute_of[column.name] = prop.key
    pairs_of = {rel.key: list(rel.local_remote_pairs) for rel in mapper.relationships
                if rel.direction.name == "MANYTOONE"}
    source = RandomSource(rng)

    def probe() -> Probe:
        return Probe(session.connection().connection.driver_connection)  # type: ignore[arg-type]

    def adjust(cls: type, **kwargs: Any) -> dict[str, Any]:
        fixed: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key in pairs_of:
                fixed.update(_related_keys(session, value, pairs_of[key]))
                continue
            column = next((name for name, attr in attribute_of.items() if attr == key), None)
            if column is not None:
                fixed[column] = value
        row = _draw(spec, probe(), source, fixed, specs)
        for column, value in row.items():
            attribute = attribute_of.get(column)
            if attribute is not None and attribute not in kwargs and column not in fixed:
                kwargs[attribute] = value
        return kwargs

    meta = type("Meta", (), {"model": model, "sqlalchemy_session": session,
                             "sqlalchemy_session_persistence": "flush"})
    namespace: dict[str, Any] = {"Meta": meta, "_adjust_kwargs": classmethod(adjust), **declarations}
    return type(f"{model.__name__}Factory", (SQLAlchemyModelFactory,), namespace)


def _related_keys(session: Session, related: Any, pairs: list[Any]) -> dict[str, Any]:
    """The key columns a many-to-one relationship value sets (flushing a new parent first)."""
    if related is None:
        return {local.name: None for local, _ in pairs}
    from sqlalchemy import inspect

    state = inspect(related)
    if state.key is None:  # not in the database yet: it needs its key now
        session.add(related)
        session.flush()
    remote_mapper = state.mapper
    return {local.name: getattr(related, remote_mapper.get_property_by_column(remote).key)
            for local, remote in pairs}


def _draw(spec: TableSpec, probe: Probe, source: RandomSource, fixed: dict[str, Any], specs: Any) -> dict[str, Any]:
    drawer = live_drawer(spec, probe)
    aim = given_on_purpose(spec, fixed)  # a value given to break a CHECK or repeat a key stays
    for _ in range(2):
        try:
            row = drawer.draw(source, fixed, aim, attempts=30)
        except NoParentRows as exc:
            if specs is None:
                raise
            _create_parents(spec, probe, source, fixed, specs)
            continue
        if row is None:
            raise DbarchError(
                f"no valid {spec.qualified} row fits the values given ({drawer.stats.summary()})",
                "check the values passed to the factory against the table's CHECKs",
            )
        return row
    raise DbarchError(f"{spec.qualified}: parent rows could not be created", "create them in the test first")


def _create_parents(spec: TableSpec, probe: Probe, source: RandomSource, fixed: dict[str, Any], specs: Any) -> None:
    filler = Filler(probe, specs, source.rng)
    for fk in spec.foreign_keys:
        if fk.nullable or fk.self_reference or any(c in fixed for c in fk.columns):
            continue
        if not probe.parent_keys(fk, limit=1):
            filler.fill(specs(fk.parent), 1)
