"""Checks read from the history itself: heads, empty downgrades, deploy transactions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.migrations.roundtrip import relative
from pytest_dbarch.migrations.runners import Revision

SINGLE_HEAD = "migrations.single-head"
EMPTY_DOWNGRADE = "migrations.empty-downgrade"
DEPLOY_TRANSACTION = "migrations.locks.deploy-transaction"


def single_head(heads: Sequence[str], declared: Sequence[str], source: str, rootdir: str | Path) -> Finding:
    """One head, or exactly the heads the project declared (dbarch_migrations_heads)."""
    where = relative(source, rootdir)
    expected = sorted(declared)
    if (expected and sorted(heads) == expected) or (not expected and len(heads) == 1):
        title = f"the history has {'the declared heads ' + ', '.join(heads) if expected else 'a single head ' + heads[0]}"
        return Finding(SINGLE_HEAD, Area.MIGRATIONS, Status.PASSED, title, where=where)
    if expected:
        title = f"the history's heads are {', '.join(heads)}, not the declared {', '.join(expected)}"
        fix = "merge the unexpected branches (alembic merge) or update dbarch_migrations_heads"
    else:
        title = f"the history has {len(heads)} heads: {', '.join(heads)}"
        fix = (
            f"merge them with 'alembic merge -m \"merge heads\" {' '.join(heads)}', or declare "
            "them in dbarch_migrations_heads if the branches are intended"
        )
    return Finding(SINGLE_HEAD, Area.MIGRATIONS, Status.FAILED, title, "heads: " + ", ".join(heads), where, fix)


def empty_downgrade(
    revision: Revision, rootdir: str | Path, schema_changed: bool | None = None, round_trip_failed: bool = False
) -> Finding | None:
    """A revision that changes something must be able to undo it, or say why not.

    ``schema_changed``: whether its upgrade changed the schema (None: not run). When the
    round trip already reported on it (failed, or warned about its only differences, such
    as an extension left installed), that finding names the empty downgrade and this
    check adds none (one finding per cause). An upgrade that changed no schema (a data
    migration) with an empty downgrade is at most a warning, and passes when the
    downgrade says why there is nothing to undo.
    """
    where = f"{relative(revision.path, rootdir)} (revision {revision.id})"
    waived = "one-way" in revision.waivers
    if revision.upgrade_empty or not revision.downgrade_empty:
        title = (
            f"revision {revision.id}: upgrade does nothing, so an empty downgrade is right"
            if revision.upgrade_empty
            else f"revision {revision.id}: has a downgrade"
        )
        return Finding(EMPTY_DOWNGRADE, Area.MIGRATIONS, Status.PASSED, title, where=where)
    if waived and revision.waivers["one-way"]:
        return Finding(
            EMPTY_DOWNGRADE,
            Area.MIGRATIONS,
            Status.WARNING,
            f"revision {revision.id}: one-way by decision: {revision.waivers['one-way']}",
            where=where,
        )
    if round_trip_failed:
        return None
    said = revision.downgrade_comment
    if schema_changed is False:
        if said:
            return Finding(
                EMPTY_DOWNGRADE,
                Area.MIGRATIONS,
                Status.PASSED,
                f"revision {revision.id}: changes no schema, and its empty downgrade says why: {_clip(said)}",
                where=where,
            )
        return Finding(
            EMPTY_DOWNGRADE,
            Area.MIGRATIONS,
            Status.WARNING,
            f"revision {revision.id}: changes data only and its downgrade is empty ({revision.downgrade_note}): "
            "the data it changed stays changed after a downgrade",
            where=where,
            fix=f"say in downgrade() of revision {revision.id} why there is nothing to undo (a docstring or "
            "comment), or write the reverse data change",
        )
    return Finding(
        EMPTY_DOWNGRADE,
        Area.MIGRATIONS,
        Status.WARNING if said and schema_changed is None else Status.FAILED,
        f"revision {revision.id}: downgrade is empty ({revision.downgrade_note})"
        + (f"; it says: {_clip(said)}" if said else ""),
        where=where,
        fix=f"write downgrade() of revision {revision.id} to undo its upgrade, or mark the "
        "revision one-way with a reason reviewers can see: dbarch_one_way = '<why>' "
        "(SQL: -- dbarch: one-way: <why>)",
    )


def _clip(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def deploy_transaction(per_revision: bool | None, source: str, rootdir: str | Path) -> Finding | None:
    """A deploy that applies every pending revision in one transaction holds the locks of
    the first (ACCESS EXCLUSIVE from an ALTER TABLE) until the last one commits. Read from
    the runner after env.py ran (Alembic: ``transaction_per_migration``); None if it never did."""
    if per_revision is None:
        return None
    where = relative(source, rootdir)
    if per_revision:
        return Finding(
            DEPLOY_TRANSACTION, Area.MIGRATIONS, Status.PASSED,
            "each revision commits on its own when deployed", where=where,
        )
    return Finding(
        DEPLOY_TRANSACTION,
        Area.MIGRATIONS,
        Status.WARNING,
        "a deploy runs every pending revision in one transaction: locks taken by the first "
        "revision are held until the last one commits",
        "env.py calls context.configure() without transaction_per_migration=True, so "
        "'alembic upgrade head' wraps all pending revisions in one transaction",
        where,
        "pass transaction_per_migration=True to context.configure() in env.py (and set "
        "lock_timeout per session, not with SET LOCAL)",
    )
