"""Predictions for a Raspberry Pi 3B, worked out from published Pi figures and documented hardware facts.

A prediction is never a measurement: each one carries a band (low to high), its unit, the size range it
covers, the arithmetic that gives it, written out, and its sources (the recordings in data/ it reads and
the documents they cite). The figures draw them dashed or banded, with "prediction, not a measurement" in
their legend; a live run on a Pi confirms or refutes them.

Every input figure that exists in a recording is read from it (``pimem.bench.data.load_all``), not retyped:
change a recording and the predictions follow. Only documented facts with no recording (the ARM clock,
the core count, the SDRAM's clock and width, the caches) come from ``pimem.firmware.board`` and below.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..exc import UsageError
from ..firmware.board import PI3B

#: Not a prediction: the words every prediction's label carries.
NOT_A_MEASUREMENT = "prediction, not a measurement"

#: The Pi 3B's ARM cores and clock (raspberrypi/documentation, processors/bcm2837.adoc: 4 x A53 at 1.2 GHz).
CPU_CORES = 4
CPU_MHZ = 1200
CPU_SOURCE = ("raspberrypi/documentation processors/bcm2837.adoc (4 x Cortex-A53), "
              "config_txt/overclocking.adoc (arm_freq 1200 MHz on the 3B)")

#: The sizes a "beyond the L2" prediction covers: from twice the L2 (the step between 512 KiB and 1 MiB
#: is where the published sweep changes) to the largest buffer the course draws.
BEYOND_L2 = (2 * PI3B.l2_bytes, 64 << 20)
#: The sizes an uncached prediction covers: every size the course draws (no cache, so no step).
ALL_SIZES = (4 << 10, 64 << 20)


@dataclass(frozen=True)
class Prediction:
    """One predicted quantity for a Pi 3B: a band, its unit, the sizes it covers, its arithmetic, its sources."""

    key: str
    what: str                       #: plain words: "DRAM fill beyond the L2"
    low: float
    high: float
    unit: str                       #: "GB/s" (10^9 B/s), "ns", "ms" or "%"
    arithmetic: str                 #: how the band is worked out, with the numbers
    sources: tuple[str, ...]        #: recordings (data/NAME) and documents
    sizes: tuple[int, int] | None = None   #: the buffer sizes it covers (None: not a by-size quantity)
    benchmark: str = ""             #: the benchmark a live run measures it with
    phase: str = ""
    test: str = ""                  #: what a live run will confirm or refute

    def __post_init__(self) -> None:
        if not 0 < self.low <= self.high:
            raise UsageError(f"prediction {self.key}: band {self.low}..{self.high} is not 0 < low <= high")

    @property
    def mid(self) -> float:
        return (self.low + self.high) / 2

    def band_text(self) -> str:
        """The band in its unit; a band under 0.1 GB/s in MB/s (10^6 B/s), easier to read."""
        lo, hi, unit = self.low, self.high, self.unit
        if unit == "GB/s" and hi < 0.1:
            lo, hi, unit = lo * 1e3, hi * 1e3, "MB/s"
        return f"{lo:.3g}-{hi:.3g} {unit}" if hi > lo else f"{lo:.3g} {unit}"

    @property
    def label(self) -> str:
        """The legend text: plain words, the band, and that it is a prediction."""
        return f"Pi 3B {self.what}, {self.band_text()} ({NOT_A_MEASUREMENT})"

    def footer_line(self) -> str:
        """The figure footer's line: the arithmetic and the sources."""
        return f"prediction, {self.what}: {self.arithmetic} Sources: {'; '.join(self.sources)}."

    def holds(self, value: float, slack: float = 0.0) -> bool:
        """Whether a measured ``value`` (in ``unit``) falls in the band, widened by ``slack`` (a fraction)."""
        return self.low * (1 - slack) <= value <= self.high * (1 + slack)


# --- the published inputs ------------------------------------------------------------

@dataclass(frozen=True)
class Figure_:
    """One published figure read from a recording: its value, its size and where it comes from."""

    value: float      #: GB/s for a bandwidth, ns for a latency
    size: int
    recording: str
    statistic: str

    @property
    def source(self) -> str:
        return f"data/{self.recording}"


def _data(data: pd.DataFrame | None) -> pd.DataFrame:
    if data is None:
        from ..bench.data import load_all

        data = load_all()
    return data


def published(data: pd.DataFrame | None, recording: str, benchmark: str, phase: str,
              kernel: str | None = None) -> Figure_:
    """The one published bandwidth of ``recording`` for this benchmark and phase (GB/s, 10^9 B/s)."""
    d = _data(data)
    rows = d[(d["recording"] == recording) & (d["benchmark"] == benchmark) & (d["phase"] == phase)]
    if kernel is not None:
        rows = rows[rows["kernel"] == kernel]
    if len(rows) != 1:
        raise UsageError(f"expected one row of {benchmark}/{phase}{'/' + kernel if kernel else ''} in "
                         f"data/{recording}, found {len(rows)}; check data/ (pimem check-data)")
    r = rows.iloc[0]
    return Figure_(float(r["gb_per_s"]), int(r["size_bytes"]), recording, str(r["statistic"]))


def dram_latency(data: pd.DataFrame | None = None, recording: str = "ramlat-pi3b") -> tuple[float, float]:
    """(fastest, slowest) whole time of one dependent load, ns, at block sizes of 8 x the L2 and more."""
    d = _data(data)
    rows = d[(d["recording"] == recording) & (d["benchmark"] == "latency-chase")
             & (d["size_bytes"] >= 8 * PI3B.l2_bytes)]
    if rows.empty:
        raise UsageError(f"data/{recording} has no latency-chase rows from {8 * PI3B.l2_bytes >> 20} MiB up")
    ns = rows["seconds"] * 1e9
    return float(ns.min()), float(ns.max())


def cached_dram_read(data: pd.DataFrame | None = None,
                     recording: str = "cpp-memory-performance-pi3b") -> tuple[float, float]:
    """(lowest, highest) published sequential cached read, GB/s, of a Pi 3B sweep beyond 2 x the L2."""
    d = _data(data)
    rows = d[(d["recording"] == recording) & (d["benchmark"] == "read-host")
             & (d["size_bytes"] >= BEYOND_L2[0])]
    if rows.empty:
        raise UsageError(f"data/{recording} has no read-host rows beyond the L2")
    return float(rows["gb_per_s"].min()), float(rows["gb_per_s"].max())


def _unique(sources: tuple[str, ...]) -> tuple[str, ...]:
    """Each source once, the one with more detail kept (a name followed by its address)."""
    out: list[str] = []
    for s in sources:
        if any(o.startswith(s) for o in out):
            continue
        out = [o for o in out if not s.startswith(o)] + [s]
    return tuple(out)


def _gb(x: float) -> str:
    return f"{x:.3f} GB/s"


# --- the predictions -----------------------------------------------------------------

def dram_fill(data: pd.DataFrame | None = None) -> Prediction:
    """The cached fill's plateau beyond the L2: from the lesson's C loop to tinymembench's memset."""
    lesson = published(data, "original-lesson-pi3b", "baseline", "fill")
    memset = published(data, "tinymembench-pi3b", "baseline", "fill", "libc")
    lo, hi = sorted((lesson.value, memset.value))
    return Prediction(
        "dram-fill", "cached fill beyond the L2", lo, hi, "GB/s",
        f"from the original lesson's C fill loop on a Pi 3B (mean of 5, 64 MiB: {_gb(lesson.value)}) to "
        f"tinymembench's memset on another Pi 3B run (sbc-bench 4hOp, best of repeats, 32 MiB: "
        f"{_gb(memset.value)}); two boards, two programs: the band is the spread between them, and a fill "
        f"this size streams from DRAM, so every size beyond 2 x L2 should sit in it.",
        (lesson.source, memset.source + " (github.com/ThomasKaiser/sbc-bench results/4hOp.txt)"),
        BEYOND_L2, "baseline", "fill",
        "a live baseline sweep should be flat within this band from 1 MiB up; faster in L2 and L1")


def zerocopy_write(data: pd.DataFrame | None = None) -> Prediction:
    """The direct (uncached) write, flat at every size: no cache holds it."""
    qmkl = published(data, "qmkl-pi3", "zerocopy", "write")
    lesson = published(data, "original-lesson-pi3b", "zerocopy", "write")
    lo, hi = sorted((qmkl.value, lesson.value))
    return Prediction(
        "zerocopy-write", "direct (uncached) write, any size", lo, hi, "GB/s",
        f"from qmkl's memset of a DIRECT buffer on a Pi 3 (4 MiB, one shot: {_gb(qmkl.value)}) to the original "
        f"lesson's zero-copy write (64 MiB, mean of 5: {_gb(lesson.value)}); the buffer is mapped uncached "
        f"(an inference from the kernel source: Linux maps /dev/mem outside System RAM non-cached, drivers/char/mem.c), so no cache can hold it and the rate "
        f"should not depend on the size.",
        (qmkl.source + " (github.com/Idein/qmkl/pull/35)", lesson.source),
        ALL_SIZES, "zerocopy", "write",
        "a live zerocopy sweep should be flat in this band from 4 KiB to 64 MiB: no cache step")


def standard_copy(data: pd.DataFrame | None = None) -> Prediction:
    """The standard path's copy into the uncached GPU buffer."""
    qmkl = published(data, "qmkl-pi3", "copy-to-direct", "copy")
    lesson = published(data, "original-lesson-pi3b", "standard", "copy")
    lo, hi = sorted((qmkl.value, lesson.value))
    return Prediction(
        "standard-copy", "copy into the GPU buffer", lo, hi, "GB/s",
        f"from qmkl's memcpy host -> DIRECT on a Pi 3 (4 MiB, one shot: {_gb(qmkl.value)}) to the original "
        f"lesson's copy (64 MiB, mean of 5: {_gb(lesson.value)}); its stores go to uncached memory at "
        f"every size.",
        (qmkl.source, lesson.source), ALL_SIZES, "standard", "copy",
        "a live standard sweep's copy phase should stay in this band at every size")


def standard_total(data: pd.DataFrame | None = None) -> Prediction:
    """Fill then copy beyond the L2: the two times add, so the rates combine as 1 / (1/fill + 1/copy)."""
    fill, copy = dram_fill(data), standard_copy(data)

    def combine(f: float, c: float) -> float:
        return 1 / (1 / f + 1 / c)

    lo, hi = combine(fill.low, copy.low), combine(fill.high, copy.high)
    return Prediction(
        "standard-total", "fill then copy (total) beyond the L2", lo, hi, "GB/s",
        f"the same bytes are filled, then copied: the times add, so total = 1 / (1/fill + 1/copy); with the "
        f"fill {fill.band_text()} and the copy {copy.band_text()}: 1 / (1/{fill.low:.3f} + 1/{copy.low:.3f}) = "
        f"{lo:.3f} to 1 / (1/{fill.high:.3f} + 1/{copy.high:.3f}) = {hi:.3f} GB/s, always below the copy "
        f"rate alone. Inside the L2 the fill is faster, so the total rises towards the copy rate, never above it.",
        _unique(fill.sources + copy.sources), BEYOND_L2, "standard", "total",
        "a live standard sweep's total should sit in this band from 1 MiB up, and below the zero-copy write")


def uncached_read(data: pd.DataFrame | None = None) -> Prediction:
    """Reading uncached memory: one load at a time, each a whole DRAM round trip."""
    fast, slow = dram_latency(data)
    lo, hi = 4 / slow, 8 / fast    # bytes per ns = GB/s
    return Prediction(
        "uncached-read", "uncached (DIRECT) read, any size", lo, hi, "GB/s",
        f"bytes per load / DRAM latency: with no cache, every load waits for DRAM (assumed one at a time, an "
        f"inference); ramlat's dependent load at 4-16 MiB takes {fast:.1f}-{slow:.1f} ns on a Pi 3B, so "
        f"4 B / {slow:.1f} ns = {lo * 1e3:.1f} MB/s to 8 B / {fast:.1f} ns = {hi * 1e3:.1f} MB/s "
        f"(32- or 64-bit loads).",
        ("data/ramlat-pi3b (github.com/ThomasKaiser/sbc-bench results/4hOp.txt, ramlat 1xPTR)",),
        ALL_SIZES, "read-direct", "read",
        "a live read-direct sweep should be flat in this band at every size, some 30-60 times below read-host")


def demand(bytes_per_cycle: int = 8, cores: int = CPU_CORES) -> Prediction:
    """What the cores could ask of memory: cores x clock x bytes per cycle (an assumption, stated)."""
    gbs = cores * CPU_MHZ * 1e6 * bytes_per_cycle / 1e9
    who = "four cores" if cores == 4 else "one core" if cores == 1 else f"{cores} cores"
    return Prediction(
        f"demand-{cores}x{bytes_per_cycle}", f"demand of {who} at {bytes_per_cycle} B per cycle", gbs, gbs, "GB/s",
        f"{cores} x {CPU_MHZ} MHz x {bytes_per_cycle} B = {gbs:.1f} GB/s, assuming each core loads or stores "
        f"{bytes_per_cycle} bytes every cycle (an assumption, not a documented rate).",
        (CPU_SOURCE,))


def readback_crossover(data: pd.DataFrame | None = None) -> Prediction:
    """The share of a buffer the CPU may read back before zero-copy stops paying (beyond the L2).

    Per byte, the standard path costs 1/total and then reads cached memory (1/read_cached); zero-copy
    costs 1/write and then reads uncached memory (1/read_uncached). Reading back a fraction f of the
    bytes, zero-copy is faster while f < (1/total - 1/write) / (1/read_uncached - 1/read_cached).
    """
    total, write, unc = standard_total(data), zerocopy_write(data), uncached_read(data)
    rc_lo, rc_hi = cached_dram_read(data)

    def f(t: float, w: float, ru: float, rc: float) -> float:
        return (1 / t - 1 / w) / (1 / ru - 1 / rc)

    ends = [f(t, w, ru, rc) for t in (total.low, total.high) for w in (write.low, write.high)
            for ru in (unc.low, unc.high) for rc in (rc_lo, rc_hi)]
    lo, hi = min(ends), max(ends)
    return Prediction(
        "readback-crossover", "share read back where zero-copy stops paying", 100 * lo, 100 * hi, "%",
        f"zero-copy pays while the share f of the buffer the CPU reads back is below (1/total - 1/write) / "
        f"(1/read_uncached - 1/read_cached), per byte, with total {total.band_text()}, write "
        f"{write.band_text()}, uncached read {unc.band_text()} and cached read beyond the L2 "
        f"{rc_lo:.3f}-{rc_hi:.3f} GB/s (cpp-memory-performance): f = {100 * lo:.1f} % to {100 * hi:.1f} %.",
        _unique(total.sources + write.sources + unc.sources + ("data/cpp-memory-performance-pi3b",)), BEYOND_L2,
        test="time a zero-copy write plus a read of part of the buffer, against fill + copy + the same read")


def pi3b_predictions(data: pd.DataFrame | None = None) -> dict[str, Prediction]:
    """Every by-size prediction for a Pi 3B, by key."""
    d = _data(data)
    preds = [dram_fill(d), zerocopy_write(d), standard_copy(d), standard_total(d), uncached_read(d)]
    return {p.key: p for p in preds}


def predictions_table(preds: Mapping[str, Prediction]) -> pd.DataFrame:
    """One row per prediction: what, band, sizes, what a live run tests (for a notebook's table)."""
    from ..units import format_size

    return pd.DataFrame([{"prediction (not a measurement)": p.what, "band": p.band_text(),
                          "sizes": (f"{format_size(p.sizes[0])} to {format_size(p.sizes[1])}" if p.sizes else ""),
                          "a live run on a Pi 3B tests": p.test} for p in preds.values()])


# --- the cache line: a sum with a growing stride ----------------------------------------

#: The Cortex-A53's L1D line.
LINE_BYTES = 64
LINE_SOURCE = "Linux arch/arm/boot/dts/broadcom/bcm2837.dtsi (L1D: 64-byte lines)"


def in_cache_read_ns(data: pd.DataFrame | None = None,
                     recording: str = "cpp-memory-performance-pi3b") -> float:
    """The published sum loop's fastest time per 8-byte element inside the caches (the loop's own pace), ns."""
    d = _data(data)
    rows = d[(d["recording"] == recording) & (d["benchmark"] == "read-host") & (d["kernel"] == "c-gcc")
             & (d["size_bytes"] >= 1024) & (d["size_bytes"] <= PI3B.l2_bytes // 2)]
    if rows.empty:
        raise UsageError(f"data/{recording} has no read-host rows inside the caches")
    return float(8 / rows["gb_per_s"].max())


def line_time(data: pd.DataFrame | None = None) -> Prediction:
    """The time to bring one 64-byte line from DRAM when a loop streams through memory (ns)."""
    rc_lo, _rc_hi = cached_dram_read(data)
    peak = PI3B.peak_bytes_per_s / 1e9
    lo, hi = LINE_BYTES / peak, LINE_BYTES / rc_lo
    return Prediction(
        "line-time", "time per 64-byte line from DRAM", lo, hi, "ns",
        f"a line is {LINE_BYTES} B; at the SDRAM's peak {peak:.1f} GB/s it takes {LINE_BYTES} / {peak:.1f} = "
        f"{lo:.1f} ns, at the slowest published sequential sum beyond the L2 ({rc_lo:.3f} GB/s, "
        f"cpp-memory-performance) {LINE_BYTES} / {rc_lo:.3f} = {hi:.1f} ns. A stride of s bytes uses 8 of "
        f"every s bytes fetched, so each 8-byte word costs the line time x s / {LINE_BYTES} (never less than "
        f"the loop's own pace in the caches), and a whole line from s = {LINE_BYTES} B up.",
        (LINE_SOURCE, "data/cpp-memory-performance-pi3b (github.com/anetczuk/cpp-memory-performance)",
         PI3B.peak_source),
        None, "read-host", "read",
        f"a live stride sweep beyond the L2 should rise with the stride and level off at {LINE_BYTES} B: "
        f"that is where each word read costs a whole line; a prefetcher can lower the band, not move the knee")


def stride_read_ns(data: pd.DataFrame | None, strides: Any) -> tuple[Any, Any]:
    """(fastest, slowest) predicted ns per 8-byte word read of a sum with ``strides`` (bytes), beyond the L2."""
    import numpy as np

    t, loop = line_time(data), in_cache_read_ns(data)
    s = np.minimum(np.asarray(strides, dtype=float), LINE_BYTES) / LINE_BYTES
    return np.maximum(loop, t.low * s), np.maximum(loop, t.high * s)


# --- 06: the three paths side by side -----------------------------------------------------

def three_paths(data: pd.DataFrame | None = None) -> pd.DataFrame:
    """The three ways to fill memory, side by side: bus bytes, who caches, the cost of reading back, and the
    original lesson's Pi 3B time at 64 MiB (published). Every number is read from data/ or a prediction here."""
    d = _data(data)
    lesson = d[d["recording"] == "original-lesson-pi3b"].set_index(["benchmark", "phase"])

    def row(b: str, p: str) -> pd.Series:
        if (b, p) not in lesson.index:
            raise UsageError(f"data/original-lesson-pi3b has no {b}/{p} row")
        return lesson.loc[(b, p)]

    base, total, zc = row("baseline", "fill"), row("standard", "total"), row("zerocopy", "write")
    rc_lo, rc_hi = cached_dram_read(d)
    unc = uncached_read(d)
    qmkl = published(d, "qmkl-pi3", "read-direct", "read")
    cached = f"cached read, {rc_lo:.2f}-{rc_hi:.2f} GB/s beyond the L2 (published sum)"
    return pd.DataFrame([
        {"path": "cached fill (the baseline)", "the GPU can read the result": "no",
         "bus bytes per byte": base["bus_bytes"] / base["bytes"],
         "cached for the ARM": "yes", "reading it back from the CPU": cached,
         "Pi 3B, 64 MiB, ms (original lesson)": base["seconds"] * 1e3},
        {"path": "fill, then copy (standard)", "the GPU can read the result": "yes",
         "bus bytes per byte": total["bus_bytes"] / total["bytes"],
         "cached for the ARM": "the host buffer yes, the GPU buffer no",
         "reading it back from the CPU": cached + ", from the host buffer",
         "Pi 3B, 64 MiB, ms (original lesson)": total["seconds"] * 1e3},
        {"path": "direct write (zero-copy)", "the GPU can read the result": "yes",
         "bus bytes per byte": zc["bus_bytes"] / zc["bytes"],
         "cached for the ARM": "no (mapped uncached)",
         "reading it back from the CPU": (f"uncached read, {unc.band_text()} predicted; qmkl measured "
                                          f"{qmkl.value * 1e3:.0f} MB/s"),
         "Pi 3B, 64 MiB, ms (original lesson)": zc["seconds"] * 1e3},
    ])
