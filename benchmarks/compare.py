#!/usr/bin/env python3
"""Compare pimem's timing engine and kernels with the C reference, membench.c.

Builds membench with the system ``cc`` into a temporary directory, runs it,
then runs ``pimem.timing.time_op`` with every pimem kernel on the same sizes,
the same operations and the same repetition scheme, and prints, per size and
operation, GB/s (10**9 B/s; a copy counts its bytes once) and the ratio
pimem/C. A ratio below 0.95 (sizes >= 64 KiB) or 0.80 (smaller sizes) is
flagged ``LOW``, or ``ovh`` when the cost of calling the kernel from Python
(measured on the same call with zero bytes, and taken off) was a large share
of the time: the point says more about Python than about memory.

This is a benchmark, not a test: its figures depend on the machine and its load.

    python3 benchmarks/compare.py                       # 4 KiB .. 64 MiB
    python3 benchmarks/compare.py --sizes 4K,1M,64M --iterations 9 --json
"""
from __future__ import annotations

import argparse
import json
import math
import mmap
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:       # run from a checkout without installing pimem
    sys.path.insert(0, str(ROOT))

from pimem import kernels as pk  # noqa: E402
from pimem import timing  # noqa: E402
from pimem.exc import UsageError  # noqa: E402
from pimem.sweep import cpu_model, format_size as human, parse_size  # noqa: E402

MEMBENCH_C = Path(__file__).resolve().parent / "membench.c"
CFLAGS = ["-O2", "-Wall", "-Wextra"]
OPS = ("fill", "copy", "read")
FILL_VALUE = 0xA5       # not 0: glibc may pick another code path for zero (FACTS section 5)
SMALL = 64 * 1024       # below this, a looser threshold: Python's call cost is visible
THRESHOLD_LARGE = 0.95
THRESHOLD_SMALL = 0.80
DEFAULT_SIZES = [1 << k for k in range(12, 27)]     # 4 KiB .. 64 MiB


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


def run_membench(exe: Path, sizes: list[int], iterations: int, warmup: int) -> dict[tuple[int, str], dict]:
    cmd = [str(exe), "-n", str(iterations), "-w", str(warmup), "-v", str(FILL_VALUE),
           "-t", repr(timing.DEFAULT_MIN_SAMPLE_S), *map(str, sizes)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"compare.py: membench failed ({proc.returncode}): {proc.stderr.strip()}")
    return {(r["size_bytes"], r["op"]): r for r in map(json.loads, proc.stdout.splitlines())}


def _anon(nbytes: int) -> tuple[mmap.mmap, np.ndarray]:
    # Page-aligned like membench's posix_memalign buffers and like a Pi's mapped GPU memory.
    mm = mmap.mmap(-1, nbytes)
    arr = np.frombuffer(mm, dtype=np.uint8)
    arr.fill(0x11)      # touch every page before timing
    return mm, arr


def run_pimem(size: int, iterations: int, warmup: int) -> dict[tuple[str, str], timing.Timing]:
    results: dict[tuple[str, str], timing.Timing] = {}
    mm_dst, dst = _anon(size)
    mm_src, src = _anon(size)
    try:
        src.fill(0x5A)
        for op in OPS:
            for name, kernel in pk.KERNELS.items():     # kernels alternate, so drift hits both
                prepared = {
                    "fill": lambda: kernel.fill_op(dst, FILL_VALUE),
                    "copy": lambda: kernel.copy_op(dst, src),
                    "read": lambda: kernel.read_op(src),
                }[op]()
                results[(op, name)] = timing.time_op(prepared.run, empty_op=prepared.empty,
                                                     iterations=iterations, warmup=warmup)
                del prepared
    finally:
        del dst, src        # the views first, or the mmaps cannot close
        mm_dst.close()
        mm_src.close()
    return results


def gbps(size: int, seconds: float) -> float:
    return size / seconds / 1e9 if seconds > 0 else math.inf


def compare(sizes: list[int], iterations: int, warmup: int, stat: str, cc: str) -> dict:
    if stat not in ("median", "min"):
        raise UsageError(f"stat must be 'median' or 'min', got {stat!r}")
    c_results: dict[tuple[int, str], dict] = {}
    py_results: dict[tuple[int, str, str], timing.Timing] = {}
    with tempfile.TemporaryDirectory(prefix="pimem-membench-") as tmp:
        exe = build_membench(Path(tmp), cc)
        for size in sizes:      # C then pimem, size by size: a slow spell of the machine hits both
            c_results.update(run_membench(exe, [size], iterations, warmup))
            for (op, name), t in run_pimem(size, iterations, warmup).items():
                py_results[(size, op, name)] = t

    rows = []
    closeness: dict[str, list[float]] = {name: [] for name in pk.KERNELS}
    low: dict[str, int] = {name: 0 for name in pk.KERNELS}
    for size in sizes:
        for op in OPS:
            c = c_results[(size, op)]
            c_gbps = gbps(size, c[f"{stat}_s"])
            row = {"size_bytes": size, "op": op, "c": {"seconds": c[f"{stat}_s"], "gbps": c_gbps, "reps": c["reps"]}}
            for name in pk.KERNELS:
                t = py_results[(size, op, name)]
                p_gbps = gbps(size, t.stat(stat))
                ratio = p_gbps / c_gbps
                threshold = THRESHOLD_LARGE if size >= SMALL else THRESHOLD_SMALL
                flag = "" if ratio >= threshold else ("ovh" if t.overhead_bound else "LOW")
                low[name] += flag == "LOW"
                if math.isfinite(ratio) and ratio > 0:
                    closeness[name].append(min(ratio, 1 / ratio))
                row[name] = {"seconds": t.stat(stat), "gbps": p_gbps, "ratio": ratio, "flag": flag,
                             "reps": t.reps, "overhead_s": t.overhead_s, "overhead_bound": t.overhead_bound}
            rows.append(row)

    summary = {}
    for name, values in closeness.items():
        geo = math.exp(sum(map(math.log, values)) / len(values)) if values else 0.0
        summary[name] = {"closeness_geomean": geo, "low_points": low[name]}
    closest = max(summary, key=lambda n: (summary[n]["closeness_geomean"], -summary[n]["low_points"]))
    return {
        "host": {"machine": platform.machine(), "cpu": cpu_model(), "python": platform.python_version(),
                 "numpy": np.__version__, "cc": cc_version(cc),
                 "cpus": os.cpu_count(), "load_average_after": load_average()},
        "iterations": iterations, "warmup": warmup, "stat": stat, "fill_value": FILL_VALUE,
        "thresholds": {"small_below_bytes": SMALL, "small": THRESHOLD_SMALL, "large": THRESHOLD_LARGE},
        "rows": rows, "summary": summary, "closest_to_c": closest, "default_kernel": pk.DEFAULT_KERNEL,
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
    names = list(pk.KERNELS)
    host = report["host"]
    print(f"# {host['machine']}, {host['cpu']}; Python {host['python']}, numpy {host['numpy']}; {host['cc']}")
    print(f"# {host['cpus']} CPUs; load average after the run: {host['load_average_after']} (other work skews figures)")
    print(f"# {report['stat']} of {report['iterations']} iterations, warm-up {report['warmup']}; "
          f"GB/s = 10^9 B/s, copy counts bytes once; fill value 0x{report['fill_value']:02X}")
    head = f"{'size':>9} {'op':<4} {'C GB/s':>9}"
    for name in names:
        head += f" {name + ' GB/s':>11} {'ratio':>6} {'':<4}"
    print(head)
    for row in report["rows"]:
        line = f"{human(row['size_bytes']):>9} {row['op']:<4} {row['c']['gbps']:9.2f}"
        for name in names:
            r = row[name]
            line += f" {r['gbps']:11.2f} {r['ratio']:6.2f} {r['flag']:<4}"
        print(line.rstrip())
    print(f"# LOW: ratio < {THRESHOLD_LARGE} (>= {human(SMALL)}) or < {THRESHOLD_SMALL} (smaller); "
          f"ovh: below that, and the call overhead was >= {timing.OVERHEAD_BOUND_SHARE:.0%} of the time")
    for name, s in report["summary"].items():
        print(f"# {name}: geometric mean of min(ratio, 1/ratio) = {s['closeness_geomean']:.3f}, "
              f"LOW points = {s['low_points']}")
    print(f"# closest to C: {report['closest_to_c']} (pimem.kernels.DEFAULT_KERNEL = {report['default_kernel']!r})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=DEFAULT_SIZES,
                        help="comma-separated sizes, bytes or with K/M/G (default 4K..64M, powers of two)")
    parser.add_argument("--iterations", type=int, default=timing.DEFAULT_ITERATIONS,
                        help=f"timed regions per point (default {timing.DEFAULT_ITERATIONS})")
    parser.add_argument("--warmup", type=int, default=timing.DEFAULT_WARMUP,
                        help=f"warm-up regions, calibration included (default {timing.DEFAULT_WARMUP})")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="statistic compared (default median)")
    parser.add_argument("--cc", default=os.environ.get("CC", "cc"), help="C compiler (default $CC or cc)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.warmup < 0 or not args.sizes:
        parser.error("need --iterations >= 1, --warmup >= 0 and at least one size")
    cc = shutil.which(args.cc)
    if cc is None:
        print(f"compare.py: no C compiler {args.cc!r} on PATH; install one "
              "(e.g. 'sudo apt install gcc') or name it with --cc", file=sys.stderr)
        return 1
    report = compare(args.sizes, args.iterations, args.warmup, args.stat, cc)
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
