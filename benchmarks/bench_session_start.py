"""What installing pytest-dbarch costs every pytest session, before any test runs.

pytest loads every installed pytest11 plugin in every session. Installing pytest-dbarch
brings its own plugin (``dbarch``) and, through its dependencies, three more: hypothesis
(``hypothesispytest``), Faker (``faker``, via factory-boy) and pytest-postgresql
(``postgresql``). This script runs one tiny session (one test that touches no database)
with each set of them switched off by ``-p no:<name>``, interleaved so that machine
noise hits every set alike, and prints the median wall time, the cost over bare pytest,
and, from ``python -X importtime``, the modules that make the difference.

    python benchmarks/bench_session_start.py            # 9 rounds, about a minute
    python benchmarks/bench_session_start.py -n 15

pytest-asyncio and pytest-xdist (the ``dev`` extra) are off in every set: they are not
pytest-dbarch's to pay for.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ALWAYS_OFF = ("asyncio", "xdist")
DEPENDENCY_PLUGINS = ("hypothesispytest", "faker", "postgresql")
SETS: dict[str, tuple[str, ...]] = {
    "bare pytest": ("dbarch", *DEPENDENCY_PLUGINS),
    "pytest-dbarch's plugin only": DEPENDENCY_PLUGINS,
    "its dependencies' plugins only": ("dbarch",),
    "everything pytest-dbarch installs": (),
}
TOP_MODULES = 8


def _command(off: tuple[str, ...], extra: tuple[str, ...] = ()) -> list[str]:
    flags = [arg for name in (*off, *ALWAYS_OFF) for arg in ("-p", f"no:{name}")]
    return [sys.executable, *extra, "-m", "pytest", "-q", "-p", "no:cacheprovider", *flags]


def _time(project: Path, off: tuple[str, ...]) -> float:
    started = time.perf_counter()
    subprocess.run(_command(off), cwd=project, check=True, capture_output=True)
    return time.perf_counter() - started


def _imports(project: Path, off: tuple[str, ...]) -> dict[str, int]:
    """Top-level packages imported by the session and their cumulative import time (µs)."""
    result = subprocess.run(_command(off, ("-X", "importtime")), cwd=project, capture_output=True, text=True, check=True)
    totals: dict[str, int] = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        nested = name[1:].startswith(" ")  # children are indented under their importer
        if not nested and cumulative.strip().isdigit():
            top = name.strip().split(".")[0]
            totals[top] = totals.get(top, 0) + int(cumulative)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--rounds", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-session-start-") as tmp:
        project = Path(tmp)
        (project / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
        (project / "pytest.ini").write_text("[pytest]\n")
        for off in SETS.values():  # warm the file cache
            _time(project, off)
        times: dict[str, list[float]] = {name: [] for name in SETS}
        for _ in range(args.rounds):
            for name, off in SETS.items():
                times[name].append(_time(project, off))
        bare = statistics.median(times["bare pytest"])
        load = os.getloadavg()
        print(f"{args.rounds} rounds, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs")
        print(f"{'plugins loaded':<36} {'median s':>9} {'over bare':>10} {'ratio':>6}")
        for name in SETS:
            median = statistics.median(times[name])
            print(f"{name:<36} {median:>9.2f} {median - bare:>+10.2f} {median / bare:>5.2f}x")
        before = _imports(project, SETS["bare pytest"])
        after = _imports(project, SETS["everything pytest-dbarch installs"])
        added = sorted(((after[m] - before.get(m, 0), m) for m in after), reverse=True)[:TOP_MODULES]
        print("\nimported only when every plugin is on (cumulative import time, one run):")
        for micros, module in added:
            if micros > 0:
                print(f"  {module:<28} {micros / 1e6:6.2f} s")


if __name__ == "__main__":
    main()
