"""Statement shapes: one fingerprint per query shape, whatever its parameter values.

Two levels. The hot path is a dict keyed by the statement text as sent (SQLAlchemy's
compiled string, or the raw text given to psycopg), so each shape is worked out once
per session. On a miss: a cheap regex pre-pass (comments, casts on parameters, every
parameter style to ``$n``, IN lists and VALUES rows collapsed, length capped), then
sqlglot, imported lazily, turns literals into ``$n`` and tells tables, LIMIT, WHERE and
``SELECT *``. IN lists collapse the way pg_stat_statements shows them
(``IN ($1 /*, ... */)``), so ``IN (3 values)`` and ``IN (300 values)`` are one shape.
Statements too long for sqlglot (a 50 KB insertmanyvalues batch) or that it cannot
parse keep the regex text: never an error.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

#: Longer statements are never handed to sqlglot (parsing 50 KB took 425 ms).
SQLGLOT_MAX_CHARS = 4000
#: Fingerprints are cut here; they are for humans and grouping, not for replay.
MAX_FINGERPRINT_CHARS = 2000
_CACHE_LIMIT = 20000

SELECT, INSERT, UPDATE, DELETE, TX, CATALOG, OTHER = (
    "select", "insert", "update", "delete", "tx", "catalog", "other",
)
COUNTED_KINDS = (SELECT, INSERT, UPDATE, DELETE, CATALOG, OTHER)
WRITE_KINDS = (INSERT, UPDATE, DELETE)

_TX_WORDS = {"begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release"}
_KIND_WORDS = {"select": SELECT, "insert": INSERT, "update": UPDATE, "delete": DELETE,
               "values": SELECT, "table": SELECT, "show": CATALOG}
_FIRST_WORD = re.compile(r"\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*\(*\s*([A-Za-z]+)", re.S)
_CTE_WRITE = re.compile(r"\)\s*(insert|update|delete)\b", re.I)
_CATALOG = re.compile(r"\b(?:pg_catalog|information_schema)\.|\bfrom\s+pg_\w+|^\s*select\s+(?:pg_catalog\.)?(?:version|current_schema|current_setting|txid_current)\s*\(", re.I)

_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_STRING = re.compile(r"'(?:[^']|'')*'")
_PARAM = re.compile(r"%\(\w+\)s|%s|\$\d+|(?<![:\w]):[A-Za-z_]\w*|(?<=[=(,<>\s])\?(?=\s*(?:[,)]|$|\s(?:and|or|limit|offset|order|group)\b))", re.I)
_TYPE_NAME = r'(?:"[^"]+"|[A-Za-z_]\w*)'
#: The type of a ``::`` cast: PostgreSQL's multi-word names first, then a (schema-qualified) name.
_TYPE = (
    r"(?:double\s+precision|(?:character|bit)\s+varying"
    r"|(?:timestamp|time)(?:\s*\(\s*\d+\s*\))?\s+with(?:out)?\s+time\s+zone"
    rf"|{_TYPE_NAME}(?:\s*\.\s*{_TYPE_NAME})?)"
)
_CAST = re.compile(rf"(\$\?)\s*::\s*{_TYPE}(?:\s*\([\d\s,]*\))?(?:\s*\[\s*\d*\s*\])*", re.I)
_NUMBER = re.compile(r"(?<![\w$.])-?\d+(?:\.\d+)?(?![\w.])")
_IN_LIST = re.compile(r"\bIN\s*\(\s*\$\?(?:\s*,\s*\$\?)*\s*\)", re.I)
_ANY = re.compile(r"=\s*ANY\s*\(\s*\$\?\s*\)", re.I)
_ROW = r"\((?:[^()]|\([^()]*\))*\)"
_VALUES = re.compile(rf"\bVALUES\s*({_ROW})(?:\s*,\s*{_ROW})+", re.I)
_SPACE = re.compile(r"\s+")
_PLACEHOLDER = re.compile(r"\$\?|\$\d+")
_TABLES = re.compile(r"\b(?:from|join|into|update)\s+((?:\"?\w+\"?\.)?\"?\w+\"?)", re.I)
_LIMIT = re.compile(r"\b(?:limit|offset|fetch\s+first|fetch\s+next)\b", re.I)
_ONE_ROW = re.compile(r"\b(?:limit\s+1|fetch\s+(?:first|next)\s+1\s+rows?\s+only)\s*;?\s*$", re.I)
_OFFSET = re.compile(r"\boffset\b", re.I)
_WHERE = re.compile(r"\bwhere\b", re.I)
_STAR = re.compile(r"\bselect\s+(?:distinct\s+)?(?:\w+\.)?\*", re.I)
_COLLAPSED_IN = "IN ($? /*, ... */)"


@dataclass(frozen=True)
class Shape:
    """What a statement is, independent of its values."""

    fingerprint: str
    id: str  # 8 hex digits of the fingerprint: short, stable, greppable
    kind: str
    tables: tuple[str, ...] = ()
    has_limit: bool = False  # LIMIT / OFFSET / FETCH: a page, not a lookup...
    single_row: bool = False  # ...unless it is LIMIT 1 / FETCH FIRST 1 ROW without OFFSET: a lookup
    has_where: bool = False
    in_list: bool = False  # an IN list or = ANY(array): a batch of keys
    select_star: bool = False
    single_row_aggregate: bool = False  # e.g. SELECT count(*) FROM t
    parsed: bool = False  # False: the regex text (sqlglot could not or was not asked)


_KINDS: dict[str, str] = {}
_SHAPES: dict[str, Shape] = {}


def kind_of(text: str) -> str:
    """select / insert / update / delete / tx / catalog / other, from the leading keyword."""
    kind = _KINDS.get(text)
    if kind is None:
        if len(_KINDS) > _CACHE_LIMIT:
            _KINDS.clear()
        kind = _KINDS[text] = _classify(text)
    return kind


def _classify(text: str) -> str:
    match = _FIRST_WORD.match(text)
    word = match.group(1).lower() if match else ""
    if word in _TX_WORDS or (word == "set" and re.match(r"\s*set\s+(?:session\s+characteristics|transaction)", text, re.I)):
        return TX
    if word == "with":
        cte = _CTE_WRITE.search(text)
        kind = cte.group(1).lower() if cte else SELECT
    else:
        kind = _KIND_WORDS.get(word, OTHER)
    if kind == SELECT and _CATALOG.search(text):
        return CATALOG
    return kind



def shape_of(text: str) -> Shape:
    """The statement's shape, worked out once per distinct text."""
    shape = _SHAPES.get(text)
    if shape is None:
        if len(_SHAPES) > _CACHE_LIMIT:
            _SHAPES.clear()
        shape = _SHAPES[text] = _shape(text)
    return shape


def _shape(text: str) -> Shape:
    kind = kind_of(text)
    normal, in_list = prepass(text)
    if kind not in (TX,) and len(normal) <= SQLGLOT_MAX_CHARS:
        shape = _with_sqlglot(normal, kind, in_list)
        if shape is not None:
            return shape
    return _regex_shape(normal, kind, in_list)


def prepass(text: str) -> tuple[str, bool]:
    """Comments, casts on parameters, parameter styles, IN lists and VALUES rows."""
    sql = _COMMENT.sub(" ", text)
    sql = _PARAM.sub("$?", sql)
    sql = _CAST.sub(r"\1", sql)
    sql = _VALUES.sub(r"VALUES \1", sql)
    sql = _SPACE.sub(" ", sql).strip()
    in_list = bool(re.search(r"\bIN\s*\(\s*\$\?\s*,", sql, re.I) or _ANY.search(sql))
    sql = _IN_LIST.sub("IN ($?)", sql)
    return sql, in_list


def _numbered(sql: str) -> str:
    counter = iter(range(1, 1 << 30))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def _finish(sql: str) -> str:
    sql = _IN_LIST.sub(_COLLAPSED_IN, _PLACEHOLDER.sub("$?", sql))
    sql = _numbered(sql)
    return sql[:MAX_FINGERPRINT_CHARS]


def _digest(fingerprint: str) -> str:
    return hashlib.blake2b(fingerprint.encode(), digest_size=4).hexdigest()


def _regex_shape(sql: str, kind: str, in_list: bool) -> Shape:
    literal_free = _NUMBER.sub("$?", _STRING.sub("$?", sql))
    in_list = in_list or bool(re.search(r"\bIN\s*\(\s*\$\?\s*,", literal_free, re.I))
    fingerprint = _finish(literal_free)
    return Shape(
        fingerprint=fingerprint,
        id=_digest(fingerprint),
        kind=kind,
        tables=tuple(dict.fromkeys(t.replace('"', "").lower() for t in _TABLES.findall(sql))),
        has_limit=bool(_LIMIT.search(sql)),
        single_row=bool(_ONE_ROW.search(sql)) and not _OFFSET.search(sql),
        has_where=bool(_WHERE.search(sql)),
        in_list=in_list,
        select_star=kind == SELECT and bool(_STAR.search(sql)),
    )


def _one_row(tree: object, exp: object) -> bool:
    """The outermost query reads one row by key: ``LIMIT 1`` / ``FETCH FIRST 1 ROW``, no OFFSET."""
    args = getattr(tree, "args", {})
    limit = args.get("limit") or args.get("fetch")
    if limit is None or args.get("offset") is not None:
        return False
    count = limit.args.get("expression") or limit.args.get("count")
    return isinstance(count, exp.Literal) and count.this == "1"  # type: ignore[attr-defined]


def _with_sqlglot(sql: str, kind: str, in_list: bool) -> Shape | None:
    import sqlglot
    from sqlglot import exp

    logger = logging.getLogger("sqlglot")
    level, logger.level = logger.level, logging.ERROR  # "falling back to Command" is ours to handle
    try:
        tree = sqlglot.parse_one(_numbered(sql), read="postgres")
        if tree is None or isinstance(tree, exp.Command):
            return None
        single_row = _one_row(tree, exp)
        for literal in list(tree.find_all(exp.Literal)):
            if not isinstance(literal.parent, exp.Parameter):
                literal.replace(exp.Var(this="$?"))
        rendered = tree.sql(dialect="postgres")
    except Exception:  # sqlglot raises several error types; any of them means "regex text"
        return None
    finally:
        logger.level = level
    in_list = in_list or any(len(node.expressions) > 1 for node in tree.find_all(exp.In))
    fingerprint = _finish(rendered)
    tables = tuple(dict.fromkeys(
        (f"{t.db}.{t.name}" if t.db else t.name).lower() for t in tree.find_all(exp.Table) if t.name
    ))
    selects = list(tree.find_all(exp.Select))
    star = any(
        isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
        for s in selects for e in s.expressions
    )
    top = tree if isinstance(tree, exp.Select) else None
    aggregate = bool(
        top is not None and top.expressions and not top.args.get("group")
        and all(isinstance(e.unalias(), exp.AggFunc) for e in top.expressions)
    )
    if kind == SELECT and any(t.startswith(("pg_", "pg_catalog.", "information_schema.")) for t in tables):
        kind = CATALOG
    return Shape(
        fingerprint=fingerprint,
        id=_digest(fingerprint),
        kind=kind,
        tables=tables,
        has_limit=tree.find(exp.Limit, exp.Offset, exp.Fetch) is not None,
        single_row=single_row,
        has_where=tree.find(exp.Where) is not None,
        in_list=in_list,
        select_star=kind == SELECT and star,
        single_row_aggregate=aggregate,
        parsed=True,
    )
