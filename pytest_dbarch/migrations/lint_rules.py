"""The lock-safety rules: what each flags, the lock it takes, why it hurts, the recipe.

Each rule is a pure function of one statement's ``Check`` context (the described SQL
plus lazily read runtime facts) yielding ``Hit``s; ``LockSafetyLint`` turns hits into
Findings, applying the severity policy:

- ``rows``: exempt when the table did not exist before the revision (created in the same
  migration); FAILED when it holds rows; WARNING when it is empty (production may not be),
  and in a history walked from an empty database, whose rows the history wrote itself.
- ``existing``: WARNING unless the table is new in this revision.
- ``warn``: always WARNING (hygiene; the choice depends on the deploy).
- ``fail``: always FAILED (the statement errors or leaves the migration broken).

Reference numbers are those of ``migration-lint-rules.md`` (the union of squawk,
strong_migrations, django-migration-linter and Atlas); the README table maps them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_dbarch.migrations import facts as F
from pytest_dbarch.migrations.statements import Action

if TYPE_CHECKING:
    from pytest_dbarch.migrations.lint_check import Check

SERIAL_TYPES = {"serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"}
VERSION_TABLES = {"alembic_version", "schema_migrations"}
STRONG_MODES = {"AccessExclusiveLock", "ExclusiveLock", "ShareRowExclusiveLock", "ShareLock"}


@dataclass(frozen=True)
class Rule:
    id: str  # short id; the finding's rule is ``migrations.lint.<id>``
    ref: str  # reference rule number(s)
    title: str
    lock: str
    why: str
    fix: str
    policy: str  # rows, existing, warn, fail
    check: Callable[[Check], Iterator[Hit]] = field(repr=False, compare=False, default=lambda c: iter(()))


@dataclass
class Hit:
    rule: str
    subject: str  # table, table.column, index, type...
    table: F.TableFacts | None = None  # the table whose state decides the severity
    evidence: list[str] = field(default_factory=list)
    needs_rewrite: bool = False  # keep only if the table's relfilenode changed
    status: str = ""  # overrides the policy


RULES: dict[str, Rule] = {}


def rule(
    id: str, *, ref: str, policy: str, title: str, lock: str, why: str, fix: str
) -> Callable[[Callable[[Check], Iterator[Hit]]], Callable[[Check], Iterator[Hit]]]:
    def register(fn: Callable[[Check], Iterator[Hit]]) -> Callable[[Check], Iterator[Hit]]:
        RULES[id] = Rule(id, ref, title, lock, why, fix, policy, fn)
        return fn

    return register


def _actions(c: Check, *kinds: str) -> Iterator[Action]:
    if c.d.kind == "alter-table":
        yield from (a for a in c.d.actions if a.kind in kinds)


def _target(c: Check) -> F.TableFacts:
    return c.table(c.d.tables[0] if c.d.tables else "")


def _col(c: Check, a: Action) -> str:
    return f"{c.d.tables[0] if c.d.tables else '?'}.{a.column}"


# --- indexes ------------------------------------------------------------------------


@rule(
    "require-concurrent-index-creation",
    ref="1",
    policy="rows",
    title="CREATE INDEX without CONCURRENTLY on an existing table",
    lock="SHARE on the table for the whole index build",
    why="every INSERT, UPDATE and DELETE on the table waits until the index is built",
    fix="CREATE INDEX CONCURRENTLY in its own migration outside a transaction (Alembic: "
    "op.get_context().autocommit_block()), then check pg_index.indisvalid",
)
def _create_index(c: Check) -> Iterator[Hit]:
    if c.d.kind == "create-index" and not c.d.concurrently:
        yield Hit("require-concurrent-index-creation", c.d.index or c.d.tables[0], _target(c))


@rule(
    "require-concurrent-index-deletion",
    ref="2",
    policy="rows",
    title="DROP INDEX without CONCURRENTLY",
    lock="ACCESS EXCLUSIVE on the index's table",
    why="all reads and writes of the table queue behind the drop (and behind whatever it waits for)",
    fix="DROP INDEX CONCURRENTLY outside a transaction (not possible for an index that backs a "
    "constraint: drop the constraint in a quiet window)",
)
def _drop_index(c: Check) -> Iterator[Hit]:
    if c.d.kind == "drop-index" and not c.d.concurrently:
        for index in c.d.tables:
            table = F.index_table(c.connection, index)
            if table:
                yield Hit("require-concurrent-index-deletion", index, c.table(table))


@rule(
    "concurrently-in-transaction",
    ref="3",
    policy="fail",
    title="CONCURRENTLY inside a transaction block",
    lock="none: PostgreSQL refuses it (error 25001)",
    why="the migration fails; with retries or lock timeouts it can leave an INVALID index behind",
    fix="run it in its own migration outside a transaction (Alembic: autocommit_block()), and drop "
    "INVALID leftovers (pg_index.indisvalid = false) before retrying",
)
def _concurrently_in_txn(c: Check) -> Iterator[Hit]:
    concurrent = c.d.concurrently or any(a.concurrently for a in c.d.actions)
    if concurrent and c.transaction_open:
        yield Hit(
            "concurrently-in-transaction",
            c.d.index or (c.d.tables or ["?"])[0],
            evidence=[f"transaction really open: yes ({c.transaction_state})"],
        )


@rule(
    "require-concurrent-reindex",
    ref="4",
    policy="rows",
    title="REINDEX without CONCURRENTLY",
    lock="SHARE on the table (writes blocked) and ACCESS EXCLUSIVE on each index (reads using it blocked)",
    why="writes stop for the whole rebuild and queries planned on the index wait",
    fix="REINDEX ... CONCURRENTLY (PostgreSQL 12+) outside a transaction",
)
def _reindex(c: Check) -> Iterator[Hit]:
    if c.d.kind != "reindex" or c.d.concurrently:
        return
    if c.d.option == "index":
        table = F.index_table(c.connection, c.d.index)
        if table:
            yield Hit("require-concurrent-reindex", c.d.index, c.table(table))
    elif c.d.option == "table" and c.d.tables:
        yield Hit("require-concurrent-reindex", c.d.tables[0], _target(c))
    else:
        yield Hit("require-concurrent-reindex", c.d.option or "?", status="warning")


@rule(
    "index-after-exclusive-lock",
    ref="5",
    policy="rows",
    title="index built while the transaction holds ACCESS EXCLUSIVE on the table",
    lock="ACCESS EXCLUSIVE from an earlier ALTER, held through the whole index build",
    why="reads are blocked too, not only writes, for as long as the build takes",
    fix="split the ALTER and the index into separate migrations; build the index CONCURRENTLY",
)
def _index_after_exclusive(c: Check) -> Iterator[Hit]:
    if c.d.kind == "create-index" and not c.d.concurrently:
        table = _target(c)
        if table.exists and "AccessExclusiveLock" in c.held_modes(table.oid):
            yield Hit(
                "index-after-exclusive-lock",
                c.d.index or table.regclass,
                table,
                ["this transaction already holds AccessExclusiveLock on the table (pg_locks)"],
            )


@rule(
    "index-corruption-pg14",
    ref="40",
    policy="warn",
    title="CREATE / REINDEX CONCURRENTLY on PostgreSQL 14.0-14.3",
    lock="SHARE UPDATE EXCLUSIVE",
    why="a bug in those releases can silently corrupt indexes built concurrently",
    fix="upgrade to PostgreSQL 14.4 or later, then REINDEX the affected indexes",
)
def _pg14(c: Check) -> Iterator[Hit]:
    if c.d.concurrently and c.d.kind in ("create-index", "reindex") and 140000 <= c.server_version < 140004:
        yield Hit(
            "index-corruption-pg14", c.d.index or "?", evidence=[f"server_version_num {c.server_version}"]
        )


# --- columns ------------------------------------------------------------------------


@rule(
    "add-column-volatile-default",
    ref="6",
    policy="rows",
    title="ADD COLUMN with a volatile default (or any default before PostgreSQL 11)",
    lock="ACCESS EXCLUSIVE while the whole table is rewritten",
    why="reads and writes stop for the rewrite, which grows with the table",
    fix="add the column without a default, SET DEFAULT in a second statement, then backfill in "
    "batches outside the DDL transaction",
)
def _volatile_default(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "add-column"):
        if a.default is None or a.type_base in SERIAL_TYPES:
            continue
        if c.server_version < 110000:
            yield Hit(
                "add-column-volatile-default",
                _col(c, a),
                _target(c),
                [f"server_version_num {c.server_version} < 110000: every default rewrites"],
            )
            continue
        kinds = F.volatility(c.connection, a.default_functions)
        volatile = sorted(n for n, v in kinds.items() if v == "v")
        if volatile:
            # PostgreSQL may inline a simple SQL function into a constant: only an observed
            # rewrite (a new relfilenode) counts.
            yield Hit(
                "add-column-volatile-default",
                _col(c, a),
                _target(c),
                [
                    f"default {a.default}: volatile function(s) {', '.join(volatile)} (pg_proc.provolatile = 'v')"
                ],
                needs_rewrite=True,
            )


@rule(
    "add-column-required",
    ref="7",
    policy="rows",
    title="ADD COLUMN NOT NULL without a default",
    lock="ACCESS EXCLUSIVE",
    why="fails outright on a table with rows; on an empty one, the running (N-1) application's "
    "INSERTs, which do not know the column, start failing",
    fix="add it nullable (or with a constant default, cheap since PostgreSQL 11), backfill, then "
    "enforce NOT NULL via CHECK (... IS NOT NULL) NOT VALID + VALIDATE",
)
def _required(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "add-column"):
        if (
            a.not_null
            and a.default is None
            and not (a.generated_stored or a.identity or a.type_base in SERIAL_TYPES)
        ):
            yield Hit("add-column-required", _col(c, a), _target(c))


@rule(
    "set-not-null",
    ref="8",
    policy="rows",
    title="SET NOT NULL on an existing column",
    lock="ACCESS EXCLUSIVE for a full table scan",
    why="reads and writes stop while every row is checked",
    fix="ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c (separate "
    "transaction); then SET NOT NULL (PostgreSQL 12+ skips the scan) and drop the CHECK",
)
def _set_not_null(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "set-not-null"):
        table = _target(c)
        if not table.exists:
            continue
        column = a.column.strip('"') if a.column.startswith('"') else a.column.lower()
        proven = F.read(
            c.connection,
            "SELECT conname FROM pg_constraint WHERE conrelid = %s AND contype = 'c' AND convalidated "
            "AND pg_get_constraintdef(oid) ~* %s",
            (table.oid, rf"^CHECK \(\(?\"?{column}\"? IS NOT NULL\)?\)$"),
        )
        if proven and c.server_version >= 120000:
            continue  # the safe recipe: a validated CHECK proves it, no scan
        yield Hit("set-not-null", _col(c, a), table)


@rule(
    "change-column-type",
    ref="15",
    policy="rows",
    title="ALTER COLUMN TYPE that rewrites the table",
    lock="ACCESS EXCLUSIVE while the table and its indexes are rewritten",
    why="reads and writes stop for the rewrite; binary-coercible changes (varchar(n) to text or "
    "to a larger n, numeric precision up) do not rewrite and are not flagged",
    fix="add a new column, write both, backfill in batches, switch readers, drop the old column",
)
def _alter_type(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "alter-type"):
        table = _target(c)
        if table.exists:
            old = F.column_type(c.connection, table.regclass, a.column)
            yield Hit(
                "change-column-type",
                _col(c, a),
                table,
                [f"type {old or '?'} -> {a.type_name}"],
                needs_rewrite=True,
            )


@rule(
    "prefer-text-field",
    ref="16",
    policy="warn",
    title="varchar(n) column",
    lock="none now; a later change of n needs ACCESS EXCLUSIVE (and a rewrite when n shrinks)",
    why="the limit is a business rule kept in the column type, expensive to change later",
    fix="text with CHECK (length(col) <= n) NOT VALID, which can be changed without a rewrite",
)
def _varchar(c: Check) -> Iterator[Hit]:
    if c.d.kind not in ("create-table", "alter-table"):
        return
    found = [
        a
        for a in c.d.actions
        if a.kind in ("add-column", "alter-type")
        and a.type_base in ("varchar", "character varying")
        and "(" in a.type_name
    ]
    if found:  # one finding per statement, naming every column
        table = c.d.tables[0] if c.d.tables else "?"
        subject = ", ".join(f"{table}.{a.column} {a.type_name}" for a in found)
        yield Hit("prefer-text-field", subject, evidence=[", ".join(f"{a.column} {a.type_name}" for a in found)])


@rule(
    "rename-column",
    ref="17",
    policy="existing",
    title="RENAME COLUMN",
    lock="brief ACCESS EXCLUSIVE",
    why="the application version still running during the deploy queries the old name and fails",
    fix="expand/contract: add the new column, write both, move readers, drop the old one "
    "(or map the new attribute to the old column name in the ORM)",
)
def _rename_column(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "rename-column"):
        yield Hit("rename-column", _col(c, a), _target(c))


@rule(
    "rename-table",
    ref="18",
    policy="existing",
    title="RENAME TABLE",
    lock="brief ACCESS EXCLUSIVE",
    why="the running application still queries the old name and fails",
    fix="rename, then CREATE VIEW old_name AS SELECT * FROM new_name as a shim until every "
    "client moved; drop the view later",
)
def _rename_table(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "rename-table"):
        yield Hit("rename-table", c.d.tables[0], _target(c), [f"new name {a.name}"])


@rule(
    "rename-schema",
    ref="19",
    policy="warn",
    title="ALTER SCHEMA ... RENAME",
    lock="ACCESS EXCLUSIVE on nothing, but every qualified name changes at once",
    why="clients, search_path settings and grants naming the schema break",
    fix="create the new schema, move objects (or dual-write), switch clients, drop the old schema",
)
def _rename_schema(c: Check) -> Iterator[Hit]:
    if c.d.kind == "rename-schema":
        yield Hit("rename-schema", c.d.option)


@rule(
    "drop-column",
    ref="20",
    policy="rows",
    title="DROP COLUMN",
    lock="brief ACCESS EXCLUSIVE",
    why="the running application still selects the column and fails; its data is gone for good "
    "(a downgrade cannot bring it back)",
    fix="first deploy code that no longer uses the column (SQLAlchemy: deferred/removed), then drop it "
    "in a later migration",
)
def _drop_column(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "drop-column"):
        yield Hit("drop-column", _col(c, a), _target(c))


@rule(
    "drop-table",
    ref="21",
    policy="rows",
    title="DROP TABLE / SCHEMA / DATABASE",
    lock="ACCESS EXCLUSIVE on the table",
    why="data loss, and every client still using the object breaks",
    fix="deprecate first (stop using it, keep a backup or rename it away), drop in a later release",
)
def _drop_table(c: Check) -> Iterator[Hit]:
    if c.d.kind == "drop-table":
        for name in c.d.tables:
            yield Hit("drop-table", name, c.table(name))
    elif c.d.kind in ("drop-schema", "drop-database"):
        yield Hit(
            "drop-table",
            ", ".join(c.d.tables) or "?",
            status="warning",
            evidence=[f"DROP {c.d.option.upper()}{' CASCADE' if c.d.cascade else ''}"],
        )


@rule(
    "drop-not-null",
    ref="22",
    policy="existing",
    title="DROP NOT NULL",
    lock="brief ACCESS EXCLUSIVE",
    why="readers (application code, PL/pgSQL, reports) that rely on the column never being NULL break",
    fix="keep NOT NULL and use a marker value, or move the optional data to a new table",
)
def _drop_not_null(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "drop-not-null"):
        yield Hit("drop-not-null", _col(c, a), _target(c))


@rule(
    "add-column-serial",
    ref="24",
    policy="rows",
    title="ADD COLUMN serial / bigserial / GENERATED AS IDENTITY on an existing table",
    lock="ACCESS EXCLUSIVE while every row gets its value (table rewrite)",
    why="reads and writes stop for the rewrite",
    fix="create a new table with the key and copy in batches, or add a nullable column, attach a "
    "sequence default and backfill in batches",
)
def _serial(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "add-column"):
        if a.type_base in SERIAL_TYPES or a.identity:
            yield Hit("add-column-serial", _col(c, a), _target(c), [f"type {a.type_name}"])
    for a in _actions(c, "add-identity"):
        yield Hit("add-column-serial", _col(c, a), _target(c), ["ADD GENERATED ... AS IDENTITY"])


@rule(
    "add-column-generated-stored",
    ref="25",
    policy="rows",
    title="ADD COLUMN ... GENERATED ALWAYS AS (...) STORED",
    lock="ACCESS EXCLUSIVE while the table is rewritten to store the values",
    why="reads and writes stop for the rewrite",
    fix="a plain nullable column kept up to date by a trigger, backfilled in batches",
)
def _generated(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "add-column"):
        if a.generated_stored:
            yield Hit("add-column-generated-stored", _col(c, a), _target(c))


@rule(
    "prefer-jsonb",
    ref="26",
    policy="warn",
    title="json column",
    lock="none",
    why="json has no equality operator: SELECT DISTINCT, UNION and GROUP BY on it fail; it is "
    "reparsed on every access",
    fix="use jsonb",
)
def _json(c: Check) -> Iterator[Hit]:
    if c.d.kind in ("create-table", "alter-table"):
        columns = [
            a.column for a in c.d.actions if a.kind in ("add-column", "alter-type") and a.type_base == "json"
        ]
        if columns:
            yield Hit(
                "prefer-jsonb", c.d.tables[0] if c.d.tables else "?", evidence=["json: " + ", ".join(columns)]
            )


# --- constraints --------------------------------------------------------------------


@rule(
    "foreign-key-not-valid",
    ref="9",
    policy="rows",
    title="FOREIGN KEY added without NOT VALID",
    lock="SHARE ROW EXCLUSIVE on both tables while every row is checked",
    why="writes to the table and to the referenced table stop during the validation scan",
    fix="ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then VALIDATE CONSTRAINT in a separate "
    "transaction (SHARE UPDATE EXCLUSIVE: writes continue)",
)
def _fk(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "add-constraint"):
        if a.constraint == "foreign-key" and not a.not_valid:
            yield Hit("foreign-key-not-valid", f"{c.d.tables[0]} ({a.name or 'foreign key'})", _target(c))
    for a in _actions(c, "add-column"):
        if a.constraint == "foreign-key":  # ADD COLUMN ... REFERENCES: validated at once
            yield Hit("foreign-key-not-valid", _col(c, a), _target(c), ["inline REFERENCES on ADD COLUMN"])


@rule(
    "check-not-valid",
    ref="10",
    policy="rows",
    title="CHECK constraint added without NOT VALID",
    lock="ACCESS EXCLUSIVE while every row is checked",
    why="reads and writes stop during the validation scan",
    fix="ADD CONSTRAINT ... CHECK (...) NOT VALID, then VALIDATE CONSTRAINT in a separate transaction",
)
def _check(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "add-constraint"):
        if a.constraint == "check" and not a.not_valid:
            yield Hit("check-not-valid", f"{c.d.tables[0]} ({a.name or 'check'})", _target(c))


@rule(
    "validate-in-same-transaction",
    ref="11",
    policy="rows",
    title="VALIDATE CONSTRAINT in the transaction that added it",
    lock="the ADD's lock (ACCESS EXCLUSIVE for CHECK, SHARE ROW EXCLUSIVE for FK) held through the scan",
    why="NOT VALID only helps if the validation runs later, under the weaker SHARE UPDATE EXCLUSIVE",
    fix="commit between ADD ... NOT VALID and VALIDATE CONSTRAINT (separate migrations)",
)
def _validate(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "validate-constraint"):
        table = _target(c)
        strong = sorted(c.held_modes(table.oid) & STRONG_MODES) if table.exists else []
        if strong:
            yield Hit(
                "validate-in-same-transaction",
                f"{c.d.tables[0]} ({a.name})",
                table,
                [f"this transaction already holds {', '.join(strong)} on the table (pg_locks)"],
            )


@rule(
    "add-unique-constraint",
    ref="12",
    policy="rows",
    title="UNIQUE constraint added by building its index in place",
    lock="ACCESS EXCLUSIVE while the unique index is built",
    why="reads and writes stop for the build, and it fails late on duplicates",
    fix="CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX",
)
def _unique(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "add-constraint"):
        if a.constraint == "unique" and not a.using_index:
            yield Hit("add-unique-constraint", f"{c.d.tables[0]} ({a.name or 'unique'})", _target(c))


@rule(
    "add-primary-key",
    ref="13",
    policy="rows",
    title="PRIMARY KEY added by building its index in place",
    lock="ACCESS EXCLUSIVE for the index build (plus a NOT NULL scan)",
    why="reads and writes stop for the build",
    fix="CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... PRIMARY KEY USING INDEX",
)
def _pk(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "add-constraint"):
        if a.constraint == "primary-key" and not a.using_index:
            yield Hit("add-primary-key", c.d.tables[0], _target(c))
    for a in _actions(c, "add-column"):
        if a.constraint == "primary-key":
            yield Hit("add-primary-key", _col(c, a), _target(c))


@rule(
    "add-exclusion-constraint",
    ref="14",
    policy="rows",
    title="EXCLUDE constraint on an existing table",
    lock="ACCESS EXCLUSIVE while the index is built and every row checked; it cannot be NOT VALID",
    why="reads and writes stop for the whole build",
    fix="no online recipe: create it on a new table and move the data, or run in a maintenance window",
)
def _exclude(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "add-constraint"):
        if a.constraint == "exclude":
            yield Hit("add-exclusion-constraint", f"{c.d.tables[0]} ({a.name or 'exclude'})", _target(c))


# --- types, domains, partitions, maintenance ------------------------------------------


@rule(
    "truncate-cascade",
    ref="23",
    policy="warn",
    title="TRUNCATE ... CASCADE",
    lock="ACCESS EXCLUSIVE on every table reachable by foreign keys",
    why="silently empties tables the statement does not name",
    fix="name every table to empty explicitly, without CASCADE",
)
def _truncate(c: Check) -> Iterator[Hit]:
    if c.d.kind == "truncate" and c.d.cascade:
        for name in c.d.tables:
            table = c.table(name)
            linked = F.referencing_tables(c.connection, table.oid) if table.oid is not None else []
            rows = [t for t in linked if c.table(t).has_rows]
            yield Hit(
                "truncate-cascade",
                name,
                table,
                [f"also empties: {', '.join(linked) or 'nothing today'}"]
                + ([f"with rows: {', '.join(rows)}"] if rows else []),
                status="failed" if rows else "",
            )


@rule(
    "require-enum-value-ordering",
    ref="27",
    policy="warn",
    title="ALTER TYPE ... ADD VALUE without BEFORE / AFTER",
    lock="none worth noting",
    why="the value is appended, so ordering by the enum (<, ORDER BY) may not mean what the code "
    "assumes; in a transaction it cannot be used until commit",
    fix="say where it goes: ADD VALUE 'x' BEFORE 'y' / AFTER 'y'",
)
def _enum_add(c: Check) -> Iterator[Hit]:
    if c.d.kind == "enum-add-value" and "BEFORE" not in c.d.words and "AFTER" not in c.d.words:
        yield Hit("require-enum-value-ordering", c.d.option)


@rule(
    "rename-enum-value",
    ref="28",
    policy="warn",
    title="ALTER TYPE ... RENAME VALUE",
    lock="none worth noting",
    why="the running application still writes and compares the old label and fails",
    fix="add the new value, backfill, move the application, stop using the old label",
)
def _enum_rename(c: Check) -> Iterator[Hit]:
    if c.d.kind == "enum-rename-value":
        yield Hit("rename-enum-value", c.d.option)


@rule(
    "domain-with-check",
    ref="29",
    policy="warn",
    title="CHECK constraint on a DOMAIN",
    lock="ALTER DOMAIN ... ADD CONSTRAINT rechecks every column of the domain in every table",
    why="domain checks are hard to change online; coercions can force rewrites",
    fix="put the CHECK on the tables (NOT VALID + VALIDATE); keep domains constraint-free",
)
def _domain(c: Check) -> Iterator[Hit]:
    if (
        c.d.kind == "create-domain"
        and "CHECK" in c.d.words
        or c.d.kind == "alter-domain"
        and "ADD" in c.d.words
        and "VALID" not in c.d.words
    ):
        yield Hit("domain-with-check", c.d.option)


@rule(
    "require-concurrent-partition-detach",
    ref="30",
    policy="rows",
    title="DETACH PARTITION without CONCURRENTLY",
    lock="ACCESS EXCLUSIVE on the parent table",
    why="every query on the partitioned table waits",
    fix="ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+, outside a transaction)",
)
def _detach(c: Check) -> Iterator[Hit]:
    for a in _actions(c, "detach-partition"):
        if not a.concurrently and not a.not_valid:
            evidence = (
                []
                if c.server_version >= 140000
                else [f"server_version_num {c.server_version}: CONCURRENTLY needs 14+, upgrade first"]
            )
            yield Hit(
                "require-concurrent-partition-detach", f"{c.d.tables[0]} ({a.name})", _target(c), evidence
            )


@rule(
    "prefer-repack",
    ref="31",
    policy="rows",
    title="VACUUM FULL or CLUSTER",
    lock="ACCESS EXCLUSIVE for a full rewrite",
    why="the table is unreadable and unwritable until the rewrite ends",
    fix="pg_repack (or REPACK ... CONCURRENTLY where available), outside the migration",
)
def _repack(c: Check) -> Iterator[Hit]:
    if c.d.kind in ("vacuum-full", "cluster"):
        if not c.d.tables:
            yield Hit("prefer-repack", "every table", status="warning")
        for name in c.d.tables:
            yield Hit("prefer-repack", name, c.table(name))


# --- transactions and timeouts ------------------------------------------------------


@rule(
    "require-lock-timeout",
    ref="32",
    policy="warn",
    title="DDL on an existing table without a lock_timeout",
    lock="the DDL's lock request waits behind long transactions, and every later query queues behind it",
    why="one slow reader turns a millisecond ALTER into an outage",
    fix="SET lock_timeout = '2s' (CREATE INDEX CONCURRENTLY: longer) at the start of the migration, "
    "and retry on timeout",
)
def _lock_timeout(c: Check) -> Iterator[Hit]:
    if c.ddl_on_existing and c.timeouts[0] in ("0", "?"):
        yield Hit("require-lock-timeout", c.revision, evidence=[f"lock_timeout = {c.timeouts[0]}"])


@rule(
    "require-statement-timeout",
    ref="33",
    policy="warn",
    title="DDL on an existing table without a statement_timeout",
    lock="whatever the statement takes, held until it ends",
    why="a runaway rewrite or scan holds its locks without bound",
    fix="SET statement_timeout = '...' for the migration (or per statement)",
)
def _statement_timeout(c: Check) -> Iterator[Hit]:
    if c.ddl_on_existing and c.timeouts[1] in ("0", "?"):
        yield Hit("require-statement-timeout", c.revision, evidence=[f"statement_timeout = {c.timeouts[1]}"])


@rule(
    "backfill-in-ddl-transaction",
    ref="34",
    policy="rows",
    title="data backfill (UPDATE / DELETE) in the same transaction as DDL",
    lock="row locks on every touched row plus the DDL's table locks, held until commit",
    why="the DDL lock is held for the whole backfill; writers of those rows wait too",
    fix="backfill in its own migration, in batches (e.g. 1,000 rows per transaction), outside the DDL transaction",
)
def _backfill(c: Check) -> Iterator[Hit]:
    if c.d.kind in ("update", "delete") and c.d.tables and c.d.tables[0].rsplit(".", 1)[-1] in VERSION_TABLES:
        return  # the runner's own bookkeeping
    if c.d.kind in ("update", "delete") and c.d.tables and c.transaction_open:
        held = [rel for rel, mode in c.held if mode == "AccessExclusiveLock"]
        if held:
            yield Hit(
                "backfill-in-ddl-transaction",
                c.d.tables[0],
                c.table(c.d.tables[0]),
                [f"this transaction holds AccessExclusiveLock on {', '.join(held)}"],
            )
    elif c.ddl_on_existing and c.transaction_open and c.dml_in_transaction:
        yield Hit(
            "backfill-in-ddl-transaction",
            ", ".join(c.dml_in_transaction),
            c.table(c.dml_in_transaction[0]),
            [f"DDL after {', '.join(c.dml_in_transaction)} was updated in this transaction"],
        )


@rule(
    "prefer-robust-statements",
    ref="35",
    policy="warn",
    title="DDL outside a transaction without IF [NOT] EXISTS",
    lock="none extra",
    why="a half-applied migration (one statement done, the next failed) cannot simply be rerun",
    fix="guard it (CREATE INDEX CONCURRENTLY IF NOT EXISTS, DROP INDEX CONCURRENTLY IF EXISTS, "
    "ADD COLUMN IF NOT EXISTS) or run it in a transaction",
)
def _robust(c: Check) -> Iterator[Hit]:
    if c.transaction_open:
        return
    if c.d.kind in ("create-index", "create-table", "drop-index", "drop-table") and not c.d.if_exists:
        yield Hit("prefer-robust-statements", c.d.index or (c.d.tables or ["?"])[0])
    for a in _actions(c, "add-column"):
        if not a.if_not_exists:
            yield Hit("prefer-robust-statements", _col(c, a))


@rule(
    "transaction-nesting",
    ref="36",
    policy="fail",
    title="BEGIN inside an open transaction, or a BEGIN never committed",
    lock="none",
    why="nested BEGIN is ignored (the inner COMMIT commits the runner's transaction early); a "
    "BEGIN without COMMIT leaves the migration's work uncommitted and silently lost",
    fix="let the runner own the transaction: remove BEGIN / COMMIT from migration SQL",
)
def _nesting(c: Check) -> Iterator[Hit]:
    if c.d.kind == "begin" and c.transaction_state == "INTRANS":
        yield Hit(
            "transaction-nesting", c.revision, evidence=["BEGIN while a transaction block is already open"]
        )


# Not statement checks: findings made by the observer itself.
UNCOMMITTED = "transaction-nesting"
UNPARSEABLE = Rule(
    "unparseable-statement",
    "-",
    "statement the lint could not read",
    "unknown",
    "an unreadable statement is not checked by any rule",
    "check it by hand, or simplify the SQL (one statement per execute)",
    "warn",
)
BAD_WAIVER = Rule(
    "bad-waiver",
    "-",
    "waiver without a reason or naming an unknown rule",
    "-",
    "a waiver is a review decision and must say why",
    "write '-- dbarch: allow <rule-id> because <reason>' with a known rule id",
    "fail",
)
