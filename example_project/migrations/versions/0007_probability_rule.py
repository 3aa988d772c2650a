"""New rows get a probability; every row must have one between 0 and 100.

The rule is a CHECK added NOT VALID: it binds new and updated rows at once without
scanning the table under ACCESS EXCLUSIVE. 0008 validates it. (PostgreSQL 12+ could
then turn it into SET NOT NULL without a scan; the CHECK already says more.)

Revision ID: 0007
Revises: 0006
Create Date: 2025-03-03 09:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("opportunities", "probability", server_default="10")
    op.execute(
        "ALTER TABLE opportunities ADD CONSTRAINT ck_opportunities_probability_valid "
        "CHECK (probability IS NOT NULL AND probability BETWEEN 0 AND 100) NOT VALID"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_opportunities_probability_valid"), "opportunities", type_="check")
    op.alter_column("opportunities", "probability", server_default=None)
