"""The recorded-data layer: shipped files, the schema checks, safe saving, provenance."""
from __future__ import annotations

import copy
import csv
import importlib.util
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pimem.bench import data
from pimem.bench.data import (
    BENCHMARKS, COLUMNS, SCHEMA, check_data_dir, data_dir, data_folders, list_recordings, load_all,
    load_recording, save_recording, user_data_dir, validate_frame,
)
from pimem.exc import DataError, UsageError

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
SHIPPED = ("original-lesson-pi3b", "tinymembench-pi3b", "tinymembench-pi3bplus", "qmkl-pi3",
           "tinymembench-pi1b", "tinymembench-pizerow", "tinymembench-pi2b", "tinymembench-pizero2w",
           "tinymembench-pi4b", "tinymembench-pi400", "tinymembench-pi5", "cpp-memory-performance-pi3b",
           "ramlat-pi3b", "latency-pizero2w-600mhz", "latency-pizero2w-1000mhz", "latency-pi3bplus-1200mhz")
LATENCY_LINE = re.compile(r"^\s*(\d+) :\s+([\d.]+) ns\s+/\s+([\d.]+) ns", re.M)
MiB = 2 ** 20


# --- building valid recordings (test data only, never shipped) --------------

def row(benchmark: str, phase: str, size: int, seconds: float, *, sample: int = 0,
        statistic: str = "sample", verified: str = "pass", kernel: str = "numpy",
        flags: str = "", alias: str = "", reps: int = 1) -> dict[str, Any]:
    ok = verified != "fail"
    return {
        "benchmark": benchmark, "phase": phase, "size_bytes": size, "statistic": statistic,
        "sample": sample, "seconds": seconds, "bytes": size,
        "bus_bytes": data.BUS_FACTOR[phase] * size,
        "gb_per_s": size / seconds / 1e9 if ok else math.nan,
        "gib_per_s": size / seconds / 2 ** 30 if ok else math.nan,
        "reps": reps, "overhead_bound": False, "verified": verified,
        "kernel": kernel, "flags": flags, "alias": alias, "value": seconds, "unit": "s",
    }


def valid_frame() -> pd.DataFrame:
    # CSV rows 2..6 once saved
    return pd.DataFrame([
        row("baseline", "fill", MiB, 0.001, sample=0),
        row("baseline", "fill", MiB, 0.0011, sample=1),
        row("host-copy", "copy", MiB, 0.002),
        row("zerocopy", "write", MiB, 0.0009, flags="DIRECT|ZERO", alias="0xC"),
        row("read-direct", "read", MiB, 0.03, verified="fail", flags="DIRECT", alias="0xC"),
    ], columns=list(COLUMNS))


def host_meta(**machine: Any) -> dict[str, Any]:
    meta = {
        "schema": SCHEMA,
        "title": "test run on the emulator",
        "source": {"kind": "measured", "reference": "", "url": "", "notes": ""},
        "machine": {
            "is_pi": False,
            "description": "host run: a test machine with the pimem emulator backend",
            "board": None, "revision": None,
            "cpu_model": "Intel(R) Xeon(R) CPU @ 2.20GHz", "arch": "x86_64",
            "kernel": "6.1.0", "cpu_mhz": None, "sdram_mhz": None,
        },
        "software": {"python": "3.11.7", "numpy": "2.0.0", "pimem": "0.1.0"},
        "backend": "emulator",
        "kernel_choice": "numpy",
        "created": "2026-11-25T09:30:00+00:00",
        "command": "python -m pimem record",
        "statistic_note": "each sample one timed region",
    }
    meta["machine"].update(machine)
    return meta


def pi_meta() -> dict[str, Any]:
    meta = host_meta(is_pi=True, description="Raspberry Pi 3 Model B Rev 1.2", board="Raspberry Pi 3B",
                     revision="a02082", cpu_model="Cortex-A53", arch="aarch64")
    meta["backend"] = "pi"
    return meta


def read_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(), newline="")))


def write_rows(path: Path, rows: list[list[str]]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue())


@pytest.fixture
def good(tmp_path: Path) -> Path:
    """A valid host-run recording saved in tmp_path; returns its CSV path."""
    return save_recording(valid_frame(), host_meta(), tmp_path, "good")


def make_bad(good: Path, *, rows: list[list[str]] | None = None, meta: Any = None) -> Path:
    bad = good.with_name("bad.csv")
    if rows is None:
        shutil.copy(good, bad)
    else:
        write_rows(bad, rows)
    side = bad.with_suffix(".json")
    if meta is None:
        shutil.copy(good.with_suffix(".json"), side)
    else:
        side.write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return bad


def set_cell(rows: list[list[str]], number: int, column: str, value: str) -> list[list[str]]:
    rows = [list(r) for r in rows]
    rows[number - 1][data.STORED.index(column)] = value  # number: spreadsheet row, header = 1
    return rows


def load_error(path: Path) -> str:
    with pytest.raises(DataError) as info:
        load_recording(path)
    return str(info.value)


# --- shipped files ----------------------------------------------------------

def test_every_shipped_file_loads_and_the_folder_is_clean() -> None:
    for name in SHIPPED:
        r = load_recording(DATA / f"{name}.csv")
        assert r.name == name and len(r.frame) > 0
        assert r.kind == "published" and r.is_pi
        assert (r.frame["verified"] == "unknown").all() and (r.frame["reps"] == 1).all()
        assert r.meta["backend"] is None and r.meta["source"]["reference"]
    assert check_data_dir(DATA) == []
    names = [r.name for r in list_recordings(DATA)]
    # Besides the published ones, only host runs, and each says it is one.
    assert set(SHIPPED) <= set(names)
    for r in list_recordings(DATA):
        if r.name not in SHIPPED:
            assert r.name.startswith("host-") and r.kind == "measured" and not r.is_pi, r.name
            assert r.provenance().startswith("host run: ") and not PI_WORD.search(r.provenance())
            assert r.meta["backend"] == "emulator" and r.meta["machine"]["cpu_model"]


def by(frame: pd.DataFrame, benchmark: str, phase: str, kernel: str | None = None) -> pd.Series:
    sel = frame[(frame["benchmark"] == benchmark) & (frame["phase"] == phase)]
    if kernel is not None:
        sel = sel[sel["kernel"] == kernel]
    assert len(sel) == 1, (benchmark, phase, kernel)
    return sel.iloc[0]


def test_the_lesson_reads_back_as_published() -> None:
    r = load_recording(DATA / "original-lesson-pi3b.csv")
    f = r.frame
    assert (f["size_bytes"] == 67108864).all() and (f["statistic"] == "mean").all()
    base = by(f, "baseline", "fill")
    assert base["seconds"] == 0.05016
    assert round(base["gib_per_s"], 3) == 1.246  # what the lesson prints as "GB/s"
    assert round(base["gb_per_s"], 3) == 1.338
    for bench, phase, ms in [("standard", "fill", 45.51), ("standard", "copy", 64.04),
                             ("standard", "total", 109.56), ("zerocopy", "write", 38.26)]:
        assert by(f, bench, phase)["seconds"] * 1000 == pytest.approx(ms, abs=1e-9)
    # the lesson's printed GiB/s, recomputed
    assert round(by(f, "standard", "copy")["gib_per_s"], 3) == 0.976
    # printed 1.633: the lesson divided unrounded times; its printed ms give 1.6336
    assert by(f, "zerocopy", "write")["gib_per_s"] == pytest.approx(1.633, abs=1e-3)
    assert by(f, "standard", "copy")["bus_bytes"] == 2 * 67108864
    assert (by(f, "zerocopy", "write")[["flags", "alias"]] == ["DIRECT|ZERO", "0xC"]).all()
    assert (by(f, "standard", "copy")[["flags", "alias"]] == ["COHERENT", "0x8"]).all()
    assert r.meta["machine"]["firmware"] == "0x68A60009"
    assert "GiB/s" in r.meta["source"]["notes"] and "[PASS]" in r.meta["source"]["notes"]
    assert r.provenance() == "Raspberry Pi 3B, published: original lesson (C, mean of 5 runs)"


def test_tinymembench_reads_back_as_published() -> None:
    for name, memset, memcpy, cfill, mhz, sdram, board in [
        ("tinymembench-pi3b", 1705.0, 1110.5, 1705.4, 1200, 450, "Raspberry Pi 3B"),
        ("tinymembench-pi3bplus", 1638.6, 1227.5, 1638.0, 1400, 500, "Raspberry Pi 3B+"),
    ]:
        r = load_recording(DATA / f"{name}.json")  # either file of the pair loads it
        f = r.frame[r.frame.phase != "latency"]   # the latency table is checked on its own
        assert (f["size_bytes"] == 32 * MiB).all() and (f["statistic"] == "best").all()
        mb = lambda b, p, k: by(f, b, p, k)["gb_per_s"] * 1000  # noqa: E731  (MB = 10^6 B)
        assert mb("baseline", "fill", "libc") == pytest.approx(memset, rel=1e-12)
        assert mb("host-copy", "copy", "libc") == pytest.approx(memcpy, rel=1e-12)
        assert mb("baseline", "fill", "c-fill") == pytest.approx(cfill, rel=1e-12)
        copy_row = by(f, "host-copy", "copy", "libc")
        assert copy_row["bytes"] == 32 * MiB and copy_row["bus_bytes"] == 64 * MiB  # counted once
        m = r.meta["machine"]
        assert m["is_pi"] and m["board"] == board and m["cpu_mhz"] == mhz and m["sdram_mhz"] == sdram
        assert "ThomasKaiser/sbc-bench" in r.meta["source"]["reference"]


def test_qmkl_reads_back_as_published() -> None:
    r = load_recording(DATA / "qmkl-pi3.csv")
    f = r.frame
    assert (f["size_bytes"] == 4 * MiB).all()
    assert (f["statistic"] == "sample").all() and (f["sample"] == 0).all()
    mibs = {b: round(by(f, b, p)["gib_per_s"] * 1024, 1) for b, p in [
        ("baseline", "fill"), ("zerocopy", "write"), ("read-host", "read"), ("read-direct", "read"),
        ("copy-to-direct", "copy"), ("copy-from-direct", "copy")]}
    assert mibs == {"baseline": 670.8, "zerocopy": 1288.3, "read-host": 1083.1, "read-direct": 33.6,
                    "copy-to-direct": 889.7, "copy-from-direct": 190.3}
    assert by(f, "zerocopy", "write")["flags"] == "DIRECT"
    # the price of zero-copy: reading uncached memory is some 30 times slower
    assert by(f, "read-host", "read")["seconds"] * 30 < by(f, "read-direct", "read")["seconds"]
    assert "pull/35" in r.meta["source"]["url"]


def test_latency_recordings_match_the_lines_quoted_from_the_source() -> None:
    # The latency lines of each sbc-bench file quoted verbatim beside the transcription (the first and last,
    # or the whole table), against what the recording holds: a transcription slip shows here.
    sys.path.insert(0, str(DATA / "published"))
    from sbc_bench_pi import RUNS

    by_file = {r["file"]: r for r in RUNS}
    seen = 0
    for name in SHIPPED:
        r = load_recording(DATA / f"{name}.csv")
        lat = r.frame[r.frame.benchmark.isin(["latency-single", "latency-dual"])]
        if lat.empty:
            continue
        seen += 1
        run = by_file["results/" + r.meta["source"]["url"].rsplit("/", 1)[1]]
        assert run["commit"] in r.meta["source"]["url"], name   # the address names the commit read
        quoted = LATENCY_LINE.findall(run["quotes"]["latency"])
        assert len(quoted) >= 2 and quoted[-1][0] == str(64 * MiB)
        for size, single, dual in quoted:
            for bench, ns in (("latency-single", single), ("latency-dual", dual)):
                got = lat[(lat.benchmark == bench) & (lat.size_bytes == int(size))].seconds
                # a block timed at 0.0 ns (no time beyond L1) has no row
                assert list(got * 1e9) == (pytest.approx([float(ns)]) if float(ns) > 0 else []), (name, bench, size)
        assert lat.gb_per_s.isna().all() and r.is_pi
        assert lat.size_bytes.min() >= 1024 and lat.size_bytes.max() == 64 * MiB
    assert seen >= 5   # the Pi 3B, the 3B+ and at least three other models


def test_the_bcm2837_latency_tables_at_other_clocks_are_whole_tables_of_their_real_clock() -> None:
    # The Zero 2 W at 600, 1000 (latency-*) and 1200 MHz (tinymembench-pizero2w), the 3B+ held at 1200 MHz:
    # each quoted whole (header and 17 lines) and transcribed whole; sdram_freq 450 on every Zero 2 W run.
    sys.path.insert(0, str(DATA / "published"))
    from sbc_bench_pi import RUNS

    by_file = {r["file"]: r for r in RUNS}
    far = {}
    for name, result, mhz, sdram in [("latency-pizero2w-600mhz", "3Dfo", 600, 450),
                                     ("latency-pizero2w-1000mhz", "3E85", 1000, 450),
                                     ("tinymembench-pizero2w", "3DeL", 1200, 450),
                                     ("latency-pi3bplus-1200mhz", "1iGM", 1200, None)]:
        r = load_recording(DATA / f"{name}.csv")
        run = by_file[f"results/{result}.txt"]
        m = r.meta["machine"]
        assert (m["cpu_mhz"], m["sdram_mhz"], m["cores"]) == (mhz, sdram, 4) and r.is_pi, name
        assert result in r.meta["source"]["reference"] and run["commit"] in r.meta["source"]["url"]
        if name.startswith("latency-"):
            assert set(r.frame.phase) == {"latency"}   # the table only
            assert run["quotes"]["latency"].splitlines()[0] == "block size : single random read / dual random read"
            assert [tuple(map(float, t)) for t in LATENCY_LINE.findall(run["quotes"]["latency"])] == \
                [tuple(map(float, t)) for t in run["latency_ns"]]
        far[name] = float(r.frame[(r.frame.benchmark == "latency-single")
                                  & (r.frame.size_bytes == 64 * MiB)].value.iloc[0])
    # as printed: 216.9, 175.3 and 163.7 ns beyond L1 at 64 MiB for the Zero 2 W at 600, 1000 and 1200 MHz
    assert far == {"latency-pizero2w-600mhz": 216.9, "latency-pizero2w-1000mhz": 175.3,
                   "tinymembench-pizero2w": 163.7, "latency-pi3bplus-1200mhz": 188.5}
    assert "1400/1200MHz" in load_recording(DATA / "latency-pi3bplus-1200mhz.csv").meta["source"]["notes"]
    # the generations figure draws every tinymembench-* recording: one run per model, so these are named latency-*
    boards = [r.meta["machine"]["board"] for r in list_recordings(DATA) if r.name.startswith("tinymembench-")]
    assert len(boards) == len(set(boards)) == 9


RAMLAT_LINE = re.compile(r"^\s*(\d+)k:((?: +[\d.]+){8})$", re.M)


def test_the_ramlat_recording_matches_the_table_quoted_from_the_source() -> None:
    # sbc-bench 4hOp's ramlat table, quoted verbatim: its 1xPTR column is the recording, whole access times.
    sys.path.insert(0, str(DATA / "published"))
    from sbc_bench_pi import RUNS

    run = next(r for r in RUNS if r["file"] == "results/4hOp.txt")
    quote = run["quotes"]["ramlat"]
    assert quote.splitlines()[0] == "Executing ramlat on cpu0 (Cortex-A53), results in ns:"
    header = quote.splitlines()[1].split()
    assert header[0] == "size:" and header[1:] == run["ramlat"]["columns"]
    quoted = [(int(k), [float(v) for v in vals.split()]) for k, vals in RAMLAT_LINE.findall(quote)]
    assert len(quoted) == 13 == len(quote.splitlines()) - 2
    # the transcription of all eight columns, against the quote
    assert [(int(label[:-1]), values) for label, values in run["ramlat"]["rows"]] == quoted
    r = load_recording(DATA / "ramlat-pi3b.csv")
    f = r.frame.sort_values("size_bytes")
    assert (f[["benchmark", "phase", "statistic", "unit", "kernel"]]
            == ["latency-chase", "latency", "sample", "ns", "ramlat"]).all().all()
    col = header.index("1xPTR") - 1
    assert list(f.size_bytes) == [k * 1024 for k, _ in quoted]
    assert list(f.value) == [values[col] for _, values in quoted]
    assert f.gb_per_s.isna().all() and r.is_pi and r.meta["machine"]["cpu_mhz"] == 1200
    assert run["commit"] in r.meta["source"]["url"]
    # a whole access: the L1 rows are an L1 hit (2.527 ns), not tinymembench's 0.0 beyond one
    assert f.seconds.iloc[0] * 1e9 == pytest.approx(2.527) and f.seconds.iloc[-1] * 1e9 == pytest.approx(176.1)
    from pimem.bench.catalog import CATALOG

    assert not CATALOG["latency-chase"].runnable and "whole time of one access" in CATALOG["latency-chase"].what


def test_neon_rows_are_kept_where_the_run_printed_them() -> None:
    # sbc-bench 1iI5 (Pi 3B+) prints "NEON read 2148.2", "NEON copy 1203.4", "NEON fill 1638.0" (MB/s).
    f = load_recording(DATA / "tinymembench-pi3bplus.csv").frame
    neon = f[f.kernel == "neon"].set_index("benchmark")["gb_per_s"] * 1000
    assert neon.to_dict() == pytest.approx({"read-host": 2148.2, "host-copy": 1203.4, "baseline": 1638.0})
    assert (load_recording(DATA / "tinymembench-pi3b.csv").frame.kernel != "neon").all()   # 4hOp printed none


def test_the_pi3b_read_sweep_matches_the_raw_files_quoted_from_the_source() -> None:
    # Each line of anetczuk/cpp-memory-performance's raw files, quoted verbatim beside the transcription,
    # against the transcription and the recording: a slip in either shows here.
    sys.path.insert(0, str(DATA / "published"))
    import cpp_memory_performance_pi3 as src

    line = re.compile(r"^(\d+) B ([\d.]+) (KB|MB) time/iter: ([\d.]+) ns time/item: ([\d.]+) ns "
                      r"iters: (\d+) items: (\d+)$")
    r = load_recording(DATA / "cpp-memory-performance-pi3b.csv")
    assert r.is_pi and r.meta["machine"]["board"] == "Raspberry Pi 3B" and r.meta["machine"]["cpu_mhz"] == 1200
    assert src.COMMIT in r.meta["source"]["url"] and src.COMMIT in r.meta["source"]["reference"]
    assert set(r.frame.kernel) == {"c-gcc", "c-clang"}   # the unrolled builds are left out
    for build, kernel in (("gcc", "c-gcc"), ("clang", "c-clang")):
        printed = [line.match(ln) for ln in src.RAW[build].splitlines()]
        assert len(printed) == 44 and all(printed), build
        assert [(int(m[1]), int(m[7]), float(m[5])) for m in printed] == src.SWEEP[build]
        plot_first, plot_last = src.PLOT_QUOTES[build]   # the plot files: column 1 and time/item, the same
        assert plot_first.split()[:2] == [printed[0][1], printed[0][5]]
        assert plot_last.split()[:2] == [printed[-1][1], printed[-1][5]]
        rows = r.frame[r.frame.kernel == kernel].sort_values("size_bytes")
        assert (rows[["benchmark", "phase", "statistic", "unit"]] == ["read-host", "read", "best", "ns/8B"]).all().all()
        assert list(rows.size_bytes) == [8 * int(m[7]) for m in printed]
        for m, (_, got) in zip(printed, rows.iterrows()):
            assert int(m[1]) == got.size_bytes + 8   # column 1: the elements and the 8-byte Array struct
            assert got.value == float(m[5])          # ns per element, as printed
            # one operation is one pass over the elements: the printed time/iter
            assert got.seconds * 1e9 == pytest.approx(float(m[4]), rel=3e-7)
            assert got.gb_per_s == pytest.approx(8 / float(m[5]), rel=1e-12)   # 8 bytes per element's time
    # the caches and DRAM, as printed (gcc): 4.175055 ns per element at 24 KiB, 5.073345 at 300 MiB
    gcc = r.frame[r.frame.kernel == "c-gcc"].set_index("size_bytes")
    assert gcc.loc[24576, "value"] == 4.175055 and gcc.loc[314572792, "value"] == 5.073345
    # why the unrolled builds are left out: their loop skips container[x+8] (quoted: x+7, then x+ 9)
    unrolled = src.CODE["src/mem_performance/ArrayExperiment.h"]
    assert unrolled.index("sum += container[x+ 9];") == unrolled.index("sum += container[x+7];") + 1
    assert "gcc_unroll" in r.meta["source"]["notes"] and "never [x+8]" in r.meta["source"]["notes"]


def test_a_latency_row_has_no_bandwidth(tmp_path: Path) -> None:
    r = load_recording(DATA / "tinymembench-pi3b.csv")
    f = r.frame.copy()
    i = f.index[f.phase == "latency"][0]
    f.loc[i, "unit"] = "MB/s"   # a rate: a latency is a time
    with pytest.raises(DataError, match="'MB/s' on a latency row; a latency is a time: s, ms, us, ns"):
        validate_frame(f, r.meta)
    assert r.frame.loc[r.frame.phase == "latency", "gb_per_s"].isna().all()
    f = r.frame.copy()
    f.loc[f.index[0], "phase"] = "latency"   # a memset figure is no latency
    with pytest.raises(DataError, match="not a phase of baseline"):
        validate_frame(f, r.meta)


def test_a_time_per_8_bytes_is_the_time_of_size_bytes_over_8_elements() -> None:
    # 16 uint64 elements of 4.994017 ns: one 128-byte pass of 79.904272 ns (the source prints 79.904276 ns,
    # its time/iter, of which 4.994017 is the rounded sixteenth).
    assert data.seconds_of(4.994017, "ns/8B", 128) == pytest.approx(79.904272e-9, rel=1e-12)
    assert data.seconds_of(4.994017, "ns/8B", 8) == data.seconds_of(4.994017, "ns", 8)   # one element: its time
    # as a bandwidth: 8 bytes per 4.994017 ns, whatever the size
    for size in (8, 128, 314572792):
        assert size / data.seconds_of(4.994017, "ns/8B", size) == pytest.approx(8 / 4.994017e-9, rel=1e-12)
    unit = next(f for f in data.TABLE_SCHEMA["fields"] if f["name"] == "unit")
    assert "ns/8B" in data.UNITS and "ns/8B" in unit["description"] and "ns/8B" in unit["constraints"]["enum"]


def test_a_time_per_8_bytes_needs_whole_elements_and_is_no_latency(good: Path) -> None:
    f = load_recording(DATA / "tinymembench-pi3b.csv")
    frame = f.frame.copy()
    frame.loc[frame.index[0], ["unit", "value"]] = ["ns/8B", 2.5]   # memset's row, 32 MiB: whole elements
    validate_frame(frame, f.meta)
    frame.loc[frame.index[0], "size_bytes"] = 32 * MiB + 4
    with pytest.raises(DataError, match="row 2 .*column 'size_bytes': 33554436 with unit ns/8B, a time per 8 "
                                        "bytes; expected a whole number of 8-byte elements"):
        validate_frame(frame, f.meta)
    frame = f.frame.copy()
    i = frame.index[frame.phase == "latency"][0]
    frame.loc[i, "unit"] = "ns/8B"
    with pytest.raises(DataError, match="'ns/8B' on a latency row; a latency is a time"):
        validate_frame(frame, f.meta)
    # in a file, likewise; and a measured recording holds seconds only
    rows = set_cell(read_rows(good), 3, "unit", "ns/8B")
    assert "pimem measures seconds" in load_error(make_bad(good, rows=rows))


def test_the_readme_lists_every_unit() -> None:
    text = (DATA / "README.md").read_text(encoding="utf-8")
    cell = re.search(r"^\| `unit` \| text \| (.*) \|$", text, re.M)
    assert cell is not None
    assert set(re.findall(r"`([^`]+)`", cell.group(1))) >= set(data.UNITS), "data/README.md's unit list misses a unit"


def test_make_published_makes_the_shipped_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_published", DATA / "published" / "make_published.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path)]) == 0
    assert check_data_dir(tmp_path) == []
    for name in SHIPPED:
        made, shipped = load_recording(tmp_path / f"{name}.csv"), load_recording(DATA / f"{name}.csv")
        pd.testing.assert_frame_equal(made.frame, shipped.frame)
        made.meta.pop("created"), shipped.meta.pop("created")
        assert made.meta == shipped.meta


def test_a_frame_read_by_pandas_validates() -> None:
    r = load_recording(DATA / "qmkl-pi3.csv")
    validate_frame(r.frame, r.meta)
    validate_frame(pd.read_csv(DATA / "qmkl-pi3.csv"), r.meta)  # NaN for empty cells is fine


# --- the loader rejects malformed files, naming file, row and column --------

CELL_CASES = [
    # (spreadsheet row, column, new value, text expected besides file/row/column)
    (3, "benchmark", "baselin", "not a benchmark"),
    (3, "phase", "copy", "not a phase of baseline"),
    (3, "value", "-0.001", "not > 0"),
    (3, "value", "", "is empty"),
    (3, "unit", "h", "'h' is not a time or rate unit; expected one of: s, ms, us, ns, MB/s"),
    (3, "unit", "", "is empty"),
    (3, "unit", "ms", "pimem measures seconds"),
    (3, "size_bytes", "1048576.5", "not a whole number"),
    (3, "size_bytes", "-5", "not > 0"),
    (3, "overhead_bound", "yes", "not true or false"),
    (2, "flags", "DIRECT", "host buffers only"),
    (5, "flags", "COHERENT", "DIRECT mode"),
    (5, "flags", "DIRECT|SHINY", "not a flag"),
    (5, "flags", "", "uses a GPU buffer"),
    (5, "alias", "0x3", "not an alias"),
    (3, "statistic", "average", "not a statistic"),
    (3, "sample", "0", "repeats row 2"),
    (3, "sample", "-1", "negative"),
    (3, "verified", "ok", "not a verification result"),
    (3, "kernel", "", "not a kernel name"),
    (3, "reps", "0", "not >= 1"),
]


@pytest.mark.parametrize("number, column, value, what", CELL_CASES)
def test_a_bad_cell_is_reported_with_file_row_and_column(good: Path, number: int, column: str,
                                                         value: str, what: str) -> None:
    bad = make_bad(good, rows=set_cell(read_rows(good), number, column, value))
    message = load_error(bad)
    assert "bad.csv" in message and f"row {number}" in message and f"column '{column}'" in message
    assert what in message
    assert any(str(bad) in p and f"row {number}" in p for p in check_data_dir(bad.parent))


def test_a_statistic_row_needs_sample_zero(good: Path) -> None:
    rows = set_cell(read_rows(good), 3, "statistic", "mean")
    message = load_error(make_bad(good, rows=rows))
    assert "row 3, column 'sample'" in message and "sample 0" in message


def test_a_missing_column_is_reported(good: Path) -> None:
    i = data.STORED.index("alias")
    rows = [r[:i] + r[i + 1:] for r in read_rows(good)]
    message = load_error(make_bad(good, rows=rows))
    assert "bad.csv" in message and "row 1" in message and "column 'alias'" in message
    assert "is missing" in message


def test_columns_in_any_order_are_read_and_unknown_or_repeated_ones_reported(good: Path) -> None:
    rows = read_rows(good)
    swapped = [[r[1], r[0], *r[2:]] for r in rows]   # columns are read by name
    pd.testing.assert_frame_equal(load_recording(make_bad(good, rows=swapped)).frame, load_recording(good).frame)
    twice = [r + [r[0]] for r in rows]
    message = load_error(make_bad(good, rows=twice))
    assert "bad.csv, row 1 (header), column 'benchmark': appears more than once" in message
    extra = [r + ["x"] for r in rows]
    extra[0][-1] = "colour"
    message = load_error(make_bad(good, rows=extra))
    assert "row 1 (header), column 'colour'" in message


def test_a_row_with_the_wrong_number_of_fields_is_reported(good: Path) -> None:
    rows = read_rows(good)
    rows[3].append("surplus")
    message = load_error(make_bad(good, rows=rows))
    assert "bad.csv, row 4" in message and f"has {len(rows[0]) + 1} fields" in message


def test_a_recording_needs_rows(good: Path) -> None:
    message = load_error(make_bad(good, rows=read_rows(good)[:1]))
    assert "bad.csv" in message and "no data rows" in message


def test_a_csv_without_its_json_is_reported(good: Path) -> None:
    bad = make_bad(good)
    bad.with_suffix(".json").unlink()
    message = load_error(bad)
    assert "bad.csv" in message and "bad.json is missing" in message
    assert any("bad.json is missing" in p for p in check_data_dir(good.parent))
    with pytest.raises(DataError, match="bad.json is missing"):
        list_recordings(good.parent)


def test_a_json_without_its_csv_is_reported_but_not_listed(good: Path) -> None:
    shutil.copy(good.with_suffix(".json"), good.with_name("orphan.json"))
    problems = check_data_dir(good.parent)
    assert len(problems) == 1 and "orphan.json" in problems[0] and "without its orphan.csv" in problems[0]
    assert [r.name for r in list_recordings(good.parent)] == ["good"]
    with pytest.raises(DataError, match="orphan.csv: no such file"):
        load_recording(good.with_name("orphan.json"))


def meta_error(good: Path, meta: Any) -> str:
    message = load_error(make_bad(good, meta=meta))
    assert "bad.json" in message
    return message


def test_is_pi_true_on_the_emulator_is_rejected(good: Path) -> None:
    message = meta_error(good, host_meta(is_pi=True, board="Raspberry Pi 3B", revision="a02082"))
    assert "field 'machine.is_pi'" in message and "host run" in message


def test_an_emulator_run_must_say_it_is_a_host_run(good: Path) -> None:
    message = meta_error(good, host_meta(description="my computer"))
    assert "field 'machine.description'" in message and "host run" in message


def test_a_host_cpu_model_may_not_name_a_pi(good: Path) -> None:
    message = meta_error(good, host_meta(cpu_model="Raspberry Pi 3 Model B Rev 1.2"))
    assert "field 'machine.cpu_model'" in message


def test_the_pi_backend_needs_is_pi(good: Path) -> None:
    meta = pi_meta()
    meta["machine"]["is_pi"] = False
    meta["machine"]["description"] = "host run"
    assert "field 'machine.is_pi'" in meta_error(good, meta)


@pytest.mark.parametrize("path, value, field", [
    (("schema",), "pimem-recording/0", "schema"),
    (("source", "kind"), "rumour", "source.kind"),
    (("software", "numpy"), None, "software.numpy"),
    (("machine", "cpu_model"), None, "machine.cpu_model"),
    (("machine", "cpu_mhz"), -3, "machine.cpu_mhz"),
    (("backend",), "qemu", "backend"),
    (("created",), "yesterday", "created"),
    (("command",), "", "command"),
    (("statistic_note",), None, "statistic_note"),
])
def test_sidecar_fields_are_checked(good: Path, path: tuple[str, ...], value: Any, field: str) -> None:
    meta = host_meta()
    target = meta
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    assert f"field '{field}'" in meta_error(good, meta)


def test_published_sidecars_need_their_reference(good: Path) -> None:
    shipped = json.loads((DATA / "original-lesson-pi3b.json").read_text())
    meta = copy.deepcopy(shipped)
    meta["source"]["reference"] = ""
    lesson_csv = DATA / "original-lesson-pi3b.csv"
    bad = good.with_name("bad.csv")
    shutil.copy(lesson_csv, bad)
    bad.with_suffix(".json").write_text(json.dumps(meta))
    assert "field 'source.reference'" in load_error(bad)
    meta = copy.deepcopy(shipped)
    meta["backend"] = "pi"
    bad.with_suffix(".json").write_text(json.dumps(meta))
    assert "field 'backend'" in load_error(bad)


def test_published_rows_are_unverified_single_figures(good: Path) -> None:
    bad = good.with_name("bad.csv")
    rows = set_cell(read_rows(DATA / "original-lesson-pi3b.csv"), 2, "verified", "pass")
    write_rows(bad, rows)
    shutil.copy(DATA / "original-lesson-pi3b.json", bad.with_suffix(".json"))
    message = load_error(bad)
    assert "row 2, column 'verified'" in message and "published" in message


def test_broken_json_is_reported_with_its_line(good: Path) -> None:
    message = meta_error(good, '{"schema": "pimem-recording/1",\n  "title": }')
    assert "line 2" in message and "not valid JSON" in message


def test_validate_frame_names_rows_as_the_csv_will(good: Path) -> None:
    frame = valid_frame()
    validate_frame(frame, host_meta())
    frame.loc[0, "value"] = -1.0
    with pytest.raises(DataError) as info:
        validate_frame(frame, host_meta(), name="mine")
    assert "mine, row 2 (index 0), column 'value'" in str(info.value)
    # A frame measured in memory (a sweep's) holds seconds: they are its value, in s.
    validate_frame(valid_frame().drop(columns=["value", "unit"]), host_meta())
    frame = valid_frame().drop(columns=["value", "unit"])
    frame.loc[1, "seconds"] = 0.0
    with pytest.raises(DataError, match="row 3 \\(index 1\\), column 'value': 0.0 is not > 0"):
        validate_frame(frame, host_meta())
    with pytest.raises(DataError, match="column 'alias': is missing"):
        validate_frame(valid_frame().drop(columns="alias"), host_meta())
    with pytest.raises(UsageError):
        validate_frame([1, 2], host_meta())  # type: ignore[arg-type]


def test_every_benchmark_phase_pair_is_accepted() -> None:
    rows = []
    for bench, phases in BENCHMARKS.items():
        mode = data.BUFFER_MODE[bench]
        for phase in phases:
            r = row(bench, phase, MiB, 0.001, flags=mode.name if mode else "")
            if phase == "latency":   # the time of one access: no bandwidth
                r["gb_per_s"] = r["gib_per_s"] = None
            rows.append(r)
    validate_frame(pd.DataFrame(rows, columns=list(COLUMNS)), host_meta())


# --- saving -----------------------------------------------------------------

def test_save_and_load_round_trip(tmp_path: Path) -> None:
    frame = valid_frame()
    path = save_recording(frame, host_meta(), tmp_path, "run")
    assert path == tmp_path / "run.csv" and (tmp_path / "run.json").exists()
    r = load_recording(path)
    pd.testing.assert_frame_equal(r.frame, frame, check_dtype=False)
    assert r.meta == host_meta()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_save_never_overwrites(tmp_path: Path) -> None:
    first = save_recording(valid_frame(), host_meta(), tmp_path, "run")
    before = first.read_bytes(), first.with_suffix(".json").read_bytes()
    second = save_recording(valid_frame().iloc[:2], host_meta(), tmp_path, "run")
    third = save_recording(valid_frame(), host_meta(), tmp_path, "run")
    assert (second.name, third.name) == ("run-2.csv", "run-3.csv")
    assert (first.read_bytes(), first.with_suffix(".json").read_bytes()) == before
    assert len(load_recording(second).frame) == 2
    # a name held by a lone sidecar is taken too
    (tmp_path / "solo.json").write_text("{}")
    assert save_recording(valid_frame(), host_meta(), tmp_path, "solo").name == "solo-2.csv"
    assert (tmp_path / "solo.json").read_text() == "{}"


def test_save_validates_before_writing(tmp_path: Path) -> None:
    frame = valid_frame()
    frame.loc[2, "benchmark"] = "teleport"
    with pytest.raises(DataError, match="row 4 \\(index 2\\), column 'benchmark'"):
        save_recording(frame, host_meta(), tmp_path, "run")
    with pytest.raises(DataError, match="machine.is_pi"):
        save_recording(valid_frame(), host_meta(is_pi=True, board="x", revision="a02082"), tmp_path, "run")
    with pytest.raises(UsageError):
        save_recording(valid_frame(), host_meta(), tmp_path, "../escape")
    assert list(tmp_path.iterdir()) == []


def test_a_save_that_fails_between_the_two_files_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    earlier = save_recording(valid_frame(), host_meta(), tmp_path, "run")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_write = data.save.write_file

    def fail_on_csv(path: Path, *args: object, **kw: object) -> Path:
        if Path(path).suffix == ".csv":
            assert (tmp_path / "run-2.json").exists()  # the sidecar is already in place
            raise OSError(28, "No space left on device (simulated)")
        return real_write(path, *args, **kw)

    monkeypatch.setattr(data.save, "write_file", fail_on_csv)
    with pytest.raises(OSError, match="simulated"):
        save_recording(valid_frame(), host_meta(), tmp_path, "run")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no trace, earlier intact
    assert [r.name for r in list_recordings(tmp_path)] == ["run"]
    assert check_data_dir(tmp_path) == []
    assert len(load_recording(earlier).frame) == len(valid_frame())


_KILLED_SAVE = """
import os, signal, sys
from pathlib import Path
from pimem.bench.data import save
from pimem import safefs
import pandas as pd
real = safefs.write_file
def die(path, *a, **k):
    if Path(path).suffix == ".csv":          # the sidecar is placed; a temporary of the CSV is on disk
        tmp = safefs.tmp_name(Path(path)); tmp.write_bytes(b"half a recording")
        os.kill(os.getpid(), signal.SIGKILL)
    return real(path, *a, **k)
save.write_file = die
frame = pd.read_pickle(sys.argv[2]); meta = pd.read_pickle(sys.argv[3])
save.save_recording(frame, meta, sys.argv[1], "run")
"""


def test_a_save_killed_between_the_two_files_is_named_and_cleaned(tmp_path: Path) -> None:
    earlier = save_recording(valid_frame(), host_meta(), tmp_path, "run")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    pd.to_pickle(valid_frame(), tmp_path.parent / "f.pkl")
    pd.to_pickle(host_meta(), tmp_path.parent / "m.pkl")
    done = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(tmp_path), str(tmp_path.parent / "f.pkl"),
                           str(tmp_path.parent / "m.pkl")], capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    assert not (tmp_path / "run-2.csv").exists()
    assert all((tmp_path / n).read_bytes() == b for n, b in before.items())
    assert [r.name for r in list_recordings(tmp_path)] == ["run"]
    # The leftovers are reported, each with the command that removes it.
    problems = check_data_dir(tmp_path)
    assert any("run-2.json: a sidecar without its run-2.csv" in p for p in problems)
    assert any("temporary file left by an interrupted save" in p for p in problems)
    assert all("--remove-leftovers" in p for p in problems) and not any(str(earlier) in p for p in problems)
    # The next save clears its own temporaries and keeps clear of the sidecar; check-data removes the rest.
    assert save_recording(valid_frame(), host_meta(), tmp_path, "run").name == "run-3.csv"
    assert [p.name for p in data.remove_data_leftovers(tmp_path)] == ["run-2.json"]
    assert check_data_dir(tmp_path) == []


# --- provenance, listing, locating ------------------------------------------

PI_WORD = re.compile(r"\bPi\b|raspberry", re.IGNORECASE)


def test_provenance_never_says_pi_for_a_host_run(tmp_path: Path) -> None:
    # even an emulator run on a Pi is a host run, and its line must not claim a Pi
    for meta in (host_meta(), host_meta(description="host run on a Raspberry Pi 3B with the emulator",
                                        cpu_model="Cortex-A53", arch="aarch64")):
        r = load_recording(save_recording(valid_frame(), meta, tmp_path, "host"))
        line = r.provenance()
        assert line.startswith("host run: ") and "emulator backend" in line and "2026-11-25" in line
        assert not PI_WORD.search(line), line
    r = load_recording(save_recording(valid_frame(), pi_meta(), tmp_path, "pi"))
    assert r.provenance().startswith("Raspberry Pi 3B, measured: pimem pi backend")


def test_load_all_adds_recording_and_provenance() -> None:
    df = load_all(DATA)
    assert list(df.columns) == ["recording", "provenance", "mine", "kind", "is_pi", "board", *COLUMNS]
    assert not df["mine"].any()
    # what a reader needs, without parsing the provenance line
    hosts = df[df["recording"].str.startswith("host-")]
    assert (~hosts["is_pi"]).all() and (hosts["kind"] == "measured").all() and (hosts["board"] == "").all()
    shipped = df[df["recording"].isin(SHIPPED)]
    assert shipped["is_pi"].all() and (shipped["kind"] == "published").all()
    assert shipped["board"].str.startswith("Raspberry Pi").all()
    assert set(df["recording"]) == {r.name for r in list_recordings(DATA)} >= set(SHIPPED)
    assert len(df) == sum(len(r.frame) for r in list_recordings(DATA))
    lesson = df[df["recording"] == "original-lesson-pi3b"]
    assert (lesson["provenance"] == "Raspberry Pi 3B, published: original lesson (C, mean of 5 runs)").all()


def test_empty_and_missing_folders(tmp_path: Path) -> None:
    assert check_data_dir(tmp_path) == [] and list_recordings(tmp_path) == []
    assert list(load_all(tmp_path).columns) == [*data.RECORDING_COLUMNS, *COLUMNS]
    assert "no such directory" in check_data_dir(tmp_path / "nope")[0]
    with pytest.raises(DataError, match="no such directory"):
        list_recordings(tmp_path / "nope")


def test_data_dir_is_the_repository_folder_unless_overridden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIMEM_DATA_DIR", raising=False)
    assert data_dir() == DATA
    assert check_data_dir() == []  # the default folder is data_dir()
    monkeypatch.setenv("PIMEM_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path and list_recordings() == []


def test_load_recording_wants_a_csv_or_json_path(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        load_recording(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="no such file"):
        load_recording(tmp_path / "absent.csv")


# --- the schema files, and data/README.md ------------------------------------

def readme_table_names(heading: str) -> list[str]:
    """The names in backticks in the first column of the tables under a README heading (to the next one)."""
    text = (DATA / "README.md").read_text(encoding="utf-8")
    section = re.search(rf"^{re.escape(heading)}\n(.*?)(?=^#{{2,3}} )", text, re.S | re.M)
    assert section, f"data/README.md has no {heading!r} section"
    names: list[str] = []
    for line in section.group(1).splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if not cells or set(cells[0]) <= set("-: ") or not cells[0].startswith("`"):
            continue   # not a table row, the separator, or the header
        names += re.findall(r"`([^`]+)`", cells[0])
    return names


def schema_keys(node: dict[str, Any], prefix: str = "") -> tuple[set[str], set[str]]:
    """Every sidecar key the JSON Schema declares (dotted), and those of them holding keys of their own."""
    keys, parents = set(), set()
    parts = [node] + [p.get(branch, {}) for p in node.get("allOf", []) for branch in ("then", "else")]
    for part in parts:
        for key, sub in part.get("properties", {}).items():
            keys.add(prefix + key)
            inner, inner_parents = schema_keys(sub, prefix + key + ".")
            keys |= inner
            parents |= inner_parents | ({prefix + key} if inner else set())
    return keys, parents


def test_the_readme_lists_the_columns_the_table_schema_declares() -> None:
    declared = [f["name"] for f in data.TABLE_SCHEMA["fields"]]
    assert readme_table_names("## CSV columns") == declared == list(data.STORED)
    # and the columns computed when a recording is read
    assert readme_table_names("### Computed columns") == list(data.DERIVED)
    assert set(COLUMNS) == set(data.STORED) | set(data.DERIVED)


def test_the_readme_lists_the_fields_the_sidecar_schema_declares() -> None:
    listed = set(readme_table_names("## Sidecar (`NAME.json`)"))
    declared, parents = schema_keys(data.META_SCHEMA)
    assert listed - declared == set(), "in data/README.md's table but not in recording-meta.schema.json"
    assert declared - parents - listed == set(), "in recording-meta.schema.json but not in data/README.md's table"
    assert "label" in declared and "software.pimem" in declared


def test_the_readme_benchmark_table_agrees_with_the_code() -> None:
    text = (DATA / "README.md").read_text(encoding="utf-8")
    from pimem.bench.catalog import markdown_table

    # pimem render writes the table from the catalog; a hand edit, or a catalog change not yet rendered, fails
    assert markdown_table() in text, "data/README.md's benchmark table is not the catalog's: run pimem render --tables"
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| ([a-z, ]+) \| .* \| ([A-Z0-9_]+|none) \|$", text, re.M)
    assert {b: tuple(p.split(", ")) for b, p, _ in rows} == BENCHMARKS
    assert {b: mode for b, _, mode in rows} == {
        b: (m.name if m else "none") for b, m in data.BUFFER_MODE.items()}


def test_the_schema_files_are_valid_and_agree_with_the_code() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(data.META_SCHEMA)
    assert data.META_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    table = data.TABLE_SCHEMA
    names = [f["name"] for f in table["fields"]]
    assert len(set(names)) == len(names) and set(table["primaryKey"]) <= set(names)
    assert table["fieldsMatch"] == "superset"
    fields = {f["name"]: f for f in table["fields"]}
    assert tuple(fields["benchmark"]["constraints"]["enum"]) == tuple(BENCHMARKS)
    assert set(BENCHMARKS) == set(data.BUFFER_MODE)
    assert tuple(fields["unit"]["constraints"]["enum"]) == data.UNITS
    assert set(data.PHASES) == {p for ps in BENCHMARKS.values() for p in ps} == set(data.BUS_FACTOR)
    assert data.SCHEMA == "pimem-recording/2" and data.LABEL_MAX == 40
    # every field describes itself: the description is the "expected ..." of its messages
    assert all(f.get("description") and f.get("type") for f in table["fields"])
    # the package ships them (pyproject.toml's package-data), found without data/
    from importlib import resources

    for name in ("recording-table.schema.json", "recording-meta.schema.json"):
        assert resources.files("pimem.bench").joinpath("schemas").joinpath(name).is_file()
    assert '"schemas/*.json"' in (REPO / "pyproject.toml").read_text()


def test_a_table_schema_constraint_the_reader_cannot_check_is_refused() -> None:
    with pytest.raises(NotImplementedError, match="unique"):
        data.table.field_reader({"name": "x", "type": "integer", "constraints": {"unique": True}}, {})
    with pytest.raises(NotImplementedError, match="type date"):
        data.table.field_reader({"name": "x", "type": "date"}, {})


@pytest.mark.parametrize("label", ["alice", "pi-07", "Zoë B.", "李明", "", " ", " alice", "alice ", "a\tb",
                                   "a\nb", "a\x07", "a\u2028b", "a\u200bb", "x" * 40, "x" * 41, 7, ["alice"], None])
def test_the_label_rule_of_the_schema_and_of_the_code_agree(label: Any) -> None:
    schema = data.META_SCHEMA["properties"]["label"]
    import jsonschema

    by_schema = jsonschema.Draft202012Validator(schema).is_valid(label)
    by_code = label is None or data.label_problem(label) is None
    # the code is at least as strict (it also knows what Python cannot print), so it can word every refusal
    assert by_code <= by_schema
    if label == "a\u200bb":   # a zero-width space: printable to no pattern, only to Python
        assert by_schema and not by_code


def test_a_problem_names_the_field_the_value_and_what_to_do(good: Path) -> None:
    meta = host_meta(cpu_mhz=-3)
    meta["title"] = "   "
    meta["created"] = "yesterday"
    del meta["software"]["numpy"]
    message = meta_error(good, meta)
    lines = message.splitlines()[1:]
    assert len(lines) == 4 and all("bad.json, field '" in ln and "; " in ln for ln in lines), lines
    assert any("'machine.cpu_mhz': -3 is not > 0; expected a number > 0" in ln for ln in lines)
    assert any("'title': is empty; expected one line" in ln for ln in lines)
    assert any("'created': \"yesterday\" is not a date-time; expected the ISO-8601 time" in ln for ln in lines)
    assert any("'software.numpy': is missing; expected the numpy version" in ln for ln in lines)


def test_a_non_object_sidecar_and_a_sidecar_without_its_source_are_reported(good: Path) -> None:
    assert "is not a JSON object" in meta_error(good, [1, 2])
    meta = host_meta()
    meta["source"] = {}
    message = meta_error(good, meta)
    assert "field 'source.kind': is missing" in message


@pytest.mark.parametrize("column, value, what", [
    ("value", "nan", "not a finite number"),
    ("value", "1e999", "not a finite number"),
    ("value", "1_000", "not a number"),
    ("size_bytes", "٣", "not a whole number"),   # a digit, but not an ASCII one
    ("kernel", "NumPy", "not a kernel name"),
    ("flags", "direct", "not a list of flag names"),
    ("flags", "DIRECT|DIRECT", "names a flag twice"),
    ("alias", "0xc", "not an alias"),
])
def test_more_bad_cells_are_reported(good: Path, column: str, value: str, what: str) -> None:
    number = 5 if column in ("flags", "alias") else 3
    message = load_error(make_bad(good, rows=set_cell(read_rows(good), number, column, value)))
    assert f"row {number}, column '{column}'" in message and what in message


def test_cells_keep_the_forms_they_were_read_in(good: Path) -> None:
    rows = set_cell(read_rows(good), 3, "overhead_bound", "TRUE")
    rows = set_cell(rows, 3, "kernel", " numpy ")
    r = load_recording(make_bad(good, rows=rows))
    assert r.frame.loc[1, "overhead_bound"] == True and r.frame.loc[1, "kernel"] == "numpy"  # noqa: E712
    assert (r.frame.loc[r.frame.benchmark == "baseline", "flags"] == "").all()


# --- the user's own recordings (my-data/) -----------------------------------------

def _user_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    mine = tmp_path / "my-data"
    mine.mkdir()
    monkeypatch.setenv("PIMEM_USER_DATA_DIR", str(mine))
    return mine


def test_the_users_recordings_are_read_after_the_courses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = _user_folder(monkeypatch, tmp_path)
    course = load_all()
    save_recording(valid_frame(), pi_meta(), mine, "pi-mine")
    save_recording(valid_frame(), pi_meta(), mine, "tinymembench-pi3b")   # named like a course recording
    both = load_all()
    # The course's rows come first and unchanged: nothing the course shows depends on my-data/.
    pd.testing.assert_frame_equal(both.iloc[:len(course)], course)
    added = both.iloc[len(course):]
    assert added["mine"].all() and set(added["recording"]) == {"pi-mine", "tinymembench-pi3b (yours)"}
    assert [d.name for d in data_folders()] == [DATA.name, "my-data"]


def test_a_broken_user_recording_is_skipped_with_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    mine = _user_folder(monkeypatch, tmp_path)
    save_recording(valid_frame(), pi_meta(), mine, "good")
    (mine / "bad.csv").write_text("not,a,recording\n")
    names = [r.name for r in list_recordings() if r.mine]
    assert names == ["good"]
    err = capsys.readouterr().err
    assert "skipped your recording" in err and "bad.csv" in err and "check-data" in err
    # check-data (the default: every folder) names it; the course's own folder is clean.
    assert any("bad.csv" in p for p in check_data_dir()) and check_data_dir(DATA) == []


def test_a_broken_course_recording_still_stops_the_load(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("not,a,recording\n")
    with pytest.raises(DataError, match="bad"):
        list_recordings(tmp_path)


def test_user_data_dir_is_my_data_beside_the_working_copy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pimem.paths import MY_DATA_DIR, REPO

    monkeypatch.delenv("PIMEM_USER_DATA_DIR")
    assert user_data_dir() == MY_DATA_DIR == REPO / "my-data"
    # git's own rules, in a repository of their own: CI may test a copy that is not a git checkout.
    if shutil.which("git") is None:
        pytest.skip("needs git")
    scratch = tmp_path / "repo"
    scratch.mkdir()
    shutil.copy(REPO / ".gitignore", scratch / ".gitignore")
    subprocess.run(["git", "init", "-q", str(scratch)], check=True)
    ignored = subprocess.run(["git", "check-ignore", "-q", "my-data/x.csv"], cwd=scratch)
    assert ignored.returncode == 0, "my-data/ must be git-ignored"


# --- files an earlier pimem wrote ---------------------------------------------

V1_COLUMNS = ("benchmark", "phase", "size_bytes", "statistic", "sample", "seconds", "bytes", "bus_bytes",
              "gb_per_s", "gib_per_s", "reps", "overhead_bound", "verified", "kernel", "flags", "alias")


def test_a_recording_in_the_first_format_still_loads(tmp_path: Path) -> None:
    # pimem-recording/1 stored the seconds and the columns computed from them; a user's my-data/ may hold one.
    frame = valid_frame()
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(V1_COLUMNS)
    for rec in frame.to_dict("records"):
        w.writerow(["" if isinstance(rec[c], float) and math.isnan(rec[c]) else
                    str(rec[c]).lower() if isinstance(rec[c], bool) else rec[c] for c in V1_COLUMNS])
    (tmp_path / "old.csv").write_text(out.getvalue())
    meta = {**host_meta(), "schema": "pimem-recording/1"}
    (tmp_path / "old.json").write_text(json.dumps(meta))
    r = load_recording(tmp_path / "old.csv")
    pd.testing.assert_frame_equal(r.frame, load_recording(save_recording(frame, host_meta(), tmp_path, "new")).frame)
    assert (r.frame["unit"] == "s").all() and check_data_dir(tmp_path) == []
    # its checks still apply
    (tmp_path / "old.csv").write_text(out.getvalue().replace("host-copy", "host-cpy"))
    assert "row 4, column 'benchmark'" in load_error(tmp_path / "old.csv")


_WITH_A_NEW_COLUMN = """
import sys
from pathlib import Path
import pandas as pd
from pimem.bench import data
assert "arm_mhz" in data.STORED and "arm_mhz" not in data.schema.REQUIRED
course = data.load_all(sys.argv[1])                      # files written before the column: they load
assert course["arm_mhz"].isna().all(), course["arm_mhz"]
r = data.load_recording(Path(sys.argv[1]) / "original-lesson-pi3b.csv")
out = Path(sys.argv[2])
plain = data.save_recording(r.frame.drop(columns=["arm_mhz"]), r.meta, out, "plain")
assert "arm_mhz" not in plain.read_text().splitlines()[0]   # no row has it: the file is as before
clocked = data.save_recording(r.frame.assign(arm_mhz=1200), r.meta, out, "clocked")
assert (data.load_recording(clocked).frame["arm_mhz"] == 1200).all()
print("ok")
"""


def test_an_optional_column_added_to_the_schema_leaves_every_file_as_it_is(tmp_path: Path) -> None:
    # Add a column the way a developer would (a field in the table schema, not required) to a copy of
    # the package: the committed files still load, and a save that does not use it writes the same CSV.
    pkg = tmp_path / "pkg"
    shutil.copytree(REPO / "pimem", pkg / "pimem", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    schema_file = pkg / "pimem" / "bench" / "schemas" / "recording-table.schema.json"
    schema = json.loads(schema_file.read_text())
    schema["fields"].append({"name": "arm_mhz", "type": "integer", "title": "ARM clock",
                             "description": "the ARM clock in MHz", "constraints": {"minimum": 1}})
    schema_file.write_text(json.dumps(schema))
    (tmp_path / "out").mkdir()
    done = subprocess.run([sys.executable, "-c", _WITH_A_NEW_COLUMN, str(DATA), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(pkg)})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


# --- runs on an emulated machine (scripts/pi-machine.sh) ------------------------------

def test_a_run_on_an_emulated_machine_is_never_filed_as_pi_data() -> None:
    from pimem.bench.data.sidecar import check_meta

    claimed = pi_meta()
    claimed["machine"]["emulated"] = "qemu-raspi3b"
    problems = " ".join(check_meta(claimed))
    assert "emulated machine" in problems and "set is_pi to false" in problems
    labelled = pi_meta()
    labelled["machine"].update(emulated="qemu-raspi3b", is_pi=False, board=None,
                               description="emulated machine (qemu-raspi3b), not a Raspberry Pi")
    assert check_meta(labelled) == []
    unsaid = copy.deepcopy(labelled)
    unsaid["machine"]["description"] = "a Cortex-A53"
    assert any("must contain 'emulated'" in p for p in check_meta(unsaid))
    assert check_meta(pi_meta()) == []     # a Pi's run is still a Pi's


def test_the_emulated_machine_is_recognised(tmp_path: Path) -> None:
    from pimem.firmware.board import read_emulated_machine

    (tmp_path / "proc").mkdir()
    assert read_emulated_machine(tmp_path) is None
    (tmp_path / "proc" / "cmdline").write_text("console=ttyAMA0 mem=948M pimem.emulated=qemu-raspi3b quiet\n")
    assert read_emulated_machine(tmp_path) == "qemu-raspi3b"
    (tmp_path / "proc" / "cmdline").write_text("console=serial0,115200 root=PARTUUID=1 rootwait\n")
    (tmp_path / "sys" / "class" / "cuse" / "vcio").mkdir(parents=True)
    assert "CUSE" in read_emulated_machine(tmp_path)
