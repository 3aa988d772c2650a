"""Runs every case file of this directory through the public ``dbarch_schema_lint``
fixture: one test per case, each in its own rolled-back transaction.

A case file ``<rule>.sql`` (the rule is ``schema.<rule>``) holds cases:

    -- case: <name>
    -- options: {"strings": "text"}        fixture options as JSON (optional)
    -- requires: pg_trgm                   extensions the case needs (skipped without them)
    -- query: SELECT ...                   statements the application runs (optional)
    -- expect: <finding title>             one line per finding the rule must report ('*': any text)
    -- status: failed                      the status every expected finding has (optional)
    <the schema, as SQL>

A case without ``expect`` lines is a good twin: the rule must report nothing.
``tests/test_schema_lint_rules.py`` runs this file in an inner pytest session;
``CASES_DIR`` says where the case files are.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

CASES_DIR = Path(os.environ.get("CASES_DIR", Path(__file__).parent))


def _parse(path: Path) -> list[dict]:
    cases: list[dict] = []
    for line in path.read_text().splitlines():
        if line.startswith("-- case:"):
            cases.append({"rule": "schema." + path.stem, "name": line[8:].strip(), "options": {}, "requires": [],
                          "queries": [], "expect": [], "status": None, "sql": []})
            continue
        if not cases:
            continue
        case = cases[-1]
        if line.startswith("-- options:"):
            case["options"] = json.loads(line[11:])
        elif line.startswith("-- requires:"):
            case["requires"] += line[12:].split()
        elif line.startswith("-- query:"):
            case["queries"].append(line[9:].strip())
        elif line.startswith("-- expect:"):
            case["expect"].append(line[10:].strip())
        elif line.startswith("-- status:"):
            case["status"] = line[10:].strip()
        else:
            case["sql"].append(line)
    return cases


def _matches(title: str, pattern: str) -> bool:
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), title) is not None


CASES = [case for path in sorted(CASES_DIR.glob("*.sql")) for case in _parse(path)]


@pytest.mark.parametrize("case", CASES, ids=[f"{c['rule']}: {c['name']}" for c in CASES])
def test_case(case, dbarch_psycopg, dbarch_schema_lint):
    for extension in case["requires"]:
        available = dbarch_psycopg.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = %s", (extension,)).fetchone()
        if not available:
            pytest.skip(f"extension {extension} is not available on this server")
        dbarch_psycopg.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
    dbarch_psycopg.execute("\n".join(case["sql"]))
    for query in case["queries"]:
        dbarch_psycopg.execute(query).fetchall()
    options = dict(case["options"])
    rules = options.pop("rules", [])
    rules = [f"{k} = {v}" for k, v in rules.items()] if isinstance(rules, dict) else list(rules)
    findings = [f for f in dbarch_schema_lint(rules=[case["rule"], *rules], queries="test", **options) if f.rule == case["rule"]]
    titles = sorted(f.title for f in findings)
    shown = "\n  ".join(titles) or "(none)"
    assert len(titles) == len(case["expect"]), f"expected {len(case['expect'])} findings, got:\n  {shown}"
    for pattern in case["expect"]:
        assert any(_matches(t, pattern) for t in titles), f"no finding matches {pattern!r}; got:\n  {shown}"
    if case["status"]:
        assert {f.status.value for f in findings} == {case["status"]}, [(f.title, f.status.value) for f in findings]
    for finding in findings:
        assert finding.fix, f"{finding.title}: no fix"
