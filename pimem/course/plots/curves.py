"""Curves against buffer size: bandwidth, latency, and the Pi's cache regions and DRAM peak over them."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from ...exc import UsageError
from ...firmware.board import BOARDS, BoardFacts
from .style import (GB, MIN_FONT, STATISTICS, VARIANT_FILLSTYLES, VARIANT_LINESTYLES, Source, add_provenance,
                    axes_info, benchmark_style, footer_lines, host_recordings, host_title, new_axes, size_axis,
                    size_label, sources, variant_index)


# --- the boards' figures (pimem.firmware.board) ---------------------------------

def _board(board: str) -> BoardFacts:
    try:
        return BOARDS[board]
    except KeyError:
        raise UsageError(f"board {board!r} has no cache or peak figures here; use one of: "
                         + ", ".join(BOARDS)) from None


# --- summarising samples -------------------------------------------------------

def summarize_points(frame: pd.DataFrame, statistic: str = "median") -> pd.DataFrame:
    """One row per (recording, benchmark, phase, kernel, size): value, lo, hi, n, overhead_bound.

    Failed rows (verified == 'fail') are dropped: a wrong result has no bandwidth.
    Rows that already are a statistic (published figures) are kept as they are.
    ``statistic`` is the statistic of the samples' bandwidths: median, mean,
    min (the slowest) or best (the fastest, as tinymembench reports).
    """
    if statistic not in STATISTICS:
        raise UsageError(f"statistic {statistic!r} is not one of: {', '.join(STATISTICS)}")
    need = {"benchmark", "phase", "size_bytes", "gb_per_s", "verified", "overhead_bound"}
    missing = need - set(frame.columns)
    if missing:
        raise UsageError(f"the frame lacks the column(s) {', '.join(sorted(missing))}; expected the recording "
                         "schema of data/README.md (pimem.bench.sweep.results_frame or pimem.bench.data.load_all)")
    f = frame[frame["verified"] != "fail"].copy()
    f = f[f["gb_per_s"].notna()]
    f["gb_per_s"] = f["gb_per_s"].astype(float)
    for col, default in (("recording", ""), ("kernel", ""), ("statistic", "sample")):
        f[col] = f[col].fillna(default) if col in f.columns else default
    f["published"] = f["statistic"] != "sample"
    keys = ["recording", "benchmark", "phase", "kernel", "size_bytes"]
    func = {"median": "median", "mean": "mean", "min": "min", "best": "max"}[statistic]
    g = f.groupby(keys, sort=True)
    out = g["gb_per_s"].agg(value=func, lo="min", hi="max", n="count")
    out["overhead_bound"] = g["overhead_bound"].agg(lambda s: bool(np.any(s.astype(bool))))
    out["published"] = g["published"].agg("all")
    return out.reset_index()


def _series_label(key: tuple[str, str, str, str], multi: Mapping[str, bool]) -> str:
    rec, bench, phase, kernel = key
    label = bench if phase in ("fill", "write", "read") and bench != "standard" else f"{bench} {phase}"
    if multi["kernel"] and kernel:
        label += f" [{kernel}]"
    if multi["recording"] and rec:
        label += f" ({rec})"
    return label


# --- the curve -------------------------------------------------------------------

def select_rows(frame: pd.DataFrame, benchmarks: Sequence[str] | None = None,
                phases: Sequence[str] | None = None) -> pd.DataFrame:
    """The rows of these benchmarks and phases (None: all of them)."""
    if benchmarks is not None:
        frame = frame[frame["benchmark"].isin(list(benchmarks))]
    if phases is not None:
        frame = frame[frame["phase"].isin(list(phases))]
    return frame


def bandwidth_curve(frame: pd.DataFrame, benchmarks: Sequence[str] | None = None,
                    phases: Sequence[str] | None = None, statistic: str = "median", ax: Axes | None = None,
                    title: str | None = None, *, provenance: str | Source | None = None, logy: bool = False,
                    band: bool = True, whiskers: bool = True) -> Figure:
    """Bandwidth (GB/s) against buffer size, one line per benchmark/phase (and recording, and kernel).

    Each point is the ``statistic`` of its samples, with the min-max range of
    the samples shaded (``band``) and drawn as a whisker (``whiskers``); when
    no point has a spread the legend says so. Every benchmark has its colour and
    marker (``benchmark_style``); several series of one benchmark differ in line
    style and marker fill. Hollow markers: overhead-bound points (call overhead
    dominated; a lower bound on bandwidth). Black-edged markers: published
    figures (one statistic, no samples). Failed points are left out.
    """
    sources(frame, provenance)  # fail early when the data's origin is unknown
    f = select_rows(frame, benchmarks, phases)
    if f.empty:
        raise UsageError(f"nothing to draw: no rows for benchmarks={benchmarks!r}, phases={phases!r}; "
                         f"the frame holds: {', '.join(sorted(frame['benchmark'].unique()))}")
    provs = sources(f, provenance)
    pts = summarize_points(f, statistic)
    fig, ax = new_axes(ax, (10.0, 5.8))
    info = axes_info(ax)
    host = any(not s.is_pi for s in provs.values())
    info["host"] = info["host"] or host
    info.setdefault("host_recordings", set()).update(host_recordings(provs))
    multi = {"recording": pts["recording"].nunique() > 1, "kernel": pts["kernel"].nunique() > 1}
    groups = list(pts.groupby(["recording", "benchmark", "phase", "kernel"], sort=False))
    variant = variant_index([key for key, _ in groups])
    drawn = [_draw_series(ax, s, _series_label(key, multi), key[1], variant[key], band, whiskers) for key, s in groups]
    _curve_legend(ax, pts, any(ob for ob, _ in drawn), any(pub for _, pub in drawn), band, whiskers)
    fig.subplots_adjust(right=0.70, top=0.92)
    size_axis(ax, sorted(set(pts["size_bytes"]) | set(info.get("sizes", ()))))
    info["sizes"] = set(pts["size_bytes"]) | set(info.get("sizes", ()))
    if logy:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: f"{v:g}" if str(f"{v:g}")[0] in "25" else ""))
    what = {"median": "median", "mean": "mean", "min": "slowest", "best": "fastest"}[statistic]
    ax.set_ylabel(f"bandwidth, GB/s (10^9 bytes/s; {what} of samples)")
    ax.grid(True, which="major", alpha=0.3)
    pi = any(s.is_pi for s in provs.values())
    ax.set_title(host_title(title or "Bandwidth against buffer size", host, pi))
    add_provenance(fig, footer_lines(provs))
    return fig


def _draw_series(ax: Axes, s: pd.DataFrame, label: str, bench: str, k: int, band: bool,
                 whiskers: bool) -> tuple[bool, bool]:
    """One series' line, spread and points; (any overhead-bound point, all published)."""
    colour, marker = benchmark_style(bench)
    x, y = s["size_bytes"].to_numpy(float), s["value"].to_numpy(float)
    # A curve differs from its benchmark's other curves in line style; a lone point (no line) in fill.
    ls = VARIANT_LINESTYLES[k % len(VARIANT_LINESTYLES)]
    fill = VARIANT_FILLSTYLES[k % len(VARIANT_FILLSTYLES)] if len(x) == 1 else "full"
    lo, hi = s["lo"].to_numpy(float), s["hi"].to_numpy(float)
    ob, pub = s["overhead_bound"].to_numpy(bool), s["published"].to_numpy(bool)
    # Published figures (one statistic, no samples): the benchmark's marker, larger, edged in black.
    edge = {"mec": "k", "mew": 1.0, "ms": 7} if pub.all() else {"mec": colour, "ms": 5}
    line, = ax.plot(x, y, linestyle=ls if len(x) > 1 else "none", color=colour, lw=1.4, label=label,
                    gid=f"{label}:line", marker=marker, fillstyle=fill, markevery=[], **edge)
    spread = hi > lo
    if band and len(x) > 1 and spread.any():
        ax.fill_between(x, lo, hi, color=colour, alpha=0.25, lw=0, gid=f"{label}:band")
    if whiskers and spread.any():
        # Whiskers from the slowest to the fastest sample: visible however narrow the band.
        ax.vlines(x[spread], lo[spread], hi[spread], color=colour, lw=1.1, gid=f"{label}:whiskers")
        ax.plot(np.r_[x[spread], x[spread]], np.r_[lo[spread], hi[spread]], ls="", marker="_", ms=6,
                mew=1.1, color=colour, gid=f"{label}:whisker-caps")
    ax.plot(x[~ob], y[~ob], marker, color=colour, fillstyle=fill, ls="", gid=f"{label}:points", **edge)
    if ob.any():
        ax.plot(x[ob], y[ob], marker, mfc="none", mec=colour, ms=6, ls="", gid=f"{label}:overhead")
    if not len(x) > 1:
        line.set_markevery(None)
    return bool(ob.any()), bool(pub.all())


def _curve_legend(ax: Axes, pts: pd.DataFrame, any_ob: bool, any_pub: bool, band: bool, whiskers: bool) -> None:
    """The series, then what hollow and black-edged markers and the spread mean, outside on the right."""
    handles, labels = ax.get_legend_handles_labels()
    if any_ob:
        handles.append(Line2D([], [], marker="o", mfc="none", mec="0.3", ls="", gid="overhead-note"))
        labels.append("hollow: overhead-bound\n(call overhead dominates;\na lower bound on bandwidth)")
    if any_pub:
        handles.append(Line2D([], [], marker="o", mfc="0.6", mec="k", ms=7, ls="", gid="published-note"))
        labels.append("black edge: a published figure\n(one statistic, no samples)")
    sampled = pts[~pts["published"]]
    has_spread = bool((sampled["hi"] > sampled["lo"]).any())
    if has_spread and (band or whiskers):
        what = " and ".join(w for w, on in (("bars", whiskers), ("shading", band)) if on)
        handles.append(Line2D([], [], color="0.4", lw=1.1, marker="_", ms=6, mew=1.1, gid="spread-note"))
        labels.append(f"{what}: slowest to fastest\nsample at each size")
    elif not sampled.empty:
        one = bool((sampled["n"] <= 1).all())
        handles.append(Line2D([], [], ls="", gid="no-spread-note"))
        labels.append("no spread: one sample per point" if one else "no spread: the samples are all equal")
    # Outside the axes, on the right: the curves and the cache labels stay visible.
    ax.legend(handles, labels, fontsize=MIN_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def cache_regions(ax: Axes, board: str = "pi3b", *, host: bool | None = None) -> None:
    """Shade the L1D, L2 and DRAM size regions of ``board``'s caches on a size axis.

    ``host`` (default: whether host data was drawn on ``ax`` by this module)
    adds a note that the shading is the Pi's caches, not the host's.
    """
    b = _board(board)
    host = axes_info(ax)["host"] if host is None else host
    lo, hi = ax.get_xlim()
    if host:
        shade_host_caches(ax, lo, hi)
        # A host curve must not sit on a Pi's cache shading: the Pi's sizes become reference marks.
        for size, name in ((b.l1d_bytes, "L1D"), (b.l2_bytes, "L2")):
            if lo < size < hi:
                ax.axvline(size, color="0.35", ls=":", lw=1, zorder=1, gid=f"reference:{name}")
                ax.text(size, 0.98, f" {b.name} {name} {size_label(size)} (reference)", rotation=90,
                        transform=ax.get_xaxis_transform(), ha="right", va="top", fontsize=MIN_FONT, color="0.35",
                        gid=f"reference-label:{name}")
        ax.set_xlim(lo, hi)
        add_provenance(ax.figure, [f"dotted: {b.name} cache sizes for reference ({b.cache_source})"])  # type: ignore[arg-type]
        return
    regions = [(lo, b.l1d_bytes, f"L1D {size_label(b.l1d_bytes)}", "#c8e6c9"),
               (b.l1d_bytes, b.l2_bytes, f"L2 {size_label(b.l2_bytes)}", "#fff9c4"),
               (b.l2_bytes, hi, "DRAM", "#ffcdd2")]
    for start, end, name, colour in regions:
        if end <= lo or start >= hi:
            continue
        ax.axvspan(max(start, lo), min(end, hi), color=colour, alpha=0.45, zorder=0, lw=0, gid=f"region:{name}")
        mid = np.sqrt(max(start, lo) * min(end, hi))
        ax.text(mid, 0.98, name, transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=8,
                color="0.25", gid=f"region-label:{name}")
    ax.set_xlim(lo, hi)
    note = f"shaded: {b.name} cache sizes ({b.cache_source})"
    add_provenance(ax.figure, [note])  # type: ignore[arg-type]


def shade_host_caches(ax: Axes, lo: float, hi: float) -> None:
    """Shade the caches of the host that made the data, from its recording's sidecar (sysfs, cpu0)."""
    from ...bench.data import DataError, data_dir, load_recording

    names = sorted(axes_info(ax).get("host_recordings", ()))
    caches = None
    if len(names) == 1:
        try:
            caches = load_recording(data_dir() / f"{names[0]}.csv").meta["machine"].get("caches")
        except (DataError, OSError):
            caches = None
    if not caches:
        add_provenance(ax.figure, ["the host that ran the data has caches of its own: not recorded, "  # type: ignore[arg-type]
                                   "so not shaded"])
        return
    edges = [(c["bytes"], f"host L{c['level']}{'D' if c['type'] == 'Data' else ''} {size_label(c['bytes'])}")
             for c in sorted(caches, key=lambda c: c["level"]) if c["type"] in ("Data", "Unified")]
    start = lo
    colours = ["#dcedc8", "#fff3e0", "#e1f5fe", "#f3e5f5"]
    for (size, name), colour in zip(edges + [(hi, "host DRAM")], colours + ["#eeeeee"]):
        end = min(size, hi)
        if end > start:
            ax.axvspan(start, end, color=colour, alpha=0.5, zorder=0, lw=0, gid=f"region:{name}")
            ax.text(np.sqrt(start * end), 0.02, name, transform=ax.get_xaxis_transform(), ha="center",
                    va="bottom", fontsize=MIN_FONT, color="0.3", gid=f"region-label:{name}")
        start = max(start, end)
    add_provenance(ax.figure, [f"shaded: the caches of the host that ran {names[0]} "  # type: ignore[arg-type]
                               "(sysfs, cpu0, kept in its sidecar)"])


def peak_line(ax: Axes, board: str = "pi3b", *, host: bool | None = None) -> Line2D:
    """A horizontal line at ``board``'s theoretical DRAM peak (3.6 GB/s for the Pi 3B), with its source."""
    b = _board(board)
    host = axes_info(ax)["host"] if host is None else host
    ref = " (reference, not this host's)" if host else ""
    line = ax.axhline(b.peak_bytes_per_s / GB, color="k", ls="--", lw=1, gid="peak-line",
                      label=f"{b.name} DRAM peak {b.peak_bytes_per_s / GB:.1f} GB/s{ref}")
    # Near the bottom of the axes the cache labels sit under the line: the label goes above them.
    frac = (ax.transScale + ax.transLimits).transform((1.0, b.peak_bytes_per_s / GB))[1]
    lift = 13 if 0 <= frac < 0.1 else 1
    ax.annotate(f" {b.name} peak {b.peak_bytes_per_s / GB:.1f} GB/s{ref}", (1.0, b.peak_bytes_per_s / GB),
                xycoords=ax.get_yaxis_transform(), xytext=(-2, lift), textcoords="offset points",
                ha="right", va="bottom", fontsize=MIN_FONT, gid="peak-label")
    note = f"dashed: {b.name} theoretical DRAM peak, {b.peak_source}"
    if host:
        note += f"; the {b.name}'s peak, not the host's"
    add_provenance(ax.figure, [note])  # type: ignore[arg-type]
    return line


# --- latency: published tables and pimem's own pointer chase ----------------------

#: What each published latency benchmark times, in plain words.
_LATENCY_KINDS = {
    "latency-single": ("one random read at a time, beyond an L1 hit", "-"),
    "latency-dual": ("two random reads at a time, beyond an L1 hit", "--"),
    "latency-chase": ("one dependent load at a time, whole time (L1 hit included)", "-."),
}


def latency_curve(frame: pd.DataFrame, board: str = "pi3b", *, title: str | None = None) -> Figure:
    """Published latency against block size, one line per recording and kind, on the board's caches.

    tinymembench's tables (latency-single, latency-dual) print the time *beyond* an L1 hit; ramlat's
    chase (latency-chase) the whole time of a load, the L1 hit included: each line's legend says which,
    and the y label names both when both are drawn. ``frame`` holds latency rows of one board's
    recordings (load_all() filtered); its caches are shaded: the data and the shading come from the
    same machine, or this refuses.
    """
    lat = frame[frame["phase"] == "latency"]
    if lat.empty:
        raise UsageError("no latency rows to draw: give rows whose phase is 'latency' (e.g. from tinymembench-pi3b)")
    provs = sources(lat, None)
    if any(not s.is_pi for s in provs.values()):
        raise UsageError("latency_curve draws published board data on that board's cache sizes; "
                         "a host run has no place on them")
    b = _board(board)
    fig, ax = new_axes(None, (11.0, 5.0))
    groups = list(lat.groupby(["recording", "benchmark"], sort=True))
    variant = variant_index([key for key, _ in groups])
    for (rec, bench), rows in groups:
        rows = rows.sort_values("size_bytes")
        kind, ls = _LATENCY_KINDS.get(bench, (bench, "-"))
        colour, marker = benchmark_style(bench)
        k = variant[(rec, bench)]
        ls = ls if k == 0 else VARIANT_LINESTYLES[k % len(VARIANT_LINESTYLES)]
        board_name = str(rows["board"].iloc[0]).replace("Raspberry Pi ", "Pi ") if "board" in rows else b.name
        tool = "ramlat" if bench == "latency-chase" else "tinymembench"
        ax.plot(rows["size_bytes"], rows["seconds"] * 1e9, marker=marker, ms=5, color=colour, ls=ls,
                label=f"{board_name}, {tool}:\n{kind} (published)", gid=f"latency:{rec}:{bench}")
    ax.set_xscale("log", base=2)
    size_axis(ax, sorted(lat["size_bytes"].unique()))
    kinds = set(lat["benchmark"])
    whole, extra = "latency-chase" in kinds, bool(kinds & {"latency-single", "latency-dual"})
    ax.set_ylabel("ns per read: tinymembench beyond an L1 hit,\nramlat the whole load" if whole and extra
                  else "ns per dependent load (whole time, L1 hit included)" if whole
                  else "extra time per random read (ns, beyond an L1 hit)")
    ax.set_xlabel("block size read at random")
    ax.set_title(title or f"Latency against block size, {b.name} (published)")
    ax.legend(fontsize=MIN_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.subplots_adjust(right=0.68)
    cache_regions(ax, board, host=False)
    notes = []
    if extra:
        notes.append("missing points: block sizes tinymembench timed at 0.0 ns beyond an L1 hit (they fit in L1)")
    if whole:
        notes.append("ramlat (latency-chase) times the whole load: its first points are the L1 hit itself")
    add_provenance(fig, footer_lines(provs) + notes)
    return fig


#: pimem's pointer chase, by the buffer it runs through, in plain words.
_CHASE_WORDS = {"latency-host": "chase through a host buffer", "latency-direct": "chase through a DIRECT buffer",
                "latency-coherent": "chase through a COHERENT buffer",
                "latency-l1nonalloc": "chase through an L1_NONALLOCATING buffer"}


def measured_latency_curve(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """pimem's own pointer-chase latency (ns per access, median with min-max) against block size.

    One line per buffer kind (latency-host, -direct, ...); the caches shaded are those of the
    machine that ran it (a host run's from its sidecar; the Pi 3B's only under Pi data).
    """
    lat = frame[(frame["phase"] == "latency") & frame["benchmark"].str.match(r"latency-(host|direct|coherent|l1)")]
    if lat.empty:
        raise UsageError("no pimem latency rows to draw: give rows of latency-host, latency-direct, ... "
                         "(pimem sweep --benchmarks latency-host, or the host-2026-12-02-c-loop recording)")
    provs = sources(lat, None)
    host = any(not s.is_pi for s in provs.values())
    fig, ax = new_axes()
    info = axes_info(ax)
    info["host"] = host
    info.setdefault("host_recordings", set()).update(host_recordings(provs))
    groups = list(lat.groupby(["recording", "benchmark"], sort=True))
    variant = variant_index([key for key, _ in groups])
    multi = lat["recording"].nunique() > 1
    spread_any = False
    for (rec, bench), rows in groups:
        g = rows.groupby("size_bytes")["seconds"]
        x = np.array(sorted(rows["size_bytes"].unique()), float)
        med, lo, hi = (g.median() * 1e9).to_numpy(), (g.min() * 1e9).to_numpy(), (g.max() * 1e9).to_numpy()
        colour, marker = benchmark_style(bench)
        k = variant[(rec, bench)]
        ax.plot(x, med, marker=marker, ms=4, color=colour, ls=VARIANT_LINESTYLES[k % len(VARIANT_LINESTYLES)],
                fillstyle=VARIANT_FILLSTYLES[k % 5], label=f"{_CHASE_WORDS.get(bench, bench)} ({rec})" if multi
                else _CHASE_WORDS.get(bench, bench),
                gid=f"latency:{rec}:{bench}")
        ax.fill_between(x, lo, hi, color=colour, alpha=0.25, lw=0, gid=f"latency:{rec}:{bench}:band")
        spread = hi > lo
        spread_any = spread_any or bool(spread.any())
        if spread.any():
            ax.vlines(x[spread], lo[spread], hi[spread], color=colour, lw=1.0, gid=f"latency:{rec}:{bench}:whiskers")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    # Room under the lowest point for the cache labels, which sit at the bottom of the axes.
    ax.set_ylim(float(lat["seconds"].min()) * 1e9 / 2.5, float(lat["seconds"].max()) * 1e9 * 1.6)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    size_axis(ax, sorted(lat["size_bytes"].unique()))
    ax.set_ylabel("ns per random load\n(median; bars and band: min-max)" if spread_any
                  else "ns per random load\n(no spread: one sample per point)")
    ax.set_xlabel("block size chased through")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(host_title(title or "Memory latency against block size (pimem's pointer chase)", host))
    ax.legend(fontsize=MIN_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.subplots_adjust(right=0.78)
    if host:
        # A host's run on the host's own caches only: no Pi size drawn over its curves.
        lo, hi = ax.get_xlim()
        shade_host_caches(ax, lo, hi)
        ax.set_xlim(lo, hi)
    else:
        cache_regions(ax, "pi3b", host=False)
    add_provenance(fig, footer_lines(provs) + ["tinymembench's tables subtract an L1 hit; this one does not: "
                                                "the first points are the L1 hit itself"])
    return fig
