"""Alembic histories, driven one revision at a time through the project's own env.py.

Unlike ``alembic upgrade <rev>`` (which walks from the current heads), each call runs
exactly one ``RevisionStep`` by handing env.py a migration function that returns that
step: branches and merge points need no special cases, Alembic's head bookkeeping
stays right, and env.py's own configuration (schemas, ``transaction_per_migration``,
``autocommit_block()``) applies. env.py receives the database both ways users expect:
``sqlalchemy.url`` and ``config.attributes["connection"]``; the connection is never
inside a transaction when env.py gets it, so Alembic owns BEGIN/COMMIT and
``autocommit_block()`` works.
"""

from __future__ import annotations

import ast
import contextlib
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

import psycopg

from pytest_dbarch.migrations.observe import RanStatement
from pytest_dbarch.migrations.runners import MigrationError, Revision, StatementRelay, read_waivers
from pytest_dbarch.postgres.template import working_directory


def _is_empty_body(body: list[ast.stmt]) -> tuple[bool, str]:
    """A function body that does nothing: docstring, ``pass``, ``...``, or a raise of
    NotImplementedError."""
    rest = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if not rest:
        return True, "its body is empty (only a docstring or ...)"
    if all(isinstance(s, ast.Pass) for s in rest):
        return True, "its body is only 'pass'"
    first = rest[0]
    if isinstance(first, ast.Raise) and first.exc is not None:
        exc = first.exc.func if isinstance(first.exc, ast.Call) else first.exc
        if isinstance(exc, ast.Name) and exc.id == "NotImplementedError":
            return True, "it raises NotImplementedError"
    return False, ""


def _function_bodies(path: Path) -> dict[str, list[ast.stmt]]:
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError):
        return {}
    return {
        node.name: node.body
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name in ("upgrade", "downgrade")
    }


class AlembicRunner:
    """One ScriptDirectory and one connection for the whole history."""

    def __init__(self, ini: Path) -> None:
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        self.ini = ini
        self.source = str(ini)
        self.version_table = "alembic_version"
        self.transaction_per_revision: bool | None = None
        self._metadata: Any = None
        self.config = Config(str(ini))
        try:
            with working_directory(ini.parent), warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                self.script = ScriptDirectory.from_config(self.config)
                ordered = list(self.script.walk_revisions("base", "heads"))
        except Exception as exc:
            # Alembic names a missing down_revision only in a warning.
            notes = "".join(f"; {w.message}" for w in seen if "not present" in str(w.message))
            raise MigrationError(
                f"the Alembic history of {ini} cannot be loaded: {type(exc).__name__}: "
                f"{_first_line(exc)}{notes}",
                "fix the revision named above (a syntax error, an import error, a cycle, or "
                "a down_revision that points at no revision), then run 'alembic history' to check",
            ) from None
        self._scripts = {s.revision: s for s in ordered}
        self._revisions = [self._describe(s) for s in reversed(ordered)]
        self._engine: Any = None
        self._conn: Any = None
        self._relay: StatementRelay | None = None
        self._revision_path = ""
        self._listening = False

    def _describe(self, script: Any) -> Revision:
        path = Path(script.path)
        bodies = _function_bodies(path)
        up_empty, _ = _is_empty_body(bodies.get("upgrade", []))
        down_empty, note = _is_empty_body(bodies.get("downgrade", []))
        if "downgrade" not in bodies:
            down_empty, note = True, "it has no downgrade() function"
        try:
            text = path.read_text()
        except OSError:
            text = ""
        down = script.down_revision
        parents = () if down is None else ((down,) if isinstance(down, str) else tuple(down))
        return Revision(
            id=script.revision,
            down=parents,
            path=str(path),
            doc=(script.doc or "").strip().splitlines()[0] if script.doc else "",
            upgrade_empty=up_empty,
            downgrade_empty=down_empty,
            downgrade_note=note,
            waivers=read_waivers(text),
        )

    def revisions(self) -> list[Revision]:
        return list(self._revisions)

    def heads(self) -> list[str]:
        return sorted(self.script.get_heads())

    def open(self, url: str, dsn: str) -> None:
        from sqlalchemy import create_engine, event
        from sqlalchemy.pool import NullPool

        self.config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        self._engine = create_engine(url, poolclass=NullPool)
        self._conn = self._engine.connect()
        self.config.attributes["connection"] = self._conn
        if not self._listening:
            from sqlalchemy.engine import Engine

            # On the Engine class: env.py may build its own engine from sqlalchemy.url.
            event.listen(Engine, "before_cursor_execute", self._before)
            event.listen(Engine, "after_cursor_execute", self._after)
            event.listen(Engine, "handle_error", self._error)
            self._listening = True

    def connection(self) -> psycopg.Connection[Any]:
        return self._conn.connection.dbapi_connection  # type: ignore[no-any-return]

    def target_metadata(self) -> Any:
        return self._metadata

    def upgrade(self, revision: Revision, relay: StatementRelay | None = None) -> None:
        self._step(revision, upgrade=True, relay=relay)

    def downgrade(self, revision: Revision) -> None:
        self._step(revision, upgrade=False, relay=None)

    def _step(self, revision: Revision, upgrade: bool, relay: StatementRelay | None) -> None:
        from alembic.runtime.environment import EnvironmentContext
        from alembic.runtime.migration import MigrationStep

        script = self._scripts[revision.id]
        make = MigrationStep.upgrade_from_script if upgrade else MigrationStep.downgrade_from_script

        def steps(heads: Any, context: Any) -> list[Any]:
            self.version_table = context.version_table
            # What `alembic upgrade head` does on deploy: one transaction for every pending
            # revision unless env.py asks for one per revision.
            self.transaction_per_revision = bool(context.opts.get("transaction_per_migration"))
            self._metadata = context.opts.get("target_metadata")
            if relay is not None:
                relay.begin(self.connection())
            return [make(self.script.revision_map, script)]

        self._relay, self._revision_path = relay, revision.path
        try:
            with working_directory(self.ini.parent), EnvironmentContext(
                self.config, self.script, fn=steps, destination_rev=revision.id
            ):
                self.script.run_env()
            if self._conn.in_transaction():
                self._conn.commit()
        except Exception as exc:
            self._recover()
            raise self._explain(exc, revision, "upgrade" if upgrade else "downgrade") from None
        finally:
            if relay is not None:
                relay.end(self.connection())
            self._relay = None

    def _recover(self) -> None:
        """Leave the connection usable (rolled back, or replaced if it broke)."""
        try:
            self._conn.rollback()
        except Exception:
            pass
        if self._conn.closed or self._conn.invalidated:
            self._conn = self._engine.connect()
            self.config.attributes["connection"] = self._conn

    def _explain(self, exc: Exception, revision: Revision, action: str) -> MigrationError:
        frames = traceback.extract_tb(exc.__traceback__)
        in_revision = [f for f in frames if f.filename == revision.path]
        env_frames = [f for f in frames if f.filename.endswith("env.py")]
        cause = f"{type(exc).__name__}: {_first_line(exc)}"
        if in_revision:
            where = f"{in_revision[-1].filename}:{in_revision[-1].lineno}"
            return MigrationError(
                f"{action} of revision {revision.id} failed at {where}: {cause}",
                f"fix {action}() of revision {revision.id}; reproduce with "
                f"'alembic {action} {revision.id if action == 'upgrade' else revision.id + '-1'}'",
                revision=revision.id,
                where=where,
                reason=cause,
            )
        if env_frames:
            where = f"{env_frames[-1].filename}:{env_frames[-1].lineno}"
            return MigrationError(
                f"env.py of {self.ini} failed while running the {action} of revision "
                f"{revision.id}, at {where}: {cause}",
                "fix env.py: it must run migrations on config.attributes['connection'] "
                "(or sqlalchemy.url) without other side effects",
                revision=revision.id,
                where=where,
                reason=cause,
            )
        return MigrationError(
            f"{action} of revision {revision.id} ({revision.path}) failed: {cause}",
            f"fix {action}() of revision {revision.id}, or env.py",
            revision=revision.id,
            where=revision.path,
        )

    # --- statement capture (SQLAlchemy events) ---

    def _statement(self, sql: str, parameters: Any, conn: Any) -> RanStatement:
        dbapi = conn.connection.dbapi_connection
        status = dbapi.info.transaction_status
        in_tx = (not dbapi.autocommit) or status != psycopg.pq.TransactionStatus.IDLE
        return RanStatement(
            revision=self._relay.revision.id if self._relay else "",
            sql=sql,
            parameters=parameters,
            in_transaction=in_tx,
            where=self._where(),
        )

    def _where(self) -> str:
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename == self._revision_path:
                return f"{self._revision_path}:{frame.f_lineno}"
            frame = frame.f_back  # type: ignore[assignment]
        return ""

    def _is_version_bookkeeping(self, sql: str) -> bool:
        return self.version_table in sql and (
            "version_num" in sql or sql.lstrip().upper().startswith("CREATE TABLE")
        )

    def _before(self, conn: Any, cursor: Any, sql: str, parameters: Any, context: Any, executemany: bool) -> None:
        relay = self._relay
        if relay is None or not relay.is_open:
            return
        raw = conn.connection.dbapi_connection
        if self._is_version_bookkeeping(sql):
            relay.end(raw)  # the revision's own statements are over; its transaction may be open
            return
        statement = self._statement(sql, parameters, conn)
        conn.info["dbarch_statement"] = statement
        relay.before(statement, raw)

    def _after(self, conn: Any, cursor: Any, sql: str, parameters: Any, context: Any, executemany: bool) -> None:
        statement = conn.info.pop("dbarch_statement", None)
        if self._relay is not None and statement is not None:
            self._relay.after(statement, conn.connection.dbapi_connection, None)

    def _error(self, context: Any) -> None:
        conn = context.connection
        if conn is None:
            return
        statement = conn.info.pop("dbarch_statement", None)
        if self._relay is not None and statement is not None:
            self._relay.after(statement, conn.connection.dbapi_connection, context.original_exception)

    def close(self) -> None:
        if self._listening:
            from sqlalchemy import event
            from sqlalchemy.engine import Engine

            event.remove(Engine, "before_cursor_execute", self._before)
            event.remove(Engine, "after_cursor_execute", self._after)
            event.remove(Engine, "handle_error", self._error)
            self._listening = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self.config.attributes.pop("connection", None)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
