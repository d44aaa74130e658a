"""Checks for notebooks/labs/lab1-addresses.ipynb: bus addresses, their aliases and physical memory."""
from __future__ import annotations

import random
from typing import Callable

from ...firmware.board import PI3B
from ...units import GiB, MiB
from .checks import CheckResult, Report, call_student, hex_text, is_int, name_of, run_check

ALIAS_MASK = 0xC0000000


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
    def body(rep: Report) -> None:
        for bus in _fresh_buses(random.Random(seed)):
            want = (bus >> 28) & 0xC
            call = f"{name_of(fn)}(0x{bus:08X})"
            got = call_student(fn, call, bus)
            if is_int(got) and got == want:
                continue
            args = (call, hex_text(got), f"0x{want:X}")
            if not is_int(got):
                rep.fail(*args, "an alias is a number, named by one hex digit",
                         "return an int such as 0xC (which is 12), not text or a tuple",
                         "0xC and 12 are the same int; hex is only how it is written. Return the number and let "
                         "the caller format it (hex(x), or f'{x:X}').", rank=2)
            elif got == bus >> 30:
                rep.fail(*args, f"you returned bits 31..30 as a plain number ({got}); " + _alias_why(bus),
                         "an alias is named by the top hex digit of its base address (0xC0000000 is 'the 0xC "
                         "alias'): the two bits keep their place inside that digit",
                         "The top hex digit of a 32-bit address is bits 31..28, and bits 31..30 are its upper "
                         "half. Write the DIRECT base address 0xC0000000 in binary and read its top digit: that "
                         "digit, not the two bits counted on their own, is the alias's name. Counting the two "
                         "bits on their own is how a program ends up printing 'Alias: 0x3' for a DIRECT "
                         "address.", rank=2)
            elif got == bus >> 28:
                rep.fail(*args, f"0x{got:X} is the whole top hex digit; only bits 31..30 pick the alias, "
                         "bits 29..28 are part of the physical address",
                         "the top hex digit holds two things: the alias in its upper two bits, and the top of "
                         "the physical address (up to 1 GiB, 30 bits) in its lower two",
                         f"Here the digit is 0x{bus >> 28:X}, {bus >> 28:04b} in binary. The alias is the part of "
                         "it that does not depend on where the block lies in RAM: the same digit with the "
                         "address's two bits at zero. Which bitwise operator keeps some bits of a number and "
                         "sets the others to zero?", rank=2)
            elif got == bus & ALIAS_MASK:
                rep.fail(*args, f"0x{got:08X} is the alias bits where they sit in the address; the alias is "
                         "that as one hex digit",
                         "the alias's name is a single hex digit: the top digit of the address, brought down "
                         "to be a number of its own",
                         "Each hex digit is 4 bits. The top digit of a 32-bit address has seven digits below "
                         "it: think of how far it must move to become the lowest digit, and which operator "
                         "moves bits.", rank=2)
            else:
                rep.fail(*args, _alias_why(bus),
                         "look at the top hex digit: bits 31..30 choose the alias, bits 29..28 do not",
                         "Write the address in binary and read bits 31..30. The alias 0x0, 0x4, 0x8 or 0xC is "
                         "the hex digit those two bits make when they stay at the top of a 4-bit digit "
                         "(00xx, 01xx, 10xx, 11xx with xx = 00).")
        rep.notes.append("right on addresses of every alias, including 0xFAAA8000 (DIRECT) and 0xBAAA8000 (COHERENT)")
    return run_check("Alias of a bus address", fn, body, check="check_alias", hint=hint)


def check_bus_to_phys(fn: Callable[[int], int], *, seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(bus) must return the ARM physical address: the alias bits cleared."""
    clear = ("the four aliases are four views of the same RAM: the physical address is what they share, "
             "bits 29..0 (a Pi has at most 1 GiB, 2^30 bytes), and the alias is all the rest",
             "Two questions: which bits of a bus address are the same in all four aliases of one block, and "
             "which bitwise operator keeps some bits of a number and sets the others to zero? Try your "
             "function on the address of each alias (0x3AAA8000, 0x7AAA8000, 0xBAAA8000, 0xFAAA8000): all "
             "four must give the same physical address.")

    def body(rep: Report) -> None:
        for bus in _fresh_buses(random.Random(seed)):
            want = bus & ~ALIAS_MASK
            call = f"{name_of(fn)}(0x{bus:08X})"
            got = call_student(fn, call, bus)
            if is_int(got) and got == want:
                continue
            a = (bus >> 28) & 0xC
            args = (call, hex_text(got, 8), f"0x{want:08X}")
            same = f"0x{bus:08X} with bits 31..30 cleared is 0x{want:08X}"
            if not is_int(got):
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
                         "count the bits a physical address needs on a 1 GiB board: the alias is only what lies "
                         "above them", clear[1], rank=2)
            elif got == bus & ALIAS_MASK:
                rep.fail(*args, f"you kept the alias and dropped the address; {same}",
                         "keep the other bits instead: the mask's 1s must be the bits you keep", clear[1], rank=2)
            elif got == bus:
                rep.fail(*args, f"the address came back unchanged; {same}", clear[0], clear[1], rank=2)
            else:
                rep.fail(*args, same, clear[0], clear[1])
        rep.notes.append("right for all four aliases: the conversion clears bits 31..30 and keeps every other bit")
    return run_check("bus_to_phys", fn, body, check="check_bus_to_phys", hint=hint)


#: The Pi 2/3's peripheral window in ARM physical addresses: 0x3F000000..0x3FFFFFFF.
PERIPHERALS = range(PI3B.peripheral_base, PI3B.peripheral_end)


def _region(phys: int, arm_size: int, gpu_size: int) -> str:
    if phys in PERIPHERALS:
        return "peripherals"
    if phys < arm_size:
        return "ARM"
    if phys < arm_size + gpu_size:
        return "GPU"
    return "none"


def check_region(fn: Callable[[int, int, int], str], *, seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(phys, arm_size, gpu_size) -> 'ARM', 'GPU', 'peripherals' (0x3F000000..0x3FFFFFFF) or 'none'."""
    more = ("Draw the memory as a line from 0: ARM memory covers [0, arm_size), GPU memory the next gpu_size "
            "bytes, [arm_size, arm_size + gpu_size), and nothing lies beyond. But on a Pi 2 or 3 the ARM's "
            "physical addresses 0x3F000000..0x3FFFFFFF reach the peripherals' registers, not RAM (BCM2835 ARM "
            "Peripherals section 1.2.3; Linux bcm2837.dtsi), so the top 16 MiB of the GPU's part is not "
            "memory the ARM can map. Test the two addresses either side of each boundary by hand: "
            "arm_size - 1 and arm_size, 0x3EFFFFFF and 0x3F000000, arm_size + gpu_size - 1 and "
            "arm_size + gpu_size.")

    def body(rep: Report) -> None:
        rng = random.Random(seed)
        for gpu_mib in rng.sample([64, 76, 128, 192, 256], 3):
            gpu = gpu_mib * MiB
            arm = GiB - gpu
            p0 = PERIPHERALS.start
            cases = [rng.randrange(0, arm), arm - 1, arm, rng.randrange(arm, p0), p0 - 1, p0,
                     rng.randrange(p0, GiB), GiB - 1, GiB + rng.randrange(0, GiB)]
            for phys in cases:
                want = _region(phys, arm, gpu)
                call = f"{name_of(fn)}(0x{phys:08X}, {arm:#x}, {gpu:#x})"
                got = call_student(fn, call, phys, arm, gpu)
                if isinstance(got, str) and got.strip().upper() == want.upper():
                    continue
                where = {"none": "in neither", "peripherals": "in the peripheral window"}.get(want,
                                                                                     f"in the {want} part")
                why = (f"ARM memory is 0x00000000..0x{arm - 1:08X} and GPU memory 0x{arm:08X}..0x{GiB - 1:08X}, "
                       f"of which the ARM reaches 0x{p0:08X}..0x{GiB - 1:08X} as peripherals, "
                       f"so 0x{phys:08X} is {where}")
                if not isinstance(got, str):
                    rep.fail(call, repr(got), repr(want), why,
                             "return one of the strings 'ARM', 'GPU', 'peripherals' or 'none'", more, rank=2)
                elif want == "peripherals" or (got.strip().lower() == "peripherals"):
                    rep.fail(call, repr(got), repr(want), why, "the peripheral window is ARM physical "
                             "0x3F000000..0x3FFFFFFF on a Pi 2/3, whatever gpu_mem says: test it before the "
                             "GPU part, and only for addresses inside it", more, rank=2)
                elif phys in (arm - 1, arm):
                    rep.fail(call, repr(got), repr(want), why, "mind the boundary: the GPU part starts at arm_size "
                             "itself; a range includes its start and excludes its end", more, rank=2)
                else:
                    rep.fail(call, repr(got), repr(want), why, "compare the address with where each part starts "
                             "and ends", more)
        rep.notes.append("right for three gpu_mem splits, including both sides of each boundary and the "
                         "peripheral window at the top of the GPU's part")
    return run_check("Which memory a physical address is in", fn, body, check="check_region", hint=hint)


#: Lab 1's question about a wrong conversion: letter -> (right?, why).
WRONG_CONVERSION_OPTIONS: dict[str, tuple[bool, str]] = {
    "a": (False, "an alias is another view of the same physical address, but this mask changed the address "
                 "itself: 0xBAAA8000 & 0x0FFFFFFF = 0x0AAA8000, 768 MiB below 0x3AAA8000"),
    "b": (False, "the low 12 bits are untouched, so 0x0AAA8000 is page aligned and mmap accepts it"),
    "c": (False, "it can happen (raspberrypi/firmware#423 shows a wrong conversion hanging a Pi), but it does not "
                 "happen on every Pi: before you choose, read what the kernel checks when a process maps "
                 "/dev/mem (Linux drivers/char/mem.c, range_is_allowed) and which Raspberry Pi kernels check it"),
    "d": (False, "the GPU never sees these writes: they land 768 MiB away from its buffer, in Linux's memory"),
    "e": (True, "0x0AAA8000 lies in the memory Linux manages. A kernel built with CONFIG_STRICT_DEVMEM (the arm64 "
                "default in lib/Kconfig.debug, which the 64-bit Raspberry Pi kernel's bcm2711_defconfig does not "
                "override) refuses to map System RAM through /dev/mem (drivers/char/mem.c, "
                "range_is_allowed), so mmap fails with EPERM; one without it maps the memory, and the program reads "
                "and writes whatever the kernel or another process keeps there (raspberrypi/firmware#423: a hang)"),
}


def check_wrong_conversion(fn: Callable[[], str], *, hint: int = 1) -> CheckResult:
    """fn() returns the letter of the answer to lab 1's wrong-conversion question."""
    more = ("Work it through: the cell above the question prints where the wrong address lands (which memory "
            "region). Then find out what stands between a root process and that memory: Linux's "
            "drivers/char/mem.c decides what /dev/mem may map. Choose the option that is true on every "
            "Raspberry Pi.")

    def body(rep: Report) -> None:
        call = f"{name_of(fn)}()"
        got = call_student(fn, call)
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
    return run_check("What a wrong conversion does", fn, body, check="check_wrong_conversion", hint=hint)


def _piece_problem(pieces: object, address: int, size: int) -> tuple[str, str, int] | None:
    """(why, hint, rank) for the first thing wrong with `pieces` as aligned accesses covering [0, size)."""
    if not isinstance(pieces, (list, tuple)) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and is_int(p[0]) and is_int(p[1]) for p in pieces):
        return ("the answer is a list of (offset, width) pairs of whole numbers",
                "return e.g. [(0, 1), (1, 2), (3, 1)]", 2)
    covered = 0
    for offset, width in sorted(pieces):
        if offset < 0 or offset + width > size:
            return (f"the piece ({offset}, {width}) reaches outside the {size} bytes (offsets 0 to {size - 1})",
                    "every piece lies inside the range: 0 <= offset and offset + width <= size", 2)
        if width not in (1, 2, 4, 8):
            return (f"an access of {width} bytes: the CPU's loads and stores are 1, 2, 4 or 8 bytes wide",
                    "use only widths 1, 2, 4 and 8", 2)
        if (address + offset) % width:
            return (f"the {width}-byte access at offset {offset} starts at 0x{address + offset:08X}, which is not a "
                    f"multiple of {width}: on Device memory that access is an alignment fault, SIGBUS",
                    "before using a width, check that the address where the piece starts is a multiple of it", 2)
        if offset != covered:
            return (f"bytes {min(offset, covered)}..{max(offset, covered) - 1} are "
                    + ("missed" if offset > covered else "written twice"),
                    "each piece starts where the one before it ended", 1)
        covered = offset + width
    if covered != size:
        return (f"the pieces cover {covered} of the {size} bytes", "go on until offset + width reaches size", 1)
    return None


def check_aligned_pieces(fn: Callable[[int, int], object], *, seed: int | None = None,
                         hint: int = 1) -> CheckResult:
    """fn(address, size) -> [(offset, width), ...]: naturally aligned accesses of 1, 2, 4 or 8 bytes covering
    [address, address + size) once, as GpuBuffer.write does on a Pi's Device memory."""
    more = ("Walk from offset 0. At each step take the widest of 8, 4, 2 and 1 that both divides the address "
            "you are at (address + offset) and still fits before size; record (offset, width) and move on by "
            "width. An unaligned address starts with narrow pieces; once aligned, 8-byte pieces follow.")

    def body(rep: Report) -> None:
        rng = random.Random(seed)
        base = 0x3B400000
        cases = [(base, 16), (base + 1, 4096), (base + 3, 13), (base + 6, 2), (base + 7, 1)]
        cases += [(base + rng.randrange(64), rng.randrange(1, 200)) for _ in range(10)]
        for address, size in cases:
            call = f"{name_of(fn)}(0x{address:08X}, {size})"
            got = call_student(fn, call, address, size)
            problem = _piece_problem(got, address, size)
            if problem:
                why, tip, rank = problem
                shown = repr(got) if len(repr(got)) < 120 else repr(got)[:117] + "..."
                rep.fail(call, shown, "naturally aligned pieces covering every byte once", why, tip, more, rank=rank)
        rep.notes.append("every piece aligned to its width and every byte covered once, at 15 addresses and sizes")
    return run_check("Aligned pieces for Device memory", fn, body, check="check_aligned_pieces", hint=hint)
