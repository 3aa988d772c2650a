"""Constraint property tests: valid data drawn from the live schema, against its peers.

Run: ``.venv/bin/python benchmarks/bench_constraints.py`` (starts its own PostgreSQL via
the plugin's server code, or uses DBARCH_DSN). One CHECK-heavy table (the seed's
opportunities and leads rules: stage list, closed_at matching the stage, amount >= 0,
a currency list and regex, probability 0-100, dates in order, exactly one of two
contacts) and its parent. Printed:

1. acceptance: of the rows each generator produces, the share PostgreSQL accepts
   (pytest-dbarch ``.rows()``; a hand-written hypothesis strategy that knows only the
   column types; hypothesis-sqlalchemy's ``table_records``, if installed);
2. 200 valid rows drawn and inserted: hypothesis ``@given`` with ``.rows()`` vs with a
   hand-written strategy that filters until valid, and factory-boy with fixed values,
   each row inserted as a test would (one INSERT with parameters; ``.rows()`` is also
   timed with the checks' own insert, a savepoint and literal SQL per row); and two floors
   no design that draws rows through hypothesis can go under: one bytes choice of a row's
   size per example and nothing else, then that plus the two statements a live row needs
   (its parent's key, the INSERT of a fixed row);
3. ``.fill(table, 10_000)`` through COPY;
4. one violator checked (savepoint, INSERT, rollback), averaged over every constraint.

Targets (issue 9): acceptance >= 99 %, 200 rows <= 0.5 s, 10,000 rows <= 1 s, a violator
about 1 ms. Machine load is printed next to the figures: on a shared machine they swing.
"""

from __future__ import annotations

import os
import random
import string
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pytest_dbarch.config import Settings  # noqa: E402
from pytest_dbarch.constraints.api import Constraints  # noqa: E402
from pytest_dbarch.constraints.context import Context, Skips, check_settings  # noqa: E402
from pytest_dbarch.constraints.intent import Intent  # noqa: E402
from pytest_dbarch.constraints.violators import check as violators_check  # noqa: E402
from pytest_dbarch.postgres.databases import Databases  # noqa: E402

SCHEMA = """
CREATE TABLE accounts (id serial PRIMARY KEY, name varchar(80) NOT NULL UNIQUE);
CREATE TABLE deals (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id int NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name varchar(120) NOT NULL,
    stage varchar(20) NOT NULL CHECK (stage IN ('prospecting', 'qualification', 'proposal', 'won', 'lost')),
    amount numeric(12, 2) NOT NULL CHECK (amount >= 0),
    currency varchar(3) NOT NULL CHECK (currency IN ('USD', 'EUR', 'GBP', 'CAD', 'AUD', 'JPY'))
        CHECK (currency ~ '^[A-Z]{3}$'),
    probability smallint CHECK (probability IS NOT NULL AND probability BETWEEN 0 AND 100),
    opened date NOT NULL, expected_close date,
    closed_at timestamptz,
    contact_email varchar(120), contact_phone varchar(30),
    CHECK ((stage IN ('won', 'lost')) = (closed_at IS NOT NULL)),
    CHECK (expected_close >= opened),
    CHECK (num_nonnulls(contact_email, contact_phone) = 1)
);
"""
ROWS = 200
FILL = 10_000
# The hypothesis settings of section 2, the same for every generator (printed with the figures).
ROUNDS = 3  # section 2 is timed this many times; the median is printed, and the best
QUIET = settings(max_examples=ROWS, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def hand_written() -> st.SearchStrategy[dict[str, Any]]:
    """What a user writes from the column types alone (the CHECKs are not in it)."""
    text = st.text(alphabet=string.ascii_letters, max_size=20)
    return st.fixed_dictionaries({
        "name": st.text(alphabet=string.ascii_letters, min_size=1, max_size=30),
        "stage": st.sampled_from(["prospecting", "qualification", "proposal", "won", "lost"]),
        "amount": st.decimals(0, 10**9, places=2),
        "currency": st.sampled_from(["USD", "EUR", "GBP", "CAD", "AUD", "JPY"]),
        "probability": st.integers(0, 100),
        "opened": st.dates(),
        "expected_close": st.none() | st.dates(),
        "closed_at": st.none() | st.datetimes(timezones=st.just(__import__("datetime").timezone.utc)),
        "contact_email": st.none() | text,
        "contact_phone": st.none() | text,
    })


def insert_sql(row: dict[str, Any]) -> tuple[str, list[Any]]:
    names = list(row)
    return (f"INSERT INTO deals (account_id, {', '.join(names)}) VALUES (%s, {', '.join(['%s'] * len(names))})",
            names)


def accepted_share(conn: psycopg.Connection[Any], strategy: st.SearchStrategy[dict[str, Any]], account: int,
                   n: int = 300) -> float:
    ok = 0
    rows: list[dict[str, Any]] = []

    @settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(strategy)
    def collect(row: dict[str, Any]) -> None:
        rows.append(row)

    collect()
    for row in rows[:n]:
        row = {k: v for k, v in row.items() if k not in ("id", "account_id")}
        text, names = insert_sql(row)
        conn.execute("SAVEPOINT b")
        try:
            conn.execute(text, [account, *[row[k] for k in names]])
            ok += 1
        except psycopg.Error:
            pass
        conn.execute("ROLLBACK TO SAVEPOINT b")
    return ok / max(len(rows[:n]), 1)


def main() -> None:
    databases = Databases(Settings(dsn=os.environ.get("DBARCH_DSN"), sources={"dsn": "env"}), "bench")
    try:
        server = databases.start()
        name = databases._janitor().create(databases._janitor().new_name("bench"))
        with psycopg.connect(server.dsn(name)) as conn:
            run(conn, server.url(name))
            conn.rollback()
    finally:
        databases.close()


def run(conn: psycopg.Connection[Any], url: str) -> None:
    conn.execute(SCHEMA)
    api = Constraints(conn, seed="bench")
    api.fill("accounts", 20)
    conn.commit()  # the database is disposable; the schema must be visible to other connections
    account = conn.execute("SELECT min(id) FROM accounts").fetchone()[0]  # type: ignore[index]
    print(f"pytest-dbarch constraints benchmark ({load()})")

    print("\n1. share of generated rows PostgreSQL accepts (CHECK-heavy table):")
    ours = accepted_share(conn, api.rows("deals").map(lambda r: {k: v for k, v in r.items() if k != "account_id"}),
                          account)
    print(f"   pytest-dbarch .rows()            {ours:7.1%}")
    print(f"   hand-written hypothesis strategy {accepted_share(conn, hand_written(), account):7.1%}")
    try:
        from hypothesis_sqlalchemy import tabular  # noqa: F401
    except ImportError:
        pass
    try:
        from hypothesis_sqlalchemy.sample import table_records
        from sqlalchemy import MetaData, create_engine

        metadata = MetaData()
        engine = create_engine(url)
        metadata.reflect(engine, only=["deals"])
        engine.dispose()
        table = metadata.tables["deals"]
        strategy = table_records(table).map(lambda record: dict(zip([c.name for c in table.columns], record)))
        print(f"   hypothesis-sqlalchemy            {accepted_share(conn, strategy, account):7.1%}")
    except Exception as exc:  # not installed, or it cannot read this table
        print(f"   hypothesis-sqlalchemy            not run ({type(exc).__name__}: {exc})")

    print(f"\n2. {ROWS} valid rows drawn and inserted (hypothesis @given; each row inserted as a test "
          f"would: one INSERT with parameters, which psycopg prepares after five; a refusal would raise; "
          f"settings max_examples={ROWS}, deadline=None, database=None, health checks suppressed; median of "
          f"{ROUNDS} rounds) ({load()}):")
    spec = api.spec("deals")
    probe = api._probe
    statements: dict[tuple[str, ...], str] = {}

    def insert_row(row: dict[str, Any]) -> None:
        names = tuple(row)
        if names not in statements:
            statements[names] = (f"INSERT INTO deals ({', '.join(names)}) "
                                 f"VALUES ({', '.join(['%s'] * len(names))})")
        conn.execute(statements[names], [row[n] for n in names])  # type: ignore[arg-type]

    def with_rows() -> None:
        @QUIET
        @given(api.rows("deals"))
        def insert(row: dict[str, Any]) -> None:
            insert_row(row)

        insert()

    def with_rows_probe() -> None:
        @QUIET
        @given(api.rows("deals"))
        def insert(row: dict[str, Any]) -> None:
            assert probe.insert(spec, row, keep=True).ok  # the checks' own way: savepoint, literal SQL

        insert()

    def with_filter() -> None:
        def valid(row: dict[str, Any]) -> bool:
            return ((row["stage"] in ("won", "lost")) == (row["closed_at"] is not None)
                    and (row["expected_close"] is None or row["expected_close"] >= row["opened"])
                    and (row["contact_email"] is None) != (row["contact_phone"] is None))

        @QUIET
        @given(hand_written().filter(valid))
        def insert(row: dict[str, Any]) -> None:
            insert_row({"account_id": account, **row})

        insert()

    def with_factory_boy() -> None:
        rng = random.Random(1)
        for i in range(ROWS):
            conn.execute(
                "INSERT INTO deals (account_id, name, stage, amount, currency, probability, opened, contact_email) "
                "VALUES (%s, %s, 'prospecting', %s, 'USD', 10, current_date, %s)",
                [account, f"Deal {i}", Decimal(rng.randint(0, 10**6)) / 100, f"c{i}@example.com"])

    # Floors: what any design drawing rows through hypothesis pays, whatever it does per row.
    from pytest_dbarch.constraints.draws import live_drawer

    size = live_drawer(spec, probe).layout.size
    [fk] = spec.foreign_keys
    fixed_row = {"account_id": account, "name": "Deal", "stage": "prospecting", "amount": Decimal("10.00"),
                 "currency": "USD", "probability": 10, "opened": __import__("datetime").date(2026, 1, 1),
                 "contact_email": "a@example.com"}

    def floor_choice() -> None:
        @QUIET
        @given(st.binary(min_size=size, max_size=size))
        def nothing(data: bytes) -> None:
            pass

        nothing()

    def floor_statements() -> None:
        @QUIET
        @given(st.binary(min_size=size, max_size=size))
        def two_statements(data: bytes) -> None:
            probe.parent_key(fk, data[0])
            insert_row(fixed_row)

        two_statements()

    runs = (("pytest-dbarch .rows()", with_rows), (".rows(), inserted the checks' way", with_rows_probe),
            ("hand-written strategy + filter", with_filter),
            ("fixed values (factory-boy style)", with_factory_boy),
            (f"floor: one {size}-byte choice, nothing else", floor_choice),
            ("floor: that + parent key + INSERT", floor_statements))
    measured: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in runs}
    for _ in range(ROUNDS):  # interleaved, so a burst of load on a shared machine hits every row alike
        for label, fn in runs:
            conn.execute("SAVEPOINT r")
            cpu = time.process_time()
            seconds = timed(fn)
            cpu = time.process_time() - cpu
            conn.execute("ROLLBACK TO SAVEPOINT r")
            measured[label].append((seconds, cpu))
    for label, _ in runs:
        walls = sorted(w for w, _ in measured[label])
        cpus = sorted(c for _, c in measured[label])
        print(f"   {label:40s} {walls[len(walls) // 2]:6.3f} s wall (best {walls[0]:.3f}), "
              f"{cpus[len(cpus) // 2]:6.3f} s CPU in Python")
    print(f"   ({api.stats('deals').summary()})")

    print(f"\n3. .fill('deals', {FILL}) through COPY ({load()}):")
    conn.execute("SAVEPOINT f")
    cpu = time.process_time()
    seconds = timed(lambda: api.fill("deals", FILL))
    cpu = time.process_time() - cpu
    count = conn.execute("SELECT count(*) FROM deals").fetchone()[0]  # type: ignore[index]
    conn.execute("ROLLBACK TO SAVEPOINT f")
    print(f"   {count} rows in {seconds:6.3f} s wall, {cpu:6.3f} s CPU in Python")

    print("\n4. violators (a row breaking exactly one constraint, savepoint + INSERT + rollback):")
    ctx = Context(probe, api.catalog, api.spec, Intent(), check_settings(), Skips(), 1)
    [found] = [f for f in violators_check(ctx, spec) if f.status.value == "passed"]
    print(f"   {found.title}")
    print(f"\n({load()})")


if __name__ == "__main__":
    main()
