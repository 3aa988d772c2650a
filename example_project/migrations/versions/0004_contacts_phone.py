"""Add contacts.phone.

Zero-downtime shape: the column is added nullable with no default, which in
PostgreSQL is a catalog-only change (no table rewrite, only a brief ACCESS
EXCLUSIVE lock).  Any backfill or NOT NULL tightening belongs in later,
separate revisions once application code writes the column.

Revision ID: 0004
Revises: 0003
Create Date: 2025-02-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("phone", sa.String(50), nullable=True))


def downgrade() -> None:
    op.drop_column("contacts", "phone")
