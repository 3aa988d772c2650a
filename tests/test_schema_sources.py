"""Each schema source builds the template; each broken one fails with its cause named."""

from __future__ import annotations

import textwrap

import pytest

COUNT_TABLES = """
def test_schema(dbarch_psycopg):
    rows = dbarch_psycopg.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
    ).fetchall()
    print("TABLES", ",".join(r[0] for r in rows))
"""

ALEMBIC_INI = """
[alembic]
script_location = %(here)s/migrations
"""

ENV_PY = """
from alembic import context
from sqlalchemy import create_engine

connection = context.config.attributes.get("connection")
if connection is None:
    connection = create_engine(context.config.get_main_option("sqlalchemy.url")).connect()
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
"""

REVISION = '''
from alembic import op

revision = "{rev}"
down_revision = {down}

def upgrade():
    {upgrade}

def downgrade():
    {downgrade}
'''


def alembic_project(pytester: pytest.Pytester, revisions: list[tuple[str, str]], env: str = ENV_PY) -> None:
    """Write an alembic.ini, env.py and one revision per (upgrade, downgrade) SQL pair."""
    pytester.makefile(".ini", alembic=ALEMBIC_INI)
    versions = pytester.mkdir("migrations") / "versions"
    versions.mkdir()
    (pytester.path / "migrations" / "env.py").write_text(textwrap.dedent(env))
    down = "None"
    for number, (up, back) in enumerate(revisions, start=1):
        rev = f"r{number:03d}"
        (versions / f"{rev}.py").write_text(
            REVISION.format(rev=rev, down=down, upgrade=up, downgrade=back)
        )
        down = repr(rev)
    pytester.makeini("[pytest]\ndbarch_alembic_ini = alembic.ini\n")


def test_alembic_upgrades_to_head(external_pytester: pytest.Pytester) -> None:
    alembic_project(
        external_pytester,
        [
            ('op.execute("CREATE TABLE accounts (id int PRIMARY KEY)")', 'op.execute("DROP TABLE accounts")'),
            ('op.execute("CREATE TABLE contacts (id int PRIMARY KEY)")', 'op.execute("DROP TABLE contacts")'),
        ],
    )
    external_pytester.makepyfile(COUNT_TABLES)
    result = external_pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*TABLES accounts,alembic_version,contacts*"])
    result.stdout.fnmatch_lines(["dbarch: *; schema: alembic alembic.ini (ini dbarch_alembic_ini)"])


def test_alembic_env_that_uses_the_url(external_pytester: pytest.Pytester) -> None:
    """An env.py that ignores config.attributes gets a working sqlalchemy.url."""
    env = ENV_PY.replace(
        'connection = context.config.attributes.get("connection")', "connection = None"
    )
    alembic_project(
        external_pytester,
        [('op.execute("CREATE TABLE accounts (id int)")', 'op.execute("DROP TABLE accounts")')],
        env=env,
    )
    external_pytester.makepyfile(COUNT_TABLES)
    result = external_pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*TABLES accounts,alembic_version*"])


def test_failing_migration_names_the_revision(external_pytester: pytest.Pytester) -> None:
    alembic_project(
        external_pytester,
        [
            ('op.execute("CREATE TABLE accounts (id int)")', 'op.execute("DROP TABLE accounts")'),
            ('op.execute("ALTER TABLE nowhere ADD COLUMN x int")', "pass"),
        ],
    )
    external_pytester.makepyfile(COUNT_TABLES)
    result = external_pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*Alembic upgrade to head from */alembic.ini failed while running upgrade r001 -> r002*"
            '*relation "nowhere" does not exist*',
            "*fix: run 'alembic upgrade head' against an empty database*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_broken_env_py(external_pytester: pytest.Pytester) -> None:
    alembic_project(external_pytester, [("pass", "pass")], env="import no_such_module\n")
    external_pytester.makepyfile(COUNT_TABLES)
    result = external_pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*Alembic upgrade to head from * failed: ModuleNotFoundError: No module named 'no_such_module'*"])


def test_missing_alembic_ini(external_pytester: pytest.Pytester) -> None:
    external_pytester.makeini("[pytest]\ndbarch_alembic_ini = nope/alembic.ini\n")
    external_pytester.makepyfile(COUNT_TABLES)
    result = external_pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # found at start-up, reported once
    result.stderr.fnmatch_lines(["*dbarch_alembic_ini from ini dbarch_alembic_ini is 'nope/alembic.ini', but */nope/alembic.ini does not exist*"])


MODELS = """
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]

class Contact(Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
"""


@pytest.mark.parametrize("target", ["models:Base.metadata", "models:Base"])
def test_metadata_create_all(external_pytester: pytest.Pytester, target: str) -> None:
    external_pytester.makepyfile(models=MODELS)
    external_pytester.makeini(f"[pytest]\npythonpath = .\ndbarch_metadata = {target}\n")
    external_pytester.makepyfile(test_schema=COUNT_TABLES)
    result = external_pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*TABLES accounts,contacts*"])


def test_metadata_cli_option(external_pytester: pytest.Pytester) -> None:
    external_pytester.makepyfile(models=MODELS)
    external_pytester.makeini("[pytest]\npythonpath = .\n")
    external_pytester.makepyfile(test_schema=COUNT_TABLES)
    result = external_pytester.runpytest("-s", "--dbarch-metadata=models:Base.metadata")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*TABLES accounts,contacts*"])


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module:metadata", "*dbarch_metadata from ini dbarch_metadata is 'no_such_module:metadata': module 'no_such_module' cannot be found*"),
        ("models:Missing", "*dbarch_metadata 'models:Missing' cannot be loaded: AttributeError*"),
        ("models", "*dbarch_metadata from ini dbarch_metadata is 'models': it must look like 'package.module:attribute'*"),
        ("models:Account.__tablename__", "*is a str, not a SQLAlchemy MetaData*"),
    ],
)
def test_bad_metadata(external_pytester: pytest.Pytester, target: str, message: str) -> None:
    external_pytester.makepyfile(models=MODELS)
    external_pytester.makeini(f"[pytest]\npythonpath = .\ndbarch_metadata = {target}\n")
    external_pytester.makepyfile(test_schema=COUNT_TABLES)
    result = external_pytester.runpytest()
    if ":" in target and target.split(":")[0] == "models":
        result.assert_outcomes(errors=1)  # only the import can tell
        result.stdout.fnmatch_lines([message])
    else:
        assert result.ret == pytest.ExitCode.USAGE_ERROR  # found at start-up, reported once
        result.stderr.fnmatch_lines([message])


def test_sql_files_in_order_with_extensions(external_pytester: pytest.Pytester) -> None:
    external_pytester.makefile(".sql", **{"001_tables": "CREATE TABLE accounts (id int PRIMARY KEY, name text);"})
    external_pytester.makefile(
        ".sql",
        **{"002_index": "CREATE INDEX accounts_name_trgm ON accounts USING gin (name gin_trgm_ops);"},
    )
    external_pytester.makeini(
        "[pytest]\ndbarch_sql_files =\n    001_tables.sql\n    002_index.sql\n"
        "dbarch_extensions = pg_trgm\n"
    )
    external_pytester.makepyfile(
        """
        def test_schema(dbarch_psycopg):
            assert dbarch_psycopg.execute(
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'accounts_name_trgm'"
            ).fetchone()[0] == 1
            assert dbarch_psycopg.execute("SELECT similarity('acme', 'acme')").fetchone()[0] == 1
        """
    )
    external_pytester.runpytest().assert_outcomes(passed=1)


def test_bad_sql_file_names_file_and_line(external_pytester: pytest.Pytester) -> None:
    external_pytester.makefile(
        ".sql", schema="CREATE TABLE accounts (id int);\n\nCREATE TABEL contacts (id int);\n"
    )
    external_pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\n")
    external_pytester.makepyfile(COUNT_TABLES)
    result = external_pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*SQL schema file */schema.sql:3 failed: syntax error at or near \"TABEL\"*"])


def test_missing_sql_file(external_pytester: pytest.Pytester) -> None:
    external_pytester.makeini("[pytest]\ndbarch_sql_files = gone.sql\n")
    external_pytester.makepyfile(COUNT_TABLES)
    result = external_pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # found at start-up, reported once
    result.stderr.fnmatch_lines(["*dbarch_sql_files from ini dbarch_sql_files names 'gone.sql', which does not exist under *"])


def test_unknown_extension(external_pytester: pytest.Pytester) -> None:
    external_pytester.makeini("[pytest]\ndbarch_extensions = no_such_ext\n")
    external_pytester.makepyfile(COUNT_TABLES)
    result = external_pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*extension 'no_such_ext' could not be created*", "*fix: install the package that provides no_such_ext*"])


def test_two_schema_sources_is_a_usage_error(external_pytester: pytest.Pytester) -> None:
    external_pytester.makeini("[pytest]\ndbarch_sql_files = a.sql\ndbarch_metadata = m:md\n")
    external_pytester.makepyfile(COUNT_TABLES)
    result = external_pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*more than one schema source is configured (dbarch_metadata, dbarch_sql_files)*"])


def test_schema_source_fixture_can_be_overridden(external_pytester: pytest.Pytester) -> None:
    external_pytester.makefile(".sql", other="CREATE TABLE other_table (id int);")
    external_pytester.makeconftest(
        """
        import pytest
        from pytest_dbarch.postgres.template import SchemaSource

        @pytest.fixture(scope="session")
        def dbarch_schema_source(pytestconfig):
            return SchemaSource(sql_files=("other.sql",), rootdir=str(pytestconfig.rootpath))
        """
    )
    external_pytester.makepyfile(COUNT_TABLES)
    result = external_pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*TABLES other_table*"])
