"""Helpers that notebooks 02 and 03 share: giving GPU memory back, checking a size."""
from __future__ import annotations

# Every helper that takes GPU memory gives it back, on every path, with the
# allocation in the ledger meanwhile (as GpuBuffer does), so a notebook
# kernel that dies mid-cell leaves nothing the next process cannot reclaim.

import contextlib
import sys

from ...paths import pimem_command
from ...memory.backend import Backend
from ...exc import PimemError, UsageError
from ...firmware.transport import PAGE_SIZE

MiB = 1 << 20


def _give_back(backend: Backend, handle: int, locked: bool) -> bool:
    """Unlock (if locked) and release; True when the release succeeded."""
    mailbox = backend.mailbox
    if locked:
        with contextlib.suppress(PimemError):
            mailbox.unlock(handle)
    try:
        mailbox.release(handle)
    except PimemError as e:
        print(f"pimem: could not release GPU handle {handle}: {e}; "
              f"run '{pimem_command('cleanup')}' after this process ends", file=sys.stderr)
        return False
    return True


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise UsageError(f"size must be a positive number of bytes, got {size!r}")
    return -(-size // PAGE_SIZE) * PAGE_SIZE

