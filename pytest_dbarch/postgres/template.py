"""Build the schema once into a template database.

One source: an Alembic config upgraded to head, a SQLAlchemy ``MetaData`` named as
``module:attribute`` (``create_all``), or SQL files run in order; plus extensions
created first. Every failure becomes a ``SchemaError`` naming the source, the
revision or file, and the cause. psycopg is imported where it is used: the header
computes a fingerprint in sessions that may never touch a database.

In the plugin's own servers a template is named after a ``fingerprint`` of its
inputs (which also keys the cluster cache), built under an advisory lock so that
xdist workers sharing a server build it once, and marked complete only when the
build succeeded: a half-built template (a crash mid-migration) is dropped and built
again, never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_dbarch.errors import SchemaError
from pytest_dbarch.postgres.alembic_guard import ForeignDatabase, guarded_env, verify_at_head


@dataclass(frozen=True)
class SchemaSource:
    """Where the session's schema comes from; paths are relative to ``rootdir``."""

    alembic_ini: str | None = None
    metadata: str | None = None
    sql_files: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    rootdir: str = "."
    seed: str | None = None  # ``module:function`` run on the built schema (see seed.py)

    @classmethod
    def from_settings(cls, settings: Any) -> SchemaSource:
        """The source the ``dbarch_*`` settings name (what ``dbarch_schema_source``
        returns unless a conftest overrides it)."""
        return cls(
            alembic_ini=settings.alembic_ini,
            metadata=settings.metadata,
            sql_files=settings.sql_files,
            extensions=settings.extensions,
            rootdir=settings.rootdir,
            seed=settings.seed,
        )

    @property
    def empty(self) -> bool:
        return not (self.alembic_ini or self.metadata or self.sql_files or self.extensions or self.seed)

    def describe(self) -> str:
        seed = f", seed {self.seed}" if self.seed else ""
        if self.alembic_ini:
            return f"alembic {self.alembic_ini}{seed}"
        if self.metadata:
            return f"metadata {self.metadata}{seed}"
        if self.sql_files:
            return f"sql {', '.join(self.sql_files)}{seed}"
        return f"empty{seed}"

    def path(self, name: str) -> Path:
        return (Path(self.rootdir) / name).resolve()


def build(source: SchemaSource, dsn: str, url: str) -> None:
    """Create extensions and the schema in the (empty) database at ``dsn``/``url``."""
    if source.extensions:
        _create_extensions(dsn, source.extensions)
    if source.alembic_ini:
        _alembic_upgrade(source.path(source.alembic_ini), dsn, url)
    elif source.metadata:
        _create_all(source.metadata, url)
    elif source.sql_files:
        for name in source.sql_files:
            _run_sql_file(source.path(name), dsn)
    if source.seed:
        from pytest_dbarch.postgres.seed import run_seed

        run_seed(source.seed, url)


def _create_extensions(dsn: str, extensions: tuple[str, ...]) -> None:
    import psycopg
    from psycopg import sql

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


def _alembic_upgrade(ini: Path, dsn: str, url: str) -> None:
    """Upgrade the template to head with env.py pointed at it (see alembic_guard),
    then prove the template is what got migrated."""
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
            try:
                with guarded_env(dsn, url, _env_py(cfg)):
                    command.upgrade(cfg, "head")
                conn.commit()
            except ForeignDatabase:
                raise
            except Exception as exc:  # env.py and revisions may raise anything
                refused = _refusal_in(exc)
                if refused is not None:
                    raise refused from None
                raise _upgrade_failed(ini, tracker.last, exc) from exc
            verify_at_head(cfg, conn)
    finally:
        migration_log.removeHandler(tracker)
        migration_log.setLevel(level)
        engine.dispose()


def _env_py(cfg: Any) -> Path:
    from alembic.script import ScriptDirectory

    try:
        return Path(ScriptDirectory.from_config(cfg).dir) / "env.py"
    except Exception:  # the upgrade reports a broken config itself
        return Path("env.py")


def _refusal_in(exc: BaseException) -> ForeignDatabase | None:
    """The guard's refusal, wherever in the exception chain a library wrapped it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ForeignDatabase):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _upgrade_failed(ini: Path, last: str | None, exc: Exception) -> SchemaError:
    where = f" while running upgrade {last}" if last else ""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return SchemaError(
        f"Alembic upgrade to head from {ini} failed{where}: {type(exc).__name__}: {first}",
        "run 'alembic upgrade head' against an empty database to reproduce, then fix "
        "env.py or that revision",
    )


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
    import psycopg

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


# --- the template cache key (see postgres/cache.py) -------------------------------

COMPLETE = "pytest-dbarch template: complete"  # COMMENT ON DATABASE, set after a build


def template_name(fingerprint: str) -> str:
    """The template's database name in the plugin's own servers: one per schema, so
    servers shared by xdist workers or kept between sessions find it by name."""
    return f"dbarch_template_{fingerprint[:16]}"


def fingerprint(source: SchemaSource, extra_files: tuple[str, ...] = ()) -> str | None:
    """A hash of everything that shapes the template ``source`` builds: the
    extensions; the Alembic config, every file under its script and version
    locations and the Alembic and SQLAlchemy versions (or the DDL ``create_all``
    would run, or the SQL files' bytes); plus ``extra_files`` (globs under the
    rootdir: application code migrations import, a lock file of library versions);
    the seed's name and its module's source.
    None when it cannot be known; such a template is never cached."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    add("extensions", "\n".join(source.extensions).encode())
    try:
        if source.alembic_ini:
            files = _alembic_files(source.path(source.alembic_ini))
            if files is None:
                return None
            # Revisions call Alembic and SQLAlchemy to write their DDL.
            add("alembic", f"{_version('alembic')} {_version('sqlalchemy')}".encode())
            for rel, path in files:
                add(rel, path.read_bytes())
        elif source.metadata:
            ddl = _metadata_ddl(source.metadata)
            if ddl is None:
                return None
            add("metadata", ddl.encode())
        elif source.sql_files:
            for name in source.sql_files:
                add(f"sql:{name}", source.path(name).read_bytes())
        if source.seed:
            from pytest_dbarch.postgres.seed import seed_identity

            identity = seed_identity(source.seed)
            if identity is None:
                return None
            add("seed", identity)
        root = Path(source.rootdir)
        for pattern in extra_files:
            for path in sorted(root.glob(pattern)):
                if path.is_file():
                    add(f"extra:{path.relative_to(root)}", path.read_bytes())
    except OSError:
        return None  # a missing file: the build reports it properly
    return digest.hexdigest()


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "-"


def _alembic_files(ini: Path) -> list[tuple[str, Path]] | None:
    """alembic.ini and every file of its script location and version locations, read
    without importing Alembic (the point of a warm start is not to)."""
    import configparser

    parser = configparser.ConfigParser(defaults={"here": str(ini.parent)})
    try:
        parser.read_string(ini.read_text())
        options = dict(parser.items("alembic"))
    except (OSError, configparser.Error):
        return None
    locations = [options.get("script_location", "")]
    separator = (options.get("path_separator") or options.get("version_path_separator") or "").split("#")[0].strip()
    versions = options.get("version_locations", "")
    if versions:
        splitter = {"space": " ", "newline": "\n", ":": ":", ";": ";", "os": os.pathsep}.get(separator)
        locations += versions.split(splitter) if splitter else versions.replace(",", " ").split()
    files: list[tuple[str, Path]] = [("alembic.ini", ini)]
    for location in filter(None, (loc.strip() for loc in locations)):
        directory = _resolve_location(location, ini.parent)
        if directory is None or not directory.is_dir():
            return None
        for path in sorted(directory.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.append((f"{location}/{path.relative_to(directory)}", path))
    return files if len(files) > 1 else None


def _resolve_location(location: str, base: Path) -> Path | None:
    """A path (relative to the ini's directory, where the build runs Alembic), or a
    ``package:subdir`` resource location."""
    if ":" in location and not os.path.isabs(location):
        import importlib.util

        package, _, sub = location.partition(":")
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations))) / sub
    return (base / location).resolve()


def _metadata_ddl(target: str) -> str | None:
    """Every statement ``create_all`` would send, compiled for PostgreSQL, without a
    database."""
    from sqlalchemy import create_mock_engine

    from pytest_dbarch.models import ModelsError, load_metadata

    try:
        metadata = load_metadata(target, "dbarch_metadata")
    except ModelsError:
        return None
    statements: list[str] = []

    def record(statement: Any, *args: Any, **kwargs: Any) -> None:
        statements.append(str(statement.compile(dialect=engine.dialect)).strip())

    engine = create_mock_engine("postgresql+psycopg://", record)
    metadata.create_all(engine, checkfirst=False)
    return ";\n".join(statements)


def ensure(params: dict[str, Any], source: SchemaSource, name: str) -> bool:
    """Make database ``name`` of the server at ``params`` hold ``source``'s complete
    template; True when this call built it. Under an advisory lock: whoever comes
    second waits and finds it complete. One without the completion mark (a build
    that crashed) is dropped and built again."""
    import psycopg
    from psycopg import sql

    from pytest_dbarch.origin import plugin_statements
    from pytest_dbarch.postgres.info import ServerInfo
    from pytest_dbarch.postgres.janitor import create_statement, drop_database

    info = ServerInfo("local", "0", "", params)
    lock = int(hashlib.sha256(name.encode()).hexdigest()[:15], 16)
    ident = sql.Identifier(name)
    with plugin_statements(), psycopg.connect(info.dsn("postgres"), autocommit=True) as admin:
        major = admin.info.server_version // 10000
        admin.execute("SELECT pg_advisory_lock(%s)", (lock,))
        try:
            row = admin.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                (name,),
            ).fetchone()
            if row is not None and row[0] == COMPLETE:
                return False
            if row is not None:
                drop_database(admin, name, major)
            admin.execute(create_statement(name, None, major))
            try:
                build(source, info.dsn(name), info.url(name))
            except BaseException:
                drop_database(admin, name, major)
                raise
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(COMPLETE)))
            return True
        finally:
            if not admin.closed:
                admin.execute("SELECT pg_advisory_unlock(%s)", (lock,))
