"""Checks, model and data for notebooks/labs/lab5-when-zero-copy-hurts.ipynb: zero-copy or copy, by cost."""
from __future__ import annotations

import random
from typing import Any, Callable

import pandas as pd

from ._checks import CheckResult, KiB, MiB, Report, Slip, call_student, case_rng, function_name, number_case, run_check


#: Keys of the bandwidth table lab 5 works with (MiB/s), and the qmkl benchmark behind each.
RATE_SOURCES: dict[str, str] = {
    "write_host": "baseline",          # memset of a host buffer (timed with its first page faults)
    "write_direct": "zerocopy",        # memset of a DIRECT GPU buffer
    "read_host": "read-host",          # sum of a host buffer
    "read_direct": "read-direct",      # sum of a DIRECT GPU buffer
    "copy_to_gpu": "copy-to-direct",   # memcpy host -> DIRECT
    "copy_from_gpu": "copy-from-direct",  # memcpy DIRECT -> host
}


def qmkl_rates(directory: str | None = None) -> dict[str, float]:
    """The qmkl PR #35 figures (Pi 3, 4 MiB, MiB/s), read from data/qmkl-pi3."""
    from ...bench.data import data_dir, load_recording

    from pathlib import Path

    rec = load_recording(Path(directory or data_dir()) / "qmkl-pi3.csv")
    f = rec.frame
    out = {}
    for key, bench in RATE_SOURCES.items():
        row = f[f.benchmark == bench].iloc[0]
        out[key] = float(row.bytes) / float(row.seconds) / MiB
    return out


def fair_rates(directory: str | None = None) -> dict[str, float]:
    """qmkl's rates with a fair cached write: tinymembench's memset on a Pi 3B (no first page faults).

    qmkl timed its host memset, and its copies into host memory, together with their first
    page faults; the memset is the rate the lab's model uses for a cached write.
    """
    from ...bench.data import data_dir, load_recording

    from pathlib import Path

    rates = qmkl_rates(directory)
    f = load_recording(Path(directory or data_dir()) / "tinymembench-pi3b.csv").frame
    memset = f[(f.benchmark == "baseline") & (f.kernel == "libc")].iloc[0]
    rates["write_host"] = float(memset.bytes) / float(memset.seconds) / MiB
    return rates


def verdicts(rates_by_name: dict[str, dict[str, float]]) -> pd.DataFrame:
    """The model's choice for each of lab 5's workloads, one column per set of rates."""
    return pd.DataFrame({name: {w: choose_buffer(*WORKLOADS[w], rates) for w in WORKLOADS}
                         for name, rates in rates_by_name.items()})


def transfer_ms(nbytes: float, mib_per_s: float) -> float:
    return nbytes / (mib_per_s * MiB) * 1e3


def costs_ms(cpu_writes: int, cpu_reads: int, passes: float, rates: dict[str, float]) -> dict[str, float]:
    """The lab's cost model: one buffer the CPU writes for the GPU and reads back from it."""
    zc = transfer_ms(cpu_writes, rates["write_direct"]) + transfer_ms(cpu_reads * passes, rates["read_direct"])
    copy = (transfer_ms(cpu_writes, rates["write_host"]) + transfer_ms(cpu_writes, rates["copy_to_gpu"])
            + transfer_ms(cpu_reads, rates["copy_from_gpu"]) + transfer_ms(cpu_reads * passes, rates["read_host"]))
    return {"zero-copy": zc, "copy": copy}


def choose_buffer(cpu_writes: int, cpu_reads: int, passes: float, rates: dict[str, float]) -> str:
    """The reference decision: the cheaper of the two in the cost model (ties: zero-copy)."""
    c = costs_ms(cpu_writes, cpu_reads, passes, rates)
    return "zero-copy" if c["zero-copy"] <= c["copy"] else "copy"


def check_transfer_ms(fn: Callable[[float, float], float], *, seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(nbytes, mib_per_s) -> milliseconds."""
    units = ("Turn the rate into bytes per second first (a MiB is 2^20 bytes, not 10^6), divide the bytes "
             "by it to get seconds, then express that in milliseconds (1000 of them in a second). Checking "
             "the units of each step catches every slip here.")
    mib = ("the rates are MiB/s: a MiB is 2^20 bytes, not 10^6", "use 2^20 bytes per MiB", units)
    slips: dict[float, Slip] = {1e-3: ("that is seconds; the answer is in milliseconds", "return milliseconds", units),
                                2**20 / 1e6: mib, 1e6 / 2**20: mib,
                                1e3: ("that is microseconds; the answer is in milliseconds", "return milliseconds",
                                      units)}

    def body(rep: Report) -> None:
        rng = case_rng(seed)
        for n, r in [(4 * MiB, 33.6), (4 * MiB, 1083.1)] + \
                [(rng.randrange(1, 10000) * KiB, rng.uniform(10, 5000)) for _ in range(4)]:
            want = transfer_ms(n, r)
            number_case(rep, fn, f"{function_name(fn)}({n}, {r:.4g})", (n, r), want, f"{want:.4g} ms", slips,
                        (f"{n} bytes is {n / MiB:.4g} MiB; at {r:.4g} MiB every second that takes "
                         f"{want / 1e3:.4g} s, {want:.4g} ms", "bytes, then MiB, then seconds, then milliseconds",
                         units))
        rep.notes.append("right: reading 4 MiB of DIRECT memory at qmkl's 33.6 MiB/s takes 119 ms, 3.7 ms from a host buffer")
    return run_check("Time of a transfer", fn, body, check="check_transfer_ms", hint=hint)


def _random_rates(rng: random.Random, base: dict[str, float]) -> dict[str, float]:
    return {k: v * rng.uniform(0.3, 3) for k, v in base.items()}


_MODEL_MORE = ("Cost each path in milliseconds with your transfer_ms, step by step as section 2 lists them. "
               "Zero-copy: the CPU's writes at write_direct, plus the reads at read_direct, once per pass. Copy: "
               "the writes at write_host, the copy over at copy_to_gpu, one copy back at copy_from_gpu, and "
               "the reads at read_host, once per pass. Then pick the cheaper path; on a tie, zero-copy. Use the "
               "rates you are given, never fixed numbers.")


def check_choose(fn: Callable[[int, int, float, dict], str], *, seed: int | None = None,
                 rates: dict[str, float] | None = None, hint: int = 1) -> CheckResult:
    """fn(cpu_writes, cpu_reads, passes, rates) -> 'zero-copy' or 'copy', tried with other rates too."""
    def body(rep: Report) -> None:
        rng = case_rng(seed)
        base = rates or qmkl_rates()
        tried = 0
        while tried < 10:
            r = base if tried < 3 else _random_rates(rng, base)
            w = rng.choice([0, rng.randrange(1, 16) * MiB])
            rd = rng.choice([0, 4 * KiB, rng.randrange(1, 16) * MiB])
            p = rng.choice([0.05, 1, 3, 10]) if rd else 0
            c = costs_ms(w, rd, p, r)
            if (w or rd) and abs(c["zero-copy"] - c["copy"]) < 0.05 * max(c.values()):
                continue  # too close to call: not a fair test of a method
            tried += 1
            want = choose_buffer(w, rd, p, r)
            call = (f"{function_name(fn)}({w}, {rd}, {p}, rates) with rates (MiB/s) "
                    + ", ".join(f"{k} {v:.0f}" for k, v in r.items()))
            got = call_student(fn, call, w, rd, p, dict(r))
            if isinstance(got, str) and got.strip().lower() == want:
                continue
            why = (f"writes {w} B, reads {rd} B {p} time(s): zero-copy costs {c['zero-copy']:.3g} ms, "
                   f"copy {c['copy']:.3g} ms")
            args = (call, repr(got), repr(want))
            if got not in ("zero-copy", "copy"):
                rep.fail(*args, why, "answer 'zero-copy' or 'copy'", _MODEL_MORE, rank=2)
            elif want == "copy" and rd:
                rep.fail(*args, f"reads of uncached memory cost far more than writes; {why}",
                         "count the reads back, every pass, at their own rate", _MODEL_MORE, rank=2)
            else:
                rep.fail(*args, why, "cost both paths with the rates given, then compare", _MODEL_MORE)
        rep.notes.append("agrees with the cost model on qmkl's figures and on made-up rates (so the method, "
                         "not a memorised answer)")
    return run_check("Choosing a buffer kind", fn, body, check="check_choose", hint=hint)


#: Lab 5's three described workloads: (CPU writes for the GPU, CPU reads back, read passes).
WORKLOADS: dict[str, tuple[int, int, float]] = {
    "A": (8 * MiB, 0, 0),          # video frames the CPU prepares, the GPU consumes
    "B": (4 * MiB, 4 * MiB, 3),    # GPU results the CPU reads three times
    "C": (1 * MiB, 4 * KiB, 1),    # vertex data out, a small status block back
}


def check_workloads(fn: Callable[[], dict[str, str]], *, rates: dict[str, float] | None = None,
                    hint: int = 1) -> CheckResult:
    """fn() -> {'A': kind, 'B': kind, 'C': kind}, each 'zero-copy' or 'copy', with qmkl's figures."""
    def body(rep: Report) -> None:
        r = rates or qmkl_rates()
        call = f"{function_name(fn)}()"
        got = call_student(fn, call)
        if not isinstance(got, dict):
            rep.fail(call, repr(got), "a dict such as {'A': 'zero-copy', 'B': ..., 'C': ...}",
                     "the exercise asks for one choice per workload", "return a dict keyed 'A', 'B' and 'C'",
                     _MODEL_MORE, rank=2)
            return
        for name, (w, rd, p) in WORKLOADS.items():
            want = choose_buffer(w, rd, p, r)
            c = costs_ms(w, rd, p, r)
            g = got.get(name)
            if isinstance(g, str) and g.strip().lower() == want:
                rep.notes.append(f"{name}: {want} ({c['zero-copy']:.3g} ms against {c['copy']:.3g} ms for the other)")
                continue
            rep.fail(f"{call}[{name!r}], workload {name}: writes {w} B, reads {rd} B {p} time(s)", repr(g),
                     repr(want), f"with qmkl's figures zero-copy costs {c['zero-copy']:.3g} ms and copy "
                     f"{c['copy']:.3g} ms", "use your choose() with each workload's numbers and the qmkl rates",
                     _MODEL_MORE, rank=2)
    return run_check("Three workloads", fn, body, check="check_workloads", hint=hint)


# --- the data lab 5 works on --------------------------------------------------------

def read_rates(run: Any, backend: Any = None, size: int = 4 * MiB) -> pd.DataFrame:
    """Read bandwidth of cached and DIRECT memory: measured now (live) or qmkl's figures (recorded)."""
    rows = []
    if getattr(run, "live", False):
        from ...memory.backend import get_backend
        from ...bench.benchmarks import RunOptions, run_benchmark
        from ...bench.kernels import DEFAULT_KERNEL, get_kernel

        b = backend or get_backend(run.backend)
        for bench in ("read-host", "read-direct", "read-coherent"):
            r = run_benchmark(bench, size, kernel=get_kernel(DEFAULT_KERNEL), backend=b, options=RunOptions())[0]
            if r.verified:
                rows.append((bench, size, size / r.seconds("median") / MiB, "measured now on this Pi"))
        return pd.DataFrame(rows, columns=["benchmark", "size_bytes", "mib_per_s", "source"])
    from ...bench.data import data_dir, load_recording

    rec = load_recording(data_dir() / "qmkl-pi3.csv")
    for _, row in rec.frame.iterrows():
        rows.append((row.benchmark, int(row.size_bytes), float(row.bytes) / float(row.seconds) / MiB, rec.provenance()))
    return pd.DataFrame(rows, columns=["benchmark", "size_bytes", "mib_per_s", "source"])
