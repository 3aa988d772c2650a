"""Reading SQL without a database: the script splitter and the statement reader never
raise, whatever the text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_dbarch.migrations.statements import describe, lex, split_script


def test_split_keeps_quoted_semicolons_and_leading_comments() -> None:
    script = (
        "-- dbarch: allow prefer-text-field because legacy\n"
        "CREATE TABLE t (a text DEFAULT ';', b text DEFAULT 'it''s; fine');\n"
        "\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$;\n"
        "/* block; comment */ SELECT 1; -- trailing; comment\n"
    )
    parts = split_script(script)
    assert [line for _, line in parts] == [1, 4, 5]
    assert parts[0][0].startswith("-- dbarch: allow prefer-text-field") and parts[0][0].endswith("fine')")
    assert parts[1][0].endswith("END $body$")
    assert describe(parts[0][0]).comments == ("dbarch: allow prefer-text-field because legacy",)
    assert describe(parts[1][0]).kind == "ddl-other" and describe(parts[2][0]).kind == "select"


def test_alter_table_actions_are_read_from_tokens() -> None:
    d = describe(
        'ALTER TABLE IF EXISTS ONLY "Sales".orders ADD COLUMN IF NOT EXISTS total numeric(12, 2) '
        "NOT NULL DEFAULT random(), ALTER COLUMN note TYPE text USING note::text, "
        "ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES customers (id) NOT VALID, VALIDATE CONSTRAINT ck"
    )
    assert d.kind == "alter-table" and d.tables == ['"Sales".orders']
    add, alter, fk, validate = d.actions
    assert (add.kind, add.column, add.type_name, add.not_null, add.default_functions, add.if_not_exists) == (
        "add-column", "total", "numeric(12, 2)", True, ("random",), True,
    )
    assert (alter.kind, alter.type_name) == ("alter-type", "text")
    assert (fk.constraint, fk.not_valid) == ("foreign-key", True)
    assert (validate.kind, validate.name) == ("validate-constraint", "ck")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abc ;'\"$-/*()\n,.ALTERTABLEADDCOLUMN0123"))) | st.text())
def test_reading_never_raises(text: str) -> None:
    for sql, line in split_script(text):
        assert line >= 1 and sql.strip()
        described = describe(sql)
        assert described.kind
        if not lex(sql).complete:
            assert described.kind == "unparseable" and described.problem


def test_routine_signatures_with_argument_names_are_read() -> None:
    multi_line = 'DROP FUNCTION IF EXISTS\n  "public".f(\n    new_val "public"."mood",\n    OUT old_val int\n  ) CASCADE'
    d = describe(multi_line)
    assert (d.kind, d.option, d.if_exists, d.cascade, d.problem) == ("ddl-other", "function", True, True, "")
    assert describe("DROP PROCEDURE p(IN a int)").option == "procedure"
    assert describe("DROP FUNCTION f(a int").kind == "unparseable"  # unbalanced: still said
