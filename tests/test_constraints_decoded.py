"""``.rows()`` draws a row as one hypothesis choice (``decoded``): what shrinking relies on.

All-zero bytes must decode to each column's simplest value, a byte lowered must never
move a number away from it, and every value of a range must stay reachable; wide tables
must still fit hypothesis' per-example budget.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import psycopg
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from pytest_dbarch.constraints.decoded import ROW_BYTES, digits, number

QUICK = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def test_the_simplest_row_is_each_columns_simplest_value(dbarch_psycopg: psycopg.Connection,
                                                         dbarch_constraints: Any) -> None:
    dbarch_psycopg.execute("""
        CREATE TABLE owners (code text PRIMARY KEY);
        INSERT INTO owners VALUES ('b'), ('a'), ('c');
        CREATE TABLE things (
            id serial PRIMARY KEY,
            owner text NOT NULL REFERENCES owners,
            qty int NOT NULL, floor_ smallint NOT NULL CHECK (floor_ >= 7), below int NOT NULL CHECK (below < -3),
            price numeric(8, 2) NOT NULL CHECK (price > 0), kind text NOT NULL CHECK (kind IN ('z', 'm', 'b')),
            name varchar(20) NOT NULL, code text NOT NULL CHECK (length(code) >= 3), flag boolean NOT NULL,
            born date NOT NULL, seen timestamptz NOT NULL, note text, ratio real NOT NULL
        )""")
    simplest = find(dbarch_constraints.rows("things"), lambda row: True, settings=QUICK)
    assert simplest == {
        "owner": "a", "qty": 0, "floor_": 7, "below": -4, "price": Decimal("0.01"), "kind": "b", "name": "",
        "code": "000", "flag": False, "born": dt.date(2000, 1, 1),
        "seen": dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), "note": None, "ratio": 0.0,
    }


@QUICK
@given(st.integers(0, 2**70), st.binary(min_size=1, max_size=40), st.data())
def test_numbers_are_monotone_in_every_byte_and_reach_the_whole_range(n: int, data: bytes, more: Any) -> None:
    value = number(data, n)
    assert 0 <= value <= n
    assert number(bytes(len(data)), n) == 0
    if len(data) >= digits(n):
        assert number(b"\xff" * len(data), n) == n
    at = more.draw(st.integers(0, len(data) - 1))
    lowered = data[:at] + bytes([more.draw(st.integers(0, data[at]))]) + data[at + 1:]
    assert number(lowered, n) <= value


def test_wide_tables_get_compact_rows_that_still_draw_and_list(dbarch_psycopg: psycopg.Connection,
                                                               dbarch_constraints: Any) -> None:
    columns = ", ".join(f"c{i} {kind}" for i, kind in
                        enumerate(["bigint", "text", "timestamptz", "numeric", "varchar(200)"] * 24))
    dbarch_psycopg.execute(f"CREATE TABLE wide ({columns})")
    spec = dbarch_constraints.spec("wide")
    from pytest_dbarch.constraints.draws import live_drawer

    size = live_drawer(spec, dbarch_constraints._probe).layout.size
    assert ROW_BYTES < size <= 8 * 120  # compact slots: at most 8 bytes a column, not 18

    @QUICK
    @given(dbarch_constraints.lists("wide", min_size=1, max_size=10))
    def insert(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            assert dbarch_constraints._probe.insert(spec, row).ok, row

    insert()
