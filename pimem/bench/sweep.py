"""Sweeps over sizes, results as a tidy DataFrame, and the run's metadata."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from .._version import __version__
from ..memory.backend import Backend
from .benchmarks import LATENCY_MAX_BYTES, BENCHMARKS, PhaseResult, RunOptions, check_name, iter_phases, run_benchmark
from ..exc import GpuMemoryExhausted, UsageError
from .data import COLUMNS, SCHEMA
from .data.quantities import derived
from .kernels import KERNELS, get_kernel

from ..units import GiB, KiB, MiB, format_size, parse_size
DEFAULT_SIZES: tuple[int, ...] = tuple(1 << p for p in range(12, 29))  # 4 KiB .. 256 MiB




def cpu_caches(root: str = "/sys/devices/system/cpu/cpu0/cache") -> list[dict[str, Any]]:
    """This machine's CPU caches as sysfs reports them for cpu0: level, type, bytes (empty if unknown).

    Kept with a recording so that a plot shades the caches of the machine that produced the data.
    """
    caches = []
    for index in sorted(Path(root).glob("index[0-9]*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        n = int(size[:-1]) * units[size[-1]] if size[-1:] in units and size[:-1].isdigit() else None
        if n is None and size.isdigit():
            n = int(size)
        if n:
            caches.append({"level": level, "type": kind, "bytes": n})
    return caches

def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo (x86 'model name', ARM 'Model' or the implementer line)."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or platform.machine()
    for key in ("model name", "Model", "Hardware"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if m:
            return m.group(1).strip()
    return platform.machine()


def run_metadata(backend: Backend, kernel: str, options: RunOptions, command: str | None = None) -> dict:
    """Where and how a run was measured: the provenance every recording carries."""
    from ..memory.info import system_info

    info = system_info(backend)
    is_pi = backend.name == "pi"
    cpu = cpu_model()
    board = info.revision.describe() if info.revision else None
    if is_pi:
        description = f"{board or 'Raspberry Pi'} ({cpu}), measured live through /dev/vcio and /dev/mem"
    else:
        description = (f"host run on {cpu} ({platform.machine()}), not a Raspberry Pi: the GPU buffers are the "
                       "emulator's host memory")
    return {
        "schema": SCHEMA,
        "title": f"pimem sweep on {'a Raspberry Pi' if is_pi else 'a host machine'}",
        "source": {"kind": "measured", "reference": f"pimem {__version__}",
                   "notes": "recorded with pimem's timing engine"},
        "machine": {
            "is_pi": is_pi,
            "description": description,
            "board": board if is_pi else None,
            "revision": f"{info.revision_code:x}" if is_pi else None,
            "firmware": f"0x{info.firmware_revision:08X}" if is_pi else None,
            "cpu_model": cpu,
            "arch": platform.machine(),
            "kernel": platform.release(),
            "gpu_mem_bytes": info.vc_memory[1],
            "caches": cpu_caches(),
        },
        "software": {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
                     "pimem": __version__},
        "backend": backend.name,
        "kernel_choice": kernel,
        "iterations": options.iterations,
        "warmup": options.warmup,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "statistic_note": ("one row per timed sample; seconds per operation, the cost of the same call on "
                           "zero bytes subtracted (overhead-bound points keep their raw time)"),
    }


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
    results: list[PhaseResult] = []
    bar = _progress(len(plan), progress)
    try:
        for spec, size in plan:
            if bar is not None:
                # Shows what is running now: a 256 MiB point can take a while.
                bar.set_postfix_str(f"{spec.name} at {format_size(size)}", refresh=True)
            try:
                results += run_benchmark(spec.name, size, kernel=k, backend=backend, options=opts)
            except GpuMemoryExhausted:
                notes.append(f"{spec.name} at {format_size(size)} skipped: the firmware could not allocate it "
                             "(GPU memory in use or fragmented)")
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    meta = run_metadata(backend, kernel_name, opts, command)
    # Kept with the data: a recording should say which points it lacks and why
    # (data/README.md allows extra keys in the sidecar).
    meta["skipped"] = list(notes)
    return SweepResult(results_frame(results), meta, notes, results)


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
