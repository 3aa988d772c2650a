"""pytest-dbarch: disposable PostgreSQL and database architecture checks for pytest."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Area", "DbarchError", "Finding", "Ledger", "Status", "__version__"]


def __getattr__(name: str) -> object:
    """The public names, imported on first use: the server's guardian process imports
    a submodule of this package and should not pay for the findings model (nor for
    ``typing``: this module imports nothing)."""
    if name == "DbarchError":
        from pytest_dbarch.errors import DbarchError

        return DbarchError
    if name in ("Area", "Finding", "Ledger", "Status"):
        from pytest_dbarch import findings

        return getattr(findings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
