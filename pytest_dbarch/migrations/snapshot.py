"""A snapshot of the live schema, read from PostgreSQL's own catalog.

Autogenerate-style comparisons only see what SQLAlchemy models can express; a downgrade
that leaves a view, a function, an enum type, a grant or a comment behind slips past
them. The catalog sees everything, and PostgreSQL renders each object canonically
(``pg_get_constraintdef``, ``pg_get_indexdef``, ``pg_get_viewdef``,
``pg_get_functiondef``, ``pg_get_triggerdef``), so two snapshots compare as plain data.

A snapshot maps ``(kind, name)`` to a few named fields. Objects that belong to an
extension, and the migration tool's version table, are left out. One query per kind of
object, whatever the number of tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_USER_NS = (
    "{ns}.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND {ns}.nspname NOT LIKE 'pg\\_toast%' AND {ns}.nspname NOT LIKE 'pg\\_temp%'"
)


def _user(ns: str) -> str:
    return _USER_NS.format(ns=ns)


def _not_extension_member(oid: str, catalog: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass "
        f"AND e.objid = {oid} AND e.deptype = 'e')"
    )


def _comment(oid: str, catalog: str, subid: str = "0") -> str:
    """A scalar subquery, not obj_description(): that SQL function costs a query per row."""
    return (
        f"(SELECT d.description FROM pg_description d WHERE d.objoid = {oid} "
        f"AND d.classoid = '{catalog}'::regclass AND d.objsubid = {subid})"
    )


def _acl(column: str, kind: str, owner: str) -> str:
    """An ACL as sorted text, NULL read as the owner's default, so grant order and an
    explicit-but-default ACL do not count as differences."""
    return (
        f"(SELECT string_agg(a::text, ' ' ORDER BY a::text) FROM "
        f"unnest(coalesce({column}, acldefault({kind}, {owner}))) a)"
    )


# An index on plain columns with built-in operator classes, collations and access method:
# ``pg_get_indexdef`` (the costliest part of a snapshot on the server) prints nothing but
# what its own catalog rows (pg_index, its pg_class row), its table's pg_class row, its
# schema and its table's column names hold. A row version is its oid and xmin (every
# change to a catalog row writes a new version with the writing transaction's id, and
# oids and transaction ids are never reused within a run), so such an index is rendered
# once per version of those rows and column names (see _index_definitions). Rows that
# VACUUM froze show xmin 2 for every version: rendered every time. Expressions,
# predicates and user-defined classes can print other objects' names: rendered every time.
_PLAIN_INDEX = (
    "(x.indexprs IS NULL AND x.indpred IS NULL AND i.relam < 16384 "
    "AND NOT EXISTS (SELECT 1 FROM unnest(x.indclass::oid[]) o WHERE o >= 16384) "
    "AND NOT EXISTS (SELECT 1 FROM unnest(x.indcollation::oid[]) o WHERE o >= 16384) "
    "AND '2'::xid NOT IN (x.xmin, i.xmin, t.xmin, n.xmin))"
)

_RELATION_ACL_KIND = "(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::\"char\""

RELKINDS = {
    "r": "table",
    "p": "table",
    "v": "view",
    "m": "materialized view",
    "S": "sequence",
    "f": "foreign table",
    "c": "composite type",
}

QUERIES: dict[str, str] = {
    "relations": f"""
        SELECT n.nspname, c.relname, c.relkind, c.relpersistence, c.relrowsecurity,
               c.relforcerowsecurity, array_to_string(c.reloptions, ', '),
               {_acl('c.relacl', _RELATION_ACL_KIND, 'c.relowner')},
               CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END,
               CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
               CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
               {_comment('c.oid', 'pg_class')}, pg_get_userbyid(c.relowner)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND {_user('n')}
          AND {_not_extension_member('c.oid', 'pg_class')}
        ORDER BY 1, 2""",
    "columns": f"""
        SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
               CASE WHEN a.attcollation <> t.typcollation THEN co.collname END,
               {_comment('c.oid', 'pg_class', 'a.attnum')},
               CASE WHEN a.attacl IS NOT NULL THEN  -- most columns have none: no aggregate for them
                   (SELECT string_agg(x::text, ' ' ORDER BY x::text) FROM unnest(a.attacl) x) END
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        WHERE a.attnum > 0 AND NOT a.attisdropped
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND {_user('n')}
          AND {_not_extension_member('c.oid', 'pg_class')}
        ORDER BY 1, 2, a.attnum""",
    "constraints": f"""
        SELECT n.nspname, coalesce(c.relname, ty.typname), con.conname, con.contype,
               pg_get_constraintdef(con.oid), con.convalidated,
               {_comment('con.oid', 'pg_constraint')}, c.relname IS NULL
        FROM pg_constraint con
        JOIN pg_namespace n ON n.oid = con.connamespace
        LEFT JOIN pg_class c ON c.oid = con.conrelid
        LEFT JOIN pg_type ty ON ty.oid = con.contypid
        WHERE {_user('n')}
        ORDER BY 1, 2, 3""",
    "indexes": f"""
        SELECT n.nspname, t.relname, i.relname,
               CASE WHEN NOT {_PLAIN_INDEX} THEN pg_get_indexdef(i.oid) END, x.indisvalid,
               {_comment('i.oid', 'pg_class')},
               CASE WHEN {_PLAIN_INDEX} THEN concat_ws(' ', i.oid, x.xmin, i.xmin, t.xmin, n.xmin) END
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = i.relnamespace
        WHERE {_user('n')} AND {_not_extension_member('t.oid', 'pg_class')}
        ORDER BY 1, 2, 3""",
    "sequences": f"""
        SELECT n.nspname, c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
               s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
               (SELECT tn.nspname || '.' || tc.relname || '.' || a.attname
                  || CASE d.deptype WHEN 'i' THEN ' (identity)' ELSE '' END
                FROM pg_depend d
                JOIN pg_class tc ON tc.oid = d.refobjid
                JOIN pg_namespace tn ON tn.oid = tc.relnamespace
                JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                LIMIT 1)
        FROM pg_sequence s
        JOIN pg_class c ON c.oid = s.seqrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_user('n')} AND {_not_extension_member('c.oid', 'pg_class')}
        ORDER BY 1, 2""",
    "types": f"""
        SELECT n.nspname, t.typname, t.typtype,
               (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                FROM pg_enum e WHERE e.enumtypid = t.oid),
               CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
               t.typnotnull, t.typdefault, {_comment('t.oid', 'pg_type')},
               {_acl('t.typacl', "'T'", 't.typowner')}
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype IN ('e', 'd', 'r') AND {_user('n')}
          AND {_not_extension_member('t.oid', 'pg_type')}
        ORDER BY 1, 2""",
    "functions": f"""
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), p.prokind,
               CASE WHEN p.prokind IN ('f', 'p', 'w') THEN pg_get_functiondef(p.oid) END,
               {_comment('p.oid', 'pg_proc')}, {_acl('p.proacl', "'f'", 'p.proowner')}
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE {_user('n')} AND {_not_extension_member('p.oid', 'pg_proc')}
        ORDER BY 1, 2, 3""",
    "triggers": f"""
        SELECT n.nspname, c.relname, tg.tgname, pg_get_triggerdef(tg.oid), tg.tgenabled,
               {_comment('tg.oid', 'pg_trigger')}
        FROM pg_trigger tg
        JOIN pg_class c ON c.oid = tg.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT tg.tgisinternal AND {_user('n')}
        ORDER BY 1, 2, 3""",
    "policies": f"""
        SELECT n.nspname, c.relname, p.polname, p.polcmd, p.polpermissive,
               (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r) END, ', '
                                  ORDER BY 1) FROM unnest(p.polroles) r),
               pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
        FROM pg_policy p
        JOIN pg_class c ON c.oid = p.polrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_user('n')}
        ORDER BY 1, 2, 3""",
    "schemas": f"""
        SELECT n.nspname, pg_get_userbyid(n.nspowner), {_acl('n.nspacl', "'n'", 'n.nspowner')},
               {_comment('n.oid', 'pg_namespace')}
        FROM pg_namespace n
        WHERE {_user('n')} AND {_not_extension_member('n.oid', 'pg_namespace')}
        ORDER BY 1""",
    "extensions": """
        SELECT e.extname, e.extversion, n.nspname
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        ORDER BY 1""",
    "default_privileges": """
        SELECT pg_get_userbyid(d.defaclrole), coalesce(n.nspname, ''), d.defaclobjtype,
               (SELECT string_agg(a::text, ' ' ORDER BY a::text) FROM unnest(d.defaclacl) a)
        FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
        ORDER BY 1, 2, 3""",
    "event_triggers": """
        SELECT evtname, evtevent, evtfoid::regproc::text, evtenabled,
               array_to_string(evttags, ', ')
        FROM pg_event_trigger ORDER BY 1""",
}

_CONSTRAINT_KINDS = {"p": "primary key", "f": "foreign key", "u": "unique", "c": "check", "x": "exclusion", "t": "constraint trigger", "n": "not-null constraint"}
_IDENTITY = {"a": "generated always as identity", "d": "generated by default as identity"}


def qualified(schema: str, name: str) -> str:
    """``name`` for the public schema (what reviewers write), ``schema.name`` otherwise."""
    return name if schema == "public" else f"{schema}.{name}"


@dataclass
class Snapshot:
    """The schema as ``(kind, name) -> {field: value}``; empty fields are left out."""

    objects: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def add(self, kind: str, name: str, /, **fields: Any) -> None:
        self.objects[(kind, name)] = {k: _text(v) for k, v in fields.items() if _text(v)}

    def tables(self) -> set[str]:
        return {name for kind, name in self.objects if kind == "table"}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Snapshot) and self.objects == other.objects

    def __len__(self) -> int:
        return len(self.objects)


def _text(value: Any) -> str:
    if value is None or value is False:
        return ""
    if value is True:
        return "yes"
    return str(value).strip()


def take(conn: Any, exclude: Iterable[str] = ()) -> Snapshot:
    """Read the schema over a psycopg connection, leaving its transaction state as it was.

    ``exclude`` names relations to leave out with everything on them (the version table).
    """
    import psycopg

    idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    try:
        with conn.pipeline():  # one round trip for all the queries
            cursors = {kind: conn.cursor().execute(query, prepare=True) for kind, query in QUERIES.items()}
        rows = {kind: cursor.fetchall() for kind, cursor in cursors.items()}
        # Inside a transaction block, rows it changed twice show the same xmin: no cache there.
        known = _INDEX_DEFINITIONS if idle else {}
        rows["indexes"] = _index_definitions(conn, rows["indexes"], rows["columns"], known)
    finally:
        if idle and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
    return _built(rows, frozenset(exclude))


# The last few (catalog rows, snapshot) pairs: a round trip that restores the schema reads
# the very rows of an earlier snapshot (after the downgrade those of before the upgrade,
# after upgrading again those of the first upgrade); comparing the rows is far cheaper
# than building the snapshot again from them.
_RECENT: list[tuple[dict[str, list[tuple[Any, ...]]], frozenset[str], Snapshot]] = []


def _built(rows: dict[str, list[tuple[Any, ...]]], exclude: frozenset[str]) -> Snapshot:
    for seen, excluded, snap in _RECENT:
        if excluded == exclude and seen == rows:
            return Snapshot(dict(snap.objects))
    snap = build(rows, set(exclude))
    _RECENT.insert(0, (rows, exclude, snap))
    del _RECENT[4:]
    return Snapshot(dict(snap.objects))


# (row versions, the table's column names) of a plain index -> pg_get_indexdef's text.
_INDEX_DEFINITIONS: dict[tuple[str, tuple[str, ...]], str] = {}


def _index_definitions(
    conn: Any, rows: list[tuple[Any, ...]], columns: list[tuple[Any, ...]], known: dict[Any, str]
) -> list[tuple[Any, ...]]:
    """The index rows with every definition filled in (see _PLAIN_INDEX): ``known`` ones
    from the cache, new ones rendered in one more query, sent only when an index changed."""
    names: dict[tuple[str, str], list[str]] = {}
    for column in columns:
        names.setdefault((column[0], column[1]), []).append(column[2])
    keys = [
        (row[6], tuple(names.get((row[0], row[1]), ()))) if row[3] is None else None for row in rows
    ]
    missing = {key for key in keys if key is not None and key not in known}
    if missing:
        if len(known) > 100_000:
            known.clear()
        oids = {key[0].split(" ", 1)[0]: key for key in missing}
        for oid, definition in conn.execute(
            "SELECT o::text, pg_get_indexdef(o) FROM unnest(%s::oid[]) o", (list(oids),)
        ).fetchall():
            known[oids[oid]] = definition
    return [row[:6] if key is None else (*row[:3], known[key], *row[4:6]) for row, key in zip(rows, keys)]

def _fields(**fields: Any) -> dict[str, str]:
    out = {}
    for k, v in fields.items():
        text = _text(v)
        if text:
            out[k] = text
    return out


# Catalog row -> (object key, fields), shared by every snapshot of the process: a walk
# reads the same catalog rows three times per revision and most never change, so each
# distinct row is turned into its object once. The field dicts are never mutated.
_ROWS: dict[tuple[Any, ...], Any] = {}
_MISS = object()


def _cached(kind: str, row: tuple[Any, ...], make: Any, extra: Any = None) -> Any:
    key = (kind, row, extra)
    hit = _ROWS.get(key, _MISS)
    if hit is _MISS:
        if len(_ROWS) > 400_000:
            _ROWS.clear()
        hit = _ROWS[key] = make(*row)
    return hit


def _column(schema, table, name, typ, notnull, default, identity, generated, collation, comment, acl):  # type: ignore[no-untyped-def]
    owner = qualified(schema, table)
    fields: dict[str, Any] = {"type": typ, "not null": notnull, "collation": collation, "comment": comment, "privileges": acl}
    if generated:
        fields["generated"] = f"always as ({default}) stored"
    else:
        fields["default"] = default
    fields["identity"] = _IDENTITY.get(identity or "", "")
    return owner, ("column", f"{owner}.{name}"), _fields(**fields)


def _relation(columns: str):  # type: ignore[no-untyped-def]
    def make(schema, name, relkind, persistence, rls, force_rls, options, acl, viewdef, partkey, bound, comment, owner):  # type: ignore[no-untyped-def]
        full = qualified(schema, name)
        return full, (RELKINDS[relkind], full), _fields(
            columns=columns if relkind != "S" else "",
            unlogged=persistence == "u",
            **{"row level security": rls, "forced row level security": force_rls},
            options=options,
            privileges=acl,
            definition=viewdef,
            **{"partitioned by": partkey, "partition of": bound},
            comment=comment,
            owner=owner,
        )

    return make


def _constraint(schema, table, name, contype, definition, validated, comment, on_domain):  # type: ignore[no-untyped-def]
    owner = qualified(schema, table)
    return owner, ("constraint", f"{name} on {'domain ' if on_domain else ''}{owner}"), _fields(
        kind=_CONSTRAINT_KINDS.get(contype, contype),
        definition=definition,
        **{"not validated": not validated},
        comment=comment,
    )


def _index(schema, table, name, definition, valid, comment):  # type: ignore[no-untyped-def]
    return qualified(schema, table), ("index", qualified(schema, name)), _fields(
        definition=definition, invalid=not valid, comment=comment
    )


def _sequence(schema, name, typ, start, increment, minimum, maximum, cache, cycle, owned):  # type: ignore[no-untyped-def]
    extra = {
        "as": typ,
        "start": str(start),
        "increment": str(increment),
        "min": str(minimum),
        "max": str(maximum),
        "cache": str(cache),
        "cycle": "yes" if cycle else "",
        "owned by": owned or "",
    }
    return ("sequence", qualified(schema, name)), {k: v for k, v in extra.items() if v}


_TYPE_KINDS = {"e": "enum type", "d": "domain", "r": "range type"}


def _type(schema, name, typtype, labels, base, notnull, default, comment, acl):  # type: ignore[no-untyped-def]
    return (_TYPE_KINDS[typtype], qualified(schema, name)), _fields(
        labels=labels, type=base, **{"not null": notnull}, default=default, comment=comment, privileges=acl
    )


def _function(schema, name, args, prokind, definition, comment, acl):  # type: ignore[no-untyped-def]
    kind = {"p": "procedure", "a": "aggregate", "w": "window function"}.get(prokind, "function")
    # The body is kept as written: a downgrade that re-creates it with other line breaks
    # or indentation restores the same function.
    body = " ".join(definition.split()) if definition else definition
    return (kind, f"{qualified(schema, name)}({args})"), _fields(definition=body, comment=comment, privileges=acl)


def _trigger(schema, table, name, definition, enabled, comment):  # type: ignore[no-untyped-def]
    return ("trigger", f"{name} on {qualified(schema, table)}"), _fields(definition=definition, enabled=enabled, comment=comment)


def _policy(schema, table, name, cmd, permissive, roles, using, check):  # type: ignore[no-untyped-def]
    return ("policy", f"{name} on {qualified(schema, table)}"), _fields(
        command={"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}.get(cmd, cmd),
        restrictive=not permissive,
        roles=roles,
        using=using,
        **{"with check": check},
    )


def _schema(name, owner, acl, comment):  # type: ignore[no-untyped-def]
    return ("schema", name), _fields(owner=owner, privileges=acl, comment=comment)


def _extension(name, version, schema):  # type: ignore[no-untyped-def]
    return ("extension", name), _fields(version=version, schema=schema)


def _default_privileges(role, schema, objtype, acl):  # type: ignore[no-untyped-def]
    return ("default privileges", f"for {role}{' in ' + schema if schema else ''} on {objtype}"), _fields(privileges=acl)


def _event_trigger(name, event, function, enabled, tags):  # type: ignore[no-untyped-def]
    return ("event trigger", name), _fields(event=event, function=function, enabled=enabled, tags=tags)


_PLAIN = {
    "types": _type,
    "functions": _function,
    "triggers": _trigger,
    "policies": _policy,
    "schemas": _schema,
    "extensions": _extension,
    "default_privileges": _default_privileges,
    "event_triggers": _event_trigger,
}


def build(rows: dict[str, list[tuple[Any, ...]]], exclude: set[str]) -> Snapshot:
    snap = Snapshot()
    objects = snap.objects
    skip = {qualified("public", e) if "." not in e else e for e in exclude if e}
    columns: dict[str, list[str]] = {}
    for row in rows["columns"]:
        owner, key, fields = _cached("columns", row, _column)
        if owner in skip:
            continue
        columns.setdefault(owner, []).append(row[2])
        objects[key] = fields
    for row in rows["relations"]:
        full = qualified(row[0], row[1])
        if full in skip:
            continue
        listed = ", ".join(columns.get(full, []))
        _, key, fields = _cached("relations", row, _relation(listed), listed)
        objects[key] = fields
    for kind, make in (("constraints", _constraint), ("indexes", _index)):
        for row in rows[kind]:
            owner, key, fields = _cached(kind, row, make)
            if owner not in skip:
                objects[key] = fields
    for row in rows["sequences"]:
        key, extra = _cached("sequences", row, _sequence)
        if key in objects:
            objects[key] = {**objects[key], **extra}
    for kind, make in _PLAIN.items():
        for row in rows[kind]:
            key, fields = _cached(kind, row, make)
            objects[key] = fields
    return snap


# --- change-scoped snapshots ---------------------------------------------------------
#
# A walk takes three snapshots per revision, and a step usually touches one or two
# relations. Every change to a catalog row writes a new row version stamped with the
# writing transaction's id (xmin); oids and transaction ids are not reused within a run.
# So a relation whose own catalog rows (pg_class, columns, defaults, constraints,
# indexes, triggers, policies, rewrite rules, sequence, comments, ownership and extension
# links) have the same count and xmin sum as at the last read (a new version always has
# a larger xmin than the one it replaces) renders exactly as it did then, as long as no
# object it names was renamed, moved or shadowed. RELATION_MARKS reads those marks for
# every relation (one scan per catalog; RELATIONS reads their names); OTHER_MARKS lists
# the objects outside relations (types, enum labels, functions, schemas, extensions,
# roles, ...) with their names. Only the kinds of rows whose catalogs changed are read
# again, for the changed relations only; any rename or move, any change to schemas,
# extensions, roles, operators, collations, languages or casts, and any new or dropped
# relation, type or function whose name exists elsewhere (it can change how PostgreSQL
# qualifies other objects' names) makes a full read.

RELATIONS = f"""
SELECT c.oid, n.nspname, c.relname, c.xmin::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid >= 16384 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND {_user('n')}"""

# (relation, catalog, rows, sum of their xmins): one set-based scan per catalog, grouped
# by the relation the rows belong to (comments by the object's relation).
RELATION_MARKS = """
SELECT conrelid, 1, count(*), sum(xmin::text::int8) FROM pg_constraint WHERE conrelid >= 16384 GROUP BY 1
UNION ALL SELECT x.indrelid, 2, count(*), sum(x.xmin::text::int8 + i.xmin::text::int8) + sum(x.indisvalid::int)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid >= 16384 GROUP BY 1
UNION ALL SELECT tgrelid, 3, count(*), sum(xmin::text::int8) FROM pg_trigger
WHERE tgrelid >= 16384 AND NOT tgisinternal GROUP BY 1
UNION ALL SELECT polrelid, 4, count(*), sum(xmin::text::int8) FROM pg_policy GROUP BY 1
UNION ALL SELECT ev_class, 5, count(*), sum(xmin::text::int8) FROM pg_rewrite WHERE ev_class >= 16384 GROUP BY 1
UNION ALL SELECT adrelid, 6, count(*), sum(xmin::text::int8) FROM pg_attrdef WHERE adrelid >= 16384 GROUP BY 1
UNION ALL SELECT seqrelid, 7, count(*), sum(xmin::text::int8) FROM pg_sequence WHERE seqrelid >= 16384 GROUP BY 1
UNION ALL SELECT a.attrelid, 8, count(*), sum(a.xmin::text::int8)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND a.attrelid >= 16384 AND a.attnum > 0 GROUP BY 1
UNION ALL SELECT objid, 9, count(*), sum(xmin::text::int8) FROM pg_depend
WHERE classid = 'pg_class'::regclass AND objid >= 16384
  AND (deptype = 'e' OR deptype IN ('a', 'i') AND objid IN (SELECT seqrelid FROM pg_sequence))  -- owned by
GROUP BY 1
UNION ALL SELECT coalesce(k.conrelid, x.indrelid, t.tgrelid, d.objoid),
       CASE WHEN k.oid IS NOT NULL THEN 12 WHEN x.indexrelid IS NOT NULL THEN 13 WHEN t.oid IS NOT NULL THEN 14
            WHEN d.objsubid = 0 THEN 10 ELSE 11 END, count(*), sum(d.xmin::text::int8)
FROM pg_description d
LEFT JOIN pg_constraint k ON d.classoid = 'pg_constraint'::regclass AND k.oid = d.objoid
LEFT JOIN pg_index x ON d.classoid = 'pg_class'::regclass AND x.indexrelid = d.objoid
LEFT JOIN pg_trigger t ON d.classoid = 'pg_trigger'::regclass AND t.oid = d.objoid
WHERE d.objoid >= 16384 AND d.classoid IN ('pg_class'::regclass, 'pg_constraint'::regclass, 'pg_trigger'::regclass)
GROUP BY 1, 2"""

# The kinds of rows to read again for a relation whose marks changed in a catalog (0: its
# own pg_class row; the numbers are RELATION_MARKS' second column).
_KINDS_OF = {
    0: ("relations",), 1: ("constraints",), 2: ("indexes", "columns"), 3: ("triggers",), 4: ("policies",),
    5: ("relations",), 6: ("columns",), 7: ("sequences",), 8: ("columns",),
    9: ("relations", "columns", "indexes", "sequences"),  # owned by, extension membership (these kinds filter by it)
    10: ("relations",), 11: ("columns",), 12: ("constraints",), 13: ("indexes", "columns"), 14: ("triggers",),
}

# (kind, oid, qualified name, row version, the name exists elsewhere)
OTHER_MARKS = """
SELECT 'type', t.oid::text, t.typnamespace::text || '.' || t.typname, t.xmin::text,
       EXISTS (SELECT 1 FROM pg_type q WHERE q.typname = t.typname AND q.oid <> t.oid)
FROM pg_type t WHERE t.oid >= 16384 AND t.typrelid = 0 AND t.typcategory <> 'A'
UNION ALL SELECT 'enum label', e.oid::text, e.enumtypid::text || '.' || e.enumlabel, e.xmin::text, false
FROM pg_enum e WHERE e.oid >= 16384
UNION ALL SELECT 'function', p.oid::text, p.pronamespace::text || '.' || p.proname, p.xmin::text,
       EXISTS (SELECT 1 FROM pg_proc q WHERE q.proname = p.proname AND q.oid <> p.oid)
FROM pg_proc p WHERE p.oid >= 16384
UNION ALL SELECT 'domain constraint', k.oid::text, k.conname, k.xmin::text, false
FROM pg_constraint k WHERE k.contypid <> 0
UNION ALL SELECT 'comment', concat(d.objoid, '/', d.classoid, '/', d.objsubid), '', d.xmin::text, false
FROM pg_description d WHERE d.objoid >= 16384 AND d.classoid NOT IN ('pg_class'::regclass, 'pg_trigger'::regclass)
UNION ALL SELECT 'default privileges', d.oid::text, '', d.xmin::text, false FROM pg_default_acl d
UNION ALL SELECT 'event trigger', v.oid::text, v.evtname, v.xmin::text, false FROM pg_event_trigger v
UNION ALL SELECT 'schema', n.oid::text, n.nspname, n.xmin::text, false FROM pg_namespace n
UNION ALL SELECT 'extension', x.oid::text, x.extname, x.xmin::text, false FROM pg_extension x
UNION ALL SELECT 'role', r.oid::text, r.rolname, '', false FROM pg_roles r
UNION ALL SELECT 'operator', o.oid::text, o.oprname, o.xmin::text, false FROM pg_operator o WHERE o.oid >= 16384
UNION ALL SELECT 'operator class', o.oid::text, o.opcname, o.xmin::text, false FROM pg_opclass o WHERE o.oid >= 16384
UNION ALL SELECT 'collation', o.oid::text, o.collname, o.xmin::text, false FROM pg_collation o WHERE o.oid >= 16384
UNION ALL SELECT 'language', o.oid::text, o.lanname, o.xmin::text, false FROM pg_language o WHERE o.oid >= 16384
UNION ALL SELECT 'cast', o.oid::text, '', o.xmin::text, false FROM pg_cast o WHERE o.oid >= 16384"""

# Kinds of OTHER_MARKS whose every change makes a full read; for the rest, only a rename
# (or a new or dropped name that exists elsewhere) does, and other changes re-read the
# kinds outside relations.
_ANY_CHANGE_FULL = {"schema", "extension", "role", "operator", "operator class", "collation", "language", "cast"}

# The relation each row of a per-relation kind belongs to, appended as its last column
# (the columns query also appends attnum, to tell a column rename from a drop).
_OWNER = {
    "relations": "c.oid",
    "columns": "c.oid, a.attnum",
    "constraints": "con.conrelid",
    "indexes": "t.oid",
    "sequences": "c.oid",
    "triggers": "c.oid",
    "policies": "c.oid",
}
_EXTRA = {kind: owner.count(",") + 1 for kind, owner in _OWNER.items()}


def _owned_query(kind: str, only_some: bool) -> str:
    query = QUERIES[kind].replace("%", "%%") if only_some else QUERIES[kind]  # %% : it takes a parameter
    select, rest = query.split("\n        FROM ", 1)
    where, order = rest.rsplit("\n        ORDER BY ", 1)
    first = _OWNER[kind].split(",")[0]
    # A subquery, not = ANY(...): the prepared (generic) plan then probes indexes per oid.
    scope = f" AND {first} IN (SELECT o FROM unnest(%(oids)s::oid[]) o LIMIT 100000)" if only_some else ""
    if kind == "constraints" and only_some:
        scope = f" AND {first} <> 0" + scope
    return f"{select}, {_OWNER[kind]}\n        FROM {where}{scope}\n        ORDER BY {order}"


_ALL_OWNED = {kind: _owned_query(kind, False) for kind in _OWNER}
_SOME_OWNED = {kind: _owned_query(kind, True) for kind in _OWNER}
_OTHER_KINDS = [kind for kind in QUERIES if kind not in _OWNER]
_DOMAIN_CONSTRAINTS = QUERIES["constraints"].replace("ORDER BY", "AND con.contypid <> 0\n        ORDER BY").replace(
    "\n        FROM ", ", con.conrelid\n        FROM ", 1
)


_Marks = tuple[str, str, dict[int, Any]]  # (schema, name, catalog -> (rows, xmin sum); 0: own xmin)


@dataclass
class _Read:
    """What the last read saw: marks, names, and the rows of every kind by owner."""

    relations: dict[int, _Marks]  # oid -> (schema, name, marks)
    others: dict[tuple[str, str], tuple[str, str, bool]]  # (kind, oid) -> (name, version, clash)
    owned: dict[str, dict[int, list[tuple[Any, ...]]]]  # kind -> relation oid (0: domains) -> rows
    columns: dict[int, dict[int, str]]  # relation oid -> attnum -> column name
    rest: dict[str, list[tuple[Any, ...]]]  # kinds outside relations -> rows


class Tracker:
    """Snapshots of one database over one autocommit connection, each reading again only
    what changed since the one before (see RELATION_MARKS), between committed steps (a
    step must not run while a snapshot is read). ``full`` and ``partial`` count the reads
    of each sort."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        # With the default plan cache mode every read of some relations was planned again
        # (the generic plan's estimate for an oid array of unknown length never wins over
        # the custom plans) at about 8 ms a query; the generic one runs in well under 1 ms.
        conn.execute("SET plan_cache_mode = force_generic_plan")
        self.full = 0
        self.partial = 0
        self._last: _Read | None = None

    def take(self, exclude: Iterable[str] = ()) -> Snapshot:
        import psycopg

        conn = self.conn
        if not conn.autocommit or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self._last = None
            return take(conn, exclude)
        relations, others = self._marks()
        last = self._last
        changed = None if last is None else _changed(last, relations, others)
        read = None if changed is None else self._read_some(last, relations, others, *changed)  # type: ignore[arg-type]
        if read is None:  # first read, or a change another object may print (a rename)
            read = self._read_all(relations, others)
            self.full += 1
        else:
            self.partial += 1
        self._last = read
        return _built(_rows(read), frozenset(exclude))

    def _marks(self) -> tuple[dict[int, _Marks], dict[tuple[str, str], tuple[str, str, bool]]]:
        conn = self.conn
        with conn.pipeline():
            rel_cursor = conn.cursor().execute(RELATIONS, prepare=True)
            marks_cursor = conn.cursor().execute(RELATION_MARKS, prepare=True)
            other_cursor = conn.cursor().execute(OTHER_MARKS, prepare=True)
        marks: dict[int, dict[int, tuple[int, int]]] = {}
        for rel, catalog, count, total in marks_cursor.fetchall():
            marks.setdefault(rel, {})[catalog] = (count, total)
        relations = {
            oid: (schema, name, {0: xmin, **marks.get(oid, {})}) for oid, schema, name, xmin in rel_cursor.fetchall()
        }
        others = {(kind, oid): (name, version, clash) for kind, oid, name, version, clash in other_cursor.fetchall()}
        return relations, others

    def _read_all(self, relations: dict[int, _Marks], others: dict[Any, Any]) -> _Read:
        conn = self.conn
        with conn.pipeline():
            owned = {kind: conn.cursor().execute(q, prepare=True) for kind, q in _ALL_OWNED.items()}
            rest = {kind: conn.cursor().execute(QUERIES[kind], prepare=True) for kind in _OTHER_KINDS}
        fresh = {kind: cursor.fetchall() for kind, cursor in owned.items()}
        read = _Read(relations, others, {kind: {} for kind in _OWNER}, {}, {k: c.fetchall() for k, c in rest.items()})
        self._file(read, fresh)
        return read

    def _read_some(
        self,
        last: _Read,
        relations: dict[int, _Marks],
        others: dict[Any, Any],
        scope: dict[str, set[int]],
        rest_changed: bool,
    ) -> _Read | None:
        """The last read with the rows of ``scope`` (kind -> relations) read again; None
        when a column was renamed (objects elsewhere may print its name)."""
        conn = self.conn
        with conn.pipeline():
            owned = {
                kind: conn.cursor().execute(_SOME_OWNED[kind], {"oids": sorted(oids)}, prepare=True)
                for kind, oids in scope.items()
                if oids
            }
            if rest_changed:
                rest = {kind: conn.cursor().execute(QUERIES[kind], prepare=True) for kind in _OTHER_KINDS}
                domains = conn.cursor().execute(_DOMAIN_CONSTRAINTS, prepare=True)
        fresh = {kind: owned[kind].fetchall() if kind in owned else [] for kind in _OWNER}
        for row in fresh["columns"]:
            old = last.columns.get(row[-2], {}).get(row[-1])
            if old is not None and old != row[2]:
                return None
        gone = lambda oid: oid not in relations and oid != 0  # noqa: E731
        read = _Read(
            relations,
            others,
            {kind: {oid: rows for oid, rows in groups.items() if oid not in scope[kind] and not gone(oid)}
             for kind, groups in last.owned.items()},
            {oid: names for oid, names in last.columns.items() if oid not in scope["columns"] and not gone(oid)},
            {k: c.fetchall() for k, c in rest.items()} if rest_changed else last.rest,
        )
        if rest_changed:
            read.owned["constraints"][0] = [row[:-1] for row in domains.fetchall()]
        self._file(read, fresh)
        return read

    def _file(self, read: _Read, fresh: dict[str, list[tuple[Any, ...]]]) -> None:
        """Rows just read, without their owner columns, into ``read`` by owner."""
        indexes = fresh.pop("indexes")
        resolved = _index_definitions(self.conn, indexes, fresh["columns"], _INDEX_DEFINITIONS)
        for row, done in zip(indexes, resolved):
            read.owned["indexes"].setdefault(row[-1], []).append(done)
        for row in fresh["columns"]:
            read.columns.setdefault(row[-2], {})[row[-1]] = row[2]
        for kind, rows in fresh.items():
            cut = -_EXTRA[kind]
            groups = read.owned[kind]
            for row in rows:
                groups.setdefault(row[-1] if cut == -1 else row[-2], []).append(row[:cut])


def _rows(read: _Read) -> dict[str, list[tuple[Any, ...]]]:
    """Every kind's rows, in one order for the same content (see _built)."""
    rows = {kind: [row for oid in sorted(groups) for row in groups[oid]] for kind, groups in read.owned.items()}
    rows.update(read.rest)
    return rows


def _changed(
    last: _Read, relations: dict[int, _Marks], others: dict[tuple[str, str], tuple[str, str, bool]]
) -> tuple[dict[str, set[int]], bool] | None:
    """(kind -> relations whose rows of that kind to read again, whether the kinds
    outside relations changed), or None when only a full read is safe."""
    for key in others.keys() | last.others.keys():
        now, then = others.get(key), last.others.get(key)
        if now == then:
            continue
        if key[0] in _ANY_CHANGE_FULL:
            return None
        if now is None or then is None:
            if (now or then)[2]:  # type: ignore[index]  # a new or dropped name that exists elsewhere
                return None
        elif now[0] != then[0]:  # renamed or moved
            return None
    scope: dict[str, set[int]] = {kind: set() for kind in _OWNER}
    names: dict[str, set[str]] | None = None
    for oid in relations.keys() | last.relations.keys():
        now_rel, then_rel = relations.get(oid), last.relations.get(oid)
        if now_rel == then_rel:
            continue
        if now_rel is not None and then_rel is not None:
            if now_rel[:2] != then_rel[:2]:
                return None  # renamed or moved
            catalogs = {c for c in now_rel[2].keys() | then_rel[2].keys() if now_rel[2].get(c) != then_rel[2].get(c)}
        else:  # a new or dropped relation: its name in another schema may change how others print
            if names is None:
                names = {}
                for schema, name, _ in [*relations.values(), *last.relations.values()]:
                    names.setdefault(name, set()).add(schema)
            if len(names[(now_rel or then_rel)[1]]) > 1:  # type: ignore[index]
                return None
            # A dropped relation's rows are simply left out; a new one's are read for the
            # catalogs it has rows in.
            catalogs = set(now_rel[2]) if now_rel is not None else set()
        for c in catalogs:
            for kind in _KINDS_OF[c]:
                scope[kind].add(oid)
    return scope, others != last.others
