"""GPU buffers: memory from the firmware, mapped into this process.

Held through Backend.allocation (allocate -> lock -> map, in the ledger meanwhile) with a
numpy view over it, and given back on every path: close(), the with-block, garbage
collection, interpreter exit, SIGTERM.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import operator
import os
import queue
import signal
import threading
import warnings
import weakref

import numpy as np

from . import device
from .device import enable_faulthandler
from .allocation import HeldAllocation, held_allocations
from .backend import Backend, get_backend
from ..exc import BufferClosedError, UsageError, ViewsOutliveBuffer
from .ledger import deferred_interrupts
from ..firmware.memflags import Alias, MemFlag, bus_to_phys
from ..safefs import call_when_unlocked
from ..firmware.transport import PAGE_SIZE

DEFAULT_FLAGS = MemFlag.DIRECT | MemFlag.ZERO


def _round_up(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def _whole(name: str, value: object, what: str) -> int:
    """An integer argument (numpy's too), or UsageError naming it."""
    if isinstance(value, bool):
        raise UsageError(f"GpuBuffer {name}={value!r}: give {what}")
    try:
        return operator.index(value)
    except TypeError:
        raise UsageError(f"GpuBuffer {name}={value!r}: give {what}") from None


def check_flags(flags: object) -> MemFlag:
    """The allocation flags of a buffer the ARM maps, or UsageError saying what is wrong with them."""
    hint = "MemFlag members combined with |, e.g. MemFlag.DIRECT | MemFlag.ZERO"
    if isinstance(flags, str):
        raise UsageError(f"GpuBuffer flags={flags!r}: a name is not a flag; give {hint} (MemFlag[{flags!r}] "
                         "turns one name into its flag)")
    value = _whole("flags", flags, hint)
    if value < 0 or value & ~int(MemFlag(0x7F)):
        raise UsageError(f"GpuBuffer flags={flags!r}: not a combination of the firmware's flags (0 to 0x7F, "
                         f"none negative); give {hint}")
    result = MemFlag(value)
    # The firmware wiki: DISCARDABLE memory "can be resized to 0 at any time", under the mapping.
    if result & MemFlag.DISCARDABLE:
        raise UsageError("GpuBuffer flags with DISCARDABLE: the firmware may shrink such memory to nothing at any "
                         "time, under the mapping; leave it out")
    if result & MemFlag.ZERO and result & MemFlag.NO_INIT:
        raise UsageError("GpuBuffer flags with both ZERO and NO_INIT: one asks for zeros, the other for no "
                         "initialisation; choose one")
    if not result & MemFlag.L1_NONALLOCATING:
        raise UsageError(
            f"flags {result!r} give the NORMAL alias, which the firmware says not to use from the ARM; "
            "add DIRECT, COHERENT or L1_NONALLOCATING"
        )
    return result


def _checked(size: object, flags: object, alignment: object,
             backend: object) -> tuple[int, MemFlag, int, Backend]:
    """GpuBuffer's arguments as it uses them, or UsageError naming the one that is wrong."""
    size = _whole("size", size, "a positive number of bytes, e.g. 1 << 20")
    if size <= 0 or size >= 1 << 32:
        raise UsageError(f"GpuBuffer size={size}: give a positive number of bytes below 4 GiB, e.g. 1 << 20")
    alignment = _whole("alignment", alignment, f"a power of two, a multiple of {PAGE_SIZE}")
    if alignment <= 0 or alignment & (alignment - 1) or alignment % PAGE_SIZE:
        raise UsageError(f"GpuBuffer alignment={alignment}: give a power of two and a multiple of {PAGE_SIZE}")
    flags = check_flags(flags)
    if isinstance(backend, str):   # a backend's name, as PIMEM_BACKEND takes it
        backend = get_backend(backend)
    elif backend is not None and not isinstance(backend, Backend):
        raise UsageError(f"GpuBuffer backend={backend!r}: give a Backend (pimem.get_backend()), a name "
                         "('pi' or 'emulator'), or leave it out")
    return size, flags, alignment, backend if backend is not None else get_backend()


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
                 backend: Backend | str | None = None, alignment: int = PAGE_SIZE) -> None:
        size, flags, alignment, self.backend = _checked(size, flags, alignment, backend)
        self.backend.require_memory_tags()
        if self.backend.name == "pi":
            enable_faulthandler()   # a SIGBUS on Device memory shows the Python line that caused it
        _start_releaser()
        wait_for_releases()   # memory that dropped buffers held is given back first
        self.size = size
        self.flags = flags
        self._length = _round_up(size, PAGE_SIZE)
        _install_sigterm_handler()
        self._array: np.ndarray | None = None
        held = None
        try:
            # From the allocation to the release armed below, a Ctrl-C waits: it cannot leave the memory unowned.
            with deferred_interrupts():
                held = self.backend.allocation(self._length, flags, alignment, map=True)
                self._expose(held)
        except BaseException:
            # A Ctrl-C held back is raised as the section ends, inside this constructor: nobody gets the
            # buffer, and IPython's saved traceback would keep it alive. Give it back now.
            if self._array is not None:
                self._close(warn=False, force=True)
            elif held is not None:
                held.release_or_warn(detach_views=True)
            raise
        self.handle = held.handle
        self.bus_address = held.bus
        self.phys_address = bus_to_phys(held.bus)
        self.alias = Alias.from_bus(held.bus)

    def _expose(self, held: HeldAllocation) -> None:
        """The numpy array over the mapping, and the release its last view's death will queue."""
        # The exporter points at the mapping without holding a buffer export on it, so the mmap can be
        # closed from the releasing thread; it keeps the mmap object, so after a detach the scratch memory
        # lasts as long as the views do.
        exporter = _exporter_type(self._length).from_address(held.address)
        exporter.mapping = held.mapping
        self._held = held
        array = np.frombuffer(exporter, dtype=np.uint8, count=self.size)
        self._exporter_ref = _arm(exporter, held)
        self._array = array

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

    # On a Pi, GPU memory is Device memory: an unaligned access or numpy's ``a[:] = 0`` (memset's
    # DC ZVA) there is SIGBUS. These three never make one (pimem.memory.device).
    def fill(self, value: int) -> None:
        """Set every byte to ``value`` (0..255), safely on a Pi (``array[:] = 0`` is not)."""
        device.fill(self.array, value)

    def write(self, data: bytes | bytearray | memoryview | np.ndarray, offset: int = 0) -> None:
        """Copy ``data``'s bytes into the buffer from ``offset``, at any offset and length, safely on a Pi."""
        try:
            source = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
        except (TypeError, ValueError, BufferError):
            raise UsageError(f"GpuBuffer.write needs bytes or a contiguous numpy array, got {type(data).__name__}"
                             ) from None
        if not source.flags.c_contiguous:
            source = np.ascontiguousarray(source)
        offset, size = self._range(offset, source.nbytes, "write")
        device.copy(self.array[offset:offset + size], source)

    def read(self, offset: int = 0, size: int | None = None) -> np.ndarray:
        """A host copy (uint8) of ``size`` bytes from ``offset`` (default: to the end), safely on a Pi."""
        offset, size = self._range(offset, size, "read")
        out = np.empty(size, dtype=np.uint8)
        device.copy(out, self.array[offset:offset + size])
        return out

    def _range(self, offset: object, size: object, what: str) -> tuple[int, int]:
        """(offset, size) checked to lie in the buffer; size None: to the end."""
        offset = _whole("offset", offset, "a whole number of bytes")
        size = self.size - offset if size is None else _whole("size", size, "a whole number of bytes")
        if offset < 0 or size < 0 or offset + size > self.size:
            raise UsageError(f"{what} of {size} bytes at offset {offset} does not fit in this {self.size}-byte "
                             f"GpuBuffer; keep offset + size within 0..{self.size}")
        return offset, size

    @property
    def address(self) -> int:
        """The virtual address of the mapping in this process (for ctypes kernels)."""
        self.array  # raises when closed
        return self._held.address

    # --- lifetime ---
    def close(self) -> None:
        """Give the memory back. Safe to call twice.

        If numpy views of the buffer are still alive, the memory stays
        allocated (and mapped) until the last of them is deleted, so no
        view can ever write into released memory; a warning says so.
        """
        self._close(warn=True)

    def _close(self, warn: bool, force: bool = False) -> None:
        if self._array is None:
            return
        with deferred_interrupts():
            # Disarm the release the exporter's death would queue while our array goes: released
            # here instead, unless views keep it alive (or `force`: the views are detached first).
            _waiting.pop(id(self._exporter_ref), None)
            self._array = None
            exporter = self._exporter_ref()
            if exporter is None or force:
                self._held.release(detach_views=exporter is not None)
                return
            _waiting[id(self._exporter_ref)] = (self._exporter_ref, self._held)   # released when the last view dies
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
        # Leaving on an exception (Ctrl-C among them), the traceback holds the frames' views, and
        # IPython keeps the last traceback for as long as it likes: release now, with any view
        # left pointing at private scratch memory, never at GPU memory someone else may get.
        self._close(warn=exc_type is None, force=exc_type is not None)

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


# --- releases the garbage collector starts ------------------------------------------
#
# When the last view of a buffer dies, the memory must go back; but that moment can come
# anywhere in the main thread's code: inside one of pimem's locked sections (taking the lock
# again would deadlock), or while a Ctrl-C is due. Any Python code run then (a weakref.finalize
# callback, even one line) is where the pending Ctrl-C is raised, and an exception there is
# printed as "Exception ignored" and lost. So the exporter's weakref has a C function as its
# callback, SimpleQueue.put, which runs no Python code at all; a thread of pimem's, which never
# gets signals, takes the allocation from _waiting and releases it. At exit the rest is released.

_queue: "queue.SimpleQueue[weakref.ref | threading.Event | None]" = queue.SimpleQueue()
# id(exporter ref) -> (that ref, its allocation): the ref kept alive, or its callback would never run.
# (By id: a weakref to an unhashable object cannot be a key.)
_waiting: dict[int, tuple[weakref.ref, HeldAllocation]] = {}
_worker: threading.Thread | None = None
_worker_guard = threading.Lock()
_exiting = False


def _arm(exporter: object, held: HeldAllocation) -> weakref.ref:
    ref = weakref.ref(exporter, _queue.put)
    _waiting[id(ref)] = (ref, held)
    return ref


def _release_queued() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    while True:
        item = _queue.get()
        if item is None:
            return
        if isinstance(item, threading.Event):   # wait_for_releases: everything queued before it is done
            item.set()
            continue
        waiting = _waiting.pop(id(item), None)
        if waiting is not None:   # None: closed meanwhile, or released already
            waiting[1].release_or_warn()


def _start_releaser() -> None:
    """The releasing thread, started before the first buffer can die (never from a finalizer)."""
    global _worker
    with _worker_guard:
        if _worker is None and not _exiting:
            _worker = threading.Thread(target=_release_queued, name="pimem-release", daemon=True)
            _worker.start()
            atexit.register(_drain_at_exit)


def wait_for_releases(timeout: float = 30.0) -> bool:
    """Wait until the buffers whose last view died so far are released; False on timeout.

    GpuBuffer calls it before it allocates, so memory a dropped buffer held is back in time.
    """
    if _worker is None or not _worker.is_alive():
        return True
    done = threading.Event()
    _queue.put(done)
    return done.wait(timeout)


def _drain_at_exit() -> None:
    """At exit: what was queued, then every buffer still held (its views detached first)."""
    global _exiting
    _exiting = True
    _queue.put(None)
    if _worker is not None:
        _worker.join(timeout=10)
    for key, (ref, held) in list(_waiting.items()):
        _waiting.pop(key, None)
        held.release_or_warn(detach_views=ref() is not None)


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
    """Give back all the GPU memory this process holds now, its buffers' views detached first."""
    for held in held_allocations():
        held.release_or_warn(detach_views=True)


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
