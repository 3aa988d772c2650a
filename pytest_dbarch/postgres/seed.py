"""Seed rows put into the template once, after its schema is built.

``dbarch_seed = package.module:function`` names a function called with a SQLAlchemy
``Connection`` to the template, inside a transaction committed when it returns (an
ORM ``Session(bind=connection)`` works inside it; its ``commit()`` does not end the
outer transaction). It runs before the template is marked complete and cached, so
every clone and every transaction-isolated test starts with its rows, and xdist
workers sharing a server run it once (it is part of the build under the advisory
lock). Its name and its module's source are part of the template's cache key: editing
the seed builds the template again.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from typing import Any

from pytest_dbarch.errors import SchemaError
from pytest_dbarch.targets import resolve, split_target

FIX = "set dbarch_seed to package.module:function, a function taking a SQLAlchemy Connection"


def _split(target: str) -> tuple[str, str]:
    parts = split_target(target)
    if parts is None:
        raise SchemaError(f"dbarch_seed {target!r} is not package.module:function", FIX)
    return parts


def seed_identity(target: str) -> bytes | None:
    """The seed's name and its module's source, for the cache key; None when the
    module's source cannot be found (the template is then not cached)."""
    try:
        module_name, _ = _split(target)
        spec = importlib.util.find_spec(module_name)
    except (SchemaError, ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.has_location:
        return None
    try:
        with open(spec.origin, "rb") as source:
            text = source.read()
    except OSError:
        return None
    return target.encode() + b"\0" + hashlib.sha256(text).hexdigest().encode()


def load_seed(target: str) -> Callable[[Any], Any]:
    """The function ``target`` names; SchemaError naming the cause when it is none."""
    module_name, attr = _split(target)
    try:
        found = resolve(module_name, attr)
    except ImportError as exc:
        raise SchemaError(
            f"dbarch_seed {target!r} cannot be imported: {type(exc).__name__}: {exc}",
            "make the module importable from the rootdir (pytest's 'pythonpath = .') and "
            "check that its own imports succeed",
        ) from None
    except AttributeError:
        raise SchemaError(f"dbarch_seed {target!r}: {module_name} has no {attr}", FIX) from None
    if not callable(found):
        raise SchemaError(f"dbarch_seed {target!r} is a {type(found).__name__}, not a function", FIX)
    return found  # type: ignore[no-any-return]


def run_seed(target: str, url: str) -> None:
    """Call the seed with a Connection to the template at ``url``; commit when it
    returns, roll back and raise one SchemaError when it raises."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    seed = load_seed(target)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            seed(connection)
    except Exception as exc:  # the seed is the user's code: it may raise anything
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        where = _where(exc)
        raise SchemaError(
            f"the seed {target} failed{where}: {type(exc).__name__}: {first}",
            "fix the seed function (it runs once, on the freshly built template); nothing "
            "was cached",
        ) from None
    finally:
        engine.dispose()


def _where(exc: BaseException) -> str:
    """`` at file:line`` of the innermost frame of the seed's own code."""
    import traceback

    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__ and "site-packages" not in f.filename
    ]
    if not frames:
        return ""
    last = frames[-1]
    return f" at {last.filename}:{last.lineno}"
