"""The benchmark engine: verification, poison, units and byte counting.

Broken kernels are made by wrapping a real one, so every failure below is a
failure the engine must catch in a kernel someone might write.
"""
from __future__ import annotations

import numpy as np
import pytest

from pimem.bench import benchmarks as bm
from pimem.bench.benchmarks import POISON, PATTERN, PhaseResult, RunOptions, run_benchmark
from pimem.exc import UsageError
from pimem.bench.kernels import KERNELS, Op
from pimem.bench.timing import Timing

QUICK = RunOptions(iterations=3, warmup=1, reps=2)   # fixed reps: no calibration, fast
SIZE = 64 * 1024 + 24                                 # not a power of two: the tail matters too
WRITE_BENCHMARKS = ("baseline", "zerocopy", "standard", "write-coherent", "write-l1nonalloc")


class Wrapped:
    """A real kernel with one of its operations replaced (fill, copy or read)."""

    def __init__(self, real, *, fill=None, copy=None, read=None, name="wrapped"):
        self.real, self.name = real, name
        self._fill, self._copy, self._read = fill, copy, read

    def fill_op(self, dst, value, *, device=False):
        return self._fill(self.real, dst, value) if self._fill else self.real.fill_op(dst, value, device=device)

    def copy_op(self, dst, src, *, device=False):
        return self._copy(self.real, dst, src) if self._copy else self.real.copy_op(dst, src, device=device)

    def read_op(self, src):
        return self._read(self.real, src) if self._read else self.real.read_op(src)

    # The plain calls go through the same (possibly broken) ops: a broken
    # kernel is broken everywhere, not only inside the timed loop.
    def fill(self, dst, value, *, device=False):
        self.fill_op(dst, value, device=device).run()

    def copy(self, dst, src, *, device=False):
        self.copy_op(dst, src, device=device).run()

    def read(self, src):
        return int(self.read_op(src).run())


def _flat(a):
    return a.reshape(-1).view(np.uint8)


def fill_skips_last_word(real, dst, value):
    return real.fill_op(_flat(dst)[:-8], value)


def fill_wrong_value(real, dst, value):
    return real.fill_op(dst, value ^ 0x01)


def copy_drops_last_byte(real, dst, src):
    return real.copy_op(_flat(dst)[:-1], _flat(src)[:-1])


def read_off_by_one(real, src):
    op = real.read_op(src)
    return Op(lambda: (int(op.run()) + 1) % 2**64, op.empty, op.keep)


@pytest.fixture(params=sorted(KERNELS))
def kernel(request):
    return KERNELS[request.param]


# --- the real kernels pass ------------------------------------------------

@pytest.mark.parametrize("name", list(bm.BENCHMARKS))
def test_real_kernels_pass_every_benchmark(backend, kernel, name):
    results = run_benchmark(name, SIZE, kernel=kernel, backend=backend, options=QUICK)
    assert [r.phase for r in results] == list(bm.BENCHMARKS[name].phases)
    for r in results:
        assert r.verified, r.detail
        if r.phase == "latency":     # a time per access, no bandwidth
            # Per access, not per timed region of LATENCY_STEPS loads (no claim on how long one takes).
            assert r.gb_per_s() is None and 0 < r.seconds() and r.timing.reps % bm.LATENCY_STEPS == 0
            assert r.l1_seconds is not None and r.l1_seconds > 0
        else:
            assert r.gb_per_s() is not None and r.gb_per_s() > 0
        assert len(r.timing.samples_s) == QUICK.iterations


def test_a_broken_chase_is_a_fail(backend, monkeypatch):
    # A chain that no longer closes (a store lost on the way) must not give a latency.
    core = bm.chase_kernel("latency-host")
    real = core.chase_op

    def broken(buf, slot, steps, seed=1):
        op, count = real(buf, slot, steps, seed)
        return op._replace(run=lambda: count - 1), count

    monkeypatch.setattr(core, "chase_op", broken)
    [r] = run_benchmark("latency-host", SIZE, kernel=core, backend=backend, options=QUICK)
    assert not r.verified and "chain broke" in r.detail and r.l1_seconds is None


def test_latency_without_the_core_says_why(backend, monkeypatch):
    monkeypatch.delitem(KERNELS, "c-loop", raising=False)
    with pytest.raises(bm.BenchmarkError, match="compiled timing core"):
        run_benchmark("latency-direct", SIZE, kernel=KERNELS["numpy"], backend=backend, options=QUICK)


def test_a_faithful_wrapper_passes(backend, kernel):
    # The wrapper itself must not be what makes the tests below fail.
    w = Wrapped(kernel)
    for name in WRITE_BENCHMARKS + ("read-host", "read-direct"):
        assert all(r.verified for r in run_benchmark(name, SIZE, kernel=w, backend=backend, options=QUICK))


# --- verification catches bad kernels --------------------------------------

def _failed(results, phase):
    r = next(r for r in results if r.phase == phase)
    assert r.verified is False
    assert r.gb_per_s() is None and r.gib_per_s() is None
    return r


@pytest.mark.parametrize("name,phase", [("baseline", "fill"), ("zerocopy", "write"), ("standard", "fill"),
                                        ("write-coherent", "write")])
def test_fill_skipping_the_last_word_fails(backend, kernel, name, phase):
    w = Wrapped(kernel, fill=fill_skips_last_word)
    results = run_benchmark(name, SIZE, kernel=w, backend=backend, options=QUICK)
    r = _failed(results, phase)
    # The detail names the wrong bytes: how many, and where the first one is.
    assert f"8 of {SIZE} bytes" in r.detail and f"offset {SIZE - 8}" in r.detail, r.detail
    assert f"0x{POISON:02X}" in r.detail and f"0x{PATTERN:02X}" in r.detail
    if name == "standard":
        _failed(results, "total")


@pytest.mark.parametrize("name,phase", [("baseline", "fill"), ("zerocopy", "write"), ("standard", "fill"),
                                        ("write-coherent", "write")])
def test_fill_writing_the_wrong_value_fails(backend, kernel, name, phase):
    w = Wrapped(kernel, fill=fill_wrong_value)
    r = _failed(run_benchmark(name, SIZE, kernel=w, backend=backend, options=QUICK), phase)
    assert f"{SIZE} of {SIZE} bytes" in r.detail and "offset 0 " in r.detail
    assert f"0x{PATTERN ^ 1:02X}" in r.detail, r.detail


def test_copy_dropping_the_last_byte_fails(backend, kernel):
    w = Wrapped(kernel, copy=copy_drops_last_byte)
    results = run_benchmark("standard", SIZE, kernel=w, backend=backend, options=QUICK)
    fill = next(r for r in results if r.phase == "fill")
    assert fill.verified, "the fill was right; only the copy is broken"
    copy = _failed(results, "copy")
    assert f"1 of {SIZE} bytes" in copy.detail and f"offset {SIZE - 1}" in copy.detail, copy.detail
    total = _failed(results, "total")
    assert total.detail == copy.detail


@pytest.mark.parametrize("name", ["read-host", "read-direct", "read-coherent"])
def test_read_returning_a_wrong_sum_fails(backend, kernel, name):
    # Wrong in read() and read_op() alike: the expected sum must not come from the kernel under test.
    w = Wrapped(kernel, read=read_off_by_one)
    [r] = run_benchmark(name, SIZE, kernel=w, backend=backend, options=QUICK)
    assert r.verified is False and r.gb_per_s() is None
    assert "wrong sum" in r.detail, r.detail


def test_fill_that_does_nothing_fails_even_on_reused_memory(backend, kernel):
    # A host buffer may be given memory that still holds the pattern from an
    # earlier run; the poison (not the kernel under test) must overwrite it.
    w = Wrapped(kernel, fill=lambda real, dst, value: real.fill_op(_flat(dst)[:0], value))
    for _ in range(3):
        run_benchmark("baseline", SIZE, kernel=kernel, backend=backend, options=QUICK)
        [r] = run_benchmark("baseline", SIZE, kernel=w, backend=backend, options=QUICK)
        assert r.verified is False


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 15, 16, 4096, 4099, 65543])
@pytest.mark.parametrize("value", [0x00, PATTERN, 0xFF])
def test_expected_read_matches_the_definition(size, value):
    data = bytes([value]) * size + bytes(-size % 8)
    words = [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data), 8)]
    assert bm.expected_read(size, value) == sum(words) % 2**64


# --- poison -----------------------------------------------------------------

class Recorder:
    """Wraps time_op and a kernel: what did the destination hold when each timed region began?"""

    def __init__(self, monkeypatch, real):
        self.armed = False
        self.seen: list[tuple[str, set[int]]] = []
        real_time_op = bm.time_op

        def time_op(op, *, before_each=None, **kw):
            def before():
                if before_each is not None:
                    before_each()
                self.armed = True   # the next run() is the first of a timed region
            return real_time_op(op, before_each=before, **kw)

        monkeypatch.setattr(bm, "time_op", time_op)
        self.kernel = Wrapped(real, fill=self._watch("fill", lambda r, d, v: r.fill_op(d, v)),
                              copy=self._watch("copy", lambda r, d, s: r.copy_op(d, s)))

    def _watch(self, what, make):
        def op_for(real, dst, *args):
            op = make(real, dst, *args)

            def run():
                if self.armed:
                    self.armed = False
                    self.seen.append((what, set(np.unique(_flat(dst)).tolist())))
                return op.run()
            return Op(run, op.empty, op.keep)
        return op_for


@pytest.mark.parametrize("name", WRITE_BENCHMARKS)
def test_destination_holds_poison_before_every_timed_region(backend, monkeypatch, name):
    rec = Recorder(monkeypatch, KERNELS["numpy"])
    results = run_benchmark(name, SIZE, kernel=rec.kernel, backend=backend, options=QUICK)
    assert all(r.verified for r in results)
    timed_phases = [r for r in results if r.phase != "total"]
    assert len(rec.seen) == QUICK.iterations * len(timed_phases)
    for what, held in rec.seen:
        assert held == {POISON}, f"{name} {what}: the destination held {sorted(held)} when a timed region began"


# --- units and byte counting ---------------------------------------------------

def _result(nbytes, samples, verified=True, phase="fill"):
    t = Timing(samples_s=tuple(samples), reps=1, overhead_s=0.0, overhead_bound=False)
    return PhaseResult("baseline", phase, nbytes, t, verified, "", "numpy")


def test_gb_and_gib_per_second():
    r = _result(3 * 2**30, [2.0, 1.5, 1.0])
    assert r.gib_per_s() == pytest.approx(2.0)                 # 3 GiB in the median 1.5 s
    assert r.gb_per_s() == pytest.approx(3 * 2**30 / 1.5 / 1e9)
    assert r.gb_per_s("min") == pytest.approx(3 * 2**30 / 1e9)
    assert r.gib_per_s("mean") == pytest.approx(3 / 1.5)
    assert r.gb_per_s() / r.gib_per_s() == pytest.approx(2**30 / 1e9)
    bad = _result(3 * 2**30, [2.0, 1.5, 1.0], verified=False)
    assert bad.gb_per_s() is None and bad.gib_per_s() is None


def test_standard_counts_copy_bytes_once_and_bus_bytes_fully(backend, kernel):
    fill, copy, total = run_benchmark("standard", SIZE, kernel=kernel, backend=backend, options=QUICK)
    assert (fill.bytes, fill.bus_bytes) == (SIZE, SIZE)
    assert (copy.bytes, copy.bus_bytes) == (SIZE, 2 * SIZE)
    assert (total.bytes, total.bus_bytes) == (SIZE, 3 * SIZE)
    assert total.timing.samples_s == pytest.approx([f + c for f, c in zip(fill.timing.samples_s,
                                                                           copy.timing.samples_s)])
    assert total.seconds("min") >= max(fill.seconds("min"), copy.seconds("min"))


@pytest.mark.parametrize("name", ["read-host", "read-direct"])
def test_a_read_counts_its_bytes_once(backend, kernel, name):
    [r] = run_benchmark(name, SIZE, kernel=kernel, backend=backend, options=QUICK)
    assert (r.size, r.bytes, r.bus_bytes) == (SIZE, SIZE, SIZE)


def test_gpu_labels_come_from_the_buffer(backend, kernel):
    [z] = run_benchmark("zerocopy", SIZE, kernel=kernel, backend=backend, options=QUICK)
    assert z.flags == "DIRECT|ZERO" and z.bus_address is not None
    assert z.alias == f"0x{((z.bus_address >> 30) & 3) << 2:X}" == "0xC"
    [b] = run_benchmark("baseline", SIZE, kernel=kernel, backend=backend, options=QUICK)
    assert (b.flags, b.alias, b.bus_address) == ("", "", None)


def test_bad_arguments(backend, kernel):
    with pytest.raises(UsageError, match="unknown benchmark 'fast'.*baseline"):
        run_benchmark("fast", SIZE, kernel=kernel, backend=backend)
    for size in (0, -4096):
        with pytest.raises(UsageError, match=str(size)):
            run_benchmark("baseline", size, kernel=kernel, backend=backend)


def test_gpu_buffers_are_released(backend, kernel):
    before = backend.ledger.entries()
    for name in ("standard", "zerocopy", "read-direct"):
        run_benchmark(name, SIZE, kernel=kernel, backend=backend, options=QUICK)
    assert backend.ledger.entries() == before


def test_a_host_run_backs_host_buffers_as_its_gpu_buffers(backend):
    # The emulator's "GPU" memory is a shared file mapping; so are a host run's host buffers,
    # or the two would differ in page size and TLB reach where a Pi shows no difference.
    import mmap as mmap_mod

    from pimem.memory.buffer import host_array

    a = host_array(1 << 20, backend)
    assert isinstance(a.base, memoryview) and isinstance(a.base.obj, mmap_mod.mmap) and a.nbytes == 1 << 20
    a[:] = 7
    assert int(a.sum()) == 7 << 20
    assert not list(backend.transport.firmware.state_dir.glob(".host-*")), "unlinked at once: nothing left behind"
    assert host_array(4096, None).base is None   # no backend: ordinary (numpy-owned) memory
