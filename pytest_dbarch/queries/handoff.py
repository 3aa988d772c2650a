"""Where work was handed over: the frames that make a statement run in another asyncio
task or thread belong to the test line that caused it.

A statement's own frames end where its task or thread began: an ``asyncio`` task a
test creates (``create_task``, ``gather``, a task group), a worker thread a task hands
a sync function to (FastAPI's sync endpoints behind ``httpx.ASGITransport``,
``asyncio.to_thread``), a test client's portal thread. What connects them to the test
is the context: a task copies its creator's context when it is created, and anyio's
and asyncio's ``to_thread`` copy the awaiting task's context into the worker thread.

So every task created while a test runs carries a ``Handoff`` in a context variable:
the statement frames of the place that created it (themselves completed the same way,
so chains of tasks compose), its thread, and the task. A statement then adds to its
own frames:

- in a task: the frames where the task was created;
- in a worker thread started from a task: the frames that task is suspended in (the
  ``await`` that handed the work over), then the task's creation frames;
- in any other thread (TestClient's portal, a ``ThreadPoolExecutor`` job), and after a
  chain that began outside the test's thread: the frames the test thread is in now.

``BaseEventLoop.create_task`` is wrapped once asyncio is imported; outside a test's
call phase the wrapper sets the variable and walks no frames. uvloop's loop is not
wrapped (its tasks fall back to the test thread's frames).
"""

from __future__ import annotations

import threading
import weakref
from contextvars import ContextVar
from types import CodeType, ModuleType
from typing import Any, NamedTuple

from pytest_dbarch.queries import callsite
from pytest_dbarch.queries.callsite import Stack


class Handoff:
    """What a task knows of where it came from."""

    __slots__ = ("stack", "thread", "reaches_test", "root", "task")

    def __init__(self, stack: Stack, thread: int, reaches_test: bool, root: CodeType | None) -> None:
        self.stack = stack  # the creator's frames, innermost first, completed up to the test
        self.thread = thread
        self.reaches_test = reaches_test  # created while a test ran: the chain needs nothing more
        self.root = root  # the task's coroutine code: a statement's own frames stop there
        self.task: weakref.ref[Any] | None = None


HANDOFF: ContextVar[Handoff | None] = ContextVar("dbarch_handoff", default=None)


class Frames(NamedTuple):
    """A statement's frames and what the hand-over tells about them."""

    stack: Stack
    #: Ran in another task or thread, or reached the application through a library.
    handed: bool
    #: The task (a request, a job) it ran in, by ``id`` of its Handoff; 0 when unknown.
    unit: int
    #: Handed over, with no user frame of its own: a library's work on the test's behalf
    #: (a web framework serializing a response), not the test code the outer frames name.
    bare: bool


def statement_stack(depth: int) -> Frames:
    """The frames of a statement (``depth`` counts from the caller's caller), completed
    with where its work was handed over."""
    handoff = HANDOFF.get()
    thread = threading.get_ident()
    if handoff is None:
        own, through = callsite.user_stack(depth + 1)
        outer = callsite.test_thread_stack()
    elif handoff.thread == thread:  # in the task itself
        own, through = callsite.user_stack(depth + 1, handoff.root)
        outer = handoff.stack
        if not handoff.reaches_test:
            outer += callsite.test_thread_stack()
    else:  # a worker thread the task handed a function to: the task waits in its await
        own, through = callsite.user_stack(depth + 1)
        task = handoff.task() if handoff.task is not None else None
        outer = _waiting_in(task) + handoff.stack
        if not handoff.reaches_test:
            outer += callsite.test_thread_stack()
    unit = 0 if handoff is None else id(handoff)
    if outer:
        return Frames(own + outer, True, unit, not own)
    return Frames(own, through, unit, False)


def _waiting_in(task: Any) -> Stack:
    if task is None:
        return ()
    try:
        return () if task.done() else callsite.suspended_stack(task.get_coro())
    except Exception:  # a task of another loop implementation, or torn down meanwhile
        return ()


def install(asyncio: ModuleType) -> None:
    """Wrap ``BaseEventLoop.create_task`` (once)."""
    from asyncio import base_events

    loop_class = base_events.BaseEventLoop
    original = loop_class.create_task
    if getattr(original, "__wrapped__", None) is not None:
        return

    def create_task(self: Any, coro: Any, *args: Any, **kwargs: Any) -> Any:
        testing = callsite.test_thread() is not None
        stack = statement_stack(2).stack if testing else ()
        handoff = Handoff(stack, threading.get_ident(), testing, getattr(coro, "cr_code", None))
        context = kwargs.get("context")
        if context is not None:  # an explicit context (pytest-asyncio's test task): carry it there
            try:
                context.run(HANDOFF.set, handoff)
            except RuntimeError:  # the context is entered elsewhere right now
                pass
            task = original(self, coro, *args, **kwargs)
        else:
            token = HANDOFF.set(handoff)
            try:
                task = original(self, coro, *args, **kwargs)
            finally:
                HANDOFF.reset(token)
        try:
            handoff.task = weakref.ref(task)
        except TypeError:
            pass
        return task

    create_task.__wrapped__ = original  # type: ignore[attr-defined]
    create_task.__name__ = original.__name__
    create_task.__qualname__ = original.__qualname__
    create_task.__doc__ = original.__doc__
    loop_class.create_task = create_task  # type: ignore[method-assign]
