"""Holding GPU memory: the one way pimem takes it from the firmware and gives it back.

allocate -> record in the ledger -> lock -> record the bus address -> (map), and back:
unmap -> unlock -> release -> forget. GpuBuffer, the course's walkthrough and lab 4 all hold
memory as a HeldAllocation (Backend.allocation), so all keep the same promises:

- the ledger entry is written straight after the firmware's answer, in one section under the
  ledger's lock with Ctrl-C and SIGTERM held back (Ledger.locked);
- a failure anywhere in that section gives the memory back before the error propagates;
- release() gives it back once, whoever calls it and however often, and forgets the entry only
  once the firmware has released the handle (otherwise `pimem cleanup` takes it back later).
"""
from __future__ import annotations

import contextlib
import ctypes
import mmap
import sys
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..exc import PimemError, UsageError
from ..firmware.memflags import MemFlag, bus_to_phys
from ..firmware.transport import PAGE_SIZE, detach_mapping
from ..paths import pimem_command
from .ledger import Allocation

if TYPE_CHECKING:
    from .backend import Backend

#: Every allocation not yet released, so that SIGTERM can give them all back.
_unreleased: "weakref.WeakSet[HeldAllocation]" = weakref.WeakSet()


def held_allocations() -> list["HeldAllocation"]:
    """The allocations this process holds and has not released yet."""
    return list(_unreleased)


def warn_unreleased(handle: int, error: BaseException) -> None:
    """Say on stderr that `handle` could not be given back, and what will take it back."""
    print(f"pimem: could not release GPU handle {handle}: {error}; "
          f"run '{pimem_command('cleanup')}' after this process ends", file=sys.stderr)


def hold(backend: "Backend", size: int, flags: MemFlag | int, alignment: int = PAGE_SIZE, *, lock: bool = True,
         map: bool = False, ask: Callable[[], int] | None = None) -> "HeldAllocation":
    """`size` bytes of GPU memory, in the ledger from the firmware's answer on (see Backend.allocation)."""
    if map and not lock:
        raise UsageError("map=True needs lock=True: only a locked block has an address to map")
    ledger = backend.ledger
    held: HeldAllocation | None = None
    try:
        with ledger.locked(), ledger.recording(size, flags) as pending:
            handle = ask() if ask is not None else backend.mailbox.allocate(size, alignment, flags)
            try:
                # From the answer until this write, a SIGKILL leaks the handle until reboot (the firmware
                # cannot list its handles): the entry was made ready before the allocate, so the gap is one write.
                held = HeldAllocation(backend, pending.commit(handle))
                if lock:
                    held._lock(None)
                if map:
                    held._map()
            except BaseException:
                _give_back(backend, handle, held, unlock=lock)
                raise
    except BaseException:
        # An interrupt held back in the section is raised as it ends, and then nobody gets the memory.
        if held is not None:
            held.release_or_warn()
        raise
    return held


def _give_back(backend: "Backend", handle: int, held: "HeldAllocation | None", unlock: bool) -> None:
    """After a failure inside hold()'s section: unlock, release, forget. The failure is the error to see."""
    if held is not None:
        held.released = True
        _unreleased.discard(held)
    if unlock:
        with contextlib.suppress(PimemError):   # it may have failed before the lock took
            backend.mailbox.unlock(handle)
    try:
        backend.mailbox.release(handle)
    except PimemError as e:
        warn_unreleased(handle, e)   # the entry stays: cleanup releases it once this process is gone
        return
    if held is not None:
        backend.ledger.forget(held.entry)


class HeldAllocation:
    """GPU memory this process holds, in the ledger until release(); a `with` block releases it at its end.

    Made by Backend.allocation. `bus` is the address the firmware's lock answered (None before),
    `mapping` and `address` the CPU's view of it once mapped.
    """

    def __init__(self, backend: "Backend", entry: Allocation) -> None:
        self.backend = backend
        self.entry = entry
        self.locked = False
        self.mapping: mmap.mmap | None = None
        self.address: int | None = None
        self.released = False
        self._guard = threading.Lock()
        _unreleased.add(self)

    @property
    def handle(self) -> int:
        return self.entry.handle

    @property
    def size(self) -> int:
        return self.entry.size

    @property
    def flags(self) -> MemFlag:
        return MemFlag(self.entry.flags)

    @property
    def bus(self) -> int | None:
        return self.entry.bus

    def lock(self, ask: Callable[[], int] | None = None) -> int:
        """Lock the block and record the bus address the firmware answers.

        `ask` replaces the lock call (it returns the bus address, or raises), as in Backend.allocation.
        """
        with self.backend.ledger.locked():
            return self._lock(ask)

    def _lock(self, ask: Callable[[], int] | None) -> int:
        bus = ask() if ask is not None else self.backend.mailbox.lock(self.handle)
        self.locked = True
        self.entry = self.backend.ledger.locked_at(self.entry, bus)
        return bus

    def _map(self) -> None:
        length = -(-self.size // PAGE_SIZE) * PAGE_SIZE
        # The transport maps only inside the GPU memory the firmware reports.
        self.mapping = self.backend.transport.map_physical(bus_to_phys(self.entry.bus), length)
        probe = ctypes.c_ubyte.from_buffer(self.mapping)
        self.address = ctypes.addressof(probe)
        del probe   # an export would keep the mapping from closing

    def release(self, *, detach_views: bool = False, ask: Callable[[], object] | None = None) -> None:
        """Unmap, unlock, release, forget; only the first call does anything.

        `detach_views`: leave private scratch memory where the mapping was, for views of it that
        live on, instead of unmapping. An unlock that fails is raised after the release; a release
        that fails is raised and the entry kept, so cleanup takes the memory back later. `ask`
        replaces the unlock and release calls: it sends the holder's own release message and
        raises if the firmware refuses it (lab 4).
        """
        # Not blocking: a second release of the same memory (the releasing thread, SIGTERM) has nothing to do.
        if not self._guard.acquire(blocking=False):
            return
        try:
            if self.released:
                return
            self.released = True
            self._unmap(detach_views)
            mailbox, ledger = self.backend.mailbox, self.backend.ledger
            with ledger.locked():
                try:
                    if self.locked and ask is None:
                        mailbox.unlock(self.handle)
                finally:
                    if ask is None:
                        mailbox.release(self.handle)
                    else:
                        ask()
                    ledger.forget(self.entry)
                    _unreleased.discard(self)
        finally:
            self._guard.release()

    def release_or_warn(self, *, detach_views: bool = False) -> bool:
        """release(), saying on stderr what could not be given back instead of raising; True if it was."""
        try:
            self.release(detach_views=detach_views)
        except Exception as e:  # noqa: BLE001 - for finalizers and error paths, which must not raise
            warn_unreleased(self.handle, e)
            return False
        return True

    def _unmap(self, detach_views: bool) -> None:
        if self.mapping is None:
            return
        if detach_views:
            # Views that live on read and write scratch memory, never GPU memory someone else may get.
            detach_mapping(self.address, len(self.mapping))
        else:
            self.mapping.close()

    def __enter__(self) -> "HeldAllocation":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.release()
        else:
            self.release_or_warn()   # the error that ended the block is the one to see

    def __repr__(self) -> str:
        state = "released" if self.released else f"bus=0x{self.bus:08X}" if self.bus is not None else "unlocked"
        return f"<HeldAllocation handle={self.handle} size={self.size} {state}>"
