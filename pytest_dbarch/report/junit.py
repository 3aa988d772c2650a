"""JUnit XML: each finding of a test also becomes a readable ``<property>`` of its testcase.

pytest writes a test's ``user_properties`` into ``--junitxml`` output. The findings ride
there already as ``dbarch_finding`` (the full JSON); next to each we add
``dbarch:<rule>`` with a one-line value: ``status: title [at where] [; fix: ...]``.
"""

from __future__ import annotations

import functools

from pytest_dbarch.findings import USER_PROPERTY, Finding
from pytest_dbarch.report.scrub import scrub_finding

PREFIX = "dbarch:"


def compact(finding: Finding) -> str:
    where = f" at {finding.where}" if finding.where else ""
    fix = f"; fix: {finding.fix}" if finding.is_problem and finding.fix else ""
    return f"{finding.status.value}: {finding.title}{where}{fix}"


def rewrite_properties(properties: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """Scrub each finding's JSON and add its readable twin; idempotent (xdist runs it twice)."""
    result: list[tuple[str, object]] = []
    for name, value in properties:
        if name.startswith(PREFIX):
            continue  # re-derived below, so a second pass adds no duplicates
        if name != USER_PROPERTY:
            result.append((name, value))
            continue
        result += _rewritten(str(value))
    return result


@functools.lru_cache(maxsize=4096)
def _rewritten(raw: str) -> tuple[tuple[str, object], ...]:
    """One finding's properties; cached, since each test phase's report carries them all."""
    try:
        finding = scrub_finding(Finding.from_json(raw))
    except (TypeError, ValueError):
        return ((USER_PROPERTY, raw),)
    return ((USER_PROPERTY, finding.to_json()), (PREFIX + finding.rule, compact(finding)))
