"""Backend.allocation: the one allocation sequence, in the ledger from the firmware's answer to the release."""
from __future__ import annotations

import pytest

from pimem.exc import GpuMemoryError
from pimem.firmware.memflags import MemFlag
from pimem.firmware.protocol import Tag
from pimem.firmware.transport import RecordingTransport
from pimem.memory.allocation import held_allocations
from pimem.memory.ledger import PendingEntry


def nothing_held(backend) -> None:
    assert backend.transport.firmware.allocations() == []
    assert backend.ledger.entries() == []


def test_held_in_the_ledger_until_the_block_ends(backend):
    with backend.allocation(8192, MemFlag.DIRECT | MemFlag.ZERO) as held:
        assert held.bus is not None and held.bus >> 30 == 3   # DIRECT: the 0xC alias
        assert [(e.handle, e.bus) for e in backend.ledger.entries()] == [(held.handle, held.bus)]
        assert held in held_allocations()
    assert held.released and held not in held_allocations()
    nothing_held(backend)
    held.release()   # a second release does nothing


def test_mapped_memory_is_the_firmwares(backend):
    with backend.allocation(4096, MemFlag.COHERENT | MemFlag.ZERO, map=True) as held:
        held.mapping[:4] = b"\xa5" * 4
        fw = backend.transport.firmware
        with open(fw.memory_path, "rb") as f:
            f.seek((held.bus & 0x3FFFFFFF) - fw.vc_base)
            assert f.read(4) == b"\xa5" * 4
    assert held.mapping.closed
    nothing_held(backend)


def test_unlocked_until_asked(backend):
    held = backend.allocation(4096, MemFlag.DIRECT, lock=False)
    assert [(e.handle, e.bus) for e in backend.ledger.entries()] == [(held.handle, None)]
    bus = held.lock()
    assert [(e.handle, e.bus) for e in backend.ledger.entries()] == [(held.handle, bus)]
    held.release()
    nothing_held(backend)


@pytest.mark.parametrize("error", [GpuMemoryError("injected"), KeyboardInterrupt()])
def test_a_failed_lock_gives_the_memory_back(backend, monkeypatch, error):
    def lock(handle):
        raise error

    monkeypatch.setattr(backend.mailbox, "lock", lock)
    with pytest.raises(type(error)):
        backend.allocation(4096, MemFlag.DIRECT)
    monkeypatch.undo()
    nothing_held(backend)


def test_an_entry_that_cannot_be_written_gives_the_memory_back(backend, monkeypatch):
    def full_disk(self, handle):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PendingEntry, "commit", full_disk)
    with pytest.raises(OSError, match="No space left"):
        backend.allocation(4096, MemFlag.DIRECT)
    monkeypatch.undo()
    nothing_held(backend)


def test_an_error_in_the_block_releases_and_propagates(backend):
    with pytest.raises(ZeroDivisionError):
        with backend.allocation(4096, MemFlag.DIRECT):
            1 / 0
    nothing_held(backend)


def test_the_messages_through_a_recording_transport(backend):
    log = RecordingTransport(backend.transport)
    with backend.through(log).allocation(4096, MemFlag.DIRECT):
        pass
    assert [ex.tag for ex in log.exchanges] == [Tag.ALLOCATE_MEMORY, Tag.LOCK_MEMORY, Tag.UNLOCK_MEMORY,
                                                Tag.RELEASE_MEMORY]
    nothing_held(backend)
