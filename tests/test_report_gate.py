"""The CI gate: chosen severities fail the session, independently of test outcomes."""

from __future__ import annotations

import pytest

from pytest_dbarch.findings import Status
from pytest_dbarch.report.gate import GateSyntaxError, parse_gate
from tests.report_sessions import lean_inner_sessions  # noqa: F401 (autouse fixture)

ONE_FAILED_FINDING = """
import pytest
from pytest_dbarch import Area, Finding, Status

def test_feed(dbarch_findings):
    dbarch_findings.add(Finding(
        rule="queries.n-plus-one", area=Area.QUERIES, status=Status.FAILED,
        title="SELECT contacts ran 50x", where="crm/services.py:42",
    ))

def test_schema(dbarch_findings):
    dbarch_findings.add(Finding(rule="schema.fk-index", area=Area.SCHEMA, status=Status.WARNING, title="no index"))
"""


@pytest.mark.slow  # several inner sessions
def test_gate_fails_a_green_session_only_when_asked(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_checks=ONE_FAILED_FINDING)

    plain = pytester.runpytest("--dbarch-report-dir=off")
    plain.assert_outcomes(passed=2)
    assert plain.ret == pytest.ExitCode.OK
    assert "dbarch gate" not in plain.stdout.str()

    gated = pytester.runpytest("--dbarch-report-dir=off", "--dbarch-gate=failed,error")
    gated.assert_outcomes(passed=2)
    assert gated.ret == pytest.ExitCode.TESTS_FAILED
    gated.stdout.fnmatch_lines(
        ["dbarch gate (failed/error) failed the session: 1 findings: queries.n-plus-one (test_checks.py::test_feed)"]
    )

    pytester.makeini("[pytest]\ndbarch_gate = error\n")  # only errors: none here
    assert pytester.runpytest("--dbarch-report-dir=off").ret == pytest.ExitCode.OK

    monkeypatch.setenv("DBARCH_GATE", "warning")  # env beats ini
    from_env = pytester.runpytest("--dbarch-report-dir=off")
    assert from_env.ret == pytest.ExitCode.TESTS_FAILED
    from_env.stdout.fnmatch_lines(["dbarch gate (warning) failed the session: 1 findings: schema.fk-index (*)"])


def test_gate_keeps_the_exit_code_of_failing_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=ONE_FAILED_FINDING + "\ndef test_broken():\n    assert False\n")
    result = pytester.runpytest("--dbarch-report-dir=off", "--dbarch-gate=failed")
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_bad_gate_is_one_clear_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--dbarch-gate=failed,fatal")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*dbarch: dbarch_gate from --dbarch-gate is 'failed,fatal': 'fatal' is not a severity; use a comma-separated list of failed, error, warning (or off)*"]
    )
    assert "Traceback" not in result.stderr.str()
    alone = pytester.runpytest("--dbarch-gate=bogus")
    assert alone.ret == pytest.ExitCode.USAGE_ERROR
    alone.stderr.fnmatch_lines(["*dbarch: dbarch_gate from --dbarch-gate is 'bogus', not a severity; use a comma-separated*"])


def test_parse_gate() -> None:
    assert parse_gate(None) == frozenset() == parse_gate("off")
    assert parse_gate(" Failed, error ") == {Status.FAILED, Status.ERROR}
    with pytest.raises(GateSyntaxError, match=r"^is 'passed', not a severity; use"):
        parse_gate("passed")
    with pytest.raises(GateSyntaxError, match=r"^is 'fatal,bad,error': 'fatal', 'bad' are not severities; use"):
        parse_gate("fatal,bad,error")
