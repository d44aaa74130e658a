"""Checks and data for notebooks/labs/lab3-crossover.ipynb: where zero-copy starts to beat the standard path."""
from __future__ import annotations

import random
from typing import Any, Callable, Sequence

import pandas as pd

from ._checks import CheckResult, KiB, Report, call_student, case_rng, function_name, run_check
from .lab2_predict_measure import PI3B_L1D, PI3B_L2, host_recording


def _medians(frame: pd.DataFrame) -> tuple[list[int], dict[int, float], dict[int, float]]:
    f = frame[frame["verified"] != "fail"] if "verified" in frame else frame
    med = f.groupby(["benchmark", "phase", "size_bytes"])["seconds"].median()
    zc = {int(s): float(v) for (b, p, s), v in med.items() if (b, p) == ("zerocopy", "write")}
    std = {int(s): float(v) for (b, p, s), v in med.items() if (b, p) == ("standard", "total")}
    sizes = sorted(set(zc) & set(std))
    return sizes, zc, std


def crossover_size(frame: pd.DataFrame) -> int | None:
    """The reference answer: the smallest size from which zero-copy stays faster than standard's total.

    Medians per size; None when zero-copy is not faster at the largest size.
    The smallest measured size when zero-copy wins everywhere (no crossover
    inside the measured range).
    """
    sizes, zc, std = _medians(frame)
    if not sizes or not zc[sizes[-1]] < std[sizes[-1]]:
        return None
    i = len(sizes) - 1
    while i > 0 and zc[sizes[i - 1]] < std[sizes[i - 1]]:
        i -= 1
    return sizes[i]


def _model_frame(rng: random.Random, cross: int | None, *, always: bool = False, dip: bool = False) -> pd.DataFrame:
    """Made-up test times (not measurements) with a known crossover, to try a method on."""
    rows = []
    sizes = [1 << p for p in range(12, 27)]
    bw = rng.uniform(0.5, 3) * 1e9
    for n in sizes:
        zc = n / bw
        if always:
            ratio = rng.uniform(1.5, 3)
        elif cross is None:
            ratio = rng.uniform(0.3, 0.8)
        else:
            ratio = (n / cross) ** 0.5 * 1.05  # standard/zero-copy grows with size; 1 near `cross`
        if dip and n == sizes[0]:
            ratio = 1.3  # a stray small-size win (e.g. call overhead noise)
        std = zc * ratio
        for i in range(3):
            j = 1 + rng.uniform(-0.02, 0.02)
            rows += [("zerocopy", "write", n, i, zc * j), ("standard", "total", n, i, std * j),
                     ("standard", "fill", n, i, std * 0.4 * j), ("standard", "copy", n, i, std * 0.6 * j)]
    return pd.DataFrame(rows, columns=["benchmark", "phase", "size_bytes", "sample", "seconds"])


def _within_power_of_two(got: Any, want: int | None) -> bool:
    if want is None or got is None:
        return got is None and want is None
    return _is_int_like(got) and want / 2 <= got <= want * 2


def _is_int_like(x: Any) -> bool:
    try:
        return not isinstance(x, bool) and float(x) == int(x) and int(x) > 0
    except (TypeError, ValueError, OverflowError):
        return False


def check_crossover(fn: Callable[[pd.DataFrame], int | None], data: pd.DataFrame | None = None, *,
                    seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(frame) -> the crossover size in bytes (or None), tried on made-up cases and on ``data``."""
    more = ("Per size, take the median of zerocopy's 'write' rows and of standard's 'total' rows (total is "
            "fill + copy, the whole standard path). Then walk the sizes from the largest down: as long as "
            "zero-copy is faster, the crossover can move down to that size; the first size going down where it "
            "is not faster ends the walk. If zero-copy is not faster at the largest size, there is no "
            "crossover. A table of the medians (groupby, then unstack) lets you see it before you code it.")

    def body(rep: Report) -> None:
        rng = case_rng(seed)
        cases: list[tuple[str, pd.DataFrame]] = []
        for _ in range(2):
            c = 1 << rng.randrange(15, 24)
            cases.append((f"a made-up case crossing near {c // KiB} KiB", _model_frame(rng, c)))
        c = 1 << rng.randrange(18, 23)
        cases.append((f"a made-up case crossing near {c // KiB} KiB, with a stray win at 4 KiB",
                      _model_frame(rng, c, dip=True)))
        cases.append(("a made-up case where zero-copy always wins", _model_frame(rng, None, always=True)))
        cases.append(("a made-up case where zero-copy never wins", _model_frame(rng, None)))
        if data is not None:
            cases.append(("the lab's data", data))
        for label, frame in cases:
            want = crossover_size(frame)
            call = f"{function_name(fn)}(<{label}>)"
            got = call_student(fn, call, frame.copy())
            if _within_power_of_two(got, want):
                continue
            sizes, zc, std = _medians(frame)
            fill = frame[(frame.benchmark == "standard") & (frame.phase == "fill")]
            args = (call, repr(got), "None" if want is None else f"{want} bytes (within a factor 2 is fine)")
            if want is None:
                rep.fail(*args, "zero-copy is slower even at the largest size, so there is no crossover",
                         "return None when zero-copy does not win at the largest size", more, rank=2)
            elif got is None:
                rep.fail(*args, f"zero-copy is faster than standard's total from {want} bytes on",
                         "compare the two medians at every size, not only at some", more, rank=2)
            elif _is_int_like(got) and sizes and int(got) == sizes[0] and want != sizes[0]:
                rep.fail(*args, f"{got} is the first size where zero-copy wins; but it loses again above it, so "
                         f"it only starts winning for good at {want} bytes",
                         "a crossover is where zero-copy starts winning for good: look from the largest size down",
                         more, rank=2)
            elif _is_int_like(got) and _within_power_of_two(int(got) * KiB, want):
                rep.fail(*args, f"{got} looks like KiB; the size_bytes column is in bytes",
                         "return bytes, as the frame's sizes are", more, rank=2)
            elif _is_int_like(got) and not fill.empty and _within_power_of_two(got, _vs_fill(frame)):
                rep.fail(*args, "that is where zero-copy beats standard's fill alone; the standard path is fill "
                         "+ copy", "compare with the standard path's 'total' phase", more, rank=2)
            else:
                rep.fail(*args, f"on the medians per size, zero-copy is faster than standard's total from "
                         f"{want} bytes up to the largest size",
                         "compare the medians size by size: where does zero-copy start winning for good?", more)
        rep.notes.append("right on made-up cases (a stray small-size win, no crossover either way) and on the lab's data")
    return run_check("The crossover size", fn, body, check="check_crossover", args=", frame", hint=hint)


def _vs_fill(frame: pd.DataFrame) -> int | None:
    f = frame[(frame.benchmark == "standard") & (frame.phase == "fill")].copy()
    f["phase"] = "total"
    z = frame[(frame.benchmark == "zerocopy")]
    return crossover_size(pd.concat([f, z]))


def check_standard_in_cache(fn: Callable[[int], int], *, seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(cache_bytes) -> the largest size whose cached part of the standard path (the host buffer) fits.

    The GPU buffer takes no room in the ARM's caches: pimem maps it through /dev/mem, and the
    kernel maps such memory non-cached whatever the flag (phys_mem_access_prot(); an inference
    from the kernel source). So the answer is the whole cache, and the old "half the cache"
    (both buffers cached) is rejected with the reason.
    """
    more = ("List what the standard path touches: a host buffer (ordinary memory, cached) and a GPU buffer. "
            "Then ask, for each, whether the ARM's caches hold it: the exercise says how pimem maps the GPU "
            "buffer, and what that does to caching. Only the buffers the caches hold have to fit.")

    def body(rep: Report) -> None:
        rng = case_rng(seed)
        for cache in [PI3B_L2, PI3B_L1D] + [rng.choice([48, 96, 768, 1024, 1536, 4096]) * KiB for _ in range(3)]:
            want = cache
            call = f"{function_name(fn)}({cache})"
            got = call_student(fn, call, cache)
            if _is_int_like(got) and abs(int(got) - want) <= 64:  # a cache line either way
                continue
            args = (call, repr(got), f"{want} bytes")
            if _is_int_like(got) and int(got) == cache // 2:
                rep.fail(*args, "half the cache would be right if both buffers were cached, but the GPU buffer is "
                         "mapped through /dev/mem as non-cached memory (whatever its flag; inferred from the "
                         "kernel's phys_mem_access_prot(), a live run confirms it): it takes no room in the ARM's "
                         "caches", "count only the buffers the ARM's caches hold", more, rank=2)
            else:
                rep.fail(*args, f"only the host buffer is cached, so it may be as big as the {cache // KiB} KiB "
                         "cache", "which of the two buffers take room in the cache?", more)
        rep.notes.append("right: only the host buffer is cached (up to the 512 KiB L2 on a Pi 3B); the copy's writes "
                         "into the GPU buffer go to DRAM at every size (read from the kernel source; a live sweep tests it)")
    return run_check("Which part of the standard path a cache holds", fn, body, check="check_standard_in_cache",
                      hint=hint)


# --- the data lab 3 works on --------------------------------------------------------

def crossover_frame(run: Any, backend: Any = None,
                    sizes: Sequence[int] = tuple(1 << p for p in range(12, 27))) -> tuple[pd.DataFrame, str]:
    """standard and zerocopy over sizes: a fresh sweep (live) or the host recording (recorded)."""
    if getattr(run, "live", False):
        from ...memory.backend import get_backend
        from ...bench.sweep import sweep

        b = backend or get_backend(run.backend)
        res = sweep(b, ["standard", "zerocopy"], sizes, progress=False)
        return res.frame, "measured now on this Pi"
    rec = host_recording(("standard", "zerocopy"))
    f = rec.frame[rec.frame.benchmark.isin(["standard", "zerocopy"])].reset_index(drop=True)
    return f, (f"{rec.provenance()}: a host machine, NOT a Pi; its 'GPU' buffers are the emulator's "
               "ordinary cached host memory")
