"""ORM models for the example CRM.

The migrations in ``migrations/versions`` are the source of truth for the
deployed schema; this module must describe exactly the same schema so that
``alembic check`` (autogenerate compare) reports nothing.  Migrations never
import this module: they are frozen snapshots, while models keep evolving.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Deterministic constraint names let migrations drop exactly what they created
# and keep the autogenerate diff empty.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

OPEN_STAGES: tuple[str, ...] = ("prospecting", "qualification", "proposal", "negotiation")
CLOSED_STAGES: tuple[str, ...] = ("won", "lost")
STAGES: tuple[str, ...] = OPEN_STAGES + CLOSED_STAGES

LEAD_STATUSES: tuple[str, ...] = ("new", "contacted", "qualified", "converted", "lost")
CURRENCIES: tuple[str, ...] = ("USD", "EUR", "GBP", "CAD", "AUD", "JPY")
AUDIT_ACTIONS: tuple[str, ...] = ("insert", "update", "delete")

# Partial-index predicate shared by every soft-deletable table.
LIVE_ROWS = text("deleted_at IS NULL")


def _in_list(column: str, values: tuple[str, ...]) -> str:
    """Render ``column IN ('a', 'b')`` so CHECKs stay in sync with the tuples above."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    """Declarative base; ``Base.metadata`` is what pytest-dbarch and Alembic load."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


metadata = Base.metadata


def _uuid_pk() -> Mapped[uuid.UUID]:
    # The database generates keys so rows inserted by raw SQL get them too.
    return mapped_column(Uuid, primary_key=True, server_default=text("gen_random_uuid()"))


def _json_metadata() -> Mapped[dict[str, Any]]:
    # "metadata" is reserved on declarative classes, hence the attribute rename.
    return mapped_column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb"))


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


def _updated_at() -> Mapped[datetime]:
    # onupdate is ORM-side only; raw SQL updates must set it themselves.
    return mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )


def _deleted_at() -> Mapped[datetime | None]:
    return mapped_column(DateTime(timezone=True), nullable=True)


class Account(Base):
    """A customer organisation; owns contacts and opportunities."""

    __tablename__ = "accounts"
    __table_args__ = (
        # text_pattern_ops lets ``name LIKE 'prefix%'`` use the index under any collation.
        Index("ix_accounts_name", "name", postgresql_ops={"name": "text_pattern_ops"}),
        Index("ix_accounts_industry_live", "industry", postgresql_where=LIVE_ROWS),
        Index("ix_accounts_metadata_gin", "metadata", postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    industry: Mapped[str | None] = mapped_column(String(100))
    website: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, Any]] = _json_metadata()
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
    deleted_at: Mapped[datetime | None] = _deleted_at()

    # passive_deletes: the database's ON DELETE CASCADE does the work, so the
    # ORM does not load children just to delete them.
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="account", cascade="all, delete-orphan", passive_deletes=True
    )
    opportunities: Mapped[list[Opportunity]] = relationship(
        back_populates="account", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Account(id={self.id!r}, name={self.name!r})"


class Contact(Base):
    """A person at an account."""

    __tablename__ = "contacts"
    __table_args__ = (
        # Full (not partial) index: ON DELETE CASCADE scans by account_id
        # regardless of soft-delete state.
        Index("ix_contacts_account_id", "account_id"),
        Index("ix_contacts_last_name_first_name", "last_name", "first_name"),
        # Soft-deleted contacts must not block re-use of their address.
        Index("ux_contacts_email_live", "email", unique=True, postgresql_where=LIVE_ROWS),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    )
    first_name: Mapped[str] = mapped_column(String(100), nullable=False)
    last_name: Mapped[str] = mapped_column(String(100), nullable=False)
    email: Mapped[str] = mapped_column(String(255), nullable=False)
    title: Mapped[str | None] = mapped_column(String(100))
    metadata_: Mapped[dict[str, Any]] = _json_metadata()
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
    deleted_at: Mapped[datetime | None] = _deleted_at()
    # Added by revision 0004 as a plain nullable column (no table rewrite, only a
    # brief lock).  Declared last so column order matches a migrated database.
    phone: Mapped[str | None] = mapped_column(String(50))

    account: Mapped[Account] = relationship(back_populates="contacts")

    def __repr__(self) -> str:
        return f"Contact(id={self.id!r}, email={self.email!r})"


class Lead(Base):
    """An unqualified prospect; may later be converted into a contact."""

    __tablename__ = "leads"
    __table_args__ = (
        CheckConstraint(_in_list("status", LEAD_STATUSES), name="status_valid"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        # Converted exactly when a conversion time is recorded; only a converted lead
        # points at its contact (which may be deleted later: ON DELETE SET NULL).
        CheckConstraint("(status = 'converted') = (converted_at IS NOT NULL)", name="conversion_recorded"),
        CheckConstraint(
            "converted_contact_id IS NULL OR status = 'converted'", name="contact_only_when_converted"
        ),
        Index("ix_leads_status_live", "status", postgresql_where=LIVE_ROWS),
        Index("ix_leads_email_live", "email", postgresql_where=LIVE_ROWS),
        Index("ix_leads_converted_contact_id", "converted_contact_id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(255))
    company: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default=text("'new'"))
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    converted_contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    converted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    metadata_: Mapped[dict[str, Any]] = _json_metadata()
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
    deleted_at: Mapped[datetime | None] = _deleted_at()


class Opportunity(Base):
    """A potential sale against an account, moving through pipeline stages."""

    __tablename__ = "opportunities"
    __table_args__ = (
        CheckConstraint(_in_list("stage", STAGES), name="stage_valid"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint(_in_list("currency", CURRENCIES), name="currency_known"),
        CheckConstraint(
            "probability IS NOT NULL AND probability BETWEEN 0 AND 100", name="probability_valid"
        ),
        # A closed deal always records when it closed, and an open one never does.
        CheckConstraint(
            f"({_in_list('stage', CLOSED_STAGES)}) = (closed_at IS NOT NULL)",
            name="closed_at_matches_stage",
        ),
        Index("ix_opportunities_account_id", "account_id"),
        Index("ix_opportunities_contact_id", "contact_id"),
        Index("ix_opportunities_lead_id", "lead_id"),
        # The account page's pipeline by stage (revision 0011): live rows only, and
        # amount included so the index alone answers it.
        Index(
            "ix_opportunities_account_id_stage_live",
            "account_id",
            "stage",
            postgresql_include=["amount"],
            postgresql_where=LIVE_ROWS,
        ),
        # Forecast queries only ever look at open deals.
        Index(
            "ix_opportunities_expected_close_open",
            "expected_close_date",
            postgresql_where=text(f"NOT ({_in_list('stage', CLOSED_STAGES)}) AND deleted_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    )
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, server_default=text("'USD'"))
    stage: Mapped[str] = mapped_column(
        String(20), nullable=False, server_default=text("'prospecting'")
    )
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Win chance in percent; the CHECK above makes it required (added NOT VALID in 0007).
    probability: Mapped[int | None] = mapped_column(SmallInteger, server_default=text("10"))
    metadata_: Mapped[dict[str, Any]] = _json_metadata()
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
    deleted_at: Mapped[datetime | None] = _deleted_at()

    account: Mapped[Account] = relationship(back_populates="opportunities")
    contact: Mapped[Contact | None] = relationship()

    def __repr__(self) -> str:
        return f"Opportunity(id={self.id!r}, stage={self.stage!r}, amount={self.amount!r})"


class AuditLog(Base):
    """Append-only change journal written by the service layer.

    A bigint identity key (not a UUID) keeps inserts ordered and the index
    compact for a table that only ever grows.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint(_in_list("action", AUDIT_ACTIONS), name="action_valid"),
        Index("ix_audit_log_table_name_row_id", "table_name", "row_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(63), nullable=False)
    row_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    action: Mapped[str] = mapped_column(String(10), nullable=False)
    changed: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[datetime] = _created_at()
