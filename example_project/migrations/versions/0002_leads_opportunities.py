"""Leads and the opportunity pipeline.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-13 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the vocabularies as they were at this revision.  Changing
# them later takes a new revision that drops and re-adds the CHECK.
LEAD_STATUSES = "'new', 'contacted', 'qualified', 'converted', 'lost'"
STAGES = "'prospecting', 'qualification', 'proposal', 'negotiation', 'won', 'lost'"
CLOSED_STAGES = "'won', 'lost'"


def _common_columns() -> list[sa.Column[Any]]:
    """Columns every soft-deletable CRM table ends with (frozen copy, not imported)."""
    return [
        sa.Column(
            "metadata",
            postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=True),
        sa.Column("last_name", sa.String(100), nullable=True),
        sa.Column("email", sa.String(255), nullable=True),
        sa.Column("company", sa.String(255), nullable=True),
        sa.Column("source", sa.String(50), nullable=True),
        sa.Column("status", sa.String(20), server_default=sa.text("'new'"), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("converted_contact_id", sa.Uuid(), nullable=True),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True),
        *_common_columns(),
        sa.CheckConstraint(f"status IN ({LEAD_STATUSES})", name=op.f("ck_leads_status_valid")),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_leads_rating_range")),
        sa.ForeignKeyConstraint(
            ["converted_contact_id"],
            ["contacts.id"],
            name=op.f("fk_leads_converted_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
    )
    op.create_index(
        op.f("ix_leads_status_live"),
        "leads",
        ["status"],
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        op.f("ix_leads_email_live"),
        "leads",
        ["email"],
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(op.f("ix_leads_converted_contact_id"), "leads", ["converted_contact_id"])

    op.create_table(
        "opportunities",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("currency", sa.String(3), server_default=sa.text("'USD'"), nullable=False),
        sa.Column(
            "stage", sa.String(20), server_default=sa.text("'prospecting'"), nullable=False
        ),
        sa.Column("expected_close_date", sa.Date(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        *_common_columns(),
        sa.CheckConstraint(f"stage IN ({STAGES})", name=op.f("ck_opportunities_stage_valid")),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_opportunities_amount_non_negative")),
        sa.CheckConstraint(
            "currency ~ '^[A-Z]{3}$'", name=op.f("ck_opportunities_currency_iso")
        ),
        sa.CheckConstraint(
            f"(stage IN ({CLOSED_STAGES})) = (closed_at IS NOT NULL)",
            name=op.f("ck_opportunities_closed_at_matches_stage"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_opportunities_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_opportunities_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunities")),
    )
    op.create_index(op.f("ix_opportunities_account_id"), "opportunities", ["account_id"])
    op.create_index(op.f("ix_opportunities_contact_id"), "opportunities", ["contact_id"])
    op.create_index(
        op.f("ix_opportunities_expected_close_open"),
        "opportunities",
        ["expected_close_date"],
        postgresql_where=sa.text(f"NOT (stage IN ({CLOSED_STAGES})) AND deleted_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_opportunities_expected_close_open"), table_name="opportunities")
    op.drop_index(op.f("ix_opportunities_contact_id"), table_name="opportunities")
    op.drop_index(op.f("ix_opportunities_account_id"), table_name="opportunities")
    op.drop_table("opportunities")

    op.drop_index(op.f("ix_leads_converted_contact_id"), table_name="leads")
    op.drop_index(op.f("ix_leads_email_live"), table_name="leads")
    op.drop_index(op.f("ix_leads_status_live"), table_name="leads")
    op.drop_table("leads")
