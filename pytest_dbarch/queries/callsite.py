"""Where a statement came from: the user's frames, and the loop around them.

Capture walks ``sys._getframe`` itself and keeps ``(code, line)`` pairs of frames whose
file lies under the rootdir and outside site-packages, the standard library and this
plugin: the stack key stays the same whatever the libraries in between do, and no
source line is read until a finding is reported (``traceback.extract_stack`` reads
them all and measured 2.5x slower). The loop that repeats a query (a ``for`` body, a
``while``, a comprehension's element, not the iterable a loop walks) is found with
``ast`` only when a finding needs it.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import CodeType, FrameType

#: ``(code, line)`` pairs, innermost first.
Stack = tuple[tuple[CodeType, int], ...]

_MAX_USER_FRAMES = 8
_MAX_WALK = 120
_PLUGIN_DIR = str(Path(__file__).resolve().parent.parent) + os.sep
_LIBRARY_MARKS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
_STDLIB = (os.path.dirname(os.__file__) + os.sep,)


#: What a source file is, for capture: not the user's, the application's, or test code.
LIBRARY, APP, TEST = 0, 1, 2
#: Directory names of a test tree (a ``tests/utils/`` helper is test code).
_TEST_DIR_NAMES = ("test", "tests", "testing", "test_*", "tests_*", "*_test", "*_tests")


class _Config:
    root = ""
    #: The running test function's code: walking stops there.
    stop: CodeType | None = None
    test_thread: int | None = None
    #: File name patterns of test code: pytest's ``python_files``, plus conftest.py.
    test_files: tuple[str, ...] = ("test_*.py", "*_test.py", "conftest.py")
    #: Directories whose files are all test code (each ends with a separator).
    test_dirs: tuple[str, ...] = ()
    verdicts: dict[str, int] = {}


def set_root(rootdir: str) -> None:
    """Frames under ``rootdir`` are the user's (decided once per file name)."""
    root = str(Path(rootdir).resolve()) + os.sep
    if root != _Config.root:
        _Config.root = root
        _Config.verdicts = {}


def set_stop(code: CodeType | None) -> None:
    _Config.stop = code


def is_test_dir_name(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in _TEST_DIR_NAMES)


def test_tree(directory: str | Path) -> Path | None:
    """The outermost directory named like a test directory that holds ``directory``
    (itself included), below the rootdir: ``tests/`` for ``tests/api/routes``.
    The rootdir and what lies above it never count (a checkout may be named ``test_x``)."""
    root = Path(_Config.root or os.sep)
    path = Path(directory).resolve()
    found = None
    while path != root and root in path.parents:
        if is_test_dir_name(path.name):
            found = path
        path = path.parent
    return found


def set_test_code(patterns: tuple[str, ...], directories: tuple[str | Path, ...]) -> None:
    """What test code is: files named like ``patterns`` (``test_*.py``, conftest.py...)
    and every file under ``directories`` (the test trees of the collected modules)."""
    dirs = tuple(sorted({str(Path(d).resolve()) + os.sep for d in directories}))
    if patterns != _Config.test_files or dirs != _Config.test_dirs:
        _Config.test_files, _Config.test_dirs = patterns, dirs
        _Config.verdicts = {}


def _kind(filename: str) -> int:
    path = os.path.abspath(filename) if filename[:1] != "<" else ""
    kind = LIBRARY
    if (
        path.startswith(_Config.root)
        and not path.startswith(_PLUGIN_DIR)
        and not path.startswith(_STDLIB)
        and not any(mark in path for mark in _LIBRARY_MARKS)
    ):
        name = os.path.basename(path)
        test = path.startswith(_Config.test_dirs) or any(fnmatch.fnmatch(name, p) for p in _Config.test_files)
        kind = TEST if test else APP
    _Config.verdicts[filename] = kind
    return kind


def kind_of(filename: str) -> int:
    """LIBRARY, APP or TEST (cached per file name)."""
    kind = _Config.verdicts.get(filename)
    return _kind(filename) if kind is None else kind


def set_test_thread(ident: int | None) -> None:
    """The thread running the test's call phase (None between tests)."""
    _Config.test_thread = ident


def test_thread() -> int | None:
    return _Config.test_thread


def user_stack(depth: int = 2, root: CodeType | None = None) -> tuple[Stack, bool]:
    """The user frames of the caller's stack, innermost first (cheap: no source reads),
    walking out no further than ``root`` (a task's coroutine); and whether the
    application's frames were reached from test code through a library (a test
    client dispatching a request, a framework calling back)."""
    try:
        frame: FrameType | None = sys._getframe(depth)
    except ValueError:  # called from the top of a thread's stack
        return (), False
    return _user_frames(frame, root)


def test_thread_stack() -> Stack:
    """Called from a thread other than the test's: the user frames the test thread is
    in right now, innermost first; () in the test's own thread or between tests.

    A statement a worker thread runs on the test's behalf (a test client's portal
    thread running the app, a ``ThreadPoolExecutor`` job) has no test frame on its own
    stack; the test thread meanwhile waits in the line that handed the work over
    (``client.get(...)``, ``future.result()``), so its frames name that line. Work the
    test does not wait for is attributed to wherever the test is at that moment.
    """
    ident = _Config.test_thread
    if ident is None or ident == threading.get_ident():
        return ()
    return _user_frames(sys._current_frames().get(ident))[0]


def _user_frames(frame: FrameType | None, root: CodeType | None = None) -> tuple[Stack, bool]:
    verdicts = _Config.verdicts
    stop = _Config.stop
    found: list[tuple[CodeType, int]] = []
    walked = 0
    app = gap = through = False
    while frame is not None and walked < _MAX_WALK:
        code = frame.f_code
        kind = verdicts.get(code.co_filename)
        if kind is None:
            kind = _kind(code.co_filename)
        if kind:
            if kind == TEST and app and gap and not through:
                through = True
            elif kind == APP:
                app, gap = True, False
            found.append((code, frame.f_lineno))
            if len(found) == _MAX_USER_FRAMES:
                break
        elif app:
            gap = True
        if code is stop or code is root:
            break
        frame = frame.f_back
        walked += 1
    return tuple(found), through


def suspended_stack(coroutine: object) -> Stack:
    """The user frames a suspended coroutine (a task's) waits in, innermost first:
    the chain of ``await``s from the coroutine down to what it waits for."""
    chain: list[FrameType] = []
    current: object = coroutine
    while current is not None and len(chain) < _MAX_WALK:
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None)
        if frame is None:
            break
        chain.append(frame)
        current = getattr(current, "cr_await", None) or getattr(current, "gi_yieldfrom", None)
    found = [(f.f_code, f.f_lineno) for f in reversed(chain) if kind_of(f.f_code.co_filename)]
    return tuple(found[:_MAX_USER_FRAMES])


@dataclass(frozen=True)
class Site:
    """One user frame, ready to print."""

    file: str  # relative to the rootdir when under it
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


def relative(filename: str) -> str:
    path = os.path.abspath(filename)
    return path[len(_Config.root):] if _Config.root and path.startswith(_Config.root) else filename


def absolute(file: str) -> str:
    """A ``Site.file`` as a path again."""
    return file if os.path.isabs(file) else os.path.join(_Config.root, file)


def sites(stack: Stack) -> list[Site]:
    return [Site(relative(code.co_filename), line, code.co_qualname) for code, line in stack]


def stack_key_without_lines(stack: Stack) -> tuple[tuple[str, str], ...]:
    """Files and functions only: survives edits that move lines (baseline ids use it)."""
    return tuple((relative(code.co_filename), code.co_qualname) for code, _ in stack)


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
#: Python 3.12 runs list, set and dict comprehensions in their function's frame (PEP 709);
#: before, and for generator expressions always, each has a frame of its own.
_INLINED = (ast.ListComp, ast.SetComp, ast.DictComp) if sys.version_info >= (3, 12) else ()
_OWN_FRAME = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"})


@dataclass(frozen=True)
class _Loop:
    """A loop in a source file, and the lines whose code runs once per iteration."""

    start: int  # the line reported: the ``for`` / ``while`` statement or the comprehension
    end: int
    repeats: tuple[int, int]  # a ``for`` body; a ``while`` test and body; a comprehension
    once: tuple[int, int] | None = None  # a comprehension's first iterable: evaluated once, outside it
    comprehension: ast.AST | None = None


def _loop(node: ast.AST) -> _Loop | None:
    if not isinstance(node, (ast.For, ast.AsyncFor, ast.While, *_COMPREHENSIONS)):
        return None
    end = node.end_lineno or node.lineno
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return _Loop(node.lineno, end, (node.body[0].lineno, node.body[-1].end_lineno or end))
    if isinstance(node, ast.While):
        return _Loop(node.lineno, end, (node.test.lineno, node.body[-1].end_lineno or end))
    first = node.generators[0].iter
    return _Loop(node.lineno, end, (node.lineno, end), (first.lineno, first.end_lineno or first.lineno), node)


@lru_cache(maxsize=256)
def _tree(filename: str) -> ast.AST | None:
    try:
        return ast.parse(Path(filename).read_text(encoding="utf-8"), filename)
    except (OSError, SyntaxError, ValueError):
        return None


@lru_cache(maxsize=256)
def _loops_of(filename: str) -> tuple[_Loop, ...]:
    tree = _tree(filename)
    if tree is None:
        return ()
    return tuple(loop for node in ast.walk(tree) if (loop := _loop(node)) is not None)


@lru_cache(maxsize=1024)
def _calls_in_statement(filename: str, line: int, name: str) -> int:
    """How many calls of a function named ``name`` the innermost statement holding
    ``line`` makes: ``a, b = make(x), make(y)`` calls ``make`` twice on one line."""
    tree = _tree(filename)
    if tree is None:
        return 0
    statement = None
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or node.lineno):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.For, ast.AsyncFor,
                                     ast.While, ast.If, ast.With, ast.AsyncWith, ast.Try)):
                if statement is None or node.lineno >= statement.lineno:
                    statement = node
    if statement is None:
        return 0
    return sum(
        1 for node in ast.walk(statement)
        if isinstance(node, ast.Call) and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) == name
    )


def repeat_site(stack: Stack) -> Site | None:
    """Where the repeats of a statement come from, searching from its own frame out: the
    innermost loop (as ``loop_site``), or a statement that calls the next frame's
    function more than once (``first, second = make(db), make(db)``)."""
    for i, (code, line) in enumerate(stack):
        if _frame_loops(code, line):
            return loop_site(stack[i:])
        callee = stack[i - 1][0].co_name if i else ""
        if callee and _calls_in_statement(code.co_filename, line, callee) > 1:
            return Site(relative(code.co_filename), line, code.co_qualname)
    return None


def _inside(line: int, lines: tuple[int, int] | None) -> bool:
    return lines is not None and lines[0] <= line <= lines[1]


def _frame_loops(code: CodeType, line: int) -> list[_Loop]:
    """The loops that repeat ``line`` *in this frame*, best candidates first.

    A comprehension with a frame of its own repeats nothing of the enclosing function's
    frame: a query there came from its first iterable, which runs once. In its own
    frame it is the loop. An inlined comprehension repeats a line unless that line holds
    only its first iterable; a line shared by both counts only when no loop statement
    of the frame encloses it.
    """
    own_frame = code.co_name in _OWN_FRAME
    strong: list[_Loop] = []
    weak: list[_Loop] = []
    for loop in _loops_of(code.co_filename):
        if loop.start < code.co_firstlineno or not _inside(line, loop.repeats):
            continue
        if loop.comprehension is None:
            if not own_frame:
                strong.append(loop)
        elif own_frame:
            if loop.start == code.co_firstlineno:
                strong.append(loop)
        elif isinstance(loop.comprehension, _INLINED):
            if not _inside(line, loop.once):
                strong.append(loop)
            elif loop.once is not None and (loop.once[0] != loop.start or loop.once[1] != loop.end):
                weak.append(loop)  # a line shared by the element and the first iterable
    return strong or weak


def loop_site(stack: Stack) -> Site | None:
    """The innermost loop that repeats the query, searching from the query's frame out."""
    for code, line in stack:
        loops = _frame_loops(code, line)
        if loops:
            start = max(loops, key=lambda loop: (loop.start, -loop.end)).start
            return Site(relative(code.co_filename), start, code.co_qualname)
    return None


def source_line(site: Site) -> str:
    import linecache

    return linecache.getline(absolute(site.file), site.line).strip()
