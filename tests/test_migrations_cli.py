"""``dbarch migrations check`` as a pre-merge gate: exit codes, findings printed, --since."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.migrations_support import planted_history

ROOT = Path(__file__).resolve().parents[1]


def dbarch(cwd: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DBARCH_DSN": dsn}
    return subprocess.run(
        [sys.executable, "-m", "pytest_dbarch.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_example_project_passes_the_gate(inner_dsn: str) -> None:
    result = dbarch(ROOT / "example_project", inner_dsn, "migrations", "check", "--report-dir", "off")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dbarch report" not in result.stdout
    assert "dbarch migrations check: alembic.ini: 11 revisions checked in" in result.stdout
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary


def test_broken_history_fails_the_gate_and_since_limits_it(tmp_path: Path, inner_dsn: str) -> None:
    planted_history(tmp_path)
    result = dbarch(tmp_path, inner_dsn, "migrations", "check", "--no-data", "-v")
    assert result.returncode == 1
    assert result.stdout.count("FAIL [migrations.round-trip]") == 10
    assert "FAIL [migrations.round-trip] revision r02: downgrade does not restore the schema: enum type mood left behind" in result.stdout
    # The same .temp/ report a pytest session writes, with the failures as open items.
    (checklist,) = (tmp_path / ".temp").glob("checklist-*.md")
    assert f"dbarch report: {checklist} (task {checklist.stem[-6:]}, run 1, phase" in result.stdout
    assert checklist.read_text().count("- [ ] ") >= 10
    assert "enum type mood left behind" in checklist.read_text()
    assert len(list((tmp_path / ".temp").glob("task-status-*.json"))) == 1

    # Only the revisions a branch adds are round-tripped with --since.
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    versions = tmp_path / "migrations" / "versions"
    late = {name: (versions / name).read_text() for name in ("r11.py", "r12.py")}
    for name in late:
        (versions / name).unlink()
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=tmp_path, check=True)
    subprocess.run([*git, "checkout", "-qb", "feature"], cwd=tmp_path, check=True)
    for name, text in late.items():
        (versions / name).write_text(text)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "feature"], cwd=tmp_path, check=True)
    result = dbarch(tmp_path, inner_dsn, "migrations", "check", "--no-data", "--since", "main", "-v")
    assert result.returncode == 1
    assert "2 of 12 revisions checked" in result.stdout
    assert result.stdout.count("FAIL [migrations.round-trip]") == 1
    assert "revision r11: downgrade does not restore the schema: index ix_contacts_status left behind" in result.stdout


def test_bad_usage_is_one_clear_message(tmp_path: Path, inner_dsn: str) -> None:
    result = dbarch(tmp_path, inner_dsn, "migrations", "check")
    assert result.returncode == 2
    assert f"dbarch: no alembic.ini in {tmp_path}" in result.stderr
    assert not (tmp_path / ".temp").exists()
    assert "Traceback" not in result.stderr
    result = dbarch(tmp_path, inner_dsn, "migrations", "check", "--since", "nowhere", str(ROOT / "example_project" / "alembic.ini"))
    assert result.returncode == 2
    assert "--since nowhere: git cannot list the files added since nowhere" in result.stderr
