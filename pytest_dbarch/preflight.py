"""Settings checked when pytest starts, before any server: reported once, as a usage error.

A schema source that cannot load (a missing alembic.ini or SQL file, a metadata path
that is not ``module:attribute`` or names a module Python cannot find) and a DSN that
cannot be parsed are found here, so the session stops with one message instead of
starting a server and failing every database test with the same error.

Nothing is imported to check a module: ``importlib.util.find_spec`` of its top-level
package only looks on ``sys.path`` (after pytest's ``pythonpath`` and the initial
conftest files). Broken code inside an importable module is still reported by the
template build, naming the error.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pytest_dbarch.config import Settings
from pytest_dbarch.errors import DbarchError


def problems(settings: Settings) -> list[str]:
    """One message per setting that cannot work, each naming the cause and the fix."""
    found = []
    root = Path(settings.rootdir)

    def where(name: str) -> str:
        return f"dbarch_{name} from {settings.sources.get(name, 'default')}"

    if settings.alembic_ini and not (root / settings.alembic_ini).is_file():
        found.append(
            f"{where('alembic_ini')} is {settings.alembic_ini!r}, but {root / settings.alembic_ini} does not exist"
            "\n  fix: give the path of alembic.ini relative to the pytest rootdir"
        )
    missing = [name for name in settings.sql_files if not (root / name).is_file()]
    if missing:
        found.append(
            f"{where('sql_files')} names {', '.join(repr(m) for m in missing)}, which "
            f"{'does' if len(missing) == 1 else 'do'} not exist under {root}"
            "\n  fix: list the SQL files relative to the pytest rootdir, one per line"
        )
    if settings.metadata:
        problem = _module_problem(settings.metadata)
        if problem:
            found.append(f"{where('metadata')} is {settings.metadata!r}: {problem}")
    if settings.dsn:
        from pytest_dbarch.postgres.external import parse_dsn

        try:
            parse_dsn(settings.dsn)
        except DbarchError as exc:
            found.append(f"{where('dsn')}: {exc}")
    return found


def _module_problem(target: str) -> str:
    module, _, attribute = target.partition(":")
    if not module or not attribute:
        return (
            "it must look like 'package.module:attribute'"
            "\n  fix: for example dbarch_metadata = myapp.models:Base.metadata"
        )
    top = module.split(".")[0]
    try:
        found = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        found = True  # an odd finder: leave the verdict to the real import
    if found:
        return ""
    return (
        f"module {top!r} cannot be found on sys.path"
        "\n  fix: add 'pythonpath = .' (the directory that holds it) to the [pytest] section, "
        "or install your package (pip install -e .)"
    )
