"""Which operating-system account runs ``initdb`` and ``postgres``.

PostgreSQL refuses to run as root. When pytest runs as root the server runs as a
dedicated unprivileged account, ``dbarch`` (created on first use: a system account
with no login shell and no home), never as the system ``postgres`` account: that one
owns the machine's real clusters, and code run by the server (``COPY ... TO
PROGRAM``) would run as it. ``dbarch_run_as`` names another account. When pytest runs
as anyone else the server simply runs as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass

from pytest_dbarch.errors import ServerStartError

SERVER_ACCOUNT = "dbarch"


@dataclass(frozen=True)
class RunAs:
    """The account the server runs under (the current one when not root)."""

    name: str
    uid: int
    gid: int

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()


def current_account() -> RunAs:
    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return RunAs(name, uid, os.getegid())


def planned_name(requested: str | None) -> str:
    """The account's name as the header shows it, without creating anything."""
    if os.geteuid() != 0:
        return current_account().name
    name = requested or SERVER_ACCOUNT
    try:
        pwd.getpwnam(name)
    except KeyError:
        return f"{name} (not created yet)" if not requested else f"{name} (no such user)"
    return name


def choose_account(requested: str | None) -> RunAs:
    """Who runs ``initdb``/``postgres``: never root."""
    if os.geteuid() != 0:
        return current_account()
    name = requested or SERVER_ACCOUNT
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if requested:
            raise ServerStartError(
                f"pytest runs as root and dbarch_run_as names {requested!r}, "
                "but no such user exists",
                f"create it (useradd --system {requested}) or leave dbarch_run_as unset "
                f"(a '{SERVER_ACCOUNT}' account is then created for the server)",
            ) from None
        return _create_system_user(name)
    if entry.pw_uid == 0:
        raise ServerStartError(
            f"dbarch_run_as names {name!r}, which is root; PostgreSQL refuses to run as root",
            "name an unprivileged user, or leave dbarch_run_as unset",
        )
    return RunAs(name, entry.pw_uid, entry.pw_gid)


def _create_system_user(name: str) -> RunAs:
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    nologin = next(
        (p for p in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false") if os.path.exists(p)),
        "/bin/false",
    )
    args = [useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
            "--shell", nologin, "--comment", "pytest-dbarch disposable test servers", name]
    try:
        subprocess.run(args, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        try:  # another session (an xdist worker) may have created it a moment ago
            entry = pwd.getpwnam(name)
        except KeyError:
            detail = getattr(exc, "stderr", "") or str(exc)
            raise ServerStartError(
                "pytest runs as root, PostgreSQL refuses to run as root, and creating an "
                f"unprivileged '{name}' account failed: {detail.strip()}",
                f"create one yourself (useradd --system --shell /usr/sbin/nologin {name}) "
                "or name an existing unprivileged user with --dbarch-run-as",
            ) from None
        return RunAs(name, entry.pw_uid, entry.pw_gid)
    entry = pwd.getpwnam(name)
    return RunAs(name, entry.pw_uid, entry.pw_gid)


def demote(account: RunAs) -> dict[str, object]:
    """subprocess arguments that run a child as ``account``."""
    if account.is_self:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}
