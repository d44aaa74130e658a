"""Memory kernels: fill, copy and read a numpy array's bytes, three ways.

A kernel knows nothing about GPU buffers. It works on any C-contiguous
array, including a view of mmapped memory (uncached on a Pi), and never
allocates a temporary the size of the buffer: on a Pi that would double
the memory traffic being measured.

Three kernels:

``c-loop`` (the default where a C compiler exists)
    the compiled core (``pimem.bench.core``, ``csrc/pimem_core.c``): ``memset``,
    ``memcpy`` and a word sum, with the repetition loop in C, so a timed
    region holds no Python. Absent where the core cannot be built.
``numpy``
    fill: ``ndarray.fill`` on a uint64 view (numpy's own store loop; a
    uint8 fill would call libc ``memset``, see below); copy: ``dst[...] =
    src`` on bytes (which numpy implements with ``memmove``); read:
    ``np.add.reduce`` over the uint64 words.
``libc``
    fill: ``memset``; copy: ``memcpy``, called through ctypes; read: the
    same numpy reduction. No libc routine reads every byte *and* returns a
    value that depends on every byte: ``memchr``/``rawmemchr``/``strnlen``
    report only the first match (and a byte cannot be known absent without
    reading the buffer first), ``memcmp`` reads two buffers.

``read`` returns the sum modulo 2**64 of the buffer's little-endian 64-bit
words, the last one zero-padded: the same value as ``benchmarks/membench.c``,
whatever the kernel and whatever the array's address. Changing any one
byte changes it (a change of ``d`` in byte ``k`` of a word adds
``d * 256**k``, which is never 0 modulo 2**64 for ``0 < |d| < 256``).

On a 64-bit Pi OS (aarch64) a /dev/mem mapping of GPU memory is Device
memory (an inference from Linux drivers/char/mem.c). There, glibc ``memset`` of 0 uses
``DC ZVA`` and ``memset``/``memcpy`` use overlapping unaligned stores for
sizes that are not multiples of 16; either raises SIGBUS, which kills the
process (ARM ARM on DC ZVA to Device memory; Qiita ikwzm/3216f907ff8fc41866c4;
esa-tu-darmstadt/tapasco#368). The numpy kernel's fill never calls
``memset``: it is ``pimem.memory.device.fill`` (aligned pieces around a body of
8-byte words on a 16-byte boundary). Its copy goes through ``memmove`` like the
libc kernel's; the benchmarks copy only whole, page-aligned buffers.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import weakref
from functools import partial
from typing import Callable, NamedTuple, Protocol, runtime_checkable

import numpy as np

from pimem.exc import UsageError
from pimem.memory.device import REPEAT_BYTE
from pimem.memory.device import fill as aligned_fill

__all__ = ["Kernel", "Op", "NumpyKernel", "LibcKernel", "CompiledKernel", "KERNELS", "DEFAULT_KERNEL", "get_kernel"]

_MASK64 = (1 << 64) - 1
_WORD = np.dtype("<u8")                 # little-endian, so read() is endian-independent


@runtime_checkable
class Kernel(Protocol):
    """What the benchmark engine needs from a kernel."""

    name: str

    def fill(self, dst: np.ndarray, value: int, *, device: bool = False) -> None:
        """Set every byte of ``dst`` to ``value`` (0..255)."""

    def copy(self, dst: np.ndarray, src: np.ndarray, *, device: bool = False) -> None:
        """Copy the bytes of ``src`` into ``dst`` (same nbytes, no overlap)."""

    def read(self, src: np.ndarray) -> int:
        """Read every byte of ``src``; return the sum of its 64-bit words mod 2**64."""

    def fill_op(self, dst: np.ndarray, value: int, *, device: bool = False) -> "Op":
        """``fill`` prepared for timing (see :class:`Op`).

        ``device``: ``dst`` may be Device/strongly-ordered memory (a GPU
        buffer mapped through /dev/mem), where only naturally aligned
        accesses are safe; a kernel that can honour it does.
        """

    def copy_op(self, dst: np.ndarray, src: np.ndarray, *, device: bool = False) -> "Op":
        """``copy`` prepared for timing; ``device`` as for :meth:`fill_op`."""

    def read_op(self, src: np.ndarray) -> "Op":
        """``read`` prepared for timing; ``run()`` returns the sum (maybe a numpy integer)."""


# --- argument checks ------------------------------------------------------

def _check(arr: object, what: str, writable: bool) -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        raise UsageError(f"{what} must be a numpy array, got {type(arr).__name__}")
    flags = arr.flags
    if not flags.c_contiguous:
        raise UsageError(
            f"{what} must be C-contiguous (shape {arr.shape}, strides {arr.strides}); "
            "pass a contiguous view such as buf[a:b]")
    if writable and not flags.writeable:
        raise UsageError(f"{what} is read-only; pass a writable array")
    if arr.dtype.hasobject:
        # Its bytes are object pointers: overwriting them would corrupt memory.
        raise UsageError(f"{what} has dtype {arr.dtype} which holds Python objects; use a numeric dtype")
    return arr


def _flat(arr: object, what: str, writable: bool) -> np.ndarray:
    a = _check(arr, what, writable)
    return a if a.ndim == 1 else a.reshape(-1)    # a view: a is C-contiguous


def _byte(value: object) -> int:
    if type(value) is int and 0 <= value <= 255:      # the usual case, cheaply
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 255:
        raise UsageError(f"fill value must be an integer 0..255, got {value!r}")
    return int(value)


def _same_size(dst: np.ndarray, src: np.ndarray) -> None:
    if dst.nbytes != src.nbytes:
        raise UsageError(f"copy needs equal sizes: dst has {dst.nbytes} bytes, src has {src.nbytes}")


# memcpy is undefined on overlap and np.copyto would copy via a full-size temporary.
_OVERLAP = "dst and src overlap; copy needs two separate buffers"


def _check_apart(dst_addr: int, src_addr: int, n: int) -> None:
    """UsageError when the n-byte ranges at the two addresses overlap."""
    if n and dst_addr < src_addr + n and src_addr < dst_addr + n:
        raise UsageError(_OVERLAP)


# arr.ctypes.data costs some 0.75 us on an x86 server core, and ctypes
# converts a Python int argument in some 0.05 us more per argument: several
# times a 4 KiB memset. A benchmark calls a kernel on the same array
# thousands of times, so keep, per live array, its address and ready-made
# ctypes arguments. The weak reference proves an entry is for this very
# array (ids are reused) without keeping it, or the mmap under it, alive;
# nbytes guards against ndarray.resize moving the data.
class _Addr(NamedTuple):
    ref: weakref.ref
    nbytes: int
    addr: int
    c_addr: ctypes.c_void_p
    c_nbytes: ctypes.c_size_t


_addr_cache: dict[int, _Addr] = {}
_ADDR_CACHE_MAX = 64


def _address(arr: np.ndarray) -> _Addr:
    hit = _addr_cache.get(id(arr))
    if hit is not None and hit.ref() is arr and hit.nbytes == arr.nbytes:
        return hit
    addr = arr.ctypes.data
    entry = _Addr(None, arr.nbytes, addr, ctypes.c_void_p(addr), ctypes.c_size_t(arr.nbytes))  # type: ignore[arg-type]
    try:
        entry = entry._replace(ref=weakref.ref(arr))
    except TypeError:       # not weak-referenceable: do not cache
        return entry
    if len(_addr_cache) >= _ADDR_CACHE_MAX:
        _addr_cache.clear()
    _addr_cache[id(arr)] = entry
    return entry


_C_BYTE = tuple(ctypes.c_int(v) for v in range(256))
_C_ZERO = ctypes.c_size_t(0)


# --- shared pieces ---------------------------------------------------------

def _read_words(src: np.ndarray) -> int:
    flat = _flat(src, "src", False)
    n = flat.nbytes
    n8 = n - n % 8
    if n8 == n:
        return int(np.add.reduce(flat.view(_WORD)))    # uint64 addition wraps mod 2**64
    b = flat.view(np.uint8)
    # An unaligned word view is fine: numpy reduces it through a small
    # (8192-element) buffer, never a full-size copy.
    total = int(np.add.reduce(b[:n8].view(_WORD))) if n8 else 0
    return (total + int.from_bytes(b[n8:].tobytes(), "little")) & _MASK64


# --- the kernels ---------------------------------------------------------

class Op(NamedTuple):
    """A kernel call with its arguments checked and converted once.

    ``run()`` does the work once with as little Python around it as there
    can be (a ``functools.partial`` of a C function). ``empty()`` is the very same
    call on zero bytes: the time it takes is the cost of calling from
    Python, which the timing engine measures and takes off. ``keep`` holds
    the arrays, so the memory under the addresses cannot go away.
    """

    run: Callable[[], object]
    empty: Callable[[], object]
    keep: tuple = ()
    #: ``region(reps)`` runs ``reps`` operations in one C call and returns the
    #: nanoseconds it measured around them (the compiled core); None: the
    #: timing engine loops in Python around ``run``.
    region: Callable[[int], int] | None = None


def _nothing() -> None:
    return None


def _read_op(src: np.ndarray) -> Op:
    flat = _flat(src, "src", False)
    if flat.nbytes % 8 == 0:
        words = flat.view(np.uint8).view(_WORD)     # uint64 addition wraps mod 2**64
        return Op(partial(np.add.reduce, words), partial(np.add.reduce, words[:0]), (words,))
    return Op(partial(_read_words, flat), partial(_read_words, flat[:0]), (flat,))


class _OneShot:
    """fill, copy and read as one prepared call each (what a kernel subclass prepares)."""

    def fill(self, dst: np.ndarray, value: int, *, device: bool = False) -> None:
        self.fill_op(dst, value, device=device).run()

    def copy(self, dst: np.ndarray, src: np.ndarray, *, device: bool = False) -> None:
        self.copy_op(dst, src, device=device).run()

    def read(self, src: np.ndarray) -> int:
        return int(self.read_op(src).run())


class NumpyKernel(_OneShot):
    """fill: uint64 ``ndarray.fill``; copy: ``dst[...] = src``; read: uint64 sum."""

    name = "numpy"

    def fill_op(self, dst: np.ndarray, value: int, *, device: bool = False) -> Op:
        # Always aligned stores (module docstring), so device changes nothing here.
        v = _byte(value)
        flat = _flat(dst, "dst", True)
        if flat.nbytes % 8 == 0:
            words = flat.view(np.uint64)
            if words.flags.aligned:                 # the usual case: one uint64 fill
                word = v * REPEAT_BYTE
                return Op(partial(words.fill, word), partial(words[:0].fill, word), (words,))
        return Op(partial(aligned_fill, flat, v), partial(aligned_fill, flat[:0], v), (flat,))

    def copy_op(self, dst: np.ndarray, src: np.ndarray, *, device: bool = False) -> Op:
        d = _flat(dst, "dst", True)
        s = _flat(src, "src", False)
        _same_size(d, s)
        if np.may_share_memory(d, s):
            raise UsageError(_OVERLAP)
        d = d.view(np.uint8)        # a byte copy, whatever the dtypes say
        s = s.view(np.uint8)
        # Assignment between contiguous arrays of one dtype is a memmove,
        # as np.copyto is, with less dispatch around it.
        return Op(partial(d.__setitem__, Ellipsis, s), partial(d[:0].__setitem__, Ellipsis, s[:0]), (d, s))

    def read_op(self, src: np.ndarray) -> Op:
        return _read_op(src)

    def __repr__(self) -> str:
        return "NumpyKernel()"


def _load_libc() -> ctypes.CDLL:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else ctypes.CDLL(None)   # None: the process's own symbols


class LibcKernel(_OneShot):
    """fill: libc ``memset``; copy: libc ``memcpy``; read: the numpy uint64 sum."""

    name = "libc"

    def __init__(self, libc: ctypes.CDLL | None = None) -> None:
        lib = libc if libc is not None else _load_libc()
        self._memset = lib.memset
        self._memset.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t)
        self._memset.restype = ctypes.c_void_p
        self._memcpy = lib.memcpy
        self._memcpy.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
        self._memcpy.restype = ctypes.c_void_p

    def fill_op(self, dst: np.ndarray, value: int, *, device: bool = False) -> Op:
        # memset whatever device says: what this kernel measures is the library call.
        v = _byte(value)
        d = _check(dst, "dst", True)
        if not d.nbytes:
            return Op(_nothing, _nothing)
        a = _address(d)
        return Op(partial(self._memset, a.c_addr, _C_BYTE[v], a.c_nbytes),
                  partial(self._memset, a.c_addr, _C_BYTE[v], _C_ZERO), (d,))

    def copy_op(self, dst: np.ndarray, src: np.ndarray, *, device: bool = False) -> Op:
        d = _check(dst, "dst", True)
        s = _check(src, "src", False)
        _same_size(d, s)
        n = d.nbytes
        if not n:
            return Op(_nothing, _nothing)
        da = _address(d)
        sa = _address(s)
        _check_apart(da.addr, sa.addr, n)
        return Op(partial(self._memcpy, da.c_addr, sa.c_addr, da.c_nbytes),
                  partial(self._memcpy, da.c_addr, sa.c_addr, _C_ZERO), (d, s))

    def read_op(self, src: np.ndarray) -> Op:
        # The numpy reduction: see the module docstring for why no libc routine fits.
        return _read_op(src)

    def __repr__(self) -> str:
        return "LibcKernel()"


class CompiledKernel(_OneShot):
    """The compiled core (``pimem.bench.core``): memset, memcpy and the word sum, each region timed in C.

    ``run()`` does one operation; ``region(reps)`` does ``reps`` of them in
    one call and returns the nanoseconds C measured around the loop, so no
    Python runs inside a timed region and nothing needs taking off. With
    ``device`` the core keeps to naturally aligned stores wherever glibc's
    memset or memcpy might not (value 0, or an address or size that is not a
    multiple of 16; see csrc/pimem_core.c).
    """

    name = "c-loop"

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib

    def fill_op(self, dst: np.ndarray, value: int, *, device: bool = False) -> Op:
        v = _byte(value)
        d = _check(dst, "dst", True)
        a, dev, fill = _address(d), int(bool(device)), self._lib.pimem_time_fill
        return Op(partial(fill, a.c_addr, v, a.nbytes, 1, dev), partial(fill, a.c_addr, v, 0, 1, dev), (d,),
                  lambda reps: fill(a.c_addr, v, a.nbytes, reps, dev))

    def copy_op(self, dst: np.ndarray, src: np.ndarray, *, device: bool = False) -> Op:
        d = _check(dst, "dst", True)
        s = _check(src, "src", False)
        _same_size(d, s)
        da, sa, n = _address(d), _address(s), d.nbytes
        _check_apart(da.addr, sa.addr, n)
        dev, copy = int(bool(device)), self._lib.pimem_time_copy
        return Op(partial(copy, da.c_addr, sa.c_addr, n, 1, dev), partial(copy, da.c_addr, sa.c_addr, 0, 1, dev),
                  (d, s), lambda reps: copy(da.c_addr, sa.c_addr, n, reps, dev))

    def read_op(self, src: np.ndarray) -> Op:
        s = _check(src, "src", False)
        a, lib = _address(s), self._lib
        return Op(partial(lib.pimem_sum, a.c_addr, a.nbytes), partial(lib.pimem_sum, a.c_addr, 0), (s,),
                  lambda reps: lib.pimem_time_read(a.c_addr, a.nbytes, reps))

    def chase_op(self, buf: np.ndarray, slot: int, steps: int, seed: int = 1) -> tuple[Op, int]:
        """Pointer chasing in ``buf``: (the prepared op, the number of slots in its cycle).

        Writes into ``buf`` one random cycle through all its ``slot``-byte
        slots (csrc/pimem_core.c). ``run()`` walks the cycle once and returns
        its length (== slots when the chain is intact); ``region(reps)`` times
        ``reps * steps`` dependent loads, going on from where the last region
        stopped so that no region walks slots the one before left cached.
        """
        b = _check(buf, "buffer", True)
        a, lib = _address(b), self._lib
        count = int(lib.pimem_chase_setup(a.c_addr, a.nbytes, slot, seed)) if a.addr % 8 == 0 else 0
        if count < 2:
            raise UsageError(f"pointer chasing needs an 8-byte aligned buffer of at least 2 slots of {slot} bytes; "
                             f"got {a.nbytes} bytes at 0x{a.addr:x}: give a larger, aligned buffer")
        cursor = ctypes.c_void_p(a.addr)
        chase = lib.pimem_time_chase
        return Op(partial(lib.pimem_chase_cycle, a.c_addr, count + 1), _nothing, (b,),
                  lambda reps: chase(ctypes.byref(cursor), reps * steps)), count

    def __repr__(self) -> str:
        return "CompiledKernel()"


def _make_kernels() -> dict[str, Kernel]:
    from . import core

    kernels: dict[str, Kernel] = {"numpy": NumpyKernel()}
    try:
        kernels["libc"] = LibcKernel()
    except (OSError, AttributeError, TypeError):   # no C library to load (not a POSIX system)
        pass
    lib = core.load()           # None, with a one-line notice, where it cannot be built
    if lib is not None:
        kernels["c-loop"] = CompiledKernel(lib)
    return kernels


KERNELS: dict[str, Kernel] = _make_kernels()

# The compiled core where it builds: its timed regions hold no Python, so
# it measures small sizes as C does (benchmarks/compare.py, figures in
# benchmarks/README.md). Otherwise libc: its fill is the very memset C
# calls. On a 64-bit Pi OS the core keeps to aligned stores on GPU memory
# (device=True); the libc kernel does not (module docstring).
DEFAULT_KERNEL: str = next(k for k in ("c-loop", "libc", "numpy") if k in KERNELS)


def get_kernel(name: str) -> Kernel:
    """The kernel called ``name``; UsageError naming the valid names otherwise."""
    try:
        return KERNELS[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(k) for k in sorted(KERNELS))
        hint = {"libc": " (no C library could be loaded here)",
                "c-loop": " (the compiled core did not build here: see `.venv/bin/pimem core`)"}.get(name, "")
        raise UsageError(f"unknown kernel {name!r}{hint}; valid names: {valid}") from None
