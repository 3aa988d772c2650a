"""Every public fixture of pytest-dbarch.

Heavy imports (psycopg, SQLAlchemy) happen inside the fixtures, so a session whose
tests never ask for a database never loads them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import USER_PROPERTY, Finding
from pytest_dbarch.markers import MarkerError, marker_message, read_dbarch
from pytest_dbarch.redact import Password
from pytest_dbarch.stash import DATABASES, SETTINGS, session_databases

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy import URL, Connection, Engine
    from sqlalchemy.orm import Session

    from pytest_dbarch.postgres.databases import Databases
    from pytest_dbarch.postgres.info import ServerInfo
    from pytest_dbarch.postgres.isolation import TestDatabase
    from pytest_dbarch.postgres.template import SchemaSource


def fail_on_dbarch_error(exc: DbarchError) -> NoReturn:
    """Turn a user-fixable problem into a short test error, not a traceback."""
    raise pytest.fail.Exception(f"pytest-dbarch: {exc}", pytrace=False) from None


@pytest.fixture(scope="session")
def dbarch_dsn(request: pytest.FixtureRequest) -> str | None:
    """The DSN of an existing server to use instead of starting one (default: the
    ``--dbarch-dsn`` / ``DBARCH_DSN`` / ``dbarch_dsn`` setting). Override it to hand over
    a server you already run, e.g. pytest-postgresql's:
    ``dbarch_dsn = pytest_dbarch.pytest_postgresql.dsn_from("postgresql_proc")``."""
    return request.config.stash[SETTINGS].dsn


@pytest.fixture(scope="session")
def _dbarch_databases(request: pytest.FixtureRequest, dbarch_dsn: str | None) -> Iterator[Databases]:
    _use_dsn(request.config, dbarch_dsn)
    databases = session_databases(request.config)
    try:
        yield databases
    finally:
        databases.close()


def _use_dsn(config: pytest.Config, dsn: str | None) -> None:
    """A ``dbarch_dsn`` fixture override becomes the session's DSN setting, before the
    session's databases are created (or, if created, started)."""
    settings = config.stash[SETTINGS]
    if not dsn or dsn == settings.dsn:
        return
    from dataclasses import replace

    new = replace(settings, dsn=dsn, sources={**settings.sources, "dsn": "fixture dbarch_dsn"})
    existing = config.stash.get(DATABASES, None)
    if existing is not None and existing.server is not None:
        fail_on_dbarch_error(
            DbarchError(
                "the dbarch_dsn fixture hands over a server after pytest-dbarch already started "
                "one for this session (e.g. for the migration check items)",
                "set the server with --dbarch-dsn / DBARCH_DSN instead, or run the migration "
                "checks in a session of their own",
            )
        )
    config.stash[SETTINGS] = new
    if existing is not None:
        existing.settings = new


@pytest.fixture(scope="session")
def dbarch_server(_dbarch_databases: Databases, dbarch_schema_source: SchemaSource) -> ServerInfo:
    """The PostgreSQL server of this session: started by the plugin, or given by DSN.

    Attributes: ``mode`` ('local' or 'external'), ``version``, ``source`` (where the
    binaries or the DSN came from); ``dsn(dbname)``, ``url(dbname)`` and
    ``safe_dsn(dbname)`` (password masked) build connection strings.
    """
    try:
        # The schema source decides which cached cluster (template inside) it starts from.
        return _dbarch_databases.start(dbarch_schema_source)
    except DbarchError as exc:
        fail_on_dbarch_error(exc)


@pytest.fixture(scope="session")
def dbarch_schema_source(request: pytest.FixtureRequest) -> SchemaSource:
    """Where the schema comes from (ini ``dbarch_alembic_ini``, ``dbarch_metadata`` or
    ``dbarch_sql_files``, plus ``dbarch_extensions``). Override it in a conftest.py to
    build the template another way."""
    from pytest_dbarch.postgres.template import SchemaSource

    return SchemaSource.from_settings(request.config.stash[SETTINGS])


@pytest.fixture(scope="session")
def dbarch_template(
    _dbarch_databases: Databases, dbarch_server: ServerInfo, dbarch_schema_source: SchemaSource
) -> str:
    """Name of the template database holding the built schema (built once per session)."""
    try:
        return _dbarch_databases.template_for(dbarch_schema_source)
    except DbarchError as exc:
        fail_on_dbarch_error(exc)


@pytest.fixture(scope="session")
def dbarch_engine_options() -> dict[str, Any]:
    """Extra keyword arguments for ``create_engine`` of ``dbarch_engine``; override to
    set e.g. ``echo=True``."""
    return {}


@pytest.fixture
def _dbarch_database(
    request: pytest.FixtureRequest, _dbarch_databases: Databases, dbarch_template: str
) -> Iterator[TestDatabase]:
    try:
        isolation = read_dbarch(request.node)["isolation"]
    except MarkerError as exc:
        raise pytest.fail.Exception(marker_message(request.node, exc), pytrace=False) from None
    from pytest_dbarch.postgres.scoped import scoped_database_of

    try:
        scoped = scoped_database_of(request)
        if scoped is not None and isolation == "clone":
            raise DbarchError(
                f"{request.node.nodeid} asks for clone isolation but uses the {scoped.scope}'s "
                f"database ({scoped.scope}-scoped), where each test runs in a rolled-back transaction",
                "drop isolation='clone' from the test's marker, or give it fixtures that do "
                "not depend on a module- or session-scoped database",
            )
        isolation = "transaction" if scoped is not None else isolation or request.config.stash[SETTINGS].isolation
        database = _dbarch_databases.for_test(dbarch_template, isolation, scoped)
    except DbarchError as exc:
        fail_on_dbarch_error(exc)
    if scoped is not None:
        scoped.enter(database)
    try:
        yield database
    finally:
        if scoped is not None:
            scoped.leave()
    try:
        _dbarch_databases.finish_test(database, request.node.nodeid)
    except DbarchError as exc:
        fail_on_dbarch_error(exc)


@pytest.fixture
def dbarch_url(_dbarch_database: TestDatabase) -> str:
    """This test's database as a SQLAlchemy URL string (``postgresql+psycopg://``).

    A ``str`` like any other, except that its repr (tracebacks, ``-l``) shows the
    password as ``***``.

    In ``transaction`` isolation, connections you open yourself from this URL are not
    rolled back: use ``dbarch_engine`` and friends for that.
    """
    return _dbarch_database.url


@pytest.fixture
def dbarch_engine(_dbarch_database: TestDatabase, dbarch_engine_options: dict[str, Any]) -> Iterator[Engine]:
    """A SQLAlchemy Engine on this test's database, inside its isolation.

    In ``transaction`` isolation every connection it hands out is the test's one
    connection: ``commit()`` works and everything is rolled back after the test.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError
    from sqlalchemy.pool import StaticPool

    url = _engine_url(_dbarch_database.url)
    options = dict(dbarch_engine_options)
    if _dbarch_database.isolation == "transaction":
        options.update(creator=_dbarch_database.shared_connection, poolclass=StaticPool, pool_reset_on_return=None)
    elif not {"creator", "connect_args"} & set(options):
        options["creator"] = _dbarch_database.connect  # the clone pool's connection, opened ahead, first
    try:
        engine = create_engine(url, **options)
    except (TypeError, ArgumentError) as exc:
        raise pytest.fail.Exception(
            f"pytest-dbarch: dbarch_engine cannot be created with the options of dbarch_engine_options "
            f"{sorted(dbarch_engine_options)}: {exc}",
            pytrace=False,
        ) from None
    # The dialect's first connect (a rollback, first-connect queries) belongs to setup,
    # not to the test's writes or its query count; in ``clone`` isolation the pooled
    # connection is then the one the test gets.
    engine.connect().close()
    yield engine
    engine.dispose()


def _engine_url(url: str) -> URL:
    """``url`` as a SQLAlchemy URL whose password stays ``***`` in every repr, also in
    the locals of SQLAlchemy's own frames (``cparams``) when a traceback runs through them."""
    from sqlalchemy.engine import make_url

    parsed = make_url(str(url))
    return parsed.set(password=Password(parsed.password)) if parsed.password else parsed


@pytest.fixture
def dbarch_connection(dbarch_engine: Engine) -> Iterator[Connection]:
    """A SQLAlchemy Connection on this test's database, inside its isolation."""
    with dbarch_engine.connect() as connection:
        yield connection


@pytest.fixture
def dbarch_session(dbarch_engine: Engine, request: pytest.FixtureRequest) -> Iterator[Session]:
    """A SQLAlchemy ORM Session on this test's database; code under test may call
    ``commit()``, and in ``transaction`` isolation all of it is rolled back afterwards.
    Its class follows ``dbarch_session_class`` (SQLModel's when the models are SQLModel's)."""
    from pytest_dbarch.models import models_target
    from pytest_dbarch.session_class import session_class

    settings = request.config.stash[SETTINGS]
    try:
        cls = session_class(settings.session_class, (models_target(settings) or (None,))[0])
    except DbarchError as exc:
        fail_on_dbarch_error(exc)
    with cls(bind=dbarch_engine) as session:
        yield session


@pytest.fixture
def dbarch_psycopg(_dbarch_database: TestDatabase) -> Iterator[psycopg.Connection[Any]]:
    """A raw psycopg 3 connection on this test's database, inside its isolation.

    In ``transaction`` isolation it is the same connection the SQLAlchemy fixtures
    use, so both see each other's writes; ``commit()`` releases a savepoint.
    """
    if _dbarch_database.isolation == "transaction":
        yield _dbarch_database.shared_connection()
        return
    with _dbarch_database.connect() as connection:  # the clone pool's, opened ahead
        yield connection


class FindingRecorder:
    """Attach Findings to the running test; they reach the summary and reports."""

    def __init__(self, node: pytest.Item) -> None:
        self._node = node

    def add(self, finding: Finding) -> Finding:
        finding = finding.for_test(self._node.nodeid)
        self._node.user_properties.append((USER_PROPERTY, finding.to_json()))
        return finding


@pytest.fixture
def dbarch_findings(request: pytest.FixtureRequest) -> FindingRecorder:
    """Record your own ``pytest_dbarch.Finding``s for this test: ``dbarch_findings.add(f)``."""
    return FindingRecorder(request.node)
