#!/usr/bin/env python3
"""Make the published recordings in data/ from the figures below.

    python data/published/make_published.py            # rewrites them in data/
    python data/published/make_published.py --out DIR   # writes them elsewhere

Nothing here was measured by pimem: every figure is a literal copied, as
printed, from the source named beside it, and stored as printed: its value
and its unit (ms, ns, MB/s = 10^6 B/s, MiB/s = 2^20 B/s, or ns/8B: ns per 8-byte element). The time of one
operation and the bandwidths follow from it when a recording is read, as for
any recording. The old files are deleted first, because save_recording never
overwrites; each keeps the `created` time of the file it replaces.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run from a checkout without installing pimem
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402

from pimem import __version__  # noqa: E402
from pimem.bench.data import COLUMNS, SCHEMA, save_recording  # noqa: E402

MiB = 2 ** 20
from sbc_bench_pi import RUNS  # noqa: E402  (the figures, transcribed with their quotes and commits)
import cpp_memory_performance_pi3 as CPPMEM  # noqa: E402  (the Pi 3B read sweep, quoted and transcribed)

#: sbc-bench result files of other Raspberry Pi models: recording name -> (result, board name).
#: (The Pi 4B has two runs there; 3Gia is the one on Raspberry Pi OS.)
SBC_MODELS = {
    "tinymembench-pi1b": ("3E7U", "Raspberry Pi 1 Model B"),
    "tinymembench-pizerow": ("3Njz", "Raspberry Pi Zero W"),
    "tinymembench-pi2b": ("3MGs", "Raspberry Pi 2B"),
    "tinymembench-pizero2w": ("3DeL", "Raspberry Pi Zero 2 W"),
    "tinymembench-pi4b": ("3Gia", "Raspberry Pi 4B"),
    "tinymembench-pi400": ("2Cyi", "Raspberry Pi 400"),
    "tinymembench-pi5": ("4JAv", "Raspberry Pi 5"),
}
#: The latency tables of other runs of BCM2837-class boards (the Pi 3B's Cortex-A53 cores): recording name ->
#: (result, board name). Their names do not start with tinymembench-: those are one run per model.
LATENCY_RUNS = {
    "latency-pizero2w-600mhz": ("3Dfo", "Raspberry Pi Zero 2 W"),
    "latency-pizero2w-1000mhz": ("3E85", "Raspberry Pi Zero 2 W"),
    "latency-pi3bplus-1200mhz": ("1iGM", "Raspberry Pi 3B+"),
}
NAMES = ("original-lesson-pi3b", "tinymembench-pi3b", "tinymembench-pi3bplus", "qmkl-pi3", *SBC_MODELS,
         "cpp-memory-performance-pi3b", "ramlat-pi3b", *LATENCY_RUNS)
COMMAND = "python data/published/make_published.py"
CONVERTED_BY = f"pimem {__version__}, data/published/make_published.py"


def row(benchmark: str, phase: str, size: int, value: float, unit: str, *, statistic: str, kernel: str,
        flags: str = "", alias: str = "") -> dict[str, Any]:
    """One published statistic as a row: the figure as printed; the time and bandwidths follow on reading."""
    return {
        "benchmark": benchmark, "phase": phase, "size_bytes": size, "statistic": statistic,
        "sample": 0, "value": value, "unit": unit,
        "reps": 1, "overhead_bound": False, "verified": "unknown",
        "kernel": kernel, "flags": flags, "alias": alias,
    }


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[c for c in COLUMNS if c in rows[0]])


# --- 1. The original lesson's run ------------------------------------------
# Source: the lesson "006_Zero_Copy_Shared_Memory", README section
# "Actual Output (Raspberry Pi 3B)", Results Summary table (Time (ms)).
LESSON_BYTES = 67108864  # "64 MB (67108864 bytes)"
LESSON_MS = [
    # benchmark, phase, mean ms, flags, alias (from the bus addresses it prints)
    ("baseline", "fill", 50.16, "", ""),               # Baseline (cached malloc)
    ("standard", "fill", 45.51, "COHERENT", "0x8"),    # Standard: Fill (cached)
    ("standard", "copy", 64.04, "COHERENT", "0x8"),    # Standard: Copy (memcpy)
    ("standard", "total", 109.56, "COHERENT", "0x8"),  # Standard: TOTAL
    ("zerocopy", "write", 38.26, "DIRECT|ZERO", "0xC"),  # Zero-Copy: Direct write
]


def lesson(created: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    rows = [row(b, p, LESSON_BYTES, ms, "ms", statistic="mean", kernel="c", flags=f, alias=a)
            for b, p, ms, f, a in LESSON_MS]
    meta = {
        "schema": SCHEMA,
        "title": "Original lesson, Raspberry Pi 3B run: cached fill, fill + copy, zero-copy write (64 MiB)",
        "source": {
            "kind": "published",
            "short": "original lesson (C, mean of 5 runs)",
            "reference": "The original lesson '006_Zero_Copy_Shared_Memory' (C benchmark), README, "
                         "section 'Actual Output (Raspberry Pi 3B)', table 'Results Summary (64 MB data)'. "
                         "A copy is kept with the project as shared/reference/original-lesson.md.",
            "url": "",
            "notes": (
                "Times are the printed means in ms (1 warm-up, then 5 timed iterations averaged); "
                "per-iteration times were not published. Printed to 0.01 ms, so fill + copy (109.55) "
                "and total (109.56) differ in the last digit. The table's 'BW (GB/s)' column is in "
                "GiB/s: 67108864 B / 50.16 ms = 1.338 GB/s = 1.246 GiB/s, and it prints 1.246; both "
                "units here are computed from the times, which are rounded, so they can differ from "
                "the printed GiB/s in the last digit (zero-copy: 1.634 here, 1.633 printed). Its Status column shows REF for the baseline "
                "and [PASS] for the standard total and the zero-copy write, but the README never says "
                "what [PASS] checks (its C source is not in the copy we have): it may check the "
                "buffer's contents or only that the step ran, so verified is 'unknown'. Buffers: "
                "standard copies into a COHERENT allocation, printed at bus 0xBAAA8000 (alias 0x8); "
                "zero-copy writes a DIRECT|ZERO allocation at bus 0xFAAA8000 (alias 0xC; the program "
                "prints 'Alias: 0x3', the raw value of bits 31..30, which is the 0xC alias). The "
                "standard rows all carry the GPU buffer's flags, the fill row included. kernel 'c' "
                "means the lesson's C program; its table labels the copy memcpy and does not say how "
                "it fills. The README gives the 3B a 1.4 GHz clock (that is the 3B+); the run records "
                "neither clock, so cpu_mhz and sdram_mhz are null."
            ),
        },
        "machine": {
            "is_pi": True,
            "description": "Raspberry Pi 3 Model B of the original lesson's run "
                           "(firmware 0x68A60009; ARM 896 MB, GPU 128 MB)",
            "board": "Raspberry Pi 3B",
            "revision": None,
            "cpu_model": "Cortex-A53 (BCM2837)",
            "arch": None,
            "kernel": None,
            "cpu_mhz": None,
            "sdram_mhz": None,
            "firmware": "0x68A60009",
            "arm_memory_mb": 896,
            "gpu_memory_mb": 128,
        },
        "software": {"tool": "zero_copy_bench, the lesson's C program", "converted_by": CONVERTED_BY},
        "backend": None,
        "kernel_choice": None,
        "created": created,
        "command": COMMAND,
        "statistic_note": "mean of 5 timed iterations after 1 warm-up iteration, one 64 MiB "
                          "operation per iteration, as the lesson prints it",
    }
    return frame(rows), meta


# --- 2. tinymembench 0.4.9 through sbc-bench --------------------------------
# 1 MB = 1000000 bytes; a copy's figure counts its bytes once (tinymembench's
# own notes 1 and 2). Buffer: 32 MiB (SIZE in tinymembench's main.c).
TMB_BYTES = 32 * MiB
def sbc_url(run: dict[str, Any]) -> str:
    """The address of a run's result file at the commit it was read at."""
    return f"https://github.com/{run['repo']}/blob/{run['commit']}/{run['file']}"
TMB_STAT = ("best: tinymembench's figure is the highest of up to 10 measurements, each timing "
            "batches of 16 operations on the 32 MiB buffer for at least 0.5 s; it adds the sample "
            "standard deviation in brackets when that exceeds 0.1%")
TMB_FIGURES = {
    # name: [(benchmark, phase, MB/s, kernel, tinymembench's label)]
    "4hOp": [("baseline", "fill", 1705.0, "libc", "standard memset"),
             ("host-copy", "copy", 1110.5, "libc", "standard memcpy"),
             ("baseline", "fill", 1705.4, "c-fill", "C fill")],
    "1iI5": [("baseline", "fill", 1638.6, "libc", "standard memset"),    # printed "(0.2%)"
             ("host-copy", "copy", 1227.5, "libc", "standard memcpy"),
             ("baseline", "fill", 1638.0, "c-fill", "C fill")],           # printed "(0.6%)"
}


def run_of(result: str) -> dict[str, Any]:
    """The transcribed sbc-bench run of results/RESULT.txt."""
    return next(r for r in RUNS if r["file"] == f"results/{result}.txt")


LATENCY_NOTE = ("Latency rows: tinymembench's 'block size : single random read / dual random read' table, "
                "as printed (ns): the extra time of one random read beyond an L1 hit (tinymembench's note 1), "
                "the best of its repeats at a random offset (its source comment: 'We are reporting the \"best\" "
                "measured latency'); dual = two independent reads at a time. Rows printed as 0.0 ns (no time "
                "beyond L1) are left out, as a time must be > 0: they are the block sizes that fit in L1. ")


def latency_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    """tinymembench's latency table as rows: ns per access, as printed; no bandwidth."""
    return [row(bench, "latency", size, ns, "ns", statistic="best", kernel="tinymembench")
            for size, single, dual in run["latency_ns"]
            for bench, ns in (("latency-single", single), ("latency-dual", dual)) if ns > 0]


#: tinymembench's NEON rows, where a run prints them (an armv7 or armhf build on a core with NEON).
NEON_ROWS = [("read-host", "read", "NEON read"), ("host-copy", "copy", "NEON copy"), ("baseline", "fill", "NEON fill")]


def neon_rows(run: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The NEON read, copy and fill rows a run printed (kernel 'neon'), and how each was mapped."""
    rows, printed = [], []
    for bench, phase, label in NEON_ROWS:
        if label in run["bandwidth_mb_s"]:
            mbps = run["bandwidth_mb_s"][label]
            rows.append(row(bench, phase, TMB_BYTES, mbps, "MB/s", statistic="best", kernel="neon"))
            printed.append(f"{label} {mbps} MB/s -> {bench}/{phase}, kernel neon")
    return rows, printed


def tinymembench(result: str, created: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    run = run_of(result)
    for _, _, mbps, _, label in TMB_FIGURES[result]:   # two transcriptions of one file must agree
        assert run["bandwidth_mb_s"][label] == mbps, (result, label)
    rows = [row(b, p, TMB_BYTES, mbps, "MB/s", statistic="best", kernel=k)
            for b, p, mbps, k, _ in TMB_FIGURES[result]] + latency_rows(run)
    neon, neon_printed = neon_rows(run)
    rows += neon
    labels = "; ".join([f"{label} {mbps} MB/s -> {b}/{p}, kernel {k}"
                        for b, p, mbps, k, label in TMB_FIGURES[result]] + neon_printed)
    common = (f"Figures as printed: {labels}. tinymembench's MB/s are 10^6 B/s and a copy counts its "
              "bytes once (read and written bytes together would be twice as many). kernel 'libc' "
              "is the C library's memset/memcpy; 'c-fill' is tinymembench's own C fill loop. "
              "Single-threaded, on cpu0. " + LATENCY_NOTE)
    if result == "4hOp":
        title = ("tinymembench 0.4.9 on a Raspberry Pi 3B (1200 MHz, sdram_freq 450): memset, memcpy, C fill, "
                 "random-read latency")
        short = "tinymembench 0.4.9, sbc-bench 4hOp (best of repeats)"
        notes = common + (
            "sbc-bench v0.9.9, 5 Dec 2022, 'Raspberry Pi 3 Model B Rev 1.2'; ThreadX settings "
            "arm_freq=1200, sdram_freq=450; Raspbian bookworm/sid with an armhf (32-bit) userland on "
            "a 5.15.74-v8+ aarch64 kernel, gcc 12.2.0; no sample deviation above 0.1% was printed for "
            "these three; the health log shows 1200/1200 MHz throughout tinymembench.")
        machine = {
            "is_pi": True,
            "description": "Raspberry Pi 3 Model B Rev 1.2 of sbc-bench result 4hOp",
            "board": "Raspberry Pi 3B", "revision": None,
            "model_string": "Raspberry Pi 3 Model B Rev 1.2",
            "cpu_model": "Cortex-A53 r0p4",
            "arch": "aarch64 kernel, armhf (32-bit) userland",
            "kernel": "5.15.74-v8+", "cpu_mhz": 1200, "sdram_mhz": 450,
        }
        software = {"tool": "tinymembench v0.4.9", "harness": "sbc-bench v0.9.9",
                    "compiler": "gcc 12.2.0 (Raspbian 12.2.0-9+rpi1), arm-linux-gnueabihf"}
    else:
        title = "tinymembench 0.4.9 on a Raspberry Pi 3B+ (1400 MHz): memset, memcpy, C fill, random-read latency"
        short = "tinymembench 0.4.9, sbc-bench 1iI5 (best of repeats)"
        notes = common + (
            "sbc-bench v0.4, 29 Jul 2018, Raspbian 9.3 stretch (armhf), kernel 4.9.80-v7+ armv7l, "
            "ThreadX firmware of 13 Mar 2018. This sbc-bench version does not print the board "
            "model: a Pi 3 whose cpufreq reaches 1400 MHz with 927 MiB of memory for Linux is a 3B+ "
            "(the 3A+ also runs 1400 MHz but has 512 MB). sdram_mhz 500 is the 3B+ default: the "
            "config.txt it shows sets only disable_overscan and audio, so no sdram_freq override. "
            "Sample deviations printed: memset 0.2%, C fill 0.6%.")
        machine = {
            "is_pi": True,
            "description": "Raspberry Pi 3B+ (identified from its clock and memory) of sbc-bench result 1iI5",
            "board": "Raspberry Pi 3B+", "revision": None,
            "cpu_model": "ARMv7 Processor rev 4 (v7l)",
            "arch": "armv7l", "kernel": "4.9.80-v7+", "cpu_mhz": 1400, "sdram_mhz": 500,
        }
        software = {"tool": "tinymembench v0.4.9", "harness": "sbc-bench v0.4"}
    software["converted_by"] = CONVERTED_BY
    machine["cores"] = run["cores"]
    meta = {
        "schema": SCHEMA, "title": title,
        "source": {"kind": "published", "short": short,
                   "reference": f"ThomasKaiser/sbc-bench, results/{result}.txt at commit {run['commit']} "
                                "(tinymembench 0.4.9 'Memory bandwidth tests' and 'Memory latency test')",
                   "url": sbc_url(run), "notes": notes},
        "machine": machine, "software": software,
        "backend": None, "kernel_choice": None, "created": created, "command": COMMAND,
        "statistic_note": TMB_STAT,
    }
    return frame(rows), meta


# --- 3. Idein/qmkl PR #35 ---------------------------------------------------
# "memory performance benchmark", test/memory_bench.c; each line printed as
# "<op>(4MB): <seconds> sec (<MiB/s>)", the MiB/s computed from the unrounded time.
QMKL_BYTES = 4 * MiB  # N = 1024 * 1024 floats
QMKL_FIGURES = [
    # benchmark, phase, printed MiB/s, printed seconds, kernel, flags, the PR's test name
    # (text, so the notes quote them exactly as printed)
    ("baseline", "fill", "670.793491", "0.005963", "libc", "", "memset 0 -> Host"),
    ("zerocopy", "write", "1288.275820", "0.003105", "libc", "DIRECT", "memset 0 -> GPU"),
    ("read-host", "read", "1083.099806", "0.003693", "c", "", "sumall Host -> x"),
    ("read-direct", "read", "33.638056", "0.118913", "c", "DIRECT", "sumall GPU -> x"),
    ("copy-to-direct", "copy", "889.660409", "0.004496", "libc", "DIRECT", "memcpy Host -> GPU"),
    ("copy-from-direct", "copy", "190.340878", "0.021015", "libc", "DIRECT", "memcpy GPU -> Host"),
    ("host-copy", "copy", "600.601990", "0.006660", "libc", "", "memcpy Host -> Host"),
]


def qmkl(created: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    rows = []
    for b, p, mibps, printed_s, k, f, _ in QMKL_FIGURES:
        seconds = QMKL_BYTES / (float(mibps) * MiB)
        # The printed time is rounded to 1 us; the bandwidth carries more digits.
        assert abs(seconds - float(printed_s)) <= 0.5e-6, (b, seconds, printed_s)
        rows.append(row(b, p, QMKL_BYTES, float(mibps), "MiB/s", statistic="sample", kernel=k, flags=f))
    figures = "; ".join(f"{name} {mibps} MiB/s ({s} s) -> {b}" for b, _, mibps, s, _, _, name in QMKL_FIGURES)
    meta = {
        "schema": SCHEMA,
        "title": "Idein/qmkl memory benchmark on a Raspberry Pi 3: host vs DIRECT GPU memory (4 MiB)",
        "source": {
            "kind": "published",
            "short": "Idein/qmkl PR #35 (C, one shot each)",
            "reference": "Idein/qmkl pull request #35 'memory performance benchmark' (notogawa, "
                         "2017-03-28), results in its description; code test/memory_bench.c",
            "url": "https://github.com/Idein/qmkl/pull/35",
            "notes": (
                f"Figures as printed: {figures}. Each is one timed operation (gettimeofday) on "
                "4 MiB after a pass meant to evict the CPU's L2; the PR prints MiB/s "
                "(bytes / time / 1024 / 1024) and counts a copy's bytes once. GPU buffers: "
                "mailbox allocations with MEM_FLAG_DIRECT mapped through /dev/mem opened O_SYNC "
                "(qmkl's mailbox-era src/memory.c); their bus addresses were not printed, so alias "
                "is empty. Host destinations are malloc'ed just before the timed call, so the host "
                "memset, host->host and GPU->host copies include the first-touch page faults of a "
                "fresh buffer (read from the code, not measured). sumall adds floats one after "
                "another, so its host figure may be limited by the additions rather than by memory "
                "(inference). Not kept, as no benchmark here matches it: memcpy GPU -> GPU "
                "242.249278 MiB/s. "
                "Each test asserts its result with CUnit, but the PR shows only the timings, so "
                "verified is 'unknown'. The results print no board name; their config points to one: "
                "a v7+ kernel (Pi 2 or 3) with dtoverlay=pi3-disable-bt, in March 2017 when the only Pi 3 "
                "was the Model B, so a 3B by inference. config.txt (partly snipped): gpu_mem=128, "
                "force_turbo=1, gpu_freq=400; arm_freq is not shown, so cpu_mhz is null."
            ),
        },
        "machine": {
            "is_pi": True,
            "description": "Raspberry Pi 3 of qmkl PR #35 (Raspbian, kernel 4.4.50-v7+, gpu_mem=128, force_turbo=1)",
            "board": "Raspberry Pi 3 (3B by inference)",
            "revision": None,
            "cpu_model": "Cortex-A53 (BCM2837)",
            "arch": "armv7l",
            "kernel": "4.4.50-v7+",
            "cpu_mhz": None,
            "sdram_mhz": None,
            "gpu_memory_mb": 128,
        },
        "software": {"tool": "qmkl test/memory_bench.c (CUnit)", "converted_by": CONVERTED_BY},
        "backend": None,
        "kernel_choice": None,
        "created": created,
        "command": COMMAND,
        "statistic_note": "one shot each: a single timed operation per figure (sample 0), "
                          "no repeats, no warm-up",
    }
    return frame(rows), meta


# --- 4. Other Raspberry Pi models, through sbc-bench ---------------------------
# memset, memcpy and C fill as for the 3B above (same buffer, units and statistic), and the
# latency table; the run's own context (clocks, kernel, OS) is quoted in data/published/sbc_bench_pi.py.
SBC_BANDWIDTH = [
    # (benchmark, phase, kernel, the labels tinymembench prints: 0.4.9, then the fork the Pi 5 run used)
    ("baseline", "fill", "libc", ("standard memset", "libc memset fill")),
    ("host-copy", "copy", "libc", ("standard memcpy", "libc memcpy copy")),
    ("baseline", "fill", "c-fill", ("C fill",)),
]


def sbc_source(run: dict, result: str, short: str, tables: str, notes: str) -> dict[str, str]:
    """A sidecar's source for sbc-bench result `result`: its file at the commit it was read at."""
    return {"kind": "published", "short": f"{short}, sbc-bench {result} (best of repeats)",
            "reference": f"ThomasKaiser/sbc-bench, results/{result}.txt at commit {run['commit']} "
                         f"(tinymembench {tables})",
            "url": sbc_url(run), "notes": notes}


def the_run(run: dict, board_line: str, clocks: str) -> str:
    """The sentence a sidecar's notes give about an sbc-bench run: board, cores, clocks, OS, versions."""
    return (f"The run: {board_line}, {run['cores']} x {run['cpu']}, {clocks}, {run['os']}, "
            f"kernel {run['kernel']}, {run['date']}, sbc-bench {run['sbc_bench_version']}, tinymembench "
            f"{run['tinymembench_version']}. {run['notes']}")


def sbc_model(name: str, created: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    result, board = SBC_MODELS[name]
    run = run_of(result)
    rows, printed = [], []
    for bench, phase, kernel, labels in SBC_BANDWIDTH:
        label = next(lb for lb in labels if lb in run["bandwidth_mb_s"])
        mbps = run["bandwidth_mb_s"][label]
        rows.append(row(bench, phase, TMB_BYTES, mbps, "MB/s", statistic="best", kernel=kernel))
        printed.append(f"{label} {mbps} MB/s -> {bench}/{phase}, kernel {kernel}")
    neon, neon_printed = neon_rows(run)
    rows += neon + latency_rows(run)
    printed += neon_printed
    clocks = f"{run['cpu_mhz']} MHz" + (f", sdram_freq {run['sdram_mhz']}" if run["sdram_mhz"] else "")
    notes = (f"Figures as printed: {'; '.join(printed)}. MB/s = 10^6 B/s, a copy counts its bytes once, "
             f"single-threaded on cpu0, as for the Pi 3B recording. {LATENCY_NOTE}"
             + the_run(run, f"'{run['quotes']['board']}'", clocks))
    meta = {
        "schema": SCHEMA,
        "title": f"tinymembench on a {board} ({clocks}): memset, memcpy, C fill, random-read latency",
        "source": sbc_source(run, result, "tinymembench", "'Memory bandwidth tests' and 'Memory latency test'",
                             notes),
        "machine": {"is_pi": True, "description": f"{run['board']} of sbc-bench result {result}",
                    "board": board, "revision": None, "model_string": run["board"],
                    "cpu_model": run["cpu"], "arch": run["kernel"].split("(")[-1].rstrip(")"),
                    "kernel": run["kernel"].split(" ")[0], "cpu_mhz": run["cpu_mhz"], "sdram_mhz": run["sdram_mhz"],
                    "cores": run["cores"]},
        "software": {"tool": f"tinymembench {run['tinymembench_version']}",
                     "harness": f"sbc-bench {run['sbc_bench_version']}", "converted_by": CONVERTED_BY},
        "backend": None, "kernel_choice": None, "created": created, "command": COMMAND,
        "statistic_note": TMB_STAT,
    }
    return frame(rows), meta


# --- 5. A by-size sweep on a Pi 3B: anetczuk/cpp-memory-performance ----------------------
# Sequential read (a sum over a uint64_t array), 128 B to 300 MiB, gcc and clang builds; the figures,
# their raw files verbatim and the lines of source and README relied on are in cpp_memory_performance_pi3.py.
CPPMEM_KERNELS = {"gcc": "c-gcc", "clang": "c-clang"}


def cpp_memory_performance(created: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    rows = []
    for build, kernel in CPPMEM_KERNELS.items():
        for _container, items, ns in CPPMEM.SWEEP[build]:
            # size_bytes: the bytes the loop reads (items x sizeof(uint64_t)); value: ns per 8-byte item, as printed
            rows.append(row("read-host", "read", items * 8, ns, "ns/8B", statistic="best", kernel=kernel))
    first, last = CPPMEM.SWEEP["gcc"][0], CPPMEM.SWEEP["gcc"][-1]
    notes = (
        "Figures as printed: time/item in ns, one row per size and build, from doc/measurements/rpi3/gcc/ and "
        "clang/array_st_data_raw.txt (the plot files beside them hold the same time/item). The unit ns/8B is ns "
        "per 8-byte element: one pass over the array takes size_bytes / 8 x value ns, and 8 bytes per value ns "
        "is its bandwidth (read bytes counted once). size_bytes is the bytes the loop reads, the printed items "
        f"x 8 (a uint64_t each): {first[1]} items x 8 = {first[1] * 8} B for the first line, whose column 1 "
        f"prints {first[0]}. Column 1 (and its KB label) is items x 8 + sizeof(Array), an 8-byte struct on this "
        "32-bit build (a pointer and a size_t: MemoryExperiment's 'memSizeB = currListSize * DATA_SIZE + "
        "CONTAINER_SIZE'), which the loop never reads; with it the computed pass time would be one element too "
        "long (6 % at the first size). With items x 8, size_bytes / 8 x time/item is the printed time/iter "
        "within 2 parts in 10 million (time/item's rounding). The last row is the whole array, 314572800 B = 300 MiB with the struct "
        f"({last[1]} items): the largest size the program was given (its --maxmem value is not printed). "
        "Method (src/ at the same commit): one array of uint64_t allocated with new[] and set to 0; after a "
        "warm-up, each size times iters passes of 'sum += container[x]' over its first items elements in order "
        "(std::chrono::high_resolution_clock), repeats that timed region 25 times at the smallest size down to "
        "4 at the largest, and keeps the fastest (doc/README.md: 'access time is calculated by dividing fastest "
        "iteration time per number of elements'): statistic best. Each timed region passes over the same "
        "elements many times (57154 passes at 128 B, 2 at 300 MiB), so a size that fits a cache is read from it. "
        "In the caches the loop, not the memory, sets the pace: with gcc, 4.175055 to 4.269801 ns per element "
        "from 1 KiB to 32 KiB (L1) and 4.243480 to 4.325092 ns from 48 KiB to 384 KiB (L2), nearly alike "
        "(more below 1 KiB, 4.994017 ns at 128 B, where starting the loop counts) (the author's README at commit 74e6d0c: 'RPi: there is no difference "
        "between *L1* and *L2* cache'); a 64-bit sum on a 32-bit build takes an add and an add-with-carry per "
        "element (an inference from the build, not read from its code). From 1 MiB up, past the 512 KiB L2, "
        "5.065869 to 5.250071 ns per element with gcc (DRAM). kernel c-gcc is the gcc (g++ 4.9.2) build, c-clang the clang "
        "(clang++ 3.5.0) build of the same source. Left out: the gcc_unroll and clang_unroll builds "
        "(LOOP_UNROLL: their loop iterate_16 adds container[x+0] to [x+7] and [x+9] to [x+15] but never "
        "[x+8], so it reads 15 of every 16 elements while its time is divided by all of them), and the "
        "std::vector, linked-list and multi-thread/process experiments. Not stated by the source: the CMake "
        "build type and flags (its README configures with CMAKE_BUILD_TYPE=Release; left unset, its CMake "
        "files choose Debug), the kernel, the firmware, gpu_mem, the cpufreq governor and the clock during the "
        "run (1200 MHz is the README's CPU line; an idle Pi 3B under the default ondemand governor runs at "
        "600 MHz and ramps up under load; no clock was logged), the SDRAM clock (the README's RAM 'speed: "
        "900 MHz' would be 450 MHz x 2 transfers, an inference; sdram_mhz null), the temperature and whether "
        "the board throttled. One run per size; the doc/rpi3/ figures of an earlier run were removed by the "
        "author (commit a390272, 'Remove old RPi results').")
    meta = {
        "schema": SCHEMA,
        "title": "Sequential read of a uint64_t array on a Raspberry Pi 3B (1200 MHz), from 128 B to 300 MiB, "
                 "gcc and clang builds: ns per 8-byte element",
        "source": {
            "kind": "published",
            "short": "anetczuk/cpp-memory-performance array_st (best of repeats)",
            "reference": f"{CPPMEM.REPO}, doc/measurements/rpi3/gcc/ and clang/ array_st_data_raw.txt and "
                         f"array_st_data_plot.txt at commit {CPPMEM.COMMIT}; board and compilers in doc/README.md, "
                         "section 'Raspberry Pi 3 Model B Rev 1.2'",
            "url": CPPMEM.URL,
            "notes": notes,
        },
        "machine": {
            "is_pi": True,
            "description": "Raspberry Pi 3 Model B Rev 1.2 of anetczuk/cpp-memory-performance "
                           "(doc/README.md; its list of machines spells it 'Raspbery Pi 3')",
            "board": "Raspberry Pi 3B", "revision": None,
            "model_string": "Raspberry Pi 3 Model B Rev 1.2",
            "cpu_model": "Broadcom BCM2837 SoC with ARMv7 Processor rev 4 (v7l) - ARM Cortex-A53 @ 1200 MHz",
            "arch": None, "kernel": None, "cpu_mhz": 1200, "sdram_mhz": None, "cores": 4,
            "os": "Raspbian 8 (jessie)",
        },
        "software": {"tool": "cpp-memory-performance benchmark_array_st",
                     "compiler": "g++ 4.9.2 (kernel c-gcc), clang++ 3.5.0 (kernel c-clang)",
                     "converted_by": CONVERTED_BY},
        "backend": None, "kernel_choice": None, "created": created, "command": COMMAND,
        "statistic_note": "best: per size, the fastest of 25 (smallest size) down to 4 (largest) timed regions, "
                          "each of iters passes over the array (57154 passes at 128 B, 2 at 300 MiB), divided "
                          "by iters and by the elements: the time of one element in the fastest region",
    }
    return frame(rows), meta


# --- 6. ramlat on the Pi 3B (sbc-bench 4hOp): the whole time of one dependent load ---------------
# The table is transcribed in sbc_bench_pi.py (RUNS, 'ramlat') and quoted there verbatim (quotes['ramlat']).
RAMLAT_COLUMN = "1xPTR"


def ramlat_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    """ramlat's 1xPTR column as latency-chase rows: ns per load, as printed; sizes printed as 'Nk' are N KiB."""
    col = run["ramlat"]["columns"].index(RAMLAT_COLUMN)
    return [row("latency-chase", "latency", int(label.removesuffix("k")) * 1024, values[col], "ns",
                statistic="sample", kernel="ramlat")
            for label, values in run["ramlat"]["rows"]]


def ramlat(created: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    run = run_of("4hOp")
    rows = ramlat_rows(run)
    first, last = run["ramlat"]["rows"][0], run["ramlat"]["rows"][-1]
    col = run["ramlat"]["columns"].index(RAMLAT_COLUMN)
    notes = (
        "Figures as printed: the 1xPTR column of ramlat's table ('Executing ramlat on cpu0 (Cortex-A53), results "
        f"in ns'), {first[0]} {first[1][col]} ns to {last[0]} {last[1][col]} ns; sizes printed as 'Nk' are N KiB "
        "(ramlat prints size >> 10). What is timed (wtarreau/ramspeed ramlat.c at "
        "f735eefeb1013034b20930684a7560a7beb9c076, 2022-06-05: sbc-bench 0.9.9 rebuilds ramlat after a git pull "
        "whenever ramspeed's Makefile is missing, and the Makefile came in the next commit, e24bf19, with "
        "ramlat.c unchanged after it until 2024): 1xPTR is one dependent chain, 'ofs0 = *ofs0' unrolled 16 times, "
        "through a block filled by fill_area_ptr; on this armhf (32-bit) build a pointer is 4 bytes, and the "
        "chain visits the block's 4-byte words in bit-reversed order, restarting from the block's start every "
        "1048576 loads: every 64-byte line of the block is visited before one comes back, and no two loads in a "
        "row fall in one line or one 4 KiB page (read from the code, and checked by walking its fill in Python). "
        "ramlat runs each size for about 200 ms of CPU time (ITIMER_VIRTUAL), in whole rounds of 1048576 loads, "
        "times them with gettimeofday and prints 1e6 / (loads per ms) as ns per load, to four significant "
        "digits: the whole time of one access, an L1 hit included (the 4k to 32k rows, 2.527 to 2.598 ns, are "
        "the L1 hit: 2.527 ns is 3.03 cycles at 1200 MHz). Every sbc-bench.sh of version 0.9.9 (e.g. "
        "01410c18e79259ed7f5211e967d0e62c7c801188, its last change before the run) runs it as "
        "'taskset -c 0 ramlat -s -n 200': -s a 500 ms pre-heat, -n ns per access, 200 ms per figure; ramspeed's "
        "Makefile builds it with gcc -O3 (the run's gcc is 12.2.0). Without -w its largest block is 16 MiB, so "
        "the table ends at 16384k. One figure per size: statistic sample. Not kept: 1x32 and 1x64 (one chain of "
        "32- or 64-bit offsets added to the block's base: the same chase with an address add), 2xPTR to 8xPTR "
        "(n independent chains: the time of one step of all n loads); all eight columns are in "
        "data/published/sbc_bench_pi.py. The same file's tinymembench table (tinymembench-pi3b) is another walk "
        "and another quantity, the time beyond an L1 hit: it prints 5.5 ns at 64 KiB where ramlat prints 22.84, "
        "so the two do not differ by an L1 hit. pimem's latency-host is also a whole access time, along a random "
        "cycle of 64-byte slots. The run: sbc-bench v0.9.9, 5 Dec 2022, 'Raspberry Pi 3 Model B Rev 1.2'; "
        "ThreadX settings arm_freq=1200, sdram_freq=450; Raspbian bookworm/sid armhf userland on a 5.15.74-v8+ "
        "aarch64 kernel; the health log shows 1200/1200 MHz throughout ramlat (59.1 to 61.2 C); the board "
        "throttled later, in the multi-core 7-zip and cpuminer runs.")
    meta = {
        "schema": SCHEMA,
        "title": "ramlat on a Raspberry Pi 3B (1200 MHz, sdram_freq 450): one dependent load at a time, whole "
                 "access time, 4 KiB to 16 MiB",
        "source": {"kind": "published", "short": "ramlat 1xPTR, sbc-bench 4hOp (one run per size)",
                   "reference": f"ThomasKaiser/sbc-bench, results/4hOp.txt at commit {run['commit']} "
                                "('Executing ramlat on cpu0 (Cortex-A53), results in ns', column 1xPTR); "
                                "ramlat from wtarreau/ramspeed (ramlat.c)",
                   "url": sbc_url(run), "notes": notes},
        "machine": {
            "is_pi": True,
            "description": "Raspberry Pi 3 Model B Rev 1.2 of sbc-bench result 4hOp (the run of tinymembench-pi3b)",
            "board": "Raspberry Pi 3B", "revision": None, "model_string": run["board"],
            "cpu_model": "Cortex-A53 r0p4", "arch": "aarch64 kernel, armhf (32-bit) userland",
            "kernel": "5.15.74-v8+", "cpu_mhz": run["cpu_mhz"], "sdram_mhz": run["sdram_mhz"], "cores": run["cores"],
        },
        "software": {"tool": "ramlat (wtarreau/ramspeed)", "harness": f"sbc-bench {run['sbc_bench_version']}",
                     "compiler": "gcc 12.2.0 (Raspbian 12.2.0-9+rpi1), arm-linux-gnueabihf",
                     "converted_by": CONVERTED_BY},
        "backend": None, "kernel_choice": None, "created": created, "command": COMMAND,
        "statistic_note": "sample: one timed run per size (about 200 ms of CPU time, rounds of 1048576 dependent "
                          "loads), its elapsed time divided by the loads done; no repeats",
    }
    return frame(rows), meta


# --- 7. tinymembench latency tables of BCM2837-class boards at other clocks -------------------------
# The Zero 2 W (RP3A0: four Cortex-A53 r0p4 as in 4hOp's Pi 3B, sdram_freq 450) at 600 and 1000 MHz (its 1200 MHz run is
# tinymembench-pizero2w), and a Pi 3B+ whose firmware held it at 1200 MHz: the latency table only, as printed.

def latency_model(name: str, created: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    result, board = LATENCY_RUNS[name]
    run = run_of(result)
    clocks = f"{run['cpu_mhz']} MHz" + (f", sdram_freq {run['sdram_mhz']}" if run["sdram_mhz"] else "")
    printed = not run["quotes"]["board"].startswith("(")   # sbc-bench v0.4 printed no board line
    board_line = f"'{run['quotes']['board']}'" if printed else run["quotes"]["board"]
    notes = (f"{LATENCY_NOTE}Only the latency table is kept: the file's bandwidth rows are transcribed in "
             "data/published/sbc_bench_pi.py, and the tinymembench-* recordings hold one run per model. "
             + the_run(run, board_line, clocks))
    meta = {
        "schema": SCHEMA,
        "title": f"tinymembench random-read latency on a {board} at {clocks}",
        "source": sbc_source(run, result, "tinymembench latency", "'Memory latency test'", notes),
        "machine": {"is_pi": True,
                    "description": f"{board} of sbc-bench result {result}, real clock {run['cpu_mhz']} MHz",
                    "board": board, "revision": None, "model_string": run["board"] if printed else None,
                    "cpu_model": run["cpu"], "arch": run["kernel"].split("(")[-1].rstrip(")"),
                    "kernel": run["kernel"].split(" ")[0], "cpu_mhz": run["cpu_mhz"], "sdram_mhz": run["sdram_mhz"],
                    "cores": run["cores"]},
        "software": {"tool": f"tinymembench {run['tinymembench_version']}",
                     "harness": f"sbc-bench {run['sbc_bench_version']}", "converted_by": CONVERTED_BY},
        "backend": None, "kernel_choice": None, "created": created, "command": COMMAND,
        "statistic_note": ("best: tinymembench's latency is the lowest of its repeats at a random offset "
                           "(its source comment: 'We are reporting the \"best\" measured latency')"),
    }
    return frame(latency_rows(run)), meta


def build(created: str) -> dict[str, tuple[pd.DataFrame, dict[str, Any]]]:
    """The recordings by name (exposed for the tests)."""
    return {
        "original-lesson-pi3b": lesson(created),
        "tinymembench-pi3b": tinymembench("4hOp", created),
        "tinymembench-pi3bplus": tinymembench("1iI5", created),
        "qmkl-pi3": qmkl(created),
        **{name: sbc_model(name, created) for name in SBC_MODELS},
        "cpp-memory-performance-pi3b": cpp_memory_performance(created),
        "ramlat-pi3b": ramlat(created),
        **{name: latency_model(name, created) for name in LATENCY_RUNS},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "data", help="folder to write (default: data/)")
    args = parser.parse_args(argv)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    recordings = build(created)
    for name, (_, meta) in recordings.items():   # a file made again keeps its time of making
        old = args.out / f"{name}.json"
        if old.exists():
            meta["created"] = json.loads(old.read_text(encoding="utf-8"))["created"]
    for name in recordings:  # save_recording never overwrites: clear our own old files first
        for suffix in (".csv", ".json"):
            (args.out / f"{name}{suffix}").unlink(missing_ok=True)
    for name, (df, meta) in recordings.items():
        path = save_recording(df, meta, args.out, name)
        if path.stem != name:
            raise SystemExit(f"{path}: expected {name}.csv; another process wrote into {args.out}?")
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
