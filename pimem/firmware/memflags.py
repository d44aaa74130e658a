"""Allocation flags and bus address aliases of the VideoCore memory.

Sources: the firmware wiki's allocation flags (raspberrypi/firmware,
"Mailbox property interface") and the BCM2835 ARM Peripherals manual,
sections 1.2.1 (the memory map) and 1.2.3 (the footnote on the
bus address's top two bits). Section 1.2.4 is about peripheral and DMA
addresses, not the aliases.
"""
from __future__ import annotations

import re

import enum
from dataclasses import dataclass

from ..exc import AddressError

#: Bits 31..30 of a bus address pick the alias.
ALIAS_MASK = 0xC0000000


class MemFlag(enum.IntFlag):
    """Flags for the allocate-memory tag, with the firmware's values."""

    NORMAL = 0             # normal allocating alias; the firmware says: don't use from ARM
    DISCARDABLE = 1 << 0   # can be resized to 0 at any time; for cached data
    DIRECT = 1 << 2        # the 0xC alias: uncached
    COHERENT = 2 << 2      # the 0x8 alias: non-allocating in L2 but coherent
    L1_NONALLOCATING = DIRECT | COHERENT  # allocating in L2
    ZERO = 1 << 4          # initialise to zeros
    NO_INIT = 1 << 5       # don't initialise (the wiki: the default is all ones; a live first word tells)
    HINT_PERMALOCK = 1 << 6  # likely to be locked for a long time


def flag_names(flags: int) -> str:
    """Flags as names joined by '|', the alias mode first: 24 -> 'COHERENT|ZERO'."""
    flags = int(flags)
    names = [MemFlag(flags & int(MemFlag.L1_NONALLOCATING)).name]
    names += [f.name for f in (MemFlag.DISCARDABLE, MemFlag.ZERO, MemFlag.NO_INIT, MemFlag.HINT_PERMALOCK)
              if flags & f]
    unknown = flags & ~0x7D
    if unknown:
        names.append(f"0x{unknown:X}")
    return "|".join(names)


#: The flags a process on the ARM may use for memory it maps (NORMAL is not one).
ARM_USABLE_FLAGS: tuple[MemFlag, ...] = (MemFlag.DIRECT, MemFlag.COHERENT, MemFlag.L1_NONALLOCATING)


class Alias(enum.IntEnum):
    """The four bus aliases, by their top hex digit.

    Named after the allocation flag that gets each one on a BCM2837, which
    is what the firmware itself does (the original lesson's run: COHERENT
    gave 0xBAAA8000, DIRECT 0xFAAA8000).
    """

    NORMAL = 0x0
    L1_NONALLOCATING = 0x4
    COHERENT = 0x8
    DIRECT = 0xC

    @property
    def base(self) -> int:
        """The alias's first bus address, e.g. 0xC0000000."""
        return self.value << 28

    @classmethod
    def from_bus(cls, bus: int) -> "Alias":
        """The alias of a bus address: bits 31..30, shown as a hex digit."""
        _check_bus(bus)
        return cls(((bus >> 30) & 0x3) << 2)

    @classmethod
    def for_flags(cls, flags: int) -> "Alias":
        """The alias a BCM2837's firmware gives an allocation with these flags."""
        return _ALIAS_OF_FLAG[MemFlag(int(flags) & MemFlag.L1_NONALLOCATING)]

    @property
    def manual(self) -> str:
        """What the BCM2835 ARM Peripherals manual (sections 1.2.1 and 1.2.3) says of it."""
        return _MANUAL[self]

    @property
    def firmware(self) -> str:
        """What the firmware wiki's comment on the matching flag says of it."""
        return _FIRMWARE[self]

    @property
    def sources_disagree(self) -> bool:
        """True for 0x4 and 0x8: the manual and the firmware swap them."""
        return self in (Alias.L1_NONALLOCATING, Alias.COHERENT)

    def __str__(self) -> str:
        return f"0x{self.value:X}"


_ALIAS_OF_FLAG = {
    MemFlag.NORMAL: Alias.NORMAL,
    MemFlag.DIRECT: Alias.DIRECT,
    MemFlag.COHERENT: Alias.COHERENT,
    MemFlag.L1_NONALLOCATING: Alias.L1_NONALLOCATING,
}

_MANUAL = {
    Alias.NORMAL: "L1 and L2 cached",
    Alias.L1_NONALLOCATING: "L2 cache coherent (non allocating)",
    Alias.COHERENT: "L2 cached (only)",
    Alias.DIRECT: "direct uncached",
}
_FIRMWARE = {
    Alias.NORMAL: "normal allocating alias; don't use from ARM",
    Alias.L1_NONALLOCATING: "allocating in L2",
    Alias.COHERENT: "non-allocating in L2 but coherent",
    Alias.DIRECT: "uncached",
}


def _check_bus(bus: int) -> None:
    if not isinstance(bus, int) or isinstance(bus, bool) or not 0 <= bus <= 0xFFFFFFFF:
        raise AddressError(
            f"bus address {bus!r} is not a 32-bit unsigned integer; "
            "give it as hex, e.g. 0xFAAA8000"
        )


def bus_to_phys(bus: int) -> int:
    """The ARM physical address of a bus address: clear the alias bits.

    As hello_fft's gpu_fft_base.c does; raspberrypi/firmware#423 shows a
    wrong conversion hanging the kernel.
    """
    _check_bus(bus)
    return bus & ~ALIAS_MASK


@dataclass(frozen=True)
class BusAddress:
    """A bus address taken apart."""

    bus: int
    alias: Alias
    phys: int

    @classmethod
    def decode(cls, bus: int) -> "BusAddress":
        return cls(bus, Alias.from_bus(bus), bus_to_phys(bus))

    def as_dict(self) -> dict[str, object]:
        return {
            "bus": f"0x{self.bus:08X}",
            "alias": str(self.alias),
            "alias_flag": self.alias.name,
            "manual": self.alias.manual,
            "firmware": self.alias.firmware,
            "sources_disagree": self.alias.sources_disagree,
            "phys": f"0x{self.phys:08X}",
        }


def parse_address(text: str | int) -> int:
    """A bus address from user text, always read as hex ('0xFAAA8000', 'faaa8000').

    Addresses are written in hex everywhere (manuals, kernel logs), so a
    bare '38000000' means 0x38000000, not thirty-eight million.
    """
    if isinstance(text, int):
        _check_bus(text)
        return text
    s = text.strip().replace("_", "")
    # ASCII hex only: int() would also take '+1', '-0' and full-width digits.
    if not re.fullmatch(r"(0[xX])?[0-9a-fA-F]{1,16}", s):
        raise AddressError(f"{text!r} is not a hex address; give it as e.g. 0xFAAA8000")
    value = int(s, 16)
    try:
        _check_bus(value)
    except AddressError:
        raise AddressError(f"{text!r} is more than 32 bits: a bus address is a 32-bit number, 8 hex digits at most, "
                           "e.g. 0xFAAA8000") from None
    return value
