"""A small schema written wrong on purpose, its correct twin, and the models both are
compared with: each constraint check must fire on the first and stay silent on the second."""

from __future__ import annotations

from pathlib import Path

MODELS = '''
from typing import Optional

from sqlalchemy import CheckConstraint, ForeignKey, SmallInteger, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (CheckConstraint("rating >= 1 AND rating <= 5", name="rating_range"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    rating: Mapped[Optional[int]] = mapped_column(SmallInteger)
    email: Mapped[str] = mapped_column(String(100))


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(Text)
'''

# The twin writes BETWEEN where the models write >= AND <=: compared by behaviour, they agree.
RIGHT = '''
CREATE TABLE accounts (id serial PRIMARY KEY, name varchar(60) NOT NULL UNIQUE);
CREATE TABLE leads (
    id serial PRIMARY KEY,
    account_id int NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    rating smallint CONSTRAINT rating_range CHECK (rating BETWEEN 1 AND 5),
    email varchar(100) NOT NULL
);
CREATE TABLE tags (
    id serial PRIMARY KEY,
    lead_id int NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    code text NOT NULL CHECK (code ~ '^[0-9]{1,6}$')
);
'''

# Four defects: an off-by-one CHECK (model-check-not-enforced), a foreign key without the
# models' cascade (referential-action), a CHECK that raises on ordinary text instead of
# refusing it (valid-rows), and triggers left disabled after a bulk load, so a foreign key
# no longer refuses anything (rejects-violator).
WRONG = '''
CREATE TABLE accounts (id serial PRIMARY KEY, name varchar(60) NOT NULL UNIQUE);
CREATE TABLE leads (
    id serial PRIMARY KEY,
    account_id int NOT NULL REFERENCES accounts (id),
    rating smallint CONSTRAINT rating_range CHECK (rating BETWEEN 0 AND 5),
    email varchar(100) NOT NULL
);
CREATE TABLE tags (
    id serial PRIMARY KEY,
    lead_id int NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    code text NOT NULL CHECK (code::int > 0)
);
ALTER TABLE leads DISABLE TRIGGER ALL;
'''


def write_project(path: Path, schema: str, extra_ini: str = "", examples: int | None = 30) -> None:
    """A project with the models, ``schema`` as its SQL schema source, and (unless
    ``examples`` is None) a hypothesis profile that keeps the inner runs short."""
    (path / "models.py").write_text(MODELS)
    if examples is not None:
        (path / "conftest.py").write_text(
            "from hypothesis import settings\n"
            f"settings.register_profile('short', max_examples={examples})\n"
            "settings.load_profile('short')\n"
        )
    (path / "schema.sql").write_text(schema)
    (path / "pytest.ini").write_text(
        "[pytest]\npythonpath = .\ndbarch_sql_files = schema.sql\ndbarch_models = models:Base\n"
        "dbarch_report_dir = off\n" + extra_ini
    )
