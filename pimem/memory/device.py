"""Device memory: how to touch a GPU buffer without faulting.

On a Pi the kernel maps GPU memory through /dev/mem as Device-nGnRnE (64-bit) or
Strongly-ordered (32-bit) memory, not Normal memory (Linux drivers/char/mem.c maps /dev/mem
outside System RAM non-cached; Arm ARM, "Device memory"). There an access that is not aligned
to its own size raises an alignment fault, and so does ``DC ZVA``, the cache-line zeroing glibc's aarch64 ``memset(p, 0, n)`` uses above
128 bytes; the kernel turns either into SIGBUS, which kills the process. numpy does not
know: ``a[1:4097] = 3``, ``a[1:4097].copy()`` and ``a[:] = 0`` on ``GpuBuffer.array`` reach
such accesses (measured on QEMU's raspi3b/raspi2b machines, scripts/pi-machine/README.md).

The functions here split a byte range into naturally aligned 1-, 2-, 4- and 8-byte pieces at
its ends and a body that starts on a 16-byte boundary and is a whole number of 16 bytes. The
body is filled as 8-byte words by numpy's own loop (never ``memset``) and copied by
``memcpy`` only between addresses that agree modulo 16, where every access glibc's
``memcpy`` makes is aligned (its overlapping tail copies included). Each piece is one
aligned load or store of its size.
"""
from __future__ import annotations

import faulthandler
import sys
from collections.abc import Iterator

import numpy as np

from ..exc import UsageError

#: The body's alignment: the widest access (a 128-bit register) glibc's memcpy makes.
BODY_ALIGN = 16
_UINT = {1: np.dtype(np.uint8), 2: np.dtype("<u2"), 4: np.dtype("<u4"), 8: np.dtype("<u8")}
#: A byte value times this is that byte in all 8 bytes of a word.
REPEAT_BYTE = 0x0101010101010101
_CHUNK = 1 << 20   # a copy through a staging buffer goes a MiB at a time

__all__ = ["BODY_ALIGN", "REPEAT_BYTE", "plan", "fill", "copy", "address_of", "enable_faulthandler",
           "stderr_fd"]


def address_of(array: np.ndarray) -> int:
    """The address of a contiguous array's first byte."""
    return int(array.__array_interface__["data"][0])


def plan(address: int, size: int) -> tuple[list[tuple[int, int]], tuple[int, int], list[tuple[int, int]]]:
    """How [address, address + size) is touched: head pieces, the body, tail pieces.

    Pieces are (offset, width) with width 1, 2, 4 or 8 and address + offset a multiple of
    width; the body is (offset, length) with address + offset a multiple of BODY_ALIGN and
    length a multiple of BODY_ALIGN (possibly 0).
    """
    head_end = min(-address % BODY_ALIGN, size)
    body_len = (size - head_end) // BODY_ALIGN * BODY_ALIGN
    body_end = head_end + body_len
    return list(_pieces(address, 0, head_end)), (head_end, body_len), list(_pieces(address, body_end, size))


def _pieces(address: int, start: int, stop: int) -> Iterator[tuple[int, int]]:
    offset = start
    while offset < stop:
        width = 8
        while width > 1 and ((address + offset) % width or offset + width > stop):
            width //= 2
        yield offset, width
        offset += width


def _bytes(array: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(array, np.ndarray) or not array.flags.c_contiguous:
        raise UsageError(f"{name} must be a contiguous numpy array, got {type(array).__name__}")
    return array.reshape(-1).view(np.uint8)


def fill(dst: np.ndarray, value: int) -> None:
    """Set every byte of ``dst`` to ``value`` (0..255) with aligned stores only, never memset."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 255:
        raise UsageError(f"fill value {value!r} is not a byte; give a whole number from 0 to 255")
    b = _bytes(dst, "dst")
    value = int(value)
    head, (start, length), tail = plan(address_of(b), b.nbytes)
    for offset, width in head + tail:
        b[offset:offset + width].view(_UINT[width])[0] = value * (REPEAT_BYTE >> (8 * (8 - width)))
    if length:
        b[start:start + length].view(_UINT[8]).fill(value * REPEAT_BYTE)


def copy(dst: np.ndarray, src: np.ndarray) -> None:
    """Copy ``src``'s bytes into ``dst`` (same byte count) with accesses that are aligned on both sides.

    Either side may be Device memory. When their addresses differ modulo 16 the bytes go
    through a staging buffer in ordinary memory that agrees with the Device side; the
    caller says nothing about which side that is, so both are treated as Device memory.
    """
    d, s = _bytes(dst, "dst"), _bytes(src, "src")
    if d.nbytes != s.nbytes:
        raise UsageError(f"copy of {s.nbytes} bytes into {d.nbytes}: give a source the size of the destination")
    if np.may_share_memory(d, s):
        # The pieces and the body are not copied in address order: read the source whole first.
        staged = _staging(s)
        _copy_agreeing(staged, s)
        s = staged
    if (address_of(d) - address_of(s)) % BODY_ALIGN == 0:
        _copy_agreeing(d, s)
        return
    # Stage each chunk in host memory that agrees with dst, then copy it in; the read from
    # src into the stage is itself an agreeing copy with a stage that agrees with src.
    for start in range(0, d.nbytes, _CHUNK):
        stop = min(start + _CHUNK, d.nbytes)
        part_d, part_s = d[start:stop], s[start:stop]
        from_src = _staging(part_s)
        _copy_agreeing(from_src, part_s)
        to_dst = _staging(part_d)
        to_dst[:] = from_src          # ordinary memory on both sides: any alignment is fine
        _copy_agreeing(part_d, to_dst)


def _staging(like: np.ndarray) -> np.ndarray:
    """A host byte array of like's size whose address agrees with like's modulo BODY_ALIGN."""
    raw = np.empty(like.nbytes + 2 * BODY_ALIGN, dtype=np.uint8)
    shift = (address_of(like) - address_of(raw)) % BODY_ALIGN
    return raw[shift:shift + like.nbytes]


def _copy_agreeing(d: np.ndarray, s: np.ndarray) -> None:
    head, (start, length), tail = plan(address_of(d), d.nbytes)
    for offset, width in head + tail:
        d[offset:offset + width].view(_UINT[width])[0] = s[offset:offset + width].view(_UINT[width])[0]
    if length:
        np.copyto(d[start:start + length], s[start:start + length])


def stderr_fd() -> int:
    """The file descriptor of the real stderr: sys.stderr's where it has one (a Jupyter kernel's
    is the server's terminal, its fd 2 a pipe that a thread drains), else 2."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return 2


def enable_faulthandler() -> None:
    """Python's traceback on a fatal signal (a SIGBUS on Device memory), if this process's stderr allows it."""
    if faulthandler.is_enabled():
        return
    try:
        faulthandler.enable()
    except (AttributeError, OSError, ValueError, RuntimeError):   # stderr captured or closed
        try:
            faulthandler.enable(file=stderr_fd())
        except (OSError, ValueError, RuntimeError):
            pass
