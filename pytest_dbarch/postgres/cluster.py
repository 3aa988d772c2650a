"""The data directory of a new server, the fast way: copied from the cluster cache.

For the session's schema source the cache holds a stopped cluster with the schema's
template already built in it (see ``cache``). On a hit the cluster is copied into
the run directory (a few hundred milliseconds for tens of MB, against seconds for
``initdb`` and the migrations) and started. On a miss it is built once: a copy of
the cached bare cluster (``initdb`` only the very first time), started, the template
built, shut down cleanly, stored, started again; later sessions with the same key
copy it. Sessions that want the same key at the same time wait for the builder.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass

from pytest_dbarch import __version__
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.postgres import template
from pytest_dbarch.postgres.binaries import Binaries
from pytest_dbarch.postgres.cache import FORMAT, ClusterCache, CorruptEntry, Entry
from pytest_dbarch.postgres.server import FAST_SETTINGS, INITDB_ARGS, LocalServer


class CacheWarning(UserWarning):
    """The cluster cache could not be used; the session goes on without it."""


@dataclass(frozen=True)
class Prepared:
    """How the data directory came about, for the header and the summary."""

    cache: str  # "hit", "miss: built and stored", "off", ...
    key: str | None
    template: str | None  # complete template inside, if any
    fingerprint: str | None
    error: DbarchError | None  # the template build failed; raised when it is asked for
    seconds: float
    bytes: int = 0

    def describe(self) -> str:
        key = f" {self.key[:12]}" if self.key else ""
        size = f", {self.bytes / 2**20:.0f} MB" if self.bytes else ""
        return f"cluster cache {self.cache}{key}{size}; ready in {self.seconds:.2f} s"


def cache_key(binaries: Binaries, settings: dict[str, str], fingerprint: str | None) -> str:
    """The entry's key: the schema's fingerprint plus everything else that shapes
    the cluster (None fingerprint: the bare cluster)."""
    parts = {
        "plugin": __version__,
        "format": FORMAT,
        "postgres": binaries.version,
        "bindir": str(binaries.identity),
        "initdb": INITDB_ARGS,
        "settings": sorted({**FAST_SETTINGS, **settings}.items()),
        "schema": fingerprint,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def prepare(
    server: LocalServer,
    cache: ClusterCache | None,
    source: template.SchemaSource | None,
    fingerprint: str | None,
) -> Prepared:
    """Fill ``server``'s data directory and launch it. ``source`` None (or empty):
    the bare cluster; ``fingerprint`` None: a schema that cannot be cached."""
    started = time.monotonic()
    if source is not None and source.empty:
        source = None
    wanted = template.template_name(fingerprint) if source is not None and fingerprint else None
    if cache is None or (source is not None and fingerprint is None):
        server.initdb()
        server.launch()
        return Prepared("off", None, None, fingerprint, None, time.monotonic() - started)
    key = cache_key(server.binaries, server.settings, fingerprint if wanted else None)
    owner = None if server.account.is_self else (server.account.uid, server.account.gid)
    state = "hit"
    with cache.reading(key):
        entry = _copy(cache, key, server, owner)
    if entry is None:
        with cache.building(key):
            entry = _copy(cache, key, server, owner)  # built by another session meanwhile?
            if entry is None:
                state = "rebuilt: the entry was corrupt" if cache.lookup(key) else "miss: built and stored"
                cache.remove(key)
                error = _build(server, cache, key, wanted, source, owner)
                if error is not None:
                    return Prepared("miss: not stored, the template build failed", key, None, fingerprint,
                                    error, time.monotonic() - started)
                entry = cache.lookup(key)
    if server.process is None:
        server.launch()
    return Prepared(state, key, wanted, fingerprint, None, time.monotonic() - started,
                    entry.bytes if entry else 0)


def _copy(cache: ClusterCache, key: str, server: LocalServer, owner: tuple[int, int] | None) -> Entry | None:
    """Copy ``key``'s entry into the server's data directory; None when there is
    none, or it does not match its marker (and then nothing was copied)."""
    entry = cache.lookup(key)
    if entry is None:
        return None
    try:
        cache.copy_out(entry, server.datadir, owner)
    except CorruptEntry:
        return None
    return entry


def _build(
    server: LocalServer,
    cache: ClusterCache,
    key: str,
    wanted: str | None,
    source: template.SchemaSource | None,
    owner: tuple[int, int] | None,
) -> DbarchError | None:
    """Build ``key``'s entry in ``server`` (from the bare cluster's entry), store it,
    leave the server running. A failing template build is returned, not stored."""
    meta = {"postgres": server.binaries.version, "bindir": str(server.binaries.identity)}
    if wanted is None:  # the bare cluster itself
        server.initdb()
        server.launch(tcp=False)
    else:
        bare = cache_key(server.binaries, server.settings, None)
        with cache.reading(bare):
            entry = _copy(cache, bare, server, owner)
        if entry is None:
            with cache.building(bare):
                if _copy(cache, bare, server, owner) is None:
                    cache.remove(bare)
                    server.initdb()
                    server.launch(tcp=False)
                    server.shutdown(clean=True)
                    try:
                        cache.store(bare, server.datadir, {**meta, "describe": "bare cluster"})
                    except OSError as exc:
                        warnings.warn(CacheWarning(f"pytest-dbarch: the cluster could not be cached: {exc}"),
                                      stacklevel=2)
        server.launch(tcp=False)
        try:
            template.ensure(server.socket_params(), source, wanted)  # type: ignore[arg-type]
        except DbarchError as exc:
            if server.listen.tcp:
                server.shutdown()
                server.launch()
            return exc
    server.shutdown(clean=True)
    describe = source.describe() if source is not None else "bare cluster"
    try:
        cache.store(key, server.datadir, {**meta, "describe": describe, "template": wanted})
        cache.prune()  # a new entry: drop the least recently used beyond the limit
    except OSError as exc:  # a full disk: this session goes on, the next builds again
        warnings.warn(CacheWarning(f"pytest-dbarch: the cluster could not be cached: {exc}"), stacklevel=2)
    server.launch()
    return None
