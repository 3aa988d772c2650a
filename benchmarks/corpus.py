"""A corpus of real open-source Alembic histories, prepared in a scratch directory.

Their files never enter this repository: each history is read from a local bare git
mirror of its project (``$DBARCH_CORPUS_MIRRORS/<owner>+<name>/repo``, default
``/work/.mirror``) at a pinned commit with ``git archive``. A history whose mirror is
missing is skipped, with the reason. Where a project's revisions or env.py import the
application itself, a few small shim modules stand in for those imports; each shim is
listed below, with what it replaces, and the project's own env.py is kept unless
noted. The shims make ``target_metadata`` None (the models need the whole application),
so drift is not compared on the corpus.

    python benchmarks/corpus.py [DEST]     # prepare every history, print what was made
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

MIRRORS = Path(os.environ.get("DBARCH_CORPUS_MIRRORS", "/work/.mirror"))


@dataclass(frozen=True)
class History:
    name: str
    repo: str  # owner/name
    commit: str
    migrations: str  # the directory holding env.py and versions/, inside the repo
    ini: str  # alembic.ini written next to it
    shims: dict[str, str] = field(default_factory=dict)  # path -> text, under the scratch root
    needs: tuple[str, ...] = ()  # importable modules the revisions need (pip packages)
    notes: str = ""


WAREHOUSE = History(
    "warehouse",
    "pypi/warehouse",
    "6b62157124ab7865029afeeadf282bce27d601d9",
    "warehouse/migrations",
    # env.py pops 'url' from the [alembic] section: fed from the URL the checker sets.
    "[alembic]\nscript_location = %(here)s/warehouse/migrations\nurl = %(sqlalchemy.url)s\n",
    {
        "warehouse/__init__.py": "from warehouse import db, utils  # noqa: F401\n",
        "warehouse/db.py": "metadata = None  # shim: the models need the whole application\n",
        "warehouse/utils/__init__.py": "from warehouse.utils import db  # noqa: F401\n",
        "warehouse/utils/db/__init__.py": "from warehouse.utils.db import types  # noqa: F401\n",
        "warehouse/utils/db/types.py": textwrap.dedent(
            """\
            from sqlalchemy import DateTime, TypeDecorator


            class TZDateTime(TypeDecorator):  # shim: same DDL as warehouse's (timestamp without tz)
                impl = DateTime
                cache_ok = True
            """
        ),
    },
    needs=("alembic_postgresql_enum", "packaging"),
    notes="env.py unchanged (its own engine: 'with connectable.connect() as connection', "
    "SET statement_timeout/lock_timeout, transaction_per_migration); app modules shimmed",
)

CKAN = History(
    "ckan",
    "ckan/ckan",
    "2dbe2c18f65ec75798c3667dd412c2320ac44ab0",
    "ckan/migration",
    "[alembic]\nscript_location = %(here)s/ckan/migration\n",
    {
        "ckan/__init__.py": "",
        "ckan/model/__init__.py": "def init_model(engine):  # shim\n    pass\n",
        "ckan/model/meta.py": "metadata = None  # shim: the models need the whole application\n",
        "ckan/plugins/__init__.py": "def plugin_loaded(name):  # shim: no plugin loaded\n    return False\n",
    },
    notes="env.py unchanged (engine_from_config, include_name); ckan.model and ckan.plugins shimmed",
)

ZOU = History(
    "zou",
    "cgwire/zou",
    "4bf77e6da49b9d06521aaead52927daf6449a99d",
    "zou/migrations",
    # The pre-1.0 history, as zou's own CLI loads it for old instances.
    "[alembic]\nscript_location = %(here)s/zou/migrations\n"
    "version_locations = %(here)s/zou/migrations/versions/legacy\n"
    # env.py calls logging.config.fileConfig(alembic.ini), as zou's own alembic.ini allows.
    "[loggers]\nkeys = root\n[handlers]\nkeys = console\n[formatters]\nkeys = generic\n"
    "[logger_root]\nlevel = WARN\nhandlers = console\n"
    "[handler_console]\nclass = StreamHandler\nargs = (sys.stderr,)\nlevel = NOTSET\nformatter = generic\n"
    "[formatter_generic]\nformat = %%(levelname)-5.5s [%%(name)s] %%(message)s\n",
    {
        "zou/__init__.py": "",
        "zou/app/__init__.py": "",
        "zou/app/utils/__init__.py": "",
        "zou/app/utils/fields.py": "import uuid\n\n\ndef gen_uuid():  # shim\n    return uuid.uuid4()\n",
        "zou/app/utils/date_helpers.py": textwrap.dedent(
            """\
            import datetime


            def get_utc_now_datetime():  # shim
                return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
            """
        ),
        "zou/app/models/__init__.py": "",
        # Two choice lists the revisions import from the app's models (labels only).
        "zou/app/models/person.py": textwrap.dedent(
            """\
            POSITION_TYPES = [("supervisor", "Supervisor"), ("lead", "Lead"), ("artist", "Artist")]
            SENIORITY_TYPES = [("senior", "Senior"), ("mid", "Mid"), ("junior", "Junior")]
            """
        ),
        # env.py tries Flask's current_app first and falls back on RuntimeError.
        "flask/__init__.py": textwrap.dedent(
            """\
            class _NoApp:  # shim: outside an application context, as Flask raises
                def __getattr__(self, name):
                    raise RuntimeError("Working outside of application context.")


            current_app = _NoApp()
            """
        ),
    },
    needs=("sqlalchemy_utils", "pytz", "babel"),
    notes="env.py unchanged (Flask fallback, include_object, 'with connectable.connect()'); "
    "the legacy history (versions/legacy) as zou's CLI loads it; flask and zou.app shimmed",
)

HISTORIES = (WAREHOUSE, CKAN, ZOU)


def mirror(history: History) -> Path:
    return MIRRORS / history.repo.replace("/", "+") / "repo"


def missing(history: History) -> str:
    """Why this history cannot be prepared here ('' when it can)."""
    if not mirror(history).is_dir():
        return f"no git mirror of {history.repo} at {mirror(history)}"
    import importlib.util

    absent = [m for m in history.needs if importlib.util.find_spec(m) is None]
    if absent:
        return f"modules its revisions import are not installed: {', '.join(absent)} (pip install them)"
    return ""


def prepare(history: History, dest: Path) -> Path:
    """The history's migrations at the pinned commit, its shims and alembic.ini under
    ``dest/<name>``; the alembic.ini path."""
    root = dest / history.name
    if not (root / "alembic.ini").is_file():
        archive = subprocess.run(
            ["git", "--git-dir", str(mirror(history)), "archive", history.commit, history.migrations],
            capture_output=True,
            check=True,
        ).stdout
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
        for path, text in history.shims.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.write_text(text)
        # The project root on sys.path, as the application's own install would have it.
        (root / "alembic.ini").write_text(history.ini.replace("[alembic]\n", "[alembic]\nprepend_sys_path = %(here)s\npath_separator = os\n", 1))
    return root / "alembic.ini"


def revisions(ini: Path) -> int:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    return len(list(ScriptDirectory.from_config(Config(str(ini))).walk_revisions()))


def main() -> None:
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/dbarch-corpus")
    for history in HISTORIES:
        why = missing(history)
        if why:
            print(f"{history.name}: skipped: {why}")
            continue
        ini = prepare(history, dest)
        print(f"{history.name}: {ini} ({revisions(ini)} revisions; {history.notes})")


if __name__ == "__main__":
    main()
