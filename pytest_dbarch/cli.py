"""The ``dbarch`` console script: database checks as a CI gate, outside pytest.

Each command lives beside the checks it runs and registers itself here
(``register(commands)`` sets ``func``); this module only parses, dispatches, and turns
a ``DbarchError`` into exit code 2. Findings reach the outputs through ``emit`` only.

Exit codes: 0 every check passed, 1 a check failed, 2 bad usage or a server that could
not be used, 130 interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from pytest_dbarch.errors import DbarchError


EXIT_CODES = """exit codes:
  0    every check passed
  1    a check failed (findings of failed or error severity)
  2    bad usage, or a server that could not be used (nothing was checked)
  130  interrupted (Ctrl-C, SIGTERM)"""


def _parser() -> argparse.ArgumentParser:
    from pytest_dbarch import __version__
    from pytest_dbarch.migrations import cli as migrations_cli
    from pytest_dbarch.postgres import cli as server_cli
    from pytest_dbarch.schema_lint import cli as schema_lint_cli

    parser = argparse.ArgumentParser(
        prog="dbarch",
        description="database architecture checks (pytest-dbarch), outside pytest: for CI gates "
        "and pre-merge checks",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dbarch (pytest-dbarch) {__version__}")
    areas = parser.add_subparsers(dest="area", title="commands")
    for register in (migrations_cli.register, schema_lint_cli.register, server_cli.register):
        register(areas)
    return parser


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt("SIGTERM")  # unwinds through close(): nothing is left behind


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.error("a command is required (see dbarch --help)")  # exit code 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.func(args))
    except DbarchError as exc:
        print(f"dbarch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dbarch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
