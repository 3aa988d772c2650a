"""Round trips shared by several processes (``dbarch_migrations_workers``): the same
findings as one process, a failed process's parts checked by the main one, nothing left
behind on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

# See test_migrations_histories.py: loaded at collection, never first inside pytester.
import alembic.runtime.migration  # noqa: F401
import sqlalchemy.orm  # noqa: F401
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.migrations import workers
from pytest_dbarch.migrations.share import Share, claim
from tests.conftest import database_names
from tests.migrations_support import Rev, write_alembic

HISTORY = [
    Rev("r01", ["CREATE TABLE item (id serial PRIMARY KEY, name text NOT NULL)"], ["DROP TABLE item"]),
    Rev("r02", ["ALTER TABLE item ADD COLUMN note text"], ["ALTER TABLE item DROP COLUMN note"]),
    # The downgrade forgets the index: a failed round trip, and a rebuild.
    Rev("r03", ["CREATE INDEX ix_item_note ON item (note)", "ALTER TABLE item ADD COLUMN size int"],
        ["ALTER TABLE item DROP COLUMN size"]),
    Rev("r04", ["CREATE TYPE mood AS ENUM ('ok', 'sad')", "ALTER TABLE item ADD COLUMN mood mood"],
        ["ALTER TABLE item DROP COLUMN mood", "DROP TYPE mood"]),
    Rev("r05", ["UPDATE item SET note = 'x' WHERE note IS NULL"], "pass  # data only: nothing to undo"),
    # A branch whose upgrade fails: r08 above it is not checked.
    Rev("r06", ["ALTER TABLE missing ADD COLUMN x int"], ["SELECT 1"], down="r05"),
    Rev("r07", ["ALTER TABLE item ADD COLUMN kind text"], ["ALTER TABLE item DROP COLUMN kind"], down="r05"),
    Rev("r08", ["ALTER TABLE item ADD COLUMN late int"], ["ALTER TABLE item DROP COLUMN late"], down="r06"),
    # Restores the column at the end of the table: a warning for the column order.
    Rev("r09", ["ALTER TABLE item DROP COLUMN size"], ["ALTER TABLE item ADD COLUMN size int"], down="r07"),
    Rev("r10", ["CREATE TABLE tag (id int PRIMARY KEY, item_id int NOT NULL REFERENCES item (id))"],
        ["DROP TABLE tag"]),
    Rev("r11", ["ALTER TABLE tag ADD COLUMN label text"], "raise RuntimeError('one-way: labels are kept')"),
    Rev("r12", ["ALTER TABLE tag ADD COLUMN weight int NOT NULL DEFAULT 0"], ["ALTER TABLE tag DROP COLUMN weight"]),
    Rev("r13", ["CREATE INDEX ix_tag_item ON tag (item_id)"], ["DROP INDEX ix_tag_item"]),
    Rev("r14", ["ALTER TABLE tag DROP COLUMN weight"], ["ALTER TABLE tag ADD COLUMN weight int"]),
]


def _seen(results) -> list[tuple[str, str, str, str, str]]:  # type: ignore[no-untyped-def]
    """What a reader sees of each finding, in order; lock timings vary between runs."""
    return [
        (check, rev, f.rule, f.status.value, re.sub(r"\d+(\.\d+)? ?m?s\b", "<t>", f.title))
        for (check, rev), found in results.findings.items()
        for f in found
    ]


def test_two_processes_find_what_one_finds(dbarch_migrations, tmp_path: Path, admin) -> None:  # type: ignore[no-untyped-def]
    ini = str(write_alembic(tmp_path, HISTORY))
    before = database_names(admin)
    alone = dbarch_migrations.run(ini, drift=False, workers=1, heads=("r08", "r14"))
    shared = dbarch_migrations.run(ini, drift=False, workers=2, heads=("r08", "r14"))
    assert (alone.processes, shared.processes) == (1, 2)
    assert shared.notes == []
    assert _seen(shared) == _seen(alone)
    assert shared.not_checked == alone.not_checked == {"r08": "not checked: revision r06 (an ancestor) cannot be upgraded"}
    assert shared.skipped == alone.skipped
    # The history is not trivial: each kind of outcome is there.
    statuses = {(f.rule, f.status.value) for f in alone.all()}
    assert {("migrations.round-trip", "failed"), ("migrations.round-trip", "error"),
            ("migrations.round-trip", "warning")} <= statuses
    assert alone.rebuilds >= 1
    # The second process walked a database of its own: the revisions it did not check
    # were upgraded there (and here) on top of the round trips.
    assert shared.steps > alone.steps
    assert database_names(admin) == before


FAILING_WORKER = """\
import json, sys
from pathlib import Path
from pytest_dbarch.migrations.share import claim
spec = json.loads(sys.stdin.read())
while claim(Path(spec["counter"])) < len(spec["starts"]):  # takes every part left, checks none
    pass
print("simulated crash", flush=True)
sys.exit(3)
"""


def test_parts_of_a_failed_process_are_checked_here(dbarch_migrations, tmp_path: Path, monkeypatch, admin) -> None:  # type: ignore[no-untyped-def]
    ini = str(write_alembic(tmp_path, HISTORY))
    before = database_names(admin)
    alone = dbarch_migrations.run(ini, drift=False, workers=1, heads=("r08", "r14"))
    monkeypatch.setattr(workers, "COMMAND", [sys.executable, "-c", FAILING_WORKER])
    shared = dbarch_migrations.run(ini, drift=False, workers=2, heads=("r08", "r14"))
    assert _seen(shared) == _seen(alone)
    assert shared.not_checked == alone.not_checked
    assert len(shared.notes) == 1, shared.notes
    assert shared.notes[0].startswith("checking process 1 failed (exit 3: simulated crash)")
    assert "were checked in the main process" in shared.notes[0]
    assert database_names(admin) == before


def test_shares_claim_parts_in_order_without_overlap(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("2")  # parts 0 and 1 are the two processes' first
    starts = [0, 3, 6, 9, 12]  # five parts of three revisions
    first, second = (Share(starts, counter=counter, to_head=True), Share(starts, counter=counter, first=1))
    assert [first.owns(p) for p in range(3)] == [True] * 3
    # first is done with part 0 before second starts: it takes part 2, skipping 1
    assert [first.owns(p) for p in range(3, 9)] == [False] * 3 + [True] * 3
    assert [second.owns(p) for p in range(6)] == [False] * 3 + [True] * 3
    assert second.owns(6) is False  # part 2 is taken: second claims part 3
    assert [second.owns(p) for p in range(9, 12)] == [True] * 3
    assert first.owns(9) is False  # part 3 is taken: first claims part 4
    assert [first.owns(p) for p in range(12, 15)] == [True] * 3
    assert second.owns(12) is None  # nothing left for second
    first.finished()
    assert (first.claimed, first.done) == ([0, 2, 4], [0, 2, 4])
    assert (second.claimed, second.done) == ([1, 3], [1, 3])
    assert claim(counter) == 6  # parts 2, 3, 4 and second's failed claim


def test_a_fixed_share_checks_only_its_parts() -> None:
    share = Share([0, 2, 4, 6, 8], fixed=[1, 3])
    assert [share.owns(p) for p in range(8)] == [False, False, True, True, False, False, True, True]
    assert share.owns(8) is None


def test_parts_get_shorter_towards_the_head() -> None:
    starts = Share.cut(109, 2)
    sizes = [b - a for a, b in zip(starts, [*starts[1:], 109])]
    assert starts[0] == 0 and sum(sizes) == 109
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 10 and sizes[-1] == 2
    assert Share.cut(5, 2) == [0, 2, 4]


def test_the_setting_says_what_it_wants(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert workers.parse_setting("auto", "x") is None
    assert workers.parse_setting(" 2 ", "x") == 2
    with pytest.raises(DbarchError) as info:
        workers.parse_setting("two", "dbarch_migrations_workers")
    assert "dbarch_migrations_workers = 'two' is not a number of processes" in str(info.value)
    assert workers.count_for(None, workers.MIN_REVISIONS - 1) == 1  # too short to gain from it
    assert workers.count_for(3, 2) == 2  # never more processes than revisions


def _descendants(pid: int) -> set[int]:
    found, stack = set(), [pid]
    while stack:
        parent = stack.pop()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == parent and int(entry.name) not in found:
                    found.add(int(entry.name))
                    stack.append(int(entry.name))
    return found


def test_ctrl_c_leaves_no_database_and_no_process(tmp_path: Path, inner_dsn: str, admin) -> None:  # type: ignore[no-untyped-def]
    history = [Rev("b00", ["CREATE TABLE t (id int PRIMARY KEY)"], ["DROP TABLE t"])]
    history += [Rev(f"b{n:02d}", [f"ALTER TABLE t ADD COLUMN c{n} int"], [f"ALTER TABLE t DROP COLUMN c{n}"])
                for n in range(1, 60)]
    write_alembic(tmp_path, history)
    before = database_names(admin)
    env = {**os.environ, "DBARCH_DSN": inner_dsn}
    cli = subprocess.Popen(
        [sys.executable, "-m", "pytest_dbarch.cli", "migrations", "check", "--workers", "2", "--report-dir", "off"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and cli.poll() is None:  # the second process made its database
            if any("_mw_" in name for name in database_names(admin) - before):
                break
            time.sleep(0.05)
        assert cli.poll() is None, cli.communicate()[0].decode()
        assert any("_mw_" in name for name in database_names(admin) - before)
        processes = _descendants(cli.pid)
        os.killpg(cli.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
        cli.wait(timeout=60)
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
            cli.wait()
    assert cli.returncode != 0
    assert processes and not any(Path(f"/proc/{pid}").exists() for pid in processes)
    with psycopg.connect(inner_dsn, autocommit=True) as conn:  # the drops are not deferred
        assert database_names(conn) == before


def test_the_ini_setting_shares_the_items_work(external_pytester: pytest.Pytester) -> None:
    write_alembic(external_pytester.path, HISTORY)
    outcomes = []
    for workers_setting in ("1", "2"):
        external_pytester.makeini(
            f"[pytest]\ndbarch_migrations = alembic.ini\ndbarch_migrations_heads = r08 r14\n"
            f"dbarch_migrations_drift = off\ndbarch_migrations_workers = {workers_setting}\n"
        )
        result = external_pytester.runpytest("-rfs", "-p", "no:randomly")
        outcomes.append(result.parseoutcomes())
        assert "checking process" not in result.stdout.str()  # nothing went wrong to say
    assert outcomes[0] == outcomes[1]
    assert outcomes[0]["failed"] >= 3 and outcomes[0]["passed"] > 20


def test_a_bad_setting_is_one_usage_error(external_pytester: pytest.Pytester) -> None:
    write_alembic(external_pytester.path, HISTORY[:2])
    external_pytester.makeini("[pytest]\ndbarch_migrations = alembic.ini\ndbarch_migrations_workers = many\n")
    result = external_pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dbarch_migrations_workers from ini dbarch_migrations_workers is 'many'*auto*"])


def test_a_sql_directory_is_shared_too(dbarch_migrations, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files = [("CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL);", "DROP TABLE t;")]
    for n in range(1, 9):
        up = f"ALTER TABLE t ADD COLUMN c{n} int;"
        if n == 4:  # the downgrade forgets the index: a failed round trip and a rebuild
            up += f"\nCREATE INDEX ix_c{n} ON t (c{n});"
        files.append((up, f"ALTER TABLE t DROP COLUMN c{n};" if n != 4 else "DROP INDEX IF EXISTS nothing;"))
    for n, (up, down) in enumerate(files):
        (tmp_path / f"{n:04d}_step.up.sql").write_text(up + "\n")
        (tmp_path / f"{n:04d}_step.down.sql").write_text(down + "\n")
    alone = dbarch_migrations.run(str(tmp_path), drift=False, workers=1)
    shared = dbarch_migrations.run(str(tmp_path), drift=False, workers=2)
    assert (shared.processes, shared.notes) == (2, [])
    assert _seen(shared) == _seen(alone)
    assert any(f.rule == "migrations.round-trip" and f.status.value == "failed" for f in alone.all())
    assert shared.steps > alone.steps
