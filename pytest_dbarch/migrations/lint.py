"""Lock-safety lint over the SQL a migration really runs.

``LockSafetyLint`` is a ``StatementObserver`` (see ``observe.py``): the runner shows it
every statement of a revision's first upgrade, on the migration's own connection. Before
each statement it describes the SQL (``statements.py``), reads the runtime facts the
rules ask for (``facts.py``: rows, old column type, default volatility, locks already
held, timeouts, server version, whether a transaction is really open) and keeps the
rules' hits; after it, a changed relfilenode proves a table rewrite. Tables created in
the same revision are exempt from the lock rules. The rules and their reference numbers
are in ``lint_rules.py`` and the README's "Migration lint" section.

Waivers are review comments, in the statement's SQL or anywhere in the migration file
(``-- `` in SQL, ``# `` in Python)::

    -- dbarch: allow add-column-volatile-default because the table has 40 rows, ever

A waiver names one or more rule ids (short or ``migrations.lint.``-prefixed, comma
separated) and must give a reason after ``because``; a waiver without one, or naming an
unknown rule, is itself a failed finding and waives nothing. Rules can also be switched
off for the whole project with the ``dbarch_migration_lint_ignore`` setting.

``lint_sql(connection, script)`` drives the observers over a SQL script exactly as a
runner does, for tests and for users who want to check a script by hand.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.migrations import facts as F
from pytest_dbarch.migrations.lint_check import Check, RevisionState
from pytest_dbarch.migrations.lint_rules import BAD_WAIVER, RULES, UNCOMMITTED, UNPARSEABLE, Hit, Rule
from pytest_dbarch.migrations.locks import LockReport
from pytest_dbarch.migrations.observe import RanStatement, StatementObserver
from pytest_dbarch.migrations.statements import Described, describe, split_script

if TYPE_CHECKING:
    import psycopg

    from pytest_dbarch.config import Settings

__all__ = ["LockSafetyLint", "LockReport", "RULES", "lint_sql", "rule_ids"]

PREFIX = "migrations.lint."
_WAIVER = re.compile(
    r"dbarch:\s*allow\s+(?P<rules>.*?)(?:\s+because\b\s*(?P<reason>.*?))?\s*(?:\*/)?\s*$",
    re.IGNORECASE,
)
ONCE_PER_REVISION = {"require-lock-timeout", "require-statement-timeout"}  # a setting, not a statement


def rule_ids() -> list[str]:
    """Every lint rule id (full form)."""
    return [PREFIX + r for r in (*RULES, UNPARSEABLE.id, BAD_WAIVER.id)]


def _short(rule_id: str) -> str:
    return rule_id.strip().removeprefix(PREFIX)


@dataclass(frozen=True)
class Waiver:
    rules: tuple[str, ...]
    reason: str
    text: str


def parse_waivers(comments: Iterable[str]) -> list[Waiver]:
    waivers = []
    for comment in comments:
        for line in comment.splitlines():
            m = _WAIVER.search(line)
            if m:
                names = tuple(_short(n) for n in re.split(r"[,\s]+", m.group("rules")) if n.strip())
                waivers.append(Waiver(names, (m.group("reason") or "").strip(), line.strip()))
    return waivers


@functools.lru_cache(maxsize=256)
def _file_comments(path: str) -> tuple[str, ...]:
    """Comment lines of a migration file (SQL ``--`` or Python ``#``) naming a waiver."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    return tuple(line for line in text.splitlines() if "dbarch:" in line.lower())


class LockSafetyLint:
    """StatementObserver: flags DDL that takes heavy locks on tables with rows."""

    def __init__(
        self, settings: Settings | None = None, *, ignore: Sequence[str] = (), from_empty: bool = False
    ) -> None:
        names = [*ignore, *(getattr(settings, "migration_lint_ignore", ()) or ())]
        unknown = [
            n for n in names if _short(n) not in RULES and _short(n) not in (UNPARSEABLE.id, BAD_WAIVER.id)
        ]
        if unknown:
            raise DbarchError(
                f"dbarch_migration_lint_ignore names unknown rule(s): {', '.join(unknown)}",
                f"use ids from: {', '.join(sorted(RULES))}",
            )
        self.ignore = frozenset(_short(n) for n in names)
        # The history walked from an empty database: a row there was written by the history
        # itself (reference data), which says nothing about the table's size in production.
        self.from_empty = from_empty
        self._rev: RevisionState | None = None
        self._pending: list[Hit] = []
        self._check: Check | None = None
        self._timeouts = F.TimeoutsCache()

    # --- observer protocol ---------------------------------------------------------
    def begin_revision(self, revision: str, connection: psycopg.Connection[Any]) -> None:
        self._rev = RevisionState(revision, F.relation_oids(connection))

    def before_statement(self, statement: RanStatement, connection: psycopg.Connection[Any]) -> None:
        from psycopg import pq

        rev = self._revision(statement.revision, connection)
        rev.statements += 1
        if connection.info.transaction_status == pq.TransactionStatus.IDLE:
            rev.dml.clear()  # the previous transaction ended
        d = describe(statement.sql)
        self._check = check = Check(statement, d, connection, rev, self._timeouts)
        self._pending = []
        if d.kind == "unparseable":
            self._pending.append(Hit(UNPARSEABLE.id, " ".join(statement.sql.split())[:60], evidence=[d.problem]))
            return
        for rule in RULES.values():
            if rule.id in self.ignore or rule.id in rev.once:
                continue
            try:
                self._pending.extend(rule.check(check))
            except Exception as exc:  # a rule bug must not break the migration run
                self._pending.append(
                    Hit(
                        UNPARSEABLE.id,
                        " ".join(statement.sql.split())[:60],
                        evidence=[f"rule {rule.id} failed: {type(exc).__name__}: {exc}"],
                    )
                )
        if d.kind == "begin":
            rev.explicit_begin = True
        elif d.kind in ("commit", "rollback"):
            rev.explicit_begin = False

    def after_statement(
        self,
        statement: RanStatement,
        connection: psycopg.Connection[Any],
        elapsed: float,
        error: BaseException | None,
    ) -> None:
        rev, check = self._rev, self._check
        self._timeouts.after(describe(statement.sql).kind, error)
        if rev is None or check is None:
            return
        d = check.d
        if d.kind in ("update", "delete") and error is None and check.transaction_open:
            rev.dml.extend(t for t in d.tables if t not in rev.dml)
        waivers = self._waivers(statement, d)
        for hit in self._pending:
            finding = self._finding(hit, statement, check, connection, error, waivers)
            if finding is not None:
                rev.findings.append(finding)
        self._pending, self._check = [], None

    def end_revision(self, revision: str, connection: psycopg.Connection[Any]) -> list[Finding]:
        from psycopg import pq

        rev = self._revision(revision, connection)
        if rev.explicit_begin and connection.info.transaction_status == pq.TransactionStatus.INTRANS:
            rule = RULES[UNCOMMITTED]
            rev.findings.append(
                Finding(
                    PREFIX + rule.id,
                    Area.MIGRATIONS,
                    Status.FAILED,
                    f"revision {revision}: BEGIN without COMMIT, the work is left uncommitted",
                    evidence=f"transaction still open at the end of the revision\nwhy: {rule.why}",
                    where=f"revision {revision}",
                    fix=rule.fix,
                )
            )
        findings = rev.findings
        if not any(f.is_problem for f in findings):
            notes = []
            if rev.exempt:
                notes.append("exempt (created in this revision): " + ", ".join(sorted(rev.exempt)))
            if rev.waived:
                notes.append("waived: " + "; ".join(rev.waived))
            if self.ignore:
                notes.append("disabled rules: " + ", ".join(sorted(self.ignore)))
            findings = [
                *findings,
                Finding(
                    PREFIX + "lock-safety",
                    Area.MIGRATIONS,
                    Status.PASSED,
                    f"revision {revision}: {rev.statements} statement(s), no lock-safety problems",
                    evidence="\n".join(notes),
                    where=f"revision {revision}",
                ),
            ]
        self._rev = None
        return findings

    # --- helpers ---------------------------------------------------------------------
    def _revision(self, revision: str, connection: psycopg.Connection[Any]) -> RevisionState:
        if self._rev is None or self._rev.name != revision:
            self.begin_revision(revision, connection)
        assert self._rev is not None
        return self._rev

    def _waivers(self, statement: RanStatement, d: Described) -> list[Waiver]:
        """The statement's and its migration file's valid waivers; each bad one becomes a
        failed finding (once) and waives nothing."""
        rev = self._rev
        assert rev is not None
        waivers = parse_waivers(d.comments)
        path = statement.where.rsplit(":", 1)[0] if statement.where else ""
        if path:
            waivers += parse_waivers(_file_comments(path))
        valid = []
        for waiver in waivers:
            bad = [n for n in waiver.rules if n not in RULES and n != UNPARSEABLE.id]
            if waiver.reason and not bad:
                valid.append(waiver)
                continue
            key = (BAD_WAIVER.id, waiver.text)
            if key in rev.seen:
                continue
            rev.seen.add(key)
            cause = f"unknown rule(s) {', '.join(bad)}" if bad else "no reason given"
            rev.findings.append(
                Finding(
                    PREFIX + BAD_WAIVER.id,
                    Area.MIGRATIONS,
                    Status.FAILED,
                    f"waiver ignored ({cause}): {waiver.text}",
                    evidence=f"SQL: {_clip(statement.sql)}\nwhy: {BAD_WAIVER.why}",
                    where=statement.where or f"revision {rev.name}",
                    fix=BAD_WAIVER.fix,
                )
            )
        return valid

    def _finding(
        self,
        hit: Hit,
        statement: RanStatement,
        check: Check,
        connection: psycopg.Connection[Any],
        error: BaseException | None,
        waivers: list[Waiver],
    ) -> Finding | None:
        rev = self._rev
        assert rev is not None
        rule: Rule = RULES.get(hit.rule) or UNPARSEABLE
        table = hit.table
        evidence = list(hit.evidence)
        status = hit.status
        if table is not None and not status:
            if not table.exists:
                if rule.policy in ("rows", "existing"):
                    return None  # nothing there yet to lock (or the statement fails on its own)
            elif check.is_new(table):
                rev.exempt.add(table.regclass)
                return None
            evidence.insert(0, "table " + table.describe())
        if hit.needs_rewrite or (table is not None and table.exists and rule.policy == "rows"):
            after = F.table_facts(connection, table.regclass).relfilenode if error is None and table else None
            rewritten = after is not None and table is not None and after != table.relfilenode
            if hit.needs_rewrite and error is None and not rewritten:
                return None  # binary-coercible: no rewrite happened
            if rewritten and table is not None:
                evidence.append(f"table rewritten: yes (relfilenode {table.relfilenode} -> {after})")
        if not status:
            status = {"fail": "failed", "warn": "warning", "existing": "warning"}.get(rule.policy, "")
            if not status:
                status = "failed" if table is not None and table.has_rows and not self.from_empty else "warning"
                if table is not None and table.has_rows and self.from_empty:
                    evidence.append(
                        "its rows were written by the history's own migrations (the check starts from an "
                        "empty database), so they say nothing about production: a warning, not a failure"
                    )
        if error is not None:
            evidence.append(f"statement failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
        key = (rule.id, hit.subject)
        if key in rev.seen:
            return None
        rev.seen.add(key)
        if rule.id in ONCE_PER_REVISION:
            rev.once.add(rule.id)
        where = statement.where or f"revision {rev.name}"
        facts = [
            f"server_version_num {check.server_version}",
            f"transaction open: {'yes' if check.transaction_open else 'no'} ({check.transaction_state})",
        ]
        body = "\n".join(
            [
                f"SQL: {_clip(statement.sql)}",
                f"lock: {rule.lock}",
                f"why: {rule.why}",
                "facts: " + "; ".join(evidence + facts),
            ]
        )
        title = f"{hit.subject}: {rule.title}"
        for waiver in waivers:
            if rule.id in waiver.rules:
                rev.waived.append(f"{rule.id} on {hit.subject} because {waiver.reason}")
                return Finding(
                    PREFIX + rule.id,
                    Area.MIGRATIONS,
                    Status.PASSED,
                    f"{title} (waived: {waiver.reason})",
                    evidence=body,
                    where=where,
                    fix=rule.fix,
                )
        return Finding(
            PREFIX + rule.id, Area.MIGRATIONS, Status(status), title, evidence=body, where=where, fix=rule.fix
        )


def _clip(sql: str, limit: int = 600) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def lint_sql(
    connection: psycopg.Connection[Any],
    script: str,
    revision: str = "script",
    *,
    observers: Sequence[StatementObserver] | None = None,
    where: str = "",
    end: str = "commit",
) -> list[Finding]:
    """Run a SQL script on ``connection`` as one revision, watched by ``observers``
    (default: a ``LockSafetyLint`` and a ``LockReport``), and return their findings.

    The script is split into statements and run one by one, exactly as a runner calls
    the observers. A failing statement stops the script (its transaction is rolled
    back). ``end``: ``"commit"`` commits an open transaction before ``end_revision``;
    ``"keep"`` leaves it open (to chain revisions in one transaction).
    """
    from psycopg import pq

    watchers: Sequence[StatementObserver] = (
        observers if observers is not None else [LockSafetyLint(), LockReport()]
    )
    for w in watchers:
        w.begin_revision(revision, connection)
    failed = False
    for sql, line in split_script(script):
        status = connection.info.transaction_status
        ran = RanStatement(
            revision,
            sql,
            in_transaction=status == pq.TransactionStatus.INTRANS or not connection.autocommit,
            where=f"{where or revision}:{line}",
        )
        for w in watchers:
            w.before_statement(ran, connection)
        error: BaseException | None = None
        started = time.perf_counter()
        try:
            connection.execute(sql)  # as sent: no parameters, so no placeholder parsing
        except Exception as exc:  # the migration raised: report it, stop like a runner would
            error = exc
        elapsed = time.perf_counter() - started
        for w in watchers:
            w.after_statement(ran, connection, elapsed, error)
        if error is not None:
            failed = True
            break
    if connection.info.transaction_status != pq.TransactionStatus.IDLE and (failed or end == "commit"):
        if failed:
            connection.rollback()
        else:
            connection.commit()
    findings: list[Finding] = []
    for w in watchers:
        findings.extend(w.end_revision(revision, connection))
    return findings
