"""CI gate: findings of the chosen severities fail the session, whatever the tests did.

A tripped gate turns an otherwise successful exit into ``ExitCode.TESTS_FAILED`` (1);
a session that already failed keeps its own exit code.
"""

from __future__ import annotations

from collections.abc import Iterable

from pytest_dbarch.findings import Finding, Status

SEVERITIES = (Status.FAILED.value, Status.ERROR.value, Status.WARNING.value)
SHOWN = 5


class GateSyntaxError(ValueError):
    pass


def parse_gate(value: str | None) -> frozenset[Status]:
    """``"failed,error"`` → those statuses; empty or ``off`` → no gate. The error's
    message continues "dbarch_gate from <source> ..."."""
    text = (value or "").strip().lower()
    if text in ("", "off", "none"):
        return frozenset()
    words = [w.strip() for w in text.replace(" ", ",").split(",") if w.strip()]
    unknown = [w for w in words if w not in SEVERITIES]
    if unknown:
        if words == unknown and len(words) == 1:
            what = f"is {value!r}, not a severity"
        else:
            names = ", ".join(repr(w) for w in unknown)
            what = f"is {value!r}: {names} {'is not a severity' if len(unknown) == 1 else 'are not severities'}"
        raise GateSyntaxError(
            f"{what}; use a comma-separated list of {', '.join(SEVERITIES)} (or off)"
        )
    return frozenset(Status(w) for w in words)


def tripped(findings: Iterable[Finding], severities: frozenset[Status]) -> list[Finding]:
    return [f for f in findings if f.status in severities]


def summary_line(trips: list[Finding], severities: frozenset[Status]) -> str:
    """One line: how many findings tripped the gate, and which."""
    names = "/".join(s.value for s in Status if s in severities)
    shown = ", ".join(
        f"{f.rule}" + (f" ({f.nodeid})" if f.nodeid else "") for f in trips[:SHOWN]
    )
    more = f" and {len(trips) - SHOWN} more" if len(trips) > SHOWN else ""
    return f"dbarch gate ({names}) failed the session: {len(trips)} findings: {shown}{more}"
