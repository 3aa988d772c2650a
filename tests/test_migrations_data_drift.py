"""Data round trips catch a downgrade that renumbers keys; drift compares head with the models."""

from __future__ import annotations

import pytest

from tests.migrations_support import ENV_PY, Rev, write_alembic

MODELS = """
import sqlalchemy as sa

metadata = sa.MetaData()
items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("price", sa.Integer),
    sa.CheckConstraint("price >= 0", name="ck_items_price"),
)
"""


def test_renumbering_downgrade_and_drift(external_pytester: pytest.Pytester) -> None:
    env = ENV_PY.replace("from alembic import context", "from alembic import context\nfrom models import metadata").replace(
        "target_metadata=None", "target_metadata=metadata"
    )
    write_alembic(
        external_pytester.path,
        [
            Rev("r1", ["CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)"], ["DROP TABLE items"]),
            Rev(
                "r2",
                ["ALTER TABLE items ADD COLUMN note text"],
                ["ALTER TABLE items DROP COLUMN note", "UPDATE items SET id = id + 100"],
            ),
            Rev("r3", ["ALTER TABLE items ADD COLUMN sku text"], ["ALTER TABLE items DROP COLUMN sku"]),
        ],
        env=env,
    )
    with open(external_pytester.path / "alembic.ini", "a") as ini:
        ini.write("prepend_sys_path = %(here)s\n")
    external_pytester.makepyfile(models=MODELS)
    external_pytester.makeini("[pytest]\ndbarch_migrations = alembic.ini\n")
    result = external_pytester.runpytest("-rf", "-p", "no:randomly")
    output = result.stdout.str()
    assert "FAILED alembic.ini::data-round-trip[r2]" in output
    assert "revision r2: data does not survive the round trip: items: row id=2 lost (keys renumbered or rows dropped)" in output
    assert "FAILED alembic.ini::round-trip[r2]" not in output  # the schema itself comes back identical
    assert "FAILED alembic.ini::data-round-trip[r3]" not in output
    assert "FAILED alembic.ini::drift" in output
    for line in (
        "column items.price is in the models but not in the migrated schema",
        "column items.sku is in the migrated schema but not in the models",
        "check constraint ck_items_price on items is in the models but not in the migrated schema",
    ):
        assert line in output, line
    # 3 of them lock-safety[rev]; deploy-transaction warns (env.py has no
    # transaction_per_migration), so it is skipped
    result.assert_outcomes(passed=12, failed=2, skipped=1)
