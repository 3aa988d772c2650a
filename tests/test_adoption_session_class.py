"""Issue 15, point 6: ``dbarch_session`` is a SQLModel session when the application
uses SQLModel (``db.exec(select(...))`` works), or the class ``dbarch_session_class``
names."""

from __future__ import annotations

import importlib.util

import pytest

# Not importorskip: importing sqlmodel here would make every later test of this process
# (``dbarch_session_class = auto``) get SQLModel sessions.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("sqlmodel") is None, reason="sqlmodel is not installed")

MODELS = '''
from sqlmodel import Field, SQLModel


class Hero(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
'''

TESTS = '''
import sqlmodel
from sqlmodel import select

from models import Hero


def test_exec_works(dbarch_session):
    assert isinstance(dbarch_session, sqlmodel.Session)
    dbarch_session.add(Hero(name="Deadpond"))
    dbarch_session.commit()
    assert [h.name for h in dbarch_session.exec(select(Hero)).all()] == ["Deadpond"]


def test_rolled_back_between_tests(dbarch_session):
    assert dbarch_session.exec(select(Hero)).all() == []
'''


def test_sqlmodel_session_is_detected_and_configurable(external_pytester: pytest.Pytester) -> None:
    external_pytester.makepyfile(models=MODELS, test_heroes=TESTS)
    external_pytester.makeini("[pytest]\ndbarch_metadata = models:SQLModel.metadata\n")
    result = external_pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)

    external_pytester.makeini("[pytest]\ndbarch_metadata = models:SQLModel.metadata\ndbarch_session_class = sqlalchemy\n")
    plain = external_pytester.runpytest("-p", "no:randomly", "-k", "exec_works")
    plain.assert_outcomes(failed=1)
    plain.stdout.fnmatch_lines(["*assert isinstance(dbarch_session, sqlmodel.Session)*"])

    external_pytester.makeini("[pytest]\ndbarch_metadata = models:SQLModel.metadata\ndbarch_session_class = models:Hero\n")
    bad = external_pytester.runpytest("-p", "no:randomly", "-k", "exec_works")
    bad.assert_outcomes(errors=1)
    bad.stdout.fnmatch_lines(
        [
            "*pytest-dbarch: dbarch_session_class 'models:Hero' is not a subclass of sqlalchemy.orm.Session",
            "*fix: set dbarch_session_class to auto, sqlalchemy, sqlmodel or module:Class*",
        ]
    )


PLAIN_MODELS = '''
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
'''

IMPORTS_SQLMODEL = '''
import pytest

sqlmodel = pytest.importorskip("sqlmodel")


def test_a_module_that_merely_imports_sqlmodel():
    assert sqlmodel.SQLModel
'''

PLAIN_TESTS = '''
import sys
import warnings

from sqlalchemy.orm import Session

from models import Account


def test_plain_session_despite_sqlmodel_imported(dbarch_session):
    assert "sqlmodel" in sys.modules
    assert type(dbarch_session) is Session
    dbarch_session.add(Account(name="Acme"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SQLModel's Session warns on query()
        assert [a.name for a in dbarch_session.query(Account)] == ["Acme"]
'''


def test_auto_follows_the_models_not_the_imports(external_pytester: pytest.Pytester) -> None:
    external_pytester.makepyfile(models=PLAIN_MODELS, test_a_imports=IMPORTS_SQLMODEL, test_b_plain=PLAIN_TESTS)
    external_pytester.makeini("[pytest]\ndbarch_metadata = models:Base.metadata\npythonpath = .\n")
    result = external_pytester.runpytest("-p", "no:randomly", "-n", "0")
    result.assert_outcomes(passed=2)

    # SQLModel models named through dbarch_models while the schema comes from SQL.
    external_pytester.makefile(".sql", schema="CREATE TABLE hero (id serial PRIMARY KEY, name text NOT NULL);")
    external_pytester.makepyfile(
        heroes=MODELS,
        test_b_plain="",
        test_c_sqlmodel="import sqlmodel\n\ndef test_it(dbarch_session):\n    assert isinstance(dbarch_session, sqlmodel.Session)\n",
    )
    external_pytester.makeini("[pytest]\ndbarch_sql_files = schema.sql\ndbarch_models = heroes:Hero\npythonpath = .\n")
    external_pytester.runpytest("-p", "no:randomly", "-n", "0").assert_outcomes(passed=2)
