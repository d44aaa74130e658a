"""pimem.course.plots: what the returned figures hold (Agg backend, no display)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.text import Annotation, Text

from pimem.course import plots
from pimem.bench.data import load_all
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
            out.append({"recording": rec, "provenance": prov, "is_pi": prov == PI, "benchmark": bench, "phase": phase,
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
    # Published (one statistic): the benchmark's own marker and colour, edged in black, and said so.
    pub, mine = by_gid(fig, "baseline (pi-rec):points")[0], by_gid(fig, "baseline (host-rec):points")[0]
    assert pub.get_marker() == mine.get_marker() == plots.benchmark_style("baseline")[1]
    assert to_hex(pub.get_color()) == to_hex(mine.get_color())
    assert to_hex(pub.get_markeredgecolor()) == "#000000" != to_hex(mine.get_markeredgecolor())
    assert any("published" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


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
    from pimem.bench.benchmarks import RunOptions
    from pimem.bench.report import bench

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
    assert (noncached.get_x(), noncached.get_width()) == (948, 60)
    assert "whatever the flag" in texts
    # The top 16 MiB (0x3F000000 up) is the Pi 2/3's peripheral window for the ARM, not GPU memory it maps.
    periph = _patch(fig, "arm:peripherals")
    assert (periph.get_x(), periph.get_width()) == (1008, 16)
    assert "0x3F000000" in texts and "peripheral window" in plots.footer_text(fig)
    footer = plots.footer_text(fig)
    assert "inference" in footer and "mmu.c" in footer


def test_alias_map_without_a_peripheral_window():
    fig = plots.alias_map(arm_bytes=948 << 20, peripheral_base=None)
    assert _patch(fig, "arm:noncached").get_width() == 76
    assert "arm:peripherals" not in {p.get_gid() for p in fig.axes[0].patches}


def test_alias_map_refuses_a_split_outside_the_ram():
    with pytest.raises(UsageError, match="arm_bytes"):
        plots.alias_map(arm_bytes=0)


# --- published latency and the generations figure ----------------------------------------

def test_latency_curve_draws_the_pi_3b_table_on_its_own_caches():
    from pimem.bench.data import load_all

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
    from pimem.bench.data import load_all

    d = load_all()
    with pytest.raises(UsageError, match="no latency rows"):
        plots.latency_curve(d[d.recording == "qmkl-pi3"])
    host = d[d.recording == "tinymembench-pi3b"].copy()
    host["provenance"], host["is_pi"] = "host run: x86_64", False
    with pytest.raises(UsageError, match="host run"):
        plots.latency_curve(host)


def test_generations_figure_has_every_model_with_its_source():
    from pimem.bench.data import list_recordings

    recs = [r for r in list_recordings() if r.name.startswith("tinymembench-")]
    fig = plots.generations_in_cycles(recs)
    left, right = fig.axes[:2]
    boards = {ln.get_gid().split(":", 1)[1] for ln in left.get_lines()}
    assert {"Raspberry Pi 3B", "Raspberry Pi 3B+", "Raspberry Pi 5", "Raspberry Pi 1 Model B"} <= boards
    pi3b = next(ln for ln in left.get_lines() if ln.get_gid() == "bandwidth:Raspberry Pi 3B")
    assert pi3b.get_data()[0][0] == pytest.approx(4.8) and pi3b.get_data()[1][0] == pytest.approx(1.705 / 4.8)
    footer = plots.footer_text(fig)
    assert all(f"sbc-bench {code}" in footer for code in ("4hOp", "1iI5", "3E7U", "4JAv"))


def test_data_label_says_host_run_for_host_numbers():
    from pimem.bench.data import load_all

    d = load_all()
    assert plots.data_label(d[d.recording == "host-2026-12-02-libc"]) == "host run (data/host-2026-12-02-libc)"
    label = plots.data_label(d[d.recording.isin(["tinymembench-pi3b", "original-lesson-pi3b"])])
    assert "host run" not in label and "Raspberry Pi 3B" in label


def test_a_recorded_host_run_is_shaded_with_its_own_caches():
    from pimem.bench.data import load_all, load_recording, data_dir

    d = load_all()
    name = next(r for r in sorted(d.recording.unique()) if r.startswith("host-"))
    fig = plots.bandwidth_curve(d[(d.recording == name) & (d.benchmark == "read-host")])
    plots.cache_regions(fig.axes[0])
    caches = load_recording(data_dir() / f"{name}.csv").meta["machine"]["caches"]
    l2 = next(c["bytes"] for c in caches if c["level"] == 2)
    gids = {a.get_gid() for a in fig.axes[0].get_children()}
    assert f"region:host L2 {plots.size_label(l2)}" in gids and "reference:L2" in gids
    assert not any((g or "").startswith("region:L2 512") for g in gids)   # never the Pi's shading


# --- one style per benchmark, readable labels and footers, visible spread ----------------------

def style_of(fig: Figure, label: str) -> tuple[str, str]:
    """(colour, marker) of a series, read back from its points and its legend line."""
    points, line = by_gid(fig, f"{label}:points")[0], by_gid(fig, f"{label}:line")[0]
    assert to_hex(points.get_color()) == to_hex(line.get_color())
    assert points.get_marker() == line.get_marker()
    return to_hex(points.get_color()), points.get_marker()


def test_the_style_table_covers_every_benchmark_and_tells_them_apart():
    from pimem.bench.benchmarks import BENCHMARKS as RUNNABLE
    from pimem.bench.data import BENCHMARKS as RECORDED

    names = set(RUNNABLE) | set(RECORDED)
    assert names <= set(plots.BENCHMARK_STYLES), names - set(plots.BENCHMARK_STYLES)
    styles = [plots.benchmark_style(n) for n in sorted(names)]
    assert len(set(styles)) == len(styles), "two benchmarks share a colour and a marker"
    # The lesson's three are three colours, from the colour-blind-safe palette.
    main = {plots.benchmark_style(n)[0] for n in ("baseline", "standard", "zerocopy")}
    assert len(main) == 3 and main <= set(plots.OKABE_ITO.values())


def test_an_unknown_benchmark_gets_a_style_from_its_name_not_its_position():
    import subprocess
    import sys

    style = plots.benchmark_style("memset-nt")
    assert style == plots.benchmark_style("memset-nt") and style[0] in plots.FALLBACK_COLOURS
    # Not Python's salted hash(): the same in another interpreter with another hash seed.
    code = "from pimem.course import plots; print(plots.benchmark_style('memset-nt'))"
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout.strip()
        assert out == repr(style)


def test_a_benchmark_has_the_same_colour_and_marker_in_every_figure():
    one = pd.concat([rows(), rows(bench="standard", phase="total"), rows(bench="zerocopy", phase="write"),
                     rows(bench="memset-nt", phase="fill")])
    two = pd.concat([rows(bench="memset-nt", phase="fill"), rows(bench="read-host", phase="read"),
                     rows(bench="zerocopy", phase="write")])
    f1, f2 = plots.bandwidth_curve(one), plots.bandwidth_curve(two)
    for label, bench in (("zerocopy", "zerocopy"), ("memset-nt", "memset-nt")):
        assert style_of(f1, label) == style_of(f2, label) == tuple(
            [to_hex(plots.benchmark_style(bench)[0]), plots.benchmark_style(bench)[1]])
    assert style_of(f1, "baseline")[0] != style_of(f1, "zerocopy")[0] != style_of(f1, "standard total")[0]
    # The spread of a series is in its colour too.
    assert to_hex(by_gid(f2, "zerocopy:whiskers")[0].get_color()[0]) == style_of(f2, "zerocopy")[0]


def test_one_benchmark_from_two_recordings_keeps_its_colour_and_changes_its_line_style():
    f = pd.concat([rows(), rows(rec="other-rec")])
    fig = plots.bandwidth_curve(f)
    a, b = by_gid(fig, "baseline (host-rec):line")[0], by_gid(fig, "baseline (other-rec):line")[0]
    assert style_of(fig, "baseline (host-rec)") == style_of(fig, "baseline (other-rec)")
    assert a.get_linestyle() != b.get_linestyle()


def test_the_other_figures_draw_a_benchmark_in_its_style():
    d = load_all()
    zc_colour, zc_marker = plots.benchmark_style("zerocopy")
    bars = plots.report_bars(pd.concat([rows(sizes=(MiB,)), rows(bench="zerocopy", phase="write", sizes=(MiB,))]))
    assert [to_hex(p.get_facecolor()) for p in bars.axes[0].patches] == [
        to_hex(plots.benchmark_style("baseline")[0]), to_hex(zc_colour)]
    cmp = plots.published_comparison(rows(bench="zerocopy", phase="write", sizes=(64 * MiB,)),
                                     d[d["provenance"].str.contains("published:")], benchmarks=["zerocopy"])
    for gid in ("run", "published:original-lesson-pi3b"):
        point = by_gid(cmp, gid)[0]
        assert (to_hex(point.get_color()), point.get_marker()) == (to_hex(zc_colour), zc_marker)
    lat = plots.measured_latency_curve(d[d.recording == "host-2026-12-02-c-loop"])
    line = by_gid(lat, "latency:host-2026-12-02-c-loop:latency-direct")[0]
    assert (to_hex(line.get_color()), line.get_marker()) == tuple(
        [to_hex(plots.benchmark_style("latency-direct")[0]), plots.benchmark_style("latency-direct")[1]])


def boxes(fig: Figure, texts) -> list:
    if not hasattr(fig.canvas, "get_renderer"):   # a figure from elsewhere, on no canvas of its own
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in texts]


def assert_apart_and_inside(fig: Figure, texts) -> None:
    assert texts
    found = boxes(fig, texts)
    names = [t.get_text() for t in texts]
    for i, a in enumerate(found):
        assert a.width > 1 and a.height > 1, f"{names[i]!r} not drawn"
        assert fig.bbox.x0 <= a.x0 and a.x1 <= fig.bbox.x1 and fig.bbox.y0 <= a.y0 and a.y1 <= fig.bbox.y1, names[i]
        frame = texts[i].axes.get_window_extent(fig.canvas.get_renderer())
        assert frame.x0 <= a.x0 and a.x1 <= frame.x1 and frame.y0 <= a.y0 and a.y1 <= frame.y1, \
            f"{names[i]!r} runs out of its axes"
        for j in range(i):
            assert not a.overlaps(found[j]), f"labels {names[j]!r} and {names[i]!r} overlap"


def size_labels(fig: Figure) -> list:
    return [t for t in fig.axes[0].texts if isinstance(t, Annotation)]


@pytest.mark.parametrize("benchmarks", [None, ["baseline", "zerocopy", "read-host", "read-direct"]])
def test_published_comparison_size_labels_do_not_overlap_and_stay_inside(benchmarks):
    d = load_all()
    run = d[d.recording == "host-2026-12-02-libc"]
    fig = plots.published_comparison(run, benchmarks=benchmarks)
    labels = size_labels(fig)
    # Every point has its size beside it: the published ones and the run's.
    points = [a for a in fig.axes[0].lines if a.get_gid() == "run" or (a.get_gid() or "").startswith("published:")]
    assert len(labels) == sum(len(a.get_xdata()) for a in points)
    assert all(t.get_fontsize() >= 8 for t in labels)
    assert_apart_and_inside(fig, labels)


def test_published_comparison_without_a_run_and_with_one_crowded_row():
    d = load_all()
    fig = plots.published_comparison(None, d[d["provenance"].str.contains("published:")], benchmarks=["baseline"])
    assert_apart_and_inside(fig, size_labels(fig))


def test_the_course_comparison_places_single_published_figures_not_sweeps():
    d = load_all()
    sweep = d[d.recording == "cpp-memory-performance-pi3b"]   # a Pi 3B read sweep, 44 sizes per build
    assert sweep.is_pi.all() and sweep.board.eq("Raspberry Pi 3B").all() and sweep.size_bytes.nunique() == 44
    pub = plots.course_published()
    assert "cpp-memory-performance-pi3b" not in set(pub.recording)
    assert {"original-lesson-pi3b", "tinymembench-pi3b", "tinymembench-pi3bplus", "qmkl-pi3"} <= set(pub.recording)
    assert (pub.groupby(["recording", "benchmark", "phase", "kernel"]).size() == 1).all()
    fig = plots.published_comparison(None, benchmarks=["read-host"])   # qmkl's and the 3B+'s NEON read only
    drawn = {a.get_gid().split(":", 1)[1] for a in fig.axes[0].get_children() if (a.get_gid() or "").startswith("published:")}
    assert drawn == {"qmkl-pi3", "tinymembench-pi3bplus"}
    # drawn against size, a sweep is a curve
    curve = plots.bandwidth_curve(sweep)
    assert len(by_gid(curve, "read-host [c-gcc]:points")[0].get_xdata()) == 44


def test_generation_labels_do_not_overlap_and_stay_inside():
    from pimem.bench.data import list_recordings

    fig = plots.generations_in_cycles([r for r in list_recordings() if r.name.startswith("tinymembench-")])
    for ax in fig.axes:
        assert_apart_and_inside(fig, [t for t in ax.texts if isinstance(t, Annotation)])


def footer_figures() -> list[Figure]:
    d = load_all()
    curve = plots.bandwidth_curve(d[d.recording == "host-2026-12-02-libc"], benchmarks=["baseline", "zerocopy"])
    plots.cache_regions(curve.axes[0])
    plots.peak_line(curve.axes[0])
    from pimem.bench.data import list_recordings

    return [curve,
            plots.bandwidth_curve(rows(prov=PI, rec="pi")),
            plots.report_bars(rows(sizes=(MiB,))),
            plots.published_comparison(d[d.recording == "host-2026-12-02-libc"]),
            plots.latency_curve(d[d.recording == "tinymembench-pi3b"]),
            plots.measured_latency_curve(d[d.recording == "host-2026-12-02-c-loop"]),
            plots.generations_in_cycles([r for r in list_recordings() if r.name.startswith("tinymembench-")]),
            plots.alias_map()]


def test_footer_is_legible_and_clear_of_the_x_axis():
    for fig in footer_figures():
        footer = next(t for t in fig.texts if t.get_gid() == plots.FOOTER_GID)
        assert footer.get_fontsize() >= 8
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        fbox = footer.get_window_extent(r)
        assert fig.bbox.x0 <= fbox.x0 and fbox.x1 <= fig.bbox.x1 + 1 and fbox.y0 >= fig.bbox.y0, \
            "the footer runs off the figure"
        for ax in fig.axes:
            for t in ax.get_xticklabels() + [ax.xaxis.label]:   # (drawn by boxes(): the footer's own box)
                if t.get_visible() and t.get_text():
                    assert not fbox.overlaps(t.get_window_extent(r)), \
                        f"footer over {t.get_text()!r} in {fig.axes[0].get_title()!r}"


def test_no_text_in_a_figure_is_smaller_than_8_points():
    for fig in footer_figures():
        for t in fig.findobj(Text):
            if t.get_visible() and t.get_text().strip():
                assert t.get_fontsize() >= 8, (t.get_text(), t.get_fontsize(), fig.axes[0].get_title())


def test_the_footer_text_is_the_sources_unwrapped():
    fig = plots.bandwidth_curve(rows(prov="host run: " + "a very long machine description " * 8))
    footer = next(t for t in fig.texts if t.get_gid() == plots.FOOTER_GID)
    assert "\n" in footer.get_text().split("\n", 1)[1]          # wrapped on the figure...
    assert ("host-rec: host run: " + "a very long machine description " * 8).strip() in plots.footer_text(fig)


def test_the_spread_of_the_samples_is_drawn_as_whiskers_and_a_band():
    fig = plots.bandwidth_curve(rows(samples=(1.0, 2.0, 3.0)))
    whiskers = by_gid(fig, "baseline:whiskers")
    assert whiskers, "no whiskers"
    segs = whiskers[0].get_segments()
    assert [(seg[0][0], seg[0][1], seg[1][1]) for seg in segs] == [(4096, 1.0, 3.0), (65536, 1.0, 3.0), (MiB, 1.0, 3.0)]
    band = by_gid(fig, "baseline:band")[0]
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(1.0) and ys.max() == pytest.approx(3.0) and band.get_alpha() >= 0.25
    legend = " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    assert "slowest to fastest" in legend and "no spread" not in legend


@pytest.mark.parametrize("samples, words", [((2.0,), "one sample per point"), ((2.0, 2.0), "all equal")])
def test_no_spread_is_said_and_not_drawn(samples, words):
    fig = plots.bandwidth_curve(rows(samples=samples))
    assert not by_gid(fig, "baseline:whiskers") and not by_gid(fig, "baseline:band")
    legend = " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    assert "no spread" in legend and words in legend
