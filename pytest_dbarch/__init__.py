"""pytest-dbarch: disposable PostgreSQL and database architecture checks for pytest."""

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Area, Finding, Ledger, Status

__version__ = "0.1.0"
__all__ = ["Area", "DbarchError", "Finding", "Ledger", "Status", "__version__"]
