#!/usr/bin/env python3
"""Compare pimem's timing with the C reference, membench.c, interleaved.

Builds membench with the system ``cc`` into a temporary directory. Then, for
each repeat and each size, it runs membench (fill, copy, read, latency) and
pimem's default kernel on the same operations, alternating which goes first,
so a machine that drifts (frequency, other jobs) cannot favour one side.
Per size and operation it keeps the median over repeats of each side's
median, and prints GB/s (10**9 B/s; a copy counts its bytes once) or ns per
access, the ratio pimem/C, and the worst ratio per operation.

Goal (benchmarks/README.md): bandwidth pimem/C >= 0.95 at every size from
4 KiB to 256 MiB, latency pimem/C within 5 % from 1 KiB to 64 MiB.

This is a benchmark, not a test: its figures depend on the machine and its load.

    python3 benchmarks/compare.py                       # 1 KiB .. 256 MiB, 3 repeats
    python3 benchmarks/compare.py --sizes 4K,1M,64M --repeats 5 --json
"""
from __future__ import annotations

import argparse
import json
import mmap
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:       # run from a checkout without installing pimem
    sys.path.insert(0, str(ROOT))

from pimem.bench import benchmarks as bm# noqa: E402
from pimem.bench import kernels as pk# noqa: E402
from pimem.bench import timing# noqa: E402
from pimem.exc import UsageError  # noqa: E402
from pimem.bench.machine import cpu_model  # noqa: E402
from pimem.units import format_size as human, parse_size  # noqa: E402

MEMBENCH_C = Path(__file__).resolve().parent / "membench.c"
CFLAGS = ["-O2", "-Wall", "-Wextra"]
BANDWIDTH_OPS = ("fill", "copy", "read")
OPS = BANDWIDTH_OPS + ("latency",)
FILL_VALUE = 0xA5       # not 0: glibc may pick another code path for zero (FACTS section 5)
BANDWIDTH_SIZES = (4 << 10, 256 << 20)   # the goal's ranges, inclusive
LATENCY_SIZES = (1 << 10, 64 << 20)
BANDWIDTH_GOAL = 0.95   # pimem/C at least this
LATENCY_GOAL = 0.05     # |pimem/C - 1| at most this
DEFAULT_SIZES = [1 << k for k in range(10, 29)]     # 1 KiB .. 256 MiB


def ops_for(size: int) -> tuple[str, ...]:
    """The operations the goal covers at ``size``."""
    bw = BANDWIDTH_SIZES[0] <= size <= BANDWIDTH_SIZES[1]
    lat = LATENCY_SIZES[0] <= size <= LATENCY_SIZES[1]
    return (BANDWIDTH_OPS if bw else ()) + (("latency",) if lat else ())


def parse_sizes(text: str) -> list[int]:
    try:
        return [parse_size(part) for part in text.split(",") if part.strip()]
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_membench(workdir: Path, cc: str) -> Path:
    exe = workdir / "membench"
    proc = subprocess.run([cc, *CFLAGS, "-o", str(exe), str(MEMBENCH_C)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"compare.py: {cc} could not build {MEMBENCH_C.name}:\n{proc.stderr}")
    if proc.stderr.strip():
        print(f"compare.py: warnings building {MEMBENCH_C.name}:\n{proc.stderr}", file=sys.stderr)
    return exe


def run_membench(exe: Path, size: int, ops: tuple[str, ...], iterations: int, warmup: int) -> dict[str, float]:
    """membench's median seconds (per operation, per access for latency) for each op at one size."""
    cmd = [str(exe), "-n", str(iterations), "-w", str(warmup), "-v", str(FILL_VALUE),
           "-t", repr(timing.DEFAULT_MIN_SAMPLE_S), "-o", "".join(op[0] for op in ops), str(size)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"compare.py: membench failed ({proc.returncode}): {proc.stderr.strip()}")
    return {r["op"]: r["median_s"] for r in map(json.loads, proc.stdout.splitlines())}


def _anon(nbytes: int) -> tuple[mmap.mmap, np.ndarray]:
    # Page-aligned like membench's posix_memalign buffers and like a Pi's mapped GPU memory.
    mm = mmap.mmap(-1, nbytes)
    arr = np.frombuffer(mm, dtype=np.uint8)
    arr.fill(0x11)      # touch every page before timing
    return mm, arr


def run_pimem(kernel: pk.Kernel, size: int, ops: tuple[str, ...], iterations: int, warmup: int) -> dict[str, timing.Timing]:
    """pimem's timings (per operation; per access for latency) for each op at one size."""
    results: dict[str, timing.Timing] = {}
    mm_dst, dst = _anon(size)
    mm_src, src = _anon(size)
    per = {op: 1 for op in ops}
    try:
        src.fill(0x5A)
        for op in ops:
            if op == "latency":
                prepared, _ = bm.chase_kernel("compare.py's latency").chase_op(dst, bm.LATENCY_SLOT, bm.LATENCY_STEPS)
                per[op] = bm.LATENCY_STEPS
            else:
                prepared = {"fill": lambda: kernel.fill_op(dst, FILL_VALUE),
                            "copy": lambda: kernel.copy_op(dst, src),
                            "read": lambda: kernel.read_op(src)}[op]()
            t = timing.time_op(prepared.run, empty_op=prepared.empty, region=prepared.region,
                               iterations=iterations, warmup=warmup)
            results[op] = t
            del prepared
    finally:
        del dst, src        # the views first, or the mmaps cannot close
        mm_dst.close()
        mm_src.close()
    return {op: (t, per[op]) for op, t in results.items()}


def compare(sizes: list[int], iterations: int, warmup: int, repeats: int, cc: str, kernel_name: str,
            progress=print) -> dict:
    kernel = pk.get_kernel(kernel_name)
    c_runs: dict[tuple[int, str], list[float]] = {}
    py_runs: dict[tuple[int, str], list[float]] = {}
    bound: dict[tuple[int, str], bool] = {}
    with tempfile.TemporaryDirectory(prefix="pimem-membench-") as tmp:
        exe = build_membench(Path(tmp), cc)
        for rep in range(repeats):
            for size in sizes:
                ops = ops_for(size)
                if not ops:
                    continue
                sides = ["c", "pimem"] if (rep + sizes.index(size)) % 2 == 0 else ["pimem", "c"]
                for side in sides:      # alternate who goes first: drift hits both alike
                    if side == "c":
                        for op, sec in run_membench(exe, size, ops, iterations, warmup).items():
                            c_runs.setdefault((size, op), []).append(sec)
                    else:
                        for op, (t, per) in run_pimem(kernel, size, ops, iterations, warmup).items():
                            py_runs.setdefault((size, op), []).append(t.median_s / per)
                            bound[(size, op)] = bound.get((size, op), False) or t.overhead_bound
            progress(f"# repeat {rep + 1} of {repeats} done")

    rows = []
    worst: dict[str, dict] = {}
    for (size, op), c_secs in sorted(c_runs.items(), key=lambda kv: (kv[0][0], OPS.index(kv[0][1]))):
        c_s, p_s = statistics.median(c_secs), statistics.median(py_runs[(size, op)])
        if op == "latency":
            ratio = p_s / c_s                                  # time against time: 1 is equal
            ok = abs(ratio - 1) <= LATENCY_GOAL
            badness = abs(ratio - 1)
        else:
            ratio = c_s / p_s                                  # bandwidth pimem / C
            ok = ratio >= BANDWIDTH_GOAL
            badness = -ratio
        row = {"size_bytes": size, "op": op, "c_seconds": c_s, "pimem_seconds": p_s, "ratio": ratio, "meets_goal": ok,
               "overhead_bound": bound[(size, op)], "c_repeats": c_secs, "pimem_repeats": py_runs[(size, op)]}
        rows.append(row)
        if op not in worst or badness > worst[op]["_badness"]:
            worst[op] = {"size_bytes": size, "ratio": ratio, "_badness": badness}
    for w in worst.values():
        del w["_badness"]
    return {
        "host": {"machine": platform.machine(), "cpu": cpu_model(), "python": platform.python_version(),
                 "numpy": np.__version__, "cc": cc_version(cc),
                 "cpus": os.cpu_count(), "load_average_after": load_average()},
        "kernel": kernel_name, "iterations": iterations, "warmup": warmup, "repeats": repeats,
        "fill_value": FILL_VALUE, "rows": rows, "worst": worst,
        "misses": sum(not r["meets_goal"] for r in rows),
    }


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def cc_version(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    return out.splitlines()[0] if out else "unknown"


def print_table(report: dict) -> None:
    host = report["host"]
    print(f"# {host['machine']}, {host['cpu']}; Python {host['python']}, numpy {host['numpy']}; {host['cc']}")
    print(f"# {host['cpus']} CPUs; load average after the run: {host['load_average_after']} (other work skews figures)")
    print(f"# pimem kernel {report['kernel']!r}; median of {report['iterations']} iterations per run, "
          f"median of {report['repeats']} interleaved repeats; fill value 0x{report['fill_value']:02X}")
    print(f"# bandwidth in GB/s (10^9 B/s, a copy counts its bytes once), ratio = pimem/C, goal >= {BANDWIDTH_GOAL}")
    print(f"# latency in ns per access, ratio = pimem time / C time, goal within {LATENCY_GOAL:.0%} of 1")
    print(f"{'size':>9} {'op':<8} {'C':>10} {'pimem':>10} {'ratio':>6}")
    for r in report["rows"]:
        if r["op"] == "latency":
            c, p = f"{r['c_seconds'] * 1e9:.2f} ns", f"{r['pimem_seconds'] * 1e9:.2f} ns"
        else:
            c, p = (f"{r['size_bytes'] / r[k] / 1e9:.2f}" for k in ("c_seconds", "pimem_seconds"))
        mark = "" if r["meets_goal"] else ("  MISS (overhead-bound)" if r["overhead_bound"] else "  MISS")
        print(f"{human(r['size_bytes']):>9} {r['op']:<8} {c:>10} {p:>10} {r['ratio']:6.3f}{mark}")
    for op, w in report["worst"].items():
        print(f"# worst {op}: {w['ratio']:.3f} at {human(w['size_bytes'])}")
    print(f"# points missing the goal: {report['misses']} of {len(report['rows'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=DEFAULT_SIZES,
                        help="comma-separated sizes, bytes or with K/M/G (default 1K..256M, powers of two)")
    parser.add_argument("--iterations", type=int, default=timing.DEFAULT_ITERATIONS,
                        help=f"timed regions per run (default {timing.DEFAULT_ITERATIONS})")
    parser.add_argument("--warmup", type=int, default=timing.DEFAULT_WARMUP,
                        help=f"warm-up regions, calibration included (default {timing.DEFAULT_WARMUP})")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved C/pimem pairs per size (default 3)")
    parser.add_argument("--kernel", default=pk.DEFAULT_KERNEL, choices=sorted(pk.KERNELS),
                        help=f"pimem kernel (default {pk.DEFAULT_KERNEL}, pimem's default)")
    parser.add_argument("--cc", default=os.environ.get("CC", "cc"), help="C compiler (default $CC or cc)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.warmup < 0 or args.repeats < 1 or not args.sizes:
        parser.error("need --iterations >= 1, --warmup >= 0, --repeats >= 1 and at least one size")
    cc = shutil.which(args.cc)
    if cc is None:
        print(f"compare.py: no C compiler {args.cc!r} on PATH; install one "
              "(e.g. 'sudo apt install gcc') or name it with --cc", file=sys.stderr)
        return 1
    report = compare(sorted(set(args.sizes)), args.iterations, args.warmup, args.repeats, cc, args.kernel,
                     progress=(lambda m: print(m, file=sys.stderr)) if args.json else print)
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
