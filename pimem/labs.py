"""Self-checks and data helpers for the lab notebooks (notebooks/labs/).

Every ``check_*`` takes the student's answer (usually a function), tries it
on FRESH cases (random addresses, other sizes, other clocks, made-up cost
figures), and returns a :class:`CheckResult`: ``.passed``, and a message
that says what is wrong and why. A check never raises for a wrong answer,
and never shows a bare traceback: an exception from the student's code is
caught and explained; ``NotImplementedError`` means "not answered yet".

The helpers ``fill_measurements``, ``crossover_frame`` and ``read_rates``
give each lab its numbers: measured now on a Raspberry Pi (live), or taken
from data/ with their provenance (recorded). They never invent a figure.
"""
from __future__ import annotations

import contextlib
import html
import math
import random
import struct
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import pandas as pd

from .memflags import MemFlag
from .protocol import RESPONSE_PARSE_ERROR, RESPONSE_SUCCESS, TAG_RESPONSE, Tag, build_request

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
ALIAS_MASK = 0xC0000000

# Raspberry Pi 3B figures (FACTS section 3): SDRAM clock and bus width,
# and the caches from bcm2837.dtsi.
PI3B_SDRAM_MHZ = 450
PI3B_BUS_BITS = 32
PI3B_L1D = 32 * KiB
PI3B_L2 = 512 * KiB


# --- the result object ------------------------------------------------------

@dataclass
class CheckResult:
    """What a check found. ``passed`` is the verdict; the rest is for people."""

    title: str
    passed: bool
    answered: bool = True
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.answered:
            return "not answered yet"
        return "passed" if self.passed else "not yet right"

    def lines(self) -> list[str]:
        return [f"{self.title}: {self.status}"] + [f"- {p}" for p in self.problems] + \
            [f"- {n}" for n in self.notes]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        mark = {"passed": "✅", "not yet right": "❌", "not answered yet": "✏️"}[self.status]
        body = "\n".join(f"- {p}" for p in self.problems + self.notes)
        return f"{mark} **{self.title}: {self.status}**\n\n{body}\n"

    def _repr_html_(self) -> str:
        colour = {"passed": "#2e7d32", "not yet right": "#c62828", "not answered yet": "#f9a825"}[self.status]
        items = "".join(f"<li>{html.escape(p)}</li>" for p in self.problems + self.notes)
        return (f'<div style="border-left:6px solid {colour};padding:6px 10px;margin:4px 0">'
                f"<b>{html.escape(self.title)}: {self.status}</b>"
                + (f"<ul style='margin:4px 0'>{items}</ul>" if items else "") + "</div>")


class _NotAnswered(Exception):
    pass


class _Raised(Exception):
    pass


def _call(fn: Callable[..., Any], what: str, *args: Any) -> Any:
    """Run the student's code; turn its exceptions into explanations."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise _NotAnswered() from None
    except Exception as e:  # noqa: BLE001 - any error in student code is explained, never shown raw
        raise _Raised(f"{what} raised {type(e).__name__}: {e}") from None


class _Report:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.notes: list[str] = []

    def fail(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)


def _run_check(title: str, fn: Any, body: Callable[[_Report], None], *, need_callable: bool = True) -> CheckResult:
    name = getattr(fn, "__name__", "your answer")
    if fn is None or fn is Ellipsis:
        return CheckResult(title, False, False, [f"{name}: not answered yet."])
    if need_callable and not callable(fn):
        return CheckResult(title, False, True, [f"expected a function, got {type(fn).__name__} {fn!r}: "
                                                 "define it with def and pass the function itself (no parentheses)"])
    rep = _Report()
    try:
        body(rep)
    except _NotAnswered:
        return CheckResult(title, False, False,
                           [f"{name}: not answered yet (it still raises NotImplementedError): replace that line "
                            "with your code, run the cell, then this check again."])
    except _Raised as e:
        return CheckResult(title, False, True, [f"{e} - read the message: it usually names the line to fix."])
    return CheckResult(title, not rep.problems, True, rep.problems, rep.notes if not rep.problems else [])


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or "your function"


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _close(a: float, b: float, rel: float) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0)


def _ratio_hint(got: float, want: float, hints: dict[float, str]) -> str | None:
    """A known mistake recognised by the ratio of the answer to the right one."""
    if not want or not isinstance(got, (int, float)) or got == 0 or not math.isfinite(got):
        return None
    r = got / want
    for factor, text in hints.items():
        if _close(r, factor, 2e-3):
            return text
    return None


def _number_verdict(got: Any, want: float, hints: dict[float, str]) -> tuple[bool, str | None]:
    """(right, hint): a numeric answer within 0.1 % of want, else the likeliest slip, if one fits."""
    if not isinstance(got, (int, float)):
        return False, None
    if _close(float(got), want, 1e-3):
        return True, None
    return False, _ratio_hint(got, want, hints)


def _rng(seed: int | None) -> random.Random:
    return random.Random(seed)


def attempt(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a student function in a notebook; None (and a note) if not answered or failing.

    So a lab runs top to bottom before every exercise is done.
    """
    try:
        return fn(*args)
    except NotImplementedError:
        print(f"({getattr(fn, '__name__', 'this')} is not answered yet: its result is left out below)")
    except Exception as e:  # noqa: BLE001 - show one line, not a traceback, in the middle of a lab
        print(f"({getattr(fn, '__name__', 'this')} raised {type(e).__name__}: {e}; run its check for help)")
    return None


# --- lab 1: addresses -------------------------------------------------------

def _random_bus(rng: random.Random, alias: int) -> int:
    # Physical addresses below 1 GiB, page aligned, as the firmware hands out.
    return (alias << 28) | (rng.randrange(0, 1 << 30) & ~0xFFF)


def _fresh_buses(rng: random.Random) -> list[int]:
    return [0xFAAA8000, 0xBAAA8000] + [_random_bus(rng, a) for a in (0x0, 0x4, 0x8, 0xC, 0xC, 0x8)]


def check_alias(fn: Callable[[int], int], *, seed: int | None = None) -> CheckResult:
    """fn(bus) must return the alias as its hex digit: 0x0, 0x4, 0x8 or 0xC."""
    def body(rep: _Report) -> None:
        for bus in _fresh_buses(_rng(seed)):
            want = (bus >> 28) & 0xC
            got = _call(fn, f"{_name(fn)}(0x{bus:08X})", bus)
            if _is_int(got) and got == want:
                continue
            if not _is_int(got):
                rep.fail(f"for 0x{bus:08X} you returned {got!r}; return a number such as 0xC")
            elif got == bus >> 30:
                rep.fail(f"for 0x{bus:08X} you returned {got}, the raw value of bits 31..30. Aliases are named by "
                         "the top hex digit of their base address (0xC0000000 is 'the 0xC alias'); shift the two bits "
                         "back into that digit: (bus >> 30) << 2. Printing the raw value is how a program ends up "
                         "saying 'Alias: 0x3' for a DIRECT address.")
            elif got == bus >> 28:
                rep.fail(f"for 0x{bus:08X} you returned 0x{got:X}, the whole top hex digit; only bits 31..30 pick "
                         "the alias, bits 29..28 are part of the physical address. Mask them off: (bus >> 28) & 0xC.")
            elif got == bus & ALIAS_MASK:
                rep.fail(f"for 0x{bus:08X} you returned 0x{got:08X}: the alias bits in place. Shift them down to "
                         "one hex digit (>> 28).")
            else:
                rep.fail(f"for 0x{bus:08X} you returned 0x{got:X}; the alias is 0x{want:X} (bits 31..30 of the address).")
        rep.notes.append("right on addresses of every alias, including 0xFAAA8000 (DIRECT) and 0xBAAA8000 (COHERENT)")
    return _run_check("Alias of a bus address", fn, body)


def check_bus_to_phys(fn: Callable[[int], int], *, seed: int | None = None) -> CheckResult:
    """fn(bus) must return the ARM physical address: the alias bits cleared."""
    def body(rep: _Report) -> None:
        for bus in _fresh_buses(_rng(seed)):
            want = bus & ~ALIAS_MASK
            got = _call(fn, f"{_name(fn)}(0x{bus:08X})", bus)
            if _is_int(got) and got == want:
                continue
            a = (bus >> 28) & 0xC
            if not _is_int(got):
                rep.fail(f"for 0x{bus:08X} you returned {got!r}; return an int")
            elif got in (bus - ALIAS_MASK, (bus - ALIAS_MASK) & 0xFFFFFFFF):
                rep.fail(f"subtracting 0xC0000000 is right only for the 0xC alias: 0x{bus:08X} (alias 0x{a:X}) gives "
                         f"{got:#x}, not 0x{want:08X}. The firmware hands out other aliases too (COHERENT memory "
                         "is at 0x8...); clear the two alias bits instead: bus & ~0xC0000000.")
            elif got == bus | ALIAS_MASK:
                rep.fail(f"for 0x{bus:08X} you returned 0x{got:08X}: OR sets the alias bits instead of clearing them, "
                         "so you get a bus address of the 0xC alias back. Clear them: AND with the complement, "
                         "bus & ~0xC0000000.")
            elif got == bus ^ ALIAS_MASK:
                rep.fail(f"XOR flips the alias bits: right for the 0xC alias only; 0x{bus:08X} (alias 0x{a:X}) gives "
                         f"0x{got:08X}. Clear them instead: bus & ~0xC0000000.")
            elif got == bus & 0x0FFFFFFF:
                rep.fail(f"for 0x{bus:08X} you returned 0x{got:08X}: masking with 0x0FFFFFFF also clears bits 29..28, "
                         "which belong to the physical address, so the result can be hundreds of MiB lower, in "
                         "memory Linux uses. Clear only bits 31..30.")
            elif got == bus & ALIAS_MASK:
                rep.fail(f"for 0x{bus:08X} you returned 0x{got:08X}: you kept the alias and dropped the address; "
                         "invert the mask: bus & ~0xC0000000.")
            elif got == bus:
                rep.fail(f"for 0x{bus:08X} you returned it unchanged; the physical address has bits 31..30 cleared.")
            else:
                rep.fail(f"for 0x{bus:08X} you returned 0x{got:X}; the physical address is 0x{want:08X}.")
        rep.notes.append("right for all four aliases: the conversion clears bits 31..30 and keeps every other bit")
    return _run_check("bus_to_phys", fn, body)


def _region(phys: int, arm_size: int, gpu_size: int) -> str:
    if phys < arm_size:
        return "ARM"
    if phys < arm_size + gpu_size:
        return "GPU"
    return "none"


def check_region(fn: Callable[[int, int, int], str], *, seed: int | None = None) -> CheckResult:
    """fn(phys, arm_size, gpu_size) -> 'ARM', 'GPU' or 'none' (beyond both)."""
    def body(rep: _Report) -> None:
        rng = _rng(seed)
        for gpu_mib in rng.sample([64, 76, 128, 192, 256], 3):
            gpu = gpu_mib * MiB
            arm = GiB - gpu
            cases = [rng.randrange(0, arm), arm - 1, arm, rng.randrange(arm, GiB), GiB + rng.randrange(0, GiB)]
            for phys in cases:
                want = _region(phys, arm, gpu)
                got = _call(fn, f"{_name(fn)}(0x{phys:08X}, {arm:#x}, {gpu:#x})", phys, arm, gpu)
                if isinstance(got, str) and got.strip().upper() == want.upper():
                    continue
                where = f"0x{phys:08X} with ARM memory 0..0x{arm - 1:08X} and GPU memory 0x{arm:08X}..0x{GiB - 1:08X}"
                if phys in (arm - 1, arm) and isinstance(got, str):
                    rep.fail(f"{where}: you said {got!r}, the answer is {want!r}. Mind the boundary: the GPU part "
                             "starts at arm_size itself; ranges include their start and exclude their end.")
                else:
                    rep.fail(f"{where}: you said {got!r}, the answer is {want!r}.")
        rep.notes.append("right for three gpu_mem splits, including both sides of the boundary")
    return _run_check("Which memory a physical address is in", fn, body)


#: Lab 1's question about a wrong conversion: letter -> (right?, why).
WRONG_CONVERSION_OPTIONS: dict[str, tuple[bool, str]] = {
    "a": (False, "an alias is another view of the same physical address, but this mask changed the address "
                 "itself: 0xBAAA8000 & 0x0FFFFFFF = 0x0AAA8000, 768 MiB below 0x3AAA8000"),
    "b": (False, "the low 12 bits are untouched, so 0x0AAA8000 is page aligned and mmap accepts it"),
    "c": (False, "half of it: that is what happens on a kernel without CONFIG_STRICT_DEVMEM (raspberrypi/firmware#423 "
                 "shows a wrong conversion hanging one). With it (the arm64 default, and 64-bit Raspberry Pi OS), "
                 "/dev/mem refuses to map System RAM and mmap fails with EPERM: the answer depends on the kernel"),
    "d": (False, "the GPU never sees these writes: they land 768 MiB away from its buffer, in Linux's memory"),
    "e": (True, "0x0AAA8000 lies in the memory Linux manages. A kernel built with CONFIG_STRICT_DEVMEM (the arm64 "
                "default, and 64-bit Raspberry Pi OS) refuses to map System RAM through /dev/mem (drivers/char/mem.c, "
                "range_is_allowed), so mmap fails with EPERM; one without it maps the memory, and the program reads "
                "and writes whatever the kernel or another process keeps there (raspberrypi/firmware#423: a hang)"),
}


def check_wrong_conversion(fn: Callable[[], str]) -> CheckResult:
    """fn() returns the letter of the answer to lab 1's wrong-conversion question."""
    def body(rep: _Report) -> None:
        got = _call(fn, f"{_name(fn)}()")
        letter = got.strip().lower() if isinstance(got, str) else None
        if letter not in WRONG_CONVERSION_OPTIONS:
            rep.fail(f"answer with one letter, 'a' to 'e'; you gave {got!r}")
            return
        right, why = WRONG_CONVERSION_OPTIONS[letter]
        if right:
            rep.notes.append(f"({letter}) is right: {why}.")
        else:
            rep.fail(f"({letter}) is not it: {why}.")
    return _run_check("What a wrong conversion does", fn, body)


# --- lab 2: predict, then measure --------------------------------------------

def check_peak_bandwidth(fn: Callable[[float, int], float], *, seed: int | None = None) -> CheckResult:
    """fn(sdram_mhz, bus_bits) -> peak bandwidth in bytes per second (DDR: two transfers per clock)."""
    hints = {
        0.5: "half the right value: DDR memory moves data on both clock edges, two transfers per clock",
        8.0: "8 times too much: the bus width is in bits; divide by 8 for bytes",
        1e9 / 2**30: "you converted to GiB (2^30); the answer is in bytes per second (or GB = 10^9 bytes)",
        2**20 / 1e6: "a MHz is 10^6 Hz, not 2^20",
        1e-9: "you returned GB/s; return bytes per second (3.6 GB/s is 3.6e9)",
        2**-30: "you returned GiB/s (bytes / 2^30); return bytes per second, and note GB = 10^9 B, GiB = 2^30 B",
        1e-6: "you returned MB/s; return bytes per second",
    }

    def body(rep: _Report) -> None:
        rng = _rng(seed)
        cases = [(PI3B_SDRAM_MHZ, PI3B_BUS_BITS), (500, 32)] + \
                [(rng.randrange(200, 1100), rng.choice([16, 32, 64])) for _ in range(4)]
        for mhz, bits in cases:
            want = mhz * 1e6 * 2 * bits / 8
            got = _call(fn, f"{_name(fn)}({mhz}, {bits})", mhz, bits)
            right, hint = _number_verdict(got, want, hints)
            if right:
                continue
            rep.fail(f"{mhz} MHz on a {bits}-bit bus: you returned {got!r}, the peak is {want:.4g} B/s"
                     + (f" ({hint})" if hint else " (clock x 2 transfers x bytes per transfer)"))
        rep.notes.append("right: 450 MHz x 2 x 4 B = 3.6 GB/s on a Pi 3B, 4.0 GB/s at the 3B+'s 500 MHz")
    return _run_check("Peak DRAM bandwidth", fn, body)


def check_fill_time(fn: Callable[[int, float], float], *, seed: int | None = None) -> CheckResult:
    """fn(size_bytes, bytes_per_second) -> seconds at that bandwidth."""
    hints = {
        1e3: "that is milliseconds; return seconds",
        1e6: "that is microseconds; return seconds",
        1e9 / 2**30: "you mixed units: a GB is 10^9 bytes, a GiB 2^30; dividing bytes by 2^30 and the bandwidth "
                     "by 10^9 makes the time 7% too short. Keep both in bytes",
        2**30 / 1e9: "you mixed GB and GiB: keep size and bandwidth in bytes",
        1e6 / 2**20: "you mixed MB (10^6) and MiB (2^20): keep size and bandwidth in bytes",
        2**20 / 1e6: "you mixed MB (10^6) and MiB (2^20): keep size and bandwidth in bytes",
    }

    def body(rep: _Report) -> None:
        rng = _rng(seed)
        cases = [(64 * MiB, 3.6e9), (256 * KiB, 3.6e9)] + \
                [(rng.randrange(1, 512) * rng.choice([KiB, MiB]), rng.uniform(0.5, 20) * 1e9) for _ in range(4)]
        for size, bw in cases:
            want = size / bw
            got = _call(fn, f"{_name(fn)}({size}, {bw:.4g})", size, bw)
            right, hint = _number_verdict(got, want, hints)
            if right:
                continue
            if hint is None and isinstance(got, (int, float)) and got and _close(float(got), bw / size, 1e-3):
                hint = "upside down: time = bytes / (bytes per second)"
            rep.fail(f"{size} bytes at {bw:.4g} B/s: you returned {got!r}, the time is {want:.6g} s"
                     + (f" ({hint})" if hint else ""))
        rep.notes.append("right: 64 MiB at 3.6 GB/s takes 18.6 ms at the very least; 256 KiB, 72.8 µs if it went to DRAM")
    return _run_check("Time to fill at a bandwidth", fn, body)


def _cache_level(size: int, l1: int, l2: int) -> str:
    return "L1" if size <= l1 else "L2" if size <= l2 else "DRAM"


def check_cache_level(fn: Callable[[int, int, int], str], *, seed: int | None = None) -> CheckResult:
    """fn(size, l1, l2) -> 'L1', 'L2' or 'DRAM': the nearest level a buffer of that size fits in."""
    def body(rep: _Report) -> None:
        rng = _rng(seed)
        cases = [(256 * KiB, PI3B_L1D, PI3B_L2), (64 * MiB, PI3B_L1D, PI3B_L2), (8 * KiB, PI3B_L1D, PI3B_L2)]
        for _ in range(3):
            l1 = rng.choice([16, 32, 48, 64]) * KiB
            l2 = rng.choice([256, 512, 1024, 2048]) * KiB
            # Away from the boundaries: a buffer the size of the cache is a judgement call.
            cases += [(int(l1 * rng.uniform(0.1, 0.8)), l1, l2), (int(rng.uniform(1.3 * l1, 0.8 * l2)), l1, l2),
                      (int(l2 * rng.uniform(1.5, 100)), l1, l2)]
        for size, l1, l2 in cases:
            want = _cache_level(size, l1, l2)
            got = _call(fn, f"{_name(fn)}({size}, {l1}, {l2})", size, l1, l2)
            if isinstance(got, str) and got.strip().upper() == want:
                continue
            extra = ""
            if want == "L1" and got == "L2":
                extra = " A buffer that fits in L1 also fits in L2, but it is served from the nearest: test L1 first."
            elif want == "DRAM":
                extra = " Bigger than the L2, so every pass streams through DRAM."
            rep.fail(f"{size} bytes with L1 {l1 // KiB} KiB and L2 {l2 // KiB} KiB: you said {got!r}, "
                     f"the answer is {want!r}.{extra}")
        rep.notes.append("right: on a Pi 3B a 256 KiB buffer fits in the L2 (512 KiB), 64 MiB fits nowhere")
    return _run_check("Which cache a buffer fits in", fn, body)


def check_efficiency(fn: Callable[[int, float, float], float], *, seed: int | None = None) -> CheckResult:
    """fn(size_bytes, seconds, peak_bytes_per_s) -> measured bandwidth / peak, as a fraction."""
    hints = {
        100.0: "that is a percentage; return the fraction (0.37, not 37)",
        1e9 / 2**30: "you measured in GiB/s against a peak in GB/s: keep both in bytes per second",
        2**30 / 1e9: "you mixed GB and GiB: keep both in bytes per second",
    }

    def body(rep: _Report) -> None:
        rng = _rng(seed)
        cases = [(64 * MiB, 0.05016, 3.6e9)] + \
                [(rng.randrange(1, 256) * MiB, rng.uniform(0.001, 0.2), rng.uniform(1, 10) * 1e9) for _ in range(4)]
        for size, s, peak in cases:
            want = size / s / peak
            got = _call(fn, f"{_name(fn)}({size}, {s:.5g}, {peak:.4g})", size, s, peak)
            right, hint = _number_verdict(got, want, hints)
            if right:
                continue
            if hint is None and isinstance(got, (int, float)) and got and _close(float(got), 1 / want, 1e-3):
                hint = "upside down: efficiency = measured bandwidth / peak, at most 1 for a DRAM-bound run"
            rep.fail(f"{size} bytes in {s:.5g} s against a {peak:.4g} B/s peak: you returned {got!r}, "
                     f"the efficiency is {want:.4g}" + (f" ({hint})" if hint else ""))
        rep.notes.append("right: the original lesson's 64 MiB fill in 50.16 ms is 1.34 GB/s, 37% of 3.6 GB/s")
    return _run_check("Efficiency against the peak", fn, body)


# --- lab 3: the crossover ------------------------------------------------------

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
                    seed: int | None = None) -> CheckResult:
    """fn(frame) -> the crossover size in bytes (or None), tried on made-up cases and on ``data``."""
    def body(rep: _Report) -> None:
        rng = _rng(seed)
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
            got = _call(fn, f"{_name(fn)}(<{label}>)", frame.copy())
            if _within_power_of_two(got, want):
                continue
            sizes, zc, std = _medians(frame)
            fill = frame[(frame.benchmark == "standard") & (frame.phase == "fill")]
            if want is None:
                rep.fail(f"{label}: you returned {got!r}, but zero-copy is slower even at the largest size, so "
                         "there is no crossover: return None.")
            elif got is None:
                rep.fail(f"{label}: you returned None, but zero-copy is faster from {want} bytes on.")
            elif _is_int_like(got) and sizes and int(got) == sizes[0] and want != sizes[0]:
                rep.fail(f"{label}: you returned {got}, the first size where zero-copy wins; but it loses again "
                         f"above it. The crossover is where it starts winning for good: {want} bytes.")
            elif _is_int_like(got) and _within_power_of_two(int(got) * KiB, want):
                rep.fail(f"{label}: you returned {got}, which looks like KiB; return bytes ({want}).")
            elif _is_int_like(got) and not fill.empty and _within_power_of_two(got, _vs_fill(frame)):
                rep.fail(f"{label}: you returned {got}: that is where zero-copy beats standard's fill alone. "
                         f"The standard path is fill + copy: compare with its 'total' (crossover {want} bytes).")
            else:
                rep.fail(f"{label}: you returned {got!r}; the data says {want} bytes (within a factor 2 is fine).")
        rep.notes.append("right on made-up cases (a stray small-size win, no crossover either way) and on the lab's data")
    return _run_check("The crossover size", fn, body)


def _vs_fill(frame: pd.DataFrame) -> int | None:
    f = frame[(frame.benchmark == "standard") & (frame.phase == "fill")].copy()
    f["phase"] = "total"
    z = frame[(frame.benchmark == "zerocopy")]
    return crossover_size(pd.concat([f, z]))


def check_standard_in_cache(fn: Callable[[int], int], *, seed: int | None = None) -> CheckResult:
    """fn(cache_bytes) -> the largest size whose cached part of the standard path (the host buffer) fits.

    The GPU buffer takes no room in the ARM's caches: pimem maps it through /dev/mem, and the
    kernel maps such memory non-cached whatever the flag (phys_mem_access_prot(); an inference
    from the kernel source). So the answer is the whole cache, and the old "half the cache"
    (both buffers cached) is rejected with the reason.
    """
    def body(rep: _Report) -> None:
        rng = _rng(seed)
        for cache in [PI3B_L2, PI3B_L1D] + [rng.choice([48, 96, 768, 1024, 1536, 4096]) * KiB for _ in range(3)]:
            want = cache
            got = _call(fn, f"{_name(fn)}({cache})", cache)
            if _is_int_like(got) and abs(int(got) - want) <= 64:  # a cache line either way
                continue
            extra = (" Half the cache would be right if both buffers were cached, but the GPU buffer is mapped "
                     "through /dev/mem as non-cached memory (whatever its flag; inferred from the kernel's "
                     "phys_mem_access_prot(), a live run confirms it): it takes no room in the ARM's caches, "
                     "so only the host buffer has to fit.") if _is_int_like(got) and int(got) == cache // 2 else ""
            rep.fail(f"a {cache // KiB} KiB cache: you returned {got!r}, the answer is {want} bytes.{extra}")
        rep.notes.append("right: only the host buffer is cached (up to the 512 KiB L2 on a Pi 3B); the copy's writes "
                         "into the GPU buffer go to DRAM at every size (read from the kernel source; a live sweep tests it)")
    return _run_check("Which part of the standard path a cache holds", fn, body)


# --- lab 4: a mailbox message by hand -------------------------------------------

def reference_message(tag: int, values: Sequence[int], response_words: int) -> bytes:
    """The request, as the lab defines it: what pimem.protocol.build_request makes."""
    return bytes(build_request(tag, list(values), response_words))


_WORD_NAMES = ["word 0 (the total size in bytes)", "word 1 (the request code, 0)", "word 2 (the tag id)",
               "word 3 (the value buffer size in bytes)", "word 4 (the tag's request code, 0)"]


def _word_name(i: int, n: int) -> str:
    if i < 5:
        return _WORD_NAMES[i]
    return "the last word (the end tag, 0)" if i == n - 1 else f"word {i} (value {i - 5} of the value buffer)"


def _message_problem(got: Any, want: bytes, tag: int, values: Sequence[int], rw: int) -> str | None:
    call = f"tag 0x{tag:08X}, values {list(values)}, {rw} response word(s)"
    if isinstance(got, (list, tuple)):
        return f"{call}: you returned a {type(got).__name__} of numbers; return bytes: struct.pack('<...I', *words)"
    if not isinstance(got, (bytes, bytearray, memoryview)):
        return f"{call}: you returned {type(got).__name__}; return bytes (struct.pack)"
    got = bytes(got)
    if got == want:
        return None
    n = len(want) // 4
    if len(got) == 2 * len(want):
        return (f"{call}: your message is {len(got)} bytes, twice too long: struct format 'L' or 'Q' is 8 bytes "
                "in 64-bit Python; the mailbox wants 32-bit words: '<I'")
    if len(got) == len(want) and got == struct.pack(f">{n}I", *struct.unpack(f"<{n}I", want)):
        return f"{call}: your words are big-endian; the mailbox reads little-endian words: use '<' in the format"
    if len(got) % 4:
        return f"{call}: {len(got)} bytes is not a whole number of 32-bit words"
    gw = struct.unpack(f"<{len(got) // 4}I", got)
    ww = struct.unpack(f"<{n}I", want)
    if len(gw) == n - 1 and list(gw) == list(ww[:-1]) or (len(gw) == n - 1 and gw[-1] != 0):
        return f"{call}: the message has no end tag: a 0 word must close it (and be counted in the size)"
    if len(gw) < n:
        return (f"{call}: your message has {len(gw)} words, it needs {n}: the value buffer must be big enough for "
                f"the request ({len(values)} word(s)) and the answer ({rw}), as the firmware writes in place; "
                "then the end tag")
    for i, (g, w) in enumerate(zip(gw, ww)):
        if g != w:
            why = ""
            if i == 0 and g == w // 4:
                why = " (you counted words; the size is in bytes)"
            elif i == 0:
                why = " (count every byte: header, tag header, value buffer and end tag)"
            elif i == 3 and g == w // 4:
                why = " (you counted words; the value buffer size is in bytes)"
            return f"{call}: {_word_name(i, n)} is 0x{g:08X}, it should be 0x{w:08X}{why}"
    return f"{call}: your message has {len(gw)} words, it needs {n}"


def check_build_message(fn: Callable[[int, Sequence[int], int], bytes], *, seed: int | None = None) -> CheckResult:
    """fn(tag, values, response_words) -> the request as little-endian 32-bit words."""
    def body(rep: _Report) -> None:
        rng = _rng(seed)
        cases = [(int(Tag.ALLOCATE_MEMORY), [rng.randrange(1, 4096) * 4096, 4096, int(MemFlag.DIRECT | MemFlag.ZERO)], 1),
                 (int(Tag.LOCK_MEMORY), [rng.randrange(1, 50)], 1),
                 (int(Tag.RELEASE_MEMORY), [rng.randrange(1, 50)], 1),
                 (int(Tag.VC_MEMORY), [], 2),
                 (0x00030000 | rng.randrange(0x100, 0x1000), [rng.getrandbits(32) for _ in range(2)], 3)]
        for tag, values, rw in cases:
            got = _call(fn, f"{_name(fn)}(0x{tag:08X}, {values}, {rw})", tag, list(values), rw)
            problem = _message_problem(got, reference_message(tag, values, rw), tag, values, rw)
            if problem:
                rep.fail(problem)
        rep.notes.append("byte for byte right for allocate, lock, release, a tag with no request values and an unknown tag")
    return _run_check("Building a mailbox message", fn, body)


def _answer(tag: int, values: Sequence[int], *, status: int = RESPONSE_SUCCESS, code: int | None = None,
            answered_tag: int | None = None) -> bytearray:
    """A firmware answer made by hand, good or broken in one way."""
    n = len(values)
    words = [(6 + n) * 4, status, answered_tag if answered_tag is not None else tag, n * 4,
             TAG_RESPONSE | (n * 4) if code is None else code, *values, 0]
    return bytearray(struct.pack(f"<{len(words)}I", *words))


def check_parse_answer(fn: Callable[[bytes, int, int], Sequence[int]], *, seed: int | None = None) -> CheckResult:
    """fn(buf, tag, response_words) -> the values; it must raise (any exception) for a failed answer."""
    def body(rep: _Report) -> None:
        rng = _rng(seed)
        good = [(int(Tag.ALLOCATE_MEMORY), [rng.randrange(1, 100)]),
                (int(Tag.LOCK_MEMORY), [0xC0000000 | rng.randrange(0x38000, 0x3C000) << 12]),
                (int(Tag.VC_MEMORY), [0x3B400000, 0x04C00000])]
        for tag, values in good:
            buf = _answer(tag, values)
            got = _call(fn, f"{_name(fn)}(<a good answer to 0x{tag:08X}>)", bytes(buf), tag, len(values))
            try:
                ok = got is not None and [int(v) for v in got] == list(values)
            except (TypeError, ValueError):
                ok = False
            if ok:
                continue
            words = list(struct.unpack(f"<{len(buf) // 4}I", buf))
            try:
                gl = [int(v) for v in got]
            except (TypeError, ValueError):
                gl = None
            if gl == words:
                hint = "you returned every word; return only the values (from word 5, byte 20)"
            elif gl is not None and gl[:1] == [words[4]]:
                hint = ("you started one word early, at the tag's response word; "
                        "the values start at word 5 (byte 20)")
            else:
                hint = "the values start at word 5 (byte offset 20): struct.unpack_from('<nI', buf, 20)"
            rep.fail(f"a good answer to tag 0x{tag:08X} carrying {[hex(v) for v in values]}: you returned {got!r}; {hint}")
        handle = rng.randrange(1, 100)
        bad = [("status 0x80000001 (the firmware could not parse the request)",
                _answer(int(Tag.LOCK_MEMORY), [handle], status=RESPONSE_PARSE_ERROR)),
               ("status 0x00000000 (the firmware never answered)", _answer(int(Tag.LOCK_MEMORY), [handle], status=0)),
               ("the tag's response bit clear (the tag was not answered)",
                _answer(int(Tag.LOCK_MEMORY), [handle], code=4)),
               ("response length 0 (how QEMU answers the memory tags)",
                _answer(int(Tag.LOCK_MEMORY), [handle], code=TAG_RESPONSE)),
               ("the answer is for another tag", _answer(int(Tag.LOCK_MEMORY), [handle],
                                                         answered_tag=int(Tag.UNLOCK_MEMORY)))]
        for what, buf in bad:
            try:
                got = fn(bytes(buf), int(Tag.LOCK_MEMORY), 1)
            except NotImplementedError:
                raise _NotAnswered() from None
            except Exception:  # noqa: BLE001 - raising is the right answer here
                continue
            rep.fail(f"an answer with {what}: you returned {got!r} instead of raising. The value word still holds "
                     f"what was sent ({handle}, the handle), so a caller would take the request for the answer "
                     "(hello_fft's mailbox.c returns the size as a handle this way). Check the status, the tag, "
                     "bit 31 of the response word and the length it gives, and raise if any is wrong.")
        rep.notes.append("returns the values of good answers and refuses parse errors, unanswered tags, short answers "
                         "and answers for another tag")
    return _run_check("Reading the firmware's answer", fn, body)


class _SpyTransport:
    """A transport around a private emulator that logs tags and can make one tag fail."""

    def __init__(self, directory: str, fail_tag: int | None = None) -> None:
        from .transport import EmulatorTransport

        self.inner = EmulatorTransport(directory)
        self.firmware = self.inner.firmware
        self.fail_tag = fail_tag
        self.tags: list[int] = []
        self.name = "emulator"

    def property(self, buf: bytearray) -> None:
        from .exc import MailboxError

        tag = struct.unpack_from("<I", buf, 8)[0] if len(buf) >= 12 else 0
        self.tags.append(tag)
        if tag == self.fail_tag:
            raise MailboxError("the mailbox refused the request (EINVAL) [a failure this check injected]")
        self.inner.property(buf)

    def close(self) -> None:
        self.inner.close()


class LedgeredTransport:
    """The backend's transport, with every hand-built allocation kept in pimem's ledger.

    Lab 4 sends raw messages, past GpuBuffer. On a Pi, a block a killed
    kernel left behind would then stay gone until a reboot: nothing frees
    mailbox memory when a process dies. This wrapper reads each request
    and answer: a successful lock records the block (handle, size, flags,
    bus) as GpuBuffer does: an allocate's answer is recorded at once, a
    lock adds its bus address, a release forgets it, so `python -m pimem
    cleanup` (or the next process) can take it back.
    """

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.name = backend.transport.name
        self._entries: dict[int, Any] = {}   # handle -> ledger entry

    def property(self, buf: bytearray) -> None:
        ledger = self.backend.ledger
        words = struct.unpack_from(f"<{len(buf) // 4}I", buf) if len(buf) >= 24 else ()
        tag = words[2] if words else 0
        asked = words[5:8] if len(words) >= 8 else words[5:6]
        allocating = tag == Tag.ALLOCATE_MEMORY and len(asked) == 3
        # The answer and its ledger entry, with no Ctrl-C between them; an allocate's
        # entry is made ready first, so recording its answer is one write (as in GpuBuffer).
        ready = ledger.recording(asked[0], asked[2]) if allocating else contextlib.nullcontext()
        with ledger.locked(), ready as pending:
            self.backend.transport.property(buf)
            status, code = struct.unpack_from("<I", buf, 4)[0], struct.unpack_from("<I", buf, 16)[0]
            if status != RESPONSE_SUCCESS or not code & TAG_RESPONSE or not asked:
                return
            answer = struct.unpack_from("<I", buf, 20)[0]
            if allocating and answer:
                try:
                    self._entries[answer] = pending.commit(answer)
                except BaseException:   # not recorded: give it back rather than leak it
                    with contextlib.suppress(Exception):
                        self.backend.mailbox.release(answer)
                    raise
            elif tag == Tag.LOCK_MEMORY and answer and asked[0] in self._entries:
                if self._entries[asked[0]].bus is None:
                    self._entries[asked[0]] = ledger.locked_at(self._entries[asked[0]], answer)
            elif tag == Tag.RELEASE_MEMORY:
                entry = self._entries.pop(asked[0], None)
                if entry is not None:
                    ledger.forget(entry)

    def close(self) -> None:
        """Nothing to close: the backend owns the transport."""


def ledgered_transport(backend: Any = None) -> LedgeredTransport:
    """The transport lab 4 sends its hand-built messages through (see LedgeredTransport)."""
    from .backend import get_backend

    return LedgeredTransport(backend if backend is not None else get_backend())


def check_round_trip(fn: Callable[[Any, int, int], int], *, seed: int | None = None) -> CheckResult:
    """fn(transport, size, flags) -> bus address: allocate, lock, unlock, release, freeing on every path.

    Runs on a private emulator (never on the Pi), so a leak here costs nothing.
    """
    def body(rep: _Report) -> None:
        rng = _rng(seed)
        for flags, alias in ((MemFlag.DIRECT | MemFlag.ZERO, 0xC), (MemFlag.COHERENT, 0x8)):
            size = rng.randrange(1, 64) * 4096
            with tempfile.TemporaryDirectory(prefix="pimem-lab4-") as d:
                t = _SpyTransport(d)
                got = _call(fn, f"{_name(fn)}(transport, {size}, {int(flags)})", t, size, int(flags))
                left = t.firmware.allocations()
                seq = [x for x in t.tags if x in (Tag.ALLOCATE_MEMORY, Tag.LOCK_MEMORY, Tag.UNLOCK_MEMORY,
                                                   Tag.RELEASE_MEMORY)]
                if left:
                    rep.fail(f"{len(left)} allocation(s) still held after your function returned "
                             f"({size} bytes, flags {int(flags)}). Nothing frees mailbox memory when a process "
                             "dies: on a Pi it stays gone until a reboot. Unlock and release what you allocated.")
                elif Tag.UNLOCK_MEMORY not in seq:
                    rep.fail("you released the block without unlocking it first; the firmware's documentation "
                             "does not say what release does to a locked block: unlock, then release")
                if not _is_int(got) or not 0 <= got <= 0xFFFFFFFF or (got >> 28) & 0xC != alias:
                    what = repr(got)
                    if _is_int(got) and 0 < got < 1 << 16:
                        what = f"{got}, which looks like the handle"
                    elif _is_int(got) and 0 < got < 0x40000000:
                        what = f"0x{got:08X}, a physical address (alias bits cleared)"
                    rep.fail(f"flags {int(flags)}: you returned {what}; return the bus address the lock "
                             f"answered (alias 0x{alias:X} for these flags)")
                t.close()
        with tempfile.TemporaryDirectory(prefix="pimem-lab4-") as d:
            t = _SpyTransport(d, fail_tag=int(Tag.LOCK_MEMORY))
            try:
                fn(t, 4096, int(MemFlag.DIRECT))
            except NotImplementedError:
                raise _NotAnswered() from None
            except Exception:  # noqa: BLE001 - failing is fine; leaking is not
                pass
            if t.firmware.allocations():
                rep.fail("when the lock fails (this check made it fail), your function leaves the allocation "
                         "behind. Release in a finally: block, so the memory comes back on every path.")
            t.close()
        rep.notes.append("allocates, locks, unlocks and releases, and frees the memory even when the lock fails")
    return _run_check("Allocate, lock, unlock, release by hand", fn, body)


# --- lab 5: when zero-copy hurts ------------------------------------------------

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
    from .data import data_dir, load_recording

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
    from .data import data_dir, load_recording

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


def check_transfer_ms(fn: Callable[[float, float], float], *, seed: int | None = None) -> CheckResult:
    """fn(nbytes, mib_per_s) -> milliseconds."""
    hints = {1e-3: "that is seconds; return milliseconds",
             2**20 / 1e6: "the rates are MiB/s: a MiB is 2^20 bytes, not 10^6",
             1e6 / 2**20: "the rates are MiB/s: a MiB is 2^20 bytes, not 10^6",
             1e3: "that is microseconds; return milliseconds"}

    def body(rep: _Report) -> None:
        rng = _rng(seed)
        for n, r in [(4 * MiB, 33.6), (4 * MiB, 1083.1)] + \
                [(rng.randrange(1, 10000) * KiB, rng.uniform(10, 5000)) for _ in range(4)]:
            want = transfer_ms(n, r)
            got = _call(fn, f"{_name(fn)}({n}, {r:.4g})", n, r)
            right, hint = _number_verdict(got, want, hints)
            if right:
                continue
            rep.fail(f"{n} bytes at {r:.4g} MiB/s: you returned {got!r}, it takes {want:.4g} ms"
                     + (f" ({hint})" if hint else ""))
        rep.notes.append("right: reading 4 MiB of DIRECT memory at qmkl's 33.6 MiB/s takes 119 ms, 3.7 ms from a host buffer")
    return _run_check("Time of a transfer", fn, body)


def _random_rates(rng: random.Random, base: dict[str, float]) -> dict[str, float]:
    return {k: v * rng.uniform(0.3, 3) for k, v in base.items()}


def check_choose(fn: Callable[[int, int, float, dict], str], *, seed: int | None = None,
                 rates: dict[str, float] | None = None) -> CheckResult:
    """fn(cpu_writes, cpu_reads, passes, rates) -> 'zero-copy' or 'copy', tried with other rates too."""
    def body(rep: _Report) -> None:
        rng = _rng(seed)
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
            got = _call(fn, f"{_name(fn)}({w}, {rd}, {p}, rates)", w, rd, p, dict(r))
            if isinstance(got, str) and got.strip().lower() == want:
                continue
            why = (f"writes {w} B, reads {rd} B {p} time(s); rates (MiB/s) "
                   + ", ".join(f"{k} {v:.0f}" for k, v in r.items())
                   + f": zero-copy costs {c['zero-copy']:.3g} ms, copy {c['copy']:.3g} ms, so {want!r}")
            if got not in ("zero-copy", "copy"):
                rep.fail(f"answer 'zero-copy' or 'copy', you gave {got!r} ({why})")
            elif want == "copy" and rd:
                rep.fail(f"you chose zero-copy for a workload that reads {rd} B back {p} time(s): reads of uncached "
                         f"memory cost far more than writes; {why}")
            else:
                rep.fail(f"you chose {got!r}; {why}")
        rep.notes.append("agrees with the cost model on qmkl's figures and on made-up rates (so the method, "
                         "not a memorised answer)")
    return _run_check("Choosing a buffer kind", fn, body)


#: Lab 5's three described workloads: (CPU writes for the GPU, CPU reads back, read passes).
WORKLOADS: dict[str, tuple[int, int, float]] = {
    "A": (8 * MiB, 0, 0),          # video frames the CPU prepares, the GPU consumes
    "B": (4 * MiB, 4 * MiB, 3),    # GPU results the CPU reads three times
    "C": (1 * MiB, 4 * KiB, 1),    # vertex data out, a small status block back
}


def check_workloads(fn: Callable[[], dict[str, str]], *, rates: dict[str, float] | None = None) -> CheckResult:
    """fn() -> {'A': kind, 'B': kind, 'C': kind}, each 'zero-copy' or 'copy', with qmkl's figures."""
    def body(rep: _Report) -> None:
        r = rates or qmkl_rates()
        got = _call(fn, f"{_name(fn)}()")
        if not isinstance(got, dict):
            rep.fail(f"return a dict like {{'A': 'zero-copy', 'B': ..., 'C': ...}}; you returned {got!r}")
            return
        for name, (w, rd, p) in WORKLOADS.items():
            want = choose_buffer(w, rd, p, r)
            c = costs_ms(w, rd, p, r)
            g = got.get(name)
            if isinstance(g, str) and g.strip().lower() == want:
                rep.notes.append(f"{name}: {want} ({c['zero-copy']:.3g} ms against {c['copy']:.3g} ms for the other)")
                continue
            rep.fail(f"workload {name}: you chose {g!r}; with qmkl's figures zero-copy costs {c['zero-copy']:.3g} ms "
                     f"and copy {c['copy']:.3g} ms, so {want!r}")
    return _run_check("Three workloads", fn, body)


# --- the data each lab works on ----------------------------------------------------

def host_recording(needs: Sequence[str] = ("baseline", "standard", "zerocopy")) -> Any:
    """The newest host run in data/ holding these benchmarks (libc kernel preferred)."""
    from .data import list_recordings
    from .exc import DataError

    found = [r for r in list_recordings() if r.kind == "measured" and not r.is_pi
             and set(needs) <= set(r.frame.benchmark)]
    if not found:
        raise DataError("no host recording in data/ holds " + ", ".join(needs)
                        + "; make one with 'python -m pimem record' (PIMEM_BACKEND=emulator)")
    found.sort(key=lambda r: (r.meta.get("kernel_choice") == "libc", r.meta.get("created", "")))
    return found[-1]


def fill_measurements(run: Any, backend: Any = None, sizes: Sequence[int] = (256 * KiB, 64 * MiB)) -> pd.DataFrame:
    """Cached fill times: measured now (live) or from data/ with their provenance (recorded).

    Columns: size_bytes, seconds, source, is_pi.
    """
    rows = []
    if getattr(run, "live", False):
        from .backend import get_backend
        from .benchmarks import RunOptions, run_benchmark
        from .kernels import DEFAULT_KERNEL, get_kernel

        b = backend or get_backend(run.backend)
        for n in sizes:
            r = run_benchmark("baseline", n, kernel=get_kernel(DEFAULT_KERNEL), backend=b, options=RunOptions())[0]
            rows.append((n, r.seconds("median"), f"measured now on this Pi ({DEFAULT_KERNEL} kernel, median of 5)", True))
        return pd.DataFrame(rows, columns=["size_bytes", "seconds", "source", "is_pi"])
    from .data import data_dir, load_recording

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


def crossover_frame(run: Any, backend: Any = None,
                    sizes: Sequence[int] = tuple(1 << p for p in range(12, 27))) -> tuple[pd.DataFrame, str]:
    """standard and zerocopy over sizes: a fresh sweep (live) or the host recording (recorded)."""
    if getattr(run, "live", False):
        from .backend import get_backend
        from .sweep import sweep

        b = backend or get_backend(run.backend)
        res = sweep(b, ["standard", "zerocopy"], sizes, progress=False)
        return res.frame, "measured now on this Pi"
    rec = host_recording(("standard", "zerocopy"))
    f = rec.frame[rec.frame.benchmark.isin(["standard", "zerocopy"])].reset_index(drop=True)
    return f, (f"{rec.provenance()}: a host machine, NOT a Pi; its 'GPU' buffers are the emulator's "
               "ordinary cached host memory")


def read_rates(run: Any, backend: Any = None, size: int = 4 * MiB) -> pd.DataFrame:
    """Read bandwidth of cached and DIRECT memory: measured now (live) or qmkl's figures (recorded)."""
    rows = []
    if getattr(run, "live", False):
        from .backend import get_backend
        from .benchmarks import RunOptions, run_benchmark
        from .kernels import DEFAULT_KERNEL, get_kernel

        b = backend or get_backend(run.backend)
        for bench in ("read-host", "read-direct", "read-coherent"):
            r = run_benchmark(bench, size, kernel=get_kernel(DEFAULT_KERNEL), backend=b, options=RunOptions())[0]
            if r.verified:
                rows.append((bench, size, size / r.seconds("median") / MiB, "measured now on this Pi"))
        return pd.DataFrame(rows, columns=["benchmark", "size_bytes", "mib_per_s", "source"])
    from .data import data_dir, load_recording

    rec = load_recording(data_dir() / "qmkl-pi3.csv")
    for _, row in rec.frame.iterrows():
        rows.append((row.benchmark, int(row.size_bytes), float(row.bytes) / float(row.seconds) / MiB, rec.provenance()))
    return pd.DataFrame(rows, columns=["benchmark", "size_bytes", "mib_per_s", "source"])


__all__ = [
    "CheckResult", "attempt", "check_alias", "check_bus_to_phys", "check_region", "check_wrong_conversion",
    "check_peak_bandwidth", "check_fill_time", "check_cache_level", "check_efficiency", "check_crossover",
    "check_standard_in_cache", "check_build_message", "check_parse_answer", "check_round_trip",
    "check_transfer_ms", "check_choose", "check_workloads", "crossover_size", "choose_buffer", "costs_ms",
    "qmkl_rates", "fair_rates", "verdicts", "fill_measurements", "crossover_frame", "read_rates", "reference_message", "WORKLOADS",
]
