"""Issue 15, point 5: module- and session-scoped databases, and the template seed.

One inner session shows the isolation semantics a user reads in the README: what a
test sees of earlier tests' writes in a scope, how per-test fixtures wrap a scoped
database in a rolled-back transaction (the application's engine included), that
every test starts with the seed rows, and that every scoped database is dropped when
its scope ends, failing tests or not.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from tests.conftest import database_names
from tests.test_cache import private_cache  # noqa: F401

SCHEMA = "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);\n"

SEED = '''
from sqlalchemy import text


def add_rows(connection):
    connection.execute(text("INSERT INTO items (name) VALUES ('seeded')"))
'''

CONFTEST = '''
import pytest
from sqlalchemy import text


@pytest.fixture(scope="session")
def app_engine(dbarch_session_database):
    """What an application fixture of session scope would hold."""
    print("SESSION-DB", dbarch_session_database.name)
    return dbarch_session_database.engine


def names(engine):
    with engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(text("SELECT name FROM items")))
'''

TEST_SESSION = '''
import pytest
from sqlalchemy import text

from conftest import names

PIDS = {}


def test_1_writes_outside_a_test_transaction_stay(app_engine):
    with app_engine.begin() as conn:
        conn.execute(text("INSERT INTO items (name) VALUES ('kept')"))
    assert names(app_engine) == ["kept", "seeded"]


def test_2_a_later_test_sees_them(app_engine):
    assert names(app_engine) == ["kept", "seeded"]
    with app_engine.connect() as first:
        pid = first.execute(text("SELECT pg_backend_pid()")).scalar()
    with app_engine.connect() as second:  # kept for reuse, as a pool would
        assert second.execute(text("SELECT pg_backend_pid()")).scalar() == pid


def test_3_per_test_fixtures_wrap_the_scope_in_a_transaction(app_engine, dbarch_session, dbarch_url, dbarch_session_database):
    assert dbarch_url == dbarch_session_database.url
    dbarch_session.execute(text("INSERT INTO items (name) VALUES ('test 3')"))
    dbarch_session.commit()
    with app_engine.begin() as conn:  # the application's engine joins the test's transaction
        conn.execute(text("INSERT INTO items (name) VALUES ('app in test 3')"))
    assert names(app_engine) == ["app in test 3", "kept", "seeded", "test 3"]
    test_pid = dbarch_session.execute(text("SELECT pg_backend_pid()")).scalar()
    with app_engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == test_pid
    PIDS['test 3'] = test_pid


def test_4_and_rolls_it_back(app_engine, dbarch_connection):
    assert names(app_engine) == ["kept", "seeded"]


def test_4b_outside_a_test_transaction_the_tests_connection_is_never_handed_out(app_engine):
    with app_engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != PIDS['test 3']


def test_5_a_failing_test_in_the_scope(app_engine, dbarch_session):
    dbarch_session.execute(text("INSERT INTO items (name) VALUES ('failed')"))
    assert False, "fails on purpose"


def test_6_its_writes_are_gone_too(app_engine):
    assert names(app_engine) == ["kept", "seeded"]


def test_6b_a_literal_commit_is_an_error(app_engine, dbarch_session):
    dbarch_session.execute(text("INSERT INTO items (name) VALUES ('leaked')"))
    dbarch_session.execute(text("COMMIT"))


def test_6c_and_its_writes_stay_for_the_scope(app_engine):
    assert names(app_engine) == ["kept", "leaked", "seeded"]


@pytest.mark.dbarch(isolation="clone")
def test_7_clone_isolation_does_not_apply(app_engine, dbarch_session):
    pass


def test_8_tests_without_a_scope_use_the_template(dbarch_session):
    # The seed row, none of the session database's writes.
    assert [r[0] for r in dbarch_session.execute(text("SELECT name FROM items"))] == ["seeded"]


@pytest.mark.dbarch(isolation="clone")
def test_9_clones_start_with_the_seed(dbarch_psycopg):
    assert dbarch_psycopg.execute("SELECT name FROM items").fetchall() == [("seeded",)]
'''

TEST_MODULE_A = '''
import pytest
from sqlalchemy import text


@pytest.fixture(scope="module")
def module_rows(dbarch_module_database):
    print("MODULE-DB", dbarch_module_database.name)
    with dbarch_module_database.engine.begin() as conn:
        conn.execute(text("INSERT INTO items (name) VALUES ('module a')"))
    return dbarch_module_database


def test_a1(module_rows, dbarch_session):
    assert sorted(r[0] for r in dbarch_session.execute(text("SELECT name FROM items"))) == ["module a", "seeded"]
    dbarch_session.execute(text("DELETE FROM items"))


def test_a2(module_rows, dbarch_session):
    assert sorted(r[0] for r in dbarch_session.execute(text("SELECT name FROM items"))) == ["module a", "seeded"]


def test_a3_fails(module_rows):
    assert False, "fails on purpose"
'''

TEST_MODULE_B = '''
import os

import psycopg
from sqlalchemy import text


def test_b1_a_new_module_starts_from_the_template(dbarch_module_database, dbarch_session):
    assert [r[0] for r in dbarch_session.execute(text("SELECT name FROM items"))] == ["seeded"]
    with psycopg.connect(os.environ["OUTER_ADMIN"]) as admin:
        alive = {r[0] for r in admin.execute("SELECT datname FROM pg_database")}
    print("ALIVE", " ".join(sorted(alive)))


def test_b2_both_scopes_at_once(dbarch_module_database, dbarch_session_database, dbarch_session):
    pass
'''


def test_scoped_databases_isolation_and_cleanup(
    external_pytester: pytest.Pytester, admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTER_ADMIN", admin.info.dsn)
    external_pytester.makefile(".sql", schema=SCHEMA)
    external_pytester.makepyfile(
        seed=SEED, conftest=CONFTEST, test_1_session=TEST_SESSION, test_module_a=TEST_MODULE_A, test_module_b=TEST_MODULE_B
    )
    external_pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\ndbarch_seed = seed:add_rows\npythonpath = .\n")
    result = external_pytester.runpytest("-p", "no:randomly", "-s", "-n", "0")
    out = result.stdout.str()
    result.assert_outcomes(passed=13, failed=2, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*test_1_session.py::test_6b_a_literal_commit_is_an_error ended the transaction that isolates it*"
            "its writes reached the module's or session's database and stay there until its scope ends",
            "*test_1_session.py::test_7_clone_isolation_does_not_apply asks for clone isolation but uses the session's database*",
            "*test_b2_both_scopes_at_once uses both dbarch_session_database and dbarch_module_database*",
        ]
    )
    session_db = re.search(r"SESSION-DB (\S+)", out).group(1)  # type: ignore[union-attr]
    module_db = re.search(r"MODULE-DB (\S+)", out).group(1)  # type: ignore[union-attr]
    alive = re.search(r"ALIVE (.*)", out).group(1).split()  # type: ignore[union-attr]
    # Module a's database was dropped when its last (failing) test ended, the
    # session's lives on until the session ends; then neither is left.
    assert module_db not in alive and session_db in alive
    assert not {session_db, module_db} & database_names(admin)


# --------------------------------------------------------------------------- the seed

LOGGED_SEED = '''
import os

from sqlalchemy import text


def add_rows(connection):
    with open(os.environ["SEED_LOG"], "a") as log:
        log.write("seeded\\n")
    connection.execute(text("INSERT INTO items (name) VALUES ('{name}')"))
    {extra}
'''

ROWS_TEST = '''
import pytest


@pytest.mark.parametrize("n", range(4))
def test_rows(dbarch_psycopg, n):
    print("ROWS", [r[0] for r in dbarch_psycopg.execute("SELECT name FROM items ORDER BY id")])
'''


WORKERS_TEST = '''
import os

import pytest
from sqlalchemy import text


@pytest.mark.parametrize("n", range(4))
def test_worker_database(dbarch_session_database, n):
    with dbarch_session_database.engine.connect() as conn:
        rows = [r[0] for r in conn.execute(text("SELECT name FROM items"))]
    with open(os.environ["WORKERS_LOG"], "a") as log:
        log.write(f"{os.environ.get('PYTEST_XDIST_WORKER')} {dbarch_session_database.name} {rows}\\n")
'''


def write_seeded_project(pytester: pytest.Pytester, name: str, extra: str = "") -> None:
    pytester.makefile(".sql", schema=SCHEMA)
    pytester.makepyfile(seed=LOGGED_SEED.format(name=name, extra=extra), test_rows=ROWS_TEST)
    pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\ndbarch_seed = seed:add_rows\npythonpath = .\n")


def seed_runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_failing_seed_is_one_error_and_leaks_nothing(
    external_pytester: pytest.Pytester, admin: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEED_LOG", str(tmp_path / "seed.log"))
    before = database_names(admin)
    write_seeded_project(external_pytester, "admin", extra='raise ValueError("FIRST_SUPERUSER is not set")')
    result = external_pytester.runpytest("-p", "no:randomly", "-n", "0")
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines(
        [
            "*pytest-dbarch: the seed seed:add_rows failed at */seed.py:10: ValueError: FIRST_SUPERUSER is not set",
            "*fix: fix the seed function*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert database_names(admin) == before, "the failed template was left behind"

    external_pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\ndbarch_seed = seed:nothing_here\npythonpath = .\n")
    missing = external_pytester.runpytest("-p", "no:randomly", "-n", "0")
    missing.assert_outcomes(errors=4)
    missing.stdout.fnmatch_lines(["*pytest-dbarch: dbarch_seed 'seed:nothing_here': seed has no nothing_here*"])
    assert database_names(admin) == before


@pytest.mark.slow
def test_the_seed_runs_once_and_is_part_of_the_cache_key(
    pytester: pytest.Pytester, runtime_dir: Path, private_cache: Path, tmp_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_dbarch.postgres.cache import ClusterCache

    log = tmp_path / "seed.log"
    monkeypatch.setenv("SEED_LOG", str(log))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    lean = ("-p", "no:cacheprovider", "-p", "pytest_dbarch.plugin", "-s")

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess(*lean, *args, timeout=180)

    write_seeded_project(pytester, "admin")
    cold = run()
    cold.assert_outcomes(passed=4)
    assert cold.stdout.str().count("ROWS ['admin']") == 4
    assert seed_runs(log) == 1

    warm = run()
    warm.assert_outcomes(passed=4)
    warm.stdout.fnmatch_lines(["dbarch cache: *: hit *"])
    assert seed_runs(log) == 1, "a warm start ran the seed again"

    write_seeded_project(pytester, "root")  # an edit of the seed's module
    edited = run()
    edited.assert_outcomes(passed=4)
    edited.stdout.fnmatch_lines(["dbarch cache: *: miss *"])
    assert edited.stdout.str().count("ROWS ['root']") == 4
    assert seed_runs(log) == 2

    entries = sorted(key for key, meta, _, _ in ClusterCache(private_cache).entries() if meta)
    write_seeded_project(pytester, "broken", extra="raise RuntimeError('no')")
    failed = run()
    failed.assert_outcomes(errors=4)
    failed.stdout.fnmatch_lines(["*the seed seed:add_rows failed at *: RuntimeError: no"])
    assert sorted(key for key, meta, _, _ in ClusterCache(private_cache).entries() if meta) == entries
    assert list(runtime_dir.glob("pytest-dbarch-*/run-*")) == []

    # Two xdist workers share one server: the template, seed included, is built once.
    pytest.importorskip("xdist")
    write_seeded_project(pytester, "shared")
    pytester.makepyfile(test_workers=WORKERS_TEST)
    monkeypatch.setenv("WORKERS_LOG", str(tmp_path / "workers.log"))
    before = seed_runs(log)
    shared = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "pytest_dbarch.plugin", "-p", "xdist",
                                           "-n", "2", "--dbarch-cache=off", timeout=180)
    shared.assert_outcomes(passed=8)
    assert seed_runs(log) == before + 1
    # ... and each worker has a session database of its own.
    owners: dict[str, set[str]] = {}
    for line in (tmp_path / "workers.log").read_text().splitlines():
        worker, name, rows = line.split(" ", 2)
        owners.setdefault(worker, set()).add(name)
        assert rows == "['shared']"
    assert all(len(names) == 1 for names in owners.values()), owners
    assert len({n for names in owners.values() for n in names}) == len(owners)
