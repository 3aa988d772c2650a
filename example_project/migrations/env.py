"""Alembic environment for the example CRM.

Connection sources, in order of preference:

1. ``config.attributes["connection"]``: a live SQLAlchemy ``Connection``
   supplied by the caller (pytest-dbarch does this).  env.py neither opens nor
   closes it.  If the caller's connection is already inside a transaction,
   Alembic joins it and the caller must commit; otherwise Alembic begins and
   commits its own transaction.
2. ``sqlalchemy.url`` from the ini file (or ``Config.set_main_option``), used
   to build a throwaway engine.
"""

from __future__ import annotations

import logging.config
from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection

from crm.models import Base

config = context.config
target_metadata = Base.metadata

# Only the Alembic CLI sets cmd_opts.  Configuring logging from a programmatic
# run (e.g. inside pytest) would remove the host process's root handlers.
if config.cmd_opts is not None and config.config_file_name is not None:
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        # Each revision commits on its own: the locks of one are never held while the
        # next runs (pytest-dbarch's migrations.locks.deploy-transaction check).
        transaction_per_migration=True,
        **kwargs,
    )


def _migrate() -> None:
    # Never queue behind a long transaction holding a lock on a busy table: give up after
    # 2 s and retry the deploy (pytest-dbarch's lock-safety lint checks this). Set for
    # the session, so it holds in every revision's transaction and in autocommit blocks.
    context.execute("SET lock_timeout = '2s'")
    context.execute("SET statement_timeout = '60s'")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``) without a database."""
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("offline mode needs sqlalchemy.url in alembic.ini")
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    _migrate()


def _run_with(connection: Connection) -> None:
    _configure(connection=connection)
    _migrate()


def run_migrations_online() -> None:
    """Migrate over a caller-supplied connection, or one built from the URL."""
    supplied = config.attributes.get("connection")
    if supplied is not None:
        _run_with(supplied)
        return

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no database: pass config.attributes['connection'] or set sqlalchemy.url"
        )
    # NullPool: a migration run should not leave pooled connections behind.
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run_with(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
