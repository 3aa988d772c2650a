"""Build the schema once per session into a template database.

One source: an Alembic config upgraded to head, a SQLAlchemy ``MetaData`` named as
``module:attribute`` (``create_all``), or SQL files run in order; plus extensions
created first. Every failure becomes a ``SchemaError`` naming the source, the
revision or file, and the cause.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from pytest_dbarch.errors import SchemaError


@dataclass(frozen=True)
class SchemaSource:
    """Where the session's schema comes from; paths are relative to ``rootdir``."""

    alembic_ini: str | None = None
    metadata: str | None = None
    sql_files: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    rootdir: str = "."

    def describe(self) -> str:
        if self.alembic_ini:
            return f"alembic {self.alembic_ini}"
        if self.metadata:
            return f"metadata {self.metadata}"
        if self.sql_files:
            return f"sql {', '.join(self.sql_files)}"
        return "empty"

    def path(self, name: str) -> Path:
        return (Path(self.rootdir) / name).resolve()


def build(source: SchemaSource, dsn: str, url: str) -> None:
    """Create extensions and the schema in the (empty) database at ``dsn``/``url``."""
    if source.extensions:
        _create_extensions(dsn, source.extensions)
    if source.alembic_ini:
        _alembic_upgrade(source.path(source.alembic_ini), url)
    elif source.metadata:
        _create_all(source.metadata, url)
    elif source.sql_files:
        for name in source.sql_files:
            _run_sql_file(source.path(name), dsn)


def _create_extensions(dsn: str, extensions: tuple[str, ...]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for ext in extensions:
            try:
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))
            except psycopg.Error as exc:
                raise SchemaError(
                    f"extension {ext!r} could not be created: {str(exc).strip()}",
                    f"install the package that provides {ext} for this server version, "
                    "or remove it from dbarch_extensions",
                ) from None


class _RevisionTracker(logging.Handler):
    """Remembers the last 'Running upgrade a -> b' line Alembic logged."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Running upgrade"):
            self.last = message[len("Running upgrade ") :]


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Run in ``path`` (Alembic resolves script_location against the cwd); 3.10 has no
    ``contextlib.chdir``."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _alembic_upgrade(ini: Path, url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    if not ini.is_file():
        raise SchemaError(
            f"dbarch_alembic_ini points at {ini}, which does not exist",
            "give the path of alembic.ini relative to the pytest rootdir",
        )
    cfg = Config(str(ini))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    tracker = _RevisionTracker()
    migration_log = logging.getLogger("alembic.runtime.migration")
    level = migration_log.level
    migration_log.addHandler(tracker)
    migration_log.setLevel(logging.INFO)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with working_directory(ini.parent), engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
    except Exception as exc:  # env.py and revisions may raise anything
        where = f" while running upgrade {tracker.last}" if tracker.last else ""
        raise SchemaError(
            f"Alembic upgrade to head from {ini} failed{where}: "
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
            "run 'alembic upgrade head' against an empty database to reproduce, then fix "
            "env.py or that revision",
        ) from exc
    finally:
        migration_log.removeHandler(tracker)
        migration_log.setLevel(level)
        engine.dispose()


def _create_all(target: str, url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from pytest_dbarch.models import ModelsError, load_metadata

    try:
        metadata = load_metadata(target, "dbarch_metadata")
    except ModelsError as exc:
        raise SchemaError(exc.cause, exc.fix) from None
    engine = create_engine(url, poolclass=NullPool)
    try:
        metadata.create_all(engine)
    except SQLAlchemyError as exc:
        raise SchemaError(
            f"create_all for {target} failed: {str(exc).strip().splitlines()[0]}",
            "fix the model definitions; the statement that failed is named above",
        ) from None
    finally:
        engine.dispose()


def _run_sql_file(path: Path, dsn: str) -> None:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SchemaError(
            f"SQL schema file {path} cannot be read: {exc.strerror}",
            "fix the path in dbarch_sql_files (relative to the pytest rootdir)",
        ) from None
    with psycopg.connect(dsn) as conn:
        try:
            conn.execute(text.encode())
        except psycopg.Error as exc:
            line = ""
            position = exc.diag.statement_position
            if position:
                line = f":{text[: int(position)].count(chr(10)) + 1}"
            raise SchemaError(
                f"SQL schema file {path}{line} failed: {str(exc).strip().splitlines()[0]}",
                "fix the statement at that line; the file runs in one transaction",
            ) from None
