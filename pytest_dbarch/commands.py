"""What every ``dbarch`` command shares: output options, and ``emit`` (findings to the
terminal and the ``.temp/`` report). Commands import this; ``cli.py`` imports the commands."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from pytest_dbarch.findings import Ledger


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """The options every checking command shares: where the report goes, verbosity."""
    parser.add_argument(
        "--report-dir",
        default=".temp",
        help="where the .temp/ agent-checklist report goes, relative to the current directory ('off': none)",
    )
    parser.add_argument("--agent-id", default="pytest-dbarch", help="agentId of the report's task")
    parser.add_argument("-v", "--verbose", action="store_true", help="show passed checks and evidence")


def emit(ledger: Ledger, args: argparse.Namespace, project_dir: Path, lines: Iterable[str] | None = None) -> None:
    """Hand the findings to every output: the terminal and the ``.temp/`` report.

    The command's findings update only its own items of the task (pytest's stay as they
    are); a command that checked only part of its source (``--since``) closes only what
    it checked again. ``lines``: a command's own condensed terminal view, in place of
    the finding list.
    """
    from pytest_dbarch.report import terminal
    from pytest_dbarch.report.ledger import Run
    from pytest_dbarch.report.terminal import report_line
    from pytest_dbarch.report.write import write_report

    for line in terminal.render(ledger, verbose=args.verbose) if lines is None else lines:
        print(line)
    if args.report_dir.strip().lower() in ("off", "") or not len(ledger):
        return
    words = ("dbarch", getattr(args, "area", None), getattr(args, "command", None), getattr(args, "source", None))
    source = " ".join(str(w) for w in words if w)
    files = write_report(
        ledger,
        directory=Path.cwd() / args.report_dir,
        project=project_dir.name,
        agent_id=args.agent_id,
        run=Run(source=source, whole=not getattr(args, "since", None)),
    )
    if files is not None:
        print(report_line(files))
