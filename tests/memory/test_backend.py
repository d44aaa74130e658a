"""The backend: what it lets the transport map."""
from __future__ import annotations

import pytest



# --- the peripheral window (Pi 2/3: ARM physical 0x3F000000-0x3FFFFFFF) ------------------

def test_the_peripheral_window_is_not_mappable_gpu_memory():
    from pimem.firmware.board import decode_revision
    from pimem.memory.backend import mappable_gpu_memory

    pi3 = decode_revision(0xA02082)
    base, size, note = mappable_gpu_memory(0x3B400000, 76 << 20, pi3)
    assert (base, size) == (0x3B400000, 0x3F000000 - 0x3B400000) and "0x3F000000" in note
    assert mappable_gpu_memory(0x3B400000, 76 << 20, None)[1] == size          # unknown: treated as a Pi 2/3
    assert mappable_gpu_memory(0x1B000000, 80 << 20, decode_revision(0x0010)) == (0x1B000000, 80 << 20, "")
    assert mappable_gpu_memory(0x3B400000, 76 << 20, decode_revision(0xC03111)) == (0x3B400000, 76 << 20, "")


def test_pimem_never_maps_the_peripheral_window(backend):
    from pimem.exc import MailboxError

    transport = backend.transport
    with pytest.raises(MailboxError, match="0x3F000000.*peripherals"):
        transport.map_physical(0x3F000000, 4096)
    transport.map_physical(0x3EFFF000, 4096).close()     # the page below it is GPU memory
