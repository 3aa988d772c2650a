"""The cluster cache: stopped clusters, initialised and with the schema's template
built, kept between sessions and keyed by everything that shaped them.

A session whose key is in the cache copies the cluster (tens of MB, some hundred
milliseconds at most) instead of running ``initdb`` and the migrations (seconds).
Any change to what went into the key (migration files, models' DDL, SQL files,
extensions, server options, the PostgreSQL build, this plugin's version) is another
key, so a stale template is never used; pytest-django's ``--reuse-db`` has no such
key, and its users learn to distrust it.

Trust rules:

- An entry is complete only when its marker file, ``entry.json``, exists: it is
  written last, after every data file is flushed to disk, and it records how many
  files and bytes the cluster has and a checksum of them. A crash during a build
  leaves a staging directory without marker, which is never used and removed later.
- Every copy out of the cache re-computes that checksum while it copies; an entry
  that does not match (disk trouble, a stray edit) is deleted and rebuilt, never
  used.
- Builders of one key take an exclusive ``flock`` on ``<key>.lock``; readers take it
  shared while they copy, so an entry is never deleted (``clear``, pruning, a
  corrupt entry) while someone copies it. Concurrent sessions wanting the same key
  wait for the one building it and then copy its result.
- The directory is private (0700, ours, not a symlink; see ``paths``).

Standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.postgres.paths import private_dir

FORMAT = 1
MARKER = "entry.json"
DATA = "data"
KEEP_ENTRIES = 8  # the newest this many entries (by last use) survive pruning
_COPY_THREADS = 4


class CorruptEntry(DbarchError):
    """A cache entry whose files do not match its marker."""


@dataclass(frozen=True)
class Entry:
    """A complete cache entry."""

    key: str
    path: Path
    meta: dict[str, Any]

    @property
    def data(self) -> Path:
        return self.path / DATA

    @property
    def template(self) -> str | None:
        return self.meta.get("template")

    @property
    def bytes(self) -> int:
        return int(self.meta.get("bytes", 0))


@dataclass(frozen=True)
class Manifest:
    files: int
    bytes: int
    checksum: str


class _Summer:
    """Checksum of a tree: CRC32 of each file, combined in path order."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, int, int]] = []

    def add(self, rel: str, size: int, crc: int) -> None:
        self.parts.append((rel, size, crc))

    def manifest(self) -> Manifest:
        digest = hashlib.sha256()
        for rel, size, crc in sorted(self.parts):
            digest.update(f"{rel}\0{size}\0{crc:08x}\n".encode())
        return Manifest(len(self.parts), sum(p[1] for p in self.parts), digest.hexdigest())


def copy_tree(
    src: Path,
    dst: Path,
    *,
    owner: tuple[int, int] | None = None,
    fsync: bool = False,
) -> Manifest:
    """Copy the regular files and directories of ``src`` into the new directory
    ``dst`` (modes 0700/0600, owned by ``owner`` when given), checksumming every byte
    on the way. Anything but files and directories (a symlink) is refused."""
    files: list[tuple[str, str, str]] = []
    os.mkdir(dst, 0o700)
    for directory, dirnames, filenames in os.walk(src):
        rel_dir = os.path.relpath(directory, src)
        target_dir = dst if rel_dir == "." else os.path.join(dst, rel_dir)
        for name in dirnames:
            source = os.path.join(directory, name)
            if os.path.islink(source):
                raise CorruptEntry(f"{source} is a symbolic link", "clear the cache: dbarch cache clear")
            os.mkdir(os.path.join(target_dir, name), 0o700)
        for name in filenames:
            rel = name if rel_dir == "." else os.path.join(rel_dir, name)
            files.append((rel, os.path.join(directory, name), os.path.join(target_dir, name)))
    summer = _Summer()

    def copy_one(rel: str, source: str, target: str) -> tuple[str, int, int]:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise CorruptEntry(f"{source} is not a regular file", "clear the cache: dbarch cache clear")
            data = os.read(fd, info.st_size + 1)
            while len(data) <= info.st_size and (more := os.read(fd, 1 << 20)):
                data += more
        finally:
            os.close(fd)
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(out, view):]
            if owner:
                os.fchown(out, *owner)
            if fsync:
                os.fsync(out)
        finally:
            os.close(out)
        return rel, len(data), zlib.crc32(data)

    def copy_batch(batch: list[tuple[str, str, str]]) -> list[tuple[str, int, int]]:
        return [copy_one(*item) for item in batch]

    # A few threads with a share each (the GIL is released for the system calls and
    # the checksums); one future per file would cost more than the copying.
    batches = [files[i::_COPY_THREADS] for i in range(_COPY_THREADS)]
    with ThreadPoolExecutor(_COPY_THREADS) as pool:
        for done in pool.map(copy_batch, batches):
            for part in done:
                summer.add(*part)
    if owner or fsync:
        for directory, _, _ in os.walk(dst):
            if owner:
                os.chown(directory, *owner)
            if fsync:
                _fsync_dir(Path(directory))
    return summer.manifest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def tree_size(path: Path) -> int:
    total = 0
    for directory, _, filenames in os.walk(path):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total


class ClusterCache:
    """The cache directory: ``<root>/clusters/<key>/{data/, entry.json}``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def clusters(self) -> Path:
        return self.root / "clusters"

    def ensure(self) -> Path:
        """Create (or check) the cache directory; ``UnsafePath`` when it is not ours."""
        self.root.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fix = (
            f"remove it (rm -rf {self.root}) if it is not yours, or put the cache elsewhere "
            "with dbarch_cache_dir / DBARCH_CACHE_DIR"
        )
        private_dir(self.root, 0o700, fix=fix)
        return private_dir(self.clusters, 0o700, fix=fix)

    def _lock(self, key: str, mode: int) -> int | None:
        """An fd holding ``flock(mode)`` on ``<key>.lock``; None when non-blocking and
        taken. Re-checks the inode after locking: a lock file deleted meanwhile (by
        ``clear``) is not a lock."""
        path = self.ensure() / f"{key}.lock"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, mode)
            except BlockingIOError:
                os.close(fd)
                return None
            try:
                if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    @contextlib.contextmanager
    def _locked(self, key: str, mode: int) -> Iterator[None]:
        fd = self._lock(key, mode)
        try:
            yield
        finally:
            if fd is not None:
                os.close(fd)

    def building(self, key: str) -> contextlib.AbstractContextManager[None]:
        """Exclusive: the one session that builds (or deletes) ``key``."""
        return self._locked(key, fcntl.LOCK_EX)

    def reading(self, key: str) -> contextlib.AbstractContextManager[None]:
        """Shared: sessions copying ``key`` out; waits for a build in progress."""
        return self._locked(key, fcntl.LOCK_SH)

    def lookup(self, key: str) -> Entry | None:
        """The complete entry for ``key``; None when missing or not trustworthy."""
        path = self.clusters / key
        try:
            meta = json.loads((path / MARKER).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("key") != key:
            return None
        if not (path / DATA).is_dir():
            return None
        return Entry(key, path, meta)

    def copy_out(self, entry: Entry, dest: Path, owner: tuple[int, int] | None = None) -> None:
        """Copy the entry's cluster to ``dest``; ``CorruptEntry`` (and ``dest``
        removed) when its files do not match the marker."""
        try:
            found = copy_tree(entry.data, dest, owner=owner)
        except CorruptEntry:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        expected = Manifest(entry.meta.get("files", -1), entry.meta.get("bytes", -1), entry.meta.get("checksum", ""))
        if found != expected:
            shutil.rmtree(dest, ignore_errors=True)
            raise CorruptEntry(
                f"cache entry {entry.path} does not match its marker "
                f"({found.files} files, {found.bytes} bytes; marker: {expected.files}, {expected.bytes})",
                "it is rebuilt; if this repeats, check the disk",
            )
        with contextlib.suppress(OSError):
            os.utime(entry.path / MARKER)  # last use, for pruning

    def store(self, key: str, datadir: Path, meta: dict[str, Any]) -> Entry:
        """Copy the stopped cluster in ``datadir`` into the cache as ``key``. Call
        inside ``building(key)``."""
        clusters = self.ensure()
        staging = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=clusters))
        try:
            manifest = copy_tree(datadir, staging / DATA, fsync=True)
            full = {
                **meta,
                "format": FORMAT,
                "key": key,
                "files": manifest.files,
                "bytes": manifest.bytes,
                "checksum": manifest.checksum,
                "created": time.time(),
            }
            _write_synced(staging / MARKER, json.dumps(full, indent=1, sort_keys=True))
            _fsync_dir(staging)
            final = clusters / key
            if os.path.lexists(final):
                _remove(final)
            os.rename(staging, final)
            _fsync_dir(clusters)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return Entry(key, final, full)

    def remove(self, key: str) -> None:
        """Delete ``key``'s entry (inside ``building(key)``)."""
        path = self.clusters / key
        if os.path.lexists(path):
            _remove(path)

    def entries(self, *, sizes: bool = True) -> list[tuple[str, dict[str, Any] | None, int, float]]:
        """Every entry and staging leftover: key, marker (None when incomplete), bytes
        (0 unless ``sizes``: walking every tree costs), last use."""
        found: list[tuple[str, dict[str, Any] | None, int, float]] = []
        if not self.clusters.is_dir():
            return found
        for path in sorted(self.clusters.iterdir()):
            if path.is_symlink() or not path.is_dir():
                continue
            entry = self.lookup(path.name)
            marker = path / MARKER
            used = marker.stat().st_mtime if marker.exists() else path.stat().st_mtime
            found.append((path.name, entry.meta if entry else None, tree_size(path) if sizes else 0, used))
        return found

    def clear(self, on_busy: Callable[[str], None] = lambda key: None) -> tuple[int, int]:
        """Delete every entry nobody is reading or building; returns (entries, bytes)."""
        removed = freed = 0
        for key, _, size, _ in self.entries():
            lock_key = key.split("-")[1] if key.startswith(".build-") else key
            if not self._try_remove(lock_key, key):
                on_busy(key)
                continue
            removed += 1
            freed += size
        return removed, freed

    def _try_remove(self, lock_key: str, name: str) -> bool:
        """Delete entry or staging directory ``name`` unless someone holds its key."""
        fd = self._lock(lock_key, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if fd is None:
            return False
        try:
            target = self.clusters / name
            if os.path.lexists(target):
                _remove(target)
            if not os.path.lexists(self.clusters / lock_key):
                # Deleted while held: whoever opened it before waits on a dead inode
                # and re-checks (see _lock).
                with contextlib.suppress(OSError):
                    os.unlink(self.clusters / f"{lock_key}.lock")
            return True
        finally:
            os.close(fd)

    def prune(self, keep: int = KEEP_ENTRIES) -> None:
        """Drop all but the ``keep`` most recently used complete entries, and staging
        directories of builds that crashed (their lock is free)."""
        entries = self.entries(sizes=False)
        complete = sorted((e for e in entries if e[1] is not None), key=lambda e: e[3], reverse=True)
        for key, _, _, _ in complete[keep:]:
            self._try_remove(key, key)
        for key, meta, _, _ in entries:
            if meta is None:
                lock_key = key.split("-")[1] if key.startswith(".build-") else key
                self._try_remove(lock_key, key)


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)
