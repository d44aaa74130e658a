"""Sweeps over sizes: the points a board can run, a progress bar, and the results as a tidy DataFrame.

The run's metadata (the machine, the software) is pimem.bench.machine's."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from ..exc import GpuMemoryExhausted, UsageError
from ..memory.backend import Backend
from ..units import format_size
from .benchmarks import LATENCY_MAX_BYTES, BENCHMARKS, PhaseResult, RunOptions, check_name, iter_phases, run_benchmark
from .catalog import BenchmarkSpec
from .data import COLUMNS
from .data.quantities import derived
from .kernels import KERNELS, get_kernel
from .machine import run_metadata, watched

DEFAULT_SIZES: tuple[int, ...] = tuple(1 << p for p in range(12, 29))  # 4 KiB .. 256 MiB


def results_frame(results: Iterable[PhaseResult]) -> pd.DataFrame:
    """One row per timed sample, in the recording format (pimem.bench.data): the time measured, and what follows."""
    rows = []
    for r, i, s in iter_phases(list(results)):
        row = {"benchmark": r.benchmark, "phase": r.phase, "size_bytes": r.size, "statistic": "sample",
               "sample": i, "value": s, "unit": "s", "reps": r.timing.reps,
               "overhead_bound": r.timing.overhead_bound, "verified": "pass" if r.verified else "fail",
               "kernel": r.kernel, "flags": r.flags, "alias": r.alias}
        rows.append({**row, **derived(row)})
    return pd.DataFrame(rows, columns=list(COLUMNS))


@dataclass
class SweepResult:
    frame: pd.DataFrame
    meta: dict
    notes: list[str] = field(default_factory=list)   # sizes skipped and why
    results: list[PhaseResult] = field(default_factory=list)


def _skip_notes(skipped: dict[str, dict[str, list[int]]]) -> list[str]:
    """One line per reason and set of sizes: 'standard, zerocopy at 128 MiB, 256 MiB skipped: WHY'."""
    notes = []
    for why, by_name in skipped.items():
        groups: dict[tuple[int, ...], list[str]] = {}
        for name, sizes in by_name.items():
            groups.setdefault(tuple(sizes), []).append(name)
        for sizes, names in groups.items():
            notes.append(f"{', '.join(names)} at {', '.join(format_size(s) for s in sizes)} skipped: {why}")
    return notes


def sweep(backend: Backend, benchmarks: Sequence[str] = tuple(BENCHMARKS), sizes: Sequence[int] = DEFAULT_SIZES,
          *, kernel: str | None = None, options: RunOptions | None = None,
          progress: bool | Callable[[int, int, str], None] = True, command: str | None = None) -> SweepResult:
    """Run every benchmark at every size (GPU sizes capped by the GPU memory), with a progress bar.

    ``progress`` may also be a callable ``(done, total, what)``: a widget's own bar (pimem.course.widgets).
    """
    from .kernels import DEFAULT_KERNEL

    kernel_name = kernel or DEFAULT_KERNEL
    k = get_kernel(kernel_name)
    opts = options or RunOptions()
    specs = [check_name(b) for b in benchmarks]
    if not specs:
        raise UsageError("no benchmark chosen; choose from: " + ", ".join(BENCHMARKS))
    bad = [s for s in sizes if s <= 0]
    if bad:
        raise UsageError(f"sizes must be positive, got {bad[0]}")
    plan, notes = _plan(specs, sizes, backend)
    with watched(backend) as conditions:
        results = _run_plan(plan, k, backend, opts, progress, notes)
    if conditions["warning"]:
        notes.append(conditions["warning"])
    meta = run_metadata(backend, kernel_name, opts, command)
    # Kept with the data: a recording should say which points it lacks and why, and what the clock did
    # (data/README.md allows extra keys in the sidecar).
    meta["skipped"] = list(notes)
    meta["conditions"] = conditions
    return SweepResult(results_frame(results), meta, notes, results)


def _plan(specs: list[BenchmarkSpec], sizes: Sequence[int], backend: Backend) -> tuple[list[tuple[BenchmarkSpec, int]], list[str]]:
    """The (benchmark, size) points to run, and a note for each group of points left out, saying why."""
    gpu_total = backend.mailbox.relocatable_heap()
    notes: list[str] = []
    plan = []
    too_big: list[int] = []
    if any(s.phases == ("latency",) for s in specs) and "c-loop" not in KERNELS:
        from .core import status

        notes.append(f"latency benchmarks skipped: they need the compiled timing core ({status().message})")
        specs = [s for s in specs if s.phases != ("latency",)]
    skipped: dict[str, dict[str, list[int]]] = {}   # why -> benchmark -> sizes, in order
    for spec in specs:
        for size in sizes:
            if spec.phases == ("latency",) and size > LATENCY_MAX_BYTES:
                why = (f"latency is chased through blocks of up to {format_size(LATENCY_MAX_BYTES)}, "
                       "as the published tables are")
            elif spec.flags is not None and size > gpu_total:
                why = (f"more than the firmware's GPU heap ({format_size(gpu_total)} of gpu_mem's "
                       f"{format_size(backend.mailbox.vc_memory().size)})")
                too_big.append(size)
            else:
                plan.append((spec, size))
                continue
            skipped.setdefault(why, {}).setdefault(spec.name, []).append(size)
    notes += _skip_notes(skipped)
    if too_big:   # once, for the largest: how to get a heap that holds it
        notes.append(f"to go further: {backend.mailbox.too_big(max(too_big))}")
    return plan, notes


def _run_plan(plan: list[tuple[BenchmarkSpec, int]], kernel: Any, backend: Backend, opts: RunOptions,
              progress: bool | Callable[[int, int, str], None], notes: list[str]) -> list[PhaseResult]:
    """Run each point with a progress bar; a point the firmware cannot allocate is a note, not an error."""
    results: list[PhaseResult] = []
    bar = _progress(len(plan), progress)
    try:
        for spec, size in plan:
            if bar is not None:
                # Shows what is running now: a 256 MiB point can take a while.
                bar.set_postfix_str(f"{spec.name} at {format_size(size)}", refresh=True)
            try:
                results += run_benchmark(spec.name, size, kernel=kernel, backend=backend, options=opts)
            except GpuMemoryExhausted:
                notes.append(f"{spec.name} at {format_size(size)} skipped: the firmware could not allocate it "
                             "(GPU memory in use or fragmented)")
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return results


class _CallbackProgress:
    """The three calls sweep makes on a tqdm bar, passed on as ``report(done, total, what)``."""

    def __init__(self, total: int, report: Callable[[int, int, str], None]) -> None:
        self.total, self.done, self.report = total, 0, report
        report(0, total, "")

    def set_postfix_str(self, what: str, refresh: bool = True) -> None:
        self.report(self.done, self.total, what)

    def update(self, n: int = 1) -> None:
        self.done += n
        self.report(self.done, self.total, "")

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool | Callable[[int, int, str], None]):
    """A tqdm bar over ``total`` runs, the caller's own progress report, or None when disabled."""
    if callable(enabled):
        return _CallbackProgress(total, enabled)
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="pimem sweep", unit="run",
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
