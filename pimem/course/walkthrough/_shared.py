"""What notebooks 02 and 03 share: a size checked and rounded to whole pages."""
from __future__ import annotations

from ...exc import UsageError
from ...firmware.transport import PAGE_SIZE


def whole_pages(size: int) -> int:
    """`size` bytes rounded up to whole pages, or UsageError unless it is a positive int."""
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise UsageError(f"size must be a positive number of bytes, got {size!r}")
    return -(-size // PAGE_SIZE) * PAGE_SIZE
