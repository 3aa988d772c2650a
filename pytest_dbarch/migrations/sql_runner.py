"""Plain SQL migration directories, the two layouts most tools share.

- pairs: ``0001_create_accounts.up.sql`` and ``0001_create_accounts.down.sql``;
- one file per revision with ``-- migrate:up`` and ``-- migrate:down`` sections (dbmate).

Revisions run in the order of their leading number, each in a transaction of its own
unless its section header (or the file's first line) says ``transaction:false`` (needed
for ``CREATE INDEX CONCURRENTLY``). Statements are sent one by one, so observers see
each with its file:line. The database is disposable, so no version table is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from pytest_dbarch.migrations.observe import RanStatement
from pytest_dbarch.migrations.runners import (
    MigrationError,
    Revision,
    StatementRelay,
    Walk,
    drive_stepwise,
    read_waivers,
    restore_session_timeouts,
    session_timeouts,
)

_NUMBERED = re.compile(r"^(\d+)[_-]?(.*)$")
_SECTION = re.compile(r"^--\s*migrate:(up|down)\b(.*)$", re.MULTILINE | re.IGNORECASE)
_NO_TRANSACTION = re.compile(r"transaction\s*:\s*false", re.IGNORECASE)


@dataclass(frozen=True)
class Script:
    """One direction of one revision: SQL text, where it starts, whether it runs in a transaction."""

    path: Path
    text: str
    first_line: int
    transactional: bool


def split_statements(text: str, first_line: int = 1) -> list[tuple[str, int]]:
    """Split SQL into statements with the line each starts on, respecting quotes,
    dollar quotes and comments."""
    statements: list[tuple[str, int]] = []
    start, i, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "-" and text.startswith("--", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif ch == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        elif ch in ("'", '"'):
            backslashes = ch == "'" and i > 0 and text[i - 1] in "Ee"
            i += 1
            while i < n:
                if backslashes and text[i] == "\\":
                    i += 2
                    continue
                if text[i] == ch:
                    if text.startswith(ch * 2, i):
                        i += 2
                        continue
                    break
                i += 1
        elif ch == "$":
            match = re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", text[i:])
            if match:
                tag = match.group(0)
                end = text.find(tag, i + len(tag))
                i = n if end < 0 else end + len(tag)
                continue
        elif ch == ";":
            _add(statements, text, start, i, first_line)
            start = i + 1
        i += 1
    _add(statements, text, start, n, first_line)
    return statements


def _add(statements: list[tuple[str, int]], text: str, start: int, end: int, first_line: int) -> None:
    chunk = text[start:end]
    body = _strip_comments(chunk).strip()
    if not body:
        return
    offset = start + (len(chunk) - len(chunk.lstrip()))
    statements.append((chunk.strip(), first_line + text.count("\n", 0, offset)))


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.DOTALL)


class SqlDirectoryRunner:
    """Runs a directory of ``.sql`` revisions on one psycopg connection."""

    version_table = ""

    transaction_per_revision = True  # every script runs in a transaction of its own

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.source = str(directory)
        self._scripts: dict[str, tuple[Script, Script | None]] = {}
        self._revisions = self._discover()
        self._conn: psycopg.Connection[Any] | None = None

    def _discover(self) -> list[Revision]:
        found: dict[str, tuple[int, Script | None, Script | None, Path]] = {}
        for path in sorted(self.directory.glob("*.sql")):
            name = path.name[: -len(".sql")]
            direction = ""
            for suffix in (".up", ".down"):
                if name.endswith(suffix):
                    name, direction = name[: -len(suffix)], suffix[1:]
            match = _NUMBERED.match(name)
            if not match:
                raise MigrationError(
                    f"SQL migration {path} does not start with a number",
                    "name SQL migrations NNNN_name.up.sql / NNNN_name.down.sql (or NNNN_name.sql "
                    "with -- migrate:up / -- migrate:down sections) so their order is explicit",
                )
            number, up, down, _ = found.get(name, (int(match.group(1)), None, None, path))
            text = path.read_text()
            if direction == "up":
                up = _script(path, text, 1)
            elif direction == "down":
                down = _script(path, text, 1)
            else:
                up, down = _sections(path, text)
            found[name] = (number, up, down, path)
        if not found:
            raise MigrationError(
                f"the SQL migration directory {self.directory} holds no .sql files",
                "point dbarch_migrations at the directory that holds your migrations",
            )
        numbers: dict[int, str] = {}
        revisions: list[Revision] = []
        previous: tuple[str, ...] = ()
        for name, (number, up, down, path) in sorted(found.items(), key=lambda kv: (kv[1][0], kv[0])):
            if number in numbers:
                raise MigrationError(
                    f"SQL migrations {numbers[number]} and {name} share the number {number}",
                    "renumber one of them: the order of revisions must be explicit",
                )
            numbers[number] = name
            if up is None:
                raise MigrationError(
                    f"SQL migration {name} in {self.directory} has a down script but no up script",
                    f"add {name}.up.sql or remove {name}.down.sql",
                )
            self._scripts[name] = (up, down)
            text = up.path.read_text() + ("" if down is None or down.path == up.path else down.path.read_text())
            down_empty = down is None or not _strip_comments(down.text).strip()
            revisions.append(
                Revision(
                    id=name,
                    down=previous,
                    path=str(up.path),
                    doc=name.partition("_")[2].replace("_", " "),
                    upgrade_empty=not _strip_comments(up.text).strip(),
                    downgrade_empty=down_empty,
                    downgrade_note="it has no down script" if down is None else "its down script is empty",
                    waivers=read_waivers(text),
                )
            )
            previous = (name,)
        return revisions

    def revisions(self) -> list[Revision]:
        return list(self._revisions)

    def heads(self) -> list[str]:
        return [self._revisions[-1].id]

    def open(self, url: str, dsn: str) -> None:
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._timeouts = session_timeouts(self._conn)

    def connection(self) -> psycopg.Connection[Any]:
        assert self._conn is not None, "open() first"
        return self._conn

    def target_metadata(self) -> Any:
        return None

    def upgrade(self, revision: Revision, relay: StatementRelay | None = None) -> None:
        self._run(revision, self._scripts[revision.id][0], "upgrade", relay)

    def drive(self, walk: Walk) -> None:
        drive_stepwise(self, walk)

    def downgrade(self, revision: Revision, relay: StatementRelay | None = None) -> None:
        down = self._scripts[revision.id][1]
        if down is None:
            raise MigrationError(
                f"revision {revision.id} has no down script",
                f"add {revision.id}.down.sql (or a -- migrate:down section), or waive it with "
                "'-- dbarch: one-way: <reason>'",
                revision=revision.id,
                where=revision.path,
            )
        self._run(revision, down, "downgrade", relay)

    def _run(self, revision: Revision, script: Script, action: str, relay: StatementRelay | None) -> None:
        conn = self.connection()
        if relay is not None:
            restore_session_timeouts(conn, self._timeouts)
            relay.begin(conn)
        line = script.first_line
        try:
            if script.transactional:
                conn.execute("BEGIN")
            for sql, line in split_statements(script.text, script.first_line):
                statement = RanStatement(revision.id, sql, None, script.transactional, f"{script.path}:{line}")
                if relay is not None:
                    relay.before(statement, conn)
                try:
                    conn.execute(sql.encode())
                except psycopg.Error as exc:
                    if relay is not None:
                        relay.after(statement, conn, exc)
                    raise
                if relay is not None:
                    relay.after(statement, conn, None)
            if relay is not None:
                relay.end(conn)
            if script.transactional:
                conn.execute("COMMIT")
        except psycopg.Error as exc:
            if relay is not None:
                relay.end(conn)
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MigrationError(
                f"{action} of revision {revision.id} failed at {script.path}:{line}: {message}",
                f"fix the statement at that line; {'the script runs in one transaction' if script.transactional else 'the script runs outside a transaction (transaction:false), so earlier statements stayed applied'}",
                revision=revision.id,
                where=f"{script.path}:{line}",
                reason=message,
            ) from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _script(path: Path, text: str, first_line: int) -> Script:
    head = text.lstrip().splitlines()[0] if text.strip() else ""
    transactional = not (head.startswith("--") and _NO_TRANSACTION.search(head))
    return Script(path, text, first_line, transactional)


def _sections(path: Path, text: str) -> tuple[Script | None, Script | None]:
    """The ``-- migrate:up`` and ``-- migrate:down`` sections of one file."""
    marks = list(_SECTION.finditer(text))
    if not marks:
        raise MigrationError(
            f"SQL migration {path} has neither a .up/.down suffix nor '-- migrate:up' / "
            "'-- migrate:down' sections",
            "split it into NNNN_name.up.sql and NNNN_name.down.sql, or add the two section markers",
        )
    parts: dict[str, Script] = {}
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        body_start = mark.end()
        parts[mark.group(1).lower()] = Script(
            path,
            text[body_start:end],
            text.count("\n", 0, body_start) + 1,
            not _NO_TRANSACTION.search(mark.group(2)),
        )
    return parts.get("up"), parts.get("down")
