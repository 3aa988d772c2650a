"""Run a callback right after a module is first imported (or now, if it already was).

Query capture hooks a database library the moment it is imported, wherever that
happens: a conftest.py, the application's modules, or the body of a test. Hooking at
import time also catches names bound early (``from psycopg2 import connect``) and
connections opened at import (a pool created by a module).

A finder placed first on ``sys.meta_path`` answers only for the watched names; for
every other import it costs one dict lookup. For a watched name it finds the real spec
with the finders behind it and wraps the loader's ``exec_module``: after the module
has run, the loader is put back and the callbacks run.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

Callback = Callable[[ModuleType], None]

_WATCHED: dict[str, list[Callback]] = {}


def when_imported(name: str, callback: Callback) -> None:
    """Call ``callback(module)`` once ``name`` is imported; now if it already is."""
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return
    _WATCHED.setdefault(name, []).append(callback)
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def _notify(module: ModuleType) -> None:
    for callback in _WATCHED.pop(module.__name__, ()):
        try:
            callback(module)
        except Exception as exc:  # a hook that fails must never break the user's import
            warnings.warn(f"pytest-dbarch: could not hook {module.__name__} ({type(exc).__name__}: {exc}); "
                          "its statements are not captured", RuntimeWarning, stacklevel=2)


class _Finder:
    """Finds nothing itself: it only hands watched modules a notifying loader."""

    _busy: set[str] = set()

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in _WATCHED or fullname in self._busy:
            return None
        self._busy.add(fullname)
        try:
            spec = self._real_spec(fullname, path, target)
        finally:
            self._busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _NotifyingLoader(spec.loader)
        return spec

    def _real_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None) -> ModuleSpec | None:
        for finder in sys.meta_path:
            if finder is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec  # type: ignore[no-any-return]
        return None

    def invalidate_caches(self) -> None:
        pass


class _NotifyingLoader:
    """Delegates to the real loader; after ``exec_module``, puts it back and notifies."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self.loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self.loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self.loader
        self.loader.exec_module(module)
        _notify(module)
