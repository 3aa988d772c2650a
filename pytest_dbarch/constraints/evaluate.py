"""Evaluate a CHECK expression on one row in Python, as PostgreSQL would, or admit it cannot.

The expression is a sqlglot tree of ``pg_get_expr`` text (or of a model's compiled CHECK).
Three-valued logic: ``None`` is SQL NULL, and a CHECK holds when its value is TRUE or
NULL. Whatever Python cannot decide exactly as the server does returns ``OPAQUE``: text
ordering (collations), case folding outside ASCII, volatile functions (``now()``),
JSON, numeric division, unknown functions and casts. Callers then ask the server
(``SELECT <expression>``) instead of guessing; a wrong "holds" here would make the
plugin blame a correct schema.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlglot import exp

from pytest_dbarch.constraints import regex


class _Opaque:
    _instance: _Opaque | None = None

    def __new__(cls) -> _Opaque:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "OPAQUE"

    def __bool__(self) -> bool:
        raise TypeError("OPAQUE has no truth value: ask the server")


OPAQUE: Any = _Opaque()


class CaseInsensitive(str):
    """A ``citext`` value: comparisons fold case by the server's rules, so they stay opaque."""


class EnumLabel(str):
    """An enum value: equal by label, ordered by the enum's declaration (unknown here)."""


Fn = Callable[[Mapping[str, Any]], Any]
_VOLATILE = (exp.CurrentDate, exp.CurrentTimestamp, exp.CurrentTime, exp.Anonymous)


def holds(node: exp.Expression, row: Mapping[str, Any]) -> bool | Any:
    """True when the CHECK accepts the row (TRUE or NULL), False when it rejects it,
    ``OPAQUE`` when only the server can tell."""
    return verdict(evaluate(node, row))


def verdict(value: Any) -> bool | Any:
    if value is OPAQUE:
        return OPAQUE
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    return OPAQUE


def evaluate(node: exp.Expression, row: Mapping[str, Any]) -> Any:
    """The value of ``node`` on ``row`` (compiled once per node, then cached)."""
    return run(compiled(node), row)


def run(fn: Fn, row: Mapping[str, Any]) -> Any:
    try:
        return fn(row)
    except (TypeError, ValueError, ArithmeticError, InvalidOperation, OverflowError, KeyError):
        return OPAQUE


_COMPILED: dict[int, tuple[exp.Expression, Fn]] = {}


def compiled(node: exp.Expression) -> Fn:
    """A Python function computing ``node`` on a row; constant parts computed once."""
    found = _COMPILED.get(id(node))
    if found is not None and found[0] is node:
        return found[1]
    fn = _compile(node)
    if len(_COMPILED) > 50_000:
        _COMPILED.clear()
    _COMPILED[id(node)] = (node, fn)
    return fn


def _compile(node: exp.Expression) -> Fn:
    builder = _BUILDERS.get(type(node))
    if builder is None:
        return _opaque
    fn = builder(node)
    if not any(isinstance(n, (exp.Column, *_VOLATILE)) for n in node.walk()):
        value = run(fn, {})
        return lambda row: value
    return fn


def _opaque(row: Mapping[str, Any]) -> Any:
    return OPAQUE


def _const(value: Any) -> Fn:
    return lambda row: value


def column_name(node: exp.Column) -> str:
    identifier = node.this
    name = identifier.this if isinstance(identifier, exp.Identifier) else str(identifier)
    quoted = isinstance(identifier, exp.Identifier) and identifier.args.get("quoted")
    return name if quoted else name.lower()


def _column(node: exp.Column) -> Fn:
    if node.table:
        return _opaque
    name = column_name(node)
    return lambda row: row[name] if name in row else OPAQUE


def _literal(node: exp.Literal) -> Fn:
    text = node.this
    if node.is_string:
        return _const(text)
    return _const(int(text) if text.isdigit() else Decimal(text))


# --- casts

_TEXT_TYPES = {"TEXT", "VARCHAR", "CHAR", "NCHAR", "NVARCHAR", "NAME", "BPCHAR"}
_INT_BOUNDS = {"SMALLINT": 2**15, "INT": 2**31, "BIGINT": 2**63}


def _cast(node: exp.Cast) -> Fn:
    inner, to = compiled(node.this), node.to

    def cast(row: Mapping[str, Any]) -> Any:
        value = inner(row)
        if value is OPAQUE or value is None:
            return value
        return cast_value(value, to)

    return cast


def cast_value(value: Any, to: exp.DataType) -> Any:
    kind = to.this.name
    if kind in _TEXT_TYPES:
        if isinstance(value, (CaseInsensitive, EnumLabel)):
            return str(value)
        if isinstance(value, str):
            if kind in ("CHAR", "BPCHAR", "NCHAR") and to.expressions:
                return OPAQUE  # char(n) pads and truncates
            if to.expressions and kind != "TEXT":
                size = _type_param(to)
                if size is not None and len(value) > size:
                    return OPAQUE  # an explicit cast truncates
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return OPAQUE
    if kind in _INT_BOUNDS:
        if isinstance(value, bool):
            return OPAQUE
        if isinstance(value, str):
            value = int(value.strip())
        elif isinstance(value, (Decimal, float)):
            value = int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        if not isinstance(value, int) or not -_INT_BOUNDS[kind] <= value < _INT_BOUNDS[kind]:
            return OPAQUE
        return value
    if kind == "DECIMAL":
        if to.expressions:
            return OPAQUE  # numeric(p, s) rounds
        if isinstance(value, bool):
            return OPAQUE
        if isinstance(value, (int, Decimal)):
            return Decimal(value)
        if isinstance(value, str):
            return Decimal(value.strip())
        return OPAQUE
    if kind in ("DOUBLE", "FLOAT"):
        if isinstance(value, bool):
            return OPAQUE
        if isinstance(value, (int, float, Decimal)) or isinstance(value, str):
            return float(value)
        return OPAQUE
    if kind == "BOOLEAN":
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return {"t": True, "true": True, "f": False, "false": False}.get(value.strip().lower(), OPAQUE)
        return OPAQUE
    if kind == "DATE":
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            return dt.date.fromisoformat(value.strip())
        return OPAQUE
    if kind in ("TIMESTAMP", "TIMESTAMPTZ"):
        if to.expressions:
            return OPAQUE  # precision rounds
        want_tz = kind == "TIMESTAMPTZ"
        if isinstance(value, dt.datetime) and (value.tzinfo is not None) == want_tz:
            return value
        if isinstance(value, str):
            parsed = dt.datetime.fromisoformat(value.strip())
            if (parsed.tzinfo is not None) != want_tz:
                return OPAQUE  # the session TimeZone would decide
            return parsed
        return OPAQUE
    if kind == "UUID":
        if isinstance(value, uuid.UUID):
            return value
        if isinstance(value, str):
            return uuid.UUID(value)
        return OPAQUE
    if kind == "ARRAY":
        element = to.expressions[0] if to.expressions else None
        if isinstance(value, str):
            value = _array_literal(value)
        if not isinstance(value, list) or element is None:
            return OPAQUE
        return [None if v is None else cast_value(v, element) for v in value]
    if kind == "USERDEFINED":
        if isinstance(value, str):
            return EnumLabel(value)  # an enum or a domain over text: equality by label
        return OPAQUE
    return OPAQUE


def _type_param(to: exp.DataType) -> int | None:
    try:
        return int(to.expressions[0].this.this)
    except (AttributeError, IndexError, ValueError, TypeError):
        return None


def _array_literal(text: str) -> Any:
    """``'{a,b}'`` as a list; anything with quotes, nesting or escapes is opaque."""
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return OPAQUE
    body = text[1:-1]
    if any(c in body for c in '"\\{}'):
        return OPAQUE
    if not body:
        return []
    return [None if item.strip().upper() == "NULL" else item.strip() for item in body.split(",")]


# --- comparisons

def _comparable(a: Any, b: Any) -> bool:
    """Whether Python orders a and b as PostgreSQL does."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    numbers = (int, Decimal, float)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return True
    if isinstance(a, dt.datetime) or isinstance(b, dt.datetime):
        return (
            isinstance(a, dt.datetime)
            and isinstance(b, dt.datetime)
            and (a.tzinfo is None) == (b.tzinfo is None)
        )
    for kind in (dt.date, dt.time, dt.timedelta, uuid.UUID):
        if isinstance(a, kind) or isinstance(b, kind):
            return isinstance(a, kind) and isinstance(b, kind)
    return False


def compare(op: str, a: Any, b: Any) -> Any:
    """``a <op> b`` with SQL NULLs; OPAQUE where Python and the server may disagree."""
    if a is OPAQUE or b is OPAQUE:
        return OPAQUE
    if a is None or b is None:
        return None
    if isinstance(a, CaseInsensitive) or isinstance(b, CaseInsensitive):
        return OPAQUE
    if isinstance(a, str) and isinstance(b, str):
        if op in ("=", "<>"):
            return (a == b) == (op == "=")
        return OPAQUE  # text order follows the collation
    if isinstance(a, list) and isinstance(b, list) and op in ("=", "<>"):
        if any(isinstance(x, (list, dict)) for x in a + b):
            return OPAQUE
        if None in a or None in b:
            return OPAQUE
        return (a == b) == (op == "=")
    if not _comparable(a, b):
        return OPAQUE
    if isinstance(a, float) != isinstance(b, float) and (isinstance(a, Decimal) or isinstance(b, Decimal)):
        a, b = float(a), float(b)  # numeric compared with float8 goes through float8
    return _OPS[op](a, b)


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
COMPARISONS: dict[type[exp.Expression], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
}
INVERSE = {"=": "<>", "<>": "=", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
MIRROR = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def quantified(node: exp.Expression) -> tuple[str, exp.Expression] | None:
    """``ANY (array)`` / ``ALL (array)`` on the right of a comparison: (kind, array)."""
    if isinstance(node, exp.Any):
        return "any", node.this
    if isinstance(node, exp.All):
        return "all", node.this
    if isinstance(node, exp.Anonymous) and str(node.this).upper() in ("ALL", "ANY", "SOME") and len(node.expressions) == 1:
        return ("all" if str(node.this).upper() == "ALL" else "any"), node.expressions[0]
    return None


def _comparison(node: exp.Expression) -> Fn:
    op = COMPARISONS[type(node)]
    left = compiled(node.this)
    quant = quantified(node.expression)
    if quant is not None:
        kind, array = quant
        items = compiled(array)
        combine = any_of if kind == "any" else all_of

        def quantified_comparison(row: Mapping[str, Any]) -> Any:
            value, values = left(row), items(row)
            if values is OPAQUE or value is OPAQUE:
                return OPAQUE
            if values is None:
                return None
            if not isinstance(values, list):
                return OPAQUE
            return combine([compare(op, value, v) for v in values])

        return quantified_comparison
    right = compiled(node.expression)
    return lambda row: compare(op, left(row), right(row))


def any_of(results: list[Any]) -> Any:
    if any(r is True for r in results):
        return True
    if any(r is OPAQUE for r in results):
        return OPAQUE
    if any(r is None for r in results):
        return None
    return False


def all_of(results: list[Any]) -> Any:
    if any(r is False for r in results):
        return False
    if any(r is OPAQUE for r in results):
        return OPAQUE
    if any(r is None for r in results):
        return None
    return True


def _and(node: exp.And) -> Fn:
    a, b = compiled(node.this), compiled(node.expression)

    def both(row: Mapping[str, Any]) -> Any:
        first = _truth(a(row))
        if first is False:
            return False
        return all_of([first, _truth(b(row))])

    return both


def _or(node: exp.Or) -> Fn:
    a, b = compiled(node.this), compiled(node.expression)

    def either(row: Mapping[str, Any]) -> Any:
        first = _truth(a(row))
        if first is True:
            return True
        return any_of([first, _truth(b(row))])

    return either


def _truth(value: Any) -> Any:
    if value is None or value is OPAQUE or isinstance(value, bool):
        return value
    return OPAQUE


def _not(node: exp.Not) -> Fn:
    inner = compiled(node.this)

    def negate(row: Mapping[str, Any]) -> Any:
        value = _truth(inner(row))
        if value is None or value is OPAQUE:
            return value
        return not value

    return negate


def _is(node: exp.Is) -> Fn:
    inner = compiled(node.this)
    target = node.expression
    negate = bool(node.args.get("negate"))
    if isinstance(target, exp.Null):
        test: Callable[[Any], bool] = lambda value: value is None  # noqa: E731
    elif isinstance(target, exp.Boolean):
        wanted = bool(target.this)
        test = lambda value: value is wanted  # noqa: E731
    else:
        return _opaque

    def is_(row: Mapping[str, Any]) -> Any:
        value = inner(row)
        if value is OPAQUE:
            return OPAQUE
        return test(value) != negate

    return is_


def _distinct(node: exp.Expression) -> Fn:
    a_fn, b_fn = compiled(node.this), compiled(node.expression)
    wants_same = isinstance(node, exp.NullSafeEQ)

    def distinct(row: Mapping[str, Any]) -> Any:
        a, b = a_fn(row), b_fn(row)
        if a is OPAQUE or b is OPAQUE:
            return OPAQUE
        if a is None or b is None:
            same: Any = a is None and b is None
        else:
            same = compare("=", a, b)
            if same is OPAQUE:
                return OPAQUE
        return same if wants_same else not same

    return distinct


def _in(node: exp.In) -> Fn:
    if node.args.get("query") or node.args.get("unnest") or node.args.get("field") or node.args.get("is_global"):
        return _opaque
    left = compiled(node.this)
    items = [compiled(e) for e in node.expressions]

    def in_(row: Mapping[str, Any]) -> Any:
        value = left(row)
        return any_of([compare("=", value, item(row)) for item in items])

    return in_


def _between(node: exp.Between) -> Fn:
    value_fn, low, high = compiled(node.this), compiled(node.args["low"]), compiled(node.args["high"])

    def between(row: Mapping[str, Any]) -> Any:
        value = value_fn(row)
        return all_of([compare(">=", value, low(row)), compare("<=", value, high(row))])

    return between


def _paren(node: exp.Paren) -> Fn:
    return compiled(node.this)


def _array(node: exp.Array) -> Fn:
    items = [compiled(e) for e in node.expressions]

    def array(row: Mapping[str, Any]) -> Any:
        values = [item(row) for item in items]
        return OPAQUE if any(v is OPAQUE for v in values) else values

    return array


def _text(fn: Fn) -> Fn:
    def text(row: Mapping[str, Any]) -> Any:
        value = fn(row)
        if value is OPAQUE or value is None:
            return value
        return value if isinstance(value, str) and not isinstance(value, CaseInsensitive) else OPAQUE

    return text


def _matcher(value_fn: Fn, pattern_fn: Fn, build: Callable[[str], regex.Pattern], negate: bool = False) -> Fn:
    patterns: dict[str, regex.Pattern | None] = {}

    def match(row: Mapping[str, Any]) -> Any:
        value, pattern = value_fn(row), pattern_fn(row)
        if value is OPAQUE or pattern is OPAQUE:
            return OPAQUE
        if value is None or pattern is None:
            return None
        if pattern not in patterns:
            try:
                patterns[pattern] = build(pattern)
            except regex.Untranslatable:
                patterns[pattern] = None
        compiled_pattern = patterns[pattern]
        if compiled_pattern is None:
            return OPAQUE
        found = compiled_pattern.search(value)
        if found is None:
            return OPAQUE
        return not found if negate else found

    return match


def _like(node: exp.Expression, escape: str = "\\") -> Fn:
    insensitive = isinstance(node, exp.ILike)
    return _matcher(_text(compiled(node.this)), _text(compiled(node.expression)),
                    lambda p: regex.like(p, insensitive, escape), bool(node.args.get("negate")))


def _escape(node: exp.Escape) -> Fn:
    inner = node.this
    escape = evaluate(node.expression, {})
    if not isinstance(inner, (exp.Like, exp.ILike)) or not isinstance(escape, str) or len(escape) > 1:
        return _opaque
    return _like(inner, escape)


def _regexp(node: exp.Expression) -> Fn:
    if node.args.get("flag") is not None:
        return _opaque
    insensitive = isinstance(node, exp.RegexpILike)
    return _matcher(_text(compiled(node.this)), _text(compiled(node.expression)),
                    lambda p: regex.translate(p, insensitive))


# --- functions and arithmetic

def _length(node: exp.Length) -> Fn:
    inner = compiled(node.this)

    def length(row: Mapping[str, Any]) -> Any:
        value = inner(row)
        if value is OPAQUE or value is None:
            return value
        if isinstance(value, (bytes, str)):
            return len(value)
        return OPAQUE

    return length


def _pad(node: exp.Pad) -> Fn:
    """``rpad`` / ``lpad``: cut to the width, then filled (with spaces unless told)."""
    inner, width = _text(compiled(node.this)), compiled(node.expression)
    fill = _text(compiled(node.args["fill_pattern"])) if node.args.get("fill_pattern") is not None else _const(" ")
    left = bool(node.args.get("is_left"))

    def pad(row: Mapping[str, Any]) -> Any:
        value, size, filler = inner(row), width(row), fill(row)
        if OPAQUE in (value, size, filler) or not isinstance(size, int) or isinstance(size, bool):
            return OPAQUE
        if value is None or size is None or filler is None:
            return None
        value = value[:max(size, 0)]
        if not filler or len(value) >= size:
            return value
        padding = (filler * (size // len(filler) + 1))[:size - len(value)]
        return padding + value if left else value + padding

    return pad


def _case_fold(method: str) -> Callable[[exp.Expression], Fn]:
    def build(node: exp.Expression) -> Fn:
        inner = _text(compiled(node.this))

        def fold(row: Mapping[str, Any]) -> Any:
            value = inner(row)
            if value is OPAQUE or value is None:
                return value
            if not value.isascii():
                return OPAQUE  # the server's locale folds non-ASCII letters
            return getattr(value, method)()

        return fold

    return build


def _trim(node: exp.Trim) -> Fn:
    inner = _text(compiled(node.this))
    chars_fn = compiled(node.expression) if node.expression else _const(" ")
    position = (node.args.get("position") or "BOTH").upper()

    def trim(row: Mapping[str, Any]) -> Any:
        value, chars = inner(row), chars_fn(row)
        if value is OPAQUE or value is None:
            return value
        if chars is OPAQUE or chars is None or not isinstance(chars, str):
            return OPAQUE if chars is not None else None
        if position == "LEADING":
            return value.lstrip(chars)
        if position == "TRAILING":
            return value.rstrip(chars)
        return value.strip(chars)

    return trim


def _anonymous(node: exp.Anonymous) -> Fn:
    name = str(node.this).lower()
    args = [compiled(e) for e in node.expressions]
    if name in ("num_nulls", "num_nonnulls"):
        def count(row: Mapping[str, Any]) -> Any:
            values = [a(row) for a in args]
            if any(v is OPAQUE for v in values):
                return OPAQUE
            nulls = sum(v is None for v in values)
            return nulls if name == "num_nulls" else len(values) - nulls

        return count
    if name == "octet_length" and len(args) == 1:
        def octets(row: Mapping[str, Any]) -> Any:
            value = args[0](row)
            if isinstance(value, str):
                return len(value.encode())
            if isinstance(value, bytes):
                return len(value)
            return value if value is None else OPAQUE

        return octets
    if name in ("ltrim", "rtrim") and args:
        text = _text(args[0])
        chars_fn = args[1] if len(args) > 1 else _const(" ")

        def side_trim(row: Mapping[str, Any]) -> Any:
            value, chars = text(row), chars_fn(row)
            if not isinstance(value, str) or not isinstance(chars, str):
                return value if value is None or value is OPAQUE else OPAQUE
            return value.lstrip(chars) if name == "ltrim" else value.rstrip(chars)

        return side_trim
    return _opaque


def _coalesce(node: exp.Coalesce) -> Fn:
    parts = [compiled(p) for p in [node.this, *node.expressions]]

    def coalesce(row: Mapping[str, Any]) -> Any:
        for part in parts:
            value = part(row)
            if value is not None:
                return value
        return None

    return coalesce


def _nullif(node: exp.Nullif) -> Fn:
    a_fn, b_fn = compiled(node.this), compiled(node.expression)

    def nullif(row: Mapping[str, Any]) -> Any:
        a = a_fn(row)
        same = compare("=", a, b_fn(row))
        if same is OPAQUE:
            return OPAQUE
        return None if same is True else a

    return nullif


def _extreme(pick: Callable[..., Any]) -> Callable[[exp.Expression], Fn]:
    def build(node: exp.Expression) -> Fn:
        parts = [compiled(e) for e in [node.this, *node.expressions]]

        def extreme(row: Mapping[str, Any]) -> Any:
            values = [p(row) for p in parts]
            if any(v is OPAQUE for v in values):
                return OPAQUE
            present = [v for v in values if v is not None]  # GREATEST/LEAST ignore NULLs
            if not present:
                return None
            if not all(_comparable(present[0], v) for v in present):
                return OPAQUE
            return pick(present)

        return extreme

    return build


def _unary(operation: Callable[[Any], Any], kinds: tuple[type, ...]) -> Callable[[exp.Expression], Fn]:
    def build(node: exp.Expression) -> Fn:
        inner = compiled(node.this)

        def unary(row: Mapping[str, Any]) -> Any:
            value = inner(row)
            if value is OPAQUE or value is None:
                return value
            if isinstance(value, kinds) and not isinstance(value, bool):
                return operation(value)
            return OPAQUE

        return unary

    return build


def _numbers(a: Any, b: Any) -> bool:
    kinds = (int, Decimal, float)
    return all(isinstance(v, kinds) and not isinstance(v, bool) for v in (a, b)) and not (
        isinstance(a, float) != isinstance(b, float) and (isinstance(a, Decimal) or isinstance(b, Decimal))
    )


def _arithmetic(node: exp.Expression) -> Fn:
    a_fn, b_fn = compiled(node.this), compiled(node.expression)
    kind = type(node)

    def arithmetic(row: Mapping[str, Any]) -> Any:
        a, b = a_fn(row), b_fn(row)
        if a is OPAQUE or b is OPAQUE:
            return OPAQUE
        if a is None or b is None:
            return None
        if kind is exp.Add:
            if _numbers(a, b):
                return a + b
            if type(a) is dt.date and isinstance(b, int) and not isinstance(b, bool):
                return a + dt.timedelta(days=b)
            return OPAQUE
        if kind is exp.Sub:
            if _numbers(a, b):
                return a - b
            if type(a) is dt.date and type(b) is dt.date:
                return (a - b).days
            return OPAQUE
        if kind is exp.Mul:
            return a * b if _numbers(a, b) else OPAQUE
        if not (type(a) is int and type(b) is int) or b == 0:
            return OPAQUE  # numeric division rounds to a scale of its own; zero raises
        quotient = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)  # truncates toward zero
        return quotient if kind is exp.Div else a - quotient * b

    return arithmetic


def _case(node: exp.Case) -> Fn:
    subject = compiled(node.this) if node.this is not None else None
    branches = [(compiled(b.this), compiled(b.args["true"])) for b in node.args.get("ifs") or []]
    default_node = node.args.get("default")
    default = compiled(default_node) if default_node is not None else _const(None)

    def case(row: Mapping[str, Any]) -> Any:
        for condition_fn, result in branches:
            if subject is not None:
                condition = compare("=", subject(row), condition_fn(row))
            else:
                condition = _truth(condition_fn(row))
            if condition is OPAQUE:
                return OPAQUE
            if condition is True:
                return result(row)
        return default(row)

    return case


_BUILDERS: dict[type[exp.Expression], Callable[[Any], Fn]] = {
    exp.Paren: _paren,
    exp.Column: _column,
    exp.Literal: _literal,
    exp.Null: lambda node: _const(None),
    exp.Boolean: lambda node: _const(bool(node.this)),
    exp.Cast: _cast,
    exp.And: _and,
    exp.Or: _or,
    exp.Not: _not,
    exp.Is: _is,
    exp.NullSafeEQ: _distinct,
    exp.NullSafeNEQ: _distinct,
    exp.In: _in,
    exp.Between: _between,
    exp.Array: _array,
    exp.Like: _like,
    exp.ILike: _like,
    exp.Escape: _escape,
    exp.RegexpLike: _regexp,
    exp.RegexpILike: _regexp,
    exp.Length: _length,
    exp.Pad: _pad,
    exp.Lower: _case_fold("lower"),
    exp.Upper: _case_fold("upper"),
    exp.Trim: _trim,
    exp.Anonymous: _anonymous,
    exp.Coalesce: _coalesce,
    exp.Nullif: _nullif,
    exp.Greatest: _extreme(max),
    exp.Least: _extreme(min),
    exp.Abs: _unary(abs, (int, Decimal, float)),
    exp.Neg: _unary(lambda v: -v, (int, Decimal, float, dt.timedelta)),
    exp.Add: _arithmetic,
    exp.Sub: _arithmetic,
    exp.Mul: _arithmetic,
    exp.Div: _arithmetic,
    exp.Mod: _arithmetic,
    exp.Case: _case,
    **{kind: _comparison for kind in COMPARISONS},
}
