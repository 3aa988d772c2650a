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
import functools
import re
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

import psycopg

from pytest_dbarch.migrations.observe import RanStatement
from pytest_dbarch.migrations.runners import (
    EnvError,
    MigrationError,
    Outside,
    Revision,
    StatementRelay,
    Step,
    Walk,
    read_waivers,
    restore_session_timeouts,
    session_timeouts,
)
from pytest_dbarch.postgres.alembic_guard import guarded_env
from pytest_dbarch.postgres.template import working_directory


# The context.configure() options that decide what drift compares (read from env.py).
COMPARE_OPTIONS = (
    "compare_type",
    "compare_server_default",
    "include_object",
    "include_name",
    "include_schemas",
    "version_table_schema",
)


@functools.cache
def _engine_like_connection_class() -> type:
    from sqlalchemy.engine import Connection

    class EngineLikeConnection(Connection):
        """The checker's Connection, usable where env.py expects an Engine: pytest-alembic's
        env.py shape ``with connectable.connect() as connection:`` gets this very
        connection back, left open for the next step."""

        def connect(self) -> contextlib.AbstractContextManager[Any]:
            return contextlib.nullcontext(self)

        def dispose(self, close: bool = True) -> None:
            """Nothing to dispose: the checker owns the connection."""

    return EngineLikeConnection


def _commit(context: Any) -> None:
    """Commit what the last step did, wherever env.py keeps its transaction: Alembic's
    own (``autocommit_block()`` commits and opens the next one), or one the connection
    began by itself (a statement env.py ran outside ``begin_transaction()``)."""
    connection = context.connection
    if connection is None or not connection.in_transaction():
        return
    if getattr(context, "_transaction", None) is not None:
        with context.autocommit_block():
            pass
    else:
        connection.commit()


def drive_stepwise_one(runner: AlembicRunner, step: Step) -> None:
    """One step on its own (``upgrade()``/``downgrade()`` outside a walk)."""
    failure: list[MigrationError] = []

    def walk() -> Walk:
        try:
            yield step
        except MigrationError as exc:
            failure.append(exc)

    runner.drive(walk())
    if failure:
        raise failure[0]


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


def _refusal(body: list[ast.stmt]) -> str:
    """A downgrade that starts by raising (other than NotImplementedError) declares the
    revision one-way: the exception's message, or its name."""
    rest = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if not rest or not isinstance(rest[0], ast.Raise) or rest[0].exc is None:
        return ""
    exc = rest[0].exc
    name = exc.func if isinstance(exc, ast.Call) else exc
    if isinstance(name, ast.Name) and name.id == "NotImplementedError":
        return ""
    if isinstance(exc, ast.Call) and exc.args and isinstance(exc.args[0], ast.Constant):
        return str(exc.args[0].value)
    if isinstance(exc, ast.Call) and exc.args:
        return ast.unparse(exc.args[0])  # e.g. an f-string, as written
    return ast.unparse(exc)


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


def _explanation(text: str, body: list[ast.stmt]) -> str:
    """The docstring and ``#`` comments inside a function body: why it does nothing."""
    if not body:
        return ""
    lines = text.splitlines()[body[0].lineno - 1 : (body[-1].end_lineno or body[-1].lineno)]
    said = [line.strip().lstrip("#").strip() for line in lines if line.strip().startswith("#")]
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        said.insert(0, " ".join(first.value.value.split()))
    return " ".join(s for s in said if s)


class AlembicRunner:
    """One ScriptDirectory and one connection for the whole history."""

    def __init__(self, ini: Path) -> None:
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        self.ini = ini
        self.source = str(ini)
        self.version_table = "alembic_version"
        self.transaction_per_revision: bool | None = None
        self.compare_options: dict[str, Any] = {}
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
        comment = _explanation(text, bodies.get("downgrade", [])) if down_empty else ""
        refuses = _refusal(bodies.get("downgrade", []))
        return Revision(
            id=script.revision,
            down=parents,
            path=str(path),
            doc=(script.doc or "").strip().splitlines()[0] if script.doc else "",
            upgrade_empty=up_empty,
            downgrade_empty=down_empty,
            downgrade_note=note,
            downgrade_comment=comment,
            downgrade_refuses=refuses,
            waivers=read_waivers(text),
        )

    def revisions(self) -> list[Revision]:
        return list(self._revisions)

    @property
    def env_path(self) -> str:
        return str(Path(self.script.dir) / "env.py")

    def heads(self) -> list[str]:
        return sorted(self.script.get_heads())

    def open(self, url: str, dsn: str) -> None:
        from sqlalchemy import create_engine, event
        from sqlalchemy.pool import NullPool

        self.config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        self._target = (dsn, url)  # env.py is kept on it (postgres/alembic_guard.py)
        self._engine = create_engine(url, poolclass=NullPool)
        self._engine._connection_cls = _engine_like_connection_class()
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
        drive_stepwise_one(self, Step(revision, True, relay))

    def downgrade(self, revision: Revision, relay: StatementRelay | None = None) -> None:
        drive_stepwise_one(self, Step(revision, False, relay))

    def drive(self, walk: Walk) -> None:
        """Run env.py once for as many steps of ``walk`` as it can.

        env.py gets a migration function whose steps come from the walk, one at a time:
        each step is committed (``autocommit_block()`` ends the transaction env.py may
        hold open for all revisions) before the walk sees its outcome, so the walk can
        read the catalog and seed rows between steps. A failing step ends env.py's run;
        its error is thrown into the walk and env.py runs again for the rest. Running
        env.py once instead of once per step saves its connect and imports each time.
        """
        from alembic.runtime.environment import EnvironmentContext
        from alembic.runtime.migration import MigrationStep

        pending: list[Any] = [None, None]  # value to send, MigrationError to throw
        finished = False

        def advance() -> Step | Outside | None:
            nonlocal finished
            value, error = pending
            pending[:] = [None, None]
            try:
                return walk.throw(error) if error is not None else walk.send(value)
            except StopIteration:
                finished = True
                return None

        while not finished:
            request = advance()
            while isinstance(request, Outside):
                pending[0] = request.action()
                request = advance()
            if request is None:
                return
            current: list[Step] = [request]
            called = False

            def steps(heads: Any, context: Any) -> Any:
                nonlocal called
                called = True
                self._read_options(context)
                # The connection the migrations run on (env.py may have made its own), and
                # its timeouts as env.py set them up.
                migrating = context.connection.connection.dbapi_connection
                baseline = session_timeouts(migrating)
                step: Step | None = current[0]
                direction: bool | None = None
                while isinstance(step, Step):
                    if step.upgrade != direction:
                        # A turn (up after down, down after up) is another `alembic` command:
                        # SQLAlchemy's memo of the types create_table / drop_table handled
                        # (enums) must not carry over, or upgrading again skips CREATE TYPE.
                        context.impl.memo.clear()
                        direction = step.upgrade
                    script = self._scripts[step.revision.id]
                    make = MigrationStep.upgrade_from_script if step.upgrade else MigrationStep.downgrade_from_script
                    self._relay, self._revision_path = step.relay, step.revision.path
                    if step.relay is not None:
                        restore_session_timeouts(migrating, baseline)
                        step.relay.begin(self.connection())
                    yield make(self.script.revision_map, script)
                    # The step ran: commit it wherever env.py keeps its transaction.
                    self._end_relay()
                    _commit(context)
                    step = current[0] = advance()  # type: ignore[assignment]
                if isinstance(step, Outside):
                    current[0] = step  # env.py must let go of the database first
                # the walk is over (None) or wants the database alone: env.py ends here

            try:
                with working_directory(self.ini.parent), guarded_env(*self._target, Path(self.env_path)), (
                    EnvironmentContext(self.config, self.script, fn=steps, destination_rev=None)
                ):
                    self.script.run_env()
                if self._conn.in_transaction():
                    self._conn.commit()
            except Exception as exc:
                self._end_relay()
                self._recover()
                step = current[0]
                if not called:
                    raise self._env_failed(exc) from None
                if not isinstance(step, Step):
                    raise self._env_failed(exc, after_steps=True) from None
                pending[1] = self._explain(exc, step.revision, "upgrade" if step.upgrade else "downgrade")
                continue
            finally:
                self._relay = None
            if not called:
                raise EnvError(
                    f"env.py of {self.ini} never ran the migrations (context.run_migrations() was "
                    "not called, or env.py ran in offline mode)",
                    "env.py must call context.configure(connection=...) and context.run_migrations() "
                    "when context.is_offline_mode() is false",
                    where=str(Path(self.script.dir) / "env.py"),
                )
            step = current[0]
            if isinstance(step, Outside):
                pending[0] = step.action()
            elif isinstance(step, Step):  # env.py returned without running every step
                raise EnvError(
                    f"env.py of {self.ini} stopped before the migrations ran (revision {step.revision.id})",
                    "env.py must run context.run_migrations() once, inside context.begin_transaction()",
                    where=str(Path(self.script.dir) / "env.py"),
                )

    def _end_relay(self) -> None:
        if self._relay is not None:
            self._relay.end(self.connection())
            self._relay = None

    def _read_options(self, context: Any) -> None:
        """What env.py configured: the version table, per-revision transactions (what
        ``alembic upgrade head`` does on deploy), the models and the comparison options
        drift must honour."""
        self.version_table = context.version_table
        self.transaction_per_revision = bool(context.opts.get("transaction_per_migration"))
        self._metadata = context.opts.get("target_metadata")
        self.compare_options = {k: v for k, v in context.opts.items() if k in COMPARE_OPTIONS}

    def _env_failed(self, exc: Exception, after_steps: bool = False) -> EnvError:
        """One error for the history: env.py cannot run at all."""
        frames = traceback.extract_tb(exc.__traceback__)
        env_frames = [f for f in frames if f.filename.endswith("env.py")]
        where = f"{env_frames[-1].filename}:{env_frames[-1].lineno}" if env_frames else str(self.ini)
        line = (env_frames[-1].line or "").strip() if env_frames else ""
        cause = f"{type(exc).__name__}: {_first_line(exc)}"
        if isinstance(exc, ImportError):
            missing = getattr(exc, "name", None) or ""
            fix = (
                f"make {missing or 'the module'} importable where the checks run: if it is part of "
                "this project, add 'prepend_sys_path = .' to the [alembic] section of alembic.ini "
                "(or run from the directory that holds it / set PYTHONPATH); if it is a package, "
                "install it into this environment"
            )
        elif "has no attribute 'connect'" in str(exc) or "has no attribute 'begin'" in str(exc):
            fix = (
                f"env.py line '{line}' expects an Engine: take the Connection given in "
                "config.attributes['connection'] and use it directly (context.configure(connection=it)), "
                "or build an engine from sqlalchemy.url"
            )
        else:
            fix = "fix env.py at the line shown; it must configure the context and call context.run_migrations()"
        when = "after running revisions" if after_steps else "before any revision ran"
        return EnvError(
            f"env.py of {self.ini} fails {when}, at {where}: {cause}" + (f" (line: {line})" if line else ""),
            fix,
            where=where,
            reason=cause,
        )

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


_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>")


def _first_line(exc: BaseException) -> str:
    """The error's first line, Python object reprs (``<... object at 0x...>``) cut out."""
    text = str(exc).strip()
    return _REPR.sub("...", text.splitlines()[0]) if text else ""
