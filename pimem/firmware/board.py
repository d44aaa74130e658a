"""Which Raspberry Pi is this? Decode board revision codes, as gpiozero's ``pi_info()`` does.

The firmware reports a revision code (``Revision`` in ``/proc/cpuinfo``). Old boards use a
small lookup table (0002-0015); from the Pi 2 on, the code is a set of bit fields::

    NOQuuuWuFMMMCCCCPPPPTTTTTTTTRRRR
    N overvoltage, O/Q OTP program/read, W warranty, F new-style flag,
    M memory, C manufacturer, P processor, T type, R PCB revision

Source for every table below: Raspberry Pi documentation,
``documentation/asciidoc/computers/raspberry-pi/revision-codes.adoc``
(raspberrypi/documentation, commit 0456a78c93ba57be2d9e95733df961069925555b).
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from pimem.exc import RevisionError

#: What the firmware of a Pi 3B keeps for itself inside gpu_mem (its code, data and its
#: 13 MiB malloc pool), so its relocatable heap, the memory the mailbox allocates from,
#: is gpu_mem minus this. An inference: every published `vcdbg reloc` dump whose
#: gpu_mem is known shows a heap of gpu_mem - 20 MiB (256 -> 236M, 128 -> 108M, 64 -> 44M,
#: 32 -> 12M; raspberrypi/firmware issues #377, #365, #192 and #573, 2015-2016
#: firmware). No current-firmware `vcgencmd get_mem reloc_total` figure was found;
#: on a board, that command tells the truth and pimem asks it (Mailbox.relocatable_heap).
FIRMWARE_RESERVE_MIB = 20


@dataclass(frozen=True)
class BoardFacts:
    """A board's memory system, each figure from its primary source (the *_source fields)."""

    name: str
    l1d_bytes: int          #: L1 data cache per core
    l2_bytes: int           #: the shared L2
    sdram_mhz: int          #: the SDRAM clock (sdram_freq)
    bus_bits: int           #: the SDRAM bus width
    ram_bytes: int          #: the board's RAM
    default_gpu_mem: int    #: gpu_mem when config.txt does not set it
    cache_source: str
    sdram_source: str
    gpu_mem_source: str
    #: ARM physical addresses of the peripherals' registers (0 bytes: none inside the RAM's range)
    peripheral_base: int = 0
    peripheral_bytes: int = 0
    peripheral_source: str = ""

    @property
    def peripheral_end(self) -> int:
        """One past the last ARM physical address of the peripheral window."""
        return self.peripheral_base + self.peripheral_bytes

    def in_peripheral_window(self, phys: int) -> bool:
        """True where the ARM's physical address reaches the peripherals, not RAM."""
        return self.peripheral_base <= phys < self.peripheral_end

    @property
    def peak_bytes_per_s(self) -> float:
        """The SDRAM's peak: clock x 2 transfers per clock (DDR) x bus width in bytes."""
        return self.sdram_mhz * 1e6 * 2 * self.bus_bits / 8

    @property
    def peak_source(self) -> str:
        """How the peak is worked out, and where its figures come from."""
        return f"{self.sdram_mhz} MHz x 2 x {self.bus_bits // 8} B; {self.sdram_source}"


#: ARM physical addresses of the peripherals on the Pi 2 and 3 (BCM2836/7): the top 16 MiB of the
#: 1 GiB, which the ARM sees as peripherals whatever gpu_mem says (BCM2835 ARM Peripherals section
#: 1.2.3; Linux bcm2837.dtsi, `soc` ranges). On the Pi 1 (0x20000000) and the Pi 4 (0xFE000000) the
#: window lies above the RAM the GPU memory is in, so it meets no GPU memory.
PERIPHERAL_WINDOWS: dict[str, tuple[int, int]] = {"BCM2836": (0x3F000000, 16 << 20),
                                                  "BCM2837": (0x3F000000, 16 << 20)}

#: The course's board.
PI3B = BoardFacts(
    name="Raspberry Pi 3B", l1d_bytes=32 << 10, l2_bytes=512 << 10, sdram_mhz=450, bus_bits=32,
    ram_bytes=1 << 30, default_gpu_mem=76 << 20,
    cache_source="Linux arch/arm/boot/dts/broadcom/bcm2837.dtsi",
    sdram_source="sdram_freq from raspberrypi/documentation config_txt/overclocking.adoc",
    gpu_mem_source="raspberrypi/documentation config_txt/memory.adoc (76 MiB on a board with 1 GB)",
    # No GPU buffer in the peripheral window can be mapped as memory.
    peripheral_base=PERIPHERAL_WINDOWS["BCM2837"][0], peripheral_bytes=PERIPHERAL_WINDOWS["BCM2837"][1],
    peripheral_source="BCM2835 ARM Peripherals section 1.2.3; Linux bcm2837.dtsi (soc ranges)",
)
#: The boards whose memory system pimem knows, by short name.
BOARDS: dict[str, BoardFacts] = {"pi3b": PI3B}

__all__ = [
    "BOARDS",
    "BoardFacts",
    "FIRMWARE_RESERVE_MIB",
    "PI3B",
    "PERIPHERAL_WINDOWS",
    "BoardRevision",
    "decode_revision",
    "read_revision_from_system",
    "read_model_string",
    "read_emulated_machine",
]

# --- tables from revision-codes.adoc ----------------------------------------

# Old-style codes: code -> (model, PCB revision, memory MB, manufacturer).
# 000a-000c are absent from the documentation: they were never used.
_OLD_STYLE: dict[int, tuple[str, str, int, str]] = {
    0x0002: ("B", "1.0", 256, "Egoman"),
    0x0003: ("B", "1.0", 256, "Egoman"),
    0x0004: ("B", "2.0", 256, "Sony UK"),
    0x0005: ("B", "2.0", 256, "Qisda"),
    0x0006: ("B", "2.0", 256, "Egoman"),
    0x0007: ("A", "2.0", 256, "Egoman"),
    0x0008: ("A", "2.0", 256, "Sony UK"),
    0x0009: ("A", "2.0", 256, "Qisda"),
    0x000D: ("B", "2.0", 512, "Egoman"),
    0x000E: ("B", "2.0", 512, "Sony UK"),
    0x000F: ("B", "2.0", 512, "Egoman"),
    0x0010: ("B+", "1.2", 512, "Sony UK"),
    0x0011: ("CM1", "1.0", 512, "Sony UK"),
    0x0012: ("A+", "1.1", 256, "Sony UK"),
    0x0013: ("B+", "1.2", 512, "Embest"),
    0x0014: ("CM1", "1.0", 512, "Embest"),
    # The table says "256 MB / 512 MB": both were sold under this code, so report the
    # amount every such board is guaranteed to have.
    0x0015: ("A+", "1.1", 256, "Embest"),
}
_OLD_WARRANTY_BIT = 0x1000000  # old boards set this bit once over-volted (warranty void)
_OLD_PROCESSOR = "BCM2835"     # every old-style board is a Pi 1 (A, B, A+, B+, CM1)

# New-style TTTTTTTT field -> model. 0x07 and 0x0b are not in the documentation.
_TYPES: dict[int, str] = {
    0x00: "A",
    0x01: "B",
    0x02: "A+",
    0x03: "B+",
    0x04: "2B",
    0x05: "Alpha",
    0x06: "CM1",
    0x08: "3B",
    0x09: "Zero",
    0x0A: "CM3",
    0x0C: "Zero W",
    0x0D: "3B+",
    0x0E: "3A+",
    0x0F: "Internal (0x0f)",
    0x10: "CM3+",
    0x11: "4B",
    0x12: "Zero 2 W",
    0x13: "400",
    0x14: "CM4",
    0x15: "CM4S",
    0x16: "Internal (0x16)",
    0x17: "5",
    0x18: "CM5",
    # One type code covers both: the code alone cannot tell a 500 from a 500+.
    0x19: "500/500+",
    0x1A: "CM5 Lite",
    0x1B: "CM0",
}

# Where the documentation's "new-style revision codes in use" table names a code's model
# more exactly than the type field can (one type covers the 500 and the 500+), its name wins.
# The code is compared without its top byte (overvoltage, OTP and warranty flags).
_CODE_TABLE_MODELS: dict[int, str] = {
    0xD04190: "500",    # 8 GB
    0xE04190: "500+",   # 16 GB
}

# Long names for describe(); where the documentation's device-tree table has one, it is used.
_LONG_NAMES: dict[str, str] = {
    "A": "Raspberry Pi Model A",
    "B": "Raspberry Pi Model B",
    "A+": "Raspberry Pi Model A+",
    "B+": "Raspberry Pi Model B+",
    "2B": "Raspberry Pi 2 Model B",
    "Alpha": "Raspberry Pi Alpha (early prototype)",
    "CM1": "Compute Module 1",
    "3B": "Raspberry Pi 3 Model B",
    "Zero": "Raspberry Pi Zero",
    "CM3": "Compute Module 3",
    "Zero W": "Raspberry Pi Zero W",
    "3B+": "Raspberry Pi 3 Model B+",
    "3A+": "Raspberry Pi 3 Model A+",
    "Internal (0x0f)": "Raspberry Pi internal-use board (type 0x0f)",
    "CM3+": "Compute Module 3+",
    "4B": "Raspberry Pi 4 Model B",
    "Zero 2 W": "Raspberry Pi Zero 2 W",
    "400": "Raspberry Pi 400",
    "CM4": "Compute Module 4",
    "CM4S": "Compute Module 4S",
    "Internal (0x16)": "Raspberry Pi internal-use board (type 0x16)",
    "5": "Raspberry Pi 5",
    "CM5": "Compute Module 5",
    "500/500+": "Raspberry Pi 500/500+",
    "500": "Raspberry Pi 500",
    "500+": "Raspberry Pi 500+",
    "CM5 Lite": "Compute Module 5 Lite",
    "CM0": "Compute Module 0",
}

# PPPP field.
_PROCESSORS: dict[int, str] = {
    0: "BCM2835",
    1: "BCM2836",
    2: "BCM2837",
    3: "BCM2711",
    4: "BCM2712",
}

# CCCC field. 2 and 4 are both Embest in the documentation.
_MANUFACTURERS: dict[int, str] = {
    0: "Sony UK",
    1: "Egoman",
    2: "Embest",
    3: "Sony Japan",
    4: "Embest",
    5: "Stadium",
}

# MMM field 0-6 is 256 MB << n; 7 means "Other": the size is not in the code at all
# (the firmware parameter rpi-sdram-size-gbit has it), reported here as memory_mb == 0.
_MEMORY_OTHER = 7

# VideoCore IV (2835/6/7) and VI (2711) firmware lets the ARM allocate GPU memory through
# the mailbox memory tags; on BCM2712 (VideoCore VII) the firmware does not offer them to Linux.
_MAILBOX_ALLOC_PROCESSORS = frozenset({"BCM2835", "BCM2836", "BCM2837", "BCM2711"})

_NEW_STYLE_BIT = 1 << 23
_NEW_WARRANTY_BIT = 1 << 25
_HEX_RE = re.compile(r"(?:0[xX])?([0-9a-fA-F]+)")

_WHAT_TO_DO = (
    "Check the code with `grep Revision /proc/cpuinfo` or `.venv/bin/pimem info` "
    "(it is hexadecimal, e.g. 'a02082' or 0xa02082)"
)


@dataclass(frozen=True)
class BoardRevision:
    """One decoded revision code. Build it with :func:`decode_revision`."""

    code: int            # the revision code as given, as a number
    new_style: bool      # bit 23: bit-field code (Pi 2 and later) rather than a table entry
    model: str           # e.g. "3B", "3B+", "4B", "Zero 2 W", "5", "B" (old-style)
    processor: str       # "BCM2835" | "BCM2836" | "BCM2837" | "BCM2711" | "BCM2712"
    memory_mb: int       # 0 when the code says "Other" (size not encoded)
    manufacturer: str    # "Sony UK", "Embest", ...
    revision: str        # PCB revision, e.g. "1.2"
    warranty_void: bool  # old style: 0x1000000 bit; new style: bit 25 (W)
    mailbox_alloc: bool  # can the ARM allocate GPU memory with the mailbox memory tags?

    def describe(self) -> str:
        """One readable line, e.g. ``Raspberry Pi 3 Model B rev 1.2, BCM2837, 1 GB, Sony UK``."""
        name = _LONG_NAMES.get(self.model, f"Raspberry Pi {self.model}")
        parts = [f"{name} rev {self.revision}", self.processor,
                 _format_memory(self.memory_mb), self.manufacturer]
        if self.warranty_void:
            parts.append("warranty void (over-volted)")
        return ", ".join(parts)


def _format_memory(memory_mb: int) -> str:
    if memory_mb == 0:
        return "memory size not in the revision code"
    if memory_mb >= 1024:
        return f"{memory_mb // 1024} GB"
    return f"{memory_mb} MB"


def _parse_code(code: int | str) -> int:
    """Turn an int or a hex string into a 32-bit code, or raise RevisionError."""
    # bool is an int subclass; True as a revision code is a mistake, not code 1.
    if isinstance(code, bool) or not isinstance(code, (int, str)):
        raise RevisionError(
            f"revision code {code!r} is a {type(code).__name__}, not an int or a hex string. "
            f"{_WHAT_TO_DO}."
        )
    if isinstance(code, str):
        text = code.strip()
        match = _HEX_RE.fullmatch(text)
        if match is None:
            raise RevisionError(
                f"revision code {code!r} is not a hexadecimal number. {_WHAT_TO_DO}."
            )
        value = int(match.group(1), 16)
    else:
        value = code
    if value < 0:
        raise RevisionError(
            f"revision code {code!r} is negative; revision codes are unsigned 32-bit. "
            f"{_WHAT_TO_DO}."
        )
    if value > 0xFFFFFFFF:
        raise RevisionError(
            f"revision code {code!r} (0x{value:x}) does not fit in 32 bits. {_WHAT_TO_DO}."
        )
    return value


def decode_revision(code: int | str) -> BoardRevision:
    """Decode a Raspberry Pi revision code.

    ``code`` is an int (``0xa02082``) or a hex string as ``/proc/cpuinfo`` prints it
    (``"a02082"``, ``"0xa02082"``, ``"1000002"``). Note that the string ``"1000002"`` is hex
    while the int ``1000002`` is decimal.

    Raises :class:`~pimem.exc.RevisionError` if the code is not hex, is negative or wider than
    32 bits, is an unknown old-style code, or names a board type or processor missing from
    the documentation's table. An unknown manufacturer does not stop decoding (the
    documentation advises identifying boards by type and memory, not by every field).
    """
    value = _parse_code(code)
    if value & _NEW_STYLE_BIT:
        return _decode_new(value, code)
    return _decode_old(value, code)


def _decode_old(value: int, given: int | str) -> BoardRevision:
    base = value & ~_OLD_WARRANTY_BIT
    entry = _OLD_STYLE.get(base)
    if entry is None:
        raise RevisionError(
            f"revision code {given!r} (0x{value:x}) has bit 23 clear, so it is old-style, but "
            f"it is not one of the documented old-style codes 0002-0009, 000d-0015 "
            f"(optionally with the 0x1000000 warranty bit). {_WHAT_TO_DO}."
        )
    model, revision, memory_mb, manufacturer = entry
    return BoardRevision(
        code=value,
        new_style=False,
        model=model,
        processor=_OLD_PROCESSOR,
        memory_mb=memory_mb,
        manufacturer=manufacturer,
        revision=revision,
        warranty_void=bool(value & _OLD_WARRANTY_BIT),
        mailbox_alloc=True,
    )


def _decode_new(value: int, given: int | str) -> BoardRevision:
    rev = value & 0xF
    board_type = (value >> 4) & 0xFF
    proc = (value >> 12) & 0xF
    maker = (value >> 16) & 0xF
    mem = (value >> 20) & 0x7

    model = _CODE_TABLE_MODELS.get(value & 0xFFFFFF, _TYPES.get(board_type))
    if model is None:
        raise RevisionError(
            f"revision code {given!r} (0x{value:x}) has board type 0x{board_type:02x}, which "
            f"is not in the Raspberry Pi revision-code table. {_WHAT_TO_DO}; if the code is "
            f"right, the board is newer than pimem's table: please report it."
        )
    processor = _PROCESSORS.get(proc)
    if processor is None:
        raise RevisionError(
            f"revision code {given!r} (0x{value:x}) has processor field {proc}, which is not "
            f"in the Raspberry Pi revision-code table (0-4, BCM2835-BCM2712). {_WHAT_TO_DO}; "
            f"if the code is right, the board is newer than pimem's table: please report it."
        )
    manufacturer = _MANUFACTURERS.get(maker, f"unknown manufacturer {maker}")
    memory_mb = 0 if mem == _MEMORY_OTHER else 256 << mem
    return BoardRevision(
        code=value,
        new_style=True,
        model=model,
        processor=processor,
        memory_mb=memory_mb,
        manufacturer=manufacturer,
        # Every PCB revision in the documentation's table reads as 1.R.
        revision=f"1.{rev}",
        warranty_void=bool(value & _NEW_WARRANTY_BIT),
        mailbox_alloc=processor in _MAILBOX_ALLOC_PROCESSORS,
    )


# --- reading the code on a running system -----------------------------------

_CPUINFO_REVISION_RE = re.compile(r"^Revision\s*:\s*(\S+)\s*$", re.MULTILINE)


def read_revision_from_system(root: str | os.PathLike[str] = "/") -> int | None:
    """The board's revision code, or None when this is not a Raspberry Pi.

    Reads ``<root>/proc/device-tree/system/linux,revision`` (a big-endian u32; present on
    every kernel, including 64-bit ones whose cpuinfo has no Revision line), else the
    ``Revision`` line of ``<root>/proc/cpuinfo``. ``root`` lets tests use a fake tree.
    Raises RevisionError if the cpuinfo Revision line is present but not hex.
    """
    base = Path(root)
    dt_path = base / "proc/device-tree/system/linux,revision"
    try:
        raw = dt_path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raw = None
    if raw is not None and len(raw) == 4:
        return struct.unpack(">I", raw)[0]
    # A property of the wrong size is not a revision code; fall back to cpuinfo.

    cpuinfo_path = base / "proc/cpuinfo"
    try:
        text = cpuinfo_path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return None
    match = _CPUINFO_REVISION_RE.search(text)
    if match is None:
        return None  # e.g. a PC: cpuinfo exists but has no Revision line
    field = match.group(1)
    if _HEX_RE.fullmatch(field) is None:
        raise RevisionError(
            f"the Revision line of {cpuinfo_path} reads {field!r}, which is not hexadecimal; "
            f"check `grep Revision /proc/cpuinfo` or `.venv/bin/pimem info`."
        )
    return _parse_code(field)


def read_model_string(root: str | os.PathLike[str] = "/") -> str | None:
    """The firmware's model string, e.g. ``Raspberry Pi 3 Model B Rev 1.2``, or None.

    Read from ``<root>/proc/device-tree/model``; the device tree stores it NUL-terminated.
    """
    path = Path(root) / "proc/device-tree/model"
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return raw.decode("utf-8", errors="replace").rstrip("\x00").strip()


#: The kernel command-line word scripts/pi-machine.sh boots its QEMU machine with.
EMULATED_MACHINE_PARAMETER = "pimem.emulated="


def read_emulated_machine(root: str | os.PathLike[str] = "/") -> str | None:
    """What emulates this "Raspberry Pi", or None: a QEMU raspi machine looks like a Pi from inside.

    Two signs, either enough: the kernel command line carries ``pimem.emulated=<machine>`` (set by
    scripts/pi-machine.sh; a Pi's firmware never writes it), or /dev/vcio is a CUSE device (a
    program answers the mailbox, not the firmware).
    """
    root = Path(root)
    try:
        words = (root / "proc/cmdline").read_text(errors="replace").split()
    except OSError:
        words = []
    for word in words:
        if word.startswith(EMULATED_MACHINE_PARAMETER):
            return word[len(EMULATED_MACHINE_PARAMETER):] or "an emulated machine"
    if (root / "sys/class/cuse/vcio").exists():
        return "a machine whose /dev/vcio is a CUSE device (a program, not the firmware, answers the mailbox)"
    return None
