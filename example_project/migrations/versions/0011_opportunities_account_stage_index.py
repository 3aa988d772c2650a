"""An index for the account page's critical query: the open pipeline by stage.

``crm.services.open_opportunities_by_stage`` counts and sums one account's live deals
in the open stages. Without this index the planner combines ``ix_opportunities_account_id``
with the forecast index ``ix_opportunities_expected_close_open``, reading the latter
end to end (it grows with every open deal of every account) and then one heap page per
deal. This one holds only live rows, keyed by account and stage, with the amount
included, so the lookup reads a few index pages and no heap (the query budget in
``tests/test_crm_performance.py`` holds it to that).

Built CONCURRENTLY, outside the revision's transaction, so writes to opportunities go
on while it is built; the downgrade drops it the same way.

Revision ID: 0011
Revises: 0010
Create Date: 2025-03-10 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_opportunities_account_id_stage_live "
            "ON opportunities (account_id, stage) INCLUDE (amount) WHERE deleted_at IS NULL"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_opportunities_account_id_stage_live")
