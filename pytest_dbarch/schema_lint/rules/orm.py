"""The ORM's relationships against the database's foreign keys (K08, D01): what the
models do when a parent is deleted must be possible in the database."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pytest_dbarch.findings import Status
from pytest_dbarch.schema_lint import ddl
from pytest_dbarch.schema_lint.facts import alter
from pytest_dbarch.schema_lint.options import LintOptions
from pytest_dbarch.schema_lint.rule import Schema, Violation

if TYPE_CHECKING:
    from pytest_dbarch.postgres.catalog import Constraint, Table


def _one_to_many(schema: Schema) -> Iterator[tuple[Any, Table, Table, Constraint | None, tuple[str, ...]]]:
    """(relationship, parent table, child table, the child's foreign key, child key columns)."""
    models = schema.models
    if models is None:
        return
    path = schema.catalog.search_path
    for mapper in models.mappers:
        for rel in mapper.relationships:
            if rel.direction.name != "ONETOMANY" or rel.viewonly or rel.secondary is not None:
                continue
            parent = schema.catalog.tables.get(models.qualified(mapper.local_table, path))
            child = schema.catalog.tables.get(models.qualified(rel.target, path))
            if parent is None or child is None:
                continue
            child_columns = tuple(remote.name for _, remote in rel.local_remote_pairs)
            fk = next(
                (f for f in child.foreign_keys if f.ref == parent.qualified and set(f.columns) == set(child_columns)),
                None,
            )
            yield rel, parent, child, fk, child_columns


def _name(rel: Any) -> str:
    return f"{rel.parent.class_.__name__}.{rel.key}"


def cascade(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """K08: deleting a parent through the ORM works with the foreign key's ON DELETE."""
    for rel, parent, child, fk, columns in _one_to_many(schema):
        passive = bool(rel.passive_deletes)
        deletes = bool(rel.cascade.delete)
        cols = ", ".join(columns)
        if fk is None:
            continue
        redo = alter(child, f"DROP CONSTRAINT {ddl.ident(fk.name)}") + " " + alter(
            child, f"ADD CONSTRAINT {ddl.ident(fk.name)} FOREIGN KEY ({ddl.columns(fk.columns)}) REFERENCES "
                   f"{ddl.relation(parent.schema, parent.name)} ({ddl.columns(fk.ref_columns)}) ON DELETE CASCADE NOT VALID"
        )
        if passive and deletes and fk.on_delete != "CASCADE":
            outcome = ("the database refuses to delete a parent that has children"
                       if fk.on_delete in ("NO ACTION", "RESTRICT")
                       else f"the database keeps the children ({fk.on_delete}) instead of deleting them")
            yield Violation(
                child.qualified,
                f"{_name(rel)} has cascade delete with passive_deletes=True, but {fk.name} is ON DELETE {fk.on_delete}",
                fix=redo + f" -- then VALIDATE CONSTRAINT; or drop passive_deletes from {_name(rel)}",
                evidence=f"passive_deletes leaves the children to the database: {outcome}\n{fk.definition}",
                names=(fk.name, *columns),
                status=Status.FAILED if fk.on_delete in ("NO ACTION", "RESTRICT") else None,
            )
        elif not deletes and not passive and all(child.column(c).not_null for c in columns):
            yield Violation(
                child.qualified,
                f"deleting a {rel.parent.class_.__name__} that has {rel.key} fails: without cascade delete the "
                f"ORM sets {child.qualified}({cols}) to NULL, which is NOT NULL",
                fix=f"-- relationship(..., cascade='all, delete-orphan', passive_deletes=True) on {_name(rel)}, "
                f"with ON DELETE CASCADE in the database: {redo}",
                evidence=f"{_name(rel)}: cascade={sorted(rel.cascade)}\n{fk.definition}",
                names=(fk.name, *columns),
            )


def hygiene(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """D01: a one-to-many relationship over a unique foreign key is a one-to-one."""
    for rel, parent, child, fk, columns in _one_to_many(schema):
        if not rel.uselist:
            continue
        unique = next((i for i in child.unique_indexes if i.predicate is None and set(i.columns) == set(columns)), None)
        if unique is None:
            continue
        yield Violation(
            child.qualified,
            f"{_name(rel)} is a list, but {child.qualified}({', '.join(columns)}) is unique: at most one child",
            fix=f"-- relationship(..., uselist=False) on {_name(rel)} (a one-to-one)",
            evidence=f"unique index {unique.name}: {unique.definition}",
            names=(*columns, unique.name),
        )
