"""``package.module:attribute`` names in settings (models, the seed, a Session class)."""

from __future__ import annotations

import importlib
from typing import Any


def split_target(target: str) -> tuple[str, str] | None:
    """``(module, attribute)``, or None when ``target`` is not ``module:attribute``."""
    module_name, _, attr = target.partition(":")
    return (module_name, attr) if module_name and attr else None


def resolve(module_name: str, attr: str) -> Any:
    """Import ``module_name`` and follow the dotted ``attr``; ImportError and
    AttributeError are the caller's to explain."""
    found: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        found = getattr(found, part)
    return found
