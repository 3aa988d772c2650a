"""GitHub Actions workflow commands for findings that point at a ``file:line``.

Printed when ``GITHUB_ACTIONS=true``: failed and error findings as ``::error``,
warnings as ``::warning``. Paths are made relative to ``GITHUB_WORKSPACE`` when they
lie under it, so the annotation lands on the right line of the pull request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from pytest_dbarch.findings import Finding, Status
from pytest_dbarch.report.scrub import scrub_finding

_FILE_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+)(?::\d+)?$")
_COMMAND = {Status.FAILED: "error", Status.ERROR: "error", Status.WARNING: "warning"}


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("GITHUB_ACTIONS", "").lower() == "true"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _path(file: str, rootdir: Path, workspace: str | None) -> str:
    path = Path(file)
    if not path.is_absolute():
        path = rootdir / path
    if workspace:
        try:
            return path.resolve().relative_to(Path(workspace).resolve()).as_posix()
        except ValueError:
            pass
    try:
        return path.relative_to(rootdir).as_posix()
    except ValueError:
        return path.as_posix()


def workflow_commands(
    findings: Iterable[Finding], rootdir: Path, environ: Mapping[str, str] = os.environ
) -> list[str]:
    """One workflow command per problem finding with a ``file:line``, without repeats."""
    lines: list[str] = []
    for finding in findings:
        command = _COMMAND.get(finding.status)
        match = _FILE_LINE.match(finding.where)
        if command is None or match is None:
            continue
        finding = scrub_finding(finding)
        path = _path(match["file"], rootdir, environ.get("GITHUB_WORKSPACE"))
        title = escape_property(f"{finding.rule}: {finding.title}")
        message = finding.title + (f"\nfix: {finding.fix}" if finding.fix else "")
        if finding.nodeid:
            message += f"\ntest: {finding.nodeid}"
        line = (
            f"::{command} file={escape_property(path)},line={match['line']},"
            f"title={title}::{escape_data(message)}"
        )
        if line not in lines:
            lines.append(line)
    return lines
