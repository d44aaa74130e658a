"""pimem.plots: what the returned figures hold (Agg backend, no display)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from pimem import plots
from pimem.data import load_all
from pimem.exc import UsageError

HOST = "host run: Test CPU (x86_64), pimem emulator backend, recorded 2026-11-26"
PI = "Raspberry Pi 3B, published: some source"
MiB = 1 << 20


def rows(bench="baseline", phase="fill", sizes=(4096, 65536, MiB), samples=(1.0, 2.0, 3.0), ob=(), fail=(),
         prov=HOST, rec="host-rec", statistic="sample"):
    out = []
    for size in sizes:
        for i, gb in enumerate(samples):
            failed = size in fail
            secs = size / (gb * 1e9)
            out.append({"recording": rec, "provenance": prov, "benchmark": bench, "phase": phase,
                        "size_bytes": size, "statistic": statistic, "sample": i, "seconds": secs,
                        "bytes": size, "bus_bytes": size, "gb_per_s": np.nan if failed else gb,
                        "gib_per_s": np.nan if failed else gb * 1e9 / 2**30, "reps": 1,
                        "overhead_bound": size in ob, "verified": "fail" if failed else "pass",
                        "kernel": "libc", "flags": "", "alias": ""})
    return pd.DataFrame(out)


def all_text(fig: Figure) -> str:
    parts = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        parts += [t.get_text() for t in ax.texts]
        leg = ax.get_legend()
        if leg is not None:
            parts += [t.get_text() for t in leg.get_texts()]
        parts += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
    return "\n".join(parts)


def by_gid(fig: Figure, gid: str):
    return [a for a in fig.axes[0].get_children() if a.get_gid() == gid]


def test_curve_one_line_per_series_with_median_points():
    f = pd.concat([rows(), rows(bench="zerocopy", phase="write", samples=(4.0, 5.0, 9.0))])
    fig = plots.bandwidth_curve(f)
    assert isinstance(fig, Figure)
    base = by_gid(fig, "baseline:points")[0]
    assert list(base.get_xdata()) == [4096, 65536, MiB]
    assert list(base.get_ydata()) == [2.0, 2.0, 2.0]          # median of 1, 2, 3
    assert list(by_gid(fig, "zerocopy:points")[0].get_ydata()) == [5.0] * 3
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "baseline" in labels and "zerocopy" in labels
    assert by_gid(fig, "baseline:band"), "min-max band missing"


def test_curve_statistic_best_is_the_fastest_sample():
    fig = plots.bandwidth_curve(rows(), statistic="best")
    assert list(by_gid(fig, "baseline:points")[0].get_ydata()) == [3.0] * 3


def test_overhead_bound_points_are_hollow_and_noted():
    fig = plots.bandwidth_curve(rows(ob=(4096,)))
    hollow = by_gid(fig, "baseline:overhead")[0]
    assert list(hollow.get_xdata()) == [4096]
    assert hollow.get_markerfacecolor() == "none"
    filled = by_gid(fig, "baseline:points")[0]
    assert 4096 not in list(filled.get_xdata()) and filled.get_markerfacecolor() != "none"
    assert any("overhead-bound" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_no_hollow_points_when_none_is_overhead_bound():
    fig = plots.bandwidth_curve(rows())
    assert not by_gid(fig, "baseline:overhead")
    assert "overhead-bound" not in all_text(fig)


def test_failed_points_are_omitted():
    fig = plots.bandwidth_curve(rows(fail=(65536,)))
    for gid in ("baseline:points", "baseline:line"):
        assert 65536 not in list(by_gid(fig, gid)[0].get_xdata())
    assert list(by_gid(fig, "baseline:points")[0].get_xdata()) == [4096, MiB]


def test_units_and_size_ticks_are_labelled():
    fig = plots.bandwidth_curve(rows())
    ax = fig.axes[0]
    assert "GB/s" in ax.get_ylabel() and "10^9" in ax.get_ylabel()
    assert ax.get_xscale() == "log"
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert "4 KiB" in ticks and "1 MiB" in ticks


def test_footer_carries_provenance_and_a_host_run_is_never_a_pi():
    fig = plots.bandwidth_curve(rows())
    assert HOST in plots.footer_text(fig)
    text = all_text(fig)
    assert "host run" in fig.axes[0].get_title()
    assert "Raspberry Pi" not in text and "Pi 3" not in text


def test_footer_from_provenance_argument_and_missing_provenance_is_an_error():
    f = rows().drop(columns=["provenance", "recording"])
    with pytest.raises(UsageError, match="provenance"):
        plots.bandwidth_curve(f)
    fig = plots.bandwidth_curve(f, provenance="host run: here")
    assert "host run: here" in plots.footer_text(fig)


def test_several_recordings_get_their_own_lines_and_footer_lines():
    f = pd.concat([rows(), rows(rec="pi-rec", prov=PI, sizes=(64 * MiB,), samples=(1.3,), statistic="mean")])
    fig = plots.bandwidth_curve(f)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "baseline (host-rec)" in labels and "baseline (pi-rec)" in labels
    footer = plots.footer_text(fig)
    assert f"host-rec: {HOST}" in footer and f"pi-rec: {PI}" in footer
    assert by_gid(fig, "baseline (pi-rec):points")[0].get_marker() == "D"   # published: a diamond


def test_nothing_to_draw_names_what_the_frame_holds():
    with pytest.raises(UsageError, match="baseline"):
        plots.bandwidth_curve(rows(), benchmarks=["zerocopy"])


def test_a_host_curve_never_sits_on_pi_cache_shading():
    fig = plots.bandwidth_curve(rows(sizes=(4096, 64 * MiB)))
    ax = fig.axes[0]
    plots.cache_regions(ax)
    line = plots.peak_line(ax)
    assert list(line.get_ydata()) == [pytest.approx(3.6)] * 2 and "reference" in line.get_label()
    names = {a.get_gid() for a in ax.get_children()}
    assert not {n for n in names if (n or "").startswith("region:")}, "no Pi shading under host data"
    assert {"reference:L1D", "reference:L2"} <= names   # the Pi's sizes only as marked references
    assert "host run" in ax.get_title()
    footer = plots.footer_text(fig)
    assert "bcm2837.dtsi" in footer and "overclocking.adoc" in footer
    assert "not the host's" in footer and "for reference" in footer


def test_a_given_title_still_says_host_run():
    fig = plots.bandwidth_curve(rows(), title="Cached fill bandwidth against buffer size")
    assert fig.axes[0].get_title() == "Cached fill bandwidth against buffer size - host run"
    fig = plots.bandwidth_curve(rows(prov=PI, rec="pi"), title="Cached fill")
    assert fig.axes[0].get_title() == "Cached fill"


def test_overlays_over_pi_data_are_shaded():
    fig = plots.bandwidth_curve(rows(prov=PI, rec="pi", sizes=(4096, 64 * MiB)))
    plots.cache_regions(fig.axes[0])
    assert {"region:L1D 32 KiB", "region:L2 512 KiB", "region:DRAM"} <= {a.get_gid() for a in fig.axes[0].get_children()}


def test_overlays_over_pi_data_have_no_host_note():
    fig = plots.bandwidth_curve(rows(prov=PI, rec="pi"))
    plots.cache_regions(fig.axes[0])
    plots.peak_line(fig.axes[0])
    assert "not the host's" not in plots.footer_text(fig)


def test_cache_regions_rejects_an_unknown_board():
    fig = plots.bandwidth_curve(rows())
    with pytest.raises(UsageError, match="pi3b"):
        plots.cache_regions(fig.axes[0], board="pi5")


def test_report_bars_show_pass_fail_and_units():
    f = pd.concat([rows(sizes=(MiB,)), rows(bench="zerocopy", phase="write", sizes=(MiB,), fail=(MiB,))])
    fig = plots.report_bars(f)
    ax = fig.axes[0]
    labels = {t.get_gid(): t.get_text() for t in ax.texts}
    assert labels["bar-label:baseline: fill"].endswith("PASS") and "2 GB/s" in labels["bar-label:baseline: fill"]
    assert labels["bar-label:zerocopy: write"].endswith("FAIL")
    widths = [p.get_width() for p in ax.patches]
    assert widths == [pytest.approx(2.0), 0.0]            # a FAIL has no bandwidth
    assert "GB/s" in ax.get_xlabel() and HOST in plots.footer_text(fig)
    assert "Raspberry Pi" not in all_text(fig)
    ms = plots.report_bars(f, value="ms")
    assert "ms" in ms.axes[0].get_xlabel()


def test_report_bars_asks_for_a_size_when_there_are_several():
    with pytest.raises(UsageError, match="size="):
        plots.report_bars(rows())


def test_report_bars_from_a_bench_report(backend):
    from pimem.benchmarks import RunOptions
    from pimem.report import bench

    rep = bench(backend, 64 << 10, options=RunOptions(iterations=2, warmup=0), benchmarks=("baseline", "zerocopy"))
    fig = plots.report_bars(rep)
    footer = plots.footer_text(fig)
    assert footer.splitlines()[1].startswith("host run") and "Raspberry Pi" not in all_text(fig)
    assert len(fig.axes[0].patches) == 2


def test_published_comparison_draws_the_recorded_pi_figures_beside_a_run():
    data = load_all()
    published = data[data["provenance"].str.contains("published:")]
    run = rows(sizes=(4 * MiB, 32 * MiB, 64 * MiB))
    fig = plots.published_comparison(run, published, benchmarks=["baseline"])
    ax = fig.axes[0]
    orig = by_gid(fig, "published:original-lesson-pi3b")[0]
    assert list(orig.get_xdata()) == [pytest.approx(67108864 / 0.05016 / 1e9)]
    assert by_gid(fig, "run")[0].get_xdata()[0] == 2.0
    footer = plots.footer_text(fig)
    assert "original lesson" in footer and f"this run: {HOST}" in footer
    assert any("host run" in t.get_text() for t in ax.get_legend().get_texts())


# --- the alias map ---------------------------------------------------------------------

def _patch(fig: Figure, gid: str):
    found = [p for p in fig.axes[0].patches if p.get_gid() == gid]
    assert len(found) == 1, gid
    return found[0]


def test_alias_map_shows_one_ram_through_four_windows_and_the_arm_paths():
    mib = 1 << 20
    fig = plots.alias_map(arm_bytes=948 * mib)
    # Four VideoCore windows, each over the whole RAM (an alias is all of memory again).
    for flag in ("NORMAL", "L1_NONALLOCATING", "COHERENT", "DIRECT"):
        w = _patch(fig, f"alias:{flag}")
        assert (w.get_x(), w.get_width()) == (0, 1024)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "0xC alias (DIRECT), bus 0xC0000000: VideoCore direct uncached" in texts
    assert "0x8 alias (COHERENT), bus 0x80000000" in texts
    # The ARM: its RAM cached, the GPU memory (from the split to the top) non-cached, whatever the flag.
    cached, noncached = _patch(fig, "arm:cached"), _patch(fig, "arm:noncached")
    assert (cached.get_x(), cached.get_width()) == (0, 948)
    assert (noncached.get_x(), noncached.get_width()) == (948, 76)
    assert "whatever the flag" in texts
    footer = plots.footer_text(fig)
    assert "inference" in footer and "mmu.c" in footer


def test_alias_map_refuses_a_split_outside_the_ram():
    with pytest.raises(UsageError, match="arm_bytes"):
        plots.alias_map(arm_bytes=0)


# --- published latency and the generations figure ----------------------------------------

def test_latency_curve_draws_the_pi_3b_table_on_its_own_caches():
    from pimem.data import load_all

    d = load_all()
    fig = plots.latency_curve(d[d.recording == "tinymembench-pi3b"])
    ax = fig.axes[0]
    lines = {ln.get_gid(): ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("latency:")}
    single = lines["latency:tinymembench-pi3b:latency-single"]
    x, y = single.get_data()
    # sbc-bench 4hOp: "67108864 :  177.7 ns" for one read at a time; the L2 step after 512 KiB.
    assert x[-1] == 64 << 20 and y[-1] == pytest.approx(177.7)
    assert y[list(x).index(1 << 20)] > 3 * y[list(x).index(512 << 10)]
    assert "region:L2 512 KiB" in {p.get_gid() for p in ax.patches} | {c.get_gid() for c in ax.collections}
    assert "4hOp" in plots.footer_text(fig)


def test_latency_curve_refuses_host_data_and_bandwidth_rows():
    from pimem.data import load_all

    d = load_all()
    with pytest.raises(UsageError, match="no latency rows"):
        plots.latency_curve(d[d.recording == "qmkl-pi3"])
    host = d[d.recording == "tinymembench-pi3b"].copy()
    host["provenance"] = "host run: x86_64"
    with pytest.raises(UsageError, match="host run"):
        plots.latency_curve(host)


def test_generations_figure_has_every_model_with_its_source():
    from pimem.data import list_recordings

    recs = [r for r in list_recordings() if r.name.startswith("tinymembench-")]
    fig = plots.memory_wall_generations(recs)
    left, right = fig.axes
    boards = {ln.get_gid().split(":", 1)[1] for ln in left.get_lines()}
    assert {"Raspberry Pi 3B", "Raspberry Pi 3B+", "Raspberry Pi 5", "Raspberry Pi 1 Model B"} <= boards
    pi3b = next(ln for ln in left.get_lines() if ln.get_gid() == "bandwidth:Raspberry Pi 3B")
    assert pi3b.get_data()[0][0] == pytest.approx(4.8) and pi3b.get_data()[1][0] == pytest.approx(1.705)
    footer = plots.footer_text(fig)
    assert all(f"sbc-bench {code}" in footer for code in ("4hOp", "1iI5", "3E7U", "4JAv"))


def test_data_label_says_host_run_for_host_numbers():
    from pimem.data import load_all

    d = load_all()
    assert plots.data_label(d[d.recording == "host-2026-12-02-libc"]) == "host run (data/host-2026-12-02-libc)"
    label = plots.data_label(d[d.recording.isin(["tinymembench-pi3b", "original-lesson-pi3b"])])
    assert "host run" not in label and "Raspberry Pi 3B" in label


def test_a_recorded_host_run_is_shaded_with_its_own_caches():
    from pimem.data import load_all, load_recording, data_dir

    d = load_all()
    name = next(r for r in sorted(d.recording.unique()) if r.startswith("host-"))
    fig = plots.bandwidth_curve(d[(d.recording == name) & (d.benchmark == "read-host")])
    plots.cache_regions(fig.axes[0])
    caches = load_recording(data_dir() / f"{name}.csv").meta["machine"]["caches"]
    l2 = next(c["bytes"] for c in caches if c["level"] == 2)
    gids = {a.get_gid() for a in fig.axes[0].get_children()}
    assert f"region:host L2 {plots.size_label(l2)}" in gids and "reference:L2" in gids
    assert not any((g or "").startswith("region:L2 512") for g in gids)   # never the Pi's shading
