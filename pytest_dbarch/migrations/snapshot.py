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
