"""Checks and data for notebooks/labs/lab2-predict-measure.ipynb: peak bandwidth, fill times, caches."""
from __future__ import annotations

import random
from typing import Any, Callable, Sequence

import pandas as pd

from ...firmware.board import PI3B
from ...paths import pimem_command
from ...units import KiB, MiB
from .checks import CheckResult, Report, Slip, call_student, name_of, number_case, run_check

# The Raspberry Pi 3B's figures the lab works with (pimem.firmware.board declares them, with sources).
PI3B_SDRAM_MHZ = PI3B.sdram_mhz
PI3B_BUS_BITS = PI3B.bus_bits
PI3B_L1D = PI3B.l1d_bytes
PI3B_L2 = PI3B.l2_bytes


def check_peak_bandwidth(fn: Callable[[float, int], float], *, seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(sdram_mhz, bus_bits) -> peak bandwidth in bytes per second (DDR: two transfers per clock)."""
    units = ("Build it from units: cycles per second (a MHz is 10^6 of them), transfers per cycle (DDR: "
             "data moves on both clock edges), bytes per transfer (the bus width, in bits, over 8 bits per "
             "byte). Multiply them and check that the units cancel to bytes per second.")
    slips: dict[float, Slip] = {
        0.5: ("half the right value: DDR memory moves data on both clock edges, two transfers per clock",
              "count the transfers per clock cycle", units),
        8.0: ("8 times too much: the bus width is in bits, and the answer in bytes",
              "convert the bus width to bytes", units),
        1e9 / 2**30: ("you converted to GiB (2^30); the answer is in bytes per second (or GB = 10^9 bytes)",
                      "return bytes per second, with no unit conversion at the end", units),
        2**20 / 1e6: ("a MHz is 10^6 Hz, not 2^20", "use 10^6 cycles per second per MHz", units),
        1e-9: ("you returned GB/s; the answer is in bytes per second (3.6 GB/s is 3.6e9)",
               "return bytes per second", units),
        2**-30: ("you returned GiB/s (bytes / 2^30); the answer is in bytes per second, and GB = 10^9 B, "
                 "GiB = 2^30 B", "return bytes per second", units),
        1e-6: ("you returned MB/s; the answer is in bytes per second", "return bytes per second", units),
    }

    def body(rep: Report) -> None:
        rng = random.Random(seed)
        cases = [(PI3B_SDRAM_MHZ, PI3B_BUS_BITS), (500, 32)] + \
                [(rng.randrange(200, 1100), rng.choice([16, 32, 64])) for _ in range(4)]
        for mhz, bits in cases:
            want = mhz * 1e6 * 2 * bits / 8
            number_case(rep, fn, f"{name_of(fn)}({mhz}, {bits})", (mhz, bits), want, f"{want:.4g} B/s", slips,
                        (f"{mhz} million cycles a second, two transfers per cycle, {bits // 8} bytes per "
                         f"transfer make {want:.4g} bytes per second",
                         "the peak is cycles per second times transfers per cycle times bytes per transfer", units))
        rep.notes.append("right: 450 MHz x 2 x 4 B = 3.6 GB/s on a Pi 3B, 4.0 GB/s at the 3B+'s 500 MHz")
    return run_check("Peak DRAM bandwidth", fn, body, check="check_peak_bandwidth", hint=hint)


def check_fill_time(fn: Callable[[int, float], float], *, seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(size_bytes, bytes_per_second) -> seconds at that bandwidth."""
    units = ("A rate says how many bytes move in one second; the time is how many such seconds the size "
             "needs. Both inputs are already in bytes and bytes per second, so no conversion is needed: "
             "check that the units of your expression come out as seconds.")
    mixed = "keep size and bandwidth in bytes: both arrive in bytes already"
    slips: dict[float, Slip] = {
        1e3: ("that is milliseconds; the answer is in seconds", "return seconds", units),
        1e6: ("that is microseconds; the answer is in seconds", "return seconds", units),
        1e9 / 2**30: ("you mixed units: a GB is 10^9 bytes, a GiB 2^30; dividing bytes by 2^30 and the bandwidth "
                      "by 10^9 makes the time 7% too short", mixed, units),
        2**30 / 1e9: ("you mixed GB (10^9) and GiB (2^30)", mixed, units),
        1e6 / 2**20: ("you mixed MB (10^6) and MiB (2^20)", mixed, units),
        2**20 / 1e6: ("you mixed MB (10^6) and MiB (2^20)", mixed, units),
    }

    def body(rep: Report) -> None:
        rng = random.Random(seed)
        cases = [(64 * MiB, 3.6e9), (256 * KiB, 3.6e9)] + \
                [(rng.randrange(1, 512) * rng.choice([KiB, MiB]), rng.uniform(0.5, 20) * 1e9) for _ in range(4)]
        for size, bw in cases:
            want = size / bw
            number_case(rep, fn, f"{name_of(fn)}({size}, {bw:.4g})", (size, bw), want, f"{want:.6g} s", slips,
                        (f"{size} bytes at {bw:.4g} bytes every second take {want:.6g} s",
                         "think of how many seconds' worth of the rate the size is", units),
                        upside_down=(bw / size, ("upside down: your answer grows with the bandwidth, but a faster "
                                                 "memory takes less time",
                                                 "a bigger buffer must take longer, a faster memory less", units)))
        rep.notes.append("right: 64 MiB at 3.6 GB/s takes 18.6 ms at the very least; 256 KiB, 72.8 µs if it went to DRAM")
    return run_check("Time to fill at a bandwidth", fn, body, check="check_fill_time", hint=hint)


def _cache_level(size: int, l1: int, l2: int) -> str:
    return "L1" if size <= l1 else "L2" if size <= l2 else "DRAM"


def check_cache_level(fn: Callable[[int, int, int], str], *, seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(size, l1, l2) -> 'L1', 'L2' or 'DRAM': the nearest level a buffer of that size fits in."""
    more = ("The caches are nested: a buffer that fits in the L1 fits in the L2 as well, and is served by the "
            "nearer, faster L1. So ask the questions from the nearest level outwards: does it fit in the L1? If "
            "not, in the L2? If not, it streams from DRAM. Count a buffer exactly the size of a cache as fitting, but "
            "only just: on a real Pi it does not all stay there, since other data shares the cache (in the "
            "course's Pi 3B data, random reads of 512 KiB, the L2's size, took 19.6 ns more than an L1 hit, "
            "against 9.8 ns at 256 KiB: sbc-bench results/4hOp.txt).")

    def body(rep: Report) -> None:
        rng = random.Random(seed)
        cases = [(256 * KiB, PI3B_L1D, PI3B_L2), (64 * MiB, PI3B_L1D, PI3B_L2), (8 * KiB, PI3B_L1D, PI3B_L2)]
        for _ in range(3):
            l1 = rng.choice([16, 32, 48, 64]) * KiB
            l2 = rng.choice([256, 512, 1024, 2048]) * KiB
            # Away from the boundaries: a buffer the size of the cache is a judgement call.
            cases += [(int(l1 * rng.uniform(0.1, 0.8)), l1, l2), (int(rng.uniform(1.3 * l1, 0.8 * l2)), l1, l2),
                      (int(l2 * rng.uniform(1.5, 100)), l1, l2)]
        for size, l1, l2 in cases:
            want = _cache_level(size, l1, l2)
            call = f"{name_of(fn)}({size}, {l1}, {l2})"
            got = call_student(fn, call, size, l1, l2)
            if isinstance(got, str) and got.strip().upper() == want:
                continue
            why = (f"{size} bytes is {size / KiB:.4g} KiB, with an L1 of {l1 // KiB} KiB and an L2 of "
                   f"{l2 // KiB} KiB: " + {"L1": "it fits in the L1, the nearest level",
                                           "L2": "too big for the L1, small enough for the L2",
                                           "DRAM": "bigger than the L2, so every pass streams through DRAM"}[want])
            args = (call, repr(got), repr(want), why)
            if not isinstance(got, str):
                rep.fail(*args, "return one of the strings 'L1', 'L2' or 'DRAM'", more, rank=2)
            elif want == "L1" and got.strip().upper() == "L2":
                rep.fail(*args, "a buffer that fits in L1 also fits in L2, but it is served from the nearest: "
                         "test L1 first", more, rank=2)
            else:
                rep.fail(*args, "compare the size with each cache's size, the nearest cache first", more)
        rep.notes.append("right: on a Pi 3B a 256 KiB buffer fits in the L2 (512 KiB), 64 MiB fits nowhere")
    return run_check("Which cache a buffer fits in", fn, body, check="check_cache_level", hint=hint)


def check_efficiency(fn: Callable[[int, float, float], float], *, seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(size_bytes, seconds, peak_bytes_per_s) -> measured bandwidth / peak, as a fraction."""
    units = ("First the measured bandwidth: how many bytes moved per second of the run, in bytes per second "
             "like the peak. Then how big a part of the peak it is: a fraction between 0 and 1 for a run "
             "that goes to DRAM (0.5 is half the peak).")
    slips: dict[float, Slip] = {
        100.0: ("that is a percentage; the answer is the fraction (0.37, not 37)", "return a fraction", units),
        1e9 / 2**30: ("you measured in GiB/s against a peak in GB/s", "keep both in bytes per second", units),
        2**30 / 1e9: ("you mixed GB and GiB", "keep both in bytes per second", units),
    }

    def body(rep: Report) -> None:
        rng = random.Random(seed)
        cases = [(64 * MiB, 0.05016, 3.6e9)] + \
                [(rng.randrange(1, 256) * MiB, rng.uniform(0.001, 0.2), rng.uniform(1, 10) * 1e9) for _ in range(4)]
        for size, s, peak in cases:
            want = size / s / peak
            number_case(rep, fn, f"{name_of(fn)}({size}, {s:.5g}, {peak:.4g})", (size, s, peak), want,
                        f"{want:.4g}", slips,
                        (f"{size} bytes in {s:.5g} s is {size / s:.4g} B/s, which is {want:.4g} of the "
                         f"{peak:.4g} B/s peak", "first the measured bytes per second, then compare with the peak",
                         units),
                        upside_down=(1 / want, ("upside down: efficiency is the measured bandwidth as a part of "
                                                "the peak, at most 1 for a DRAM-bound run",
                                                "which of the two should be on top?", units)))
        rep.notes.append("right: the original lesson's 64 MiB fill in 50.16 ms is 1.34 GB/s, 37% of 3.6 GB/s")
    return run_check("Efficiency against the peak", fn, body, check="check_efficiency", hint=hint)


# --- the data lab 2 works on (host_recording serves lab 3 too) ---------------------

def host_recording(needs: Sequence[str] = ("baseline", "standard", "zerocopy")) -> Any:
    """The newest host run in data/ holding these benchmarks (libc kernel preferred)."""
    from ...bench.data import list_recordings
    from ...exc import DataError

    found = [r for r in list_recordings() if r.kind == "measured" and not r.is_pi
             and set(needs) <= set(r.frame.benchmark)]
    if not found:
        raise DataError("no host recording in data/ holds " + ", ".join(needs)
                        + f"; make one with '{pimem_command('record --contribute')}' (PIMEM_BACKEND=emulator)")
    found.sort(key=lambda r: (r.meta.get("kernel_choice") == "libc", r.meta.get("created", "")))
    return found[-1]


def fill_measurements(run: Any, backend: Any = None, sizes: Sequence[int] = (256 * KiB, 64 * MiB)) -> pd.DataFrame:
    """Cached fill times: measured now (live) or from data/ with their provenance (recorded).

    Columns: size_bytes, seconds, source, is_pi.
    """
    rows = []
    if getattr(run, "live", False):
        from ...memory.backend import get_backend
        from ...bench.benchmarks import RunOptions, run_benchmark
        from ...bench.kernels import DEFAULT_KERNEL, get_kernel

        b = backend or get_backend(run.backend)
        for n in sizes:
            r = run_benchmark("baseline", n, kernel=get_kernel(DEFAULT_KERNEL), backend=b, options=RunOptions())[0]
            rows.append((n, r.seconds("median"), f"measured now on this Pi ({DEFAULT_KERNEL} kernel, median of 5)", True))
        return pd.DataFrame(rows, columns=["size_bytes", "seconds", "source", "is_pi"])
    from ...bench.data import data_dir, load_recording

    for name, stat in (("original-lesson-pi3b", "mean"), ("tinymembench-pi3b", "best")):
        rec = load_recording(data_dir() / f"{name}.csv")
        f = rec.frame[(rec.frame.benchmark == "baseline") & (rec.frame.statistic == stat)]
        for _, row in f.iterrows():
            rows.append((int(row.size_bytes), float(row.seconds),
                         f"{rec.provenance()} [{row.kernel}]", rec.is_pi))
    rec = host_recording(("baseline",))
    f = rec.frame[rec.frame.benchmark == "baseline"]
    for n in sizes:
        s = f[f.size_bytes == n].seconds
        if len(s):
            rows.append((n, float(s.median()), f"{rec.provenance()} (NOT a Pi: the host's caches and DRAM)", False))
    return pd.DataFrame(rows, columns=["size_bytes", "seconds", "source", "is_pi"])
