"""Latency samples, their statistics, and a verdict that stays honest on a noisy machine.

The samples are server-side execution times (EXPLAIN ANALYZE's "Execution Time"), so
network, driver and Python time are left out. Wall-clock budgets are the opt-in,
noisy figure: on a shared CI machine the same lookup's p95 moves several-fold from one
run to the next. So a p95 over the budget fails only when the samples agree with each
other (coefficient of variation at most ``NOISY_CV``); otherwise the verdict is "too
noisy to judge", a warning. One case is never noise: when even the fastest sample is
over the budget, the statement cannot meet it, and that fails however noisy the rest;
unless the server runs on this machine and its CPU time per run is within the budget,
which shows that waiting for the CPU, not the statement, made every sample slow (on an
overloaded CI machine even the fastest of 30 samples can be several times too slow).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

#: Samples taken for a p95 (after a warm-up): 30 is the fewest that give a p95 that
#: is not simply the maximum of a handful.
SAMPLES = 30
WARM_UP = 3
#: Above this spread (standard deviation / mean) a p95 over the budget is not trusted.
NOISY_CV = 0.3

PASSED, FAILED, NOISY = "passed", "failed", "noisy"


@dataclass(frozen=True)
class Latency:
    """Statistics of one statement's execution-time samples, in milliseconds.

    ``cpu_ms``: CPU time the server process spent per run, when the server runs on this
    machine (read from /proc); unlike wall-clock time it does not grow when other
    processes take turns on the CPU.
    """

    samples: tuple[float, ...]
    cpu_ms: float | None = None

    @classmethod
    def of(cls, samples: list[float] | tuple[float, ...], cpu_ms: float | None = None) -> Latency:
        if not samples:
            raise ValueError("no latency samples")
        return cls(tuple(samples), cpu_ms)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 95)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def fastest(self) -> float:
        return min(self.samples)

    @property
    def slowest(self) -> float:
        return max(self.samples)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    @property
    def cv(self) -> float:
        """Coefficient of variation: standard deviation over mean (0 for one sample)."""
        if len(self.samples) < 2 or self.mean == 0:
            return 0.0
        return statistics.stdev(self.samples) / self.mean

    def describe(self) -> str:
        cpu = f"; server CPU {self.cpu_ms:.1f} ms per run" if self.cpu_ms is not None else ""
        return (f"p95 {self.p95:.3f} ms over {len(self.samples)} samples "
                f"(fastest {self.fastest:.3f}, median {self.median:.3f}, slowest {self.slowest:.3f}; "
                f"cv {self.cv:.2f}{cpu})")


def percentile(values: tuple[float, ...] | list[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was really measured, never interpolated."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Verdict:
    outcome: str  # PASSED, FAILED or NOISY
    reason: str


def judge(latency: Latency, budget_ms: float, scale: float = 1.0, shared_cpu: bool = False) -> Verdict:
    """Compare the p95 with ``budget_ms`` x ``scale``.

    ``shared_cpu``: other test processes run at the same time (pytest-xdist), so a p95
    over the budget is never trusted on its own, only the fastest sample is.
    """
    allowed = budget_ms * scale
    scaled = f" ({budget_ms:g} ms x scale {scale:g})" if scale != 1.0 else ""
    limit = f"{allowed:g} ms{scaled}"
    if latency.fastest > allowed:
        fastest = f"even the fastest of {len(latency.samples)} samples took {latency.fastest:.3f} ms"
        if latency.cpu_ms is not None and latency.cpu_ms <= allowed:
            return Verdict(NOISY, f"{fastest}, over the budget of {limit}, but the server spent only "
                                  f"{latency.cpu_ms:.1f} ms of CPU per run: the machine is too busy to judge")
        return Verdict(FAILED, f"{fastest}, over the budget of {limit}")
    if latency.p95 <= allowed:
        return Verdict(PASSED, f"p95 {latency.p95:.3f} ms within {limit}")
    over = f"p95 {latency.p95:.3f} ms is over the budget of {limit}"
    if shared_cpu:
        return Verdict(NOISY, f"{over}, but other pytest-xdist workers share the CPU; "
                              f"the fastest sample ({latency.fastest:.3f} ms) is within it")
    if latency.cv > NOISY_CV:
        return Verdict(NOISY, f"{over}, but the samples spread too widely to judge "
                              f"(cv {latency.cv:.2f} > {NOISY_CV}); the fastest ({latency.fastest:.3f} ms) is within it")
    return Verdict(FAILED, f"{over} (samples consistent: cv {latency.cv:.2f})")
