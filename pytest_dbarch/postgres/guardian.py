"""Last line of defence: tears a run down when the pytest process that owns it dies.

Started by the server with a pipe on its stdin and in a session of its own, it blocks
until the pipe closes, which happens however pytest ends: normally, on a failure,
Ctrl-C, SIGTERM, SIGKILL or an xdist worker crash. By then the session has usually
cleaned up already and there is nothing left to do.

    python -m pytest_dbarch.postgres.guardian RUNDIR
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from pytest_dbarch.postgres.runtime import destroy


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    rundir = Path(argv[0])
    while sys.stdin.buffer.read(4096):
        pass
    destroy(rundir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
