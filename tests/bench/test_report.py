"""The bench report: its analysis lines, read whichever way the ratios go."""
from __future__ import annotations

import dataclasses
import re

import pytest

from pimem.bench.benchmarks import BENCHMARKS, PhaseResult, RunOptions
from pimem.memory.info import system_info
from pimem.bench.kernels import KERNELS
from pimem.bench.report import BENCH_SET, LATENCY_SET, BenchReport, bench

LATENCY = LATENCY_SET if "c-loop" in KERNELS else ()   # latency needs the compiled core
from pimem.bench.timing import Timing

QUICK = RunOptions(iterations=3, warmup=0, reps=2)


def _r(benchmark, phase, seconds, verified=True):
    t = Timing(samples_s=(seconds,), reps=1, overhead_s=0.0, overhead_bound=False)
    return PhaseResult(benchmark, phase, 1 << 20, t, verified, "detail", "numpy")


def _report(backend, pi=True, **times):
    """A report from chosen times: baseline fill, zerocopy write, reads, standard (as a Pi's, unless pi=False)."""
    results = [_r("baseline", "fill", times.get("base", 1.0)),
               _r("standard", "fill", 1.0), _r("standard", "copy", 1.0),
               _r("standard", "total", times.get("total", 2.0)),
               _r("zerocopy", "write", times.get("zc", 1.0), times.get("zc_ok", True)),
               _r("read-host", "read", times.get("rh", 1.0)), _r("read-direct", "read", times.get("rd", 1.0))]
    info = system_info(backend)
    if pi:
        info = dataclasses.replace(info, backend="pi")
    return BenchReport(1 << 20, QUICK, "numpy", "median", info, results)


def _line(text, start):
    lines = [l.strip() for l in text.splitlines() if l.strip().startswith(start)]
    assert len(lines) == 1, text
    return lines[0]


# base / zc is the DIRECT write's speed relative to the cached fill.
@pytest.mark.parametrize("zc,word", [(1.0, "about as fast"), (1.004, "about as fast"), (0.99, "about as fast"),
                                     (1.0196, "about as fast"), (0.5, "faster"), (2.0, "slower"),
                                     (1.03, "slower")])
def test_direct_write_phrase_follows_the_ratio(backend, zc, word):
    line = _line(_report(backend, zc=zc).text(), "Writing the DIRECT buffer")
    assert word in line, line
    for other in {"about as fast", "faster", "slower"} - {word}:
        assert other not in line, line


def test_direct_write_never_says_one_times_slower(backend):
    # The old report: "runs at 1.00x the speed of the cached fill (slower)".
    line = _line(_report(backend, zc=1.004).text(), "Writing the DIRECT buffer")
    assert not re.search(r"1\.00x.*slower", line), line
    slow = _line(_report(backend, zc=2.0).text(), "Writing the DIRECT buffer")
    assert "0.50x" in slow and "2.00x as long" in slow


def test_zero_copy_and_read_phrases(backend):
    text = _report(backend, total=3.0, zc=1.0, rh=1.0, rd=30.0).text()
    assert "faster" in _line(text, "Zero-copy is") and "3.00x" in _line(text, "Zero-copy is")
    read = _line(text, "Reading the DIRECT buffer")
    assert "slower" in read and "30.00x as long" in read and "price of zero-copy" in read
    same = _report(backend, rh=1.0, rd=1.01).text()
    read = _line(same, "Reading the DIRECT buffer")
    assert "about as fast" in read and "price" not in read
    slower_zc = _line(_report(backend, total=1.0, zc=2.0).text(), "Zero-copy is")
    assert "slower" in slower_zc


def test_a_host_run_says_what_it_cannot_show_instead_of_findings(backend):
    # Off a Pi the "GPU" buffers are cached host memory: DIRECT read at 0.5x is noise, not "the price".
    text = _report(backend, pi=False, total=3.0, zc=1.0, rh=1.0, rd=2.0).text()
    analysis = text.split("Analysis", 1)[1]
    assert "Zero-copy is faster" in analysis and "a host run does show" in analysis
    assert "Reading the DIRECT buffer" not in analysis and "Writing the DIRECT buffer" not in analysis
    assert "price of zero-copy" not in analysis
    assert "cannot show" in analysis and "ordinary cached" in analysis and "DIRECT read / cached read 2.00x" in analysis
    assert "notebook 06" in analysis


def test_copy_share(backend):
    assert "50.0% of the standard total" in _report(backend, total=2.0).text()


def test_a_fail_hides_its_ratios_and_says_so(backend):
    rep = _report(backend, zc_ok=False)
    a = rep.analysis()
    assert a["zerocopy_speedup_over_standard"] is None and a["direct_write_vs_cached_fill"] is None
    assert a["uncached_read_slowdown"] is not None
    text = rep.text()
    assert "Writing the DIRECT buffer" not in text and "ratios involving a FAIL are not shown" in text
    assert "FAIL: detail" in text
    assert "ratios involving a FAIL" not in _report(backend).text()


def test_bench_in_process(backend):
    rep = bench(backend, 64 * 1024, kernel="numpy", options=QUICK)
    assert [(r.benchmark, r.phase) for r in rep.results] == [(b, p) for b in BENCH_SET + LATENCY
                                                             for p in BENCHMARKS[b].phases]
    assert all(r.verified for r in rep.results)
    d = rep.as_dict()
    assert d["host_run"] is True and d["size_bytes"] == 64 * 1024
    assert all(v is not None for v in d["analysis"].values())
    z = next(r for r in d["results"] if r["benchmark"] == "zerocopy")
    assert z["alias"] == f"0x{(int(z['bus'], 16) >> 30) << 2:X}" == "0xC"
