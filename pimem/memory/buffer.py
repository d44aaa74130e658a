"""GPU buffers: memory from the firmware, mapped into this process.

allocate -> lock -> map -> numpy view, and back: unmap -> unlock ->
release, on every path (close(), the with-block, garbage collection,
interpreter exit), with every allocation in the ledger meanwhile.
"""
from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import signal
import sys
import threading
import warnings
import weakref

import numpy as np

from .backend import Backend, get_backend
from ..exc import BufferClosedError, GpuMemoryError, UsageError, ViewsOutliveBuffer
from .ledger import Allocation, deferred_interrupts
from ..firmware.memflags import Alias, MemFlag, bus_to_phys
from ..safefs import call_when_unlocked
from ..firmware.transport import PAGE_SIZE, detach_mapping

#: Every region not yet released, so that SIGTERM can give them all back.
_live_regions: "weakref.WeakSet[_Region]" = weakref.WeakSet()

DEFAULT_FLAGS = MemFlag.DIRECT | MemFlag.ZERO


def _round_up(n: int, to: int) -> int:
    return (n + to - 1) // to * to


class _Region:
    """Everything needed to give the memory back, kept apart from GpuBuffer.

    A weakref.finalize holds this (not the buffer), so release can run
    after the GpuBuffer itself is gone, once the last numpy view dies.
    """

    def __init__(self, backend: Backend, entry: Allocation, mapping: mmap.mmap, address: int, length: int) -> None:
        self.backend = backend
        self.entry = entry
        self.mapping = mapping
        self.address = address
        self.length = length
        self.released = False
        self._lock = threading.Lock()
        _live_regions.add(self)

    def release(self, views_alive: bool) -> None:
        # Not blocking=True: two releases of one region never wait on each other
        # (the second one has nothing to do).
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._release(views_alive)
        finally:
            self._lock.release()

    def _release(self, views_alive: bool) -> None:
        if self.released:
            return
        self.released = True
        if views_alive:
            # Exit with views still alive: make them point at scratch
            # memory first, so nothing can write into released GPU memory.
            detach_mapping(self.address, self.length)
        else:
            self.mapping.close()
        mailbox, ledger = self.backend.mailbox, self.backend.ledger
        with ledger.locked():
            try:
                mailbox.unlock(self.entry.handle)
            finally:
                mailbox.release(self.entry.handle)
                ledger.forget(self.entry)
                _live_regions.discard(self)


def _exporter_type(length: int) -> type:
    # A ctypes array subclass: it can be weak-referenced, and every numpy
    # view keeps it alive (their base), so its death means "no views left".
    return type("GpuMemory", (ctypes.c_ubyte * length,), {})


class GpuBuffer:
    """``size`` bytes of GPU memory, allocated with ``flags``, mapped for the CPU.

    >>> with GpuBuffer(1 << 20, MemFlag.DIRECT | MemFlag.ZERO) as buf:
    ...     buf.array[:] = 7

    The alias is read from the bus address the firmware locked, never
    assumed from the flags.
    """

    def __init__(self, size: int, flags: MemFlag | int = DEFAULT_FLAGS, *,
                 backend: Backend | None = None, alignment: int = PAGE_SIZE) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise UsageError(f"GPU buffer size must be a positive number of bytes, got {size!r}")
        if alignment <= 0 or alignment & (alignment - 1) or alignment % PAGE_SIZE:
            raise UsageError(f"alignment must be a power of two and a multiple of {PAGE_SIZE}, got {alignment}")
        flags = MemFlag(int(flags))
        if not flags & MemFlag.L1_NONALLOCATING:
            raise UsageError(
                f"flags {flags!r} give the NORMAL alias, which the firmware says not to use from the ARM; "
                "add DIRECT, COHERENT or L1_NONALLOCATING"
            )
        self.backend = backend if backend is not None else get_backend()
        self.backend.require_memory_tags()
        self.size = size
        self.flags = flags
        self._length = _round_up(size, PAGE_SIZE)
        mailbox, ledger = self.backend.mailbox, self.backend.ledger
        # One critical section from allocation to the finalizer that will
        # release it: no interrupt can leave the memory unaccounted for.
        _install_sigterm_handler()
        # The one window left: from the firmware's answer to allocate until commit()'s
        # write, a SIGKILL (which nothing can catch) leaks the handle until reboot,
        # because the firmware cannot list what it has allocated. That window is the
        # ioctl's return and the answer's checks: about 15 us under the emulator, 1% of
        # a tight allocate/release loop (scripts/stress-kill.sh measures it).
        with ledger.locked(), ledger.recording(self._length, flags) as pending:
            handle = mailbox.allocate(self._length, alignment, flags)
            entry = None
            try:
                # On disk before anything else: a SIGKILL from here on leaks nothing.
                entry = pending.commit(handle)
                bus = mailbox.lock(handle)
                entry = ledger.locked_at(entry, bus)
                # The transport maps only inside the GPU memory the firmware reports.
                mapping = self.backend.transport.map_physical(bus_to_phys(bus), self._length)
            except BaseException:
                with contextlib.suppress(GpuMemoryError):
                    mailbox.unlock(handle)
                mailbox.release(handle)
                if entry is not None:
                    ledger.forget(entry)
                raise
            # The exporter points at the mapping without holding a buffer
            # export on it, so the mmap can be closed from its finalizer.
            probe = ctypes.c_ubyte.from_buffer(mapping)
            address = ctypes.addressof(probe)
            del probe
            exporter = _exporter_type(self._length).from_address(address)
            self._region = _Region(self.backend, entry, mapping, address, self._length)
            self._array: np.ndarray | None = np.frombuffer(exporter, dtype=np.uint8, count=size)
            self._exporter_ref = weakref.ref(exporter)
            # Runs when the last view (and our own array) is gone, or at exit.
            self._finalizer = weakref.finalize(exporter, _finalize, self._region, self._exporter_ref)
            del exporter
        self.handle = handle
        self.bus_address = bus
        self.phys_address = bus_to_phys(bus)
        self.alias = Alias.from_bus(bus)

    # --- use ---
    @property
    def closed(self) -> bool:
        return self._array is None

    @property
    def array(self) -> np.ndarray:
        """The buffer as bytes (uint8). Views of it keep the memory allocated."""
        if self._array is None:
            raise BufferClosedError(
                f"this GpuBuffer (handle {self.handle}, bus 0x{self.bus_address:08X}) is closed; "
                "allocate a new one"
            )
        return self._array

    def view(self, dtype: np.dtype | type) -> np.ndarray:
        """The buffer as another element type (its size must divide evenly)."""
        return self.array.view(dtype)

    @property
    def address(self) -> int:
        """The virtual address of the mapping in this process (for ctypes kernels)."""
        self.array  # raises when closed
        return self._region.address

    # --- lifetime ---
    def close(self) -> None:
        """Give the memory back. Safe to call twice.

        If numpy views of the buffer are still alive, the memory stays
        allocated (and mapped) until the last of them is deleted, so no
        view can ever write into released memory; a warning says so.
        """
        self._close(warn=True)

    def _close(self, warn: bool) -> None:
        if self._array is None:
            return
        with deferred_interrupts():
            # Disarm the finalizer while our array goes: a release run from a
            # weakref callback would print and swallow a Ctrl-C held back
            # during it. Released here instead, unless views keep it alive.
            self._finalizer.detach()
            self._array = None
            exporter = self._exporter_ref()
            if exporter is None:
                self._region.release(views_alive=False)
                return
            self._finalizer = weakref.finalize(exporter, _finalize, self._region, self._exporter_ref)
            del exporter
        if warn:
            warnings.warn(
                f"GpuBuffer handle {self.handle} closed while numpy views of it are alive: its "
                f"{self.size} bytes stay allocated until the last view is deleted (del it, "
                "or copy what you need with .copy() before closing)",
                ViewsOutliveBuffer,
                stacklevel=3,
            )

    def __enter__(self) -> "GpuBuffer":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # While an exception propagates, its traceback holds the frames'
        # views for a moment: the release then follows when it is dropped.
        self._close(warn=exc_type is None)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"bus=0x{self.bus_address:08X} alias={self.alias}"
        return f"<GpuBuffer handle={self.handle} size={self.size} flags={self.flags!r} {state}>"

    def describe(self) -> dict[str, object]:
        return {
            "handle": self.handle,
            "size": self.size,
            "flags": str(self.flags),
            "bus": f"0x{self.bus_address:08X}",
            "alias": str(self.alias),
            "phys": f"0x{self.phys_address:08X}",
        }


def _finalize(region: _Region, exporter_ref: weakref.ref) -> None:
    # Runs from the garbage collector or refcounting, possibly while this process
    # is inside a locked section (the ledger's, the emulator's): then the release
    # waits until the last lock is dropped, instead of deadlocking on it.
    call_when_unlocked(lambda: _release_quietly(region, exporter_ref))


def _release_quietly(region: _Region, exporter_ref: weakref.ref) -> None:
    # At interpreter exit the finalizer runs even if views are alive.
    try:
        region.release(views_alive=exporter_ref() is not None)
    except Exception as e:  # noqa: BLE001 - a finalizer must not raise; say what leaked
        print(f"pimem: could not release GPU handle {region.entry.handle}: {e}; "
              "run 'python -m pimem cleanup'", file=sys.stderr)


def host_array(size: int, backend: Backend | None = None) -> np.ndarray:
    """A host buffer of `size` bytes, backed as `backend`'s GPU memory is where that differs.

    On a Pi (or with no backend): ordinary process memory. On the emulator, whose "GPU"
    memory is a shared file mapping: the same kind of mapping, so a host run's host and
    "GPU" buffers differ in nothing but their names.
    """
    mapping = backend.transport.host_memory(size) if backend is not None else None
    if mapping is None:
        return np.empty(size, dtype=np.uint8)
    return np.frombuffer(mapping, dtype=np.uint8, count=size)


def release_all() -> None:
    """Give back every GPU buffer of this process now (views are detached first)."""
    for region in list(_live_regions):
        try:
            region.release(views_alive=True)
        except Exception as e:  # noqa: BLE001 - release the others anyway
            print(f"pimem: could not release GPU handle {region.entry.handle}: {e}; "
                  "run 'python -m pimem cleanup'", file=sys.stderr)


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM (kill, or Jupyter stopping a kernel): release everything, then die of it.

    If it lands while this thread holds a pimem lock (a mailbox call), that
    finishes first: the release needs the same locks.
    """
    call_when_unlocked(_release_all_and_die)


def _release_all_and_die() -> None:
    release_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)   # the conventional ending: killed by SIGTERM (status 143)


def _install_sigterm_handler() -> None:
    # Only where nobody else has claimed SIGTERM, and only from the main thread
    # (the one place Python may set handlers).
    if threading.current_thread() is not threading.main_thread():
        return
    with contextlib.suppress(ValueError, OSError):
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
