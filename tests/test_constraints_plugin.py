"""The constraint checks as a user sees them: ``constraints[<table>]`` items from the ini file,
every check firing on a schema written wrong on purpose and silent on its correct twin."""

from __future__ import annotations

import pytest

from tests.conftest import database_names
from tests.constraints_support import RIGHT, WRONG, write_project


def test_every_check_fires_on_the_wrong_schema(external_pytester: pytest.Pytester, admin) -> None:  # type: ignore[no-untyped-def]
    before = database_names(admin)
    write_project(external_pytester.path, WRONG, "dbarch_constraints = true\n")
    result = external_pytester.runpytest("-rfs", "-p", "no:randomly")
    output = result.stdout.str()
    result.assert_outcomes(failed=2, passed=1)
    # The off-by-one CHECK, shown with the row that proves it.
    assert "public.leads: rating=0 accepted; models say rating >= 1 AND rating <= 5" in output
    # The foreign key without the models' ON DELETE CASCADE.
    assert ("public.leads: deleting a public.accounts row was refused (leads_account_id_fkey on account_id); "
            "the models say ON DELETE CASCADE") in output
    # Triggers left disabled: the foreign key lets a violating row in.
    assert "public.leads: FOREIGN KEY leads_account_id_fkey accepts a row that violates it" in output
    # A CHECK that raises on ordinary text instead of refusing it.
    assert "public.tags: CHECK tags_code_check raises an error on a plain row" in output
    assert 'invalid input syntax for type integer' in output
    assert "Traceback" not in output
    assert database_names(admin) == before


def test_every_check_is_silent_on_the_correct_twin(external_pytester: pytest.Pytester) -> None:
    write_project(external_pytester.path, RIGHT, "dbarch_constraints = true\n")
    result = external_pytester.runpytest("-rfs", "-v", "-p", "no:randomly")
    output = result.stdout.str()
    result.assert_outcomes(passed=3)
    for table in ("accounts", "leads", "tags"):
        assert f"pytest.ini::constraints[{table}] PASSED" in output
    # BETWEEN 1 AND 5 in the database, >= 1 AND <= 5 in the models: the same behaviour.
    assert "public.leads: the database enforces the models' 1 CHECKs" in output
    assert "public.leads: the database's CHECKs refuse no row the models' CHECKs allow" in output
    assert "WARN" not in output and "FAIL [" not in output


def test_table_list_skips_and_hypothesis_profile(external_pytester: pytest.Pytester) -> None:
    write_project(external_pytester.path, RIGHT,
                  "dbarch_constraints =\n    leads\n    tags\n"
                  "dbarch_constraints_skip =\n    tags: filled by the import job only\n"
                  "    leads.rating_range: checked in the service layer\n", examples=None)
    external_pytester.makeconftest(
        "from hypothesis import settings\n"
        "settings.register_profile('tiny', max_examples=7)\n"
        "settings.load_profile('tiny')\n"
    )
    result = external_pytester.runpytest("-rs", "-v", "-p", "no:randomly")
    output = result.stdout.str()
    result.assert_outcomes(passed=1, skipped=1)
    assert "constraints[accounts]" not in output
    assert "SKIPPED [1] pytest.ini: tags: filled by the import job only" in output
    assert "public.leads: 7 generated rows accepted" in output  # the active profile's max_examples
    assert "rating_range: skipped: checked in the service layer" in output


def test_bad_settings_get_one_clear_message(external_pytester: pytest.Pytester) -> None:
    write_project(external_pytester.path, RIGHT, "dbarch_constraints_skip =\n    leads\n")
    result = external_pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dbarch_constraints_skip line 'leads' has no reason; write '<table>: <why>'*"])

    write_project(external_pytester.path, RIGHT, "dbarch_constraints = nowhere\n")
    result = external_pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no table 'nowhere' in the database*", "*fix: name a table of the test's database*"])
    assert "Traceback" not in result.stdout.str()


def test_fixture_checks_and_strategies_in_a_users_test(external_pytester: pytest.Pytester) -> None:
    write_project(external_pytester.path, WRONG)
    external_pytester.makepyfile(test_user="""
        from hypothesis import given, settings

        def test_checks(dbarch_constraints):
            findings = dbarch_constraints.check("leads")
            failed = {f.rule for f in findings if f.status.value == "failed"}
            assert failed == {"constraints.model-check-not-enforced", "constraints.referential-action",
                              "constraints.rejects-violator"}

        def test_rows_then_factory(dbarch_constraints, dbarch_session):
            from models import Lead
            assert dbarch_constraints.fill("accounts", 3) == 3

            @settings(max_examples=20)
            @given(dbarch_constraints.rows("leads", rating=3))
            def leads(row):
                assert row["rating"] == 3 and 0 < len(row["email"]) <= 100 or row["email"] == ""

            leads()
            lead = dbarch_constraints.factory(Lead).create()
            assert dbarch_session.get(Lead, lead.id) is lead
    """)
    result = external_pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)


DOMAIN_MODELS = '''
from sqlalchemy import CheckConstraint, SmallInteger
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (CheckConstraint("rating >= 1 AND rating <= 5", name="rating_range"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    rating: Mapped[int] = mapped_column(SmallInteger)
'''

# The database is stricter than the models on reviews.rating (1-4 against 1-5); a domain
# and an exclusion constraint (core gist on a range: no extension needed) must hold.
DOMAIN_SCHEMA = '''
CREATE DOMAIN percent AS int CHECK (VALUE BETWEEN 0 AND 100);
CREATE TABLE reviews (id serial PRIMARY KEY, share percent NOT NULL,
                      rating smallint NOT NULL CONSTRAINT rating_range CHECK (rating BETWEEN 1 AND 4));
CREATE TABLE rooms (id serial PRIMARY KEY, during tstzrange NOT NULL,
                    CONSTRAINT no_double_booking EXCLUDE USING gist (during WITH &&));
'''


def test_domains_exclusions_and_a_database_stricter_than_the_models(external_pytester: pytest.Pytester) -> None:
    write_project(external_pytester.path, DOMAIN_SCHEMA, "dbarch_constraints = true\n")
    (external_pytester.path / "models.py").write_text(DOMAIN_MODELS)
    external_pytester.makepyfile(test_user="""
        from hypothesis import given, settings

        def test_checks(dbarch_constraints):
            findings = dbarch_constraints.check("reviews", "rooms")
            problems = {(f.rule, f.status.value, f.title) for f in findings if f.is_problem}
            assert problems == {("constraints.database-check-stricter", "warning",
                                 "public.reviews: rating=5 refused by rating_range; models allow it "
                                 "(rating >= 1 AND rating <= 5)")}, problems
            held = "\\n".join(f.evidence for f in findings if f.rule == "constraints.rejects-violator")
            assert "DOMAIN CHECK percent_check on share: refused with 23514" in held
            assert "EXCLUDE no_double_booking: refused with 23P01" in held

        def test_rows_keep_the_domain_and_the_exclusion(dbarch_constraints, dbarch_psycopg):
            spec = dbarch_constraints.spec("rooms")

            @settings(max_examples=25)
            @given(dbarch_constraints.rows("reviews"), dbarch_constraints.rows("rooms"))
            def insert(review, room):
                assert 0 <= review["share"] <= 100
                assert dbarch_constraints._probe.insert(spec, room, keep=True).ok

            insert()
            assert dbarch_constraints.fill("rooms", 100) == 100
    """)
    result = external_pytester.runpytest("-rfs", "-v", "-p", "no:randomly")
    output = result.stdout.str()
    result.assert_outcomes(passed=4)  # two items (a warning does not fail one) and two tests
    assert "pytest.ini::constraints[reviews] PASSED" in output and "pytest.ini::constraints[rooms] PASSED" in output
    assert "rating=5 refused by rating_range" in output  # the warning is reported
    assert "Traceback" not in output


# A table whose CHECK allows qty up to 999 while a trigger refuses 100 and more: a schema
# wrong on purpose, to pin what a counterexample looks like once hypothesis has shrunk it.
SHRINK_SCHEMA = '''
CREATE TABLE orders (
    id serial PRIMARY KEY,
    qty int NOT NULL CHECK (qty >= 0 AND qty < 1000),
    note varchar(40),
    placed date NOT NULL,
    price numeric(8, 2) NOT NULL CHECK (price > 0)
);
CREATE FUNCTION small_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.qty >= 100 THEN RAISE EXCEPTION 'qty % is too large', NEW.qty; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER small_orders BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION small_orders();
'''


def test_counterexamples_shrink_to_the_boundary_and_the_simplest_values(external_pytester: pytest.Pytester) -> None:
    """One hypothesis choice per row must still shrink column by column: the refused row
    shows qty=100 (the trigger's boundary), not a random value, and every other column at
    its simplest (NULL, 2000-01-01, the smallest price the CHECK allows)."""
    write_project(external_pytester.path, SHRINK_SCHEMA, examples=100)
    external_pytester.makepyfile(test_user="""
        from hypothesis import given

        def test_valid_rows_names_the_refusal_and_the_minimal_row(dbarch_constraints):
            [found] = [f for f in dbarch_constraints.check("orders") if f.rule == "constraints.valid-rows"]
            print(found.title)
            print(found.evidence)
            assert found.status.value == "warning", found.title

        def test_a_users_property_fails_on_the_minimal_row(dbarch_constraints):
            @given(dbarch_constraints.rows("orders"))
            def small(row):
                assert row["qty"] < 100

            small()
    """)
    result = external_pytester.runpytest("-s", "-p", "no:randomly")
    output = result.stdout.str()
    result.assert_outcomes(passed=1, failed=1)
    assert "public.orders: a row meeting every constraint was refused (P0001) by a trigger: qty 100 is too large" in output
    row = "qty=100, note=None, placed=datetime.date(2000, 1, 1), price=Decimal('0.01')"
    assert f"row: {row}" in output
    assert "PostgreSQL: P0001: qty 100 is too large" in output
    # The user's own property test: hypothesis prints the minimal falsifying row.
    assert "row = {'qty': 100, 'note': None, 'placed': datetime.date(2000, 1, 1), 'price': Decimal('0.01')}" in output
    assert "Failing test case: small(" in output
    assert "Traceback" not in output
