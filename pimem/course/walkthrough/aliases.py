"""Helpers for notebooks/02-unified-memory-and-aliases.ipynb: the four bus aliases and the flag survey."""
from __future__ import annotations

import pandas as pd

from ...memory.backend import Backend, get_backend
from ...firmware.memflags import ARM_USABLE_FLAGS, Alias, BusAddress, MemFlag, flag_names
from ._shared import whole_pages


# --- the four aliases -------------------------------------------------------

def alias_table() -> pd.DataFrame:
    """The four bus aliases with both published descriptions.

    manual: BCM2835 ARM Peripherals, the memory map of section 1.2.1 and the
    footnote of section 1.2.3; firmware: the comment on
    the matching allocation flag in the firmware wiki ("Mailbox property
    interface"). The two disagree about 0x4 and 0x8.
    """
    rows = []
    for a in Alias:
        rows.append({
            "alias": str(a),
            "bits 31..30": format(a.value >> 2, "02b"),
            "bus base": f"0x{a.base:08X}",
            "flag that gets it": a.name,
            "BCM2835 manual (1.2.1, 1.2.3)": a.manual,
            "firmware wiki (flag comment)": a.firmware,
            "sources disagree": "yes" if a.sources_disagree else "",
        })
    return pd.DataFrame(rows)


def decode_table(*addresses: int) -> pd.DataFrame:
    """Bus addresses taken apart: alias (bits 31..30 as a hex digit and as a number), physical."""
    rows = []
    for bus in addresses:
        d = BusAddress.decode(bus)
        rows.append({
            "bus": f"0x{bus:08X}",
            "bus >> 30": bus >> 30,
            "alias (top hex digit, low bits clear)": str(d.alias),
            "flag that gets it": d.alias.name,
            "physical": f"0x{d.phys:08X}",
        })
    return pd.DataFrame(rows)


def flag_survey(backend: Backend | None = None, size: int = 64 * 1024,
                flags: tuple[MemFlag, ...] = ARM_USABLE_FLAGS) -> pd.DataFrame:
    """Allocate with each flag in turn, lock, decode the bus address the firmware gave.

    One allocation at a time, each released before the next (so the same
    physical memory may come back under another alias). The alias column
    is read from the address; 'BCM2837 gives' is what the firmware of a
    Pi 3 gives that flag, for comparison.
    """
    backend = backend if backend is not None else get_backend()
    backend.require_memory_tags()
    length = whole_pages(size)
    rows = []
    for flag in flags:
        flag = MemFlag(int(flag))
        with backend.allocation(length, flag | MemFlag.ZERO) as held:   # in the ledger until released
            handle, bus = held.handle, held.bus
            d = BusAddress.decode(bus)
        rows.append({
            "flag": flag_names(flag), "value": int(flag), "handle": handle,
            "bus address": f"0x{bus:08X}", "alias (from the address)": str(d.alias),
            "BCM2837 gives": str(Alias.for_flags(flag)), "physical": f"0x{d.phys:08X}",
        })
    return pd.DataFrame(rows)


__all__ = ["alias_table", "decode_table", "flag_survey"]
