"""The live schema as typed facts: tables, columns, constraints, indexes, types.

The shared reading of ``pg_catalog`` that the constraint property tests and the schema
lint both build on (the migration snapshot is different: canonical text for diffing).
Everything is read in ten set-based queries, whatever the number of tables, and
only with ``SELECT``: it runs inside a ``READ ONLY``
transaction against a replica. Objects that belong to an extension are left out.

Names are kept as PostgreSQL stores them; ``Catalog.table("accounts")`` looks a table
up by bare name (first match on the search path) or as ``schema.table``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

_USER_SCHEMA = (
    "{n}.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND {n}.nspname NOT LIKE 'pg\\_toast%' AND {n}.nspname NOT LIKE 'pg\\_temp%'"
)


def _user(alias: str) -> str:
    return _USER_SCHEMA.format(n=alias)


def _not_extension_member(oid: str, catalog: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass "
        f"AND e.objid = {oid} AND e.deptype = 'e')"
    )


# Referential action codes of pg_constraint.confdeltype / confupdtype.
ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
CONSTRAINT_KINDS = {
    "p": "primary key",
    "u": "unique",
    "c": "check",
    "f": "foreign key",
    "x": "exclusion",
    "t": "constraint trigger",
    "n": "not null",
}


@dataclass(frozen=True)
class Column:
    """One column, with its type resolved through domains and arrays."""

    name: str
    attnum: int
    type: str  # as format_type() prints it: "character varying(80)", "integer[]"
    type_name: str  # pg_type.typname of the (base) type: "varchar", "int4", "_int4", "my_enum"
    type_schema: str
    category: str  # pg_type.typcategory of the base type: N, S, D, B, U, A, E, ...
    not_null: bool
    default: str | None = None
    identity: str = ""  # "" / "always" / "by default"
    generated: bool = False  # GENERATED ALWAYS AS (...) STORED
    length: int | None = None  # varchar(n), char(n), bit(n)
    precision: int | None = None  # numeric(p, s), time/timestamp(p)
    scale: int | None = None
    element_type: str | None = None  # typname of an array's element type
    element_category: str | None = None
    dimensions: int = 0  # array dimensions as declared (0: not an array)
    enum_labels: tuple[str, ...] | None = None  # of the type or the array element
    domain: str | None = None  # the domain's name when the column's type is one
    domain_checks: tuple[str, ...] = ()  # the domain's CHECK expressions (VALUE ...)
    collation: str | None = None  # only when it differs from the type's default
    comment: str | None = None
    domain_not_null: bool = False  # the domain itself is NOT NULL (a NULL is rejected like attnotnull)
    domain_check_names: tuple[str, ...] = ()  # names of domain_checks, in the same order

    @property
    def is_array(self) -> bool:
        return self.element_type is not None

    @property
    def writable(self) -> bool:
        """Whether an INSERT may give a value (identity ALWAYS and generated may not)."""
        return self.identity != "always" and not self.generated


@dataclass(frozen=True)
class Constraint:
    """A table constraint; foreign-key fields are empty for the other kinds."""

    name: str
    kind: str  # "primary key", "unique", "check", "foreign key", "exclusion", ...
    columns: tuple[str, ...]
    definition: str  # pg_get_constraintdef()
    validated: bool = True
    deferrable: bool = False
    deferred: bool = False
    expression: str | None = None  # CHECK: pg_get_expr(conbin), canonical and parenthesised
    no_inherit: bool = False
    index: str | None = None  # the index that backs a PK/UNIQUE/EXCLUDE
    ref_schema: str | None = None
    ref_table: str | None = None
    ref_columns: tuple[str, ...] = ()
    on_delete: str | None = None  # "CASCADE", "SET NULL", ... (foreign keys)
    on_update: str | None = None
    match: str | None = None  # "SIMPLE", "FULL", "PARTIAL" (foreign keys)
    nulls_not_distinct: bool = False  # UNIQUE NULLS NOT DISTINCT (15+)

    @property
    def ref(self) -> str | None:
        return f"{self.ref_schema}.{self.ref_table}" if self.ref_table else None


@dataclass(frozen=True)
class Index:
    """An index; ``columns`` holds None for an expression key."""

    name: str
    method: str  # btree, hash, gin, gist, brin, spgist, ...
    columns: tuple[str | None, ...]  # key columns, in order
    attnums: tuple[int, ...]  # 0 for an expression key (compare these, never text)
    include: tuple[str, ...]  # INCLUDE (...) columns
    opclasses: tuple[str, ...]  # one per key column
    collations: tuple[int, ...]
    options: tuple[int, ...]  # pg_index.indoption per key column (DESC, NULLS FIRST bits)
    unique: bool
    primary: bool
    valid: bool
    ready: bool
    predicate: str | None  # WHERE ... of a partial index
    expressions: str | None  # pg_get_expr(indexprs) of expression keys
    definition: str  # pg_get_indexdef()
    constraint: str | None  # the constraint it backs, if any
    nulls_not_distinct: bool = False
    size_bytes: int = 0


@dataclass(frozen=True)
class Table:
    """A table (plain, partitioned, materialized view, view or foreign table)."""

    schema: str
    name: str
    kind: str  # "table", "partitioned table", "materialized view", "view", "foreign table"
    oid: int
    columns: tuple[Column, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    indexes: tuple[Index, ...] = ()
    row_estimate: float = -1.0  # pg_class.reltuples (-1: never analyzed, on 14+)
    size_bytes: int = 0
    rls_enabled: bool = False
    rls_forced: bool = False
    is_partition: bool = False
    parents: tuple[str, ...] = ()  # schema.table of inheritance / partition parents
    unlogged: bool = False
    comment: str | None = None
    partition_constraint: str | None = None  # of a partition: the rows its bounds admit (pg_get_partition_constraintdef)
    # enabled row triggers that run BEFORE INSERT: they may rewrite a row before it is
    # stored (a normalised name), so only an INSERT shows what the stored row collides with;
    # tgtype bits 1 | 2 | 4 = ROW, BEFORE, INSERT
    before_insert_triggers: tuple[str, ...] = ()

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.qualified} has no column {name!r}")

    def has_column(self, name: str) -> bool:
        return any(c.name == name for c in self.columns)

    def constraints_of(self, kind: str) -> tuple[Constraint, ...]:
        return tuple(c for c in self.constraints if c.kind == kind)

    @property
    def primary_key(self) -> Constraint | None:
        return next(iter(self.constraints_of("primary key")), None)

    @property
    def foreign_keys(self) -> tuple[Constraint, ...]:
        return self.constraints_of("foreign key")

    @property
    def checks(self) -> tuple[Constraint, ...]:
        return self.constraints_of("check")

    @property
    def uniques(self) -> tuple[Constraint, ...]:
        return self.constraints_of("unique")

    @property
    def unique_indexes(self) -> tuple[Index, ...]:
        """Unique indexes, those behind PK/UNIQUE constraints included."""
        return tuple(i for i in self.indexes if i.unique)


@dataclass(frozen=True)
class Sequence:
    schema: str
    name: str
    type: str
    last_value: int | None  # None: never used, or not readable by this role
    min_value: int
    max_value: int
    increment: int
    cycle: bool
    owned_by: str | None  # schema.table.column, for serial and identity columns


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    arguments: str
    kind: str  # "function", "procedure", "aggregate", "window"
    language: str
    security_definer: bool
    config: tuple[str, ...]  # proconfig: "search_path=...", ...


@dataclass(frozen=True)
class Policy:
    schema: str
    table: str
    name: str


@dataclass
class Catalog:
    """What ``read`` found; tables keyed by ``schema.name``."""

    tables: dict[str, Table] = field(default_factory=dict)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)  # schema.type -> labels
    sequences: tuple[Sequence, ...] = ()
    functions: tuple[Function, ...] = ()
    policies: tuple[Policy, ...] = ()
    search_path: tuple[str, ...] = ("public",)
    server_version: int = 0  # server_version_num, e.g. 150018
    encoding: str = "UTF8"  # server_encoding: which characters text columns can hold

    def __iter__(self) -> Iterator[Table]:
        return iter(self.tables.values())

    def __len__(self) -> int:
        return len(self.tables)

    def table(self, name: str) -> Table:
        """A table by ``schema.name``, or by bare name as the search path finds it."""
        if name in self.tables:
            return self.tables[name]
        if "." not in name:
            for schema in self.search_path:
                found = self.tables.get(f"{schema}.{name}")
                if found is not None:
                    return found
            matches = [t for t in self.tables.values() if t.name == name]
            if len(matches) == 1:
                return matches[0]
        raise KeyError(f"no table {name!r} in the database (tables: {', '.join(sorted(self.tables)) or 'none'})")

    def has_table(self, name: str) -> bool:
        try:
            self.table(name)
        except KeyError:
            return False
        return True

    def base_tables(self) -> list[Table]:
        """Tables that hold rows: plain and partitioned, not views or foreign tables."""
        return [t for t in self if t.kind in ("table", "partitioned table")]

    def referencing(self, table: Table) -> list[tuple[Table, Constraint]]:
        """Foreign keys of other tables (or this one) that point at ``table``."""
        return [
            (t, fk)
            for t in self
            for fk in t.foreign_keys
            if fk.ref_schema == table.schema and fk.ref_table == table.name
        ]


_RELKINDS = {
    "r": "table",
    "p": "partitioned table",
    "m": "materialized view",
    "v": "view",
    "f": "foreign table",
}

_QUERIES: dict[str, str] = {
    "settings": """
        SELECT current_setting('server_version_num')::int AS version,
               current_schemas(false) AS search_path,
               current_setting('server_encoding') AS encoding""",
    "tables": f"""
        SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind,
               c.reltuples::float8 AS row_estimate, c.relrowsecurity AS rls_enabled,
               c.relforcerowsecurity AS rls_forced, c.relispartition AS is_partition,
               c.relpersistence = 'u' AS unlogged,
               CASE WHEN c.relispartition THEN pg_get_partition_constraintdef(c.oid) END AS partition_constraint,
               CASE WHEN c.relkind IN ('r', 'p', 'm') THEN pg_table_size(c.oid) ELSE 0 END AS size_bytes,
               (SELECT d.description FROM pg_description d WHERE d.objoid = c.oid
                  AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0) AS comment,
               ARRAY(SELECT pn.nspname || '.' || p.relname FROM pg_inherits i
                     JOIN pg_class p ON p.oid = i.inhparent
                     JOIN pg_namespace pn ON pn.oid = p.relnamespace
                     WHERE i.inhrelid = c.oid ORDER BY i.inhseqno) AS parents,
               ARRAY(SELECT t.tgname FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal
                     AND t.tgenabled <> 'D' AND (t.tgtype & 7) = 7
                     ORDER BY 1) AS before_insert_triggers
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'm', 'v', 'f') AND {_user('n')}
          AND {_not_extension_member('c.oid', 'pg_class')}
        ORDER BY 2, 3""",
    "columns": f"""
        SELECT a.attrelid AS oid, a.attname AS name, a.attnum,
               format_type(a.atttypid, a.atttypmod) AS type,
               coalesce(bt.typname, t.typname) AS type_name,
               tn.nspname AS type_schema,
               coalesce(bt.typcategory, t.typcategory) AS category,
               a.attnotnull AS not_null,
               pg_get_expr(d.adbin, d.adrelid) AS default,
               a.attidentity AS identity, a.attgenerated AS generated,
               CASE WHEN t.typtype = 'd' THEN a.atttypid END AS domain_oid,
               CASE WHEN t.typtype = 'd' THEN t.typname END AS domain,
               t.typtype = 'd' AND t.typnotnull AS domain_not_null,
               coalesce(NULLIF(a.atttypmod, -1), t.typtypmod) AS typmod,
               a.attndims AS dimensions,
               et.typname AS element_type, et.typcategory AS element_category,
               coalesce(CASE WHEN et.typtype = 'e' THEN et.oid END,
                        CASE WHEN coalesce(bt.typtype, t.typtype) = 'e'
                             THEN coalesce(bt.oid, t.oid) END) AS enum_oid,
               CASE WHEN a.attcollation <> t.typcollation THEN co.collname END AS collation,
               (SELECT ds.description FROM pg_description ds WHERE ds.objoid = a.attrelid
                  AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = a.attnum) AS comment
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        JOIN pg_namespace tn ON tn.oid = t.typnamespace
        LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
        LEFT JOIN pg_type et ON et.oid = coalesce(bt.typelem, t.typelem)
             AND coalesce(bt.typcategory, t.typcategory) = 'A'
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        WHERE a.attnum > 0 AND NOT a.attisdropped
          AND c.relkind IN ('r', 'p', 'm', 'v', 'f') AND {_user('n')}
        ORDER BY a.attrelid, a.attnum""",
    "constraints": f"""
        SELECT con.conrelid AS oid, con.conname AS name, con.contype AS kind,
               pg_get_constraintdef(con.oid) AS definition, con.convalidated AS validated,
               con.condeferrable AS deferrable, con.condeferred AS deferred,
               con.connoinherit AS no_inherit,
               CASE WHEN con.contype = 'c' THEN pg_get_expr(con.conbin, con.conrelid) END AS expression,
               ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n
                     ORDER BY k.i) AS columns,
               ic.relname AS index,
               rn.nspname AS ref_schema, rc.relname AS ref_table,
               ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n
                     ORDER BY k.i) AS ref_columns,
               con.confdeltype AS on_delete, con.confupdtype AS on_update,
               con.confmatchtype AS match,
               coalesce(ix.indnullsnotdistinct, false) AS nulls_not_distinct
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_class ic ON ic.oid = con.conindid AND con.contype IN ('p', 'u', 'x')
        LEFT JOIN pg_index ix ON ix.indexrelid = con.conindid AND con.contype IN ('p', 'u')
        LEFT JOIN pg_class rc ON rc.oid = con.confrelid
        LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
        WHERE {_user('n')}
        ORDER BY con.conrelid, con.conname""",
    "indexes": f"""
        SELECT x.indrelid AS oid, i.relname AS name, am.amname AS method,
               x.indnkeyatts AS key_count,
               string_to_array(x.indkey::text, ' ')::int[] AS attnums,
               ARRAY(SELECT coalesce(a.attname, '') FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(n, i)
                     LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n AND k.n > 0
                     ORDER BY k.i) AS names,
               ARRAY(SELECT oc.opcname FROM unnest(x.indclass::oid[]) WITH ORDINALITY k(o, i)
                     JOIN pg_opclass oc ON oc.oid = k.o ORDER BY k.i) AS opclasses,
               string_to_array(x.indcollation::text, ' ')::oid[]::int8[] AS collations,
               string_to_array(x.indoption::text, ' ')::int[] AS options,
               x.indisunique AS unique, x.indisprimary AS primary,
               x.indisvalid AS valid, x.indisready AS ready,
               pg_get_expr(x.indpred, x.indrelid) AS predicate,
               pg_get_expr(x.indexprs, x.indrelid) AS expressions,
               pg_get_indexdef(x.indexrelid) AS definition,
               (SELECT con.conname FROM pg_constraint con WHERE con.conindid = x.indexrelid
                  AND con.conrelid = x.indrelid AND con.contype IN ('p', 'u', 'x')) AS constraint,
               coalesce(x.indnullsnotdistinct, false) AS nulls_not_distinct,
               pg_relation_size(x.indexrelid) AS size_bytes
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_am am ON am.oid = i.relam
        WHERE {_user('n')} AND {_not_extension_member('t.oid', 'pg_class')}
        ORDER BY x.indrelid, i.relname""",
    "enums": f"""
        SELECT t.oid, n.nspname AS schema, t.typname AS name,
               array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE {_user('n')}
        GROUP BY t.oid, n.nspname, t.typname""",
    "domain_checks": f"""
        SELECT con.contypid AS oid, pg_get_expr(con.conbin, 0) AS expression, con.conname AS name
        FROM pg_constraint con JOIN pg_type t ON t.oid = con.contypid
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE con.contype = 'c' AND {_user('n')}
        ORDER BY con.contypid, con.conname""",
    "sequences": f"""
        SELECT n.nspname AS schema, c.relname AS name, format_type(s.seqtypid, NULL) AS type,
               CASE WHEN has_sequence_privilege(c.oid, 'SELECT')
                    THEN pg_sequence_last_value(c.oid) END AS last_value,
               s.seqmin AS min_value, s.seqmax AS max_value, s.seqincrement AS increment,
               s.seqcycle AS cycle,
               (SELECT tn.nspname || '.' || tc.relname || '.' || a.attname
                FROM pg_depend d
                JOIN pg_class tc ON tc.oid = d.refobjid
                JOIN pg_namespace tn ON tn.oid = tc.relnamespace
                JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                LIMIT 1) AS owned_by
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_user('n')} AND {_not_extension_member('c.oid', 'pg_class')}
        ORDER BY 1, 2""",
    "functions": f"""
        SELECT n.nspname AS schema, p.proname AS name,
               pg_get_function_identity_arguments(p.oid) AS arguments,
               CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                    WHEN 'w' THEN 'window' ELSE 'function' END AS kind,
               l.lanname AS language, p.prosecdef AS security_definer,
               coalesce(p.proconfig, ARRAY[]::text[]) AS config
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_language l ON l.oid = p.prolang
        WHERE {_user('n')} AND {_not_extension_member('p.oid', 'pg_proc')}
        ORDER BY 1, 2, 3""",
    "policies": f"""
        SELECT n.nspname AS schema, c.relname AS table, p.polname AS name
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_user('n')}
        ORDER BY 1, 2, 3""",
}

# Before 15 there is no NULLS NOT DISTINCT: read it as false.
_PRE_15 = {"coalesce(ix.indnullsnotdistinct, false)": "false", "coalesce(x.indnullsnotdistinct, false)": "false"}


def _queries(version: int) -> dict[str, str]:
    if version >= 150000:
        return _QUERIES
    queries = {}
    for name, text in _QUERIES.items():
        for old, new in _PRE_15.items():
            text = text.replace(old, new)
        queries[name] = text
    return queries


def read(conn: psycopg.Connection[Any], schemas: tuple[str, ...] | None = None) -> Catalog:
    """Read the schema of the database ``conn`` is connected to.

    ``schemas`` limits the tables to those schemas (default: every user schema).
    Only SELECTs, so it works inside a ``READ ONLY`` transaction.
    """
    version = int(conn.info.server_version)
    rows: dict[str, list[dict[str, Any]]] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        for name, query in _queries(version).items():
            cur.execute(query.encode(), prepare=False)
            rows[name] = cur.fetchall()
    return _assemble(rows, schemas)


def _typmod_facts(type_name: str, typmod: int | None) -> dict[str, int | None]:
    """Length, precision and scale from a type modifier (the same rules as format_type)."""
    if typmod is None or typmod < 0:
        return {}
    if type_name in ("varchar", "bpchar", "_varchar", "_bpchar"):
        return {"length": typmod - 4}
    if type_name in ("bit", "varbit", "_bit", "_varbit"):
        return {"length": typmod}
    if type_name in ("numeric", "_numeric"):
        value = typmod - 4
        return {"precision": (value >> 16) & 0xFFFF, "scale": value & 0xFFFF}
    if type_name in ("timestamp", "timestamptz", "time", "timetz", "_timestamp", "_timestamptz", "_time", "_timetz"):
        return {"precision": typmod}
    return {}


def _assemble(rows: dict[str, list[dict[str, Any]]], schemas: tuple[str, ...] | None) -> Catalog:
    enums = {row["oid"]: tuple(row["labels"]) for row in rows["enums"]}
    domain_checks: dict[int, list[str]] = {}
    domain_check_names: dict[int, list[str]] = {}
    for row in rows["domain_checks"]:
        domain_checks.setdefault(row["oid"], []).append(row["expression"])
        domain_check_names.setdefault(row["oid"], []).append(row["name"])

    columns: dict[int, list[Column]] = {}
    for row in rows["columns"]:
        element = row["element_type"]
        columns.setdefault(row["oid"], []).append(
            Column(
                name=row["name"],
                attnum=row["attnum"],
                type=row["type"],
                type_name=row["type_name"],
                type_schema=row["type_schema"],
                category=row["category"],
                not_null=row["not_null"],
                default=row["default"],
                identity={"a": "always", "d": "by default"}.get(row["identity"], ""),
                generated=row["generated"] == "s",
                element_type=element,
                element_category=row["element_category"],
                dimensions=row["dimensions"] or (1 if element else 0),
                enum_labels=enums.get(row["enum_oid"]) if row["enum_oid"] else None,
                domain=row["domain"],
                domain_checks=tuple(domain_checks.get(row["domain_oid"], ())),
                collation=row["collation"],
                comment=row["comment"],
                domain_not_null=bool(row["domain_not_null"]),
                domain_check_names=tuple(domain_check_names.get(row["domain_oid"], ())),
                **_typmod_facts(row["type_name"], row["typmod"]),  # type: ignore[arg-type]
            )
        )

    constraints: dict[int, list[Constraint]] = {}
    for row in rows["constraints"]:
        is_fk = row["kind"] == "f"
        constraints.setdefault(row["oid"], []).append(
            Constraint(
                name=row["name"],
                kind=CONSTRAINT_KINDS.get(row["kind"], row["kind"]),
                columns=tuple(row["columns"]),
                definition=row["definition"],
                validated=row["validated"],
                deferrable=row["deferrable"],
                deferred=row["deferred"],
                expression=row["expression"],
                no_inherit=row["no_inherit"],
                index=row["index"],
                ref_schema=row["ref_schema"] if is_fk else None,
                ref_table=row["ref_table"] if is_fk else None,
                ref_columns=tuple(row["ref_columns"]) if is_fk else (),
                on_delete=ACTIONS.get(row["on_delete"]) if is_fk else None,
                on_update=ACTIONS.get(row["on_update"]) if is_fk else None,
                match={"s": "SIMPLE", "f": "FULL", "p": "PARTIAL"}.get(row["match"]) if is_fk else None,
                nulls_not_distinct=row["nulls_not_distinct"],
            )
        )

    indexes: dict[int, list[Index]] = {}
    for row in rows["indexes"]:
        keys = row["key_count"]
        names = [n or None for n in row["names"]]
        indexes.setdefault(row["oid"], []).append(
            Index(
                name=row["name"],
                method=row["method"],
                columns=tuple(names[:keys]),
                attnums=tuple(row["attnums"][:keys]),
                include=tuple(n for n in names[keys:] if n),
                opclasses=tuple(row["opclasses"]),
                collations=tuple(row["collations"] or ()),
                options=tuple(row["options"] or ()),
                unique=row["unique"],
                primary=row["primary"],
                valid=row["valid"],
                ready=row["ready"],
                predicate=row["predicate"],
                expressions=row["expressions"],
                definition=row["definition"],
                constraint=row["constraint"],
                nulls_not_distinct=row["nulls_not_distinct"],
                size_bytes=row["size_bytes"],
            )
        )

    catalog = Catalog()
    settings = rows["settings"][0]
    catalog.server_version = settings["version"]
    catalog.search_path = tuple(settings["search_path"]) or ("public",)
    catalog.encoding = settings["encoding"]
    for row in rows["tables"]:
        if schemas is not None and row["schema"] not in schemas:
            continue
        oid = row["oid"]
        table = Table(
            schema=row["schema"],
            name=row["name"],
            kind=_RELKINDS[row["kind"]],
            oid=oid,
            columns=tuple(columns.get(oid, ())),
            constraints=tuple(constraints.get(oid, ())),
            indexes=tuple(indexes.get(oid, ())),
            row_estimate=row["row_estimate"],
            size_bytes=row["size_bytes"],
            rls_enabled=row["rls_enabled"],
            rls_forced=row["rls_forced"],
            is_partition=row["is_partition"],
            parents=tuple(row["parents"]),
            unlogged=row["unlogged"],
            comment=row["comment"],
            partition_constraint=row["partition_constraint"],
            before_insert_triggers=tuple(row["before_insert_triggers"]),
        )
        catalog.tables[table.qualified] = table
    catalog.enums = {f"{row['schema']}.{row['name']}": tuple(row["labels"]) for row in rows["enums"]}
    catalog.sequences = tuple(Sequence(**row) for row in rows["sequences"])
    catalog.functions = tuple(Function(**{**row, "config": tuple(row["config"])}) for row in rows["functions"])
    catalog.policies = tuple(Policy(**row) for row in rows["policies"])
    return catalog
