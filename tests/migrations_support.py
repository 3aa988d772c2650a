"""Writes small migration histories for the migration-check tests (Alembic and SQL)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ALEMBIC_INI = """\
[alembic]
script_location = %(here)s/migrations
"""

ENV_PY = """\
from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
"""

REVISION = '''\
"""{doc}"""
from alembic import op

revision = {rev!r}
down_revision = {down!r}
{extra}

def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''


@dataclass(frozen=True)
class Rev:
    """One revision: Python bodies for upgrade()/downgrade() (SQL strings become op.execute)."""

    id: str
    upgrade: str | Sequence[str]
    downgrade: str | Sequence[str]
    down: str | tuple[str, ...] | None = "previous"
    doc: str = ""
    extra: str = ""


def _body(code: str | Sequence[str]) -> str:
    if isinstance(code, str):
        return textwrap.indent(textwrap.dedent(code).strip() or "pass", "    ")
    lines = [f"op.execute({sql!r})" for sql in code] or ["pass"]
    return textwrap.indent("\n".join(lines), "    ")


def write_alembic(root: Path, revisions: Sequence[Rev], env: str = ENV_PY) -> Path:
    """alembic.ini, migrations/env.py and one file per revision under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "alembic.ini").write_text(ALEMBIC_INI)
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(env)
    previous: str | None = None
    for rev in revisions:
        down = previous if rev.down == "previous" else rev.down
        (versions / f"{rev.id}.py").write_text(
            REVISION.format(
                doc=rev.doc or rev.id,
                rev=rev.id,
                down=down,
                extra=rev.extra,
                upgrade=_body(rev.upgrade),
                downgrade=_body(rev.downgrade),
            )
        )
        previous = rev.id
    return root / "alembic.ini"


# The proof history: twelve revisions, ten of them with a planted downgrade defect.
# (revision, upgrade SQL, downgrade SQL, the line the diff must show)
PLANTED: list[tuple[str, list[str], list[str], str]] = [
    (
        "r01",
        [
            "CREATE TABLE contacts (id serial PRIMARY KEY, email text, status text NOT NULL "
            "DEFAULT 'new', CONSTRAINT ck_contacts_status CHECK (status IN ('new', 'won')))",
            "CREATE TABLE notes (id serial PRIMARY KEY, contact_id int, CONSTRAINT fk_notes_contact "
            "FOREIGN KEY (contact_id) REFERENCES contacts (id) ON DELETE CASCADE)",
        ],
        ["DROP TABLE notes", "DROP TABLE contacts"],
        "",
    ),
    (
        "r02",
        ["CREATE TYPE mood AS ENUM ('calm', 'busy')", "ALTER TABLE contacts ADD COLUMN mood mood"],
        ["ALTER TABLE contacts DROP COLUMN mood"],
        "enum type mood left behind",
    ),
    (
        "r03",
        ["ALTER TABLE contacts ALTER COLUMN id TYPE bigint"],
        ["ALTER TABLE contacts ALTER COLUMN id TYPE integer", "ALTER TABLE contacts ALTER COLUMN id DROP DEFAULT"],
        "column contacts.id: default nextval('contacts_id_seq'::regclass) lost",
    ),
    (
        "r04",
        [
            "ALTER TABLE contacts DROP CONSTRAINT ck_contacts_status",
            "ALTER TABLE contacts ADD CONSTRAINT ck_contacts_status CHECK (status IN ('new', 'won', 'lost'))",
        ],
        [
            "ALTER TABLE contacts DROP CONSTRAINT ck_contacts_status",
            "ALTER TABLE contacts ADD CONSTRAINT ck_contacts_status CHECK (status IN ('new', 'lost'))",
        ],
        "constraint ck_contacts_status on contacts: definition changed from CHECK "
        "((status = ANY (ARRAY['new'::text, 'won'::text]))) to CHECK ((status = ANY (ARRAY['new'::text, 'lost'::text])))",
    ),
    (
        "r05",
        [
            "CREATE FUNCTION touch_contact() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN NEW.email := lower(NEW.email); RETURN NEW; END $$",
            "CREATE TRIGGER trg_touch BEFORE UPDATE ON contacts FOR EACH ROW EXECUTE FUNCTION touch_contact()",
        ],
        ["DROP TRIGGER trg_touch ON contacts"],
        "function touch_contact() left behind",
    ),
    (
        "r06",
        [
            "CREATE SEQUENCE invoice_no_seq",
            "ALTER TABLE contacts ADD COLUMN invoice_no bigint DEFAULT nextval('invoice_no_seq')",
        ],
        ["ALTER TABLE contacts DROP COLUMN invoice_no"],
        "sequence invoice_no_seq left behind",
    ),
    (
        "r07",
        [
            "CREATE INDEX ix_contacts_email ON contacts (email)",
            "CREATE VIEW new_contacts AS SELECT id, email FROM contacts WHERE status = 'new'",
        ],
        ["DROP INDEX ix_contacts_email"],
        "view new_contacts left behind",
    ),
    (
        "r08",
        [
            "ALTER TABLE notes DROP CONSTRAINT fk_notes_contact",
            "ALTER TABLE notes ADD CONSTRAINT fk_notes_contact FOREIGN KEY (contact_id) "
            "REFERENCES contacts (id) ON DELETE SET NULL",
        ],
        [
            "ALTER TABLE notes DROP CONSTRAINT fk_notes_contact",
            "ALTER TABLE notes ADD CONSTRAINT fk_notes_contact FOREIGN KEY (contact_id) REFERENCES contacts (id)",
        ],
        "constraint fk_notes_contact on notes: definition changed from FOREIGN KEY (contact_id) "
        "REFERENCES contacts(id) ON DELETE CASCADE to FOREIGN KEY (contact_id) REFERENCES contacts(id)",
    ),
    (
        "r09",
        ["GRANT SELECT ON contacts TO PUBLIC", "ALTER TABLE contacts ADD COLUMN nickname text"],
        ["ALTER TABLE contacts DROP COLUMN nickname"],
        "table contacts: grant SELECT to PUBLIC left behind",
    ),
    (
        "r10",
        ["COMMENT ON COLUMN contacts.email IS 'where invoices go'", "ALTER TABLE notes ADD COLUMN body text"],
        ["ALTER TABLE notes DROP COLUMN body"],
        "column contacts.email: comment where invoices go left behind",
    ),
    (
        "r11",
        ["CREATE INDEX ix_contacts_status ON contacts (status)", "ALTER TABLE contacts ADD COLUMN score int"],
        ["ALTER TABLE contacts DROP COLUMN score"],
        "index ix_contacts_status left behind",
    ),
]

# A clean last revision with non-transactional DDL.
CONCURRENT_INDEX = Rev(
    "r12",
    """
    with op.get_context().autocommit_block():
        op.execute("CREATE INDEX CONCURRENTLY ix_notes_contact_id ON notes (contact_id)")
    """,
    """
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY ix_notes_contact_id")
    """,
)


def planted_history(root: Path) -> Path:
    revisions = [Rev(rev, up, down) for rev, up, down, _ in PLANTED] + [CONCURRENT_INDEX]
    return write_alembic(root, revisions)
