"""``dbarch server ...`` and ``dbarch cache ...``: the servers kept running between
sessions and the cluster cache, from the command line.

    dbarch server list     servers of this user: where, kept for whom, in use by whom
    dbarch server stop     stop the servers kept running (dbarch_keep_server, kept databases)
    dbarch cache size      where the cluster cache is, its entries and their size
    dbarch cache clear     delete every entry no session is using right now
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from pytest_dbarch.postgres import runtime
from pytest_dbarch.postgres.cache import ClusterCache
from pytest_dbarch.postgres.paths import cache_root, candidate_bases, problem


def register(areas: Any) -> None:
    server = areas.add_parser("server", help="disposable servers kept running between sessions")
    commands = server.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("list", list_command, "this user's servers: where, kept for whom, in use by whom"),
        ("stop", stop_command, "stop the servers kept running (dbarch_keep_server, kept databases)"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--runtime-dir", help="where the run directories are [env: DBARCH_RUNTIME_DIR]")
        sub.set_defaults(func=func)
    cache = areas.add_parser("cache", help="the cluster cache (initialised clusters with built templates)")
    commands = cache.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("size", size_command, "where the cache is, each entry and the total size"),
        ("clear", clear_command, "delete every entry no session is using right now"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--cache-dir", help="the cache directory [env: DBARCH_CACHE_DIR]")
        sub.set_defaults(func=func)


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def _runs(args: argparse.Namespace) -> list[Any]:
    explicit = args.runtime_dir or os.environ.get("DBARCH_RUNTIME_DIR") or None
    found = []
    for base in candidate_bases(explicit):
        if base.is_dir() and problem(base) is None:
            found += runtime.runs(base)
    return found


def _socket_dsn(rundir: Any) -> str:
    facts = runtime.read_json(rundir / runtime.SERVER_FILE) or {}
    port = facts.get("port", 5432)
    return f"host={rundir / 'sock'} port={port} user=postgres dbname=postgres"


def list_command(args: argparse.Namespace) -> int:
    runs = _runs(args)
    if not runs:
        print("dbarch: no servers of this user are running")
        return 0
    for rundir in runs:
        users = [str(pid) for pid in runtime.live_users(rundir)]
        owner = runtime.keep_owner(rundir)
        state = []
        if owner:
            alive = "" if runtime.token_alive(owner) else ", gone"
            state.append(f"kept while process {owner.split('-')[0]} lives{alive}")
        state.append(f"used by pytest {', '.join(users)}" if users else "not in use")
        print(f"{rundir}: {'; '.join(state)}\n  {_socket_dsn(rundir)}")
    return 0


def stop_command(args: argparse.Namespace) -> int:
    kept = [r for r in _runs(args) if runtime.keep_owner(r)]
    if not kept:
        print("dbarch: no kept servers to stop")
        return 0
    for rundir in kept:
        if runtime.unkeep(rundir):
            print(f"dbarch: stopped the server in {rundir}")
        else:
            users = [str(pid) for pid in runtime.live_users(rundir)]
            print(f"dbarch: {rundir} is no longer kept; pytest {', '.join(users)} still uses it, "
                  "and the last of them stops it")
    return 0


def _cache(args: argparse.Namespace) -> ClusterCache:
    return ClusterCache(cache_root(args.cache_dir or os.environ.get("DBARCH_CACHE_DIR") or None))


def size_command(args: argparse.Namespace) -> int:
    cache = _cache(args)
    entries = cache.entries()
    total = sum(e[2] for e in entries)
    print(f"dbarch cluster cache: {cache.root}: {len(entries)} entries, {_mb(total)}")
    for key, meta, size, used in entries:
        if meta is None:
            what = "incomplete (a build in progress, or one that crashed: never used)"
        else:
            what = f"{meta.get('describe', '?')}, PostgreSQL {meta.get('postgres', '?')}"
        age = time.strftime("%Y-%m-%d %H:%M", time.localtime(used))
        print(f"  {key[:24]:<24}  {_mb(size):>9}  last used {age}  {what}")
    return 0


def clear_command(args: argparse.Namespace) -> int:
    cache = _cache(args)
    busy: list[str] = []
    removed, freed = cache.clear(on_busy=busy.append)
    print(f"dbarch cluster cache: {cache.root}: removed {removed} entries, {_mb(freed)}")
    for key in busy:
        print(f"  kept {key}: a session is building or copying it right now")
    return 0
