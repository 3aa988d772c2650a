"""Opportunities remember their lead and carry a win probability (expand step).

Zero-downtime shape, as the database-architect seed teaches it:

- both columns are added nullable with no default: a catalog-only change under a
  brief lock, whatever the table's size;
- the foreign key is added NOT VALID, so existing rows are not scanned while the
  table is locked (it is validated in 0008, under a weaker lock);
- its index is built CONCURRENTLY, outside the migration's transaction.

The backfill (0006) and the NOT NULL rule (0007, 0008) follow in revisions of their
own.

Revision ID: 0005
Revises: 0004
Create Date: 2025-03-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("opportunities", sa.Column("lead_id", sa.Uuid(), nullable=True))
    op.add_column("opportunities", sa.Column("probability", sa.SmallInteger(), nullable=True))
    op.execute(
        "ALTER TABLE opportunities ADD CONSTRAINT fk_opportunities_lead_id_leads "
        "FOREIGN KEY (lead_id) REFERENCES leads (id) ON DELETE SET NULL NOT VALID"
    )
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_opportunities_lead_id "
            "ON opportunities (lead_id)"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_opportunities_lead_id")
    op.drop_constraint("fk_opportunities_lead_id_leads", "opportunities", type_="foreignkey")
    op.drop_column("opportunities", "probability")
    op.drop_column("opportunities", "lead_id")
