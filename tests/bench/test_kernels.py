"""pimem.bench.kernels: every kernel fills, copies and reads exactly, on odd sizes,
odd addresses and mmapped memory, without full-size temporaries. Plus: the C
reference benchmarks/membench.c builds warning-free and prints JSON.
No timing is asserted anywhere.
"""
from __future__ import annotations

import json
import mmap
import shutil
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pimem.bench import kernels
from pimem.exc import UsageError
from pimem.bench.kernels import DEFAULT_KERNEL, KERNELS, Kernel, get_kernel

MEMBENCH_C = Path(__file__).resolve().parents[2] / "benchmarks" / "membench.c"
SIZES = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 4095, 4096, 4097]
GUARD = 16


@pytest.fixture(params=sorted(KERNELS))
def kernel(request: pytest.FixtureRequest) -> Kernel:
    return KERNELS[request.param]


def reference_read(data: bytes) -> int:
    """Sum mod 2**64 of little-endian 64-bit words, the last zero-padded."""
    padded = data + bytes(-len(data) % 8)
    return sum(int.from_bytes(padded[i:i + 8], "little") for i in range(0, len(padded), 8)) % 2**64


def window(nbytes: int, offset: int, fill: int = 0x33) -> tuple[np.ndarray, np.ndarray]:
    """(whole buffer, a view of nbytes at offset): the bytes around the view are guards."""
    whole = np.full(nbytes + offset + GUARD, fill, dtype=np.uint8)
    return whole, whole[offset:offset + nbytes]


# --- fill ------------------------------------------------------------------

@pytest.mark.parametrize("nbytes", SIZES)
@pytest.mark.parametrize("offset", range(9))
def test_fill_every_byte_and_nothing_else(kernel: Kernel, nbytes: int, offset: int) -> None:
    for value in (0x00, 0xA5, 0xFF):
        whole, view = window(nbytes, offset)
        kernel.fill(view, value)
        assert (view == value).all()
        assert (whole[:offset] == 0x33).all() and (whole[offset + nbytes:] == 0x33).all()


def test_fill_any_dtype_and_shape(kernel: Kernel) -> None:
    a = np.zeros((3, 5, 7), dtype=np.float64)
    kernel.fill(a, 0x7F)
    assert (a.view(np.uint8) == 0x7F).all()
    b = np.zeros(13, dtype=np.uint16)
    kernel.fill(b, 0x12)
    assert (b == 0x1212).all()
    kernel.fill(np.uint8(3) * np.ones(1, np.uint8), np.uint8(9))    # numpy integer value accepted


@pytest.mark.parametrize("value", [-1, 256, 1.0, True, "a", None])
def test_fill_rejects_bad_values(kernel: Kernel, value: object) -> None:
    with pytest.raises(UsageError, match="0..255"):
        kernel.fill(np.zeros(8, np.uint8), value)  # type: ignore[arg-type]


# --- copy ------------------------------------------------------------------

@pytest.mark.parametrize("nbytes", SIZES)
@pytest.mark.parametrize("offsets", [(0, 0), (1, 0), (0, 3), (5, 7)])
def test_copy_exact(kernel: Kernel, nbytes: int, offsets: tuple[int, int]) -> None:
    rng = np.random.default_rng(nbytes)
    src_whole, src = window(nbytes, offsets[1])
    src[:] = rng.integers(0, 256, nbytes, dtype=np.uint8)
    dst_whole, dst = window(nbytes, offsets[0], fill=0x44)
    kernel.copy(dst, src)
    assert dst.tobytes() == src.tobytes()
    assert (dst_whole[:offsets[0]] == 0x44).all() and (dst_whole[offsets[0] + nbytes:] == 0x44).all()


def test_copy_between_dtypes_and_from_read_only(kernel: Kernel) -> None:
    src = np.arange(64, dtype=np.uint8)
    src.flags.writeable = False
    dst = np.zeros(16, dtype=np.float32)
    kernel.copy(dst, src)
    assert dst.tobytes() == src.tobytes()
    nan_bits = np.array([0x7FF8DEADBEEF0001], dtype=np.uint64).view(np.float64)
    out = np.zeros(1, np.float64)
    kernel.copy(out, nan_bits)              # bit-exact: a NaN payload survives
    assert out.view(np.uint64)[0] == 0x7FF8DEADBEEF0001


def test_copy_rejects_mismatched_sizes(kernel: Kernel) -> None:
    with pytest.raises(UsageError, match="16.*15"):
        kernel.copy(np.zeros(16, np.uint8), np.zeros(15, np.uint8))
    with pytest.raises(UsageError):
        kernel.copy(np.zeros(4, np.uint32), np.zeros(4, np.uint8))


def test_copy_rejects_overlap(kernel: Kernel) -> None:
    buf = np.zeros(64, np.uint8)
    with pytest.raises(UsageError, match="overlap"):
        kernel.copy(buf[0:32], buf[16:48])
    with pytest.raises(UsageError, match="overlap"):
        kernel.copy(buf, buf)
    kernel.copy(buf[0:32], buf[32:64])      # adjacent is fine


# --- read ------------------------------------------------------------------

@pytest.mark.parametrize("nbytes", SIZES)
@pytest.mark.parametrize("offset", [0, 1, 4, 7])
def test_read_value(kernel: Kernel, nbytes: int, offset: int) -> None:
    rng = np.random.default_rng(1000 + nbytes)
    _, view = window(nbytes, offset)
    view[:] = rng.integers(0, 256, nbytes, dtype=np.uint8)
    assert kernel.read(view) == reference_read(view.tobytes())


def test_read_wraps_and_is_address_independent(kernel: Kernel) -> None:
    ones = np.full(4097, 0xFF, np.uint8)
    assert kernel.read(ones) == reference_read(ones.tobytes())
    _, shifted = window(4097, 3)
    shifted[:] = ones
    assert kernel.read(shifted) == kernel.read(ones)


def test_read_depends_on_every_byte(kernel: Kernel) -> None:
    for nbytes, offset in ((4097, 0), (77, 5)):
        _, view = window(nbytes, offset, fill=0)
        view[:] = np.random.default_rng(nbytes).integers(0, 256, nbytes, dtype=np.uint8)
        base = kernel.read(view)
        for i in range(nbytes):
            old = int(view[i])
            view[i] = old ^ 0x80
            assert kernel.read(view) != base, f"byte {i} of {nbytes} did not count"
            view[i] = old


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=1, max_size=300), offset=st.integers(0, 15),
       where=st.integers(0, 10**6), delta=st.integers(1, 255), name=st.sampled_from(sorted(KERNELS)))
def test_read_changes_with_any_one_byte(data: bytes, offset: int, where: int, delta: int, name: str) -> None:
    kernel = KERNELS[name]
    _, view = window(len(data), offset)
    view[:] = np.frombuffer(data, np.uint8)
    before = kernel.read(view)
    i = where % len(data)
    view[i] = (int(view[i]) + delta) % 256
    assert kernel.read(view) != before


@settings(max_examples=100, deadline=None)
@given(nbytes=st.integers(0, 200), offset=st.integers(0, 15), value=st.integers(0, 255),
       name=st.sampled_from(sorted(KERNELS)))
def test_fill_then_read_agree(nbytes: int, offset: int, value: int, name: str) -> None:
    kernel = KERNELS[name]
    whole, view = window(nbytes, offset)
    kernel.fill(view, value)
    assert view.tobytes() == bytes([value]) * nbytes
    assert kernel.read(view) == reference_read(bytes([value]) * nbytes)
    assert (whole[offset + nbytes:] == 0x33).all()


def test_kernels_agree_on_read() -> None:
    data = np.random.default_rng(7).integers(0, 256, 12345, dtype=np.uint8)
    assert len({k.read(data) for k in KERNELS.values()}) == 1


# --- mmapped memory, as on a Pi ----------------------------------------------

@pytest.mark.parametrize("offset", [0, 3])
def test_works_on_mmap_views_and_leaves_them_closable(kernel: Kernel, offset: int) -> None:
    size = 3 * mmap.PAGESIZE + 5
    mm_a = mmap.mmap(-1, size + offset)
    mm_b = mmap.mmap(-1, size)
    try:
        a = np.frombuffer(mm_a, dtype=np.uint8, count=size, offset=offset)
        b = np.frombuffer(mm_b, dtype=np.uint8)
        kernel.fill(a, 0xC3)
        assert mm_a[offset:offset + size] == b"\xC3" * size
        b[:] = np.arange(size) % 251
        kernel.copy(a, b)
        assert mm_a[offset:offset + size] == mm_b[:]
        assert kernel.read(a) == reference_read(mm_b[:])
        del a, b
    finally:
        # The kernels keep no reference to the arrays: the maps close (BufferError otherwise).
        mm_a.close()
        mm_b.close()


# --- no full-size temporaries ------------------------------------------------

NBYTES_BIG = 4 << 20


def peak_alloc(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_alloc_sees_numpy_temporaries() -> None:
    a = np.zeros(NBYTES_BIG, np.uint8)
    assert peak_alloc(lambda: a + 1) >= NBYTES_BIG     # the method below does see numpy buffers


@pytest.mark.parametrize("offset", [0, 1])
def test_no_full_size_temporaries(kernel: Kernel, offset: int) -> None:
    dst_whole = np.zeros(NBYTES_BIG + 8, np.uint8)
    src_whole = np.ones(NBYTES_BIG + 8, np.uint8)
    dst = dst_whole[offset:offset + NBYTES_BIG - 3]
    src = src_whole[offset:offset + NBYTES_BIG - 3]
    limit = NBYTES_BIG // 8
    assert peak_alloc(lambda: kernel.fill(dst, 7)) < limit
    assert peak_alloc(lambda: kernel.copy(dst, src)) < limit
    assert peak_alloc(lambda: kernel.read(src)) < limit


# --- argument checks -------------------------------------------------------------

def test_rejects_non_contiguous_read_only_object_and_non_arrays(kernel: Kernel) -> None:
    a = np.zeros(64, np.uint8)
    with pytest.raises(UsageError, match="C-contiguous"):
        kernel.fill(a[::2], 1)
    with pytest.raises(UsageError, match="C-contiguous"):
        kernel.read(np.zeros((4, 4), np.uint8).T)
    ro = np.zeros(8, np.uint8)
    ro.flags.writeable = False
    with pytest.raises(UsageError, match="read-only"):
        kernel.fill(ro, 1)
    with pytest.raises(UsageError, match="read-only"):
        kernel.copy(ro, np.zeros(8, np.uint8))
    with pytest.raises(UsageError, match="object"):
        kernel.fill(np.empty(2, dtype=object), 0)
    with pytest.raises(UsageError, match="numpy array"):
        kernel.read(b"bytes")  # type: ignore[arg-type]


def test_address_cache_follows_the_array() -> None:
    # Same id, new array: ids are reused once an array dies; the cache must notice.
    for i in range(200):
        a = np.zeros(64 + i % 3, np.uint8)
        KERNELS.get("libc", KERNELS["numpy"]).fill(a, i % 256)
        assert (a == i % 256).all()
        del a


# --- registry --------------------------------------------------------------------

def test_registry_and_protocol() -> None:
    assert DEFAULT_KERNEL in KERNELS
    assert "numpy" in KERNELS
    for name, k in KERNELS.items():
        assert k.name == name
        assert isinstance(k, Kernel)
        assert get_kernel(name) is k


@pytest.mark.parametrize("bad", ["cuda", "", "NUMPY", None, 3])
def test_get_kernel_errors_name_value_and_choices(bad: object) -> None:
    with pytest.raises(UsageError) as info:
        get_kernel(bad)  # type: ignore[arg-type]
    msg = str(info.value)
    assert repr(bad) in msg
    for name in KERNELS:
        assert repr(name) in msg


def test_libc_kernel_is_there_on_linux() -> None:
    if not Path("/proc").exists():
        pytest.skip("not Linux")
    assert "libc" in KERNELS
    fn = kernels.LibcKernel()._memset
    assert fn.restype is not None and len(fn.argtypes) == 3


# --- the C reference -----------------------------------------------------------------

@pytest.fixture(scope="module")
def membench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler 'cc' on PATH")
    exe = tmp_path_factory.mktemp("membench") / "membench"
    proc = subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(MEMBENCH_C)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr       # warning-free
    return exe


def test_membench_prints_json_lines(membench: Path) -> None:
    proc = subprocess.run([str(membench), "-n", "3", "-w", "1", "-t", "0.0001", "4096", "4097", "1K"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["size_bytes"], r["op"]) for r in records] == [
        (n, op) for n in (4096, 4097, 1024) for op in ("fill", "copy", "read", "latency")]
    for r in records:
        assert {"op", "size_bytes", "median_s", "min_s", "reps"} <= set(r)
        assert 0 <= r["min_s"] <= r["median_s"]
        assert r["reps"] >= 1 and r["iterations"] == 3
    # Seconds per access, not per region of 1024 loads: even the fastest sample of a region would be
    # a microsecond or more. (The fastest: a busy machine can stretch any one sample.)
    latency = [r["min_s"] for r in records if r["op"] == "latency"]
    assert all(0 < s < 1e-6 for s in latency)


def test_membench_runs_the_ops_asked_for(membench: Path) -> None:
    proc = subprocess.run([str(membench), "-n", "1", "-t", "0", "-o", "lr", "256"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["op"] for line in proc.stdout.splitlines()] == ["read", "latency"]
    bad = subprocess.run([str(membench), "-o", "x", "64"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "fcrl" in bad.stderr


@pytest.mark.parametrize("args", [[], ["0"], ["-n", "0", "4096"], ["-v", "256", "4096"], ["12Q"]])
def test_membench_rejects_bad_arguments(membench: Path, args: list[str]) -> None:
    proc = subprocess.run([str(membench), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr
