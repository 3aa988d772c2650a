"""The plugin's face: options, fixtures, markers, findings summary, xdist, import cost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from pytest_dbarch.findings import Area, Finding, Ledger, Status
from tests.conftest import database_names


def test_help_lists_options_in_their_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "database architecture checks:",
            "*--dbarch-dsn=DBARCH_DSN*",
            "*--dbarch-isolation=*",
            "*--dbarch-pg-bin=*",
            "*--dbarch-port=*",
            "*--dbarch-run-as=*",
            "*--dbarch-alembic-ini=*",
            "*--dbarch-metadata=*",
        ]
    )
    result.stdout.fnmatch_lines(["*dbarch_isolation (string)*", "*dbarch_sql_files (linelist)*", "*dbarch_extensions (linelist)*"])


def test_fixtures_have_docstrings(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures")
    for name in (
        "dbarch_server",
        "dbarch_url",
        "dbarch_engine",
        "dbarch_connection",
        "dbarch_session",
        "dbarch_psycopg",
        "dbarch_async_engine",
        "dbarch_async_session",
        "dbarch_findings",
        "dbarch_schema_source",
        "dbarch_dsn",
    ):
        result.stdout.fnmatch_lines([f"{name}*", "    ?*"])
    assert "no docstring available" not in result.stdout.str().split("fixtures defined from pytest_dbarch")[1]


def test_markers_registered_and_strict_markers_work(pytester: pytest.Pytester) -> None:
    pytester.runpytest("--markers").stdout.fnmatch_lines(["@pytest.mark.dbarch(isolation=*"])
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.dbarch(isolation="clone")
        def test_marked():
            pass
        """
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)


def test_bad_option_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ndbarch_isolation = snapshot\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dbarch_isolation from ini dbarch_isolation is 'snapshot'; choose one of transaction, clone*"])


def test_disabled_with_p_no_dbarch(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_not_loaded(request):
            assert "pytest_dbarch.plugin" not in sys.modules
            with __import__("pytest").raises(Exception):
                request.getfixturevalue("dbarch_server")
        """
    )
    result = pytester.runpytest("-p", "no:dbarch")
    result.assert_outcomes(passed=1)
    assert "dbarch:" not in result.stdout.str()


def test_importing_the_plugin_loads_nothing_heavy() -> None:
    code = (
        "import sys, pytest_dbarch.plugin\n"
        "heavy = [m for m in ('sqlalchemy', 'psycopg', 'alembic', 'sqlglot', 'hypothesis') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_test_without_database_starts_no_server(pytester: pytest.Pytester, runtime_dir: Path) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_plain():
            assert "psycopg" not in sys.modules and "sqlalchemy" not in sys.modules
        """
    )
    # pytest-postgresql's own plugin imports psycopg at load time; ours must not.
    pytester.runpytest("-p", "no:postgresql").assert_outcomes(passed=1)
    assert not list(runtime_dir.glob("pytest-dbarch-*/run-*"))


RECORDS_FINDINGS = """
import pytest
from pytest_dbarch import Area, Finding, Status

@pytest.mark.parametrize("n", range(4))
def test_records(dbarch_findings, n):
    dbarch_findings.add(Finding(
        rule="queries.example", area=Area.QUERIES, status=Status.WARNING if n else Status.PASSED,
        title=f"example finding {n}", evidence="SELECT 1", where=f"app/feed.py:{20 + n}",
        fix="use selectinload(Account.contacts)",
    ))
"""


def test_findings_appear_in_the_terminal_summary(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(RECORDS_FINDINGS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*= dbarch =*",
            "queries:",
            "  WARN [queries.example] example finding 1 at app/feed.py:21",
            "      fix: use selectinload(Account.contacts)",
            "4 findings: 1 passed, 3 warning (use -v for evidence and passed checks)",
        ]
    )
    assert "example finding 0" not in result.stdout.str()


def test_findings_detail_with_verbose(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(RECORDS_FINDINGS)
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(
        [
            "  ok [queries.example] example finding 0 at app/feed.py:20",
            "      test: test_findings_detail_with_verbose.py::test_records[0]",
            "      | SELECT 1",
        ]
    )


@pytest.mark.slow  # xdist workers each load every plugin
def test_findings_reach_the_controller_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(RECORDS_FINDINGS)
    result = pytester.runpytest("-n", "2")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["4 findings: 1 passed, 3 warning*"])


def test_no_findings_no_section(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    assert "= dbarch =" not in pytester.runpytest().stdout.str()


WHO_AM_I = """
import json, os, pytest

@pytest.mark.parametrize("n", range(6))
def test_where(dbarch_psycopg, n, tmp_path_factory):
    row = dbarch_psycopg.execute("SELECT current_database(), current_setting('port')").fetchone()
    dbarch_psycopg.execute("CREATE TABLE mine (n int)")   # would clash if workers shared a database
    out = os.environ["WHO_DIR"]
    with open(os.path.join(out, f"{n}.json"), "w") as fh:
        json.dump({"worker": os.environ.get("PYTEST_XDIST_WORKER"), "db": row[0], "port": row[1]}, fh)
"""


@pytest.mark.slow  # starts servers of its own, xdist workers
@pytest.mark.parametrize("mode", ["local", "external"])
def test_xdist_workers_never_share_a_database(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, runtime_dir: Path, inner_dsn: str, mode: str
) -> None:
    import json

    if mode == "external":
        monkeypatch.setenv("DBARCH_DSN", inner_dsn)
    monkeypatch.setenv("WHO_DIR", str(tmp_path))
    pytester.makepyfile(WHO_AM_I)
    pytester.runpytest("-n", "2").assert_outcomes(passed=6)
    seen = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    by_worker: dict[str, set[tuple[str, str]]] = {}
    for entry in seen:
        by_worker.setdefault(entry["worker"], set()).add((entry["db"], entry["port"]))
    assert len(by_worker) == 2, by_worker
    first, second = by_worker.values()
    assert not first & second
    assert not list(runtime_dir.glob("pytest-dbarch-*/run-*"))


def test_finding_round_trips_through_json() -> None:
    finding = Finding("databases.x", Area.DATABASES, Status.FAILED, "t", "e", "f.py:1", "fix", "n::id")
    assert Finding.from_json(finding.to_json()) == finding
    ledger = Ledger()
    ledger.extend([finding, finding, finding.for_test("other")])
    assert len(ledger) == 1 and ledger.problems() == [finding]
    assert ledger.by_area() == {Area.DATABASES: [finding]}


BAD_MARKERS = """
import pytest

@pytest.mark.dbarch(isolation="nope")
def test_bad_value(dbarch_psycopg):
    pass

@pytest.mark.dbarch(isolaton="clone")
def test_misspelt(dbarch_psycopg):
    pass

@pytest.mark.dbarch("clone")
def test_positional():
    pass

@pytest.mark.dbarch(isolation="clone")
def test_good():
    pass
"""


def test_a_bad_dbarch_marker_is_one_line(pytester: pytest.Pytester, runtime_dir: Path) -> None:
    pytester.makepyfile(test_marks=BAD_MARKERS)
    result = pytester.runpytest("-p", "no:faker", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_bad_value _*",
            "pytest-dbarch: test_marks.py::test_bad_value: bad @pytest.mark.dbarch: isolation='nope'; "
            "choose one of transaction, clone",
            "*_ ERROR at setup of test_misspelt _*",
            "pytest-dbarch: test_marks.py::test_misspelt: bad @pytest.mark.dbarch: unknown argument "
            "'isolaton' (did you mean isolation?); write @pytest.mark.dbarch(isolation='transaction' or 'clone')",
            "*_ ERROR at setup of test_positional _*",
            "pytest-dbarch: test_marks.py::test_positional: bad @pytest.mark.dbarch: positional argument "
            "'clone'; write @pytest.mark.dbarch(isolation=*",
            "*= short test summary info =*",
        ],
        consecutive=True,
    )
    output = result.stdout.str()
    assert "Traceback" not in output and "UsageError" not in output and "markers.py" not in output
    # The lines above are consecutive: each error section is the message alone.
    assert not list(runtime_dir.glob("pytest-dbarch-*/run-*")), "no server for a test that cannot run"


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        ("dbarch_alembic_ini = nothere.ini", "dbarch: dbarch_alembic_ini from ini dbarch_alembic_ini is 'nothere.ini', but */nothere.ini does not exist"),
        ("dbarch_sql_files =\n    schema.sql\n    gone.sql", "dbarch: dbarch_sql_files from ini dbarch_sql_files names 'gone.sql', which does not exist under *"),
        ("dbarch_metadata = crm.models:Base.metadata", "dbarch: dbarch_metadata from ini dbarch_metadata is 'crm.models:Base.metadata': module 'crm' cannot be found on sys.path"),
        ("dbarch_metadata = models", "dbarch: dbarch_metadata from ini dbarch_metadata is 'models': it must look like 'package.module:attribute'"),
        ("dbarch_dsn = mysql://app@db/crm", "dbarch: dbarch_dsn from ini dbarch_dsn: the DSN is a 'mysql' URL, not PostgreSQL"),
    ],
)
def test_a_schema_source_or_dsn_that_cannot_work_stops_the_session_once(
    pytester: pytest.Pytester, runtime_dir: Path, ini: str, message: str
) -> None:
    pytester.makefile(".sql", schema="CREATE TABLE t (id int);")
    (pytester.mkdir("src") / "crm").mkdir()  # src/crm exists, but pythonpath = src is not set
    (pytester.path / "src" / "crm" / "__init__.py").write_text("")
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_db="def test_a(dbarch_psycopg): pass\ndef test_b(dbarch_psycopg): pass\n")
    result = pytester.runpytest("-p", "no:faker", "-p", "no:hypothesispytest")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}*", "  fix: *"])
    assert result.stderr.str().count("dbarch:") == 1 and "Traceback" not in result.stderr.str()
    assert not list(runtime_dir.glob("pytest-dbarch-*/run-*")), "no server started"
    if "dbarch_dsn" in ini:  # --help and --collect-only use no database: they still work
        assert pytester.runpytest("--help", "-p", "no:faker", "-p", "no:hypothesispytest").ret == 0
        listed = pytester.runpytest("--collect-only", "-p", "no:faker", "-p", "no:hypothesispytest")
        assert listed.ret == 0
        listed.stdout.fnmatch_lines(["dbarch: an unusable DSN from ini dbarch_dsn; isolation=*"])


def test_the_header_is_one_line_without_python_reprs(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ndbarch_sql_files =\n    a.sql\n    b.sql\n")
    pytester.makefile(".sql", a="", b="")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("-p", "no:faker", "-p", "no:hypothesispytest")
    [header] = [line for line in result.stdout.lines if line.startswith("dbarch:")]
    assert header.endswith("; isolation=transaction (default); schema: sql a.sql, b.sql (ini dbarch_sql_files)")
    assert "(" not in header.split("schema:")[1].split(" (ini")[0] and "'" not in header

    pytester.makeini("[pytest]\n")
    result = pytester.runpytest("-p", "no:faker", "-p", "no:hypothesispytest", "--dbarch-dsn=postgresql://app:hunter2@db.internal:6543/crm")
    [header] = [line for line in result.stdout.lines if line.startswith("dbarch:")]
    assert header == (
        "dbarch: existing server user=app dbname=crm host=db.internal port=6543 (--dbarch-dsn); "
        "isolation=transaction (default); schema: empty"
    )


def test_dbarch_version_help_and_exit_codes() -> None:
    from pytest_dbarch import __version__

    def dbarch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest_dbarch.cli", *args], capture_output=True, text=True)

    version = dbarch("--version")
    assert (version.returncode, version.stdout) == (0, f"dbarch (pytest-dbarch) {__version__}\n")
    helped = dbarch("--help")
    assert helped.returncode == 0
    assert "exit codes:\n  0    every check passed\n  1    a check failed" in helped.stdout
    assert "  2    bad usage, or a server that could not be used" in helped.stdout and "  130  interrupted" in helped.stdout
    bare = dbarch()
    assert bare.returncode == 2 and "dbarch: error: a command is required (see dbarch --help)" in bare.stderr


SIDE_BY_SIDE_CONFTEST = """
import os
from pytest_postgresql import factories
from pytest_dbarch.pytest_postgresql import dsn_from

postgresql_noproc = factories.postgresql_noproc(
    host=os.environ["PG_HOST"], port=os.environ["PG_PORT"], user=os.environ["PG_USER"], dbname="side_by_side"
)
postgresql = factories.postgresql("postgresql_noproc")

dbarch_dsn = dsn_from("postgresql_noproc")
"""

SIDE_BY_SIDE_TESTS = """
import os

def test_pytest_postgresqls_own_fixture(postgresql):
    with postgresql.cursor() as cur:
        cur.execute("CREATE TABLE theirs (id int)")
        cur.execute("SELECT current_database(), current_setting('port')")
        assert cur.fetchone() == ("side_by_side", os.environ["PG_PORT"])

def test_dbarch_on_the_same_server(dbarch_server, dbarch_psycopg):
    assert dbarch_server.mode == "external" and dbarch_server.source.startswith("fixture dbarch_dsn")
    name, port = dbarch_psycopg.execute("SELECT current_database(), current_setting('port')").fetchone()
    assert name.startswith("dbarch_") and port == os.environ["PG_PORT"]

def test_both_in_one_test(postgresql, dbarch_session):
    from sqlalchemy import text
    assert dbarch_session.execute(text("SELECT 1")).scalar() == 1
    assert postgresql.execute("SELECT 2").fetchone() == (2,)
"""


def test_a_pytest_postgresql_server_is_handed_over_in_one_line(
    pytester: pytest.Pytester, inner_dsn: str, admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = conninfo_to_dict(inner_dsn)
    monkeypatch.delenv("DBARCH_DSN", raising=False)  # the server comes from the fixture alone
    monkeypatch.setenv("PG_HOST", str(params["host"]))
    monkeypatch.setenv("PG_PORT", str(params["port"]))
    monkeypatch.setenv("PG_USER", str(params["user"]))
    pytester.makeconftest(SIDE_BY_SIDE_CONFTEST)
    pytester.makepyfile(test_side_by_side=SIDE_BY_SIDE_TESTS)
    before = database_names(admin)

    result = pytester.runpytest("-p", "no:faker", "-p", "no:hypothesispytest")

    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["dbarch: the server of the dbarch_dsn fixture in conftest.py; isolation=transaction*"])
    assert database_names(admin) == before, "both plugins dropped what they created"
