"""A table as the generator needs it: which columns to draw, their spaces, and the rules.

Built from the shared catalog (``postgres/catalog.py``): identity and sequence-backed
keys, and generated columns, are left to the database; every other column gets the
space of its type (domains resolved, a domain's CHECKs and NOT NULL included). CHECK
constraints become ``Rule``s; UNIQUE constraints and unique indexes (expression and
partial ones too) become ``UniqueKey``s; foreign keys become ``ForeignKey``s. ``order``
sorts tables so that parents a NOT NULL foreign key needs come first.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

from psycopg import sql

from pytest_dbarch.constraints.checks_parse import Rule, columns_of, parse, rename_column
from pytest_dbarch.constraints.spaces import Kind, Space, kind_of
from pytest_dbarch.postgres.catalog import Catalog, Column, Constraint, Index, Table


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    column: Column
    kind: Kind
    space: Space  # type, NOT NULL (column's or domain's)

    @property
    def nullable(self) -> bool:
        return self.space.nulls != "never"


@dataclass(frozen=True)
class ForeignKey:
    constraint: Constraint
    columns: tuple[str, ...]
    parent: str  # schema.table
    parent_columns: tuple[str, ...]
    nullable: bool  # a row may leave it NULL (some column nullable, MATCH SIMPLE)
    self_reference: bool
    from_partition: bool = False  # declared on the partitions of a partitioned table, not on it

    @property
    def name(self) -> str:
        return self.constraint.name


@dataclass(frozen=True)
class UniqueKey:
    name: str
    columns: tuple[str, ...]  # every column the key and its predicate read
    keys: tuple[str, ...]  # SQL of each key part: a quoted column or an expression
    key_columns: tuple[str, ...]  # the columns the key parts read
    predicate: Rule | None  # partial index: rows outside it are not constrained
    nulls_not_distinct: bool
    kind: str  # "primary key", "unique", "unique index" or "exclusion"
    plain: bool  # keys are plain columns (no expressions) compared with = (rows collide when equal)
    operators: tuple[str, ...] = ()  # per key part, how rows collide (exclusion: "=", "&&", ...); () is all "="

    @property
    def comparisons(self) -> tuple[str, ...]:
        return self.operators or ("=",) * len(self.keys)


@dataclass
class TableSpec:
    table: Table
    columns: dict[str, ColumnSpec]  # the ones we draw, in table order
    left_out: tuple[str, ...]  # identity, sequence-backed and generated columns
    rules: list[Rule]
    uniques: list[UniqueKey]
    foreign_keys: list[ForeignKey]
    problems: list[str] = field(default_factory=list)  # columns we cannot draw, and why

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def qualified(self) -> str:
        return self.table.qualified

    @cached_property
    def ident(self) -> sql.Composable:
        return sql.Identifier(self.table.schema, self.table.name)

    @cached_property
    def categories(self) -> dict[str, str]:
        return {c.name: c.category for c in self.table.columns}

    @cached_property
    def padded(self) -> dict[str, int]:
        return padded_widths(self.table)

    def column(self, name: str) -> Column:
        return self.table.column(name)

    def check_rules(self) -> list[Rule]:
        return [r for r in self.rules if r.kind == "check"]


def left_to_database(column: Column) -> bool:
    """Identity, serial and generated columns: the database fills them."""
    if not column.writable or column.identity:
        return True
    return bool(column.default and column.default.startswith("nextval("))


def padded_widths(table: Table) -> dict[str, int]:
    """char(n) columns and their n: a regex or LIKE sees their padding (``Rule.of``)."""
    return {c.name: c.length for c in table.columns if c.type_name == "bpchar" and c.length}


def build(table: Table, catalog: Catalog) -> TableSpec:
    categories = {c.name: c.category for c in table.columns}
    padded = padded_widths(table)
    names = [c.name for c in table.columns]
    columns: dict[str, ColumnSpec] = {}
    left_out: list[str] = []
    rules: list[Rule] = []
    problems: list[str] = []
    for column in table.columns:
        if left_to_database(column):
            left_out.append(column.name)
            continue
        kind = kind_of(column, catalog.encoding)
        nullable = not (column.not_null or column.domain_not_null)
        if kind.name == "unsupported" or (kind.element is not None and kind.element.name == "unsupported"):
            if nullable or column.default is not None:
                left_out.append(column.name)
                continue
            problems.append(f"{column.name}: no generator for type {column.type}")
            continue
        columns[column.name] = ColumnSpec(column.name, column, kind, Space.of(kind, nullable))
        for name, expression in zip(column.domain_check_names or [""] * len(column.domain_checks),
                                    column.domain_checks):
            tree = parse(expression)
            renamed = rename_column(tree, "value", column.name) if tree is not None else None
            rules.append(Rule.of(name or f"{column.domain} check", expression, categories, names,
                                 kind="domain", tree=renamed, padded=padded))
    for constraint in table.checks:
        if constraint.expression:
            rules.append(Rule.of(constraint.name, constraint.expression, categories, names, padded=padded))
    partitions = _partition_rule(table, catalog, categories, names)
    if partitions is not None:
        rules.append(partitions)
    uniques = _uniques(table, categories, names)
    uniques += _partition_uniques(table, catalog, uniques, categories, names)
    foreign_keys = [_foreign_key(table, fk, columns) for fk in table.foreign_keys]
    if table.kind == "partitioned table":  # keys declared on every partition bind the parent's rows too
        seen = {(fk.columns, fk.parent) for fk in foreign_keys}
        for part in (t for t in catalog if table.qualified in t.parents):
            for fk in part.foreign_keys:
                made = _foreign_key(table, fk, columns, from_partition=True)
                if (made.columns, made.parent) not in seen:
                    seen.add((made.columns, made.parent))
                    foreign_keys.append(made)
    return TableSpec(table, columns, tuple(left_out), rules, uniques, foreign_keys, problems)


def _partition_rule(table: Table, catalog: Catalog, categories: dict[str, str], names: list[str]) -> Rule | None:
    """A partitioned table takes only rows some partition's bounds admit: the OR of their
    partition constraints, aimed at like a CHECK (the server says "no partition found")."""
    if table.kind != "partitioned table":
        return None
    bounds = [t.partition_constraint for t in catalog if table.qualified in t.parents and t.partition_constraint]
    if not bounds:
        return None
    expression = " OR ".join(f"({b})" for b in bounds)
    return Rule.of(f"partitions of {table.name}", expression, categories, names, kind="partition")


def _foreign_key(table: Table, fk: Constraint, columns: dict[str, ColumnSpec],
                 from_partition: bool = False) -> ForeignKey:
    nullable_columns = [c for c in fk.columns if c not in columns or columns[c].nullable]
    nullable = bool(nullable_columns) if fk.match != "FULL" else all(
        c not in columns or columns[c].nullable for c in fk.columns)
    parent = f"{fk.ref_schema}.{fk.ref_table}"
    return ForeignKey(fk, fk.columns, parent, fk.ref_columns, nullable, parent == table.qualified, from_partition)


def _uniques(table: Table, categories: dict[str, str], names: list[str]) -> list[UniqueKey]:
    keys: list[UniqueKey] = []
    for index in table.indexes:
        if not index.unique or not index.valid:
            continue
        parts = _key_parts(index)
        if parts is None:
            continue
        key_sql, key_columns, plain = parts
        columns = key_columns
        predicate = None
        if index.predicate:
            predicate = Rule.of(f"{index.name} predicate", index.predicate, categories, names, kind="predicate",
                                padded=padded_widths(table))
            columns = tuple(dict.fromkeys(columns + tuple(sorted(predicate.columns))))
        kind = "primary key" if index.primary else ("unique" if index.constraint else "unique index")
        keys.append(UniqueKey(index.constraint or index.name, columns, key_sql, key_columns, predicate,
                              index.nulls_not_distinct, kind, plain))
    return keys + _exclusions(table, categories, names)


def _partition_uniques(table: Table, catalog: Catalog, own: list[UniqueKey], categories: dict[str, str],
                       names: list[str]) -> list[UniqueKey]:
    """UNIQUE indexes a partition has and its partitioned table lacks (MusicBrainz's
    ``artist_release_nonva_idx_uniq``): keys of the rows its bounds admit, as if partial."""
    if table.kind != "partitioned table":
        return []
    inherited = {key.keys for key in own}
    keys = []
    for partition in catalog:
        if table.qualified not in partition.parents or not partition.partition_constraint:
            continue
        for key in _uniques(partition, categories, names):
            if key.keys in inherited or key.kind == "exclusion":
                continue
            bound = f"({partition.partition_constraint})"
            if key.predicate is not None:
                bound += f" AND ({key.predicate.sql})"
            predicate = Rule.of(f"{key.name} predicate", bound, categories, names, kind="predicate",
                                padded=padded_widths(table))
            columns = tuple(dict.fromkeys(key.key_columns + tuple(sorted(predicate.columns))))
            keys.append(replace(key, columns=columns, predicate=predicate))
    return keys


def _exclusions(table: Table, categories: dict[str, str], names: list[str]) -> list[UniqueKey]:
    """EXCLUDE constraints as keys whose parts collide by their own operators: two rows
    conflict when every ``part <op> part`` is true (``room WITH =, during WITH &&``)."""
    indexes = {i.name: i for i in table.indexes}
    keys: list[UniqueKey] = []
    for constraint in table.constraints:
        index = indexes.get(constraint.index or "")
        if constraint.kind != "exclusion" or index is None or not index.valid:
            continue
        parts = _key_parts(index)
        operators = _exclusion_operators(constraint.definition)
        if parts is None or operators is None or len(operators) != len(parts[0]):
            continue
        key_sql, key_columns, plain = parts
        columns = key_columns
        predicate = None
        if index.predicate:
            predicate = Rule.of(f"{constraint.name} predicate", index.predicate, categories, names, kind="predicate",
                                padded=padded_widths(table))
            columns = tuple(dict.fromkeys(columns + tuple(sorted(predicate.columns))))
        keys.append(UniqueKey(constraint.name, columns, key_sql, key_columns, predicate, False, "exclusion",
                              plain and all(op == "=" for op in operators), operators))
    return keys


def _exclusion_operators(definition: str) -> tuple[str, ...] | None:
    """The operators of ``EXCLUDE USING gist (room WITH =, during WITH &&) ...``, in order."""
    start = definition.find("(")
    if not definition.startswith("EXCLUDE") or start < 0:
        return None
    depth, element, elements = 0, "", []
    for char in definition[start + 1:]:
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                elements.append(element)
                break
            depth -= 1
        if char == "," and depth == 0:
            elements.append(element)
            element = ""
            continue
        element += char
    operators = []
    for element in elements:
        _, with_, operator = element.rpartition(" WITH ")
        if not with_ or not operator.strip():
            return None
        operators.append(operator.strip())
    return tuple(operators)


def _key_parts(index: Index) -> tuple[tuple[str, ...], tuple[str, ...], bool] | None:
    """SQL of each key part and the columns they read; None when it cannot be read."""
    expressions: list[str] = []
    if index.expressions:
        tree = parse(f"SELECT {index.expressions}")
        if tree is None:
            return None
        expressions = [e.sql(dialect="postgres") for e in tree.expressions]
    parts: list[str] = []
    columns: list[str] = []
    plain = True
    for name in index.columns:
        if name is not None:
            parts.append(sql.Identifier(name).as_string(None))
            columns.append(name)
            continue
        if not expressions:
            return None
        expression = expressions.pop(0)
        parts.append(f"({expression})")
        plain = False
        tree = parse(expression)
        if tree is None:
            return None
        columns.extend(sorted(columns_of(tree)))
    return tuple(parts), tuple(dict.fromkeys(columns)), plain


def order(specs: list[TableSpec]) -> list[TableSpec]:
    """Parents before children, following NOT NULL foreign keys (cycles keep table order)."""
    by_name = {s.qualified: s for s in specs}
    done: dict[str, None] = {}
    visiting: set[str] = set()

    def visit(spec: TableSpec) -> None:
        if spec.qualified in done or spec.qualified in visiting:
            return
        visiting.add(spec.qualified)
        for fk in spec.foreign_keys:
            parent = by_name.get(fk.parent)
            if parent is not None and not fk.self_reference and not fk.nullable:
                visit(parent)
        visiting.discard(spec.qualified)
        done[spec.qualified] = None

    for spec in specs:
        visit(spec)
    return [by_name[name] for name in done]
