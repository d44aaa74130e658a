"""Self-checks and data helpers for the lab notebooks (notebooks/labs/).

Every ``check_*`` takes the student's answer (usually a function), tries it
on FRESH cases (random addresses, other sizes, other clocks, made-up cost
figures), and returns a :class:`CheckResult`: ``.passed``, and, when it is
wrong, ONE failing case: the input, what came back, what was expected, why,
and a hint that points the way without giving the code. ``hint=2`` gives a
fuller explanation (still no code). A check never raises for a wrong
answer and never shows a bare traceback: an exception from the student's
code is caught and explained; ``NotImplementedError`` means "not answered
yet". The lab's check cells call ``.require()``, which shows the result and
then raises :class:`CheckFailed` (one line) unless it passed: that error is
what makes nbgrader's autograde score the cell zero.

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

HINT_LEVELS = (1, 2)


# --- the result object ------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One failing case, as the student sees it. No field may hold solution code."""

    call: str   # the input, written as the call: "alias(0xBAAA8000)"
    got: str    # what came back
    want: str   # what was expected
    why: str    # one line of reasoning: why ``want`` is right here
    hint: str   # points the way (hint=1)
    more: str   # the fuller explanation (hint=2)

    def lines(self, hint: int, again: str) -> list[str]:
        out = [f"input: {self.call}", f"you returned: {self.got}", f"expected: {self.want}",
               f"why: {self.why}", f"hint: {self.hint}"]
        if hint >= 2:
            out.append(f"more: {self.more}")
        else:
            out.append(f"more help: run {again} in a new cell")
        return out


@dataclass
class CheckResult:
    """What a check found. ``passed`` is the verdict; the rest is for people."""

    title: str
    passed: bool
    answered: bool = True
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    case: Case | None = None   # the one failing case shown, when there is one

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

    def require(self) -> None:
        """Show this result; then, unless it passed, raise CheckFailed.

        A lab's check cell ends with ``.require()``: the student reads the
        message, and nbgrader's autograde sees an error and scores the cell 0.
        It returns None, so a passing cell shows a display (not an
        execute_result, which nbgrader would try to read as partial credit).
        """
        _show(self)
        if not self.passed:
            raise CheckFailed(self)


class CheckFailed(AssertionError):
    """A lab check that did not pass (from CheckResult.require), in one line.

    An AssertionError, as a failing nbgrader test is. In a notebook IPython
    prints what ``_render_traceback_`` returns instead of a traceback: the
    message shown just above it says what is wrong; a traceback into pimem
    would only bury it.
    """

    def __init__(self, result: CheckResult) -> None:
        self.result = result
        super().__init__(f"{result.title}: {result.status} (the message above says why)")

    def _render_traceback_(self) -> list[str]:
        return [f"CheckFailed: {self}"]


def _show(result: CheckResult) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is a dependency; plain Python still gets the text
        get_ipython = None  # type: ignore[assignment]
    if get_ipython is not None and get_ipython() is not None:
        display(result)
    else:
        print(result)


class _NotAnswered(Exception):
    pass


class _Raised(Exception):
    def __init__(self, call: str, error: Exception) -> None:
        super().__init__(f"{call} raised {type(error).__name__}: {error}")
        self.call = call
        self.error = error


def _call(fn: Callable[..., Any], what: str, *args: Any) -> Any:
    """Run the student's code; turn its exceptions into explanations."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise _NotAnswered() from None
    except Exception as e:  # noqa: BLE001 - any error in student code is explained, never shown raw
        raise _Raised(what, e) from None


class _Report:
    """Collects failing cases and keeps the one to show: the first of the best rank.

    Rank 2 is a recognised mistake (its explanation is specific), rank 1 a plain wrong value:
    the specific one teaches more, so it wins even when a plain one came first.
    """

    def __init__(self) -> None:
        self.case: Case | None = None
        self.rank = 0
        self.failed = 0
        self.notes: list[str] = []

    def fail(self, call: str, got: str, want: str, why: str, hint: str, more: str, *, rank: int = 1) -> None:
        self.failed += 1
        if rank > self.rank:
            self.case, self.rank = Case(call, got, want, why, hint, more), rank


def _check_hint(hint: Any) -> int:
    if isinstance(hint, bool) or hint not in HINT_LEVELS:
        raise ValueError(f"hint must be 1 or 2, got {hint!r}: hint=2 gives the fuller explanation")
    return int(hint)


def _run_check(title: str, fn: Any, body: Callable[[_Report], None], *, check: str, hint: int = 1,
               args: str = "", need_callable: bool = True) -> CheckResult:
    hint = _check_hint(hint)
    name = getattr(fn, "__name__", "your answer")
    again = f"labs.{check}({_name(fn)}{args}, hint=2)"
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
        case = Case(e.call, f"an exception, {type(e.error).__name__}: {e.error}", "a value (no exception)",
                    "your code stopped with an error on this input before it could answer",
                    "read the error's message: it usually names what went wrong",
                    f"run {e.call} in a new cell: the traceback it prints ends at the line that failed. "
                    "Work the input through that line by hand (or print the values just before it), "
                    "then run your function's cell and this check again.")
        return CheckResult(title, False, True, case.lines(hint, again), case=case)
    if rep.case is None:
        return CheckResult(title, True, True, [], rep.notes)
    return CheckResult(title, False, True, rep.case.lines(hint, again), case=rep.case)


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or "your function"


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _hex(x: Any, width: int = 0) -> str:
    """An int as hex (what an address is read as), anything else as its repr."""
    if _is_int(x):
        return f"0x{x:0{width}X}" if x >= 0 else f"-0x{-x:X}"
    return repr(x)


def _close(a: float, b: float, rel: float) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0)


Slip = tuple[str, str, str]   # a recognised mistake: (why, hint, more)


def _ratio_hint(got: float, want: float, slips: dict[float, Slip]) -> Slip | None:
    """A known mistake recognised by the ratio of the answer to the right one."""
    if not want or not isinstance(got, (int, float)) or got == 0 or not math.isfinite(got):
        return None
    r = got / want
    for factor, slip in slips.items():
        if _close(r, factor, 2e-3):
            return slip
    return None


def _number_verdict(got: Any, want: float, slips: dict[float, Slip]) -> tuple[bool, Slip | None]:
    """(right, slip): a numeric answer within 0.1 % of want, else the likeliest slip, if one fits."""
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return False, None
    if _close(float(got), want, 1e-3):
        return True, None
    return False, _ratio_hint(got, want, slips)


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


def _alias_why(bus: int) -> str:
    b = bus >> 30
    return (f"bits 31..30 of 0x{bus:08X} are {b:02b} in binary; as the upper two bits of a hex digit whose lower "
            f"two are 0 ({b:02b}00) they make 0x{(bus >> 28) & 0xC:X}")


def check_alias(fn: Callable[[int], int], *, seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(bus) must return the alias as its hex digit: 0x0, 0x4, 0x8 or 0xC."""
    def body(rep: _Report) -> None:
        for bus in _fresh_buses(_rng(seed)):
            want = (bus >> 28) & 0xC
            call = f"{_name(fn)}(0x{bus:08X})"
            got = _call(fn, call, bus)
            if _is_int(got) and got == want:
                continue
            args = (call, _hex(got), f"0x{want:X}")
            if not _is_int(got):
                rep.fail(*args, "an alias is a number, named by one hex digit",
                         "return an int such as 0xC (which is 12), not text or a tuple",
                         "0xC and 12 are the same int; hex is only how it is written. Return the number and let "
                         "the caller format it (hex(x), or f'{x:X}').", rank=2)
            elif got == bus >> 30:
                rep.fail(*args, f"you returned bits 31..30 as a plain number ({got}); " + _alias_why(bus),
                         "aliases are named by the top hex digit of their base address (0xC0000000 is 'the 0xC "
                         "alias'): bits 31..30 must become the upper two bits of that digit, not the lowest bits "
                         "of the number",
                         "The top hex digit of a 32-bit address is bits 31..28. The alias uses its upper two bits "
                         "(31..30) and leaves the lower two (29..28) to the physical address. So the answer is that "
                         "digit, moved down to the bottom, with its two lower bits cleared. Printing the raw bits is "
                         "how a program ends up saying 'Alias: 0x3' for a DIRECT address.", rank=2)
            elif got == bus >> 28:
                rep.fail(*args, f"0x{got:X} is the whole top hex digit; only bits 31..30 pick the alias, "
                         "bits 29..28 are part of the physical address",
                         "keep the upper two bits of that digit and clear the lower two",
                         "An AND with a mask keeps the bits that are 1 in the mask and clears the rest. Which "
                         "hex digit has its two upper bits set and its two lower bits clear? (Write it in binary.) "
                         f"Here 0x{bus >> 28:X} is {bus >> 28:04b} in binary: keep the first two bits.", rank=2)
            elif got == bus & ALIAS_MASK:
                rep.fail(*args, f"0x{got:08X} is the alias bits where they sit in the address; the alias is "
                         "that as one hex digit",
                         "move the top hex digit down to the bottom of the number",
                         "A right shift by 4 bits moves a number down by one hex digit. The top digit of a "
                         "32-bit address is 8 hex digits from the bottom: count how many bits it must move.", rank=2)
            else:
                rep.fail(*args, _alias_why(bus),
                         "look at the top hex digit: bits 31..30 choose the alias, bits 29..28 do not",
                         "Write the address in binary and read bits 31..30. The alias 0x0, 0x4, 0x8 or 0xC is "
                         "the hex digit those two bits make when they stay at the top of a 4-bit digit "
                         "(00xx, 01xx, 10xx, 11xx with xx = 00).")
        rep.notes.append("right on addresses of every alias, including 0xFAAA8000 (DIRECT) and 0xBAAA8000 (COHERENT)")
    return _run_check("Alias of a bus address", fn, body, check="check_alias", hint=hint)


def check_bus_to_phys(fn: Callable[[int], int], *, seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(bus) must return the ARM physical address: the alias bits cleared."""
    clear = ("clear the two alias bits, bits 31..30, whatever they are, and keep every other bit",
             "Clearing bits is an AND with a mask whose 1s are the bits to keep: here bits 29..0. Python's ~ "
             "turns a mask of the bits to clear into a mask of the bits to keep. Try your function on the "
             "address of each alias (0x3AAA8000, 0x7AAA8000, 0xBAAA8000, 0xFAAA8000): all four must give "
             "the same physical address.")

    def body(rep: _Report) -> None:
        for bus in _fresh_buses(_rng(seed)):
            want = bus & ~ALIAS_MASK
            call = f"{_name(fn)}(0x{bus:08X})"
            got = _call(fn, call, bus)
            if _is_int(got) and got == want:
                continue
            a = (bus >> 28) & 0xC
            args = (call, _hex(got, 8), f"0x{want:08X}")
            same = f"0x{bus:08X} with bits 31..30 cleared is 0x{want:08X}"
            if not _is_int(got):
                rep.fail(*args, "an address is a number", "return an int", *clear[1:], rank=2)
            elif got in (bus - ALIAS_MASK, (bus - ALIAS_MASK) & 0xFFFFFFFF):
                rep.fail(*args, f"subtracting 0xC0000000 is right only for the 0xC alias; 0x{bus:08X} is the 0x{a:X} "
                         f"alias, and {same}",
                         "the firmware hands out other aliases too (COHERENT memory is at 0x8...): " + clear[0],
                         clear[1], rank=2)
            elif got == bus | ALIAS_MASK:
                rep.fail(*args, f"OR sets the alias bits instead of clearing them, so you get a bus address of the "
                         f"0xC alias back; {same}", clear[0], clear[1], rank=2)
            elif got == bus ^ ALIAS_MASK:
                rep.fail(*args, f"XOR flips the alias bits: right for the 0xC alias only; 0x{bus:08X} is the "
                         f"0x{a:X} alias, and {same}", clear[0], clear[1], rank=2)
            elif got == bus & 0x0FFFFFFF:
                rep.fail(*args, "masking with 0x0FFFFFFF also clears bits 29..28, which belong to the physical "
                         "address, so the result can be hundreds of MiB lower, in memory Linux uses",
                         "clear only bits 31..30", clear[1], rank=2)
            elif got == bus & ALIAS_MASK:
                rep.fail(*args, f"you kept the alias and dropped the address; {same}",
                         "keep the other bits instead: the mask's 1s must be the bits you keep", clear[1], rank=2)
            elif got == bus:
                rep.fail(*args, f"the address came back unchanged; {same}", clear[0], clear[1], rank=2)
            else:
                rep.fail(*args, same, clear[0], clear[1])
        rep.notes.append("right for all four aliases: the conversion clears bits 31..30 and keeps every other bit")
    return _run_check("bus_to_phys", fn, body, check="check_bus_to_phys", hint=hint)


def _region(phys: int, arm_size: int, gpu_size: int) -> str:
    if phys < arm_size:
        return "ARM"
    if phys < arm_size + gpu_size:
        return "GPU"
    return "none"


def check_region(fn: Callable[[int, int, int], str], *, seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(phys, arm_size, gpu_size) -> 'ARM', 'GPU' or 'none' (beyond both)."""
    more = ("Draw the memory as a line from 0: ARM memory covers [0, arm_size), GPU memory the next gpu_size "
            "bytes, [arm_size, arm_size + gpu_size), and nothing lies beyond. Test the two addresses either "
            "side of each boundary by hand, arm_size - 1 and arm_size, then arm_size + gpu_size - 1 and "
            "arm_size + gpu_size.")

    def body(rep: _Report) -> None:
        rng = _rng(seed)
        for gpu_mib in rng.sample([64, 76, 128, 192, 256], 3):
            gpu = gpu_mib * MiB
            arm = GiB - gpu
            cases = [rng.randrange(0, arm), arm - 1, arm, rng.randrange(arm, GiB), GiB + rng.randrange(0, GiB)]
            for phys in cases:
                want = _region(phys, arm, gpu)
                call = f"{_name(fn)}(0x{phys:08X}, {arm:#x}, {gpu:#x})"
                got = _call(fn, call, phys, arm, gpu)
                if isinstance(got, str) and got.strip().upper() == want.upper():
                    continue
                why = (f"ARM memory is 0x00000000..0x{arm - 1:08X} and GPU memory 0x{arm:08X}..0x{GiB - 1:08X}, "
                       f"so 0x{phys:08X} is {'in neither' if want == 'none' else 'in the ' + want + ' part'}")
                if not isinstance(got, str):
                    rep.fail(call, repr(got), repr(want), why, "return one of the strings 'ARM', 'GPU' or 'none'",
                             more, rank=2)
                elif phys in (arm - 1, arm):
                    rep.fail(call, repr(got), repr(want), why, "mind the boundary: the GPU part starts at arm_size "
                             "itself; a range includes its start and excludes its end", more, rank=2)
                else:
                    rep.fail(call, repr(got), repr(want), why, "compare the address with where each part starts "
                             "and ends", more)
        rep.notes.append("right for three gpu_mem splits, including both sides of the boundary")
    return _run_check("Which memory a physical address is in", fn, body, check="check_region", hint=hint)


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


def check_wrong_conversion(fn: Callable[[], str], *, hint: int = 1) -> CheckResult:
    """fn() returns the letter of the answer to lab 1's wrong-conversion question."""
    more = ("Work it through: the cell above the question prints where the wrong address lands (which memory "
            "region). Then ask what stands between a root process and that memory: is mapping it through "
            "/dev/mem allowed on every kernel, or does it depend on how the kernel was built? Pick the option "
            "that holds on every Pi kernel.")

    def body(rep: _Report) -> None:
        call = f"{_name(fn)}()"
        got = _call(fn, call)
        letter = got.strip().lower() if isinstance(got, str) else None
        if letter not in WRONG_CONVERSION_OPTIONS:
            rep.fail(call, repr(got), "one letter, 'a' to 'e'", "the question is multiple choice",
                     "return the letter of your answer as a string, such as 'a'", more, rank=2)
            return
        right, why = WRONG_CONVERSION_OPTIONS[letter]
        if right:
            rep.notes.append(f"({letter}) is right: {why}.")
        else:
            rep.fail(call, repr(letter), f"another option than ({letter})", f"({letter}) is not it: {why}",
                     "run the cell above the question and see which memory the wrong address lands in",
                     more, rank=2)
    return _run_check("What a wrong conversion does", fn, body, check="check_wrong_conversion", hint=hint)


# --- lab 2: predict, then measure --------------------------------------------

def _numeric(got: Any) -> str:
    return f"{got:.6g}" if isinstance(got, float) else repr(got)


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

    def body(rep: _Report) -> None:
        rng = _rng(seed)
        cases = [(PI3B_SDRAM_MHZ, PI3B_BUS_BITS), (500, 32)] + \
                [(rng.randrange(200, 1100), rng.choice([16, 32, 64])) for _ in range(4)]
        for mhz, bits in cases:
            want = mhz * 1e6 * 2 * bits / 8
            call = f"{_name(fn)}({mhz}, {bits})"
            got = _call(fn, call, mhz, bits)
            right, slip = _number_verdict(got, want, slips)
            if right:
                continue
            args = (call, _numeric(got), f"{want:.4g} B/s")
            if slip:
                rep.fail(*args, *slip, rank=2)
            else:
                rep.fail(*args, f"{mhz} million cycles a second, two transfers per cycle, {bits // 8} bytes per "
                         f"transfer make {want:.4g} bytes per second",
                         "the peak is cycles per second times transfers per cycle times bytes per transfer", units)
        rep.notes.append("right: 450 MHz x 2 x 4 B = 3.6 GB/s on a Pi 3B, 4.0 GB/s at the 3B+'s 500 MHz")
    return _run_check("Peak DRAM bandwidth", fn, body, check="check_peak_bandwidth", hint=hint)


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

    def body(rep: _Report) -> None:
        rng = _rng(seed)
        cases = [(64 * MiB, 3.6e9), (256 * KiB, 3.6e9)] + \
                [(rng.randrange(1, 512) * rng.choice([KiB, MiB]), rng.uniform(0.5, 20) * 1e9) for _ in range(4)]
        for size, bw in cases:
            want = size / bw
            call = f"{_name(fn)}({size}, {bw:.4g})"
            got = _call(fn, call, size, bw)
            right, slip = _number_verdict(got, want, slips)
            if right:
                continue
            if slip is None and isinstance(got, (int, float)) and got and _close(float(got), bw / size, 1e-3):
                slip = ("upside down: your answer grows with the bandwidth, but a faster memory takes less time",
                        "a bigger buffer must take longer, a faster memory less", units)
            args = (call, _numeric(got), f"{want:.6g} s")
            if slip:
                rep.fail(*args, *slip, rank=2)
            else:
                rep.fail(*args, f"{size} bytes at {bw:.4g} bytes every second take {want:.6g} s",
                         "think of how many seconds' worth of the rate the size is", units)
        rep.notes.append("right: 64 MiB at 3.6 GB/s takes 18.6 ms at the very least; 256 KiB, 72.8 µs if it went to DRAM")
    return _run_check("Time to fill at a bandwidth", fn, body, check="check_fill_time", hint=hint)


def _cache_level(size: int, l1: int, l2: int) -> str:
    return "L1" if size <= l1 else "L2" if size <= l2 else "DRAM"


def check_cache_level(fn: Callable[[int, int, int], str], *, seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(size, l1, l2) -> 'L1', 'L2' or 'DRAM': the nearest level a buffer of that size fits in."""
    more = ("The caches are nested: a buffer that fits in the L1 fits in the L2 as well, and is served by the "
            "nearer, faster L1. So ask the questions from the nearest level outwards: does it fit in the L1? If "
            "not, in the L2? If not, it streams from DRAM. A buffer exactly the size of a cache fits in it.")

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
            call = f"{_name(fn)}({size}, {l1}, {l2})"
            got = _call(fn, call, size, l1, l2)
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
    return _run_check("Which cache a buffer fits in", fn, body, check="check_cache_level", hint=hint)


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

    def body(rep: _Report) -> None:
        rng = _rng(seed)
        cases = [(64 * MiB, 0.05016, 3.6e9)] + \
                [(rng.randrange(1, 256) * MiB, rng.uniform(0.001, 0.2), rng.uniform(1, 10) * 1e9) for _ in range(4)]
        for size, s, peak in cases:
            want = size / s / peak
            call = f"{_name(fn)}({size}, {s:.5g}, {peak:.4g})"
            got = _call(fn, call, size, s, peak)
            right, slip = _number_verdict(got, want, slips)
            if right:
                continue
            if slip is None and isinstance(got, (int, float)) and got and _close(float(got), 1 / want, 1e-3):
                slip = ("upside down: efficiency is the measured bandwidth as a part of the peak, at most 1 for "
                        "a DRAM-bound run", "which of the two should be on top?", units)
            args = (call, _numeric(got), f"{want:.4g}")
            if slip:
                rep.fail(*args, *slip, rank=2)
            else:
                rep.fail(*args, f"{size} bytes in {s:.5g} s is {size / s:.4g} B/s, which is {want:.4g} of the "
                         f"{peak:.4g} B/s peak", "first the measured bytes per second, then compare with the peak",
                         units)
        rep.notes.append("right: the original lesson's 64 MiB fill in 50.16 ms is 1.34 GB/s, 37% of 3.6 GB/s")
    return _run_check("Efficiency against the peak", fn, body, check="check_efficiency", hint=hint)


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
                    seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(frame) -> the crossover size in bytes (or None), tried on made-up cases and on ``data``."""
    more = ("Per size, take the median of zerocopy's 'write' rows and of standard's 'total' rows (total is "
            "fill + copy, the whole standard path). Then walk the sizes from the largest down: as long as "
            "zero-copy is faster, the crossover can move down to that size; the first size going down where it "
            "is not faster ends the walk. If zero-copy is not faster at the largest size, there is no "
            "crossover. A table of the medians (groupby, then unstack) lets you see it before you code it.")

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
            call = f"{_name(fn)}(<{label}>)"
            got = _call(fn, call, frame.copy())
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
    return _run_check("The crossover size", fn, body, check="check_crossover", args=", frame", hint=hint)


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

    def body(rep: _Report) -> None:
        rng = _rng(seed)
        for cache in [PI3B_L2, PI3B_L1D] + [rng.choice([48, 96, 768, 1024, 1536, 4096]) * KiB for _ in range(3)]:
            want = cache
            call = f"{_name(fn)}({cache})"
            got = _call(fn, call, cache)
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
    return _run_check("Which part of the standard path a cache holds", fn, body, check="check_standard_in_cache",
                      hint=hint)


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


_MESSAGE_MORE = ("Write the words out as a list first, one per row of the table in section 1: the size (count "
                 "every byte: 6 words of header, tag header and end tag, plus the value buffer), 0, the tag, the "
                 "value buffer's size in bytes (room for the request's values or the answer's, whichever is "
                 "more), 0, the values padded with zeros to fill that buffer, and the end tag. Then pack the "
                 "list as little-endian 32-bit words. Compare your bytes with the lock(1) example: "
                 "1c000000 00000000 0d000300 04000000 00000000 01000000 00000000.")


def _message_problem(got: Any, want: bytes, tag: int, values: Sequence[int], rw: int) -> tuple[str, str] | None:
    """(why, hint) for a wrong message, or None if it is right."""
    if isinstance(got, (list, tuple)):
        return ("you returned a list of numbers; the mailbox takes bytes",
                "pack your words into bytes with struct.pack, as the exercise says")
    if not isinstance(got, (bytes, bytearray, memoryview)):
        return f"you returned {type(got).__name__}; the mailbox takes bytes", "return bytes (struct.pack makes them)"
    got = bytes(got)
    if got == want:
        return None
    n = len(want) // 4
    if len(got) == 2 * len(want):
        return (f"your message is {len(got)} bytes, twice too long: struct format 'L' or 'Q' is 8 bytes in 64-bit "
                "Python; the mailbox wants 32-bit words: '<I'", "use 4-byte words")
    if len(got) == len(want) and got == struct.pack(f">{n}I", *struct.unpack(f"<{n}I", want)):
        return ("your words are big-endian; the mailbox reads little-endian words",
                "the first character of the struct format sets the byte order")
    if len(got) % 4:
        return f"{len(got)} bytes is not a whole number of 32-bit words", "pack whole 32-bit words only"
    gw = struct.unpack(f"<{len(got) // 4}I", got)
    ww = struct.unpack(f"<{n}I", want)
    if len(gw) == n - 1 and list(gw) == list(ww[:-1]) or (len(gw) == n - 1 and gw[-1] != 0):
        return ("the message has no end tag: a 0 word must close it (and be counted in the size)",
                "end the message with the end tag")
    if len(gw) < n:
        return (f"your message has {len(gw)} words, it needs {n}: the value buffer must be big enough for the "
                f"request ({len(values)} word(s)) and the answer ({rw}), as the firmware writes its answer in place",
                "size the value buffer for whichever is longer, the request's values or the answer")
    for i, (g, w) in enumerate(zip(gw, ww)):
        if g != w:
            hint = "check that word against the table in section 1"
            if i == 0 and g == w // 4:
                hint = "you counted words; the size is in bytes"
            elif i == 0:
                hint = "count every byte: header, tag header, value buffer and end tag"
            elif i == 3 and g == w // 4:
                hint = "you counted words; the value buffer size is in bytes"
            return f"{_word_name(i, n)} is 0x{g:08X}, it should be 0x{w:08X}", hint
    return f"your message has {len(gw)} words, it needs {n}", "compare your words with the table, one by one"


def check_build_message(fn: Callable[[int, Sequence[int], int], bytes], *, seed: int | None = None,
                        hint: int = 1) -> CheckResult:
    """fn(tag, values, response_words) -> the request as little-endian 32-bit words."""
    def body(rep: _Report) -> None:
        rng = _rng(seed)
        cases = [(int(Tag.ALLOCATE_MEMORY), [rng.randrange(1, 4096) * 4096, 4096, int(MemFlag.DIRECT | MemFlag.ZERO)], 1),
                 (int(Tag.LOCK_MEMORY), [rng.randrange(1, 50)], 1),
                 (int(Tag.RELEASE_MEMORY), [rng.randrange(1, 50)], 1),
                 (int(Tag.VC_MEMORY), [], 2),
                 (0x00030000 | rng.randrange(0x100, 0x1000), [rng.getrandbits(32) for _ in range(2)], 3)]
        for tag, values, rw in cases:
            call = f"{_name(fn)}(0x{tag:08X}, {values}, {rw})"
            got = _call(fn, call, tag, list(values), rw)
            want = reference_message(tag, values, rw)
            problem = _message_problem(got, want, tag, values, rw)
            if problem:
                shown = bytes(got).hex(" ", 4) if isinstance(got, (bytes, bytearray, memoryview)) else repr(got)
                rep.fail(call, shown, f"{len(want)} bytes: {want.hex(' ', 4)}", problem[0], problem[1],
                         _MESSAGE_MORE, rank=2)
        rep.notes.append("byte for byte right for allocate, lock, release, a tag with no request values and an unknown tag")
    return _run_check("Building a mailbox message", fn, body, check="check_build_message", hint=hint)


def _answer(tag: int, values: Sequence[int], *, status: int = RESPONSE_SUCCESS, code: int | None = None,
            answered_tag: int | None = None) -> bytearray:
    """A firmware answer made by hand, good or broken in one way."""
    n = len(values)
    words = [(6 + n) * 4, status, answered_tag if answered_tag is not None else tag, n * 4,
             TAG_RESPONSE | (n * 4) if code is None else code, *values, 0]
    return bytearray(struct.pack(f"<{len(words)}I", *words))


def check_parse_answer(fn: Callable[[bytes, int, int], Sequence[int]], *, seed: int | None = None,
                       hint: int = 1) -> CheckResult:
    """fn(buf, tag, response_words) -> the values; it must raise (any exception) for a failed answer."""
    more_values = ("Unpack the header words first (size, status, tag, value buffer size, response code) and "
                   "print them for a good answer: the values follow them, response_words of them. struct can "
                   "start unpacking at a byte offset; a word is 4 bytes.")
    more_raise = ("Read each header word and compare it with what a good answer has: the status word must be "
                  "the success code (0x80000000), the tag must be the one you asked about, the response code "
                  "must have bit 31 set, and the length in its other bits must cover response_words words. "
                  "Raise an exception (ValueError) as soon as one is wrong, before reading any value.")

    def body(rep: _Report) -> None:
        rng = _rng(seed)
        good = [(int(Tag.ALLOCATE_MEMORY), [rng.randrange(1, 100)]),
                (int(Tag.LOCK_MEMORY), [0xC0000000 | rng.randrange(0x38000, 0x3C000) << 12]),
                (int(Tag.VC_MEMORY), [0x3B400000, 0x04C00000])]
        for tag, values in good:
            buf = _answer(tag, values)
            call = f"{_name(fn)}(<a good answer to 0x{tag:08X}: {buf.hex(' ', 4)}>, 0x{tag:08X}, {len(values)})"
            got = _call(fn, call, bytes(buf), tag, len(values))
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
            args = (call, repr(got), "the values " + ", ".join(f"0x{v:X}" for v in values))
            if gl == words:
                rep.fail(*args, "you returned every word of the answer; the values are only the words after the "
                         "header", "return only the values, from word 5 (byte 20)", more_values, rank=2)
            elif gl is not None and gl[:1] == [words[4]]:
                rep.fail(*args, "you started one word early, at the tag's response word",
                         "the values start at word 5 (byte offset 20)", more_values, rank=2)
            else:
                rep.fail(*args, "a good answer carries its values in the value buffer, after five header words",
                         "the values start at word 5 (byte offset 20)", more_values)
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
            rep.fail(f"{_name(fn)}(<an answer with {what}: {buf.hex(' ', 4)}>, 0x{int(Tag.LOCK_MEMORY):08X}, 1)",
                     repr(got), "an exception", f"you returned {got!r} instead of raising. The value word still "
                     f"holds what was sent ({handle}, the handle), so a caller would take the request for the "
                     "answer (hello_fft's mailbox.c returns the size as a handle this way)",
                     "check the status, the tag, bit 31 of the response word and the length it gives, and raise "
                     "if any is wrong", more_raise, rank=2)
        rep.notes.append("returns the values of good answers and refuses parse errors, unanswered tags, short answers "
                         "and answers for another tag")
    return _run_check("Reading the firmware's answer", fn, body, check="check_parse_answer", hint=hint)


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


def check_round_trip(fn: Callable[[Any, int, int], int], *, seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(transport, size, flags) -> bus address: allocate, lock, unlock, release, freeing on every path.

    Runs on a private emulator (never on the Pi), so a leak here costs nothing.
    """
    more = ("The order is allocate (answers a handle), lock (answers the bus address), unlock, release. Keep "
            "the bus address from the lock's answer in a variable, because after the release it means nothing. "
            "Whatever happens after the allocate succeeds, the release must run: put the steps after it in a "
            "try block and the release in its finally: block, then return the bus address.")

    def body(rep: _Report) -> None:
        rng = _rng(seed)
        for flags, alias in ((MemFlag.DIRECT | MemFlag.ZERO, 0xC), (MemFlag.COHERENT, 0x8)):
            size = rng.randrange(1, 64) * 4096
            with tempfile.TemporaryDirectory(prefix="pimem-lab4-") as d:
                t = _SpyTransport(d)
                try:
                    call = f"{_name(fn)}(transport, {size}, {int(flags)})"
                    got = _call(fn, call, t, size, int(flags))
                    left = t.firmware.allocations()
                finally:
                    t.close()
                seq = [x for x in t.tags if x in (Tag.ALLOCATE_MEMORY, Tag.LOCK_MEMORY, Tag.UNLOCK_MEMORY,
                                                   Tag.RELEASE_MEMORY)]
                if left:
                    rep.fail(call, _hex(got, 8), "a bus address, and every allocation released",
                             f"{len(left)} allocation(s) still held after your function returned. Nothing frees "
                             "mailbox memory when a process dies: on a Pi it stays gone until a reboot",
                             "unlock and release what you allocated", more, rank=2)
                elif Tag.UNLOCK_MEMORY not in seq:
                    rep.fail(call, _hex(got, 8), "the block unlocked, then released",
                             "you released the block without unlocking it first; the firmware's documentation "
                             "does not say what release does to a locked block",
                             "send the unlock before the release", more, rank=2)
                if not _is_int(got) or not 0 <= got <= 0xFFFFFFFF or (got >> 28) & 0xC != alias:
                    what = "not a bus address of this flag's alias"
                    if _is_int(got) and 0 < got < 1 << 16:
                        what = f"{got} looks like the handle, not an address"
                    elif _is_int(got) and 0 < got < 0x40000000:
                        what = f"0x{got:08X} is a physical address (alias bits cleared)"
                    rep.fail(call, _hex(got, 8), f"the bus address the lock answered (alias 0x{alias:X} for "
                             "these flags)", what, "return the lock's answer unchanged", more, rank=2)
        with tempfile.TemporaryDirectory(prefix="pimem-lab4-") as d:
            t = _SpyTransport(d, fail_tag=int(Tag.LOCK_MEMORY))
            try:
                fn(t, 4096, int(MemFlag.DIRECT))
            except NotImplementedError:
                raise _NotAnswered() from None
            except Exception:  # noqa: BLE001 - failing is fine; leaking is not
                pass
            finally:
                left = t.firmware.allocations()
                t.close()
            if left:
                rep.fail(f"{_name(fn)}(transport, 4096, {int(MemFlag.DIRECT)}) with the lock made to fail",
                         "the allocation left behind", "an exception is fine, but the block released",
                         "when the lock fails (this check made it fail), your function leaves the allocation "
                         "behind", "release in a finally: block, so the memory comes back on every path",
                         more, rank=2)
        rep.notes.append("allocates, locks, unlocks and releases, and frees the memory even when the lock fails")
    return _run_check("Allocate, lock, unlock, release by hand", fn, body, check="check_round_trip", hint=hint)


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

    def body(rep: _Report) -> None:
        rng = _rng(seed)
        for n, r in [(4 * MiB, 33.6), (4 * MiB, 1083.1)] + \
                [(rng.randrange(1, 10000) * KiB, rng.uniform(10, 5000)) for _ in range(4)]:
            want = transfer_ms(n, r)
            call = f"{_name(fn)}({n}, {r:.4g})"
            got = _call(fn, call, n, r)
            right, slip = _number_verdict(got, want, slips)
            if right:
                continue
            args = (call, _numeric(got), f"{want:.4g} ms")
            if slip:
                rep.fail(*args, *slip, rank=2)
            else:
                rep.fail(*args, f"{n} bytes is {n / MiB:.4g} MiB; at {r:.4g} MiB every second that takes "
                         f"{want / 1e3:.4g} s, {want:.4g} ms", "bytes, then MiB, then seconds, then milliseconds",
                         units)
        rep.notes.append("right: reading 4 MiB of DIRECT memory at qmkl's 33.6 MiB/s takes 119 ms, 3.7 ms from a host buffer")
    return _run_check("Time of a transfer", fn, body, check="check_transfer_ms", hint=hint)


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
            call = (f"{_name(fn)}({w}, {rd}, {p}, rates) with rates (MiB/s) "
                    + ", ".join(f"{k} {v:.0f}" for k, v in r.items()))
            got = _call(fn, call, w, rd, p, dict(r))
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
    return _run_check("Choosing a buffer kind", fn, body, check="check_choose", hint=hint)


#: Lab 5's three described workloads: (CPU writes for the GPU, CPU reads back, read passes).
WORKLOADS: dict[str, tuple[int, int, float]] = {
    "A": (8 * MiB, 0, 0),          # video frames the CPU prepares, the GPU consumes
    "B": (4 * MiB, 4 * MiB, 3),    # GPU results the CPU reads three times
    "C": (1 * MiB, 4 * KiB, 1),    # vertex data out, a small status block back
}


def check_workloads(fn: Callable[[], dict[str, str]], *, rates: dict[str, float] | None = None,
                    hint: int = 1) -> CheckResult:
    """fn() -> {'A': kind, 'B': kind, 'C': kind}, each 'zero-copy' or 'copy', with qmkl's figures."""
    def body(rep: _Report) -> None:
        r = rates or qmkl_rates()
        call = f"{_name(fn)}()"
        got = _call(fn, call)
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
    return _run_check("Three workloads", fn, body, check="check_workloads", hint=hint)


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
    "CheckResult", "CheckFailed", "Case", "attempt", "check_alias", "check_bus_to_phys", "check_region", "check_wrong_conversion",
    "check_peak_bandwidth", "check_fill_time", "check_cache_level", "check_efficiency", "check_crossover",
    "check_standard_in_cache", "check_build_message", "check_parse_answer", "check_round_trip",
    "check_transfer_ms", "check_choose", "check_workloads", "crossover_size", "choose_buffer", "costs_ms",
    "qmkl_rates", "fair_rates", "verdicts", "fill_measurements", "crossover_frame", "read_rates", "reference_message", "WORKLOADS",
]
