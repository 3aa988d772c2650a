"""What a migration statement does, read from its SQL text.

sqlglot (imported lazily) reads the statements whose trees it types well: CREATE INDEX /
TABLE, DROP, TRUNCATE, UPDATE / DELETE, SELECT, and anything the tokens do not
recognise. About a quarter of real migration statements come back from it as an opaque
``exp.Command`` (VALIDATE CONSTRAINT, ... USING INDEX, REINDEX, ALTER TYPE ... VALUE,
DETACH PARTITION, VACUUM, domains) or fail to parse (CLUSTER), so those, every ALTER
TABLE action list (whose forms mix freely in one statement), SET, INSERT and transaction
control are read from a small lexer's tokens instead, which is also faster.
Nothing here raises on bad SQL: an unreadable statement is described as ``unparseable``
and the lint turns that into a finding.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field

# --- lexer --------------------------------------------------------------------------

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9$]*")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")


@dataclass(frozen=True)
class Token:
    kind: str  # word, ident (quoted identifier), string, number, punct
    text: str  # as written

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else self.text


@dataclass(frozen=True)
class Lexed:
    tokens: tuple[Token, ...]
    comments: tuple[str, ...]
    complete: bool  # False: an unterminated string, identifier or comment


def lex(sql: str) -> Lexed:
    """Split SQL into tokens and comments (PostgreSQL quoting rules, dollar quotes)."""
    tokens: list[Token] = []
    comments: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            comments.append(sql[i + 2 : end].strip())
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                return Lexed(tuple(tokens), tuple(comments), False)
            comments.append(sql[i + 2 : end].strip())
            i = end + 2
        elif ch in "'\"" or (ch in "eE" and sql.startswith("'", i + 1)):
            start = i
            quote = sql[i + 1] if ch in "eE" else ch
            i = i + 2 if ch in "eE" else i + 1
            while True:
                if i >= n:
                    return Lexed(tuple(tokens), tuple(comments), False)
                if ch in "eE" and sql[i] == "\\":
                    i += 2
                    continue
                if sql[i] == quote:
                    if sql.startswith(quote, i + 1):
                        i += 2
                        continue
                    i += 1
                    break
                i += 1
            tokens.append(Token("ident" if quote == '"' else "string", sql[start:i]))
        elif ch == "$" and (m := _DOLLAR.match(sql, i)):
            end = sql.find(m.group(0), m.end())
            if end < 0:
                return Lexed(tuple(tokens), tuple(comments), False)
            tokens.append(Token("string", sql[i : end + len(m.group(0))]))
            i = end + len(m.group(0))
        elif m := _WORD.match(sql, i):
            tokens.append(Token("word", m.group(0)))
            i = m.end()
        elif m := _NUMBER.match(sql, i):
            tokens.append(Token("number", m.group(0)))
            i = m.end()
        else:
            two = sql[i : i + 2]
            if two in ("::", "<=", ">=", "<>", "!=", "||", "&&"):
                tokens.append(Token("punct", two))
                i += 2
            else:
                tokens.append(Token("punct", ch))
                i += 1
    return Lexed(tuple(tokens), tuple(comments), True)


def split_script(script: str) -> list[tuple[str, int]]:
    """Split a SQL script into statements (with their leading comments) and the line
    each starts on. Semicolons inside quotes, dollar quotes and comments do not split."""
    statements: list[tuple[str, int]] = []
    i, n, start = 0, len(script), 0

    def flush(end: int) -> None:
        text = script[start:end].strip()
        if text and lex(text).tokens:
            leading = len(script[start:end]) - len(script[start:end].lstrip())
            statements.append((text, script.count("\n", 0, start + leading) + 1))

    while i < n:
        ch = script[i]
        if script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end
        elif script.startswith("/*", i):
            end = script.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch in "'\"":
            i += 1
            while i < n:
                if script[i] == ch:
                    if script.startswith(ch, i + 1):
                        i += 2
                        continue
                    break
                i += 1
            i += 1
        elif ch == "$" and (m := _DOLLAR.match(script, i)) and (i == 0 or not _WORD.match(script[i - 1])):
            end = script.find(m.group(0), m.end())
            i = n if end < 0 else end + len(m.group(0))
        elif ch == ";":
            flush(i)
            i += 1
            start = i
        else:
            i += 1
    flush(n)
    # A trailing comment-only chunk belongs to no statement; comments stay with the
    # statement that follows them.
    return statements


# --- description ------------------------------------------------------------------

_CONSTRAINT_WORDS = {
    "DEFAULT",
    "NOT",
    "NULL",
    "CONSTRAINT",
    "PRIMARY",
    "UNIQUE",
    "REFERENCES",
    "CHECK",
    "GENERATED",
    "COLLATE",
    "COMPRESSION",
    "STORAGE",
}


@dataclass
class Action:
    """One ALTER TABLE action (or a column of CREATE TABLE)."""

    kind: str  # add-column, set-not-null, drop-not-null, alter-type, add-constraint,
    # validate-constraint, drop-column, drop-constraint, rename-column, rename-table,
    # detach-partition, attach-partition, set-default, other
    column: str = ""
    name: str = ""  # constraint name, new name
    constraint: str = ""  # foreign-key, check, unique, primary-key, exclude
    not_valid: bool = False
    using_index: bool = False
    type_name: str = ""  # lower-cased, e.g. "varchar(20)"
    default: str | None = None
    default_functions: tuple[str, ...] = ()
    not_null: bool = False
    generated_stored: bool = False
    identity: bool = False
    concurrently: bool = False
    if_not_exists: bool = False
    words: tuple[str, ...] = ()

    @property
    def type_base(self) -> str:
        return re.sub(r"\s*\(.*", "", self.type_name).strip()


@dataclass
class Described:
    """The facts about one statement that the lint rules read."""

    sql: str
    kind: str  # see describe()
    tables: list[str] = field(default_factory=list)  # target relations, as written
    index: str = ""  # index name for CREATE / DROP INDEX, REINDEX INDEX
    actions: list[Action] = field(default_factory=list)
    concurrently: bool = False
    unique: bool = False
    if_exists: bool = False  # IF EXISTS / IF NOT EXISTS present
    cascade: bool = False
    option: str = ""  # SET: name; REINDEX: target kind; DROP: object kind
    value: str = ""  # SET: value
    local: bool = False  # SET LOCAL
    comments: tuple[str, ...] = ()
    words: tuple[str, ...] = ()  # upper-cased word tokens and punctuation
    parsed_by: str = "tokens"  # "sqlglot" or "tokens"
    problem: str = ""  # why the statement could not be read

    @property
    def is_ddl(self) -> bool:
        return self.kind not in {
            "set",
            "select",
            "insert",
            "update",
            "delete",
            "begin",
            "commit",
            "rollback",
            "savepoint",
            "other",
            "unparseable",
            "empty",
            "show",
        }


def _sqlglot_parse(sql: str) -> tuple[object | None, str]:
    """The sqlglot tree (None when it raised) and the error text."""
    import sqlglot

    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # "falling back to parsing as a Command"
    try:
        trees = sqlglot.parse(sql, read="postgres")
    except Exception as exc:  # sqlglot raises ParseError, TokenError and friends
        return None, str(exc).splitlines()[0][:200]
    finally:
        logger.setLevel(level)
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        return None, f"{len(trees)} statements in one"
    return trees[0], ""


def _text(tokens: list[Token] | tuple[Token, ...]) -> str:
    out = ""
    for tok in tokens:
        if out and not (
            tok.text in ",)." or out.endswith(("(", ".")) or tok.text == "(" and out[-1:].isalnum()
        ):
            out += " "
        out += tok.text
    return out


def _name(tokens: tuple[Token, ...], i: int) -> tuple[str, int]:
    """A possibly qualified name starting at tokens[i]; returns it and the next index."""
    parts: list[str] = []
    while i < len(tokens) and tokens[i].kind in ("word", "ident"):
        parts.append(tokens[i].text)
        if i + 1 < len(tokens) and tokens[i + 1].text == ".":
            i += 2
            continue
        i += 1
        break
    return ".".join(parts), i


def _skip(tokens: tuple[Token, ...], i: int, *words: str) -> int:
    """Skip an optional sequence of words (e.g. IF NOT EXISTS)."""
    if all(i + k < len(tokens) and tokens[i + k].upper == w for k, w in enumerate(words)):
        return i + len(words)
    return i


def _split_top(tokens: tuple[Token, ...]) -> list[tuple[Token, ...]]:
    """Split on commas outside parentheses."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.text == "(":
            depth += 1
        elif tok.text == ")":
            depth -= 1
        if tok.text == "," and depth == 0 and tok.kind == "punct":
            parts.append([])
        else:
            parts[-1].append(tok)
    return [tuple(p) for p in parts if p]


def _column_def(toks: tuple[Token, ...], action: Action) -> None:
    """Read a column definition (name type [constraints]) into ``action``."""
    action.column, i = _name(toks, 0)
    type_end = i
    depth = 0
    while type_end < len(toks):
        tok = toks[type_end]
        if depth == 0 and tok.upper in _CONSTRAINT_WORDS:
            break
        depth += tok.text == "("
        depth -= tok.text == ")"
        type_end += 1
    action.type_name = _text(toks[i:type_end]).lower()
    rest = toks[type_end:]
    words = [t.upper for t in rest]
    action.words = tuple(words)
    for k, word in enumerate(words):
        if word == "NOT" and k + 1 < len(words) and words[k + 1] == "NULL":
            action.not_null = True
        if word == "DEFAULT":
            end, depth = k + 1, 0
            while end < len(rest):
                if depth == 0 and rest[end].upper in _CONSTRAINT_WORDS - {"NULL"}:
                    break
                depth += rest[end].text == "("
                depth -= rest[end].text == ")"
                end += 1
            expr = rest[k + 1 : end]
            action.default = _text(expr)
            action.default_functions = tuple(
                expr[j].text.lower()
                for j in range(len(expr) - 1)
                if expr[j].kind == "word" and expr[j + 1].text == "("
            )
        if word == "GENERATED":
            if "STORED" in words[k:]:
                action.generated_stored = True
            if "IDENTITY" in words[k:]:
                action.identity = True
        if word == "PRIMARY":
            action.constraint = "primary-key"
        elif word == "UNIQUE" and not action.constraint:
            action.constraint = "unique"
        elif word == "REFERENCES" and not action.constraint:
            action.constraint = "foreign-key"
        elif word == "CHECK" and not action.constraint:
            action.constraint = "check"


def _constraint(toks: tuple[Token, ...], action: Action) -> None:
    words = [t.upper for t in toks]
    action.words = tuple(words)
    i = 0
    if words[:1] == ["CONSTRAINT"]:
        action.name, i = _name(toks, 1)
    head = words[i] if i < len(words) else ""
    action.constraint = {
        "FOREIGN": "foreign-key",
        "CHECK": "check",
        "UNIQUE": "unique",
        "PRIMARY": "primary-key",
        "EXCLUDE": "exclude",
    }.get(head, head.lower())
    action.not_valid = "VALID" in words and words[words.index("VALID") - 1] == "NOT"
    action.using_index = any(words[k : k + 2] == ["USING", "INDEX"] for k in range(len(words)))


def _alter_actions(toks: tuple[Token, ...]) -> list[Action]:
    actions = []
    for part in _split_top(toks):
        words = [t.upper for t in part]
        action = Action("other", words=tuple(words))
        if words[:1] == ["ADD"]:
            i = _skip(part, 1, "COLUMN")
            j = _skip(part, i, "IF", "NOT", "EXISTS")
            action.if_not_exists = j != i
            if (
                i < len(words)
                and words[i] in ("CONSTRAINT", "FOREIGN", "CHECK", "UNIQUE", "PRIMARY", "EXCLUDE")
                and i == 1
            ):
                action.kind = "add-constraint"
                _constraint(part[1:], action)
            else:
                action.kind = "add-column"
                _column_def(part[j:], action)
                action.words = tuple(words)
        elif words[:1] == ["ALTER"]:
            i = _skip(part, 1, "COLUMN")
            action.column, i = _name(part, i)
            rest = words[i:]
            if rest[:3] == ["SET", "NOT", "NULL"]:
                action.kind = "set-not-null"
            elif rest[:3] == ["DROP", "NOT", "NULL"]:
                action.kind = "drop-not-null"
            elif rest[:1] == ["TYPE"] or rest[:3] == ["SET", "DATA", "TYPE"]:
                action.kind = "alter-type"
                k = i + (1 if rest[:1] == ["TYPE"] else 3)
                end = k
                while end < len(part) and part[end].upper not in ("USING", "COLLATE"):
                    end += 1
                action.type_name = _text(part[k:end]).lower()
            elif rest[:2] == ["SET", "DEFAULT"]:
                action.kind = "set-default"
            elif rest[:1] == ["ADD"] and "IDENTITY" in rest:
                action.kind = "add-identity"
        elif words[:2] == ["VALIDATE", "CONSTRAINT"]:
            action.kind = "validate-constraint"
            action.name, _ = _name(part, 2)
        elif words[:1] == ["DROP"]:
            if words[1:2] == ["CONSTRAINT"]:
                action.kind = "drop-constraint"
            elif words[1:3] in (["NOT", "NULL"],):
                action.kind = "other"
            else:
                action.kind = "drop-column"
                i = _skip(part, 1, "COLUMN")
                i = _skip(part, i, "IF", "EXISTS")
                action.column, _ = _name(part, i)
        elif words[:1] == ["RENAME"]:
            if words[1:2] == ["TO"]:
                action.kind = "rename-table"
                action.name, _ = _name(part, 2)
            elif words[1:2] != ["CONSTRAINT"]:
                action.kind = "rename-column"
                i = _skip(part, 1, "COLUMN")
                action.column, _ = _name(part, i)
        elif words[:2] == ["DETACH", "PARTITION"]:
            action.kind = "detach-partition"
            action.name, _ = _name(part, 2)
            action.concurrently = "CONCURRENTLY" in words
            action.not_valid = "FINALIZE" in words  # FINALIZE completes an earlier CONCURRENTLY
        actions.append(action)
    return actions


_ROUTINES = {"FUNCTION", "PROCEDURE", "ROUTINE", "AGGREGATE", "OPERATOR"}


def _from_tokens(d: Described, toks: tuple[Token, ...]) -> None:
    w = [t.upper for t in toks]
    if w[:2] == ["ALTER", "TABLE"]:
        i = _skip(toks, 2, "IF", "EXISTS")
        d.if_exists = i != 2
        i = _skip(toks, i, "ONLY")
        name, i = _name(toks, i)
        i += 1 if i < len(w) and w[i] == "*" else 0
        d.kind, d.tables, d.actions = "alter-table", [name], _alter_actions(toks[i:])
    elif w[:1] == ["REINDEX"]:
        i = 1
        if i < len(w) and w[i] == "(":
            close = w.index(")", i) if ")" in w[i:] else len(w) - 1
            d.concurrently = "CONCURRENTLY" in w[i:close]
            i = close + 1
        d.kind, d.option = "reindex", (w[i].lower() if i < len(w) else "")
        i += 1
        if i < len(w) and w[i] == "CONCURRENTLY":
            d.concurrently, i = True, i + 1
        name, _ = _name(toks, i)
        if d.option == "index":
            d.index = name
        elif d.option == "table":
            d.tables = [name]
    elif w[:1] == ["VACUUM"]:
        opts = w[1 : w.index(")")] if w[1:2] == ["("] and ")" in w else w[1:]
        full = "FULL" in opts
        d.kind = "vacuum-full" if full else "vacuum"
        rest = (
            toks[w.index(")") + 1 :]
            if w[1:2] == ["("] and ")" in w
            else tuple(t for t in toks[1:] if t.upper not in ("FULL", "FREEZE", "VERBOSE", "ANALYZE"))
        )
        d.tables = [n for part in _split_top(tuple(rest)) if (n := _name(part, 0)[0])]
    elif w[:1] == ["CLUSTER"]:
        i = _skip(toks, 1, "VERBOSE")
        name, _ = _name(toks, i)
        d.kind, d.tables = "cluster", [name] if name else []
    elif w[:2] == ["ALTER", "SCHEMA"] and "RENAME" in w:
        d.kind, d.option = "rename-schema", _name(toks, 2)[0]
    elif w[:2] == ["ALTER", "TYPE"] and ("VALUE" in w):
        d.option = _name(toks, 2)[0]
        d.kind = "enum-rename-value" if "RENAME" in w else "enum-add-value"
        d.actions = [Action("other", words=tuple(w))]
    elif w[:2] == ["CREATE", "DOMAIN"]:
        d.kind = "create-domain"
        d.option = _name(toks, 2)[0]
    elif w[:2] == ["ALTER", "DOMAIN"]:
        d.kind = "alter-domain"
        d.option = _name(toks, 2)[0]
    elif w[:2] == ["LOCK", "TABLE"] or w[:1] == ["LOCK"]:
        d.kind = "lock"
    elif w[:1] in (["BEGIN"], ["START"]):
        d.kind = "begin"
    elif w[:1] in (["COMMIT"], ["END"]):
        d.kind = "commit"
    elif w[:1] in (["ROLLBACK"], ["ABORT"]):
        d.kind = "rollback" if "TO" not in w else "savepoint"
    elif w[:1] in (["SAVEPOINT"], ["RELEASE"]):
        d.kind = "savepoint"
    elif w[:1] == ["SET"]:
        i = _skip(toks, 1, "LOCAL")
        d.local = i != 1
        i = _skip(toks, i, "SESSION")
        d.kind, d.option = "set", (w[i].lower() if i < len(w) else "")
        d.value = _text(toks[i + 2 :]) if i + 1 < len(w) and w[i + 1] in ("=", "TO") else ""
    elif w[:1] in (["SELECT"], ["WITH"], ["VALUES"], ["SHOW"], ["COMMENT"], ["GRANT"], ["REVOKE"]):
        d.kind = "select" if w[0] != "SHOW" else "show"
    elif w[:1] in (["UPDATE"], ["DELETE"], ["INSERT"]):
        d.kind = w[0].lower()
        i = 1 if w[0] == "UPDATE" else 2
        i = _skip(toks, i, "ONLY")
        d.tables = [_name(toks, i)[0]]
    elif w[:1] == ["DROP"] and w[1:2] and w[1] in _ROUTINES and w.count("(") == w.count(")"):
        # sqlglot refuses argument names and modes in the signature: DROP FUNCTION f(a int).
        d.kind, d.option = "ddl-other", w[1].lower()
        d.if_exists = w[2:4] == ["IF", "EXISTS"]
        d.cascade = w[-1] == "CASCADE"
    elif w[:1] == ["CREATE"] and "OPERATOR" in w[1:4] and w[1] in ("OPERATOR", "OR"):
        d.kind, d.option = "ddl-other", "operator"  # sqlglot reads its options list as properties
    elif w[:1] in (["CREATE"], ["ALTER"], ["DROP"], ["TRUNCATE"]):
        d.kind = "ddl-other"
    else:
        d.kind = "other"


def _from_tree(d: Described, tree: object) -> bool:
    """Fill ``d`` from a typed sqlglot tree; False when tokens must decide."""
    from sqlglot import exp

    def table_name(t: exp.Expression | None) -> str:
        return t.sql("postgres") if isinstance(t, exp.Table) else ""

    if isinstance(tree, exp.Create):
        kind = str(tree.args.get("kind") or "").upper()
        d.if_exists = bool(tree.args.get("exists"))
        if kind == "INDEX" and isinstance(tree.this, exp.Index):
            d.kind, d.concurrently = "create-index", bool(tree.args.get("concurrently"))
            d.unique = bool(tree.args.get("unique"))
            d.index = tree.this.name
            d.tables = [table_name(tree.this.args.get("table"))]
            return True
        if kind == "TABLE":
            d.kind = "create-table"
            schema = tree.this
            table = schema.this if isinstance(schema, exp.Schema) else schema
            d.tables = [table_name(table)]
            return True  # column definitions are read from tokens (same reader as ADD COLUMN)
        return False
    if isinstance(tree, exp.Drop):
        kind = str(tree.args.get("kind") or "").upper()
        d.if_exists = bool(tree.args.get("exists"))
        d.cascade = bool(tree.args.get("cascade"))
        d.concurrently = bool(tree.args.get("concurrently"))
        d.option = kind.lower()
        names = [t.sql("postgres") for t in tree.args.get("tables") or [tree.this] if t is not None]
        if kind == "INDEX":
            d.kind, d.index = "drop-index", names[0] if names else ""
            d.tables = names
        elif kind in ("TABLE", "SCHEMA", "DATABASE"):
            d.kind, d.tables = f"drop-{kind.lower()}", names
        else:
            d.kind = "ddl-other"
        return True
    if isinstance(tree, exp.TruncateTable):
        d.kind = "truncate"
        d.tables = [t.sql("postgres") for t in tree.expressions]
        d.cascade = str(tree.args.get("option") or "").upper() == "CASCADE"
        return True
    if isinstance(tree, (exp.Update, exp.Delete)):
        d.kind = "update" if isinstance(tree, exp.Update) else "delete"
        d.tables = [table_name(tree.this)]
        return True
    if isinstance(tree, exp.Insert):
        d.kind = "insert"
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        d.tables = [table_name(target)]
        return True
    if isinstance(tree, exp.Transaction):
        d.kind = "begin"
        return True
    if isinstance(tree, exp.Commit):
        d.kind = "commit"
        return True
    if isinstance(tree, exp.Rollback):
        d.kind = "rollback" if not tree.args.get("savepoint") else "savepoint"
        return True
    if isinstance(tree, exp.Alter) and str(tree.args.get("kind") or "").upper() == "TABLE":
        return False  # actions from tokens; the tree only confirms the target
    if isinstance(tree, exp.Select):
        d.kind = "select"
        return True
    return False


# Statements whose sqlglot tree is read. The others (ALTER, SET, transaction control,
# maintenance, INSERT) are read from tokens: sqlglot returns an opaque Command for half
# of them, and parsing costs milliseconds per statement (large INSERTs most of all).
_TREE_FIRST = {"CREATE", "DROP", "TRUNCATE", "UPDATE", "DELETE", "SELECT", "WITH"}


@functools.lru_cache(maxsize=2048)
def describe(sql: str) -> Described:
    """Describe one statement; never raises."""
    lexed = lex(sql)
    d = Described(sql=sql, kind="empty", comments=lexed.comments, words=tuple(t.upper for t in lexed.tokens))
    if not lexed.tokens:
        return d
    if not lexed.complete:
        d.kind, d.problem = "unparseable", "unterminated quote, identifier or comment"
        return d
    toks = tuple(t for t in lexed.tokens if not (t.kind == "punct" and t.text == ";"))
    head = toks[0].upper
    tree, error = _sqlglot_parse(sql) if head in _TREE_FIRST else (None, "")
    from sqlglot import exp

    if tree is not None and not isinstance(tree, exp.Command) and _from_tree(d, tree):
        d.parsed_by = "sqlglot"
    else:
        _from_tokens(d, toks)
        if d.kind in ("other", "ddl-other"):
            if head not in _TREE_FIRST:
                tree, error = _sqlglot_parse(sql)
            if tree is None and not d.option:  # a token rule that names the object kind read it
                d.kind, d.problem = "unparseable", f"sqlglot: {error}; no token rule recognises it"
    if d.kind == "create-table":
        _create_table_columns(d, toks)
    return d


def _create_table_columns(d: Described, toks: tuple[Token, ...]) -> None:
    """Columns of CREATE TABLE name (...) as add-column actions (types, defaults)."""
    words = [t.upper for t in toks]
    if "(" not in words:
        return
    start = words.index("(")
    depth, end = 0, len(toks)
    for k in range(start, len(toks)):
        depth += toks[k].text == "("
        depth -= toks[k].text == ")"
        if depth == 0:
            end = k
            break
    for part in _split_top(toks[start + 1 : end]):
        head = part[0].upper
        if head in ("CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "EXCLUDE", "LIKE"):
            continue
        action = Action("add-column")
        _column_def(part, action)
        d.actions.append(action)
