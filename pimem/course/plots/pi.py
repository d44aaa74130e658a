"""The Pi 3B first: published Pi data and labelled predictions (pimem.course.predict) on the Pi's caches,
and this computer's run in a figure of its own.

A prediction is drawn as a band with dashed edges, its legend text says "prediction, not a measurement",
and its arithmetic and sources are in the footer. A live measurement on a Pi is drawn over it. A host run
is never drawn on the Pi's cache shading: ``host_bandwidth`` draws it on the host's own caches.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from ...exc import UsageError
from ...firmware.board import PI3B
from .. import predict as P
from .curves import cache_regions, peak_line, select_rows, shade_host_caches, summarize_points
from .style import (GB, LIVE_RECORDING, MIN_FONT, add_provenance, axes_info, benchmark_style, footer_lines, host_recordings,
                    new_axes, new_figure, place_point_labels, size_axis, sources)

#: What a benchmark's phase does, in plain words.
WORDS: dict[tuple[str, str], str] = {
    ("baseline", "fill"): "cached fill",
    ("zerocopy", "write"): "direct (uncached) write",
    ("standard", "fill"): "fill of the host buffer",
    ("standard", "copy"): "copy into the GPU buffer",
    ("standard", "total"): "fill then copy, total",
    ("read-host", "read"): "cached read",
    ("read-direct", "read"): "uncached (DIRECT) read",
    ("read-coherent", "read"): "COHERENT buffer read",
    ("read-l1nonalloc", "read"): "L1_NONALLOCATING buffer read",
    ("write-coherent", "write"): "COHERENT buffer write",
    ("write-l1nonalloc", "write"): "L1_NONALLOCATING buffer write",
    ("copy-to-direct", "copy"): "copy into a DIRECT buffer",
    ("copy-from-direct", "copy"): "copy out of a DIRECT buffer",
    ("host-copy", "copy"): "memcpy",
}
#: A published program named by what it ran.
_KERNEL_WORDS = {("baseline", "libc"): "memset", ("baseline", "c-fill"): "C fill", ("host-copy", "libc"): "memcpy",
                 ("read-host", "c-gcc"): "read, C sum loop (gcc)", ("read-host", "c-clang"): "read, C sum loop (clang)",
                 ("baseline", "neon"): "NEON fill", ("host-copy", "neon"): "NEON copy", ("read-host", "neon"): "NEON read"}
_SOURCE_WORDS = {"tinymembench": "tinymembench", "original-lesson": "original lesson", "qmkl": "qmkl",
                 "cpp-memory-performance": "cpp-memory-performance", "ramlat": "ramlat"}
#: The published Pi 3 recordings a by-size Pi figure draws.
PI3_RECORDINGS = ("cpp-memory-performance-pi3b", "tinymembench-pi3b", "original-lesson-pi3b", "qmkl-pi3")
#: The host recording the course draws (no overhead-bound point).
HOST_RECORDING = "host-2026-12-02-c-loop"
#: What a Pi figure can draw: series name -> ((benchmark, phase) of its published rows, its predictions).
SERIES: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    "fill": ((("baseline", "fill"),), ("dram-fill",)),
    "write": ((("zerocopy", "write"),), ("zerocopy-write",)),
    "total": ((("standard", "total"),), ("standard-total",)),
    "copy": ((("standard", "copy"), ("copy-to-direct", "copy")), ("standard-copy",)),
    "cached-read": ((("read-host", "read"),), ()),
    "uncached-read": ((("read-direct", "read"),), ("uncached-read",)),
}
#: Published rows a by-size figure leaves out: qmkl's host memset was timed with its first page faults
#: (the qmkl-pi3 recording's notes); tinymembench's C fill sits on its memset (1705.4 against 1705.0 MB/s); the
#: clang build of the sweep repeats the gcc one.
LEFT_OUT = {("qmkl-pi3", "baseline", "libc"), ("tinymembench-pi3b", "baseline", "c-fill"),
            ("cpp-memory-performance-pi3b", "read-host", "c-clang")}


def what_words(benchmark: str, phase: str) -> str:
    return WORDS.get((benchmark, phase), f"{benchmark} {phase}")


def plain_label(recording: str, board: str, benchmark: str, phase: str, kernel: str, published: bool) -> str:
    """'Pi 3B, tinymembench memset (published)': the board, the source, what it did, in plain words."""
    short = str(board).replace("Raspberry Pi ", "Pi ")
    source = next((w for k, w in _SOURCE_WORDS.items() if recording.startswith(k)), recording)
    what = _KERNEL_WORDS.get((benchmark, kernel)) or what_words(benchmark, phase)
    return f"{short}, {source} {what} ({'published' if published else 'measured'})"


def draw_prediction(ax: Axes, pred: P.Prediction, *, scale: float = 1.0) -> Any:
    """A prediction's band over its sizes: shaded, dashed edges, its legend text; returns the band."""
    colour = benchmark_style(pred.benchmark)[0] if pred.benchmark else "0.4"
    lo, hi = ax.get_xlim()
    x0, x1 = (max(pred.sizes[0], lo), min(pred.sizes[1], hi)) if pred.sizes else (lo, hi)
    xs = np.array([x0, x1])
    hatch = "//" if pred.phase == "total" else None     # a total shares its benchmark's colour with its parts
    band = ax.fill_between(xs, pred.low * scale, pred.high * scale, facecolor=colour, alpha=0.16, lw=0,
                           hatch=hatch, edgecolor=colour, gid=f"prediction:{pred.key}", zorder=1)
    for v in (pred.low, pred.high):
        ax.plot(xs, [v * scale] * 2, ls="--", lw=1.3, color=colour, gid=f"prediction-edge:{pred.key}", zorder=2)
    band._pimem_label = pred.label  # type: ignore[attr-defined]
    ax.set_xlim(lo, hi)
    return Patch(facecolor=colour, alpha=0.35, edgecolor=colour, ls="--", hatch=hatch,
                 label=pred.label.replace(f" ({P.NOT_A_MEASUREMENT})", f"\n({P.NOT_A_MEASUREMENT})"),
                 gid=f"prediction-key:{pred.key}")


def _pi_rows(data: pd.DataFrame, series: Sequence[str]) -> pd.DataFrame:
    pairs = {bp for s in series for bp in SERIES[s][0]}
    d = data[data["recording"].isin(PI3_RECORDINGS) & data["is_pi"].astype(bool)]
    keep = [(b, p) in pairs and (r, b, k) not in LEFT_OUT
            for r, b, p, k in zip(d["recording"], d["benchmark"], d["phase"], d["kernel"])]
    d = d[keep]
    return d[d["size_bytes"] >= 1024]


def _fit_footer(fig: Figure, lines: Sequence[str], axes_inches: float, top_inches: float = 0.6) -> None:
    """Make the figure tall enough for its axes and its footer, then add the footer."""
    import textwrap

    from .style import FOOTER_FONT

    chars = max(40, int(fig.get_figwidth() * 72 * 0.97 / (0.58 * FOOTER_FONT)))
    rows = 1 + sum(len(textwrap.wrap(ln, chars, break_on_hyphens=False)) or 1 for ln in dict.fromkeys(lines))
    footer = rows * FOOTER_FONT * 1.3 / 72 + 0.75
    fig.set_figheight(axes_inches + top_inches + footer)
    add_provenance(fig, lines)
    fig.subplots_adjust(top=1 - top_inches / fig.get_figheight())


def _draw_published(ax: Axes, pts_frame: pd.DataFrame) -> list[Any]:
    """Published Pi figures: a line per sweep, a black-edged marker per single figure."""
    pts = summarize_points(pts_frame, "median")
    boards = dict(zip(pts_frame["recording"], pts_frame["board"]))
    handles = []
    for (rec, bench, phase, kernel), s in pts.groupby(["recording", "benchmark", "phase", "kernel"], sort=False):
        colour, marker = benchmark_style(bench)
        many = len(s) > 1
        line, = ax.plot(s["size_bytes"], s["value"], marker=marker, ms=4 if many else 8, mec="k" if not many else colour,
                        mew=1.0, color=colour, ls="-" if many else "none", lw=1.4,
                        fillstyle="full" if kernel != "c-clang" else "none",
                        label=plain_label(rec, boards[rec], bench, phase, kernel, True), zorder=4,
                        gid=f"pi:{rec}:{bench}:{phase}:{kernel}")
        handles.append(line)
    return handles


def _draw_live(ax: Axes, live: pd.DataFrame, series: Sequence[str]) -> tuple[list[Any], list[str]]:
    """A live Pi run over the predictions (a host run refused): its lines and its footer lines."""
    srcs = sources(live)
    if any(not s.is_pi for s in srcs.values()):
        raise UsageError("a host run has no place on a Pi's caches and predictions; draw it with "
                         "plots.host_bandwidth (its own figure, its own caches)")
    pairs = {bp for name in series for bp in SERIES[name][0]}
    lv = summarize_points(live[[bp in pairs for bp in zip(live["benchmark"], live["phase"])]], "median")
    lines = []
    if lv["overhead_bound"].any():   # call overhead dominated them: not the memory's rate
        lines.append(f"left out: {int(lv['overhead_bound'].sum())} overhead-bound points of the live run")
        lv = lv[~lv["overhead_bound"]]
    handles = []
    for (rec, bench, phase, kernel), s in lv.groupby(["recording", "benchmark", "phase", "kernel"], sort=False):
        colour, marker = benchmark_style(bench)
        line, = ax.plot(s["size_bytes"], s["value"], marker=marker, ms=5, color=colour, ls="-", lw=2.2,
                        mec="k", label=f"this Pi, {what_words(bench, phase)} (measured now)", zorder=5,
                        gid=f"live:{bench}:{phase}")
        handles.append(line)
    return handles, lines + [f"this Pi, measured now: {s.line}" for s in srcs.values()]


def pi_bandwidth(data: pd.DataFrame | None = None, *, series: Sequence[str] = ("fill", "cached-read"),
                 live: pd.DataFrame | None = None, logy: bool | None = None, title: str | None = None,
                 peak: bool = True) -> Figure:
    """Pi 3B bandwidth against buffer size: published Pi figures and the predictions of ``series`` (keys of
    SERIES), on the Pi's caches and under its DRAM peak.

    ``live``: a measurement on a Pi (a sweep frame with 'provenance' and 'is_pi'), drawn over the
    predictions; a host run is refused (draw it with ``host_bandwidth``, in a figure of its own).
    """
    bad = [p for p in series if p not in SERIES]
    if bad:
        raise UsageError(f"series {', '.join(bad)} have no Pi data or prediction; choose from " + ", ".join(SERIES))
    if data is None:
        from ...bench.data import load_all

        data = load_all()
    preds = P.pi3b_predictions(data)
    pts_frame = _pi_rows(data, series)
    fig, ax = new_axes(None, (10.0, 5.6))
    axes_info(ax)["host"] = False
    ax.set_xscale("log", base=2)
    size_axis(ax, [1024, 256 << 20])
    logy = ("uncached-read" in series) if logy is None else logy
    used = [preds[k] for name in series for k in SERIES[name][1]]
    handles: list[Any] = [draw_prediction(ax, p) for p in used]
    lines: list[str] = []
    if not pts_frame.empty:
        handles += _draw_published(ax, pts_frame)
        lines += footer_lines(sources(pts_frame))
    if live is not None:
        drawn, notes = _draw_live(ax, live, series)
        handles += drawn
        lines += notes
    if logy:
        ax.set_yscale("log")
        ax.set_ylim(0.01, 12)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    else:
        ax.set_ylim(0, PI3B.peak_bytes_per_s / GB * 1.22)
    ax.set_ylabel("bandwidth, GB/s (10^9 bytes/s" + ("; log scale)" if logy else ")"))
    ax.grid(True, which="major", alpha=0.3)
    cache_regions(ax, "pi3b", host=False)
    if peak:
        handles.append(peak_line(ax, "pi3b", host=False))
    ax.set_title(title or "Raspberry Pi 3B: bandwidth against buffer size (published data and predictions)")
    ax.legend(handles=handles, fontsize=MIN_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.subplots_adjust(right=0.64)
    _fit_footer(fig, lines + [p.footer_line() for p in used], 4.0)
    return fig


def host_bandwidth(frame: pd.DataFrame, *, benchmarks: Sequence[str] | None = None,
                   phases: Sequence[str] | None = None, logy: bool = True, title: str | None = None) -> Figure:
    """This computer's bandwidth against size, on its own caches (from its sidecar): never a Pi's shading.

    Refuses Pi rows (they belong in ``pi_bandwidth``) and overhead-bound points (the course draws the
    C-loop recording, which has none).
    """
    from .curves import bandwidth_curve

    f = select_rows(frame, benchmarks, phases)
    if f.empty:
        raise UsageError("no host rows to draw for these benchmarks and phases")
    srcs = sources(f)
    if any(s.is_pi for s in srcs.values()):
        raise UsageError("host_bandwidth draws this computer's run; Pi data goes in plots.pi_bandwidth")
    ob = f["overhead_bound"].astype(bool).to_numpy()
    notes: list[str] = []
    if ob.any():
        recorded = set(f.loc[ob, "recording"].fillna("")) - {LIVE_RECORDING}
        if recorded:
            raise UsageError(f"{', '.join(sorted(recorded))} has overhead-bound points (call overhead dominates), "
                             f"which mislead a reader; draw the C-loop recording ({HOST_RECORDING})")
        # A live run without the compiled core: its overhead-bound points are left out, and the footer says so.
        notes.append(f"left out: {int(ob.sum())} overhead-bound rows of this live run (call overhead dominated them)")
        f = f[~ob]
        if f.empty:
            raise UsageError("every point of this live run is overhead-bound; build the compiled core "
                             "(pimem core) and run again")
    fig = bandwidth_curve(f, logy=logy, title=title or "On this computer (a host run, not a Pi)")
    ax = fig.axes[0]
    add_provenance(fig, notes)
    leg = ax.get_legend()
    if leg is not None:
        for t in leg.get_texts():
            t.set_text(_host_words(t.get_text()))
    info = axes_info(ax)
    info["host"] = True
    info.setdefault("host_recordings", set()).update(host_recordings(srcs))
    lo, hi = ax.get_xlim()
    shade_host_caches(ax, lo, hi)
    ax.set_xlim(lo, hi)
    return fig


def _host_words(text: str) -> str:
    for (bench, phase), words in WORDS.items():
        if text == bench or text == f"{bench} {phase}":
            return f"this computer, {words}"
    return text


# --- 01: demand, ceiling, achieved ------------------------------------------------------

def demand_ceiling_achieved(data: pd.DataFrame | None = None) -> Figure:
    """What four A53 cores could ask for (an assumption, stated), the SDRAM's peak, and the fills achieved."""
    if data is None:
        from ...bench.data import load_all

        data = load_all()
    d4, d4w, d1 = P.demand(8), P.demand(16), P.demand(8, cores=1)
    memset = P.published(data, "tinymembench-pi3b", "baseline", "fill", "libc")
    lesson = P.published(data, "original-lesson-pi3b", "baseline", "fill")
    peak = PI3B.peak_bytes_per_s / GB
    bars = [
        ("demand: 4 cores x 1.2 GHz x 8 B per cycle\n(an assumption, not a measurement)", d4.low, "demand",
         f"demand: {d4.arithmetic} ({P.CPU_SOURCE}); at 16 B per cycle {d4w.low:.1f} GB/s"),
        ("demand: 1 core x 1.2 GHz x 8 B per cycle\n(an assumption, not a measurement)", d1.low, "demand",
         f"one core: {d1.arithmetic}"),
        ("ceiling: SDRAM peak\n450 MHz x 2 x 4 B (arithmetic)", peak, "ceiling",
         f"ceiling: {PI3B.peak_source}"),
        ("achieved: Pi 3B, tinymembench memset\n(published, best of repeats, 32 MiB)", memset.value, "achieved",
         "achieved: data/tinymembench-pi3b, sbc-bench results/4hOp.txt (github.com/ThomasKaiser/sbc-bench)"),
        ("achieved: Pi 3B, original lesson C fill\n(published, mean of 5, 64 MiB)", lesson.value, "achieved",
         "achieved: data/original-lesson-pi3b, the original lesson's README (Pi 3B run)"),
    ]
    fig = new_figure((10.0, 5.2))
    ax = fig.add_subplot()
    ys = np.arange(len(bars))[::-1]
    style = {"demand": dict(color="0.85", edgecolor="0.3", hatch="//"), "ceiling": dict(color="0.25"),
             "achieved": dict(color=benchmark_style("baseline")[0])}
    for y, (label, v, kind, _) in zip(ys, bars):
        ax.barh(y, v, height=0.6, gid=f"bar:{kind}", **style[kind])
        ax.text(v + 0.6, y, f"{v:.2f} GB/s", va="center", fontsize=9, gid=f"bar-value:{kind}")
    ax.set_yticks(ys, [b[0] for b in bars], fontsize=9)
    ax.set_xlim(0, d4.low * 1.18)
    ax.set_xlabel("bytes per second, GB/s (10^9 B/s)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(f"Raspberry Pi 3B: what the cores could ask for, what the DRAM can give, what a fill gets\n"
                 f"the gap: {d4.low / memset.value:.0f} x between demand and the best published fill", fontsize=10)
    fig.subplots_adjust(left=0.36, right=0.97)
    _fit_footer(fig, [b[3] for b in bars], 3.6, 0.7)
    return fig


# --- 01: the generations in core cycles ---------------------------------------------------

def generations_in_cycles(recordings: Sequence[Any]) -> Figure:
    """Across Pi models: DRAM bandwidth in bytes per core cycle, DRAM latency in core cycles.

    Bytes per core cycle = memset GB/s / (GHz x cores): what the DRAM gives for each cycle the cores run
    (tinymembench fills with one core). Latency in cycles = ns beyond an L1 hit at 64 MiB x GHz.
    """
    pts = []
    for r in recordings:
        f, m = r.frame, r.meta["machine"]
        memset = f[(f.benchmark == "baseline") & (f.kernel == "libc")]
        far = f[(f.benchmark == "latency-single") & (f.size_bytes == f[f.phase == "latency"].size_bytes.max())]
        if not r.is_pi or memset.empty or far.empty or not m.get("cpu_mhz") or not m.get("cores"):
            raise UsageError(f"{r.name}: needs a board run with a memset row, a latency table, cpu_mhz and cores")
        ghz, cores = m["cpu_mhz"] / 1000, m["cores"]
        gbs, ns = float(memset.gb_per_s.iloc[0]), float(far.seconds.iloc[0]) * 1e9
        pts.append((ghz * cores, gbs / (ghz * cores), ns * ghz, m["board"], r.provenance(), gbs, ns, ghz, cores))
    pts.sort()
    fig = new_figure((11.0, 6.0))
    left, right = fig.subplots(1, 2)
    (bcol, bmark), (lcol, lmark) = benchmark_style("baseline"), benchmark_style("latency-single")
    xs = [p[0] for p in pts]
    left.plot(xs, [p[1] for p in pts], "-", color=bcol, lw=1, alpha=0.5, gid="trend:bandwidth")
    right.plot(xs, [p[2] for p in pts], "-", color=lcol, lw=1, alpha=0.5, gid="trend:latency")
    labels = []
    for x, bpc, cyc, board, *_ in pts:
        left.plot(x, bpc, bmark, color=bcol, mec="k", ms=7, gid=f"bandwidth:{board}")
        right.plot(x, cyc, lmark, color=lcol, mec="k", ms=7, gid=f"latency:{board}")
    for ax, col, kind in ((left, 1, "bandwidth"), (right, 2, "latency")):
        # Boards on (nearly) the same spot share one label: "3B, Zero 2 W".
        top = max(p[col] for p in pts)
        groups: list[list[Any]] = []
        for p in pts:
            g = next((g for g in groups if g[0][0] == p[0] and abs(g[0][col] - p[col]) < 0.04 * top), None)
            if g is None:
                groups.append([p])
            else:
                g.append(p)
        for g in groups:
            text = ", ".join(p[3].replace("Raspberry Pi ", "") for p in g)
            labels.append(ax.annotate(text, (g[0][0], g[0][col]), fontsize=MIN_FONT, xytext=(4, 4),
                                      textcoords="offset points", gid=f"point-label:{kind}:{g[0][3]}"))
    left.set_ylabel("DRAM fill, bytes per core cycle\n(memset GB/s / (GHz x cores)): higher is better")
    right.set_ylabel("DRAM random read, core cycles\n(ns beyond L1 at 64 MiB x GHz): lower is better")
    left.set_title("DRAM bandwidth per cycle of compute", fontsize=10)
    right.set_title("DRAM latency in the core's own cycles", fontsize=10)
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.set_xlabel("compute: CPU clock x cores (GHz, log scale)")
        ax.grid(alpha=0.3)
        ax.margins(x=0.12, y=0.15)
    left.set_ylim(bottom=0)
    right.set_ylim(bottom=0)
    fig.suptitle("The memory wall across Raspberry Pi generations, in the cores' own clock (published tinymembench runs)",
                 fontsize=11)
    add_provenance(fig, [f"{board}: {prov} ({gbs:.2f} GB/s, {ns:.0f} ns; {ghz:g} GHz x {cores})"
                         for _, _, _, board, prov, gbs, ns, ghz, cores in pts]
                   + ["tinymembench fills with one core; the x axis counts all of them, as a program using every "
                      "core would ask for data"])
    fig.subplots_adjust(wspace=0.32, top=1 - 0.8 / fig.get_figheight(), left=0.08, right=0.98)
    place_point_labels(fig, labels)
    return fig


# --- 07: where does zero-copy start to pay ---------------------------------------------

def zero_copy_payoff(data: pd.DataFrame | None = None, size: int = 64 << 20) -> Figure:
    """Time to fill ``size`` bytes of GPU-visible memory and then read back a share of it from the CPU, both ways.

    Standard: fill + copy, then reads of the cached host buffer; zero-copy: the direct write, then
    uncached reads. Both from the predictions (published Pi 3B figures combined by arithmetic).
    """
    if data is None:
        from ...bench.data import load_all

        data = load_all()
    total, write, unc = P.standard_total(data), P.zerocopy_write(data), P.uncached_read(data)
    rc = P.cached_dram_read(data)
    cross = P.readback_crossover(data)
    share = np.logspace(-3, 0, 200)        # 0.1 % .. 100 %
    fig = new_figure((10.0, 5.6))
    ax = fig.add_subplot()

    def ms(rate_gbs: float | np.ndarray) -> np.ndarray:
        return size / (np.asarray(rate_gbs) * GB) * 1e3

    std_lo = ms(total.high) + share * ms(rc[1])
    std_hi = ms(total.low) + share * ms(rc[0])
    zc_lo = ms(write.high) + share * ms(unc.high)
    zc_hi = ms(write.low) + share * ms(unc.low)
    x = share * 100
    handles = []
    for lo, hi, bench, what in ((std_lo, std_hi, "standard", "fill + copy, then cached reads"),
                                (zc_lo, zc_hi, "zerocopy", "direct write, then uncached reads")):
        colour = benchmark_style(bench)[0]
        ax.fill_between(x, lo, hi, color=colour, alpha=0.2, lw=0, gid=f"prediction:{bench}")
        ax.plot(x, lo, "--", color=colour, lw=1.3, gid=f"prediction-edge:{bench}")
        ax.plot(x, hi, "--", color=colour, lw=1.3, gid=f"prediction-edge:{bench}")
        handles.append(Patch(facecolor=colour, alpha=0.35, edgecolor=colour, ls="--",
                             label=f"Pi 3B, {what} ({P.NOT_A_MEASUREMENT})"))
    ax.axvspan(cross.low, cross.high, color="0.5", alpha=0.25, lw=0, gid="crossover")
    handles.append(Patch(facecolor="0.5", alpha=0.4, label=f"crossover: {cross.band_text()} of the buffer read back\n"
                                                            f"({P.NOT_A_MEASUREMENT})"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    for a in (ax.xaxis, ax.yaxis):
        a.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.set_xlabel("share of the buffer the CPU reads back afterwards (%, log scale)")
    ax.set_ylabel(f"time for {size >> 20} MiB, ms (log scale)")
    ax.grid(True, which="major", alpha=0.3)
    ax.text(0.02, 0.97, "left of the grey band:\nzero-copy is faster", transform=ax.transAxes, va="top",
            fontsize=9, gid="note:left")
    ax.text(0.98, 0.03, "right of it: fill + copy is faster", transform=ax.transAxes, ha="right", va="bottom",
            fontsize=9, gid="note:right")
    ax.set_title(f"Raspberry Pi 3B: where zero-copy stops paying ({size >> 20} MiB, beyond the L2)")
    ax.legend(handles=handles, fontsize=MIN_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.subplots_adjust(right=0.64)
    _fit_footer(fig, [p.footer_line() for p in (total, write, unc, cross)]
                + [f"cached read beyond the L2: {rc[0]:.3f}-{rc[1]:.3f} GB/s, data/cpp-memory-performance-pi3b "
                   "(github.com/anetczuk/cpp-memory-performance, doc/measurements/rpi3)"], 4.0)
    return fig


# --- 01: the cache line -------------------------------------------------------------------

#: The strides a cache-line figure draws, bytes.
STRIDES = (8, 16, 24, 32, 48, 64, 96, 128, 256, 512)


def _stride_axes(ax: Axes, strides: Sequence[int], line: int = P.LINE_BYTES) -> None:
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(list(strides), [f"{s}" for s in strides])
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda _v, _pos: ""))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: f"{v:g}" if str(f"{v:g}")[0] in "2356" else ""))
    ax.set_xlabel("stride: bytes from one word read to the next (log scale)")
    ax.set_ylabel("time per 8-byte word read, ns (log scale)")
    ax.grid(True, which="major", alpha=0.3)
    ax.axvline(line, color="k", ls=":", lw=1.2, gid="line-size")


def cache_line_stride(data: pd.DataFrame | None = None, *, live: pd.DataFrame | None = None) -> Figure:
    """A Pi 3B summing every s-th byte of a buffer beyond the L2: ns per word read against the stride.

    The band is a prediction (``predict.stride_read_ns``): the time per word grows with the stride until the
    stride reaches the 64-byte line, then each word costs a whole line. The one published point is the
    sequential sum (stride 8 B) of cpp-memory-performance beyond the L2. ``live``: ns per word measured on a
    Pi (columns stride_bytes, ns), drawn over the band.
    """
    if data is None:
        from ...bench.data import load_all

        data = load_all()
    t = P.line_time(data)
    xs = np.array([8, 16, 32, 64, 128, 256, 512], dtype=float)
    lo, hi = P.stride_read_ns(data, xs)
    fig, ax = new_axes(None, (10.0, 5.0))
    colour = benchmark_style("read-host")[0]
    ax.fill_between(xs, lo, hi, color=colour, alpha=0.16, lw=0, gid="prediction:stride")
    ax.plot(xs, lo, "--", color=colour, lw=1.3, gid="prediction-edge:stride")
    ax.plot(xs, hi, "--", color=colour, lw=1.3, gid="prediction-edge:stride")
    handles: list[Any] = [Patch(facecolor=colour, alpha=0.35, edgecolor=colour, ls="--",
                                label=f"Pi 3B, sum with a stride, beyond the L2\n({P.NOT_A_MEASUREMENT})")]
    rows = data[(data["recording"] == "cpp-memory-performance-pi3b") & (data["kernel"] == "c-gcc")
                & (data["size_bytes"] >= P.BEYOND_L2[0])]
    lines = []
    if not rows.empty:
        ns = 8 / rows["gb_per_s"]
        pt, = ax.plot([8], [float(ns.median())], "o", ms=8, color=colour, mec="k", zorder=5, gid="pi:stride-8",
                      label=f"Pi 3B, cpp-memory-performance sum, stride 8 B,\nbeyond the L2: "
                            f"{ns.min():.2f}-{ns.max():.2f} ns (published)")
        handles.append(pt)
        lines.append("published: data/cpp-memory-performance-pi3b, sizes 1 MiB to 300 MiB, gcc build, best of "
                     "repeats (github.com/anetczuk/cpp-memory-performance, doc/measurements/rpi3)")
    if live is not None and not live.empty:
        ln, = ax.plot(live["stride_bytes"], live["ns"], "o-", color=colour, mec="k", lw=2.2, zorder=6,
                      gid="live:stride", label="this Pi, sum with a stride (measured now)")
        handles.append(ln)
    _stride_axes(ax, [int(x) for x in xs])
    handles.append(Line2D([], [], color="k", ls=":", lw=1.2,
                          label=f"the Pi 3B's cache line, {P.LINE_BYTES} B (bcm2837.dtsi)"))
    ax.set_ylim(2, 80)
    ax.set_title("Raspberry Pi 3B: one word every s bytes costs more until s reaches the 64-byte line")
    ax.legend(handles=handles, fontsize=MIN_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.subplots_adjust(right=0.64)
    _fit_footer(fig, lines + [t.footer_line()], 3.6)
    return fig


def host_cache_line(hill: pd.DataFrame, meta: Any, size: int | None = None) -> Figure:
    """This computer's stride sum, from its memory-mountain recording at one working set (the largest)."""
    if meta.get("machine", {}).get("is_pi", False):
        raise UsageError("host_cache_line draws this computer's mountain; a Pi's goes in cache_line_stride")
    size = int(hill["size_bytes"].max()) if size is None else size
    rows = hill[hill["size_bytes"] == size].sort_values("stride_words")
    if rows.empty:
        raise UsageError(f"the mountain has no working set of {size} bytes")
    strides = (rows["stride_words"] * 8).astype(int).tolist()
    caches = [c for c in meta.get("machine", {}).get("caches", []) if c.get("type") != "Instruction"]
    holder = next((c for c in sorted(caches, key=lambda c: c["bytes"]) if size <= c["bytes"]), None)
    where = f"inside its L{holder['level']}" if holder else "beyond its caches"
    fig, ax = new_axes(None, (10.0, 4.6))
    colour = benchmark_style("read-host")[0]
    ax.plot(strides, 8 / rows["gb_per_s"], "o-", color=colour, mec="k", lw=1.6, gid="host:stride",
            label=f"this computer, sum with a stride,\n{size >> 20} MiB working set, {where} (measured)")
    _stride_axes(ax, [x for x in strides if x in STRIDES or x == strides[-1]])
    handles = ax.get_legend_handles_labels()[0] + [Line2D([], [], color="k", ls=":", lw=1.2,
                                                             label="64 B, the Pi 3B's line size")]
    ax.set_title("On this computer (a host run, not a Pi): a sum with a growing stride")
    ax.legend(handles=handles, fontsize=MIN_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.subplots_adjust(right=0.64)
    caches = ", ".join(f"L{c['level']} {c['bytes'] >> 10} KiB" for c in caches)
    _fit_footer(fig, [f"host run: {meta.get('machine', {}).get('description', 'machine not recorded')}"
                      f" ({caches}); data/mountain, {meta.get('created', '')[:10]}",
                      "ns per word = 8 B / the mountain's GB/s (the words read, CS:APP's convention); median of "
                      "the timed regions"], 3.2)
    return fig


__all__ = ["HOST_RECORDING", "PI3_RECORDINGS", "SERIES", "STRIDES", "WORDS", "cache_line_stride",
           "demand_ceiling_achieved", "draw_prediction", "generations_in_cycles", "host_cache_line", "host_bandwidth", "pi_bandwidth", "plain_label", "what_words",
           "zero_copy_payoff"]
