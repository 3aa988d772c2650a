"""Which ORM Session class ``dbarch_session`` is made of.

SQLModel applications call ``session.exec(select(...))``, which a plain SQLAlchemy
Session lacks; ``sqlmodel.Session`` is a subclass, so it works everywhere a Session
does. ``dbarch_session_class``: ``auto`` (SQLModel's when the application has imported
``sqlmodel``, else SQLAlchemy's), ``sqlalchemy``, ``sqlmodel``, or ``module:Class`` for
a Session subclass of your own.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from pytest_dbarch.errors import DbarchError

NAMED = {"sqlalchemy": "sqlalchemy.orm:Session", "sqlmodel": "sqlmodel:Session"}


def session_class(setting: str) -> type[Any]:
    """The Session subclass ``setting`` names; DbarchError when it names none."""
    from sqlalchemy.orm import Session

    value = (setting or "auto").strip()
    if value == "auto":
        value = "sqlmodel" if "sqlmodel" in sys.modules else "sqlalchemy"
    target = NAMED.get(value, value)
    module_name, _, attr = target.partition(":")
    fix = (
        "set dbarch_session_class to auto, sqlalchemy, sqlmodel or module:Class naming a "
        "subclass of sqlalchemy.orm.Session"
    )
    if not module_name or not attr:
        raise DbarchError(f"dbarch_session_class {setting!r} is not module:Class", fix)
    try:
        found: Any = getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise DbarchError(f"dbarch_session_class {setting!r}: {module_name} cannot be imported ({exc})", fix) from None
    except AttributeError:
        raise DbarchError(f"dbarch_session_class {setting!r}: {module_name} has no {attr}", fix) from None
    if not (isinstance(found, type) and issubclass(found, Session)):
        raise DbarchError(f"dbarch_session_class {setting!r} is not a subclass of sqlalchemy.orm.Session", fix)
    return found
