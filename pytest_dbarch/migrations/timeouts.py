"""One finding per cause for missing timeouts.

A revision that runs DDL on an existing table without timeouts is seen three ways: the
lint's ``require-lock-timeout`` and ``require-statement-timeout`` and the lock report's
``migrations.locks.timeouts``. Per revision they become one finding; and when no
revision of the history ever ran with a ``lock_timeout``, the cause is env.py (or the
deploy), not any revision: one finding for the whole history, naming the revisions
(those only the lock report saw too: a CREATE TABLE whose foreign key locks an existing
table is DDL the lint does not count, but the missing timeout is the same).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.migrations.roundtrip import relative

LOCK = "migrations.lint.require-lock-timeout"
STATEMENT = "migrations.lint.require-statement-timeout"
REPORT = "migrations.locks.timeouts"
_SET = re.compile(r"lock_timeout=(?!0\b|\?)(\S+)")


def regroup(findings: dict[tuple[str, str], list[Finding]], env: str, rootdir: str | Path) -> None:
    """Rewrite the lock-safety findings of ``findings`` in place; ``env`` is the file that
    sets up the migration connection (env.py), or the history itself."""
    missing: list[str] = []  # revisions with a timeout problem (the lint's, or the lock report's alone)
    guarded = False  # some revision ran strong DDL under a lock_timeout
    for (check, rev), group in list(findings.items()):
        if check != "lock-safety":
            continue
        report = [f for f in group if f.rule == REPORT]
        guarded = guarded or any(_SET.search(f.evidence) for f in report)
        merged = _merge(group)
        if merged is not group:
            findings[(check, rev)] = merged
        if any(f.rule in (LOCK, REPORT) and f.is_problem for f in merged):
            missing.append(rev)
    if guarded or len(missing) < 2:
        return
    for rev in missing:  # with no lock_timeout anywhere, every such finding has the one cause
        key = ("lock-safety", rev)
        findings[key] = [f for f in findings[key] if not (f.rule in (LOCK, REPORT) and f.is_problem)]
        if not findings[key]:
            del findings[key]
    where = relative(env, rootdir)
    shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    findings.setdefault(("deploy-transaction", ""), []).append(
        Finding(
            LOCK,
            Area.MIGRATIONS,
            Status.WARNING,
            f"no lock_timeout or statement_timeout in any revision: {len(missing)} revisions lock "
            "existing tables for DDL without them (set them once, in env.py)",
            evidence=f"revisions: {', '.join(missing)}\nno revision ran a statement with a lock_timeout set, so the "
            "cause is the migration environment, not the revisions",
            where=where,
            fix="in env.py, before context.run_migrations(): connection.execute(text(\"SET lock_timeout = '4s'\")) "
            "and SET statement_timeout (session level, so they hold for every revision), and retry the "
            "deploy on a lock timeout",
        )
    )


def _merge(group: list[Finding]) -> list[Finding]:
    """One revision: the lint's two timeout findings and the report's warning as one."""
    lock = next((f for f in group if f.rule == LOCK and f.is_problem), None)
    statement = next((f for f in group if f.rule == STATEMENT and f.is_problem), None)
    report = next((f for f in group if f.rule == REPORT and f.is_problem), None)
    if lock is None and statement is None:
        return group
    keep = lock or statement
    assert keep is not None
    both = lock is not None and statement is not None
    if both:
        keep = replace(
            lock,  # type: ignore[arg-type]
            title=lock.title.replace("without a lock_timeout", "without a lock_timeout or statement_timeout"),  # type: ignore[union-attr]
            evidence=lock.evidence + "\nstatement_timeout: " + statement.title,  # type: ignore[union-attr]
        )
    if report is not None:
        keep = replace(keep, evidence=keep.evidence + "\n" + report.evidence)
    dropped = {id(f) for f in (lock, statement, report) if f is not None}
    out = [f for f in group if id(f) not in dropped]
    return [keep, *out]
