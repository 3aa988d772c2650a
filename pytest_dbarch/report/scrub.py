"""Remove passwords and secret-looking values from every text an output writes.

Applied to findings before they are rendered anywhere (terminal, ``.temp/`` report,
JUnit, CI annotations): a DSN or URL with a password, ``password=...`` in a libpq
string or a parametrized test id, ``"token": "..."`` in JSON evidence.
"""

from __future__ import annotations

import re
from dataclasses import replace

from pytest_dbarch.findings import Finding

MASK = "***"
_TEXT_FIELDS = ("rule", "title", "evidence", "where", "fix", "nodeid")

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):[^@\s/]*@")
_SECRET_KEY = (
    r"\b[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|credentials?)[\w-]*"
)
# ``key = 'value'`` / ``"key": "value"``: a quoted value is a literal, so it goes.
_QUOTED = re.compile(
    rf"""(?i)(?P<key>{_SECRET_KEY})(?P<sep>["']?\s*[=:]\s*)(?P<q>['"])(?:\\.|(?!(?P=q)).)*(?P=q)"""
)
# ``key=value`` / ``key: value``; ``key = $1`` (a SQL placeholder after spaces) stays.
_BARE = re.compile(rf"""(?i)(?P<key>{_SECRET_KEY})(?P<sep>=|:\s*)[^\s,;&'"}}\])]+""")


def scrub(text: str) -> str:
    """``text`` with every password and secret-looking value replaced by ``***``."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _QUOTED.sub(lambda m: f"{m['key']}{m['sep']}{m['q']}{MASK}{m['q']}", text)
    return _BARE.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", text)


def scrub_finding(finding: Finding) -> Finding:
    """The same finding with every text field scrubbed."""
    return replace(finding, **{name: scrub(getattr(finding, name)) for name in _TEXT_FIELDS})
