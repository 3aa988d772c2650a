"""Query-capture overhead per driver, and fingerprint cost, measured on a real PostgreSQL.

    .venv/bin/python benchmarks/bench_capture.py [--statements 20000] [--rounds 3]

Starts a disposable server the way the plugin does (or uses DBARCH_DSN), then times
each workload in short interleaved runs (the order flips every round, so load drift on
a shared machine hits every side alike) and prints the ratios (the target: capture on
at most 1.2x). Sides:

- ``plain``: the driver as installed, its methods not hooked (the original functions,
  or a connection made without ``psycopg2.connect``); raw workloads only;
- ``off``: hooks installed, nothing recording (every test that sends nothing, and every
  process where the plugin is loaded);
- ``on``: recording, what a test's call phase pays.

Workloads, per driver: ``SELECT 1`` x 1000 on a raw connection (psycopg 3, psycopg2,
asyncpg: the worst case, all overhead and no work), and a SQLAlchemy ORM workload
(``session.get`` by key and a lazy relationship, 50 rows; psycopg 3 and psycopg2 sync,
asyncpg async). Then the import hook's cost, the capture bookkeeping alone in CPU time,
the fingerprint figures and the N+1 analysis. The machine's load average is printed
first: on a shared machine, read the figures next to it.
"""


import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_dbarch.config import Settings  # noqa: E402
from pytest_dbarch.postgres.databases import Databases  # noqa: E402
from pytest_dbarch.queries import callsite, capture, fingerprint, nplusone, recorder  # noqa: E402

CHUNK = 1000
OWNERS = 50


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def recorded(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with capture.recording():
            return fn()

    return run


def compare(name: str, sides: dict[str, Callable[[], object]], rounds: int, statements: int) -> None:
    """Interleaved runs of each side; prints the mean of the best half of each, and the
    median of the per-round ratios (the figure least moved by other processes)."""
    times: dict[str, list[float]] = {side: [] for side in sides}
    order = list(sides)
    for i in range(rounds):
        for side in order if i % 2 == 0 else reversed(order):
            times[side].append(timed(sides[side]))
    half = max(1, rounds // 2)
    best = {side: sum(sorted(values)[:half]) / half for side, values in times.items()}
    base = "plain" if "plain" in sides else "off"
    pairs = sorted(on / plain for on, plain in zip(times["on"], times[base]))
    shown = "  ".join(f"{side} {best[side] * 1e3:7.2f} ms" for side in order)
    print(
        f"{name:<32} {shown}  on/{base}: best-half {best['on'] / best[base]:5.2f}x, "
        f"median round {pairs[len(pairs) // 2]:5.2f}x  (+{(best['on'] - best[base]) / statements * 1e6:.1f} us/statement)"
    )


def orm_models() -> tuple[Any, Any, Any]:
    from sqlalchemy import ForeignKey
    from sqlalchemy.ext.asyncio import AsyncAttrs
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

    class Base(AsyncAttrs, DeclarativeBase):
        pass

    class Owner(Base):
        __tablename__ = "bench_owner"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]
        pets: Mapped[list["Pet"]] = relationship(back_populates="owner")

    class Pet(Base):
        __tablename__ = "bench_pet"
        id: Mapped[int] = mapped_column(primary_key=True)
        owner_id: Mapped[int] = mapped_column(ForeignKey("bench_owner.id"))
        name: Mapped[str]
        owner: Mapped["Owner"] = relationship(back_populates="pets")

    return Base, Owner, Pet


def import_hook_figures() -> None:
    """What watching imports costs: per import of any other module, and hooking itself."""
    script = r"""
import sys, time
sys.path.insert(0, %r)
import psycopg, psycopg2, psycopg2.extras, asyncpg, sqlalchemy, sqlalchemy.orm
from pytest_dbarch.queries import capture, import_hook
start = time.perf_counter()
capture.install()
hooked = time.perf_counter() - start
finder = import_hook._Finder()
import_hook._WATCHED.setdefault("dbarch_never_imported", [])
n = 200000
start = time.perf_counter()
for _ in range(n):
    finder.find_spec("some.other.module", None)
per_call = (time.perf_counter() - start) / n
print(len(sys.modules), hooked, per_call)
""" % str(ROOT)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    modules, hooked, per_call = int(out[0]), float(out[1]), float(out[2])
    print(f"import hook, one other import (finder)         {per_call * 1e9:8.0f} ns")
    print(f"import hook, the {modules} modules of psycopg, psycopg2, asyncpg and SQLAlchemy"
          f"  {modules * per_call * 1e6:6.1f} us in all")
    print(f"hooking psycopg, psycopg2, asyncpg, SQLAlchemy (once per process)  {hooked * 1e3:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--statements", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the statements, in runs of 1000")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}"
          f" on {os.cpu_count()} cores")

    callsite.set_root(str(ROOT))
    capture.install()
    import asyncpg
    import psycopg
    import psycopg2
    from sqlalchemy import create_engine, select
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
    from sqlalchemy.orm import Session

    settings = Settings(dsn=os.environ.get("DBARCH_DSN"), sources={"dsn": "env DBARCH_DSN"})
    databases = Databases(settings, "bench")
    loop = asyncio.new_event_loop()
    try:
        server = databases.start()
        rounds = args.rounds * max(1, args.statements // CHUNK)
        print(f"server: PostgreSQL {server.version} ({server.mode}); {args.statements} statements x {args.rounds} "
              f"passes, in interleaved runs of {CHUNK}\n")
        dsn, url = server.dsn("postgres"), server.url("postgres")

        # --- raw drivers: SELECT 1
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.cursor()
            plain_execute = psycopg.Cursor.execute.__wrapped__  # type: ignore[attr-defined]
            compare("psycopg 3: SELECT 1 x 1000", {
                "plain": lambda: [plain_execute(cur, "SELECT 1") for _ in range(CHUNK)],
                "off": lambda: [cur.execute("SELECT 1") for _ in range(CHUNK)],
                "on": recorded(lambda: [cur.execute("SELECT 1") for _ in range(CHUNK)]),
            }, rounds, CHUNK)
            per_statement = min(timed(lambda: [plain_execute(cur, "SELECT 1") for _ in range(CHUNK)])
                                for _ in range(10)) / CHUNK
            with recorder.recording(capture.QueryLog()):
                start = time.process_time()
                for _ in range(args.statements):
                    recorder.record(conn, "SELECT 1", None, 0, 0.0, 1, False, False, "psycopg")
                bookkeeping = (time.process_time() - start) / args.statements

        plain2 = psycopg2.extensions.connection(dsn)  # made without psycopg2.connect: not hooked
        hooked2 = psycopg2.connect(dsn)
        plain2.autocommit = hooked2.autocommit = True
        plain_cur, hooked_cur = plain2.cursor(), hooked2.cursor()
        compare("psycopg2: SELECT 1 x 1000", {
            "plain": lambda: [plain_cur.execute("SELECT 1") for _ in range(CHUNK)],
            "off": lambda: [hooked_cur.execute("SELECT 1") for _ in range(CHUNK)],
            "on": recorded(lambda: [hooked_cur.execute("SELECT 1") for _ in range(CHUNK)]),
        }, rounds, CHUNK)
        plain2.close()
        hooked2.close()

        apg = loop.run_until_complete(asyncpg.connect("postgresql://" + url.split("://", 1)[1]))
        plain_fetchval = asyncpg.Connection.fetchval.__wrapped__  # type: ignore[attr-defined]

        async def apg_plain() -> None:
            for _ in range(CHUNK):
                await plain_fetchval(apg, "SELECT 1")

        async def apg_hooked() -> None:
            for _ in range(CHUNK):
                await apg.fetchval("SELECT 1")

        compare("asyncpg: fetchval(SELECT 1) x 1000", {
            "plain": lambda: loop.run_until_complete(apg_plain()),
            "off": lambda: loop.run_until_complete(apg_hooked()),
            "on": recorded(lambda: loop.run_until_complete(apg_hooked())),
        }, rounds, CHUNK)
        loop.run_until_complete(apg.close())

        # --- the ORM on each driver
        Base, Owner, Pet = orm_models()
        engines = {driver: create_engine(make_url(url).set(drivername=f"postgresql+{driver}"))
                   for driver in ("psycopg", "psycopg2")}
        Base.metadata.drop_all(engines["psycopg"])
        Base.metadata.create_all(engines["psycopg"])
        with Session(engines["psycopg"]) as session:
            session.add_all(Owner(name=f"o{i}", pets=[Pet(name=f"p{i}-{j}") for j in range(3)])
                            for i in range(OWNERS))
            session.commit()

        def orm(engine: Any) -> Callable[[], None]:
            def workload() -> None:
                with Session(engine) as session:
                    for key in range(1, OWNERS + 1):
                        len(session.get(Owner, key).pets)  # type: ignore[union-attr]
                    session.rollback()

            workload()  # warm up: connection, dialect, statement cache
            return workload

        for driver, engine in engines.items():
            work = orm(engine)
            compare(f"ORM {driver}: get + lazy load x {OWNERS}", {"off": work, "on": recorded(work)},
                    max(2, rounds // 2), 2 * OWNERS)
        async_engine = create_async_engine(make_url(url).set(drivername="postgresql+asyncpg"))

        async def orm_async() -> None:
            async with AsyncSession(async_engine) as session:
                for key in range(1, OWNERS + 1):
                    owner = await session.get(Owner, key)
                    len(await owner.awaitable_attrs.pets)  # type: ignore[union-attr]
                await session.rollback()

        loop.run_until_complete(orm_async())
        compare(f"ORM asyncpg: get + lazy load x {OWNERS}", {
            "off": lambda: loop.run_until_complete(orm_async()),
            "on": recorded(lambda: loop.run_until_complete(orm_async())),
        }, max(2, rounds // 2), 2 * OWNERS)
        loop.run_until_complete(async_engine.dispose())

        with capture.recording() as log:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for _ in range(args.statements):
                    conn.execute("SELECT 1")
        fingerprint.shape_of("SELECT 1")  # sqlglot's import is once per session, not per analysis
        start = time.perf_counter()
        nplusone.detect(log.statements, nplusone.Rules())
        analysis = time.perf_counter() - start
        Base.metadata.drop_all(engines["psycopg"])
        for engine in engines.values():
            engine.dispose()
    finally:
        loop.close()
        databases.close()

    print()
    import_hook_figures()
    print(f"capture bookkeeping per statement (CPU)      {bookkeeping * 1e6:8.2f} us")
    print(f"SELECT 1 round trip, psycopg 3 plain (wall)  {per_statement * 1e6:8.2f} us"
          f"  -> bookkeeping adds {bookkeeping / per_statement:.1%}")
    print(f"N+1 analysis of {args.statements} statements          {analysis * 1e3:8.1f} ms")
    fingerprint_figures()


def fingerprint_figures() -> None:
    cold_sql = "SELECT a.id, a.name FROM accounts a JOIN contacts c ON c.account_id = a.id WHERE a.id = %(id_1)s::INTEGER"
    start = time.perf_counter()
    fingerprint.shape_of(cold_sql)  # includes importing sqlglot
    first = time.perf_counter() - start
    other = cold_sql.replace("a.name", "a.website")
    start = time.perf_counter()
    fingerprint.shape_of(other)
    cold = time.perf_counter() - start
    hits = 100000
    start = time.perf_counter()
    for _ in range(hits):
        fingerprint.shape_of(cold_sql)
    warm = (time.perf_counter() - start) / hits
    three = "SELECT id FROM contacts WHERE account_id IN (" + ", ".join(f"%(p_{i})s::INTEGER" for i in range(3)) + ")"
    many = "SELECT id FROM contacts WHERE account_id IN (" + ", ".join(f"%(p_{i})s::INTEGER" for i in range(300)) + ")"
    same = fingerprint.shape_of(three).fingerprint == fingerprint.shape_of(many).fingerprint
    rows = ", ".join(f"(%(name_m{i})s, %(email_m{i})s, %(account_id_m{i})s::UUID)" for i in range(1000))
    bulk = f"INSERT INTO contacts (name, email, account_id) VALUES {rows} RETURNING contacts.id"
    start = time.perf_counter()
    fingerprint.shape_of(bulk)
    bulk_time = time.perf_counter() - start
    print(f"fingerprint, first shape (imports sqlglot)   {first * 1e3:8.1f} ms")
    print(f"fingerprint, new shape (regex + sqlglot)     {cold * 1e3:8.2f} ms")
    print(f"fingerprint, cache hit                       {warm * 1e9:8.0f} ns")
    print(f"IN (3) and IN (300): one fingerprint         {same}")
    print(f"{len(bulk) // 1024} KB insertmanyvalues (regex only)     {bulk_time * 1e3:8.2f} ms")


if __name__ == "__main__":
    main()
