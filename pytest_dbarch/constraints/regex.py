"""PostgreSQL regular expressions (POSIX AREs) read as Python ones, and strings drawn from them.

PostgreSQL's ``~`` is not Python's ``re``: ``$`` never matches before a trailing newline
(Python's does, so ``'ABC\\n' ~ '^[A-Z]{3}$'`` is false in PostgreSQL and a Python match),
``.`` matches a newline, ``\\b`` is a backspace and ``\\y`` the word boundary, ``\\m`` /
``\\M`` mark word starts and ends, ``\\x`` takes any number of hex digits, and classes such
as ``[[:alpha:]]`` or ``\\w`` follow the server's locale. ``translate`` rewrites a pattern
into a Python one that agrees with PostgreSQL on ASCII text (``re.ASCII``); a
``Pattern`` says when a string falls outside that (non-ASCII text with a locale-dependent
construct), so callers ask the server instead of trusting Python. Constructs with no
faithful translation (collating elements, BRE/ERE flavours) raise ``Untranslatable``.

``sample`` draws a matching string from a Python pattern with a ``random.Random``, for
bulk generation where hypothesis' ``from_regex`` (one example per test case) does not fit.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from typing import Any

try:  # Python 3.11+
    import re._constants as sre_constants  # type: ignore[import-not-found]
    import re._parser as sre_parse  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]


class Untranslatable(ValueError):
    """The PostgreSQL pattern uses something Python's ``re`` cannot express faithfully."""


_CLASSES = {
    "alpha": "a-zA-Z",
    "upper": "A-Z",
    "lower": "a-z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "xdigit": "0-9a-fA-F",
    "space": " \\t\\n\\r\\f\\v",
    "blank": " \\t",
    "punct": re.escape(string.punctuation).replace("-", "\\-"),
    "cntrl": "\\x00-\\x1f\\x7f",
    "print": " -~",
    "graph": "!-~",
    "word": "a-zA-Z0-9_",
}
_ESCAPE_CLASSES = {"d": "0-9", "s": " \\t\\n\\r\\f\\v", "w": "a-zA-Z0-9_"}
_SIMPLE_ESCAPES = {"a": "\\x07", "b": "\\x08", "B": "\\\\", "e": "\\x1b", "f": "\\f", "n": "\\n",
                   "r": "\\r", "t": "\\t", "v": "\\v", "0": "\\x00"}
# Outside brackets: word-boundary escapes and string anchors.
_OUTSIDE = {"y": "\\b", "Y": "\\B", "m": "\\b(?=\\w)", "M": "\\b(?<=\\w)", "A": "\\A", "Z": "\\Z",
            "d": "\\d", "D": "\\D", "s": "\\s", "S": "\\S", "w": "\\w", "W": "\\W"}
_LOCALE_ESCAPES = set("dDsSwWymMY")


@dataclass(frozen=True)
class Pattern:
    """A PostgreSQL regex (or LIKE) with its Python twin."""

    source: str  # as PostgreSQL has it
    python: str  # the translation, for re.search with ``flags``
    flags: int
    locale_sensitive: bool  # classes, word boundaries or case folding: exact on ASCII only
    pad_to: int | None = None  # matched against a char(n) value: PostgreSQL sees its padding

    @property
    def compiled(self) -> re.Pattern[str]:
        return _compile(self.python, self.flags)

    def search(self, value: str) -> bool | None:
        """Whether PostgreSQL's ``~`` matches; None when only the server can tell."""
        if self.locale_sensitive and not value.isascii():
            return None
        if self.pad_to is not None:
            value = value.rstrip(" ").ljust(self.pad_to)
        return self.compiled.search(value) is not None

    @property
    def generator(self) -> str:
        """A Python pattern whose full matches all match this one (anchors dropped)."""
        return _strip_anchors(self.python)


_CACHE: dict[tuple[str, int], re.Pattern[str]] = {}


def _compile(pattern: str, flags: int) -> re.Pattern[str]:
    key = (pattern, flags)
    found = _CACHE.get(key)
    if found is None:
        found = _CACHE[key] = re.compile(pattern, flags)
    return found


def translate(source: str, case_insensitive: bool = False) -> Pattern:
    """The Python twin of a PostgreSQL ARE (the right operand of ``~`` / ``~*``)."""
    flags = re.ASCII | re.DOTALL
    locale = case_insensitive
    text = source
    if text.startswith("***="):
        python = re.escape(text[4:])
        return Pattern(source, python, flags | (re.IGNORECASE if case_insensitive else 0), locale)
    if text.startswith("***:"):
        text = text[4:]
    match = re.match(r"\(\?([a-z]+)\)", text)
    if match:
        for option in match.group(1):
            if option == "i":
                case_insensitive = locale = True
            elif option == "c":
                case_insensitive = False
            elif option == "x":
                flags |= re.VERBOSE
            elif option in "ns":
                if option == "n":
                    flags = (flags & ~re.DOTALL) | re.MULTILINE
            elif option == "q":
                return Pattern(source, re.escape(text[match.end():]), flags, locale)
            else:
                raise Untranslatable(f"embedded option {option!r}")
        text = text[match.end():]
    out: list[str] = []
    i = 0
    multiline = bool(flags & re.MULTILINE)
    while i < len(text):
        char = text[i]
        if char == "\\":
            piece, i, sensitive = _escape(text, i, inside=False)
            locale |= sensitive
            out.append(piece)
            continue
        if char == "[":
            piece, i, sensitive = _bracket(text, i)
            locale |= sensitive
            out.append(piece)
            continue
        if char == "$":
            out.append("$" if multiline else "\\Z")
        elif char == "^":
            out.append("^" if multiline else "\\A")
        elif char == "(" and text.startswith("(?#", i):
            end = text.find(")", i)
            i = len(text) if end < 0 else end + 1
            continue
        else:
            out.append(char)
        i += 1
    if case_insensitive:
        flags |= re.IGNORECASE
    python = "".join(out)
    try:
        _compile(python, flags)
    except re.error as exc:
        raise Untranslatable(f"{source!r}: {exc}") from None
    return Pattern(source, python, flags, locale)


def _escape(text: str, i: int, inside: bool) -> tuple[str, int, bool]:
    """Translate the escape at ``text[i] == '\\\\'``; returns (python, next index, locale)."""
    if i + 1 >= len(text):
        raise Untranslatable("trailing backslash")
    char = text[i + 1]
    if char in ("x", "u", "U"):
        digits = {"u": 4, "U": 8}.get(char)
        j = i + 2
        if digits is None:
            while j < len(text) and text[j] in string.hexdigits:
                j += 1
        else:
            j = i + 2 + digits
        code = text[i + 2:j]
        if not code or any(c not in string.hexdigits for c in code):
            raise Untranslatable(f"bad \\{char} escape")
        return re.escape(chr(int(code, 16))), j, False
    if char == "c" and i + 2 < len(text):
        return re.escape(chr(ord(text[i + 2]) & 0x1F)), i + 3, False
    if char in _SIMPLE_ESCAPES:
        if inside and char == "B":
            return "\\\\", i + 2, False
        return _SIMPLE_ESCAPES[char], i + 2, False
    if inside:
        if char in _ESCAPE_CLASSES:
            return _ESCAPE_CLASSES[char], i + 2, True
        if char.isalnum():
            raise Untranslatable(f"\\{char} inside brackets")
        return re.escape(char), i + 2, False
    if char in _OUTSIDE:
        return _OUTSIDE[char], i + 2, char in _LOCALE_ESCAPES
    if char.isdigit():
        return "\\" + char, i + 2, False  # back-reference
    if char.isalnum():
        raise Untranslatable(f"escape \\{char}")
    return re.escape(char), i + 2, False


def _bracket(text: str, i: int) -> tuple[str, int, bool]:
    """Translate the bracket expression starting at ``text[i] == '['``."""
    j = i + 1
    out = ["["]
    locale = False
    if j < len(text) and text[j] == "^":
        out.append("^")
        j += 1
    first = True
    while j < len(text):
        char = text[j]
        if char == "]" and not first:
            out.append("]")
            return "".join(out), j + 1, locale
        first = False
        if char == "[" and j + 1 < len(text) and text[j + 1] in ":.=":
            kind = text[j + 1]
            end = text.find(kind + "]", j + 2)
            if end < 0:
                raise Untranslatable("unterminated [: :] in brackets")
            name = text[j + 2:end]
            if kind != ":" or name not in _CLASSES:
                raise Untranslatable(f"[{kind}{name}{kind}] in brackets")
            out.append(_CLASSES[name])
            locale = True
            j = end + 2
            continue
        if char == "\\":
            piece, j, sensitive = _escape(text, j, inside=True)
            locale |= sensitive
            out.append(piece)
            continue
        if char == "-" and out[-1] not in ("[", "^"):
            out.append("-")
        elif char in "[]^\\-":
            out.append("\\" + char)
        else:
            out.append(char)
        j += 1
    raise Untranslatable("unterminated bracket expression")


def like(source: str, case_insensitive: bool = False, escape: str = "\\") -> Pattern:
    """The Python twin of a LIKE pattern (always anchored at both ends)."""
    out = ["\\A"]
    i = 0
    while i < len(source):
        char = source[i]
        if escape and char == escape and i + 1 < len(source):
            out.append(re.escape(source[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    out.append("\\Z")
    flags = re.DOTALL | (re.IGNORECASE | re.ASCII if case_insensitive else 0)
    return Pattern(source, "".join(out), flags, case_insensitive)


def _strip_anchors(python: str) -> str:
    for prefix in ("\\A", "^"):
        if python.startswith(prefix):
            python = python[len(prefix):]
            break
    for suffix in ("\\Z", "$"):
        if python.endswith(suffix) and not python.endswith("\\" + suffix):
            python = python[: -len(suffix)]
            break
    return python


# --- drawing strings that match a Python pattern, with random.Random

_PRINTABLE = [chr(c) for c in range(0x20, 0x7F)]
_CATEGORY_CHARS = {
    sre_constants.CATEGORY_DIGIT: list("0123456789"),
    sre_constants.CATEGORY_SPACE: list(" \t\n\r\f\v"),
    sre_constants.CATEGORY_WORD: list(string.ascii_letters + string.digits + "_"),
}
_MAX_EXTRA_REPEAT = 6


def sample(pattern: str, flags: int, rng: random.Random, stretch: int = 0) -> str:
    """A string that (nearly always) fully matches ``pattern``; callers re-check it.
    ``stretch``: repeat an open-ended repetition at least this often more than its minimum,
    for a length bound the pattern alone rarely reaches (``length(name) > 50``)."""
    parsed = sre_parse.parse(pattern, flags)
    groups: dict[int, str] = {}
    return _emit(parsed, rng, groups, bool(flags & re.IGNORECASE), stretch)


def _emit(items: Any, rng: random.Random, groups: dict[int, str], fold: bool, stretch: int = 0) -> str:
    out: list[str] = []
    for op, arg in items:
        if op is sre_constants.LITERAL:
            char = chr(arg)
            out.append(char.swapcase() if fold and rng.random() < 0.3 else char)
        elif op is sre_constants.NOT_LITERAL:
            out.append(rng.choice([c for c in _PRINTABLE if ord(c) != arg]))
        elif op is sre_constants.ANY:
            out.append(rng.choice(_PRINTABLE))
        elif op is sre_constants.IN:
            out.append(_class_char(arg, rng))
        elif op is sre_constants.BRANCH:
            out.append(_emit(rng.choice(arg[1]), rng, groups, fold, stretch))
        elif op is sre_constants.SUBPATTERN:
            group, _, _, body = arg
            text = _emit(body, rng, groups, fold, stretch)
            if group:
                groups[group] = text
            out.append(text)
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, getattr(sre_constants, "POSSESSIVE_REPEAT", None)):
            low, high, body = arg
            if stretch and high is sre_constants.MAXREPEAT:
                low += stretch
            elif stretch:
                low = min(high, low + stretch)
            top = low + _MAX_EXTRA_REPEAT if high is sre_constants.MAXREPEAT else min(high, low + _MAX_EXTRA_REPEAT)
            out.extend(_emit(body, rng, groups, fold) for _ in range(rng.randint(low, top)))
        elif op is sre_constants.GROUPREF:
            out.append(groups.get(arg, ""))
        elif op is getattr(sre_constants, "ATOMIC_GROUP", None):
            out.append(_emit(arg, rng, groups, fold, stretch))
        # AT (anchors), ASSERT, ASSERT_NOT, GROUPREF_EXISTS: nothing to emit; callers re-check.
    return "".join(out)


def _class_char(items: Any, rng: random.Random) -> str:
    negate = False
    choices: list[str] = []
    for op, arg in items:
        if op is sre_constants.NEGATE:
            negate = True
        elif op is sre_constants.LITERAL:
            choices.append(chr(arg))
        elif op is sre_constants.RANGE:
            low, high = arg
            if high - low > 200:
                choices.extend(chr(rng.randint(low, high)) for _ in range(50))
            else:
                choices.extend(chr(c) for c in range(low, high + 1))
        elif op is sre_constants.CATEGORY:
            choices.extend(_CATEGORY_CHARS.get(arg, []))
            if arg not in _CATEGORY_CHARS:  # a negated category: anything else printable
                negate_of = {sre_constants.CATEGORY_NOT_DIGIT: sre_constants.CATEGORY_DIGIT,
                             sre_constants.CATEGORY_NOT_SPACE: sre_constants.CATEGORY_SPACE,
                             sre_constants.CATEGORY_NOT_WORD: sre_constants.CATEGORY_WORD}.get(arg)
                banned = set(_CATEGORY_CHARS.get(negate_of, []))
                choices.extend(c for c in _PRINTABLE if c not in banned)
    if negate:
        banned = set(choices)
        allowed = [c for c in _PRINTABLE if c not in banned]
        return rng.choice(allowed) if allowed else "~"
    return rng.choice(choices) if choices else "~"
