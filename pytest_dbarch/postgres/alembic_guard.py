"""Keep an application's env.py on the template while the plugin builds it, and prove
afterwards that the template is the database that was migrated.

Many env.py files ignore the URL and connection Alembic's config carries and build
their own engine from the application's settings. Pointed at a live database, such an
upgrade migrates that database and leaves the template empty. Two guards:

- ``pointed_environment``: while env.py runs, the environment variables common
  settings libraries read (``DATABASE_URL``, ``POSTGRES_*``, libpq's ``PG*``) name the
  template, so settings read at that moment land on it. Settings an application read
  before the build (a module-level ``Settings()`` imported by conftest) keep their old
  values; the second guard catches those. ``os.environ`` is process-wide: the build
  runs in the session's main thread before any test, and the previous values are
  restored right after it.
- ``only_the_template``: while env.py runs, a SQLAlchemy connection to any other
  database is refused before it is made, naming env.py's line.
  ``guarded_env`` applies both; the migration checks run env.py inside it too.
- ``verify_at_head``: after the upgrade (a connection made without SQLAlchemy is not
  seen by the guard above) the template's version table must hold the
  history's head(s); when it does not, one error names env.py's line that reaches
  elsewhere and the change to make.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_dbarch.errors import SchemaError

# Names read by pydantic-settings/Django-environ style configs and by libpq itself.
URL_VARIABLES = ("DATABASE_URL", "SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_DATABASE_URL")
PART_VARIABLES = {
    "host": ("POSTGRES_SERVER", "POSTGRES_HOST", "PGHOST", "DB_HOST"),
    "port": ("POSTGRES_PORT", "PGPORT", "DB_PORT"),
    "user": ("POSTGRES_USER", "PGUSER", "DB_USER"),
    "password": ("POSTGRES_PASSWORD", "PGPASSWORD", "DB_PASSWORD"),
    "dbname": ("POSTGRES_DB", "PGDATABASE", "DB_NAME"),
}


def environment_for(dsn: str, url: str) -> dict[str, str]:
    """The variables (name -> value) that point settings at the database of ``dsn``."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(dsn)
    values = {name: url for name in URL_VARIABLES}
    for key, names in PART_VARIABLES.items():
        value = parts.get(key)
        if value is None and key == "password":
            value = ""
        if value is not None:
            values.update(dict.fromkeys(names, str(value)))
    return values


@contextlib.contextmanager
def pointed_environment(dsn: str, url: str) -> Iterator[None]:
    """Set ``environment_for(dsn, url)`` in ``os.environ``; restore every previous
    value (or absence) afterwards, also on failure."""
    wanted = environment_for(dsn, url)
    before = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class ForeignDatabase(SchemaError):
    """env.py asked SQLAlchemy for a connection to a database other than the template."""


@contextlib.contextmanager
def only_the_template(dsn: str, env: Path) -> Iterator[None]:
    """While the block runs, a SQLAlchemy connection this thread opens to any database
    but the one of ``dsn`` (another database name, host or port) is refused before it
    is made: env.py can write nowhere else. Other threads are left alone."""
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    wanted = _target(conninfo_to_dict(dsn))
    thread = threading.get_ident()

    def refuse_others(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        if threading.get_ident() != thread:
            return
        params = dict(cparams)
        if cargs and isinstance(cargs[0], str):  # a DSN string handed to the driver
            with contextlib.suppress(Exception):
                params = {**conninfo_to_dict(cargs[0]), **params}
        asked = _target(params)
        if asked != wanted:
            host, port, name = asked
            raise ForeignDatabase(
                f"env.py asked for a connection to database {name or '?'!r} on {host or 'localhost'}:"
                f"{port}, not the template the plugin gave it; the connection was refused and "
                f"nothing was migrated there{_culprit(env)}",
                _FIX,
            )

    event.listen(Engine, "do_connect", refuse_others)
    try:
        yield
    finally:
        event.remove(Engine, "do_connect", refuse_others)


@contextlib.contextmanager
def guarded_env(dsn: str, url: str, env: Path) -> Iterator[None]:
    """Both guards for one run of env.py on the database of ``dsn``/``url``: the
    template build, and the migration checks' runs on their scratch databases."""
    with pointed_environment(dsn, url), only_the_template(dsn, env):
        yield


def _target(params: dict[str, Any]) -> tuple[str, str, str]:
    """(host, port, database) as a driver would resolve them, for comparison."""
    host = str(params.get("host") or "")
    port = str(params.get("port") or "5432")
    name = str(params.get("dbname") or params.get("database") or "")
    return host, port, name


_FIX = (
    'in env.py, use the connection the plugin passes (config.attributes["connection"]) '
    'or build the engine from config.get_main_option("sqlalchemy.url"), and read the '
    "application's settings only when neither is set"
)


_VERSION_TABLES = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.attname = 'version_num' AND c.relkind IN ('r', 'p') AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY c.relname = 'alembic_version' DESC, 1
"""


def verify_at_head(cfg: Any, conn: Any) -> None:
    """Raise SchemaError unless a version table in ``conn``'s database holds exactly
    the heads of ``cfg``'s script directory. ``conn`` is a SQLAlchemy Connection to
    the template; an empty history needs no version row."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    script = ScriptDirectory.from_config(cfg)
    heads = set(script.get_heads())
    if not heads:
        return
    found: dict[str, set[str]] = {}
    for (table,) in conn.execute(text(_VERSION_TABLES)).fetchall():
        found[table] = {row[0] for row in conn.execute(text(f"SELECT version_num FROM {table}")).fetchall()}
    conn.rollback()
    if any(versions == heads for versions in found.values()):
        return
    env = Path(script.dir) / "env.py"
    wanted = ", ".join(sorted(heads))
    if not found:
        state = "it has no alembic_version table"
    else:
        table, versions = next(iter(found.items()))
        state = f"its {table} holds {', '.join(sorted(versions)) or 'no row'}"
    raise SchemaError(
        f"Alembic reported the upgrade to head ({wanted}) done, but the template database the "
        f"plugin gave it was not migrated: {state}. env.py ran the migrations against another "
        f"database{_culprit(env)}",
        _FIX + "; a test tool must not migrate a database it was not given, so check which "
        "database that one was",
    )


# Lines of env.py that reach a database of their own choosing, most telling first.
_SUSPECTS = (
    re.compile(r"""set_main_option\(\s*["']sqlalchemy\.url"""),
    re.compile(r"""\[\s*["']sqlalchemy\.url["']\s*\]\s*="""),
    re.compile(r"\bsettings\.\w+"),
    re.compile(r"\bos\.(environ|getenv)\b"),
    re.compile(r"\b(create_engine|create_async_engine|engine_from_config|async_engine_from_config)\("),
)
_SAFE = re.compile(r"""get_main_option\(\s*["']sqlalchemy\.url|attributes""")


def _culprit(env: Path) -> str:
    """`` (env.py:LINE: code)`` for the line most likely to pick the other database."""
    try:
        lines = env.read_text().splitlines()
    except OSError:
        return f" ({env})"
    for pattern in _SUSPECTS:
        for number, line in enumerate(lines, start=1):
            code = line.split("#", 1)[0]
            if pattern.search(code) and not _SAFE.search(code):
                return f" ({env}:{number}: {line.strip()})"
    return f" ({env})"
