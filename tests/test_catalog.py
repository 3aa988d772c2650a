"""The shared catalog reader: typed facts of a schema written for the purpose."""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
import pytest

from pytest_dbarch.models import ModelsError, load_metadata
from pytest_dbarch.postgres import catalog

SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN percent AS integer CHECK (VALUE BETWEEN 0 AND 100);
CREATE TABLE accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name varchar(80) NOT NULL UNIQUE,
    price numeric(10, 2),
    rating smallint CHECK (rating BETWEEN 1 AND 5),
    tags text[],
    moods mood[],
    current mood DEFAULT 'ok',
    score percent,
    seen timestamp(3) with time zone,
    doc jsonb,
    upper_name text GENERATED ALWAYS AS (upper(name)) STORED
);
COMMENT ON TABLE accounts IS 'customers';
CREATE TABLE contacts (
    id serial PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    manager_id integer REFERENCES contacts (id) ON DELETE SET NULL ON UPDATE CASCADE,
    email text,
    deleted_at timestamptz
);
CREATE INDEX ix_contacts_account_email ON contacts (account_id, lower(email)) INCLUDE (id)
    WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX ux_contacts_email ON contacts USING btree (email DESC);
CREATE INDEX ix_accounts_tags ON accounts USING gin (tags);
CREATE VIEW account_names AS SELECT name FROM accounts;
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (n int);
CREATE FUNCTION sd() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = public AS 'SELECT 1';
"""


@pytest.fixture
def read(dbarch_psycopg: psycopg.Connection) -> catalog.Catalog:
    dbarch_psycopg.execute(SCHEMA)
    return catalog.read(dbarch_psycopg)


def test_tables_and_lookup(read: catalog.Catalog) -> None:
    assert {t.qualified for t in read} >= {"public.accounts", "public.contacts", "public.account_names", "billing.invoices"}
    assert read.table("accounts") is read.table("public.accounts")
    assert read.table("invoices").schema == "billing"  # unique bare name off the search path
    assert read.table("account_names").kind == "view"
    assert [t.name for t in read.base_tables()].count("account_names") == 0
    assert read.table("accounts").comment == "customers"
    with pytest.raises(KeyError, match="no table 'nope'"):
        read.table("nope")


def test_column_types(read: catalog.Catalog) -> None:
    accounts = read.table("accounts")
    assert [c.name for c in accounts.columns][:3] == ["id", "name", "price"]
    ident = accounts.column("id")
    assert ident.identity == "always" and not ident.writable and ident.type_name == "int8"
    name = accounts.column("name")
    assert (name.type, name.type_name, name.length, name.not_null) == ("character varying(80)", "varchar", 80, True)
    price = accounts.column("price")
    assert (price.precision, price.scale, price.category) == (10, 2, "N")
    tags = accounts.column("tags")
    assert tags.is_array and tags.element_type == "text" and tags.dimensions == 1
    assert accounts.column("moods").enum_labels == ("sad", "ok", "happy")
    current = accounts.column("current")
    assert current.enum_labels == ("sad", "ok", "happy") and current.category == "E"
    assert current.default == "'ok'::mood"
    score = accounts.column("score")
    assert score.domain == "percent" and score.type_name == "int4"
    assert score.domain_checks == ("((VALUE >= 0) AND (VALUE <= 100))",)
    assert accounts.column("seen").precision == 3
    assert accounts.column("upper_name").generated and not accounts.column("upper_name").writable
    assert read.enums["public.mood"] == ("sad", "ok", "happy")


def test_constraints(read: catalog.Catalog) -> None:
    accounts, contacts = read.table("accounts"), read.table("contacts")
    assert accounts.primary_key is not None and accounts.primary_key.columns == ("id",)
    (check,) = accounts.checks
    assert check.expression == "((rating >= 1) AND (rating <= 5))" and check.columns == ("rating",)
    (unique,) = accounts.uniques
    assert unique.columns == ("name",) and unique.index == "accounts_name_key"
    fks = {fk.columns: fk for fk in contacts.foreign_keys}
    owner = fks[("account_id",)]
    assert (owner.ref, owner.ref_columns, owner.on_delete, owner.on_update) == (
        "public.accounts", ("id",), "CASCADE", "NO ACTION")
    manager = fks[("manager_id",)]
    assert (manager.ref_table, manager.on_delete, manager.on_update, manager.match) == (
        "contacts", "SET NULL", "CASCADE", "SIMPLE")
    assert [(t.name, fk.name) for t, fk in read.referencing(accounts)] == [("contacts", owner.name)]


def test_indexes(read: catalog.Catalog) -> None:
    contacts = {i.name: i for i in read.table("contacts").indexes}
    partial = contacts["ix_contacts_account_email"]
    assert partial.columns == ("account_id", None) and partial.attnums == (2, 0)
    assert partial.include == ("id",) and partial.predicate == "(deleted_at IS NULL)"
    assert partial.expressions == "lower(email)" and partial.method == "btree"
    assert not partial.unique and partial.valid and partial.constraint is None
    desc = contacts["ux_contacts_email"]
    assert desc.unique and desc.options == (3,)  # DESC NULLS FIRST
    pkey = contacts["contacts_pkey"]
    assert pkey.primary and pkey.constraint == "contacts_pkey"
    gin = next(i for i in read.table("accounts").indexes if i.name == "ix_accounts_tags")
    assert gin.method == "gin" and gin.opclasses == ("array_ops",)


def test_sequences_functions(read: catalog.Catalog) -> None:
    owned = {s.owned_by: s for s in read.sequences}
    assert owned["public.contacts.id"].type == "integer"
    assert owned["public.contacts.id"].last_value is None  # never used
    assert owned["public.accounts.id"].type == "bigint"
    (sd,) = [f for f in read.functions if f.name == "sd"]
    assert sd.security_definer and sd.config == ("search_path=public",)


def test_schema_filter(dbarch_psycopg: psycopg.Connection) -> None:
    dbarch_psycopg.execute(SCHEMA)
    only = catalog.read(dbarch_psycopg, schemas=("billing",))
    assert [t.qualified for t in only] == ["billing.invoices"]


def test_read_only_transaction(dbarch_psycopg: psycopg.Connection) -> None:
    dbarch_psycopg.execute(SCHEMA)
    with dbarch_psycopg.transaction():
        dbarch_psycopg.execute("SET LOCAL transaction_read_only = on")
        assert catalog.read(dbarch_psycopg).has_table("accounts")


def test_models_loader_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Not pytester: its sys.modules restore would unload SQLAlchemy modules first
    # imported here, breaking later in-process users of SQLAlchemy.
    (tmp_path / "mymodels.py").write_text(
        "from sqlalchemy.orm import DeclarativeBase\n"
        "class Base(DeclarativeBase):\n"
        "    pass\n"
        "NOT_MODELS = 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mymodels", raising=False)
    assert load_metadata("mymodels:Base").tables == {}
    assert load_metadata("mymodels:Base.metadata").tables == {}
    with pytest.raises(ModelsError, match="must look like 'package.module:attribute'"):
        load_metadata("mymodels")
    with pytest.raises(ModelsError, match="cannot be loaded: ModuleNotFoundError"):
        load_metadata("nothere:Base")
    with pytest.raises(ModelsError, match="cannot be loaded: AttributeError"):
        load_metadata("mymodels:Nope")
    with pytest.raises(ModelsError, match="is a int, not a SQLAlchemy MetaData"):
        load_metadata("mymodels:NOT_MODELS")
