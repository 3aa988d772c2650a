"""Validate the lead foreign key and the probability rule (contract step).

VALIDATE CONSTRAINT scans the table under SHARE UPDATE EXCLUSIVE, which lets reads and
writes go on; it runs in a transaction of its own, after the ones that added the
constraints. The downgrade puts them back exactly as they were: NOT VALID.

Revision ID: 0008
Revises: 0007
Create Date: 2025-03-03 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE opportunities VALIDATE CONSTRAINT fk_opportunities_lead_id_leads")
    op.execute("ALTER TABLE opportunities VALIDATE CONSTRAINT ck_opportunities_probability_valid")


def downgrade() -> None:
    # PostgreSQL cannot un-validate a constraint: drop it and add it again NOT VALID.
    op.execute(
        "ALTER TABLE opportunities DROP CONSTRAINT ck_opportunities_probability_valid, "
        "ADD CONSTRAINT ck_opportunities_probability_valid "
        "CHECK (probability IS NOT NULL AND probability BETWEEN 0 AND 100) NOT VALID"
    )
    op.execute(
        "ALTER TABLE opportunities DROP CONSTRAINT fk_opportunities_lead_id_leads, "
        "ADD CONSTRAINT fk_opportunities_lead_id_leads "
        "FOREIGN KEY (lead_id) REFERENCES leads (id) ON DELETE SET NULL NOT VALID"
    )
