"""Which ORM Session class ``dbarch_session`` is made of.

SQLModel applications call ``session.exec(select(...))``, which a plain SQLAlchemy
Session lacks; ``sqlmodel.Session`` is a subclass, so it works everywhere a Session
does. ``dbarch_session_class``: ``auto`` (SQLModel's when the project's models, the
``dbarch_models`` / ``dbarch_metadata`` / ``dbarch_migrations_metadata`` target, are
SQLModel's: ``SQLModel.metadata`` or a SQLModel class; else SQLAlchemy's),
``sqlalchemy``, ``sqlmodel``, or ``module:Class`` for a Session subclass of your own.
Whether anything in the process imported sqlmodel does not matter: one test module's
``importorskip("sqlmodel")`` must not change another test's session.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.targets import resolve, split_target

NAMED = {"sqlalchemy": "sqlalchemy.orm:Session", "sqlmodel": "sqlmodel:Session"}


def session_class(setting: str, models: str | None = None) -> type[Any]:
    """The Session subclass ``setting`` names (``auto``: decided by ``models``, the
    ``module:attribute`` of the project's models); DbarchError when it names none."""
    from sqlalchemy.orm import Session

    value = (setting or "auto").strip()
    if value == "auto":
        value = "sqlmodel" if models and uses_sqlmodel(models) else "sqlalchemy"
    target = NAMED.get(value, value)
    fix = (
        "set dbarch_session_class to auto, sqlalchemy, sqlmodel or module:Class naming a "
        "subclass of sqlalchemy.orm.Session"
    )
    parts = split_target(target)
    if parts is None:
        raise DbarchError(f"dbarch_session_class {setting!r} is not module:Class", fix)
    module_name, attr = parts
    try:
        found: Any = resolve(module_name, attr)
    except ImportError as exc:
        raise DbarchError(f"dbarch_session_class {setting!r}: {module_name} cannot be imported ({exc})", fix) from None
    except AttributeError:
        raise DbarchError(f"dbarch_session_class {setting!r}: {module_name} has no {attr}", fix) from None
    if not (isinstance(found, type) and issubclass(found, Session)):
        raise DbarchError(f"dbarch_session_class {setting!r} is not a subclass of sqlalchemy.orm.Session", fix)
    return found


@functools.lru_cache(maxsize=8)
def uses_sqlmodel(models: str) -> bool:
    """Whether ``models`` (``module:attribute``) is ``SQLModel.metadata`` or a SQLModel
    class; False when it cannot be loaded (the settings that name it report that)."""
    from pytest_dbarch.models import ModelsError, load_metadata

    try:
        metadata = load_metadata(models)
    except ModelsError:
        return False
    sqlmodel = sys.modules.get("sqlmodel")  # loading SQLModel models imported it
    if sqlmodel is None:
        return False
    target = resolve(*models.split(":", 1))  # load_metadata resolved it already
    is_class = isinstance(target, type) and issubclass(target, sqlmodel.SQLModel)
    return bool(is_class or metadata is sqlmodel.SQLModel.metadata)
