"""The cluster cache: a warm start copies a cluster with the template inside; any
change to what built it rebuilds it; nothing half-built or corrupt is ever used.

Every test has a private cache (``XDG_CACHE_HOME`` in its own temp directory), so no
test depends on what another one, or the user, left in ``~/.cache``. The inner
sessions use a private runtime directory too, so each starts a server of its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_dbarch.postgres.cache import ClusterCache, CorruptEntry, copy_tree
from tests import migrations_support

# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of this test's own; its ``pytest-dbarch`` directory is returned."""
    xdg = tmp_path / "xdg-cache"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    monkeypatch.delenv("DBARCH_CACHE_DIR", raising=False)
    monkeypatch.delenv("DBARCH_CACHE", raising=False)
    return xdg / "pytest-dbarch"


@pytest.fixture
def lean(monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    """Inner sessions with pytest-dbarch and no other plugin: faster, and nothing else
    between the test and the server."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return ("-p", "no:cacheprovider", "-p", "pytest_dbarch.plugin", "-v")


# Every run of the migrations leaves a line in BUILD_LOG: the outer test counts builds.
ENV_PY = (
    'import os\nwith open(os.environ["BUILD_LOG"], "a") as log:\n    log.write("built\\n")\n\n'
    + migrations_support.ENV_PY
)
CRASH = "if os.environ.get('CRASH_IN') == revision:\n    os.kill(os.getpid(), signal.SIGKILL)  # mid-migration"

COLUMNS_TEST = '''\
def test_schema(dbarch_psycopg):
    rows = dbarch_psycopg.execute(
        "SELECT table_name || '.' || column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name <> 'alembic_version' ORDER BY 1"
    ).fetchall()
    print("COLUMNS", " ".join(r[0] for r in rows))
'''


def write_alembic_project(pytester: pytest.Pytester, extra_column: str = "") -> None:
    """Three revisions; any of them kills pytest when CRASH_IN names it."""
    pytester.makeini("[pytest]\ndbarch_alembic_ini = alembic.ini\n")
    shutil.rmtree(pytester.path / "migrations", ignore_errors=True)
    revisions = [
        migrations_support.Rev(
            rev,
            f'op.execute("CREATE TABLE {table} (id int PRIMARY KEY{columns})")\n{CRASH}',
            [f"DROP TABLE {table}"],
            down=down,
            extra="import os\nimport signal",
        )
        for rev, down, table, columns in (
            ("0001", None, "accounts", ""),
            ("0002", "0001", "contacts", ""),
            ("0003", "0002", "deals", extra_column),
        )
    ]
    migrations_support.write_alembic(pytester.path, revisions, env=ENV_PY)
    pytester.makepyfile(test_schema=COLUMNS_TEST)


def builds(pytester: pytest.Pytester) -> int:
    log = pytester.path / "builds.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*args, timeout=180)


@pytest.fixture
def build_log(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = pytester.path / "builds.log"
    monkeypatch.setenv("BUILD_LOG", str(log))
    return log


# --------------------------------------------------------------------------- behaviour


@pytest.mark.slow
def test_warm_start_reuses_the_template_and_an_edit_rebuilds_it(
    pytester: pytest.Pytester, runtime_dir: Path, private_cache: Path, lean: tuple[str, ...], build_log: Path
) -> None:
    write_alembic_project(pytester)

    cold = run(pytester, *lean, "-s")
    cold.assert_outcomes(passed=1)
    cold.stdout.fnmatch_lines(
        [
            f"dbarch cache: {private_cache}: miss (built and stored when the server starts) * (alembic alembic.ini)",
            "*COLUMNS accounts.id contacts.id deals.id",
            "dbarch server: */pytest-dbarch-*/run-* (*); cluster cache miss: built and stored *",
        ]
    )
    assert builds(pytester) == 1

    warm = run(pytester, *lean, "-s")
    warm.assert_outcomes(passed=1)
    warm.stdout.fnmatch_lines(
        [
            f"dbarch cache: {private_cache}: hit * (alembic alembic.ini)",
            "*COLUMNS accounts.id contacts.id deals.id",
            "dbarch server: * cluster cache hit *",
        ]
    )
    assert builds(pytester) == 1, "a warm start ran the migrations again"

    # Edit the last migration: the next session must see the new column.
    write_alembic_project(pytester, extra_column=", amount numeric NOT NULL")
    edited = run(pytester, *lean, "-s")
    edited.assert_outcomes(passed=1)
    edited.stdout.fnmatch_lines(
        ["dbarch cache: *: miss *", "*COLUMNS accounts.id contacts.id deals.amount deals.id"]
    )
    assert builds(pytester) == 2
    # Two schemas and the bare cluster they were built from.
    described = sorted(e[1]["describe"] for e in ClusterCache(private_cache).entries() if e[1])
    assert described == ["alembic alembic.ini", "alembic alembic.ini", "bare cluster"]


@pytest.mark.slow
def test_a_crash_during_the_template_build_is_never_reused(
    pytester: pytest.Pytester, runtime_dir: Path, private_cache: Path, lean: tuple[str, ...],
    build_log: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_alembic_project(pytester)
    monkeypatch.setenv("CRASH_IN", "0002")
    crashed = run(pytester, *lean)
    assert crashed.ret == -signal.SIGKILL, crashed.stdout.str()

    complete = [e for e in ClusterCache(private_cache).entries() if e[1]]
    assert [e[1]["describe"] for e in complete] == ["bare cluster"], complete

    monkeypatch.delenv("CRASH_IN")
    after = run(pytester, *lean, "-s")
    after.assert_outcomes(passed=1)
    after.stdout.fnmatch_lines(
        ["dbarch cache: *: miss *", "*COLUMNS accounts.id contacts.id deals.id", "*cluster cache miss: built*"]
    )
    # Nothing of the crashed session is left running either (its guardian cleaned up).
    assert list(runtime_dir.glob("pytest-dbarch-*/run-*")) == []


@pytest.mark.slow
def test_a_corrupt_entry_is_detected_and_rebuilt(
    pytester: pytest.Pytester, runtime_dir: Path, private_cache: Path, lean: tuple[str, ...], build_log: Path
) -> None:
    write_alembic_project(pytester)
    run(pytester, *lean).assert_outcomes(passed=1)
    entry = next(
        ClusterCache(private_cache).lookup(key)
        for key, meta, _, _ in ClusterCache(private_cache).entries()
        if meta and meta.get("template")
    )
    assert entry is not None
    # One byte of a catalog file, same size: only the checksum can tell.
    victim = entry.data / "global" / "pg_control"
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))

    result = run(pytester, *lean, "-s")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*COLUMNS accounts.id contacts.id deals.id", "dbarch server: * cluster cache rebuilt: the entry was corrupt *"]
    )
    assert builds(pytester) == 2
    fresh = ClusterCache(private_cache).lookup(entry.key)
    assert fresh is not None and fresh.meta["created"] > entry.meta["created"]


@pytest.mark.slow
def test_cache_off_and_sql_sources(
    pytester: pytest.Pytester, runtime_dir: Path, private_cache: Path, lean: tuple[str, ...]
) -> None:
    pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\n")
    (pytester.path / "schema.sql").write_text("CREATE TABLE notes (id int);\n")
    pytester.makepyfile(test_schema=COLUMNS_TEST)

    off = run(pytester, *lean, "-s", "--dbarch-cache=off")
    off.assert_outcomes(passed=1)
    off.stdout.fnmatch_lines(["dbarch cache: off *", "*COLUMNS notes.id", "dbarch server: * cluster cache off*"])
    assert not private_cache.exists()

    run(pytester, *lean).assert_outcomes(passed=1)
    (pytester.path / "schema.sql").write_text("CREATE TABLE notes (id int, body text);\n")
    changed = run(pytester, *lean, "-s")
    changed.assert_outcomes(passed=1)
    changed.stdout.fnmatch_lines(["dbarch cache: *: miss * (sql schema.sql)", "*COLUMNS notes.body notes.id"])


def dbarch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_dbarch.cli", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )


def test_size_and_clear_commands(tmp_path: Path, private_cache: Path) -> None:
    cache = ClusterCache(private_cache)
    tree = _tree(tmp_path / "cluster")
    with cache.building("a" * 24):
        cache.store("a" * 24, tree, {"describe": "alembic alembic.ini", "postgres": "15.18"})

    size = dbarch("cache", "size")
    assert size.returncode == 0, size.stderr
    assert f"dbarch cluster cache: {private_cache}: 1 entries" in size.stdout
    assert "alembic alembic.ini, PostgreSQL 15.18" in size.stdout

    cleared = dbarch("cache", "clear")
    assert cleared.returncode == 0, cleared.stderr
    assert f"{private_cache}: removed 1 entries" in cleared.stdout
    assert cache.entries() == []
    assert "0 entries" in dbarch("cache", "size").stdout
    other = tmp_path / "elsewhere"
    assert f"{other}: 0 entries" in dbarch("cache", "size", "--cache-dir", str(other)).stdout


# --------------------------------------------------------------------------- the cache directory itself


def _tree(root: Path) -> Path:
    (root / "base" / "1").mkdir(parents=True)
    (root / "global").mkdir()
    (root / "base" / "1" / "1259").write_bytes(os.urandom(8192 * 3))
    (root / "global" / "pg_control").write_bytes(os.urandom(8192))
    (root / "PG_VERSION").write_text("15\n")
    (root / "empty").write_bytes(b"")
    return root


def test_store_copy_out_and_checksum(tmp_path: Path) -> None:
    cache = ClusterCache(tmp_path / "cache")
    tree = _tree(tmp_path / "cluster")
    with cache.building("k1"):
        entry = cache.store("k1", tree, {"describe": "x"})
    assert entry.meta["files"] == 4 and entry.meta["bytes"] == 8192 * 4 + 3
    assert oct(os.stat(cache.root).st_mode & 0o777) == "0o700"

    copy = tmp_path / "copy"
    cache.copy_out(cache.lookup("k1"), copy)  # type: ignore[arg-type]
    assert (copy / "base" / "1" / "1259").read_bytes() == (tree / "base" / "1" / "1259").read_bytes()
    assert oct(os.stat(copy / "base").st_mode & 0o777) == "0o700"

    stored = entry.data / "base" / "1" / "1259"
    data = stored.read_bytes()
    stored.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])  # flipped: writing a 0 changed nothing 1 time in 256
    with pytest.raises(CorruptEntry, match="does not match its marker"):
        cache.copy_out(cache.lookup("k1"), tmp_path / "copy2")  # type: ignore[arg-type]
    assert not (tmp_path / "copy2").exists()


def test_incomplete_entries_are_never_used_and_are_pruned(tmp_path: Path) -> None:
    cache = ClusterCache(tmp_path / "cache")
    tree = _tree(tmp_path / "cluster")
    with cache.building("k1"):
        cache.store("k1", tree, {})
    # A build that crashed: data copied, no marker; and an entry whose marker is torn.
    crashed = cache.clusters / ".build-k2-abc"
    crashed.mkdir()
    copy_tree(tree, crashed / "data")
    torn = cache.clusters / "k3"
    torn.mkdir()
    copy_tree(tree, torn / "data")
    (torn / "entry.json").write_text('{"format": 1, "key": "k3", "fil')

    assert cache.lookup("k2") is None and cache.lookup("k3") is None
    assert cache.lookup("k1") is not None
    cache.prune()
    assert sorted(p.name for p in cache.clusters.iterdir() if p.is_dir()) == ["k1"]


def test_a_build_in_progress_is_not_cleared(tmp_path: Path) -> None:
    cache = ClusterCache(tmp_path / "cache")
    tree = _tree(tmp_path / "cluster")
    for key in ("k1", "k2"):
        with cache.building(key):
            cache.store(key, tree, {})
    busy: list[str] = []
    with cache.reading("k2"):  # someone is copying k2 right now
        removed, _ = cache.clear(on_busy=busy.append)
    assert (removed, busy) == (1, ["k2"])
    assert cache.lookup("k2") is not None


def test_prune_keeps_the_most_recently_used(tmp_path: Path) -> None:
    cache = ClusterCache(tmp_path / "cache")
    tree = _tree(tmp_path / "cluster")
    for i in range(4):
        with cache.building(f"k{i}"):
            cache.store(f"k{i}", tree, {})
        os.utime(cache.clusters / f"k{i}" / "entry.json", (1000 + i, 1000 + i))
    cache.copy_out(cache.lookup("k0"), tmp_path / "used")  # type: ignore[arg-type]
    cache.prune(keep=2)
    assert sorted(e[0] for e in cache.entries()) == ["k0", "k3"]


def test_cache_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to create another user's directory")
    import pwd

    from pytest_dbarch.postgres.paths import UnsafePath

    root = tmp_path / "cache"
    root.mkdir()
    nobody = pwd.getpwnam("nobody")
    os.chown(root, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(UnsafePath, match="belongs to nobody"):
        with ClusterCache(root).building("k"):
            pass


def test_fingerprint_follows_what_shapes_the_schema(tmp_path: Path) -> None:
    from pytest_dbarch.postgres.template import SchemaSource, fingerprint

    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/mig\n")
    (tmp_path / "mig" / "versions").mkdir(parents=True)
    (tmp_path / "mig" / "env.py").write_text("# env\n")
    (tmp_path / "mig" / "versions" / "0001.py").write_text("# one\n")
    (tmp_path / "mig" / "versions" / "__pycache__").mkdir()
    source = SchemaSource(alembic_ini="alembic.ini", rootdir=str(tmp_path))
    first = fingerprint(source)
    assert first is not None and fingerprint(source) == first
    (tmp_path / "mig" / "versions" / "__pycache__" / "0001.cpython-311.pyc").write_bytes(b"junk")
    assert fingerprint(source) == first  # bytecode is not an input
    (tmp_path / "mig" / "versions" / "0001.py").write_text("# one, edited\n")
    edited = fingerprint(source)
    assert edited != first
    with_ext = SchemaSource(alembic_ini="alembic.ini", extensions=("pg_trgm",), rootdir=str(tmp_path))
    assert fingerprint(with_ext) not in (first, edited)
    (tmp_path / "app.py").write_text("X = 1\n")
    keyed = fingerprint(source, ("*.py",))
    (tmp_path / "app.py").write_text("X = 2\n")
    assert fingerprint(source, ("*.py",)) != keyed
    assert fingerprint(SchemaSource(alembic_ini="missing.ini", rootdir=str(tmp_path))) is None


def test_metadata_fingerprint_is_the_ddl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Not pytester: it would unload the SQLAlchemy modules imported here at teardown,
    # and the next in-process user of SQLAlchemy would meet two copies of its classes.
    from pytest_dbarch.postgres.template import SchemaSource, fingerprint

    models = tmp_path / "models_fp.py"
    monkeypatch.syspath_prepend(str(tmp_path))

    def prints(column: str) -> str | None:
        models.write_text(textwrap.dedent(f"""
            from sqlalchemy import Column, Integer, MetaData, Table, Text
            metadata = MetaData()
            Table("notes", metadata, Column("id", Integer, primary_key=True), {column})
        """))
        sys.modules.pop("models_fp", None)
        return fingerprint(SchemaSource(metadata="models_fp:metadata", rootdir=str(tmp_path)))

    try:
        plain = prints("")
        assert plain is not None and prints("") == plain
        assert prints('Column("body", Text)') != plain
    finally:
        sys.modules.pop("models_fp", None)
