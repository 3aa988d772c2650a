"""N+1 detection: every true positive caught, every listed false positive left alone."""

from __future__ import annotations

import pytest

from tests.queries_support import application_tests, project

APPLICATION = '''
from sqlalchemy import select, text

from models import Account


def account_name(session, account_id):
    return session.execute(select(Account.name).where(Account.id == account_id)).scalar()


def add_event(session, kind):
    session.execute(text("INSERT INTO events (kind) VALUES (:kind)"), {"kind": kind})


def contact_counts(session):
    return [len(account.contacts) for account in session.scalars(select(Account)).all()]
'''

TRUE_POSITIVES = '''
import psycopg
import pytest
from sqlalchemy import select, text

from models import Account, Contact


def test_lazy_one_to_many(seeded):
    for account in seeded.scalars(select(Account)).all():
        len(account.contacts)


def test_lazy_many_to_one(seeded):
    contacts = seeded.scalars(select(Contact).order_by(Contact.id)).all()
    seeded.expunge_all()
    contacts = seeded.scalars(select(Contact).where(Contact.id.in_([c.id for c in contacts[::2]]))).all()
    names = [contact.account.name for contact in contacts]


def test_session_get_in_a_loop(seeded):
    for account_id in (1, 2, 3):
        seeded.get(Account, account_id)


def test_text_with_inlined_literals(seeded):
    for account_id in (1, 2, 3):
        seeded.execute(text(f"SELECT name FROM accounts WHERE id = {account_id}"))


def test_raw_psycopg_in_a_loop(seeded, dbarch_psycopg):
    ids = [r[0] for r in dbarch_psycopg.execute("SELECT id FROM accounts").fetchall()]
    for account_id in ids:
        dbarch_psycopg.execute("SELECT email FROM contacts WHERE account_id = %s", (account_id,)).fetchall()


@pytest.mark.asyncio
async def test_async_session(dbarch_async_session):
    for account_id in (1, 2, 3):
        await dbarch_async_session.execute(select(Account.name).where(Account.id == account_id))


def test_lazy_load_in_the_iterable_of_a_comprehension(seeded):
    for account in seeded.scalars(select(Account)).all():
        emails = [contact.email for contact in account.contacts]


def test_the_application_loops(seeded):
    import crm

    crm.contact_counts(seeded)


def test_lookups_of_one_row_in_a_loop(seeded, dbarch_psycopg):
    for account_id in (1, 2, 3):
        dbarch_psycopg.execute("SELECT name FROM accounts WHERE id = %s LIMIT 1", (account_id,))
'''

NO_FALSE_POSITIVES = '''
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import joinedload, selectinload

import crm
from models import Account, Contact


@pytest.fixture
def many(dbarch_psycopg, dbarch_session):
    dbarch_psycopg.execute("INSERT INTO accounts (name) SELECT 'a' || g FROM generate_series(1, 1100) g")
    dbarch_psycopg.execute("INSERT INTO contacts (account_id, email) SELECT id, name FROM accounts")
    return dbarch_session


def test_eager_loads_in_selectinload_chunks(many):
    accounts = many.scalars(select(Account).options(selectinload(Account.contacts))).all()
    assert sum(len(a.contacts) for a in accounts) == 1100
    many.expunge_all()
    contacts = many.scalars(select(Contact).options(joinedload(Contact.account))).all()
    assert {c.account.name for c in contacts}


def test_selectinload_with_yield_per(many, dbarch_queries):
    stmt = select(Account).options(selectinload(Account.contacts)).execution_options(yield_per=100)
    assert sum(len(a.contacts) for a in many.scalars(stmt)) == 1100
    assert dbarch_queries.count >= 12


def test_pagination_offset_and_keyset(many):
    for page in range(5):
        many.execute(select(Account.id).order_by(Account.id).limit(10).offset(page * 10)).all()
    last = 0
    for _ in range(5):
        last = many.execute(select(Account.id).where(Account.id > last).order_by(Account.id).limit(10)).all()[-1][0]


def test_two_similar_queries_on_two_lines(seeded):
    seeded.get(Account, 1)
    seeded.get(Account, 2)


def test_executemany(dbarch_psycopg):
    with dbarch_psycopg.cursor() as cur:
        cur.executemany("INSERT INTO events (kind) VALUES (%s)", [(str(i),) for i in range(20)])


def test_distinct_statements_in_a_loop(seeded):
    for table in ("accounts", "contacts", "events"):
        seeded.execute(text(f"SELECT count(*) FROM {table}"))


def test_chunked_in_lists(many):
    ids = list(range(1, 1101))
    for start in range(0, len(ids), 500):
        many.execute(select(Account.name).where(Account.id.in_(ids[start:start + 500]))).all()


def test_catalog_queries_and_commits(seeded, dbarch_psycopg):
    for name in ("accounts", "contacts", "events"):
        dbarch_psycopg.execute("SELECT oid FROM pg_class WHERE relname = %s", (name,))
        dbarch_psycopg.commit()

'''

TEST_LOOPS = '''
import crm


def test_the_test_repeats_calls_into_the_application(seeded):
    """Seeding through the application's API: the test loops, the application does not."""
    for account_id in (1, 2, 3):
        crm.account_name(seeded, account_id)
    for kind in ("a", "b", "c", "d", "e"):
        crm.add_event(seeded, kind)
'''


def test_true_positives_fail_in_error_mode(external_pytester: pytest.Pytester) -> None:
    project(external_pytester)
    application_tests(external_pytester, "tp", TRUE_POSITIVES)
    external_pytester.makepyfile(crm=APPLICATION)
    result = external_pytester.runpytest("-p", "no:randomly", "--dbarch-nplusone=error")
    result.assert_outcomes(failed=9)
    out = result.stdout.str()
    assert out.count("[queries.nplusone-lazy-load]") >= 2 and out.count("[queries.nplusone-repeated-query]") >= 4
    result.stdout.fnmatch_lines(
        [
            "*pytest-dbarch: 1 N+1 query (nplusone mode=error)",
            "",
            "?queries.nplusone-lazy-load? N+1: Account.contacts lazy-loaded for 3 parents (3 queries)",
            "    query:  tp.py:10",
            "    loop:   tp.py:9  for account in seeded.scalars(select(Account)).all():",
            "    relationship: Account.contacts (onetomany, lazy)",
            "    parent query: tp.py:9  SELECT accounts.id, accounts.name FROM accounts",
            "    sql:    SELECT contacts.id, contacts.account_id, contacts.email FROM contacts WHERE $1 = contacts.account_id  (fingerprint *)",
            "    count:  3 statements, 3 distinct parents",
            "    id:     *",
            "    fix: load all of them in one query: .options(selectinload(Account.contacts)) on the query that loads Account",
        ]
    )
    result.stdout.fnmatch_lines(["*Contact.account lazy-loaded for 3 parents*", "*fix: *joinedload(Contact.account)*"])
    result.stdout.fnmatch_lines(
        [
            "*the same query ran 3 times from one call site with 3 different parameters",
            "    query:  tp.py:33",
            "    loop:   tp.py:32  for account_id in ids:",
            "    parent query: tp.py:31  SELECT id FROM accounts",
            "    sql:    SELECT email FROM contacts WHERE account_id = $1  (fingerprint *)",
        ]
    )
    result.stdout.fnmatch_lines(["*sql:    SELECT name FROM accounts WHERE id = $1  (fingerprint *)", "*count:  3 statements, 3 distinct*"])
    # The comprehension only walks what one lazy load returned: the loop is the for around it.
    result.stdout.fnmatch_lines([
        "*_ test_lazy_load_in_the_iterable_of_a_comprehension _*",
        "*N+1: Account.contacts lazy-loaded for 3 parents (3 queries)",
        "    query:  tp.py:44",
        "    loop:   tp.py:43  for account in seeded.scalars(select(Account)).all():",
    ])
    # LIMIT 1 is a lookup by key, not a page.
    result.stdout.fnmatch_lines([
        "*_ test_lookups_of_one_row_in_a_loop _*",
        "*N+1: the same query ran 3 times from one call site with 3 different parameters",
        "*sql:    SELECT name FROM accounts WHERE id = $1 LIMIT $2  (fingerprint *)",
    ])
    # The application's own loop, called once by the test: its N+1.
    result.stdout.fnmatch_lines([
        "*_ test_the_application_loops _*",
        "*N+1: Account.contacts lazy-loaded for 3 parents (3 queries)",
        "    query:  crm.py:15",
        "    loop:   crm.py:15  return [len(account.contacts) for account in session.scalars(select(Account)).all()]",
    ])
    # Where the comprehension's element runs the query, the comprehension is the loop.
    result.stdout.fnmatch_lines([
        "*_ test_lazy_many_to_one _*",
        "*N+1: Contact.account lazy-loaded for 3 parents (3 queries)",
        "    query:  tp.py:17",
        "    loop:   tp.py:17  names = [contact.account.name for contact in contacts]",
    ])


def test_no_false_positives_in_error_mode(external_pytester: pytest.Pytester) -> None:
    project(external_pytester)
    application_tests(external_pytester, "fp", NO_FALSE_POSITIVES, TEST_LOOPS)
    external_pytester.makepyfile(crm=APPLICATION)
    result = external_pytester.runpytest("-p", "no:randomly", "--dbarch-nplusone=error", "-v")
    result.assert_outcomes(passed=9)
    assert "queries.nplusone-" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*ok ?queries.nplusone? No N+1 queries (* statements checked)"])


MODES = '''
import pytest
from sqlalchemy import select

from models import Account


def load_contacts(session):
    for account in session.scalars(select(Account)).all():
        len(account.contacts)


def test_warn_by_default(seeded):
    load_contacts(seeded)


@pytest.mark.nplusone(mode="error")
def test_marker_error(seeded):
    load_contacts(seeded)


@pytest.mark.nplusone(mode="off")
def test_marker_off(seeded):
    load_contacts(seeded)


@pytest.mark.nplusone(mode="error", threshold=4)
def test_marker_threshold(seeded):
    load_contacts(seeded)


@pytest.mark.nplusone(mode="loud")
def test_bad_marker(seeded):
    pass


def test_warnings(dbarch_psycopg):
    for _ in range(3):
        dbarch_psycopg.execute("SELECT name FROM accounts WHERE id = %s", (1,))
    for i in range(5):
        dbarch_psycopg.execute("INSERT INTO events (kind) VALUES (%s)", (str(i),))
'''


def test_modes_markers_and_warnings(external_pytester: pytest.Pytester) -> None:
    project(external_pytester)
    application_tests(external_pytester, "modes", MODES)
    result = external_pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=4, failed=1, errors=1)
    result.stdout.fnmatch_lines(["FAILED test_modes.py::test_marker_error - Failed: pytest-dbarch: 1 N+1 query*"])
    result.stdout.fnmatch_lines(["*bad @pytest.mark.nplusone: mode='loud'; choose one of warn, error, off*"])
    summary = result.stdout.str().split("= dbarch =")[1]
    assert summary.count("WARN [queries.nplusone-lazy-load]") == 1  # the default-mode test; off and threshold=4 pass
    assert "FAIL [queries.nplusone-lazy-load]" in summary
    assert "WARN [queries.repeated-identical-query] The same query with the same parameters ran 3 times" in summary
    assert "WARN [queries.write-loop] Row-by-row writes: 5 single-row INSERTs from one call site" in summary
    assert "fix: send the rows in one statement before the loop at modes.py:39" in summary


def test_session_mode_ignore_list_and_baseline(external_pytester: pytest.Pytester) -> None:
    project(external_pytester)
    application_tests(external_pytester, "modes", MODES)
    result = external_pytester.runpytest("-p", "no:randomly", "--dbarch-nplusone=error", "-k", "default")
    result.assert_outcomes(failed=1)
    finding_id = next(
        line.split()[1] for line in result.stdout.lines if line.strip().startswith("id:")
    )
    fingerprint = next(
        line.rsplit("(fingerprint ", 1)[1].rstrip(")") for line in result.stdout.lines if "(fingerprint " in line
    )
    external_pytester.path.joinpath("baseline.txt").write_text(f"# legacy\n{finding_id}  # accepted\n")
    project(external_pytester, "dbarch_nplusone_baseline = baseline.txt\n")
    result = external_pytester.runpytest("-p", "no:randomly", "--dbarch-nplusone=error", "-k", "default or marker_error")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*WARN ?queries.nplusone-lazy-load? N+1: Account.contacts lazy-loaded for 3 parents (3 queries) ?baseline?*"])

    for entry in ("relationship:Account.contacts", "function:load_contacts", "file:mod*.py", f"fingerprint:{fingerprint}"):
        project(external_pytester, f"dbarch_nplusone = error\ndbarch_nplusone_ignore = {entry}\n")
        result = external_pytester.runpytest("-p", "no:randomly", "-k", "default")
        result.assert_outcomes(passed=1)


def test_thresholds_from_ini(external_pytester: pytest.Pytester) -> None:
    """One above what the tests do: the N+1 (3 parents), the repeat (3 times) and the write
    loop (5 rows) that test_modes_markers_and_warnings reports are all left alone."""
    project(
        external_pytester,
        "dbarch_nplusone_threshold = 4\ndbarch_repeated_query_threshold = 4\ndbarch_write_loop_threshold = 6\n",
    )
    application_tests(external_pytester, "modes", MODES)
    result = external_pytester.runpytest("-p", "no:randomly", "--dbarch-nplusone=error", "-k", "default or warnings")
    result.assert_outcomes(passed=2)
    output = result.stdout.str()
    for rule in ("nplusone-lazy-load", "repeated-identical-query", "write-loop"):
        assert f"[queries.{rule}]" not in output, rule


def test_bad_settings_are_usage_errors(external_pytester: pytest.Pytester) -> None:
    project(external_pytester, "dbarch_nplusone_baseline = missing.txt\n")
    external_pytester.makepyfile("def test_x(): pass")
    result = external_pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dbarch_nplusone_baseline '*missing.txt' cannot be read (FileNotFoundError: No such file or directory); fix the path or remove the setting"])
    project(external_pytester, "dbarch_nplusone_ignore = Account.contacts\n")
    result = external_pytester.runpytest()
    result.stderr.fnmatch_lines(["*dbarch_nplusone_ignore entry 'Account.contacts' is not understood; write one of relationship:<...>*"])
    result = external_pytester.runpytest("--dbarch-nplusone=loud")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid choice: 'loud'*"])
    project(external_pytester, "dbarch_nplusone_threshold = 1\n")
    result = external_pytester.runpytest()
    result.stderr.fnmatch_lines(["*dbarch_nplusone_threshold from ini dbarch_nplusone_threshold is 1; it must be 2 or more"])


def test_help_markers_and_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    pytester.runpytest("--help").stdout.fnmatch_lines(
        ["*--dbarch-nplusone={warn,error,off}*", "*dbarch_nplusone_baseline (string)*", "*dbarch_large_tables (linelist)*"]
    )
    pytester.runpytest("--markers").stdout.fnmatch_lines(
        ["@pytest.mark.max_queries(n):*", "@pytest.mark.nplusone(mode='error'|'warn'|'off', threshold=2):*"]
    )
    result = pytester.runpytest("--fixtures")
    for name in ("dbarch_queries", "dbarch_assert_num_queries", "dbarch_assert_max_num_queries"):
        result.stdout.fnmatch_lines([f"{name}*", "    ?*"])
