"""One captured statement, and how its parameters are shown to humans.

The lowest module of ``queries/``: the recorder, the query log and the rules all use
these types, so they live here and import nothing of their own package but
``callsite`` and ``fingerprint``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pytest_dbarch.origin import APP, PLUGIN
from pytest_dbarch.queries import callsite
from pytest_dbarch.queries.callsite import Stack
from pytest_dbarch.queries.fingerprint import TX, Shape, kind_of, shape_of

_SECRET = re.compile(
    r"pass(?:word|wd|phrase)?|pwd|secret|token|credential|auth|salt|"
    r"(?:api|private|access|secret|signing|encryption)_?key|^key(?:_\d+)?$",
    re.I,
)
_MAX_PARAMS = 10
_MAX_VALUE_CHARS = 60


@dataclass(frozen=True)
class Relationship:
    """The ORM relationship a statement loads (from Session ``do_orm_execute``)."""

    name: str  # "Account.contacts"
    direction: str  # "ONETOMANY", "MANYTOONE", "MANYTOMANY"
    lazy: bool  # a lazy load on attribute access (not an eager loader's batch)
    parent: Any = None  # identity key of the object being loaded from (lazy loads)


@dataclass(eq=False, slots=True)
class Statement:
    """One statement as captured. ``stack`` holds the user frames, innermost first."""

    sql: str
    params: Any
    origin: str
    duration: float
    rows: int
    many: int  # rows of an executemany; 0 for a plain execute
    stack: Stack
    relationship: Relationship | None = None
    error: bool = False
    #: Which client library sent it: psycopg, psycopg2, asyncpg, or sqlalchemy (a
    #: statement seen at the SQLAlchemy engine, for a driver not hooked itself).
    driver: str = ""
    #: Run in a thread the test handed work to (a test client's app thread): ``stack``
    #: ends with the test thread's frames.
    handed: bool = False
    #: The driver connection it went over (``id()``; 0 when not known) and the thread:
    #: what tells two sessions' or two threads' identical statements apart.
    connection: int = 0
    thread: int = 0
    #: The task it ran in (a request, a job the test started; 0 when none is known), and
    #: whether it had no user frame of its own there (see ``handoff.Frames``).
    unit: int = 0
    bare: bool = False

    @property
    def kind(self) -> str:
        """select / insert / update / delete / tx / catalog / other (cached per text)."""
        return kind_of(self.sql)

    @property
    def counted(self) -> bool:
        return self.origin == APP and self.kind != TX

    @property
    def from_test_code(self) -> bool:
        """Sent by test code: the innermost user frame is a test module, a conftest.py or
        a file of the test tree (``tests/utils/...``), not the application it calls."""
        if not self.stack or self.bare:
            return False
        return callsite.kind_of(self.stack[0][0].co_filename) == callsite.TEST

    @property
    def application(self) -> bool:
        """Counted, and sent by the application: what N+1 rules, query lint and the
        ``max_queries`` marker judge (a test's own set-up and assertions are not)."""
        return self.counted and not self.from_test_code

    @property
    def round_trip(self) -> bool:
        return self.origin != PLUGIN

    @property
    def shape(self) -> Shape:
        return shape_of(self.sql)

    @property
    def where(self) -> str:
        """``file:line`` of the innermost user frame, or '' when none was seen."""
        return str(callsite.sites(self.stack[:1])[0]) if self.stack else ""

    def param_key(self) -> str:
        """The parameter values as one comparable string (capped)."""
        return repr(self.params)[:500]

    def shown_params(self) -> str:
        if isinstance(self.params, (list, tuple)) and self.params and _SECRET.search(self.sql):
            # Positional values have no names to judge by: the statement's text decides.
            return f"*** ({len(self.params)} values hidden: the statement mentions a secret)"
        return show_params(self.params)


def _secret(name: object) -> bool:
    return _SECRET.search(str(name)) is not None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def show_params(params: Any) -> str:
    """Parameters for humans: at most 10 values, each cut short, secrets redacted."""
    if params is None:
        return ""
    if isinstance(params, dict):
        items = [f"{k}={'***' if _secret(k) else _short(v)}" for k, v in list(params.items())[:_MAX_PARAMS]]
        more = len(params) - _MAX_PARAMS
    elif isinstance(params, (list, tuple)):
        items = [_short(v) for v in params[:_MAX_PARAMS]]
        more = len(params) - _MAX_PARAMS
    else:
        return _short(params)
    if more > 0:
        items.append(f"... {more} more")
    return ", ".join(items)
