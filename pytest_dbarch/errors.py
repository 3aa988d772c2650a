"""Errors that name what was checked and how to fix it.

Every error the plugin raises on bad input is a ``DbarchError``; fixtures turn it into
a one-paragraph test error instead of a traceback.
"""

from __future__ import annotations


class DbarchError(Exception):
    """A problem the user can fix; the message says what and how."""

    def __init__(self, cause: str, fix: str = "") -> None:
        self.cause = cause
        self.fix = fix
        super().__init__(f"{cause}\n  fix: {fix}" if fix else cause)


class BinariesNotFound(DbarchError):
    """No PostgreSQL server binaries anywhere we looked."""


class ServerStartError(DbarchError):
    """The disposable server could not be initialised or started."""


class ExternalServerError(DbarchError):
    """The server given by DSN cannot be used."""


class SchemaError(DbarchError):
    """The configured schema source failed to build the template."""


class IsolationBroken(DbarchError):
    """A test ended the transaction that isolates it."""
