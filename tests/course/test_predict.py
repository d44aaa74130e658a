"""pimem.course.predict and the Pi-first figures (pimem.course.plots.pi): predictions come from data/, say
they are predictions, carry their arithmetic and sources; Pi figures never carry a host run."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from pimem.bench.data import list_recordings, load_all
from pimem.course import plots
from pimem.course import predict as P
from pimem.exc import UsageError
from pimem.firmware.board import PI3B

MiB = 1 << 20


@pytest.fixture(scope="module")
def data():
    return load_all()


def rate(d, rec, bench, phase, kernel=None):
    """GB/s of one published row, from its stored value and unit (not from the loader's computed columns)."""
    r = d[(d.recording == rec) & (d.benchmark == bench) & (d.phase == phase)]
    if kernel:
        r = r[r.kernel == kernel]
    (row,) = r.itertuples()
    per_s = {"ms": lambda v: row.size_bytes / (v / 1e3), "MB/s": lambda v: v * 1e6, "MiB/s": lambda v: v * 2**20}
    return per_s[row.unit](row.value) / 1e9


def legend_texts(fig):
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


# --- the predictions -----------------------------------------------------------------

def test_dram_fill_spans_the_lessons_c_fill_to_tinymembench_memset(data):
    p = P.dram_fill(data)
    assert p.low == pytest.approx(rate(data, "original-lesson-pi3b", "baseline", "fill"))
    assert p.high == pytest.approx(rate(data, "tinymembench-pi3b", "baseline", "fill", "libc"))
    assert p.sizes[0] > PI3B.l2_bytes and p.unit == "GB/s"
    assert "data/original-lesson-pi3b" in p.sources and any("4hOp" in s for s in p.sources)
    assert "64 MiB" in p.arithmetic and "32 MiB" in p.arithmetic   # which run is which, said


def test_predictions_follow_the_recordings_not_retyped_numbers(data):
    changed = data.copy()
    pick = (changed.recording == "tinymembench-pi3b") & (changed.benchmark == "baseline") & (changed.kernel == "libc")
    changed.loc[pick, "gb_per_s"] *= 2
    assert P.dram_fill(changed).high == pytest.approx(2 * P.dram_fill(data).high)
    with pytest.raises(UsageError, match="expected one row"):
        P.dram_fill(data[data.recording != "tinymembench-pi3b"])


def test_zero_copy_write_is_flat_over_every_size_between_qmkl_and_the_lesson(data):
    p = P.zerocopy_write(data)
    ends = sorted([rate(data, "qmkl-pi3", "zerocopy", "write"), rate(data, "original-lesson-pi3b", "zerocopy", "write")])
    assert (p.low, p.high) == pytest.approx(tuple(ends))
    assert p.sizes[0] <= 4 << 10 and p.sizes[1] >= 64 * MiB


def test_standard_total_combines_fill_and_copy_times_and_holds_the_lessons_total(data):
    fill, copy, total = P.dram_fill(data), P.standard_copy(data), P.standard_total(data)
    assert total.low == pytest.approx(1 / (1 / fill.low + 1 / copy.low))
    assert total.high == pytest.approx(1 / (1 / fill.high + 1 / copy.high))
    assert total.high < copy.low or total.high < copy.high        # never above the copy alone
    assert "1 / (1/fill + 1/copy)" in total.arithmetic
    # The lesson measured its total separately (109.56 ms): the arithmetic must agree with it.
    assert total.holds(rate(data, "original-lesson-pi3b", "standard", "total"))


def test_uncached_read_is_bytes_per_load_over_dram_latency_and_holds_qmkls_read(data):
    p = P.uncached_read(data)
    chase = data[(data.recording == "ramlat-pi3b") & (data.size_bytes >= 4 * MiB)]
    ns = chase.value.astype(float)
    assert p.low == pytest.approx(4 / ns.max()) and p.high == pytest.approx(8 / ns.min())
    assert p.holds(rate(data, "qmkl-pi3", "read-direct", "read"))   # the one published uncached read
    assert not p.holds(rate(data, "qmkl-pi3", "read-host", "read"))


def test_readback_crossover_is_where_the_two_costs_meet(data):
    c = P.readback_crossover(data)
    assert 0 < c.low < c.high < 100 and c.unit == "%"
    fig = plots.zero_copy_payoff(data)
    ax = fig.axes[0]
    std = [ln for ln in ax.get_lines() if ln.get_gid() == "prediction-edge:standard"]
    zc = [ln for ln in ax.get_lines() if ln.get_gid() == "prediction-edge:zerocopy"]
    x = std[0].get_xdata()
    # Where each pair of band edges crosses lies inside the predicted crossover band.
    for s in std:
        for z in zc:
            diff = np.asarray(z.get_ydata()) - np.asarray(s.get_ydata())
            i = int(np.argmax(diff > 0))
            assert diff[0] < 0 < diff[-1]
            assert c.low * 0.97 <= x[i] <= c.high * 1.03


def test_a_prediction_says_so_and_refuses_an_empty_band():
    p = P.demand(8)
    assert p.low == pytest.approx(P.CPU_CORES * P.CPU_MHZ * 1e6 * 8 / 1e9)
    assert P.NOT_A_MEASUREMENT in p.label and "assumption" in p.arithmetic
    with pytest.raises(UsageError, match="low <= high"):
        P.Prediction("x", "x", 2.0, 1.0, "GB/s", "", ())


# --- the figures ---------------------------------------------------------------------

def test_pi_bandwidth_labels_predictions_and_pi_data_in_plain_words(data):
    fig = plots.pi_bandwidth(data, series=("fill", "write", "total"))
    texts = legend_texts(fig)
    preds = [t for t in texts if P.NOT_A_MEASUREMENT in t]
    assert len(preds) == 3
    assert "Pi 3B, tinymembench memset (published)" in texts
    assert not any("[" in t or "baseline" in t for t in texts)
    ax = fig.axes[0]
    edges = [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("prediction-edge:")]
    assert edges and all(ln.get_linestyle() == "--" for ln in edges)
    foot = plots.footer_text(fig)
    assert "1 / (1/fill + 1/copy)" in foot and "4hOp" in foot and "qmkl" in foot
    assert "region:L2 512 KiB" in {c.get_gid() for c in ax.patches} | {c.get_gid() for c in ax.collections}


def test_no_host_line_on_the_pi_caches(data):
    for series in (("fill", "cached-read"), ("fill", "write", "total"), ("cached-read", "uncached-read")):
        fig = plots.pi_bandwidth(data, series=series)
        ax = fig.axes[0]
        assert "host run" not in plots.footer_text(fig)
        drawn = {(ln.get_gid() or "").split(":")[1] for ln in ax.get_lines()
                 if (ln.get_gid() or "").startswith("pi:")}
        assert drawn and drawn <= set(plots.PI3_RECORDINGS)
    host = data[data.recording == plots.HOST_RECORDING]
    with pytest.raises(UsageError, match="host_bandwidth"):
        plots.pi_bandwidth(data, live=host)


def test_a_live_pi_run_is_drawn_over_the_prediction(data):
    live = data[(data.recording == "cpp-memory-performance-pi3b") & (data.kernel == "c-gcc")].copy()
    live["recording"], live["statistic"] = "this run (live)", "sample"
    fig = plots.pi_bandwidth(data, series=("cached-read",), live=live)
    ax = fig.axes[0]
    (line,) = [ln for ln in ax.get_lines() if ln.get_gid() == "live:read-host:read"]
    bands = [c for c in ax.collections if (c.get_gid() or "").startswith("prediction:")]
    assert all(line.get_zorder() > b.get_zorder() for b in bands)
    assert any("measured now" in t for t in legend_texts(fig))


def test_host_figure_draws_the_c_loop_run_on_its_own_caches_only(data):
    host = data[data.recording == plots.HOST_RECORDING]
    fig = plots.host_bandwidth(host, benchmarks=["baseline", "read-host"])
    ax = fig.axes[0]
    gids = {c.get_gid() or "" for c in ax.patches} | {c.get_gid() or "" for c in ax.collections}
    assert any(g.startswith("region:host") for g in gids)
    assert not any(g.startswith("region:") and "host" not in g for g in gids)   # no Pi shading
    assert all(t.startswith("this computer") or "no spread" in t or "bars" in t or "black edge" in t
               for t in legend_texts(fig))
    libc = data[data.recording == "host-2026-12-02-libc"]
    assert libc.overhead_bound.any()
    with pytest.raises(UsageError, match="overhead-bound"):
        plots.host_bandwidth(libc)
    with pytest.raises(UsageError, match="pi_bandwidth"):
        plots.host_bandwidth(data[data.recording == "tinymembench-pi3b"])


def test_latency_curve_does_not_call_the_chase_beyond_l1(data):
    fig = plots.latency_curve(data[data.recording.isin(["ramlat-pi3b", "tinymembench-pi3b"])])
    texts = legend_texts(fig)
    chase = [t for t in texts if "ramlat" in t]
    assert chase and all("beyond" not in t and "whole" in t for t in chase)
    assert all("beyond an L1 hit" in t for t in texts if "tinymembench" in t)
    assert "whole" in fig.axes[0].get_ylabel()
    only = plots.latency_curve(data[data.recording == "ramlat-pi3b"])
    assert "beyond" not in only.axes[0].get_ylabel()


def test_demand_ceiling_achieved_sources_each_bar(data):
    fig = plots.demand_ceiling_achieved(data)
    ax = fig.axes[0]
    widths = {r.get_gid(): r.get_width() for r in ax.patches}
    values = sorted(r.get_width() for r in ax.patches)
    assert PI3B.peak_bytes_per_s / 1e9 in [pytest.approx(v) for v in values]
    assert rate(data, "tinymembench-pi3b", "baseline", "fill", "libc") in [pytest.approx(v) for v in values]
    assert max(values) == pytest.approx(P.demand(8).low)
    assert set(widths) == {"bar:demand", "bar:ceiling", "bar:achieved"}
    foot = plots.footer_text(fig)
    for needle in ("overclocking.adoc", "450 MHz x 2 x 4 B", "4hOp", "original-lesson-pi3b", "assum"):
        assert needle in foot
    assert any("assumption" in t.get_text() for t in ax.get_yticklabels())


def test_generations_in_cycles_converts_each_boards_figures(data):
    recs = [r for r in list_recordings() if r.name.startswith("tinymembench-")]
    fig = plots.generations_in_cycles(recs)
    left, right = fig.axes
    pi3b = next(r for r in recs if r.name == "tinymembench-pi3b")
    ghz = pi3b.meta["machine"]["cpu_mhz"] / 1000
    ns = data[(data.recording == "tinymembench-pi3b") & (data.benchmark == "latency-single")
              & (data.size_bytes == 64 * MiB)].value.iloc[0]
    (lat,) = [ln for ln in right.get_lines() if ln.get_gid() == "latency:Raspberry Pi 3B"]
    assert lat.get_ydata()[0] == pytest.approx(ns * ghz)
    (bw,) = [ln for ln in left.get_lines() if ln.get_gid() == "bandwidth:Raspberry Pi 3B"]
    gbs = rate(data, "tinymembench-pi3b", "baseline", "fill", "libc")
    assert bw.get_ydata()[0] == pytest.approx(gbs / (ghz * pi3b.meta["machine"]["cores"]))
    assert "cycle" in left.get_ylabel() and "cycles" in right.get_ylabel()
    assert "4hOp" in plots.footer_text(fig)


def test_predictions_table_names_what_a_live_run_tests(data):
    t = P.predictions_table(P.pi3b_predictions(data))
    assert isinstance(t, pd.DataFrame) and len(t) == len(P.pi3b_predictions(data))
    assert t["a live run on a Pi 3B tests"].str.len().gt(10).all()


def test_pi_explorer_defaults_to_the_pi_and_offers_the_host_apart():
    from pimem.course import widgets
    from pimem.course.mode import RunMode

    ex = widgets.pi_explorer(RunMode(False, "emulator", "test"))
    assert "iterations" not in ex.controls          # recorded: nothing to measure
    fig = ex.figure
    assert any(P.NOT_A_MEASUREMENT in t for t in legend_texts(fig))
    assert "host run" not in plots.footer_text(fig) and "host" in ex.status.value
    ex.controls["view"].value = "host"
    assert ex.figure is not fig and "host run" in ex.figure.axes[0].get_title()
    assert plots.HOST_RECORDING in plots.footer_text(ex.figure)
    ex.controls["series"].value = ()
    assert ex.figure is None and "tick" in ex.message


def test_published_comparison_in_plain_words_names_board_source_and_program(data):
    fig = plots.published_comparison(plain=True)
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "Pi 3B, tinymembench memset (published)" in ticks and "cached fill" in ticks
    assert not any("[" in t or t.startswith(("baseline", "tinymembench-")) for t in ticks)
    rows = [t for t in ticks if "(published)" in t]
    assert len(rows) == len(set(rows))          # every row says which figure it is
    plain_default = [t.get_text() for t in plots.published_comparison().axes[0].get_yticklabels()]
    assert "tinymembench-pi3b [libc]" in plain_default   # the default, drawn by notebooks 04 and 06, unchanged


def test_host_figure_leaves_out_a_live_runs_overhead_bound_points_and_says_so(data):
    live = data[(data.recording == "host-2026-12-02-libc") & (data.benchmark == "baseline")].copy()
    live["recording"] = plots.style.LIVE_RECORDING
    n = int(live.overhead_bound.sum())
    assert n > 0
    fig = plots.host_bandwidth(live)
    assert f"left out: {n} overhead-bound rows" in plots.footer_text(fig)
    assert not [ln for ln in fig.axes[0].get_lines() if (ln.get_gid() or "").endswith(":overhead")]
