"""Validate 0009's rules (contract); the currency regex gives way to the list.

VALIDATE CONSTRAINT scans under SHARE UPDATE EXCLUSIVE, in a transaction of its own.
The downgrade puts everything back exactly as it was: 0009's rules NOT VALID, the
currency regex (validated, as 0002 created it).

Revision ID: 0010
Revises: 0009
Create Date: 2025-03-10 09:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONVERSION_RECORDED = "(status = 'converted') = (converted_at IS NOT NULL)"
CONTACT_ONLY_WHEN_CONVERTED = "converted_contact_id IS NULL OR status = 'converted'"
CURRENCIES = "currency IN ('USD', 'EUR', 'GBP', 'CAD', 'AUD', 'JPY')"


def upgrade() -> None:
    op.execute("ALTER TABLE leads VALIDATE CONSTRAINT ck_leads_conversion_recorded")
    op.execute("ALTER TABLE leads VALIDATE CONSTRAINT ck_leads_contact_only_when_converted")
    op.execute("ALTER TABLE opportunities VALIDATE CONSTRAINT ck_opportunities_currency_known")
    op.drop_constraint(op.f("ck_opportunities_currency_iso"), "opportunities", type_="check")


def downgrade() -> None:
    # PostgreSQL cannot un-validate a constraint: drop it and add it again NOT VALID.
    op.execute(
        "ALTER TABLE opportunities ADD CONSTRAINT ck_opportunities_currency_iso "
        "CHECK (currency ~ '^[A-Z]{3}$'), "
        "DROP CONSTRAINT ck_opportunities_currency_known, "
        f"ADD CONSTRAINT ck_opportunities_currency_known CHECK ({CURRENCIES}) NOT VALID"
    )
    op.execute(
        "ALTER TABLE leads DROP CONSTRAINT ck_leads_contact_only_when_converted, "
        "ADD CONSTRAINT ck_leads_contact_only_when_converted "
        f"CHECK ({CONTACT_ONLY_WHEN_CONVERTED}) NOT VALID, "
        "DROP CONSTRAINT ck_leads_conversion_recorded, "
        f"ADD CONSTRAINT ck_leads_conversion_recorded CHECK ({CONVERSION_RECORDED}) NOT VALID"
    )
