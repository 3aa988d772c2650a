"""The pytest settings of the project in a directory, read the way pytest finds them
(``pytest.ini``, ``.pytest.ini``, ``pyproject.toml``, ``tox.ini``, ``setup.cfg``),
so that ``dbarch lint`` run beside a test suite lints what the suite builds, under
the same policy, without starting pytest.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_dbarch.errors import DbarchError


@dataclass(frozen=True)
class ProjectSettings:
    path: Path | None  # the file the values came from
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def rootdir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def lines(self, key: str) -> tuple[str, ...]:
        """A linelist value: ini text split into lines, a TOML list as is."""
        value = self.values.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return tuple(line.strip() for line in value.splitlines() if line.strip())
        return tuple(str(v) for v in value)

    def words(self, key: str) -> tuple[str, ...]:
        return tuple(w for line in self.lines(key) for w in line.split())


def _ini(path: Path, section: str) -> dict[str, Any] | None:
    import iniconfig

    try:
        parsed = iniconfig.IniConfig(str(path))
    except iniconfig.ParseError as exc:
        raise DbarchError(f"{path} cannot be read: {exc}", "fix the file's syntax") from None
    if section not in parsed:
        return None
    return dict(parsed[section].items())


def _toml(path: Path) -> dict[str, Any] | None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - pytest depends on tomli below 3.11
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DbarchError(f"{path} cannot be read: {exc}", "fix the file's syntax") from None
    tool = data.get("tool", {}).get("pytest", {})
    section = tool.get("ini_options")
    if isinstance(section, dict):
        return section
    return tool if tool else None


def read(directory: Path) -> ProjectSettings:
    """The first pytest configuration found in ``directory`` (pytest's order), or none."""
    candidates = (
        ("pytest.ini", "pytest"), (".pytest.ini", "pytest"), ("pyproject.toml", None),
        ("tox.ini", "pytest"), ("setup.cfg", "tool:pytest"),
    )
    for name, section in candidates:
        path = directory / name
        if not path.is_file():
            continue
        values = _toml(path) if section is None else _ini(path, section)
        if values is not None:
            return ProjectSettings(path, values)
        if name in ("pytest.ini", ".pytest.ini"):
            return ProjectSettings(path, {})  # pytest stops at these even when empty
    return ProjectSettings(None)


def add_pythonpath(project: ProjectSettings) -> None:
    """Make the project's modules importable as pytest's ``pythonpath`` ini does."""
    for entry in reversed(project.words("pythonpath") or (".",)):
        path = str((project.rootdir / entry).resolve())
        if path not in sys.path:
            sys.path.insert(0, path)
