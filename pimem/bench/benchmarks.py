"""The benchmarks: what is filled, copied or read, in which kind of memory.

- baseline:  the CPU fills an ordinary cached host buffer.
- standard:  fill a cached host buffer, then copy it into a GPU buffer
             allocated COHERENT (fill, copy and their total are timed apart).
- zerocopy:  the CPU fills a GPU buffer allocated DIRECT (with ZERO) directly.
- write-coherent, write-l1nonalloc: the same direct fill into the other
             ARM-usable kinds of GPU memory.
- read-host, read-direct, read-coherent, read-l1nonalloc: the CPU reads
             every byte of a buffer of that kind (the price of zero-copy).
- latency-host, latency-direct, latency-coherent, latency-l1nonalloc: one
             random dependent load at a time through a buffer of that kind
             (pointer chasing, the compiled core only): ns per access.

The prediction these test on a board: every GPU buffer is mapped through
/dev/mem, which the kernel maps non-cached for the ARM whatever the flag
(phys_mem_access_prot(), arch/arm/mm/mmu.c and arch/arm64/mm/mmu.c; an
inference from the source), and the flag only picks how the VideoCore goes
through its own L2. So the write-* benchmarks should match zerocopy, and the
read-* GPU benchmarks each other; the standard path's copy writes uncached
memory at every size. A live run confirms or refutes it.

Every timed write goes to a destination poisoned first and is checked
completely afterwards; a wrong result is a FAIL and has no bandwidth.
On the emulator the "GPU" buffers are host memory: the results are real
host measurements and are labelled so by the caller.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from ..memory.backend import Backend
from ..memory.buffer import GpuBuffer, host_array
from ..exc import BenchmarkError, UsageError
from .catalog import BUS_FACTOR, CATALOG, BenchmarkSpec
from .kernels import CompiledKernel, Kernel, NumpyKernel, Op
from ..firmware.memflags import MemFlag, flag_names
from .timing import DEFAULT_ITERATIONS, DEFAULT_WARMUP, Timing, time_op

PATTERN = 0xA5   # what the benchmarks write
POISON = 0x5A    # what the destination holds before each timed write
_CHUNK = 1 << 20  # verify in slices: no temporary the size of the buffer


#: The benchmarks pimem can run (pimem.bench.catalog declares them, published-only ones too).
BENCHMARKS: dict[str, BenchmarkSpec] = {n: s for n, s in CATALOG.items() if s.runnable}

_GPU_WRITE = MemFlag.ZERO  # every GPU destination is allocated zeroed, as the original did

#: Pointer chasing: one step per 64-byte slot (a Cortex-A53's cache line, and
#: most x86 ones), so every load is a new line; loads per timed operation;
#: the block whose latency counts as an L1 hit (tinymembench reports the
#: extra over it).
LATENCY_SLOT = 64
LATENCY_STEPS = 1024
L1_REFERENCE_BYTES = 1024
#: The largest block a sweep chases through (tinymembench's and the published tables' range).
LATENCY_MAX_BYTES = 64 << 20

#: The original lesson's three, in its order.
ORIGINAL = ("baseline", "standard", "zerocopy")


@dataclass
class PhaseResult:
    """One timed phase of one benchmark at one size."""

    benchmark: str
    phase: str
    size: int
    timing: Timing
    verified: bool
    detail: str
    kernel: str
    flags: str = ""   # the GPU buffer's flags, "" for host memory
    alias: str = ""   # the alias read from its bus address
    bus_address: int | None = None

    l1_seconds: float | None = None   # latency rows: an L1 hit's time, measured beside

    @property
    def bytes(self) -> int:
        """Counted for bandwidth: the buffer size (a copy counts its bytes once)."""
        return self.size

    @property
    def bus_bytes(self) -> int:
        """Moved over the memory bus: a copy reads and writes (catalog.BUS_FACTOR)."""
        return BUS_FACTOR[self.phase] * self.size

    def seconds(self, statistic: str = "median") -> float:
        """Seconds per operation; per access for a latency phase."""
        return self.timing.stat(statistic)

    @property
    def has_bandwidth(self) -> bool:
        """False for a failed result and for latency (the time of one access is no bandwidth)."""
        return self.verified and self.phase != "latency"

    def gb_per_s(self, statistic: str = "median") -> float | None:
        """10^9 bytes per second; None when the result failed verification or is a latency."""
        return self.bytes / self.seconds(statistic) / 1e9 if self.has_bandwidth else None

    def gib_per_s(self, statistic: str = "median") -> float | None:
        """2^30 bytes per second; None when the result failed verification or is a latency."""
        return self.bytes / self.seconds(statistic) / 2**30 if self.has_bandwidth else None


def check_name(name: str) -> BenchmarkSpec:
    """The runnable benchmark of that name, or UsageError naming the ones there are."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        also = " (only published figures hold it)" if name in CATALOG else ""
        raise UsageError(f"unknown benchmark {name!r}{also}; choose from: {', '.join(BENCHMARKS)}") from None


def count_mismatches(arr: np.ndarray, value: int) -> int:
    """How many bytes of ``arr`` differ from ``value`` (read in slices)."""
    flat = arr.reshape(-1).view(np.uint8)
    return sum(int(np.count_nonzero(flat[i:i + _CHUNK] != value)) for i in range(0, flat.size, _CHUNK))


def first_mismatch(arr: np.ndarray, value: int) -> tuple[int, int] | None:
    """(offset, byte) of the first byte of ``arr`` that differs from ``value``; None if none does."""
    flat = arr.reshape(-1).view(np.uint8)
    for i in range(0, flat.size, _CHUNK):
        hits = np.flatnonzero(flat[i:i + _CHUNK] != value)
        if hits.size:
            return i + int(hits[0]), int(flat[i + int(hits[0])])
    return None


def describe_mismatch(arr: np.ndarray, value: int, when: str) -> str | None:
    """Which bytes of ``arr`` are wrong, in one line; None when every byte is ``value``."""
    bad = count_mismatches(arr, value)
    if not bad:
        return None
    first = first_mismatch(arr, value)
    assert first is not None
    off, got = first
    return (f"{bad} of {arr.nbytes} bytes wrong {when}: the first at offset {off} holds 0x{got:02X}, "
            f"expected 0x{value:02X}")


# Poison, sources and page touching use a kernel of their own, never the one
# under test: a broken fill must not also break the poison that would expose
# it. The numpy fill is the one safe on Device-mapped memory (kernels.py).
_TRUSTED = NumpyKernel()


def expected_read(nbytes: int, value: int) -> int:
    """What a correct read returns for ``nbytes`` bytes all equal to ``value``, worked out, not read.

    The sum mod 2**64 of the little-endian 64-bit words, the last zero-padded
    (the contract of Kernel.read); computed so a wrong read cannot supply its
    own expected value, and without a temporary the size of the buffer.
    """
    word = value * 0x0101010101010101
    tail = nbytes % 8
    return (nbytes // 8 * word + (word & ((1 << (8 * tail)) - 1))) & ((1 << 64) - 1)


class _Verifier:
    """Poisons before each timed write; checks every byte after it."""

    def __init__(self, kernel: Kernel, dst: np.ndarray, value: int) -> None:
        self.kernel, self.dst, self.value = kernel, dst, value
        self.failures: list[str] = []

    def poison(self) -> None:
        _TRUSTED.fill(self.dst, POISON)

    def check(self) -> None:
        if self.failures:  # only the first failure is reported
            return
        wrong = describe_mismatch(self.dst, self.value, "after the timed write")
        if wrong:
            self.failures.append(wrong)

    def detail(self, what: str) -> tuple[bool, str]:
        if self.failures:
            return False, self.failures[0]
        return True, f"{what}: every byte checked"


def _host_buffer(size: int, backend: Backend | None) -> np.ndarray:
    try:
        buf = host_array(size, backend)
    except (MemoryError, OSError):
        raise BenchmarkError(f"cannot allocate a host buffer of {size} bytes: not enough memory; "
                             "ask for a smaller size") from None
    _TRUSTED.fill(buf, POISON)  # touch every page before any timing
    return buf


@dataclass
class RunOptions:
    iterations: int = DEFAULT_ITERATIONS
    warmup: int = DEFAULT_WARMUP
    reps: int | None = None
    extra: dict = field(default_factory=dict)

    def time(self, op: Op, **kw: Callable[[], object] | None) -> Timing:
        return time_op(op.run, empty_op=op.empty, region=op.region, iterations=self.iterations,
                       warmup=self.warmup, reps=self.reps, **kw)


def _timed_write(spec: BenchmarkSpec, phase: str, kernel: Kernel, dst: np.ndarray, opts: RunOptions,
                 op: Op, gpu: GpuBuffer | None = None) -> PhaseResult:
    v = _Verifier(kernel, dst, PATTERN)
    timing = opts.time(op, before_each=v.poison, after_each=v.check)
    ok, detail = v.detail(f"{phase} of {dst.nbytes} bytes")
    return PhaseResult(spec.name, phase, dst.nbytes, timing, ok, detail,
                       kernel.name, *_gpu_labels(gpu))


def _gpu_labels(gpu: GpuBuffer | None) -> tuple[str, str, int | None]:
    if gpu is None:
        return "", "", None
    return flag_names(gpu.flags), str(gpu.alias), gpu.bus_address


def _run_read(spec: BenchmarkSpec, kernel: Kernel, src: np.ndarray, opts: RunOptions,
              gpu: GpuBuffer | None) -> PhaseResult:
    _TRUSTED.fill(src, PATTERN)
    not_written = describe_mismatch(src, PATTERN, "before the read (not as written)")
    expected = expected_read(src.nbytes, PATTERN)
    op = kernel.read_op(src)
    # The timed loop drops what each read returns (keeping it would be timed
    # too); the same prepared call is checked before and after instead.
    results = [int(op.run())]
    timing = opts.time(op)
    results.append(int(op.run()))
    wrong = [r for r in results if r != expected]
    ok = not not_written and not wrong
    detail = (f"read of {src.nbytes} bytes: result checked before and after timing" if ok else
              not_written if not_written else
              f"{len(wrong)} of {len(results)} reads returned a wrong sum: 0x{wrong[0]:016X}, "
              f"expected 0x{expected:016X}")
    return PhaseResult(spec.name, "read", src.nbytes, timing, ok, detail, kernel.name,
                       *_gpu_labels(gpu))


def chase_kernel(benchmark: str) -> CompiledKernel:
    """The compiled core's kernel, which alone can chase pointers; BenchmarkError saying why if absent."""
    from .core import status
    from .kernels import KERNELS

    k = KERNELS.get("c-loop")
    if not isinstance(k, CompiledKernel):
        raise BenchmarkError(f"{benchmark} needs the compiled timing core ({status().message}); "
                             "Python cannot time one load, which takes nanoseconds")
    return k


def _chase(core: CompiledKernel, buf: np.ndarray, opts: RunOptions) -> tuple[Timing, bool, str]:
    """(timing per access, chain intact, detail) for pointer chasing through ``buf``."""
    op, slots = core.chase_op(buf, LATENCY_SLOT, LATENCY_STEPS)
    before = int(op.run())
    t = opts.time(op)
    after = int(op.run())
    ok = before == after == slots
    per_access = Timing(tuple(s / LATENCY_STEPS for s in t.samples_s), t.reps * LATENCY_STEPS, 0.0, False)
    detail = (f"pointer chase through {slots} slots of {LATENCY_SLOT} bytes: the cycle checked before and after"
              if ok else f"the chain broke: walking it gave {before} then {after} steps, expected {slots}")
    return per_access, ok, detail


def _run_latency(spec: BenchmarkSpec, buf: np.ndarray, opts: RunOptions, gpu: GpuBuffer | None) -> PhaseResult:
    core = chase_kernel(spec.name)
    timing, ok, detail = _chase(core, buf, opts)
    l1 = None
    if ok and buf.nbytes >= 2 * L1_REFERENCE_BYTES:
        # An L1 hit's time in the same memory, measured after the main chase (it rewrites the first slots).
        # A reference, not the result: three samples of 256 x 1024 loads (about 1 ms each) are enough.
        l1_timing, l1_ok, _ = _chase(core, buf[:L1_REFERENCE_BYTES], RunOptions(iterations=3, warmup=1, reps=256))
        l1 = l1_timing.median_s if l1_ok else None
    elif ok:
        l1 = timing.median_s
    return PhaseResult(spec.name, "latency", buf.nbytes, timing, ok, detail, core.name,
                       *_gpu_labels(gpu), l1_seconds=l1)


def run_benchmark(name: str, size: int, *, kernel: Kernel, backend: Backend | None = None,
                  options: RunOptions | None = None) -> list[PhaseResult]:
    """Run one benchmark at one size; every GPU buffer is released on return, even on Ctrl-C."""
    spec = check_name(name)
    opts = options or RunOptions()
    if size <= 0:
        raise UsageError(f"size must be a positive number of bytes, got {size}")
    if spec.flags is None:     # host memory only
        return _run_op(spec, kernel, _host_buffer(size, backend), opts, None, backend)
    if spec.op == "chase":
        chase_kernel(spec.name)     # before allocating GPU memory for nothing
    flags = spec.flags | (_GPU_WRITE if spec.op.startswith("fill") else MemFlag(0))
    with GpuBuffer(size, flags, backend=backend) as gpu:
        return _run_op(spec, kernel, gpu.array, opts, gpu, backend)


def _run_op(spec: BenchmarkSpec, kernel: Kernel, buf: np.ndarray, opts: RunOptions, gpu: GpuBuffer | None,
            backend: Backend | None) -> list[PhaseResult]:
    """The benchmark's operation (spec.op) on its buffer: host memory, or the GPU buffer `gpu`."""
    if spec.op == "chase":
        return [_run_latency(spec, buf, opts, gpu)]
    if spec.op == "read":
        return [_run_read(spec, kernel, buf, opts, gpu)]
    if spec.op == "fill":
        op = kernel.fill_op(buf, PATTERN, device=gpu is not None)
        return [_timed_write(spec, spec.phases[0], kernel, buf, opts, op, gpu=gpu)]
    assert spec.op == "fill+copy", spec.op
    host = _host_buffer(buf.nbytes, backend)
    # Every row of standard carries its GPU buffer's labels, the host fill's too.
    fill = _timed_write(spec, "fill", kernel, host, opts, kernel.fill_op(host, PATTERN), gpu=gpu)
    _TRUSTED.fill(host, PATTERN)  # the copy's source, right whatever the fill under test did
    copy = _timed_write(spec, "copy", kernel, buf, opts, kernel.copy_op(buf, host, device=True), gpu=gpu)
    return [fill, copy, _total(spec, fill, copy)]


def _total(spec: BenchmarkSpec, fill: PhaseResult, copy: PhaseResult) -> PhaseResult:
    # Sample i of the total is fill i + copy i, as one fill-then-copy would take.
    samples = tuple(f + c for f, c in zip(fill.timing.samples_s, copy.timing.samples_s))
    timing = Timing(samples_s=samples, reps=min(fill.timing.reps, copy.timing.reps),
                    overhead_s=fill.timing.overhead_s + copy.timing.overhead_s,
                    overhead_bound=fill.timing.overhead_bound or copy.timing.overhead_bound)
    ok = fill.verified and copy.verified
    detail = "fill and copy both checked" if ok else (fill.detail if not fill.verified else copy.detail)
    # The data delivered is counted once; on the bus: the fill's write, the copy's read and write.
    return PhaseResult(spec.name, "total", fill.size, timing, ok, detail,
                       fill.kernel, copy.flags, copy.alias, copy.bus_address)


def iter_phases(results: list[PhaseResult]) -> Iterator[tuple[PhaseResult, int, float]]:
    """(result, sample index, seconds) for every timed sample."""
    for r in results:
        for i, s in enumerate(r.timing.samples_s):
            yield r, i, s
