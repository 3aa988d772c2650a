"""The application's models: the intent the database is compared against.

Constraint property tests and schema lint both ask "what do the models say this table
should enforce?". ``dbarch_models`` names them as ``package.module:attribute``: a
``MetaData``, a declarative base (anything with a ``.metadata``), or a SQLModel class.
When it is not set, the schema's own source stands in: ``dbarch_metadata`` when the
template is built from models, else ``dbarch_migrations_metadata``; else there are no
models and only the database's own constraints are checked.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pytest_dbarch.errors import DbarchError

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from pytest_dbarch.config import Settings


class ModelsError(DbarchError):
    """The configured models cannot be loaded."""


def models_target(settings: Settings) -> tuple[str, str] | None:
    """``(module:attribute, setting it came from)`` of the models, or None."""
    for name in ("models", "metadata", "migrations_metadata"):
        value = getattr(settings, name, None)
        if value:
            return value, f"dbarch_{name}"
    return None


def load_metadata(target: str, setting: str = "dbarch_models") -> MetaData:
    """Import ``module:attribute`` and return its SQLAlchemy ``MetaData``."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ModelsError(
            f"{setting} is {target!r}; it must look like 'package.module:attribute'",
            f"for example {setting} = myapp.models:Base.metadata",
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except ImportError as exc:
        raise ModelsError(
            f"{setting} {target!r} cannot be loaded: {type(exc).__name__}: {exc}",
            "make the module importable from the rootdir (pytest's 'pythonpath = .' ini "
            "setting) and check that its own imports succeed",
        ) from None
    except AttributeError as exc:
        raise ModelsError(
            f"{setting} {target!r} cannot be loaded: AttributeError: {exc}",
            f"name an attribute that exists in {module_name}",
        ) from None
    metadata = getattr(obj, "metadata", obj)
    if not hasattr(metadata, "create_all") or not hasattr(metadata, "tables"):
        raise ModelsError(
            f"{setting} {target!r} is a {type(obj).__name__}, not a SQLAlchemy MetaData "
            "or declarative base",
            "point it at a MetaData or a declarative base class",
        )
    return metadata


def load_models(settings: Settings) -> MetaData | None:
    """The models named by the settings (see the module docstring), or None."""
    found = models_target(settings)
    if found is None:
        return None
    return load_metadata(*found)
