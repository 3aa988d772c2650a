"""Backfill opportunities.probability from the stage (data only, no DDL).

A revision of its own, so the row locks of the backfill are never held together with
a DDL lock on the table. The downgrade empties the column again, which is exactly
the state before this revision.

Revision ID: 0006
Revises: 0005
Create Date: 2025-03-03 09:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROBABILITY_BY_STAGE = {
    "prospecting": 10,
    "qualification": 25,
    "proposal": 50,
    "negotiation": 75,
    "won": 100,
    "lost": 0,
}


def upgrade() -> None:
    cases = " ".join(f"WHEN '{stage}' THEN {p}" for stage, p in PROBABILITY_BY_STAGE.items())
    op.execute(
        f"UPDATE opportunities SET probability = CASE stage {cases} END "
        "WHERE probability IS NULL"
    )


def downgrade() -> None:
    op.execute("UPDATE opportunities SET probability = NULL WHERE probability IS NOT NULL")
