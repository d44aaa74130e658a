"""pimem.bench.timing: statistics and the repetition scheme, on a fake clock.

No test asserts a real timing: the arithmetic is checked on a clock that
advances only when told to.
"""
from __future__ import annotations

import gc
import math

import pytest

from pimem.bench import timing
from pimem.exc import UsageError
from pimem.bench.timing import Timing, summarize, time_op


class FakeClock:
    """perf_counter_ns stand-in: each reading costs `tick` ns; ops advance it with work()."""

    def __init__(self, tick: int = 10) -> None:
        self.now = 0
        self.tick = tick
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        t = self.now
        self.now += self.tick
        return t

    def work(self, ns: int) -> None:
        self.now += ns


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter_ns", fake)
    return fake


# --- summarize -----------------------------------------------------------

def test_summarize_known_samples() -> None:
    s = summarize([1, 2, 3, 4, 100])
    assert s["min"] == 1
    assert s["median"] == 3
    assert s["mean"] == 22
    # deviations from 22: -21 -20 -19 -18 78; squares sum to 7610; n - 1 = 4
    assert s["std"] == pytest.approx(math.sqrt(7610 / 4))
    assert set(s) == {"min", "median", "mean", "std"}


def test_summarize_even_count_and_one_sample() -> None:
    assert summarize([4.0, 1.0, 3.0, 2.0])["median"] == 2.5
    assert summarize([7.5]) == {"min": 7.5, "median": 7.5, "mean": 7.5, "std": 0.0}


def test_summarize_empty_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        summarize([])


def test_timing_properties_and_stat() -> None:
    t = Timing(samples_s=(3.0, 1.0, 2.0, 10.0), reps=4, overhead_s=0.0, overhead_bound=False)
    assert (t.min_s, t.median_s, t.mean_s) == (1.0, 2.5, 4.0)
    assert t.std_s == pytest.approx(summarize(t.samples_s)["std"])
    assert [t.stat(n) for n in timing.STATS] == [1.0, 2.5, 4.0]
    assert Timing((2.0,), 1, 0.0, False).std_s == 0.0
    with pytest.raises(UsageError, match="'max'"):
        t.stat("max")


# --- time_op on the fake clock --------------------------------------------

def test_fixed_reps_overhead_subtracted(clock: FakeClock) -> None:
    # A region of r ops reads: tick + r * 1000 ns; the no-op loop: tick.
    t = time_op(lambda: clock.work(1000), reps=10, iterations=3, warmup=0)
    assert t.reps == 10
    assert t.overhead_s == pytest.approx(clock.tick / 10 / 1e9)
    assert t.samples_s == pytest.approx((1000e-9,) * 3)
    assert t.overhead_bound is False


def test_before_and_after_once_per_iteration_warmup_not_sampled(clock: FakeClock) -> None:
    events: list[str] = []
    calls = 0

    def op() -> None:
        nonlocal calls
        calls += 1
        events.append("op")
        # warm-up operations are slow: if one were sampled, a sample would show it
        clock.work(1_000_000 if calls <= 2 * 4 else 1000)

    t = time_op(op, reps=4, iterations=3, warmup=2,
                before_each=lambda: events.append("before"),
                after_each=lambda: events.append("after"))
    assert calls == (2 + 3) * 4
    assert events[:8] == ["op"] * 8                     # warm-up: no before/after
    assert events[8:] == (["before"] + ["op"] * 4 + ["after"]) * 3
    assert len(t.samples_s) == 3
    assert t.samples_s == pytest.approx((1000e-9,) * 3)


def test_calibration_counts_as_warmup(clock: FakeClock) -> None:
    clock.tick = 0
    calls = 0

    def op() -> None:
        nonlocal calls
        calls += 1
        clock.work(1000)

    # 5 us per region needed: regions of 1 (1 us), 2 (2 us), 5 (5 us) ops -> reps 5.
    t = time_op(op, iterations=2, warmup=1, min_sample_s=5e-6)
    assert t.reps == 5
    assert calls == (1 + 2 + 5) + 2 * 5                 # 3 calibration regions cover warmup=1

    calls = 0
    t = time_op(op, iterations=2, warmup=5, min_sample_s=5e-6)
    assert t.reps == 5
    assert calls == (1 + 2 + 5) + (5 - 3) * 5 + 2 * 5    # the rest of the warm-up at reps 5


def test_calibration_reaches_larger_reps(clock: FakeClock) -> None:
    clock.tick = 0
    t = time_op(lambda: clock.work(100), iterations=1, min_sample_s=4e-6)   # needs 40 ops
    assert t.reps == 50
    assert t.samples_s == pytest.approx((100e-9,))


def test_reps_given_means_no_calibration(clock: FakeClock) -> None:
    calls = 0

    def op() -> None:
        nonlocal calls
        calls += 1
        clock.work(1)

    time_op(op, reps=7, iterations=2, warmup=0, min_sample_s=1.0)
    assert calls == 2 * 7


def test_samples_never_negative(clock: FakeClock) -> None:
    # An op that "takes" less than the empty loop (the clock runs backwards).
    t = time_op(lambda: clock.work(-5), reps=10, iterations=3, warmup=0)
    assert t.samples_s == (0.0, 0.0, 0.0)
    assert t.overhead_bound is True
    assert t.overhead_s >= 0


def test_overhead_bound_when_loop_cost_is_large(clock: FakeClock) -> None:
    clock.tick = 1000
    t = time_op(lambda: clock.work(1000), reps=1, iterations=2, warmup=0)
    assert t.overhead_s == pytest.approx(1e-6)
    # Overhead-bound: the raw time is kept (a lower bound on bandwidth), not raw - overhead.
    assert t.samples_s == pytest.approx((2e-6, 2e-6))
    assert t.overhead_bound is True


def test_empty_op_cost_is_taken_off(clock: FakeClock) -> None:
    # The call itself costs 50 ns (the empty op), the work 950 ns more.
    t = time_op(lambda: clock.work(1000), empty_op=lambda: clock.work(50), reps=10, iterations=3, warmup=0)
    assert t.overhead_s == pytest.approx((50 + clock.tick / 10) * 1e-9)  # one clock read per region
    assert t.samples_s == pytest.approx((950e-9, 950e-9, 950e-9))
    assert t.overhead_bound is False


def test_empty_op_that_is_most_of_the_time_marks_overhead_bound(clock: FakeClock) -> None:
    t = time_op(lambda: clock.work(1000), empty_op=lambda: clock.work(500), reps=10, iterations=2, warmup=0)
    assert t.overhead_bound is True
    assert t.samples_s == pytest.approx(((1000 + clock.tick / 10) * 1e-9,) * 2)


def test_empty_op_must_be_callable() -> None:
    with pytest.raises(UsageError, match="empty_op"):
        time_op(lambda: None, empty_op=42)


def test_after_each_exception_propagates(clock: FakeClock) -> None:
    class Mismatch(Exception):
        pass

    def verify() -> None:
        raise Mismatch("dst differs at byte 17")

    with pytest.raises(Mismatch, match="byte 17"):
        time_op(lambda: clock.work(1), reps=1, iterations=3, after_each=verify)
    assert gc.isenabled()


def test_keyboard_interrupt_propagates_and_gc_restored(clock: FakeClock) -> None:
    def op() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        time_op(op, reps=1)
    assert gc.isenabled()


@pytest.mark.parametrize("iterations", [0, -1, 1.5, True, "3", None])
def test_bad_iterations(iterations: object) -> None:
    with pytest.raises(UsageError, match=f"iterations.*{iterations!r}"):
        time_op(lambda: None, iterations=iterations)  # type: ignore[arg-type]


@pytest.mark.parametrize("warmup", [-1, 0.5, False, "1"])
def test_bad_warmup(warmup: object) -> None:
    with pytest.raises(UsageError, match=f"warmup.*{warmup!r}"):
        time_op(lambda: None, warmup=warmup)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [{"reps": 0}, {"reps": 2.0}, {"min_sample_s": -1.0},
                                    {"min_sample_s": float("nan")}])
def test_bad_reps_and_min_sample(kwargs: dict) -> None:
    with pytest.raises(UsageError):
        time_op(lambda: None, **kwargs)


def test_op_must_be_callable() -> None:
    with pytest.raises(UsageError):
        time_op(42)  # type: ignore[arg-type]


def test_real_clock_smoke() -> None:
    """Shape of a real result only: no assertion about how long anything took."""
    t = time_op(lambda: sum(range(10)), iterations=3, min_sample_s=1e-4)
    assert len(t.samples_s) == 3
    assert t.reps >= 1
    assert all(s >= 0 for s in t.samples_s)
    assert t.overhead_s >= 0
    assert isinstance(t.overhead_bound, bool)
