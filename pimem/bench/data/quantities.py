"""What a recording stores (a quantity and its unit) and what follows from it when it is read.

A row holds the quantity of one operation on `size_bytes` as it was measured (seconds) or as its
source printed it (ms, MB/s, MiB/s, ns ...). Everything else is computed here, in one place: the
time of one operation, the bytes counted for bandwidth (the buffer size: a copy counts its bytes
once), the bytes that cross the memory bus, and the bandwidth in GB/s and GiB/s (none for a
latency, none for a result that failed its check).
"""
from __future__ import annotations

import math
from decimal import Decimal
from collections.abc import Mapping
from typing import Any

from ..catalog import BUS_FACTOR

#: Each time unit as a power of ten of a second.
TIME_UNITS: dict[str, int] = {"s": 0, "ms": -3, "us": -6, "ns": -9}
RATE_UNITS: dict[str, float] = {"MB/s": 1e6, "MiB/s": float(2**20), "GB/s": 1e9, "GiB/s": float(2**30)}
#: Inverse rates: a time per so many bytes, as a source that prints the time per element gives it
#: (unit -> the time unit, the bytes). "ns/8B": nanoseconds per 8 bytes (one uint64 element read).
PER_BYTES_UNITS: dict[str, tuple[str, int]] = {"ns/8B": ("ns", 8)}
UNITS: tuple[str, ...] = (*TIME_UNITS, *RATE_UNITS, *PER_BYTES_UNITS)
#: The columns computed from a row when it is read.
DERIVED: tuple[str, ...] = ("seconds", "bytes", "bus_bytes", "gb_per_s", "gib_per_s")


def seconds_of(value: float, unit: str, size_bytes: int) -> float:
    """The time of one operation on size_bytes, from a quantity in `unit` (a time, a rate, or a time per bytes)."""
    if unit in TIME_UNITS:
        # A shift of the decimal point, read back as the figure it prints: 50.16 ms is the float 0.05016
        # (50.16 / 1e3 is one unit in the last place below it).
        return float(Decimal(repr(float(value))).scaleb(TIME_UNITS[unit]))
    if unit in PER_BYTES_UNITS:
        # size_bytes / 8 elements of `value` ns each: 16 x 4.994017 ns is one 128-byte pass of 79.904272 ns.
        time_unit, per = PER_BYTES_UNITS[unit]
        return seconds_of(value, time_unit, size_bytes) * (size_bytes / per)
    return size_bytes / (value * RATE_UNITS[unit])


def derived(row: Mapping[str, Any]) -> dict[str, Any]:
    """The computed columns of a checked row."""
    size = row["size_bytes"]
    seconds = seconds_of(row["value"], row["unit"], size)
    has_bandwidth = row["phase"] != "latency" and row["verified"] != "fail"
    return {"seconds": seconds, "bytes": size, "bus_bytes": BUS_FACTOR[row["phase"]] * size,
            "gb_per_s": size / seconds / 1e9 if has_bandwidth else None,
            "gib_per_s": size / seconds / 2**30 if has_bandwidth else None}


def quantity_of(row: Mapping[str, Any]) -> tuple[Any, Any]:
    """(value, unit) a frame's row stores: its own, or its seconds for a row measured in memory."""
    value, unit = row.get("value"), row.get("unit")
    if _present(value) and _present(unit):
        return value, unit
    return row.get("seconds"), "s"


def _present(x: Any) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x)) and x != ""
