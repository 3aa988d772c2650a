"""Rows every test database starts with, put into the template once
(``dbarch_seed = crm.seed:reference_data`` in pytest.ini)."""

from __future__ import annotations

import uuid

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from crm.models import AuditLog

# The journal's first entry: the row that says this database was set up from the seed.
SEED_ROW_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")


def reference_data(connection: Connection) -> None:
    """Called with a Connection to the template after the migrations ran; the ORM works
    on it as usual (its commit stays inside the build's transaction)."""
    with Session(bind=connection) as session:
        session.add(AuditLog(table_name="system", row_id=SEED_ROW_ID, action="insert", changed={"seed": "reference"}))
        session.commit()
