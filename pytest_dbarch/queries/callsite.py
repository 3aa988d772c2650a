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


class _Config:
    root = ""
    #: The running test function's code: walking stops there.
    stop: CodeType | None = None
    test_thread: int | None = None
    verdicts: dict[str, bool] = {}


def set_root(rootdir: str) -> None:
    """Frames under ``rootdir`` are the user's (decided once per file name)."""
    root = str(Path(rootdir).resolve()) + os.sep
    if root != _Config.root:
        _Config.root = root
        _Config.verdicts = {}


def set_stop(code: CodeType | None) -> None:
    _Config.stop = code


def _is_user(filename: str) -> bool:
    path = os.path.abspath(filename) if filename[:1] != "<" else ""
    user = (
        path.startswith(_Config.root)
        and not path.startswith(_PLUGIN_DIR)
        and not path.startswith(_STDLIB)
        and not any(mark in path for mark in _LIBRARY_MARKS)
    )
    _Config.verdicts[filename] = user
    return user


def set_test_thread(ident: int | None) -> None:
    """The thread running the test's call phase (None between tests)."""
    _Config.test_thread = ident


def user_stack(depth: int = 2) -> Stack:
    """The user frames of the caller's stack, innermost first (cheap: no source reads)."""
    try:
        frame: FrameType | None = sys._getframe(depth)
    except ValueError:  # called from the top of a thread's stack
        return ()
    return _user_frames(frame)


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
    return _user_frames(sys._current_frames().get(ident))


def _user_frames(frame: FrameType | None) -> Stack:
    verdicts = _Config.verdicts
    stop = _Config.stop
    found: list[tuple[CodeType, int]] = []
    walked = 0
    while frame is not None and walked < _MAX_WALK:
        code = frame.f_code
        user = verdicts.get(code.co_filename)
        if user is None:
            user = _is_user(code.co_filename)
        if user:
            found.append((code, frame.f_lineno))
            if len(found) == _MAX_USER_FRAMES:
                break
        if code is stop:
            break
        frame = frame.f_back
        walked += 1
    return tuple(found)


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
def _loops_of(filename: str) -> tuple[_Loop, ...]:
    try:
        tree = ast.parse(Path(filename).read_text(encoding="utf-8"), filename)
    except (OSError, SyntaxError, ValueError):
        return ()
    return tuple(loop for node in ast.walk(tree) if (loop := _loop(node)) is not None)


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

    filename = site.file if os.path.isabs(site.file) else os.path.join(_Config.root, site.file)
    return linecache.getline(filename, site.line).strip()
