"""What a schema-lint rule reports: one ``Violation`` per object it found wrong.

It lives below both the rules (``rule.py``) and the policy (``options.py``), which
both read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_dbarch.findings import Status


@dataclass(frozen=True)
class Violation:
    """One thing a rule found.

    ``table`` is the qualified table (empty for functions and sequences); ``names`` the
    objects inside it the finding is about (columns, an index, a constraint), which is
    what a waiver such as ``schema.fk-index contacts.account_id`` matches. ``status``
    overrides the rule's default severity for this one finding (a rule may know that
    one case is worse than its usual one).
    """

    table: str
    title: str
    fix: str = ""
    evidence: str = ""
    names: tuple[str, ...] = ()
    status: Status | None = None
