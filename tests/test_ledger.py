"""The ledger never releases what a live process owns."""
from __future__ import annotations

import os
import subprocess
import sys

from pimem.ledger import Ledger, process_alive, process_start_time
from pimem.memflags import MemFlag


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_process_alive():
    me = os.getpid()
    assert process_alive(me, process_start_time(me))
    assert not process_alive(me, (process_start_time(me) or 0) + 1)  # a reused pid
    assert not process_alive(dead_pid(), None)


def _entry_as(ledger: Ledger, pid: int, handle: int, bus: int, size: int = 4096) -> None:
    import dataclasses
    import json
    with ledger.locked():
        e = ledger.record(handle, size, MemFlag.DIRECT, bus)
    path = ledger.directory / e.filename
    path.unlink()
    e = dataclasses.replace(e, pid=pid, start_time=None)
    (ledger.directory / e.filename).write_text(json.dumps(dataclasses.asdict(e)))


def test_reclaim_only_dead_and_only_same_address(backend):
    mb, ledger = backend.mailbox, backend.ledger
    dead = dead_pid()
    h1 = mb.allocate(4096, 4096, MemFlag.DIRECT)
    bus1 = mb.lock(h1)
    _entry_as(ledger, dead, h1, bus1)
    # An entry of a dead process whose handle now locks elsewhere: not released.
    h2 = mb.allocate(4096, 4096, MemFlag.DIRECT)
    bus2 = mb.lock(h2)
    _entry_as(ledger, dead, h2, bus2 ^ 0x1000)
    # A live process's allocation: untouched.
    h3 = mb.allocate(4096, 4096, MemFlag.DIRECT)
    bus3 = mb.lock(h3)
    _entry_as(ledger, os.getpid(), h3, bus3)
    freed = ledger.reclaim(mb)
    assert [e.handle for e in freed] == [h1]
    assert mb.lock(h2) == bus2 and mb.lock(h3) == bus3  # both still allocated
    assert {e.handle for e in ledger.entries()} == {h3}


def test_dead_entry_sharing_a_live_handle_is_only_forgotten(backend):
    mb, ledger = backend.mailbox, backend.ledger
    h = mb.allocate(4096, 4096, MemFlag.DIRECT)
    bus = mb.lock(h)
    _entry_as(ledger, dead_pid(), h, bus)
    _entry_as(ledger, os.getpid(), h, bus)
    assert ledger.reclaim(mb) == []
    assert mb.lock(h) == bus
    assert [e.pid for e in ledger.entries()] == [os.getpid()]


def test_stray_files_are_not_allocations(backend):
    (backend.ledger.directory / "junk.json").write_text("{not json")
    assert backend.ledger.entries() == []
