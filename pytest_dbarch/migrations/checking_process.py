"""One of the processes that share a history's round trips (see workers.py).

    python -m pytest_dbarch.migrations.checking_process < spec.json

It reads its spec on standard input, round-trips the parts of the history it claims
(share.py), writes its outcome as JSON where the spec says, and drops every database
it made on every exit path: SIGTERM unwinds like Ctrl-C, and a second signal does not
cut the drops short.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path


def main() -> int:
    spec = json.loads(sys.stdin.read())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.path[:] = spec["sys_path"]
    from pytest_dbarch.config import Settings
    from pytest_dbarch.migrations import suite, workers
    from pytest_dbarch.migrations.roundtrip import RoundTrip
    from pytest_dbarch.migrations.scratch import Scratch
    from pytest_dbarch.migrations.share import Share
    from pytest_dbarch.origin import plugin_statements
    from pytest_dbarch.postgres.databases import Databases

    options = suite.Options.from_json(spec["options"])
    share = Share(spec["starts"], counter=Path(spec["counter"]), first=spec["first"])
    databases = Databases(
        Settings(dsn=spec["dsn"], sources={"dsn": "the checking process's DSN"}, rootdir=spec["rootdir"]), "mw"
    )
    try:
        runner = suite.open_runner(spec["source"], spec["rootdir"])
        factories = suite.default_observers(options)
        round_trip = RoundTrip(
            runner,
            Scratch(databases, options.extensions),
            rootdir=spec["rootdir"],
            observers=lambda: [make() for make in factories],
            floor=options.min_downgrade,
            data=options.data,
            only=options.only,
            column_order=options.column_order,
            share=share,
        )
        with plugin_statements():
            outcome = round_trip.run()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        databases.close()
    Path(spec["outcome"]).write_text(json.dumps(workers.outcome_to_json(outcome, share)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
