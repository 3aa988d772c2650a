"""Which loop repeats a query: the pure function behind every finding's ``loop:`` line."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_dbarch.queries import callsite

SAMPLE = """
from pytest_dbarch.queries import callsite

seen = {}


def query(name):
    site = callsite.loop_site(callsite.user_stack(2)[0])
    seen[name] = site.line if site else None
    return [name]


def run():
    for a in range(1):
        [c for c in query("comprehension iterable")]
        [query("comprehension element") for c in range(1)]
        for b in query("inner for iterable"):
            pass
    sum(len(query("generator element")) for _ in range(1))
    [
        query("multi-line element")
        for c in range(1)
    ]
    for b in query("top-level for iterable"):
        pass
    i = 0
    while query("while test") and i < 1:
        i += 1
    {k: query("dict element") for k in range(1)}
    [query("nested element") for a in range(1) for b in query("second iterable")]
"""

EXPECTED = {
    "comprehension iterable": 14,  # the comprehension walks one result: the for repeats it
    "comprehension element": 16,
    "inner for iterable": 14,  # an inner for's iterable runs once per outer iteration
    "generator element": 19,
    "multi-line element": 20,
    "top-level for iterable": None,  # runs once: no loop
    "while test": 27,
    "dict element": 29,
    "nested element": 30,
    "second iterable": 30,  # a later iterable of a comprehension runs per item
}


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[object]:
    previous = callsite._Config.root
    path = tmp_path / "sample.py"
    path.write_text(SAMPLE)
    spec = importlib.util.spec_from_file_location("dbarch_loop_sample", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    callsite.set_root(str(tmp_path))
    try:
        yield module
    finally:
        callsite.set_root(previous or ".")


def test_the_loop_that_repeats_a_query(sample: object) -> None:
    sample.run()  # type: ignore[attr-defined]
    assert sample.seen == EXPECTED  # type: ignore[attr-defined]
