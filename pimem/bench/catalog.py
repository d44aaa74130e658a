"""Every benchmark, declared once: what it times, in which memory, with which phases, and how it is drawn.

Each row says all there is to say about one benchmark; everything else derives from this table:
what `pimem bench`/`sweep` can run and how (`op`), the benchmark names and phases a recording may
hold and the cache mode its flags must give (pimem.bench.data), each benchmark's colour and marker
in every figure (pimem.course.plots), and the table of benchmarks in data/README.md (written by
`pimem render --tables`). Adding a benchmark is one row here (and, for a new kind of operation, its code in
benchmarks.py), then `pimem render --tables`.

This module imports nothing heavy: the recording format and the plots read it without numpy's timing code.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..firmware.memflags import MemFlag

# Okabe & Ito's colour-blind-safe palette. The colour says which memory the CPU works on
# (cached host memory, a GPU buffer's DIRECT / COHERENT / L1_NONALLOCATING alias, the
# standard path's fill-then-copy); the marker says what it does (circle: host fill, square:
# fill then copy, diamond: direct write, triangle up: read, triangle down: pointer chase,
# plus and arrows: copy). The original lesson's three are blue, orange and green.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7",
}
_HOST, _STANDARD, _DIRECT = OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["bluish green"]
_COHERENT, _L1NA = OKABE_ITO["reddish purple"], OKABE_ITO["vermillion"]

#: What a run of a benchmark does ("" for a benchmark only published figures hold).
OPS = ("fill", "fill+copy", "read", "chase", "")

#: Bus bytes per byte counted: a copy reads and writes; standard's total is its fill (once) plus its copy (twice).
BUS_FACTOR: dict[str, int] = {"fill": 1, "write": 1, "read": 1, "copy": 2, "total": 3, "latency": 1}


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark."""

    name: str
    title: str
    phases: tuple[str, ...]
    flags: MemFlag | None   # the cache mode of its GPU buffer (flags & 0xC); None: host memory only
    op: str                 # what a run does (OPS); "" if only published figures have it
    what: str               # one sentence: what is timed (data/README.md's table)
    colour: str             # in every figure
    marker: str

    @property
    def runnable(self) -> bool:
        return bool(self.op)


def _spec(name: str, title: str, phases: str, flags: MemFlag | None, op: str, what: str, style: tuple[str, str]
          ) -> BenchmarkSpec:
    return BenchmarkSpec(name, title, tuple(phases.split()), flags, op, what, *style)


D, C, L = MemFlag.DIRECT, MemFlag.COHERENT, MemFlag.L1_NONALLOCATING
CATALOG: dict[str, BenchmarkSpec] = {s.name: s for s in [
    _spec("baseline", "Baseline (cached host fill)", "fill", None, "fill",
          "the CPU fills a cached host buffer", (_HOST, "o")),
    _spec("standard", "Standard (fill, then copy)", "fill copy total", C, "fill+copy",
          "fill a cached host buffer, then copy it into a COHERENT GPU buffer (uncached for the ARM); "
          "total = both", (_STANDARD, "s")),
    _spec("zerocopy", "Zero-copy (direct write)", "write", D, "fill",
          "the CPU fills a DIRECT (uncached) GPU buffer directly", (_DIRECT, "D")),
    _spec("write-coherent", "Direct write, COHERENT", "write", C, "fill",
          "the CPU fills a COHERENT GPU buffer directly (predicted: as fast as DIRECT; the ARM maps both "
          "uncached)", (_COHERENT, "D")),
    _spec("write-l1nonalloc", "Direct write, L1_NONALLOCATING", "write", L, "fill",
          "the CPU fills an L1_NONALLOCATING GPU buffer directly (predicted: as fast as DIRECT)", (_L1NA, "D")),
    _spec("read-host", "Read, cached host", "read", None, "read",
          "the CPU reads every byte of a cached host buffer", (_HOST, "^")),
    _spec("read-direct", "Read, DIRECT", "read", D, "read",
          "the CPU reads every byte of a DIRECT (uncached) GPU buffer", (_DIRECT, "^")),
    _spec("read-coherent", "Read, COHERENT", "read", C, "read",
          "the CPU reads every byte of a COHERENT GPU buffer (predicted: as slow as DIRECT)", (_COHERENT, "^")),
    _spec("read-l1nonalloc", "Read, L1_NONALLOCATING", "read", L, "read",
          "the CPU reads every byte of an L1_NONALLOCATING GPU buffer (predicted: as slow as DIRECT)", (_L1NA, "^")),
    _spec("host-copy", "Copy, host to host", "copy", None, "",
          "memcpy host to host (published figures)", (_HOST, "P")),
    _spec("copy-to-direct", "Copy, host to DIRECT", "copy", D, "",
          "memcpy host to a DIRECT buffer (published figures)", (_DIRECT, ">")),
    _spec("copy-from-direct", "Copy, DIRECT to host", "copy", D, "",
          "memcpy a DIRECT buffer to host (published figures)", (_DIRECT, "<")),
    _spec("latency-single", "Latency, single random read", "latency", None, "",
          "one random read at a time in a block of size_bytes (tinymembench); seconds is the time of one access "
          "beyond an L1 hit, and the row has no bandwidth", (OKABE_ITO["black"], "X")),
    _spec("latency-dual", "Latency, dual random read", "latency", None, "",
          "two independent random reads at a time (tinymembench's \"dual random read\"), likewise",
          (OKABE_ITO["sky blue"], "X")),
    _spec("latency-chase", "Latency, dependent chase (published)", "latency", None, "",
          "one dependent load at a time through a block of size_bytes of cached host memory, each load's address "
          "read by the load before (published figures: ramlat's 1xPTR, a fixed bit-reversed walk that visits every "
          "64-byte line of the block before it comes back to one, never two loads in a row in one line or one 4 KiB "
          "page); seconds is the whole time of one access (an L1 hit not subtracted, unlike latency-single), and "
          "the row has no bandwidth", (OKABE_ITO["black"], "v")),
    _spec("latency-host", "Latency, cached host", "latency", None, "chase",
          "pimem's pointer chase (compiled core): one dependent load at a time along a random cycle through the "
          "block's 64-byte slots, in a cached host buffer; seconds is the whole time of one access (an L1 hit not "
          "subtracted), reps the loads per timed region; no bandwidth", (_HOST, "v")),
    _spec("latency-direct", "Latency, DIRECT", "latency", D, "chase",
          "the same through a DIRECT GPU buffer (every load goes to DRAM)", (_DIRECT, "v")),
    _spec("latency-coherent", "Latency, COHERENT", "latency", C, "chase",
          "the same through a COHERENT GPU buffer (predicted: as slow as DIRECT)", (_COHERENT, "v")),
    _spec("latency-l1nonalloc", "Latency, L1_NONALLOCATING", "latency", L, "chase",
          "the same through an L1_NONALLOCATING GPU buffer (predicted: as slow as DIRECT)", (_L1NA, "v")),
]}
del D, C, L

#: The phases any benchmark may have, in the catalog's order.
PHASES: tuple[str, ...] = tuple(dict.fromkeys(p for s in CATALOG.values() for p in s.phases))


def markdown_table() -> str:
    """The benchmarks as data/README.md shows them (a Markdown table)."""
    rows = ["| benchmark | phases | what is timed | GPU buffer (`flags & 0xC`) |", "| --- | --- | --- | --- |"]
    for s in CATALOG.values():
        buffer = s.flags.name if s.flags is not None else "none"
        rows.append(f"| `{s.name}` | {', '.join(s.phases)} | {s.what} | {buffer} |")
    return "\n".join(rows) + "\n"
