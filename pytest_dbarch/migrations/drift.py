"""Drift: the schema the migrations build, at head, against the application's models.

Alembic's ``compare_metadata`` does the bulk (tables, columns, types, nullability,
server defaults, indexes, unique constraints, foreign keys, comments). It never looks at
CHECK constraints or enum labels, so those are compared from the catalog snapshot.
Each difference is one readable line, said from the models' point of view, with
types and defaults as SQL. The comparison honours what the project's env.py passed to
``context.configure`` (``compare_type``, ``compare_server_default``, ``include_object``,
``include_name``, ``include_schemas``), so drift says what ``alembic revision
--autogenerate`` would say for the project, no more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.migrations import snapshot
from pytest_dbarch.migrations.roundtrip import relative
from pytest_dbarch.migrations.runners import MigrationRunner

DRIFT = "migrations.drift"


def _describe(diff: Any) -> str:
    kind = diff[0]
    if kind == "add_table":
        return f"table {diff[1].name} is in the models but the migrations never create it"
    if kind == "remove_table":
        return f"table {diff[1].name} is created by the migrations but not in the models"
    if kind == "add_column":
        return f"column {diff[2]}.{diff[3].name} is in the models but not in the migrated schema"
    if kind == "remove_column":
        return f"column {diff[2]}.{diff[3].name} is in the migrated schema but not in the models"
    if kind == "add_index":
        return f"index {diff[1].name} on {diff[1].table.name} is in the models but not in the migrated schema"
    if kind == "remove_index":
        return f"index {diff[1].name} on {diff[1].table.name} is in the migrated schema but not in the models"
    if kind in ("add_constraint", "add_fk"):
        return f"constraint {diff[1].name} on {diff[1].table.name} is in the models but not in the migrated schema"
    if kind in ("remove_constraint", "remove_fk"):
        return f"constraint {diff[1].name} on {diff[1].table.name} is in the migrated schema but not in the models"
    if kind.startswith("modify_"):
        _, schema, table, column, _, existing, wanted = diff
        what = {"modify_default": "server default"}.get(kind, kind[len("modify_") :].replace("_", " "))
        if kind == "modify_nullable":
            existing, wanted = ("NULL" if v else "NOT NULL" for v in (existing, wanted))
        return (
            f"column {table}.{column}: {what} is {as_sql(existing)} in the migrated schema, "
            f"{as_sql(wanted)} in the models"
        )
    if kind in ("add_table_comment", "remove_table_comment"):
        return f"table {diff[1].name}: comment differs between the models and the migrated schema"
    return f"{kind}: {diff[1:]}"


def as_sql(value: Any) -> str:
    """A type, server default or plain value as PostgreSQL would show it, never a repr."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.sql.elements import ClauseElement, TextClause
    from sqlalchemy.sql.schema import DefaultClause
    from sqlalchemy.types import TypeEngine

    if value is None:
        return "none"
    if isinstance(value, DefaultClause):
        value = value.arg
    if isinstance(value, TextClause):
        return value.text
    if isinstance(value, TypeEngine):
        try:
            return str(value.compile(dialect=postgresql.dialect()))
        except Exception:
            return type(value).__name__
    if isinstance(value, ClauseElement):
        try:
            return str(value.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        except Exception:
            return type(value).__name__
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def _flatten(diffs: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in diffs:
        flat.extend(item if isinstance(item, list) else [item])
    return flat


def _constraint_name(constraint: Any, dialect: Any) -> str:
    try:
        return str(dialect.identifier_preparer.format_constraint(constraint)).strip('"')
    except Exception:
        return str(constraint.name or "")


def _catalog_facts(metadata: Any, head: snapshot.Snapshot, dialect: Any, options: dict[str, Any]) -> list[str]:
    """CHECK constraints and enum labels, which autogenerate does not compare (only of
    the tables env.py's include_name / include_object let autogenerate see)."""
    from sqlalchemy import CheckConstraint, Enum

    include_name = options.get("include_name")
    include_object = options.get("include_object")
    lines = []
    for table in metadata.tables.values():
        name = snapshot.qualified(table.schema or "public", table.name)
        if name not in head.tables():
            continue
        if include_name is not None and not include_name(table.name, "table", {"schema_name": table.schema}):
            continue
        if include_object is not None and not include_object(table, table.name, "table", False, None):
            continue
        declared = {
            _constraint_name(c, dialect)
            for c in table.constraints
            if isinstance(c, CheckConstraint) and c.name and not getattr(c, "_type_bound", False)
        }
        live = {
            cname.rsplit(" on ", 1)[0]
            for (kind, cname), fields in head.objects.items()
            if kind == "constraint" and cname.endswith(f" on {name}") and fields.get("kind") == "check"
        }
        for missing in sorted(declared - live):
            lines.append(f"check constraint {missing} on {name} is in the models but not in the migrated schema")
        for extra in sorted(live - declared):
            if declared or extra.startswith("ck_"):
                lines.append(f"check constraint {extra} on {name} is in the migrated schema but not in the models")
        for column in table.columns:
            if isinstance(column.type, Enum) and column.type.native_enum and column.type.name:
                enum = head.objects.get(("enum type", snapshot.qualified(column.type.schema or "public", column.type.name)))
                wanted = ", ".join(f"'{label}'" for label in column.type.enums)
                if enum is None:
                    lines.append(f"enum type {column.type.name} ({table.name}.{column.name}) is in the models but not in the migrated schema")
                elif enum.get("labels") != wanted:
                    lines.append(
                        f"enum type {column.type.name}: labels are ({enum.get('labels')}) in the migrated schema, ({wanted}) in the models"
                    )
    return lines


def compare_options(runner: MigrationRunner, version: str) -> dict[str, Any]:
    """env.py's own comparison options (Alembic's defaults where it set none), and the
    version table left out."""
    given = dict(getattr(runner, "compare_options", {}) or {})
    include_name = given.get("include_name")

    def include(name: Any, kind: str, parent: Any) -> bool:
        if kind == "table" and name == version:
            return False
        return include_name(name, kind, parent) if include_name is not None else True

    options = {"compare_type": True, "compare_server_default": False, **given, "include_name": include}
    return options


def check(runner: MigrationRunner, target: str | None, rootdir: str | Path) -> list[Finding]:
    """Compare the database at head with the models; [] when there are no models to compare."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    from pytest_dbarch.models import load_metadata

    where = relative(getattr(runner, "source", ""), rootdir)
    try:
        metadata = load_metadata(target, "dbarch_migrations_metadata") if target else runner.target_metadata()
    except DbarchError as exc:
        return [Finding(DRIFT, Area.MIGRATIONS, Status.ERROR, f"drift not checked: {exc.cause}", where=where, fix=exc.fix)]
    if metadata is None:
        return []
    raw = runner.connection()
    engine = create_engine("postgresql+psycopg://", creator=lambda: raw, poolclass=StaticPool)
    version = runner.version_table
    try:
        with engine.connect() as conn:
            options = compare_options(runner, version)
            context = MigrationContext.configure(conn, opts=options)
            lines = [_describe(d) for d in _flatten(compare_metadata(context, metadata))]
            conn.rollback()
        head = snapshot.take(raw, [version])
        lines += _catalog_facts(metadata, head, engine.dialect, options)
    finally:
        engine.dispose(close=False)
    source = f"{target}" if target else "env.py target_metadata"
    if not lines:
        return [Finding(DRIFT, Area.MIGRATIONS, Status.PASSED, f"the schema at head matches the models ({source})", where=where)]
    return [
        Finding(
            DRIFT,
            Area.MIGRATIONS,
            Status.FAILED,
            f"the schema at head differs from the models ({source}): {lines[0]}"
            + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""),
            "\n".join(lines),
            where,
            "write a revision that brings the schema to the models (alembic revision --autogenerate "
            "covers most of it; CHECK constraints and enum labels by hand), or fix the models",
        )
    ]
