"""Remove passwords and secret-looking values from every text an output writes.

Applied to findings before they are rendered anywhere (terminal, ``.temp/`` report,
JUnit, CI annotations): a DSN or URL with a password, ``password=...`` in a libpq
string or a parametrized test id, ``"token": "..."`` in JSON evidence. The patterns
live in ``pytest_dbarch.redact``, shared with the reprs of URLs, DSNs and settings.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pytest_dbarch.findings import Finding
from pytest_dbarch.redact import MASK, scrub

__all__ = ["MASK", "scrub", "scrub_finding"]

_TEXT_FIELDS = ("rule", "title", "evidence", "where", "fix", "nodeid")


def scrub_finding(finding: Finding) -> Finding:
    """The same finding with every text field scrubbed."""
    texts: dict[str, Any] = {name: scrub(getattr(finding, name)) for name in _TEXT_FIELDS}
    return replace(finding, **texts)
