"""Every schema-lint rule fires on a schema written wrong on purpose and is silent on
its correct twin, through the public ``dbarch_schema_lint`` fixture in an inner pytest
session (the cases are data: ``tests/schema_lint_cases/<rule>.sql``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dbarch.schema_lint import RULES

CASES = Path(__file__).parent / "schema_lint_cases"
# Rules whose cases need evidence a SQL file cannot hold: a failed CREATE INDEX
# CONCURRENTLY, real traffic, or models. They are proven in tests/test_schema_lint.py.
ELSEWHERE = {
    "schema.unused-index", "schema.seq-scan-heavy", "schema.bloat",
    "schema.orm-cascade", "schema.model-unique", "schema.model-nullable", "schema.model-type",
    "schema.model-missing", "schema.model-unmapped", "schema.orm-hygiene",
}


def test_every_rule_has_cases() -> None:
    files = {f"schema.{p.stem}" for p in CASES.glob("*.sql")}
    assert files | ELSEWHERE == {rule.id for rule in RULES}
    for path in CASES.glob("*.sql"):
        text = path.read_text()
        assert "-- expect:" in text, f"{path.name} has no case that fires"
        assert any(
            block.strip() and "-- expect:" not in block for block in text.split("-- case:")[1:]
        ), f"{path.name} has no good twin"


def test_rule_cases(external_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASES_DIR", str(CASES))
    external_pytester.makepyfile(test_cases=(CASES / "run_cases.py").read_text())
    result = external_pytester.runpytest("-p", "no:randomly", "--dbarch-report-dir", "off", "-rs")
    cases = sum(path.read_text().count("-- case:") for path in CASES.glob("*.sql"))
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()[-6000:]
    assert outcomes.get("passed", 0) + outcomes.get("skipped", 0) == cases
    # Skips only for extensions a server may lack (pg_trgm, btree_gist).
    assert outcomes.get("skipped", 0) <= 2
