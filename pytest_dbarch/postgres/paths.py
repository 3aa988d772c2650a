"""Directories in places other users can write to, made safe before use.

The run directories live under ``<tmp or /dev/shm>/pytest-dbarch-<uid>``: a name
anyone can predict, in a directory anyone can write. Like pytest's own
``pytest-of-<user>`` (``_pytest/tmpdir.py``), a directory we did not create is
refused rather than used: a symbolic link, one owned by another user, or one others
may write to could hold files planted by them (a ``postgres`` binary, a
``postmaster.pid`` naming a process to kill). Our own directories get the narrowest
mode that works: 0700, or 0711 where the server's account only has to pass through.

Standard library only (and ``errors``): the guardian imports this through ``runtime``.
"""

from __future__ import annotations

import os
import pwd
import stat
import tempfile
from pathlib import Path

from pytest_dbarch.errors import DbarchError

BASE_PREFIX = "pytest-dbarch-"
RAMDISK = Path("/dev/shm")
RAMDISK_MIN_FREE = 256 * 1024 * 1024  # a container's 64 MB /dev/shm is too small


class UnsafePath(DbarchError):
    """A directory pytest-dbarch would use is not safely ours."""


def _owner(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def problem(path: Path, st: os.stat_result | None = None) -> str | None:
    """Why ``path`` is not safely ours, or None: a symlink, owned by someone else, or
    writable by group or others. ``st`` is its ``lstat`` when already at hand."""
    st = st or os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symbolic link"
    if st.st_uid != os.geteuid():
        return f"{path} belongs to {_owner(st.st_uid)}, not to {_owner(os.geteuid())}"
    if st.st_mode & 0o022:
        return f"{path} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def private_dir(path: Path, mode: int = 0o700, *, fix: str = "") -> Path:
    """``path`` as a directory of ours with ``mode``: created, or checked and refused.

    An existing directory of ours with a wider or narrower mode (an older version
    used 0755) is set to ``mode``; anything another user could have put there is
    refused with ``UnsafePath``.
    """
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        st = os.lstat(path)
        reason = problem(path, st)
        if reason is None and not stat.S_ISDIR(st.st_mode):
            reason = f"{path} is not a directory"
        if reason:
            raise UnsafePath(
                f"refusing to use {path}: {reason}; another user may have created it to "
                "plant files there",
                fix or f"remove it (rm -rf {path}) if nobody should have it, then run again",
            ) from None
        if stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)
        return path
    os.chmod(path, mode)  # mkdir's mode is filtered by the umask
    return path


def untrusted_entries(root: Path, limit: int = 3) -> list[str]:
    """Up to ``limit`` reasons why something under ``root`` (root included) may have
    been put there by someone else; empty when every entry is ours and not writable
    by others."""
    found: list[str] = []
    reason = problem(root)
    if reason:
        return [reason]
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(directory, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                if st.st_uid != os.geteuid():
                    found.append(f"{path} is a symbolic link of {_owner(st.st_uid)}")
                continue
            reason = problem(path, st)
            if reason:
                found.append(reason)
                if len(found) >= limit:
                    return found
    return found


def base_mode() -> int:
    """Run directories' parent: 0711 when root (the server's account passes through
    to its own data and socket directories), else 0700."""
    return 0o711 if os.geteuid() == 0 else 0o700


def _ramdisk_free() -> int:
    try:
        if not RAMDISK.is_dir() or not os.access(RAMDISK, os.W_OK | os.X_OK):
            return 0
        vfs = os.statvfs(RAMDISK)
    except OSError:
        return 0
    return vfs.f_bavail * vfs.f_frsize


def runtime_root(explicit: str | None = None, needed: int = 0) -> tuple[Path, str]:
    """Where run directories go, and why: the explicit setting; else the RAM disk
    when it has room to spare (``needed`` bytes, at least 256 MB: the data is
    disposable and fsync is off anyway, and file creation, most of ``CREATE
    DATABASE``, is several times faster there); else the system temp directory."""
    if explicit:
        return Path(explicit), "dbarch_runtime_dir setting"
    free = _ramdisk_free()
    if free >= max(RAMDISK_MIN_FREE, needed):
        return RAMDISK, f"RAM disk, {free / 2**30:.1f} GB free"
    root = Path(tempfile.gettempdir())
    if free:
        return root, f"temp dir: {RAMDISK} has only {free / 2**20:.0f} MB free"
    return root, "temp dir"


def base_name() -> str:
    return f"{BASE_PREFIX}{os.geteuid()}"


def candidate_bases(explicit: str | None = None) -> list[Path]:
    """Every place this user's run directories may be (for reaping and ``dbarch
    server stop``)."""
    if explicit:
        return [Path(explicit) / base_name()]
    return [RAMDISK / base_name(), Path(tempfile.gettempdir()) / base_name()]


def cache_root(explicit: str | None = None) -> Path:
    """The per-user cache: the setting, else ``$XDG_CACHE_HOME/pytest-dbarch``
    (``~/.cache/pytest-dbarch``)."""
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    home = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return home / "pytest-dbarch"
