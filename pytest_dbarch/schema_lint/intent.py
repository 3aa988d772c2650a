"""The models side of the lint: the ``MetaData`` (tables, columns, constraints) and,
when a declarative base can be found, its mappers (relationships and their cascades).

``dbarch_models`` (or ``--models``) names either the base or its ``.metadata``; the
mappers are found from the base (or SQLModel's registry), from the object the path names,
or from the mapped classes of its module whose tables are in this ``MetaData``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_dbarch.models import ModelsError, load_metadata

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.orm import Mapper


@dataclass(frozen=True)
class Models:
    metadata: MetaData
    mappers: tuple[Mapper[Any], ...] = ()
    target: str = ""

    def default_schema(self, search_path: tuple[str, ...]) -> str:
        return search_path[0] if search_path else "public"

    def qualified(self, table: Any, search_path: tuple[str, ...]) -> str:
        """``schema.name`` of a model table (its own schema, else the first on the path)."""
        return f"{table.schema or self.default_schema(search_path)}.{table.name}"


def _resolve(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _mappers(target: str, metadata: MetaData) -> tuple[Mapper[Any], ...]:
    candidates: list[Any] = []
    try:
        obj = _resolve(target)
        candidates.append(obj)
        module_name, _, attr = target.partition(":")
        if attr.endswith(".metadata"):
            candidates.append(_resolve(f"{module_name}:{attr.rsplit('.', 1)[0]}"))
        candidates += list(vars(importlib.import_module(module_name)).values())
    except (ImportError, AttributeError):
        return ()
    for candidate in candidates:
        registry = getattr(candidate, "registry", None) or getattr(candidate, "_sa_registry", None)  # SQLModel
        if registry is not None and getattr(candidate, "metadata", None) is metadata:
            return tuple(registry.mappers)
    return _mapped_classes(candidates, metadata)


def _mapped_classes(candidates: list[Any], metadata: MetaData) -> tuple[Mapper[Any], ...]:
    """The mappers of the classes among ``candidates`` whose table is in ``metadata``."""
    from sqlalchemy import inspect
    from sqlalchemy.orm import Mapper

    found: dict[int, Mapper[Any]] = {}
    for candidate in candidates:
        if isinstance(candidate, type):
            mapper: Any = inspect(candidate, raiseerr=False)
            if isinstance(mapper, Mapper) and getattr(mapper.local_table, "metadata", None) is metadata:
                found[id(mapper)] = mapper
    return tuple(found.values())


def load(target: str | None, setting: str = "dbarch_models", metadata: MetaData | None = None) -> Models | None:
    """The models named by ``target`` (``module:attribute``), or None when there is none."""
    if metadata is not None:
        return Models(metadata, (), target or "")
    if not target:
        return None
    try:
        metadata = load_metadata(target, setting)
    except ModelsError:
        raise
    except Exception as exc:  # the application's module itself fails while importing
        raise ModelsError(
            f"{setting} {target!r} cannot be loaded: importing it raised {type(exc).__name__}: {exc}",
            "fix the models module (run 'python -c \"import <module>\"' to see the whole error)",
        ) from None
    return Models(metadata, _mappers(target, metadata), target)


def from_value(value: Any, setting: str) -> Models | None:
    """A fixture's ``models=`` value: a ``module:attribute`` string, a MetaData, a base."""
    if value is None or value is False:
        return None
    if isinstance(value, str):
        return load(value, setting)
    metadata = getattr(value, "metadata", value)
    if not hasattr(metadata, "tables"):
        raise ModelsError(
            f"{setting} is a {type(value).__name__}, not models",
            "pass 'package.module:Base', a MetaData or a declarative base class",
        )
    registry = getattr(value, "registry", None)
    return Models(metadata, tuple(registry.mappers) if registry is not None else ())
