"""``retry=``: the application's retry loop, modelled, so code that retries correctly passes.

PostgreSQL asks clients to retry a transaction that failed with a serialization failure
(40001) or a deadlock (40P01): nothing was committed, and running it again usually
succeeds. ``retry=3`` retries those two up to three times; ``Retry(3, on=("40001",))``
chooses the SQLSTATEs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_dbarch.errors import DbarchError

SERIALIZATION_FAILURE = "40001"
DEADLOCK = "40P01"
LOCK_NOT_AVAILABLE = "55P03"


@dataclass(frozen=True)
class Retry:
    """Retry a failed call up to ``times`` more times when its SQLSTATE is in ``on``."""

    times: int
    on: tuple[str, ...] = (SERIALIZATION_FAILURE, DEADLOCK)

    def __post_init__(self) -> None:
        if isinstance(self.times, bool) or not isinstance(self.times, int) or self.times < 0:
            raise DbarchError(f"retry times={self.times!r} is not a whole number >= 0",
                              "give e.g. retry=3 or Retry(3, on=('40001',))")
        codes = (self.on,) if isinstance(self.on, str) else tuple(self.on)
        bad = [c for c in codes if not (isinstance(c, str) and len(c) == 5 and c.isalnum())]
        if bad or not codes:
            raise DbarchError(f"retry on={self.on!r} is not a list of SQLSTATE codes",
                              "give five-character codes such as '40001' (serialization failure) "
                              "or '40P01' (deadlock)")
        object.__setattr__(self, "on", tuple(c.upper() for c in codes))

    def covers(self, sqlstate: str | None) -> bool:
        return sqlstate is not None and sqlstate in self.on


def as_retry(value: Any) -> Retry | None:
    """``None``, a number of retries, or a ``Retry``."""
    if value is None or isinstance(value, Retry):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Retry(value)
    raise DbarchError(f"retry={value!r} is neither a number nor a Retry",
                      "give retry=3 or retry=Retry(3, on=('40001', '40P01'))")
