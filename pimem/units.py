"""Sizes in bytes: the binary units, and reading and writing sizes the way pimem's messages show them.

Foundation module (like exc and paths): it imports nothing of pimem but exc, and every layer may use it.
GB and MB are 10^9 and 10^6 bytes; GiB, MiB and KiB are 2^30, 2^20 and 2^10.
"""
from __future__ import annotations

import re

from .exc import UsageError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
#: No size pimem takes can be larger (a sweep's host buffers, a Pi's GPU memory: a few GiB at most).
MAX_SIZE = 1 << 40

_UNITS = {"": 1, "b": 1, "k": KiB, "kb": 1000, "kib": KiB, "m": MiB, "mb": 10**6, "mib": MiB,
          "g": GiB, "gb": 10**9, "gib": GiB}


def parse_size(text: str | int, *, default_unit: int = 1) -> int:
    """Bytes from '4096', '64KiB', '1MiB', '1.5MB' (KB/MB = 10^3/10^6; KiB/MiB = 2^10/2^20)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value, unit = float(text), default_unit
    else:
        if str(text).strip().startswith("-"):
            raise UsageError(f"size {text!r} is negative; give a positive size such as 4096, 64KiB or 1MiB")
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
        if not m or m.group(2).lower() not in _UNITS:
            raise UsageError(f"size {text!r} is not a size; write e.g. 4096, 64KiB, 1MiB or 1.5MB")
        value = float(m.group(1))
        unit = _UNITS[m.group(2).lower()] if m.group(2) else default_unit
    if not value * unit <= MAX_SIZE:   # also inf and nan, from a number too long for a float
        raise UsageError(f"size {str(text)[:30]!r}{'...' if len(str(text)) > 30 else ''} is more than "
                         f"{format_size(MAX_SIZE)}; pimem's buffers are a Pi's memory, at most a few GiB")
    size = int(value * unit)
    if size <= 0 or size != value * unit:
        raise UsageError(f"size {text!r} must be a positive whole number of bytes")
    return size


def format_size(n: int) -> str:
    """'64 MiB', '4 KiB', '1536 B': the largest binary unit that divides n."""
    for unit, name in ((GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if n >= unit and n % unit == 0:
            return f"{n // unit} {name}"
    return f"{n} B"
