"""Device-memory-safe fill and copy: every access aligned, checked at the seam (the plan) and by result."""
from __future__ import annotations

import numpy as np
import pytest

from pimem.exc import UsageError
from pimem.memory import device
from pimem.memory.buffer import GpuBuffer


@pytest.mark.parametrize("address", range(0, 33))
@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 100, 4097])
def test_the_plan_covers_the_range_once_with_aligned_accesses(address, size):
    head, (start, length), tail = device.plan(address, size)
    covered = []
    for offset, width in head + tail:
        assert width in (1, 2, 4, 8) and (address + offset) % width == 0, (offset, width)
        covered += range(offset, offset + width)
    assert (address + start) % device.BODY_ALIGN == 0 or length == 0
    assert length % device.BODY_ALIGN == 0
    covered += range(start, start + length)
    assert sorted(covered) == list(range(size))



@pytest.mark.parametrize("start", [0, 1, 3, 8, 13, 16])
@pytest.mark.parametrize("size", [0, 1, 5, 16, 31, 64, 100])
@pytest.mark.parametrize("value", [0, 0xA5])
def test_fill_sets_exactly_the_range(start, size, value):
    base = np.full(200, 0x11, dtype=np.uint8)
    device.fill(base[start:start + size], value)
    want = np.full(200, 0x11, dtype=np.uint8)
    want[start:start + size] = value
    assert np.array_equal(base, want)


@pytest.mark.parametrize("dst_start", [0, 1, 2, 7, 16])
@pytest.mark.parametrize("src_start", [0, 1, 5, 16])
@pytest.mark.parametrize("size", [0, 1, 15, 16, 47, 130])
def test_copy_moves_exactly_the_bytes_whatever_the_alignments(dst_start, src_start, size):
    rng = np.random.default_rng(size)
    src = rng.integers(0, 256, 300, dtype=np.uint8)
    dst = np.zeros(300, dtype=np.uint8)
    device.copy(dst[dst_start:dst_start + size], src[src_start:src_start + size])
    want = np.zeros(300, dtype=np.uint8)
    want[dst_start:dst_start + size] = src[src_start:src_start + size]
    assert np.array_equal(dst, want)


@pytest.mark.parametrize("dst, src", [(0, 16), (16, 0), (0, 3), (5, 0), (1, 2)])
def test_an_overlapping_copy_is_a_memmove(dst, src):
    b = np.arange(100, dtype=np.uint8)
    want = b.copy()
    want[dst:dst + 40] = b[src:src + 40].copy()
    device.copy(b[dst:dst + 40], b[src:src + 40])
    assert np.array_equal(b, want)


def test_a_copy_longer_than_a_staging_chunk_is_whole():
    src = np.arange(3 * (1 << 20) + 5, dtype=np.uint32).view(np.uint8)[3:]
    dst = np.empty(src.nbytes + 1, dtype=np.uint8)[1:]
    device.copy(dst, src)
    assert np.array_equal(dst, src)


def test_bad_arguments_are_named():
    with pytest.raises(UsageError, match="256.*0 to 255"):
        device.fill(np.zeros(4, np.uint8), 256)
    with pytest.raises(UsageError, match="size of the destination"):
        device.copy(np.zeros(4, np.uint8), np.zeros(5, np.uint8))
    with pytest.raises(UsageError, match="contiguous"):
        device.fill(np.zeros(8, np.uint8)[::2], 1)


def test_gpu_buffer_fill_write_read(backend):
    with GpuBuffer(10000, backend=backend) as buf:
        buf.fill(0x5A)
        assert set(buf.array.tolist()) == {0x5A}
        buf.fill(0)
        assert not buf.array.any()
        buf.write(b"hello", offset=4097)
        assert bytes(buf.array[4095:4104]) == b"\0\0hello\0\0"
        assert bytes(buf.read(4097, 5)) == b"hello"
        assert buf.read().nbytes == 10000
        data = np.arange(999, dtype=np.uint16)
        buf.write(data, offset=3)
        assert np.array_equal(buf.read(3, data.nbytes).view(np.uint16), data)
        with pytest.raises(UsageError, match="does not fit.*10000-byte"):
            buf.write(b"x" * 10, offset=9995)
        with pytest.raises(UsageError, match="bytes or a contiguous numpy array"):
            buf.write("text")
        with pytest.raises(UsageError, match="bytes or a contiguous numpy array"):
            buf.write(memoryview(b"abcdef")[::2])
        with pytest.raises(UsageError, match="offset"):
            buf.read(-1)
