"""Time one operation: repeated inside each timed region, loop cost removed.

The scheme (shared with ``benchmarks/membench.c``):

1. Calibrate, like ``timeit.Timer.autorange``: run regions of 1, 2, 5, 10,
   20, 50, ... operations until one lasts at least ``min_sample_s``. A 4 KiB
   fill takes far less than Python's per-call cost resolution, so small
   operations need many repetitions per clock reading. Calibration regions
   count as warm-up; only the rest of ``warmup`` is then run.
2. Measure the overhead per operation: the same loop around ``empty_op``,
   the same call doing no memory work (see ``pimem.bench.kernels.Op``), or around
   a callable that does nothing when there is none; several times, the
   minimum. So the cost of calling C from Python is measured and taken off,
   and a point where it is a large share of the time is marked
   ``overhead_bound``.
3. ``iterations`` timed regions; each sample is the region's time divided by
   ``reps``, minus that overhead. Where the overhead is at least
   ``OVERHEAD_BOUND_SHARE`` of the fastest sample, the point is marked
   ``overhead_bound`` and keeps its raw times (a lower bound on bandwidth).

With ``region`` (the compiled core, ``pimem.bench.kernels.Op.region``) steps 1
and 3 call ``region(reps)``, which runs the ``reps`` operations in C and
returns the nanoseconds measured there: no Python is inside the clock
readings, so there is no overhead to take off and no point is
overhead-bound (``overhead_s`` is 0).

``before_each`` and ``after_each`` run, untimed, around timed regions only,
not around calibration or warm-up.
"""
from __future__ import annotations

import gc
import itertools
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from pimem.exc import UsageError

__all__ = ["DEFAULT_ITERATIONS", "DEFAULT_WARMUP", "DEFAULT_MIN_SAMPLE_S", "STATS",
           "OVERHEAD_BOUND_SHARE", "Timing", "time_op", "summarize"]

DEFAULT_ITERATIONS = 5
DEFAULT_WARMUP = 1
DEFAULT_MIN_SAMPLE_S = 0.005
STATS = ("min", "median", "mean")
OVERHEAD_BOUND_SHARE = 0.10     # overhead this large a share of the raw time: result suspect
OVERHEAD_RUNS = 5               # no-op regions timed; the minimum is kept
MAX_REPS = 10**9                # stops calibration if the clock never advances


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """min, median, mean and sample standard deviation (0 for one sample)."""
    values = [float(s) for s in samples]
    if not values:
        raise UsageError("summarize needs at least one sample, got none")
    return {
        "min": min(values),
        "median": statistics.median(values),
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


@dataclass(frozen=True)
class Timing:
    """The result of :func:`time_op`. Times are seconds per one operation."""

    samples_s: tuple[float, ...]
    reps: int
    overhead_s: float
    overhead_bound: bool

    @property
    def min_s(self) -> float:
        return min(self.samples_s)

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples_s)

    @property
    def mean_s(self) -> float:
        return statistics.fmean(self.samples_s)

    @property
    def std_s(self) -> float:
        return statistics.stdev(self.samples_s) if len(self.samples_s) > 1 else 0.0

    def stat(self, name: str) -> float:
        """The statistic ``name``, one of STATS ("min", "median", "mean")."""
        if name not in STATS:
            raise UsageError(f"unknown statistic {name!r}; valid: {', '.join(map(repr, STATS))}")
        return getattr(self, f"{name}_s")


def _noop() -> None:
    return None


def _region_ns(op: Callable[[], object], reps: int, clock: Callable[[], int]) -> int:
    # Kept minimal: this loop, around _noop, is what the overhead measures.
    it = itertools.repeat(None, reps)
    t0 = clock()
    for _ in it:
        op()
    return clock() - t0


def _calibrate(timed: Callable[[int], int], min_ns: float) -> tuple[int, int]:
    """(reps, regions run): the first reps in 1, 2, 5, 10, ... whose region lasts min_ns."""
    runs = 0
    scale = 1
    while True:
        for step in (1, 2, 5):
            reps = scale * step
            elapsed = timed(reps)
            runs += 1
            if elapsed >= min_ns or reps >= MAX_REPS:
                return reps, runs
        scale *= 10


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_arguments(op: Any, empty_op: Any, region: Any, iterations: Any, warmup: Any, reps: Any,
                     min_sample_s: Any) -> None:
    """time_op's arguments, each named with its value when it is wrong."""
    for name, fn in (("op", op), ("empty_op", empty_op), ("region", region)):
        if (fn is not None or name == "op") and not callable(fn):
            raise UsageError(f"{name} must be callable, got {fn!r}")
    _check_count("iterations", iterations, 1)
    _check_count("warmup", warmup, 0)
    if reps is not None:
        _check_count("reps", reps, 1)
    if (isinstance(min_sample_s, bool) or not isinstance(min_sample_s, (int, float))
            or not math.isfinite(min_sample_s) or min_sample_s < 0):
        raise UsageError(f"min_sample_s must be a finite number >= 0, got {min_sample_s!r}")


def _overhead_ns(empty_op: Callable[[], object] | None, reps: int, clock: Callable[[], int]) -> float:
    """The cost per call of timing from Python: the fastest of a few regions of the empty operation."""
    baseline = empty_op if empty_op is not None else _noop
    return max(0.0, min(_region_ns(baseline, reps, clock) for _ in range(OVERHEAD_RUNS)) / reps)


def time_op(op: Callable[[], object], *, iterations: int = DEFAULT_ITERATIONS,
            warmup: int = DEFAULT_WARMUP,
            before_each: Callable[[], object] | None = None,
            after_each: Callable[[], object] | None = None,
            reps: int | None = None,
            min_sample_s: float = DEFAULT_MIN_SAMPLE_S,
            empty_op: Callable[[], object] | None = None,
            region: Callable[[int], int] | None = None) -> Timing:
    """Time ``op()``; see the module docstring for the scheme.

    ``reps`` fixes the operations per timed region (no calibration).
    Exceptions from ``op``, ``before_each`` and ``after_each`` (and
    KeyboardInterrupt) propagate unchanged.
    """
    _check_arguments(op, empty_op, region, iterations, warmup, reps, min_sample_s)
    clock = time.perf_counter_ns     # looked up per call so tests can substitute a clock

    def timed(n: int) -> int:
        return int(region(n)) if region is not None else _region_ns(op, n, clock)
    # As timeit does: a collection inside a timed region would be charged to op.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        warm_left = warmup
        if reps is None:
            reps, runs = _calibrate(timed, min_sample_s * 1e9)
            warm_left = max(0, warmup - runs)
        for _ in range(warm_left):
            timed(reps)
        # With a region, the clock is read in C around the loop only: no call overhead to take off.
        overhead_ns = 0.0 if region is not None else _overhead_ns(empty_op, reps, clock)
        raw_ns = []
        for _ in range(iterations):
            if before_each is not None:
                before_each()
            raw_ns.append(timed(reps) / reps)
            if after_each is not None:
                after_each()
    finally:
        if gc_was_enabled:
            gc.enable()

    fastest = min(raw_ns)
    bound = fastest <= 0 or overhead_ns >= OVERHEAD_BOUND_SHARE * fastest
    # An overhead-bound point keeps its raw times: taking off a cost as
    # large as the work would leave noise, or zero. Its bandwidth is then
    # a lower bound, and the flag says so.
    return Timing(
        samples_s=tuple(max(0.0, r if bound else r - overhead_ns) / 1e9 for r in raw_ns),
        reps=reps,
        overhead_s=overhead_ns / 1e9,
        overhead_bound=bound,
    )
