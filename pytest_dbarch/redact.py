"""Passwords out of everything the plugin shows: scrubbed text, and strings whose repr hides them.

``scrub`` is for text the plugin writes (summary, report, JUnit, annotations).
``Redacted`` and ``Password`` are for values it hands out or keeps (URLs, DSNs,
settings): they are the real text for every use (connect with them, pass them to
SQLAlchemy or libpq), but ``repr()`` - what pytest's ``--showlocals``, ``--tb=long -l``
and assertion messages print - shows the password as ``***``. A string derived from
one (``.replace()``, slicing, an f-string) is a plain ``str`` again.

Imports nothing but the standard library, so every layer may use it.
"""

from __future__ import annotations

import re

MASK = "***"

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


class Redacted(str):
    """A URL or DSN that works as itself everywhere but shows ``***`` for its password
    in ``repr()``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(scrub(str.__str__(self)))


class Password(Redacted):
    """A bare password: ``repr()`` is ``'***'``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)


def redacted(value: str | None) -> str | None:
    """``value`` as a ``Redacted`` (``None`` stays ``None``)."""
    if value is None or isinstance(value, Redacted):
        return value
    return Redacted(value)
