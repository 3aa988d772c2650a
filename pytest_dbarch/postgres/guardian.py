"""Last line of defence: a run is torn down when the processes using it are gone.

``guardian RUNDIR TOKEN``: started by each pytest process that uses a run (the one
that started the server and every xdist worker that joined it), with a pipe on its
stdin and in a session of its own. It blocks until the pipe closes, which happens
however pytest ends: normally, on a failure, Ctrl-C, SIGTERM, SIGKILL or an xdist
worker crash. Then it releases that process's place in the run, and the last one
out destroys it. By then the session has usually done so already.

``guardian --keep RUNDIR``: watches a server kept running between sessions. It
polls the keep owner (the terminal session pytest was started from); when that
process is gone (closed, killed) or ``dbarch server stop`` removed the keep mark,
the run is released like any other.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from pytest_dbarch.postgres import runtime

KEEP_POLL = 0.25


def guard(rundir: Path, token: str) -> None:
    while sys.stdin.buffer.read(4096):
        pass
    runtime.release(rundir, token)


def keep(rundir: Path) -> None:
    while rundir.is_dir():
        owner = runtime.keep_owner(rundir)
        if owner is None or not runtime.token_alive(owner):
            runtime.unkeep(rundir)
            return
        time.sleep(KEEP_POLL)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closed terminal is the owner's business
    if argv[0] == "--keep":
        keep(Path(argv[1]))
    else:
        guard(Path(argv[0]), argv[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
