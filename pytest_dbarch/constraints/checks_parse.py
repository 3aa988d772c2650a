"""CHECK expressions as generation constraints: atoms in disjunctive normal form.

``pg_get_expr`` prints every CHECK in a canonical shape (``BETWEEN`` becomes two
comparisons, ``IN`` becomes ``= ANY (ARRAY[...])``, literals carry casts). sqlglot reads
it; negations are pushed down to the atoms and the formula is spread into a disjunction
of conjunctions, each a list of atoms the generator can aim at: a column compared with a
constant, a list of allowed or refused values, ``IS [NOT] NULL``, ``length()``, a regex or
LIKE, a comparison of two columns. Anything else stays an ``Other`` atom, honoured by
filtering (``evaluate.holds``) or by asking the server.

The same reading gives violators: the DNF of ``NOT (check)`` (atoms strictly true, so
the CHECK is strictly false, never NULL, which a CHECK accepts).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Union

import sqlglot
from sqlglot import exp

from pytest_dbarch.constraints import evaluate as ev
from pytest_dbarch.constraints import regex

MAX_DISJUNCTS = 256
_TEXT_CASTS = {"TEXT", "VARCHAR", "NVARCHAR", "NAME", "BPCHAR", "CHAR"}
_NUMERIC_CASTS = {"SMALLINT", "INT", "BIGINT", "DECIMAL"}


@dataclass(frozen=True)
class Compare:
    """``column <op> value``."""

    column: str
    op: str
    value: Any


@dataclass(frozen=True)
class Members:
    """``column IN values`` (or ``NOT IN`` when ``negated``)."""

    column: str
    values: tuple[Any, ...]
    negated: bool = False


@dataclass(frozen=True)
class Null:
    """``column IS NULL`` (``IS NOT NULL`` when ``negated``)."""

    column: str
    negated: bool = False


@dataclass(frozen=True)
class Length:
    """``length(column) <op> value``."""

    column: str
    op: str
    value: int


@dataclass(frozen=True)
class Match:
    """``column ~ pattern`` / ``LIKE`` (refused when ``negated``)."""

    column: str
    pattern: regex.Pattern
    negated: bool = False


@dataclass(frozen=True)
class Relation:
    """``left <op> right``, two columns of the same row."""

    left: str
    op: str
    right: str


@dataclass(frozen=True)
class Other:
    """Any other condition (``negated``: it must be false); checked by evaluation."""

    node: exp.Expression = field(compare=False, hash=False)
    sql: str
    columns: frozenset[str]
    negated: bool = False


Atom = Union[Compare, Members, Null, Length, Match, Relation, Other]
Conjunction = tuple[Atom, ...]


def atom_columns(atom: Atom) -> tuple[str, ...]:
    if isinstance(atom, Relation):
        return (atom.left, atom.right)
    if isinstance(atom, Other):
        return tuple(sorted(atom.columns))
    return (atom.column,)


def parse(sql: str) -> exp.Expression | None:
    """The sqlglot tree of a PostgreSQL boolean expression, or None if it does not parse."""
    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return None
    return tree


def columns_of(tree: exp.Expression) -> frozenset[str]:
    return frozenset(ev.column_name(c) for c in tree.find_all(exp.Column) if not c.table)


def rename_column(tree: exp.Expression, old: str, new: str) -> exp.Expression:
    """A copy of ``tree`` with column ``old`` (e.g. a domain's ``VALUE``) named ``new``."""

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and ev.column_name(node) == old:
            return exp.column(exp.to_identifier(new, quoted=True))
        return node

    return tree.copy().transform(swap)


@dataclass
class Rule:
    """One CHECK (or a domain's CHECK on a column, or a partial index's predicate)."""

    name: str
    sql: str  # for the server: pg_get_expr text
    tree: exp.Expression | None
    columns: frozenset[str]
    kind: str = "check"  # "check", "domain" or "predicate"
    categories: Mapping[str, str] = field(default_factory=dict)  # column -> pg typcategory

    @classmethod
    def of(cls, name: str, sql: str, categories: Mapping[str, str], all_columns: Iterable[str],
           kind: str = "check", tree: exp.Expression | None = None, padded: Mapping[str, int] | None = None) -> Rule:
        """``padded``: the char(n) columns and their n."""
        tree = tree if tree is not None else parse(sql)
        if tree is not None and padded:
            tree = pad_matched(tree, padded)
        columns = columns_of(tree) if tree is not None else frozenset(all_columns)
        return cls(name, sql, tree, columns, kind, dict(categories))

    def holds(self, row: Mapping[str, Any]) -> Any:
        """True / False, or ``evaluate.OPAQUE`` when only the server can tell."""
        if self.tree is None:
            return ev.OPAQUE
        return ev.holds(self.tree, row)

    @cached_property
    def dnf(self) -> list[Conjunction] | None:
        """Ways to satisfy the rule (strictly TRUE); None when too complex to aim at."""
        if self.tree is None:
            return None
        return _dnf(_nnf(self.tree, True, self.categories))

    @cached_property
    def violations(self) -> list[Conjunction] | None:
        """Ways to violate the rule (strictly FALSE); None when too complex."""
        if self.tree is None:
            return None
        return _dnf(_nnf(self.tree, False, self.categories))

    @cached_property
    def understood(self) -> bool:
        """Whether generation can aim at every part of it (no ``Other`` atoms)."""
        return self.dnf is not None and all(not isinstance(a, Other) for c in self.dnf for a in c)


# --- negation normal form

_Formula = Union[Atom, tuple[str, list[Any]]]


def _and(parts: list[_Formula]) -> _Formula:
    return ("and", parts)


def _or(parts: list[_Formula]) -> _Formula:
    return ("or", parts)


def _strip(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _column_operand(node: exp.Expression, categories: Mapping[str, str]) -> str | None:
    """The column a (value-preserving) operand is, or None."""
    node = _strip(node)
    if isinstance(node, exp.Column) and not node.table:
        return ev.column_name(node)
    if isinstance(node, exp.Cast):
        inner = _strip(node.this)
        if not isinstance(inner, exp.Column) or inner.table:
            return None
        name = ev.column_name(inner)
        to = node.to
        category = categories.get(name)
        kind = to.this.name
        if to.expressions:
            return None
        if kind in _TEXT_CASTS and kind not in ("CHAR", "BPCHAR") and category in ("S", "E"):
            return name
        if kind in _NUMERIC_CASTS and category == "N" and kind in ("BIGINT", "DECIMAL"):
            return name
    return None


def _cast_column(node: exp.Expression) -> str | None:
    """The column under a cast, for IS [NOT] NULL: a cast is NULL exactly when its input is
    (``user_id::text IS NULL`` on warehouse's macaroons)."""
    node = _strip(node)
    if isinstance(node, exp.Cast):
        inner = _strip(node.this)
        if isinstance(inner, exp.Column) and not inner.table:
            return ev.column_name(inner)
    return None


def _constant(node: exp.Expression) -> Any:
    if any(True for _ in node.find_all(exp.Column)):
        return ev.OPAQUE
    if any(isinstance(n, (exp.CurrentDate, exp.CurrentTimestamp, exp.CurrentTime, exp.Anonymous)) for n in node.walk()):
        return ev.OPAQUE
    return ev.evaluate(node, {})


def _other(node: exp.Expression, positive: bool) -> Other:
    return Other(node, node.sql(dialect="postgres"), columns_of(node), negated=not positive)


def _is_predicate(node: exp.Expression) -> bool:
    node = _strip(node)
    return isinstance(node, (exp.And, exp.Or, exp.Not, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike,
                             exp.RegexpLike, exp.RegexpILike, exp.NullSafeEQ, exp.NullSafeNEQ,
                             exp.Boolean, *ev.COMPARISONS))


def _nnf(node: exp.Expression, positive: bool, categories: Mapping[str, str]) -> _Formula:
    node = _strip(node)
    if isinstance(node, exp.Not):
        return _nnf(node.this, not positive, categories)
    if isinstance(node, (exp.And, exp.Or)):
        parts = [_nnf(node.this, positive, categories), _nnf(node.expression, positive, categories)]
        return _and(parts) if isinstance(node, exp.And) == positive else _or(parts)
    if isinstance(node, exp.Boolean):
        return _and([]) if bool(node.this) == positive else _or([])
    if isinstance(node, exp.Is):
        return _is(node, positive, categories)
    if isinstance(node, exp.Between):
        column = _column_operand(node.this, categories)
        low, high = _constant(node.args["low"]), _constant(node.args["high"])
        if column is None or low is ev.OPAQUE or high is ev.OPAQUE or low is None or high is None:
            return _other(node, positive)
        if positive:
            return _and([Compare(column, ">=", low), Compare(column, "<=", high)])
        return _or([Compare(column, "<", low), Compare(column, ">", high)])
    if isinstance(node, exp.In):
        column = _column_operand(node.this, categories)
        values = [_constant(e) for e in node.expressions]
        if column is None or node.args.get("query") or any(v is ev.OPAQUE for v in values):
            return _other(node, positive)
        return _members(column, values, positive)
    if isinstance(node, (exp.Like, exp.ILike, exp.RegexpLike, exp.RegexpILike)):
        return _match(node, positive, categories)
    if isinstance(node, tuple(ev.COMPARISONS)):
        return _comparison(node, positive, categories)
    if isinstance(node, exp.Case):
        return _case(node, positive, categories)
    column = _column_operand(node, categories)
    if column is not None and categories.get(column) == "B":
        return Compare(column, "=", positive)
    return _other(node, positive)


def _members(column: str, values: list[Any], positive: bool) -> _Formula:
    if positive:
        present = tuple(v for v in values if v is not None)
        return Members(column, present)
    if any(v is None for v in values):
        return _or([])  # NOT IN with a NULL in the list is never true
    return Members(column, tuple(values), negated=True)


def _is(node: exp.Is, positive: bool, categories: Mapping[str, str]) -> _Formula:
    if node.args.get("negate"):
        positive = not positive
    target = node.expression
    column = _column_operand(node.this, categories)
    if isinstance(target, exp.Null):
        if column is None:
            column = _cast_column(node.this)
        if column is not None:
            return Null(column, negated=not positive)
        return _other(node, positive)  # (expression) IS NULL: left to evaluation
    if isinstance(target, exp.Boolean) and _is_predicate(node.this):
        want = bool(target.this)
        if positive:
            return _nnf(node.this, want, categories)
        # IS NOT TRUE: false or NULL; aim at false
        return _nnf(node.this, not want, categories)
    return _other(node, positive)


_MATCHES = (exp.RegexpLike, exp.RegexpILike, exp.Like, exp.ILike, exp.SimilarTo)


def pad_matched(tree: exp.Expression, padded: Mapping[str, int]) -> exp.Expression:
    """The tree with each char(n) column that a regex or LIKE reads wrapped in
    ``rpad(column, n)``: PostgreSQL matches the padded value (``'ab'::char(4) ~ '^ab$'`` is
    false), while our rows hold it without the trailing spaces, as ``=`` and ``length()``
    see it. An explicit ``::text`` cast drops the padding and is left alone."""

    def pad(node: exp.Expression) -> exp.Expression:
        if isinstance(node, _MATCHES):
            operand = _strip(node.this)
            if isinstance(operand, exp.Column) and not operand.table and ev.column_name(operand) in padded:
                width = padded[ev.column_name(operand)]
                node = node.copy()
                node.set("this", exp.Pad(this=operand.copy(), expression=exp.Literal.number(width), is_left=False))
        return node

    return tree.transform(pad)


def _padded_operand(node: exp.Expression) -> tuple[str, int] | None:
    """``rpad(column, n)`` (as ``pad_matched`` writes it): the column and n."""
    if not isinstance(node, exp.Pad) or node.args.get("is_left") or node.args.get("fill_pattern") is not None:
        return None
    operand, width = _strip(node.this), node.expression
    if not isinstance(operand, exp.Column) or operand.table or not isinstance(width, exp.Literal) or width.is_string:
        return None
    return ev.column_name(operand), int(width.this)


def _match(node: exp.Expression, positive: bool, categories: Mapping[str, str]) -> _Formula:
    negated = bool(node.args.get("negate"))
    if negated:
        positive = not positive
    padded = _padded_operand(node.this)
    column = padded[0] if padded else _column_operand(node.this, categories)
    pattern = _constant(node.expression)
    if column is None or not isinstance(pattern, str) or node.args.get("flag") is not None:
        return _other(node, positive)
    insensitive = isinstance(node, (exp.ILike, exp.RegexpILike))
    try:
        if isinstance(node, (exp.Like, exp.ILike)):
            compiled = regex.like(pattern, insensitive)
        else:
            compiled = regex.translate(pattern, insensitive)
    except regex.Untranslatable:
        return _other(node, positive)
    if padded:
        compiled = replace(compiled, pad_to=padded[1])
    return Match(column, compiled, negated=not positive)


def _comparison(node: exp.Expression, positive: bool, categories: Mapping[str, str]) -> _Formula:
    op = ev.COMPARISONS[type(node)]
    left, right = node.this, node.expression
    quant = ev.quantified(right)
    if quant is not None:
        column = _column_operand(left, categories)
        values = _constant(quant[1])
        if column is None or not isinstance(values, list):
            return _other(node, positive)
        kind = quant[0]
        if (kind, op) == ("any", "="):
            return _members(column, values, positive)
        if (kind, op) == ("all", "<>"):
            return _members(column, values, not positive)
        return _other(node, positive)
    if op in ("=", "<>") and _is_predicate(left) and _is_predicate(right):
        same = (op == "=") == positive
        a_true, b_true = _nnf(left, True, categories), _nnf(right, True, categories)
        a_false, b_false = _nnf(left, False, categories), _nnf(right, False, categories)
        if same:
            return _or([_and([a_true, b_true]), _and([a_false, b_false])])
        return _or([_and([a_true, b_false]), _and([a_false, b_true])])
    if not positive:
        op = ev.INVERSE[op]
    left_column, right_column = _column_operand(left, categories), _column_operand(right, categories)
    if left_column and right_column:
        return Relation(left_column, op, right_column)
    for column, other, this_op in ((left_column, right, op), (right_column, left, ev.MIRROR[op])):
        if column is None:
            continue
        value = _constant(other)
        if value is ev.OPAQUE:
            continue
        if value is None:
            return _or([])  # a comparison with NULL is never strictly true
        return Compare(column, this_op, value)
    length = _length_atom(left, right, op, categories)
    if length is not None:
        return length
    counted = _null_count(left, right, op, categories)
    if counted is not None:
        return counted
    return _other(node, positive)


def _length_atom(left: exp.Expression, right: exp.Expression, op: str, categories: Mapping[str, str]) -> Atom | None:
    for side, other, this_op in ((left, right, op), (right, left, ev.MIRROR[op])):
        side = _strip(side)
        if isinstance(side, exp.Length):
            column = _column_operand(side.this, categories)
            value = _constant(other)
            if column is not None and isinstance(value, int) and not isinstance(value, bool):
                return Length(column, this_op, value)
    return None


def _null_count(left: exp.Expression, right: exp.Expression, op: str, categories: Mapping[str, str]) -> _Formula | None:
    """``num_nonnulls(a, b, c) = 1`` and friends, spelled out over NULL patterns."""
    for side, other, this_op in ((left, right, op), (right, left, ev.MIRROR[op])):
        side = _strip(side)
        if not (isinstance(side, exp.Anonymous) and str(side.this).lower() in ("num_nulls", "num_nonnulls")):
            continue
        columns = [_column_operand(e, categories) for e in side.expressions]
        value = _constant(other)
        if None in columns or not isinstance(value, int) or len(columns) > 8:
            return None
        counting_nulls = str(side.this).lower() == "num_nulls"
        ways: list[_Formula] = []
        for pattern in itertools.product((True, False), repeat=len(columns)):  # True: column is NULL
            count = sum(pattern) if counting_nulls else len(columns) - sum(pattern)
            if ev.compare(this_op, count, value) is True:
                ways.append(_and([Null(c, negated=not is_null) for c, is_null in zip(columns, pattern)]))  # type: ignore[arg-type]
        return _or(ways)
    return None


def _case(node: exp.Case, positive: bool, categories: Mapping[str, str]) -> _Formula:
    if node.this is not None:
        return _other(node, positive)
    ways: list[_Formula] = []
    earlier_false: list[_Formula] = []
    for branch in node.args.get("ifs") or []:
        condition = branch.this
        result = branch.args["true"]
        if not _is_predicate(condition) or not (_is_predicate(result) or isinstance(_strip(result), exp.Boolean)):
            return _other(node, positive)
        ways.append(_and([*earlier_false, _nnf(condition, True, categories), _nnf(result, positive, categories)]))
        earlier_false.append(_nnf(condition, False, categories))
    default = node.args.get("default")
    if default is None:
        if not positive:
            pass  # ELSE NULL is never strictly false
        else:
            ways.append(_and(list(earlier_false)))  # NULL is accepted by a CHECK; aim at it anyway
    elif _is_predicate(default) or isinstance(_strip(default), exp.Boolean):
        ways.append(_and([*earlier_false, _nnf(default, positive, categories)]))
    else:
        return _other(node, positive)
    return _or(ways)


# --- disjunctive normal form

def _dnf(formula: _Formula) -> list[Conjunction] | None:
    try:
        return [tuple(c) for c in _spread(formula)]
    except _TooComplex:
        return None


class _TooComplex(Exception):
    pass


def _spread(formula: _Formula) -> list[list[Atom]]:
    if not isinstance(formula, tuple):
        return [[formula]]
    kind, parts = formula
    if kind == "or":
        ways: list[list[Atom]] = []
        for part in parts:
            ways.extend(_spread(part))
            if len(ways) > MAX_DISJUNCTS:
                raise _TooComplex
        return ways
    combined: list[list[Atom]] = [[]]
    for part in parts:
        options = _spread(part)
        combined = [a + b for a in combined for b in options]
        if len(combined) > MAX_DISJUNCTS:
            raise _TooComplex
    return combined
