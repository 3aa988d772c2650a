"""Lead conversion is recorded consistently; opportunities use known currencies (expand).

The seed's rules, added NOT VALID so existing rows are not scanned under ACCESS
EXCLUSIVE; 0010 validates them.

- A lead is converted exactly when it has a conversion time, and only a converted lead
  points at the contact it became. The seed wrote this as one CHECK that also demands a
  contact for every converted lead; with ``ON DELETE SET NULL`` on that foreign key,
  deleting such a contact would then be refused (pytest-dbarch's referential-action check
  shows it). Here a converted lead keeps its status and time when its contact is deleted.
- Currencies come from a list (the regex ``^[A-Z]{3}$`` of 0002 then says nothing more:
  0010 drops it).

Revision ID: 0009
Revises: 0008
Create Date: 2025-03-10 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the rules as they were at this revision.
CONVERSION_RECORDED = "(status = 'converted') = (converted_at IS NOT NULL)"
CONTACT_ONLY_WHEN_CONVERTED = "converted_contact_id IS NULL OR status = 'converted'"
CURRENCIES = "currency IN ('USD', 'EUR', 'GBP', 'CAD', 'AUD', 'JPY')"


def upgrade() -> None:
    op.execute(
        "ALTER TABLE leads ADD CONSTRAINT ck_leads_conversion_recorded "
        f"CHECK ({CONVERSION_RECORDED}) NOT VALID, "
        "ADD CONSTRAINT ck_leads_contact_only_when_converted "
        f"CHECK ({CONTACT_ONLY_WHEN_CONVERTED}) NOT VALID"
    )
    op.execute(
        "ALTER TABLE opportunities ADD CONSTRAINT ck_opportunities_currency_known "
        f"CHECK ({CURRENCIES}) NOT VALID"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_opportunities_currency_known"), "opportunities", type_="check")
    op.drop_constraint(op.f("ck_leads_contact_only_when_converted"), "leads", type_="check")
    op.drop_constraint(op.f("ck_leads_conversion_recorded"), "leads", type_="check")
