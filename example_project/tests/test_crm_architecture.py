"""Project-specific architecture checks, recorded as pytest-dbarch findings.

They read the live catalog of the test database (built from the Alembic history)
and record one finding per subject with ``dbarch_findings``; the plugin puts them in
the terminal summary and in the ``.temp/`` checklist report (see the README).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import psycopg
from pytest_dbarch import Area, Finding, Status

from crm import models

FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text AS table_name, a.attname AS column_name, c.conname,
       EXISTS (
           SELECT 1 FROM pg_index i
           WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1]
       ) AS indexed
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
ORDER BY 1, 2
"""

TABLES = """
SELECT t.relname,
       EXISTS (SELECT 1 FROM pg_constraint p WHERE p.conrelid = t.oid AND p.contype = 'p')
FROM pg_class t
WHERE t.relkind = 'r' AND t.relnamespace = 'public'::regnamespace AND t.relname <> 'alembic_version'
ORDER BY 1
"""


def _model_location(table: str) -> str:
    """``crm/models.py:<line>`` of the model class mapped to ``table``."""
    for mapper in models.Base.registry.mappers:
        if mapper.local_table.name == table:
            source = Path(inspect.getsourcefile(mapper.class_) or "")
            line = inspect.getsourcelines(mapper.class_)[1]
            return f"crm/{source.name}:{line}"
    return ""


def test_every_foreign_key_is_indexed(dbarch_psycopg: psycopg.Connection, dbarch_findings) -> None:
    rows = dbarch_psycopg.execute(FOREIGN_KEYS).fetchall()
    assert rows, "the CRM schema has foreign keys"
    for table, column, constraint, indexed in rows:
        dbarch_findings.add(
            Finding(
                rule="schema.fk-index",
                area=Area.SCHEMA,
                status=Status.PASSED if indexed else Status.FAILED,
                title=f"{table}.{column} ({constraint}) is indexed"
                if indexed
                else f"{table}.{column} ({constraint}) has no index",
                evidence=f"foreign key {constraint} on {table}({column}); leading column of an index: {indexed}",
                where=_model_location(table),
                fix=f"add index on {table}.{column}",
            )
        )


def test_every_table_has_a_primary_key(dbarch_psycopg: psycopg.Connection, dbarch_findings) -> None:
    for table, has_pk in dbarch_psycopg.execute(TABLES).fetchall():
        dbarch_findings.add(
            Finding(
                rule="schema.primary-key",
                area=Area.SCHEMA,
                status=Status.PASSED if has_pk else Status.FAILED,
                title=f"{table} has a primary key" if has_pk else f"{table} has no primary key",
                where=_model_location(table),
                fix=f"add a primary key to {table}",
            )
        )
