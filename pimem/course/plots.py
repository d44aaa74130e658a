"""Figures for the notebooks: bandwidth curves, cache regions, report bars.

Every function draws with matplotlib's object-oriented API and returns (or
draws into) a ``Figure``; nothing here calls ``plt.show``. Every figure
carries the provenance of its data as a footer: the ``provenance`` column
of a recorded frame (``pimem.bench.data.load_all``), or a string passed in (see
``run_provenance`` for a live sweep). A host run is labelled a host run; the
Pi's caches and DRAM peak, when drawn over host data, say that they are the
Pi's and not the host's.

Units: GB/s = 10^9 bytes/s throughout (the original lesson printed GiB/s
and called them GB/s). A copy counts its bytes once (tinymembench's
convention); ``bus_bytes`` is what crosses the memory bus.
"""
from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from ..exc import UsageError
from ..bench.sweep import format_size

GB = 1e9
FOOTER_GID = "pimem-footer"
STATISTICS = ("median", "min", "mean", "best")
_HOST_PREFIX = "host run"
#: The smallest text in any figure (points): footer, legends, labels of points and references.
MIN_FONT = 8.0
FOOTER_FONT = MIN_FONT


# --- one colour and one marker per benchmark, in every figure -------------------
#
# Okabe & Ito's colour-blind-safe palette. The colour says which memory the CPU
# works on (cached host memory, the GPU buffer's DIRECT / COHERENT /
# L1_NONALLOCATING alias, the standard path's fill-then-copy); the marker says
# what it does (circle: host fill, square: fill then copy, diamond: direct
# write, triangle up: read, triangle down: pointer chase, plus/arrows: copy).
# The lesson's three (baseline, standard, zerocopy) are blue, orange and green.

OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7",
}
_HOST_C, _STD_C, _DIRECT_C = OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["bluish green"]
_COHERENT_C, _L1NA_C = OKABE_ITO["reddish purple"], OKABE_ITO["vermillion"]

#: benchmark name -> (colour, marker): every benchmark pimem.bench.benchmarks and pimem.bench.data define.
BENCHMARK_STYLES: dict[str, tuple[str, str]] = {
    "baseline": (_HOST_C, "o"),
    "standard": (_STD_C, "s"),
    "zerocopy": (_DIRECT_C, "D"),
    "write-coherent": (_COHERENT_C, "D"),
    "write-l1nonalloc": (_L1NA_C, "D"),
    "read-host": (_HOST_C, "^"),
    "read-direct": (_DIRECT_C, "^"),
    "read-coherent": (_COHERENT_C, "^"),
    "read-l1nonalloc": (_L1NA_C, "^"),
    "host-copy": (_HOST_C, "P"),
    "copy-to-direct": (_DIRECT_C, ">"),
    "copy-from-direct": (_DIRECT_C, "<"),
    "latency-single": (OKABE_ITO["black"], "X"),
    "latency-dual": (OKABE_ITO["sky blue"], "X"),
    "latency-host": (_HOST_C, "v"),
    "latency-direct": (_DIRECT_C, "v"),
    "latency-coherent": (_COHERENT_C, "v"),
    "latency-l1nonalloc": (_L1NA_C, "v"),
}
_FALLBACK_COLOURS = ("#332288", "#117733", "#44AA99", "#88CCEE", "#DDCC77", "#CC6677", "#AA4499", "#882255")
_FALLBACK_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*", "h", "p")
#: Several series of one benchmark in a figure (recordings, kernels, standard's phases): the
#: k-th gets the k-th line style and marker fill; its colour and marker stay the benchmark's.
VARIANT_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
VARIANT_FILLSTYLES = ("full", "left", "bottom", "right", "top")


def benchmark_style(name: str) -> tuple[str, str]:
    """(colour, marker) of a benchmark, the same in every figure.

    Unknown names get a colour and marker from a hash of the name (never from their
    position in a figure), from Paul Tol's muted palette, so that they are stable too.
    """
    try:
        return BENCHMARK_STYLES[name]
    except KeyError:
        h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
        return (_FALLBACK_COLOURS[h % len(_FALLBACK_COLOURS)],
                _FALLBACK_MARKERS[(h // len(_FALLBACK_COLOURS)) % len(_FALLBACK_MARKERS)])


def _variants(keys: Iterable[tuple[Any, ...]], bench_index: int = 1) -> dict[tuple[Any, ...], int]:
    """{series key: its index among the series of the same benchmark}, in order of appearance."""
    seen: dict[str, int] = {}
    out = {}
    for key in keys:
        b = key[bench_index]
        out[key] = seen.get(b, 0)
        seen[b] = out[key] + 1
    return out


# --- the Pi 3B's figures, each with its primary source -----------------------

@dataclass(frozen=True)
class BoardFacts:
    name: str
    l1d_bytes: int
    l2_bytes: int
    peak_gb_per_s: float
    cache_source: str
    peak_source: str


BOARDS: dict[str, BoardFacts] = {
    "pi3b": BoardFacts(
        name="Raspberry Pi 3B",
        l1d_bytes=32 << 10, l2_bytes=512 << 10,
        peak_gb_per_s=450e6 * 2 * 4 / GB,  # 450 MHz, two transfers per clock, 32-bit bus
        cache_source="Linux arch/arm/boot/dts/broadcom/bcm2837.dtsi",
        peak_source="450 MHz x 2 x 4 B; sdram_freq from raspberrypi/documentation config_txt/overclocking.adoc",
    ),
}


def _board(board: str) -> BoardFacts:
    try:
        return BOARDS[board]
    except KeyError:
        raise UsageError(f"board {board!r} has no cache or peak figures here; use one of: "
                         + ", ".join(BOARDS)) from None


# --- provenance ----------------------------------------------------------------

def run_provenance(meta: Mapping[str, Any]) -> str:
    """The provenance line of a live sweep's metadata (``SweepResult.meta``), as a recording would have."""
    from ..bench.data import Recording

    return Recording("live", Path(""), pd.DataFrame(), dict(meta)).provenance()


def is_host(provenance: str) -> bool:
    """True for a host run's provenance line (pimem.bench.data writes them starting 'host run' or 'host:')."""
    p = provenance.strip().lower()
    return p.startswith(_HOST_PREFIX) or p.startswith("host:")


def _provenances(frame: pd.DataFrame, provenance: str | None) -> dict[str, str]:
    """{series prefix: provenance} for the frame; raises if the frame's origin is unknown."""
    if provenance is not None:
        if not provenance.strip():
            raise UsageError("provenance is empty; say where the data came from, e.g. run_provenance(sweep.meta)")
        return {"": provenance}
    if "provenance" not in frame.columns:
        raise UsageError("the frame has no 'provenance' column and no provenance= was given; pass "
                         "provenance=run_provenance(result.meta) for a live sweep, or use pimem.bench.data.load_all()")
    if "recording" in frame.columns:
        pairs = frame[["recording", "provenance"]].fillna({"recording": ""}).drop_duplicates()
        return {str(r): str(p) for r, p in zip(pairs["recording"], pairs["provenance"])}
    return {str(p): str(p) for p in frame["provenance"].unique()}


def data_label(frame: pd.DataFrame) -> str:
    """Where a frame's numbers come from, to print beside them: 'host run (data/NAME)' or the Pi sources.

    A recorded host run is named by its recording (its provenance line names the machine
    it was recorded on, and is in every figure's footer); a live one by its provenance.
    """
    provs = _provenances(frame, None)
    labels = {f"host run (data/{rec})" if is_host(p) and rec and rec != p else p for rec, p in provs.items()}
    return "; ".join(sorted(labels))


def _footer_lines(provs: Mapping[str, str]) -> list[str]:
    return [p if not r or r == p else f"{r}: {p}" for r, p in provs.items()]


def add_provenance(fig: Figure, lines: Iterable[str]) -> Any:
    """Add lines to the figure's footer (created at the bottom left on first use); returns the Text.

    The footer is FOOTER_FONT (8) points, wrapped here to the figure's width, and the axes
    are raised above it, so that it never runs into the x axis' labels.
    """
    footer = next((t for t in fig.texts if t.get_gid() == FOOTER_GID), None)
    old = getattr(footer, "_pimem_lines", []) if footer is not None else []
    new = old + [ln for ln in lines if ln not in old]
    # One line per source below the header, so that overlays can append theirs.
    width_chars = max(40, int(fig.get_figwidth() * 72 * 0.97 / (0.58 * FOOTER_FONT)))
    wrapped = [textwrap.fill(ln, width_chars, subsequent_indent="    ", break_on_hyphens=False) for ln in new]
    body = "\n".join(["Data:"] + wrapped)
    if footer is None:
        footer = fig.text(0.01, 0.005, body, ha="left", va="bottom", fontsize=FOOTER_FONT, color="0.25",
                          gid=FOOTER_GID)
    else:
        footer.set_text(body)
    footer._pimem_lines = new  # type: ignore[attr-defined]
    # Make room for the footer under the axes: its rows, then the x axis' tick labels and label.
    rows = body.count("\n") + 1
    inch = rows * FOOTER_FONT * 1.3 / 72 + 0.75
    fig.subplots_adjust(bottom=min(0.6, inch / fig.get_figheight()))
    return footer


def footer_text(fig: Figure) -> str:
    """The footer's text ('' when there is none)."""
    footer = next((t for t in fig.texts if t.get_gid() == FOOTER_GID), None)
    if footer is None:
        return ""
    lines = getattr(footer, "_pimem_lines", None)
    return "\n".join(["Data:"] + list(lines)) if lines is not None else footer.get_text()


def host_title(title: str, host: bool, pi: bool = False) -> str:
    """`title`, saying "host run" when host data is drawn (and that Pi figures are beside it)."""
    if not host or "host run" in title.lower():
        return title
    return title + (" - host run and Raspberry Pi figures" if pi else " - host run")


def _info(ax: Axes) -> dict[str, Any]:
    # What this module drew on the axes, for the overlays that need to know (host data or not).
    if not hasattr(ax, "_pimem"):
        ax._pimem = {"host": False}  # type: ignore[attr-defined]
    return ax._pimem  # type: ignore[attr-defined]


def _display_ready() -> None:
    """Let IPython show a bare ``Figure`` as a PNG even when pyplot was never imported."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ip = get_ipython()
    if ip is None:
        return
    fmt = ip.display_formatter.formatters["image/png"]

    def png(fig: Figure) -> bytes:
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        return buf.getvalue()

    try:
        fmt.lookup_by_type(Figure)
    except KeyError:
        fmt.for_type(Figure, png)


def new_axes(ax: Axes | None = None, size: tuple[float, float] = (8.0, 4.8)) -> tuple[Figure, Axes]:
    """The given axes and their figure, or a new figure (not registered with pyplot) with one axes."""
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = _new_figure(size)
    return fig, fig.add_subplot()


def _new_figure(size: tuple[float, float]) -> Figure:
    """A Figure not registered with pyplot, on an Agg canvas (so that ``fig.canvas.draw()`` lays it out)."""
    _display_ready()
    fig = Figure(figsize=size, layout=None)
    FigureCanvasAgg(fig)
    return fig


# --- sizes on a log2 axis ------------------------------------------------------

def size_label(n: int | float) -> str:
    """'4 KiB', '1 MiB' for powers of two; other sizes as format_size writes them."""
    return format_size(int(n))


def size_axis(ax: Axes, sizes: Iterable[int]) -> None:
    """A log2 x axis whose ticks are powers of two labelled in KiB/MiB."""
    sizes = [int(s) for s in sizes]
    ax.set_xscale("log", base=2)
    if not sizes:
        return
    lo, hi = int(np.floor(np.log2(min(sizes)))), int(np.ceil(np.log2(max(sizes))))
    step = max(1, int(np.ceil((hi - lo + 1) / 9)))  # at most ~9 labels
    ticks = [2.0 ** p for p in range(lo, hi + 1, step)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: size_label(x)))
    ax.set_xlim(2.0 ** lo / 1.3, 2.0 ** hi * 1.3)
    ax.set_xlabel("buffer size (log2 scale; KiB = 2^10 B, MiB = 2^20 B)")


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

def bandwidth_curve(frame: pd.DataFrame, benchmarks: Sequence[str] | None = None,
                    phases: Sequence[str] | None = None, statistic: str = "median", ax: Axes | None = None,
                    title: str | None = None, *, provenance: str | None = None, logy: bool = False,
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
    _provenances(frame, provenance)  # fail early when the data's origin is unknown
    f = frame
    if benchmarks is not None:
        f = f[f["benchmark"].isin(list(benchmarks))]
    if phases is not None:
        f = f[f["phase"].isin(list(phases))]
    if f.empty:
        raise UsageError(f"nothing to draw: no rows for benchmarks={benchmarks!r}, phases={phases!r}; "
                         f"the frame holds: {', '.join(sorted(frame['benchmark'].unique()))}")
    provs = _provenances(f, provenance)
    pts = summarize_points(f, statistic)
    fig, ax = new_axes(ax, (10.0, 5.8))
    info = _info(ax)
    host = any(is_host(p) for p in provs.values())
    info["host"] = info["host"] or host
    info.setdefault("host_recordings", set()).update(r for r, p in provs.items() if is_host(p) and r)
    multi = {"recording": pts["recording"].nunique() > 1, "kernel": pts["kernel"].nunique() > 1}
    any_ob = any_pub = False
    groups = list(pts.groupby(["recording", "benchmark", "phase", "kernel"], sort=False))
    variant = _variants([key for key, _ in groups])
    for key, s in groups:
        label = _series_label(key, multi)
        colour, marker = benchmark_style(key[1])
        k = variant[key]
        x, y = s["size_bytes"].to_numpy(float), s["value"].to_numpy(float)
        # A curve differs from its benchmark's other curves in line style; a lone point (no line) in fill.
        ls = VARIANT_LINESTYLES[k % len(VARIANT_LINESTYLES)]
        fill = VARIANT_FILLSTYLES[k % len(VARIANT_FILLSTYLES)] if len(x) == 1 else "full"
        lo, hi = s["lo"].to_numpy(float), s["hi"].to_numpy(float)
        ob, pub = s["overhead_bound"].to_numpy(bool), s["published"].to_numpy(bool)
        # Published figures (one statistic, no samples): the benchmark's marker, larger, edged in black.
        edge = {"mec": "k", "mew": 1.0, "ms": 7} if pub.all() else {"mec": colour, "ms": 5}
        any_pub = any_pub or bool(pub.all())
        line, = ax.plot(x, y, linestyle=ls if len(x) > 1 else "none", color=colour, lw=1.4, label=label,
                        gid=f"{label}:line",
                        marker=marker, fillstyle=fill, markevery=[], **edge)
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
            any_ob = True
            ax.plot(x[ob], y[ob], marker, mfc="none", mec=colour, ms=6, ls="", gid=f"{label}:overhead")
        if not len(x) > 1:
            line.set_markevery(None)
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
    pi = any(not is_host(p) for p in provs.values())
    ax.set_title(host_title(title or "Bandwidth against buffer size", host, pi))
    add_provenance(fig, _footer_lines(provs))
    return fig


def cache_regions(ax: Axes, board: str = "pi3b", *, host: bool | None = None) -> None:
    """Shade the L1D, L2 and DRAM size regions of ``board``'s caches on a size axis.

    ``host`` (default: whether host data was drawn on ``ax`` by this module)
    adds a note that the shading is the Pi's caches, not the host's.
    """
    b = _board(board)
    host = _info(ax)["host"] if host is None else host
    lo, hi = ax.get_xlim()
    if host:
        _shade_host_caches(ax, lo, hi)
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


def _shade_host_caches(ax: Axes, lo: float, hi: float) -> None:
    """Shade the caches of the host that made the data, from its recording's sidecar (sysfs, cpu0)."""
    from ..bench.data import DataError, data_dir, load_recording

    names = sorted(_info(ax).get("host_recordings", ()))
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
    host = _info(ax)["host"] if host is None else host
    ref = " (reference, not this host's)" if host else ""
    line = ax.axhline(b.peak_gb_per_s, color="k", ls="--", lw=1, gid="peak-line",
                      label=f"{b.name} DRAM peak {b.peak_gb_per_s:.1f} GB/s{ref}")
    # Near the bottom of the axes the cache labels sit under the line: the label goes above them.
    frac = (ax.transScale + ax.transLimits).transform((1.0, b.peak_gb_per_s))[1]
    lift = 13 if 0 <= frac < 0.1 else 1
    ax.annotate(f" {b.name} peak {b.peak_gb_per_s:.1f} GB/s{ref}", (1.0, b.peak_gb_per_s),
                xycoords=ax.get_yaxis_transform(), xytext=(-2, lift), textcoords="offset points",
                ha="right", va="bottom", fontsize=MIN_FONT, gid="peak-label")
    note = f"dashed: {b.name} theoretical DRAM peak, {b.peak_source}"
    if host:
        note += f"; the {b.name}'s peak, not the host's"
    add_provenance(ax.figure, [note])  # type: ignore[arg-type]
    return line


# --- bars ------------------------------------------------------------------------

@dataclass
class _Bar:
    label: str
    seconds: float
    gb_per_s: float | None
    status: str   # PASS, FAIL or "not checked"
    benchmark: str = ""


def _bars_from_frame(frame: pd.DataFrame, statistic: str, size: int | None) -> tuple[list[_Bar], int]:
    sizes = sorted(frame["size_bytes"].unique())
    if size is None:
        if len(sizes) != 1:
            raise UsageError(f"the frame holds {len(sizes)} sizes ({', '.join(size_label(s) for s in sizes)}); "
                             "pass size= to choose one")
        size = int(sizes[0])
    f = frame[frame["size_bytes"] == size]
    if f.empty:
        raise UsageError(f"no rows at size {size_label(size)}; the frame holds "
                         f"{', '.join(size_label(s) for s in sizes)}")
    func = {"median": "median", "mean": "mean", "min": "max", "best": "min"}[statistic]  # of seconds
    bars = []
    for (bench, phase, kernel), g in f.groupby(["benchmark", "phase", "kernel"], sort=False):
        failed = (g["verified"] == "fail").any()
        secs = float(getattr(g["seconds"], func)())
        status = "FAIL" if failed else "PASS" if (g["verified"] == "pass").all() else "not checked"
        label = f"{bench}: {phase}" + (f" [{kernel}]" if f["kernel"].nunique() > 1 else "")
        bars.append(_Bar(label, secs, None if failed else int(g["bytes"].iloc[0]) / secs / GB, status, str(bench)))
    return bars, size


def _bars_from_results(results: Sequence[Any], statistic: str) -> tuple[list[_Bar], int]:
    bars = [_Bar(f"{r.benchmark}: {r.phase}", r.seconds(statistic), r.gb_per_s(statistic),
                 "PASS" if r.verified else "FAIL", r.benchmark) for r in results]
    return bars, results[0].size


def report_provenance(report: Any) -> str:
    """A provenance line for a ``pimem.bench.report.BenchReport`` measured now."""
    from ..bench.sweep import cpu_model

    if report.info.backend.startswith("emulator"):
        return f"host run: {cpu_model()} ({report.info.machine}), pimem emulator backend, measured now"
    board = report.info.revision.describe() if report.info.revision else "Raspberry Pi"
    return f"{board}, measured now: pimem pi backend, {report.kernel} kernel"


def report_bars(data: Any, *, value: str = "gb_per_s", statistic: str = "median", size: int | None = None,
                ax: Axes | None = None, title: str | None = None, provenance: str | None = None) -> Figure:
    """Horizontal bars, one per benchmark phase, of bandwidth (GB/s) or time (ms), marked PASS/FAIL.

    ``data``: a ``BenchReport``, a list of ``PhaseResult``, or a frame in the
    recording schema (one size, or pass ``size=``). A FAIL has no bandwidth:
    its bar is empty and says FAIL.
    """
    if value not in ("gb_per_s", "ms"):
        raise UsageError(f"value {value!r} is not 'gb_per_s' or 'ms'")
    if statistic not in STATISTICS:
        raise UsageError(f"statistic {statistic!r} is not one of: {', '.join(STATISTICS)}")
    if isinstance(data, pd.DataFrame):
        provs = list(_provenances(data, provenance).values())
        bars, size = _bars_from_frame(data, statistic, size)
    elif hasattr(data, "results") and hasattr(data, "info"):
        provs = [provenance or report_provenance(data)]
        bars, size = _bars_from_results(data.results, "min" if statistic == "best" else statistic)
    else:
        results = list(data)
        if not results:
            raise UsageError("report_bars got no results to draw")
        if provenance is None:
            raise UsageError("a list of PhaseResult carries no provenance; pass provenance='...' "
                             "(e.g. run_provenance(sweep_result.meta))")
        provs = [provenance]
        bars, size = _bars_from_results(results, "min" if statistic == "best" else statistic)
    fig, ax = new_axes(ax, (8.0, 0.45 * len(bars) + 1.8))
    ys = np.arange(len(bars))[::-1]
    vals = [(b.gb_per_s or 0.0) if value == "gb_per_s" else b.seconds * 1e3 for b in bars]
    # Each bar in its benchmark's colour (as in every curve); the status is written beside it, and a
    # result nobody checked is hatched. A FAIL has no bar.
    colours = [benchmark_style(b.benchmark or b.label.split(":")[0])[0] for b in bars]
    rects = ax.barh(ys, vals, color=colours, edgecolor="0.2", lw=0.6, gid="bars")
    for rect, b in zip(rects, bars):
        if b.status == "not checked":
            rect.set_hatch("//")
            rect.set_alpha(0.6)
    top = max(vals) if vals and max(vals) > 0 else 1.0
    for rect, b, v in zip(rects, bars, vals):
        shown = "-" if value == "gb_per_s" and b.gb_per_s is None else (f"{v:.3g} GB/s" if value == "gb_per_s"
                                                                        else f"{v:.3g} ms")
        ax.text(v + top * 0.01, rect.get_y() + rect.get_height() / 2, f"{shown}  {b.status}",
                va="center", fontsize=8, gid=f"bar-label:{b.label}")
    ax.set_yticks(ys, [b.label for b in bars])
    ax.set_xlim(0, top * 1.35)
    ax.set_xlabel("bandwidth, GB/s (10^9 bytes/s; a copy counts its bytes once)" if value == "gb_per_s"
                  else "time of one operation, ms")
    host = any(is_host(p) for p in provs)
    _info(ax)["host"] = host
    ax.set_title(host_title(title or f"Benchmarks at {size_label(size)} ({statistic})", host,
                            any(not is_host(p) for p in provs)))
    add_provenance(fig, provs)
    return fig


def published_comparison(run: pd.DataFrame | None = None, published: pd.DataFrame | None = None, *,
                         benchmarks: Sequence[str] | None = None, statistic: str = "median",
                         ax: Axes | None = None, provenance: str | None = None, title: str | None = None) -> Figure:
    """Published Raspberry Pi figures (data/) beside a run: a group of rows per benchmark phase.

    ``published`` defaults to every published recording in data/ of the course's board, the
    Pi 3 (the other models' runs are for the generations figure), and their bandwidth rows.
    Under each benchmark phase's header, one row per source (the recording, or "this run"),
    so that no two points share a row; each point is in its benchmark's colour and marker
    (published ones edged in black) and labelled with its buffer size, since the sources used
    different sizes. The run is drawn at the size of each published point where it has one,
    else at its nearest size, with a bar from its slowest to its fastest sample.
    """
    if published is None:
        from ..bench.data import load_all

        allrec = load_all()
        published = allrec[allrec["provenance"].str.contains("published:", regex=False)
                           & allrec["provenance"].str.startswith("Raspberry Pi 3")
                           & (allrec["phase"] != "latency")]
    if benchmarks is not None:
        published = published[published["benchmark"].isin(list(benchmarks))]
    if published.empty:
        raise UsageError("no published figures to draw; check data/ (python -m pimem check-data)")
    pub = summarize_points(published, "median")
    provs = _provenances(published, None)
    recs = list(dict.fromkeys(pub["recording"]))
    order = list(BENCHMARK_STYLES)
    phase_order = ("fill", "write", "read", "copy", "total", "latency")

    def rank(bp: tuple[str, str]) -> tuple[int, str, int, str]:
        b, p = bp
        return (order.index(b) if b in order else len(order), b,
                phase_order.index(p) if p in phase_order else len(phase_order), p)

    groups = sorted(dict.fromkeys(zip(pub["benchmark"], pub["phase"])), key=rank)
    # What each row of the figure holds: (benchmark, phase, source, value, lo, hi, size, published, overhead).
    entries: dict[tuple[str, str], list[tuple[str, float, float, float, int, bool, bool]]] = {g: [] for g in groups}
    for rec in recs:
        mine = pub[pub["recording"] == rec]
        kinds = mine.groupby(["benchmark", "phase"])["kernel"].nunique()
        for _, r in mine.iterrows():
            # A recording with two kernels for one benchmark (memset and a C fill) names the kernel.
            source = f"{rec} [{r['kernel']}]" if kinds[(r["benchmark"], r["phase"])] > 1 else rec
            entries[(r["benchmark"], r["phase"])].append(
                (source, float(r["value"]), float(r["value"]), float(r["value"]), int(r["size_bytes"]), True, False))
    notes = _footer_lines({r: provs[r] for r in recs if r in provs})
    host = False
    run_label = "this run"
    if run is not None:
        run_provs = _provenances(run, provenance)
        host = any(is_host(p) for p in run_provs.values())
        rp = summarize_points(run, statistic)
        for b, p in groups:
            mine = rp[(rp["benchmark"] == b) & (rp["phase"] == p)]
            if mine.empty:
                continue
            want = int(pub[(pub["benchmark"] == b) & (pub["phase"] == p)]["size_bytes"].max())
            pick = mine.iloc[int(np.argmin(np.abs(np.log2(mine["size_bytes"].to_numpy(float)) - np.log2(want))))]
            entries[(b, p)].append(("this run", float(pick["value"]), float(pick["lo"]), float(pick["hi"]),
                                    int(pick["size_bytes"]), False, bool(pick["overhead_bound"])))
        run_label = "this run" + (" (host run, not a Pi)" if host else "")
        notes += [f"this run: {p}" for p in run_provs.values()]
    # One row per point, under a header row per benchmark phase: no two points (nor their size
    # labels) share a row, so the labels cannot overlap.
    n_rows = sum(1 + len(e) for e in entries.values()) + 0.5 * (len(groups) - 1)
    width = 10.0
    chars = max(40, int(width * 72 * 0.97 / (0.58 * FOOTER_FONT)))
    footer_rows = 1 + sum(len(textwrap.wrap(n, chars, break_on_hyphens=False)) or 1 for n in notes)
    top_in, bottom_in = 0.6, footer_rows * FOOTER_FONT * 1.3 / 72 + 0.75
    row_in = max(0.19, 1.6 / n_rows)
    fig, ax = new_axes(ax, (width, n_rows * row_in + top_in + bottom_in))
    y = 0.0
    ticks: list[tuple[float, str, bool]] = []
    labels_drawn = []
    xs_all: list[float] = []
    run_in_legend = False
    for gi, (b, p) in enumerate(groups):
        if gi:
            ax.axhline(-(y - 0.75), color="0.75", lw=0.8, gid="separator")
        ticks.append((-y, f"{b}: {p}", True))
        y += 1
        colour, marker = benchmark_style(b)
        for source, v, lo, hi, size, is_pub, ob in entries[(b, p)]:
            yy = -y
            ticks.append((yy, source, False))
            if is_pub:
                ax.plot([v], [yy], marker, color=colour, mec="k", mew=1.0, ms=7, ls="",
                        gid=f"published:{source.split(' [')[0]}")
            else:
                lab = "_nolegend_" if run_in_legend else run_label
                run_in_legend = True
                if hi > lo:
                    ax.hlines([yy], [lo], [hi], color=colour, lw=1.1, gid="run:whiskers")
                    ax.plot([lo, hi], [yy, yy], ls="", marker="|", ms=6, mew=1.1, color=colour, gid="run:whisker-caps")
                ax.plot([v], [yy], marker, color=colour, ms=6, ls="", label=lab, gid="run",
                        **({"mfc": "none", "mec": colour, "mew": 1.3} if ob else {"mec": colour}))
            xs_all += [v, lo, hi]
            # Beside the point, or beyond its bar's end (a run's whisker).
            labels_drawn.append(ax.annotate(size_label(size), (max(v, hi), yy), xytext=(6, 0),
                                            textcoords="offset points", fontsize=MIN_FONT, va="center",
                                            ha="left", gid=f"size-label:{source}:{b}:{p}"))
            labels_drawn[-1]._pimem_left = (min(v, lo), yy)  # type: ignore[attr-defined]
            y += 1
        y += 0.5
    ax.set_yticks([t[0] for t in ticks], [t[1] for t in ticks])
    for lab, (_, _, bold) in zip(ax.get_yticklabels(), ticks):
        lab.set_fontweight("bold" if bold else "normal")
        lab.set_fontsize(9.5 if bold else 9)
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(-(y - 0.5) - 0.1, 0.6)
    ax.set_xscale("log")
    ax.set_xlim(min(xs_all) / 1.6, max(xs_all) * 1.6)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.set_xlabel("bandwidth, GB/s (10^9 bytes/s; log scale; a copy counts its bytes once)")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    handles = [Line2D([], [], marker="o", color="0.6", mec="k", mew=1.0, ms=7, ls="", gid="published-note")]
    texts = ["black edge: a published figure\n(the row names its source)"]
    if run is not None:
        spread = any(e[2] < e[3] for es in entries.values() for e in es if not e[5])
        handles.append(Line2D([], [], marker="o", color="0.4", ms=6, ls="", gid="run-note"))
        texts.append(run_label + ("\n(bar: slowest to fastest sample)" if spread
                                  else "\n(no spread: one sample per point)"))
    handles.append(Line2D([], [], ls="", gid="size-note"))
    texts.append("beside each point:\nits buffer size")
    ax.legend(handles, texts, fontsize=MIN_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    _info(ax)["host"] = host
    ax.set_title(host_title(title or "Published Raspberry Pi figures" + (" beside this run" if run is not None else ""),
                            host, True))
    add_provenance(fig, notes)
    fig.subplots_adjust(top=1 - top_in / fig.get_figheight(), right=0.76, left=0.2)
    _keep_labels_inside(fig, ax, labels_drawn)
    return fig


def _renderer(fig: Figure) -> Any:
    get = getattr(fig.canvas, "get_renderer", None)
    return get() if get is not None else fig._get_renderer()  # type: ignore[attr-defined]


_LABEL_OFFSETS = ((5, 4), (5, -12), (-5, 4), (-5, -12), (6, -4), (-6, -4), (0, 8), (0, -16))


def place_point_labels(fig: Figure, labels: Sequence[Any]) -> None:
    """Move each point label (an Annotation in offset points) to the first of a few spots around
    its point where it lies inside its axes and overlaps no label placed before it.

    Where no spot is free, the label keeps its first spot: a crowded figure stays readable
    rather than losing a label (the tests check that the figures here have no such crowding).
    """
    from matplotlib.transforms import Bbox

    renderer = _renderer(fig)
    r = 4 * fig.dpi / 72   # a marker's half width, in pixels
    placed: list[Any] = []
    for t in labels:
        t.axes.get_xlim(), t.axes.get_ylim()   # autoscale now: the boxes need the final limits
    for t in labels:      # the points themselves: no label on a marker
        x, y = t.axes.transData.transform(t.xy)
        placed.append(Bbox([[x - r, y - r], [x + r, y + r]]))
    for t in labels:
        frame = t.axes.get_window_extent(renderer)
        first = None
        for dx, dy in _LABEL_OFFSETS:
            t.set_position((dx, dy))
            t.set_horizontalalignment("left" if dx >= 0 else "right" if dx < 0 else "center")
            t.set_verticalalignment("bottom")
            box = t.get_window_extent(renderer)
            first = first or (dx, dy)
            inside = (box.x0 >= frame.x0 + 1 and box.x1 <= frame.x1 - 1
                      and box.y0 >= frame.y0 + 1 and box.y1 <= frame.y1 - 1)
            if inside and not any(box.overlaps(p) for p in placed):
                break
        else:
            t.set_position(first)
            t.set_horizontalalignment("left" if first[0] >= 0 else "right")
            box = t.get_window_extent(renderer)
        placed.append(box)


def _keep_labels_inside(fig: Figure, ax: Axes, labels: Sequence[Any]) -> None:
    """Put a point's label on the left of its point where it would run out of the axes on the right."""
    renderer = _renderer(fig)
    frame = ax.get_window_extent(renderer)
    for t in labels:
        if t.get_window_extent(renderer).x1 > frame.x1 - 2:
            t.xy = getattr(t, "_pimem_left", t.xy)
            t.set_position((-6, 0))
            t.set_horizontalalignment("right")
    # Still outside on the left (a label wider than the room on either side): widen the x range.
    for _ in range(5):
        worst = min((t.get_window_extent(renderer).x0 for t in labels), default=frame.x0)
        if worst >= frame.x0 + 2:
            break
        lo, hi = ax.get_xlim()
        ax.set_xlim(lo / 1.5, hi)


# --- the memory map: one RAM, four bus aliases, two processors -----------------------

def alias_map(arm_bytes: int = 948 << 20, ram_bytes: int = 1 << 30, *, board: str = "Raspberry Pi 3B") -> Figure:
    """One physical RAM seen through the four bus aliases, with the ARM/VideoCore split.

    Each VideoCore row is a window of bus addresses onto the same RAM; its label says how
    the VideoCore's L2 treats it (the manual's words). The ARM row shows the ARM's own
    path: its RAM through its own L1 and L2 (the BCM2836/7 and later do not use the
    VideoCore's L2), and the GPU memory pimem maps through /dev/mem as non-cached memory
    whichever alias the flag picked.
    """
    from matplotlib.patches import Rectangle

    from ..firmware.memflags import Alias

    if not 0 < arm_bytes < ram_bytes:
        raise UsageError(f"arm_bytes must lie inside the RAM (0..{ram_bytes}), got {arm_bytes}")
    mib = 1 << 20
    fig, ax = new_axes(size=(10.0, 5.2))
    split = arm_bytes / mib
    top = ram_bytes / mib
    rows = [(f"{a} alias ({a.name}), bus 0x{a.base:08X}: VideoCore {a.manual}",
             "#bbdefb" if a.value == 0xC else "#e3f2fd", a.name)
            for a in sorted(Alias, key=lambda a: a.value)]
    for y, (label, colour, gid) in enumerate(rows):
        ax.add_patch(Rectangle((0, y + 0.15), top, 0.7, facecolor=colour, edgecolor="0.4", lw=0.8,
                               gid=f"alias:{gid}"))
        ax.text(top / 2, y + 0.5, label, ha="center", va="center", fontsize=8.5)
    y_arm = len(rows) + 0.4
    ax.add_patch(Rectangle((0, y_arm + 0.15), split, 0.7, facecolor="#c8e6c9", edgecolor="0.4", lw=0.8,
                           gid="arm:cached"))
    ax.text(split / 2, y_arm + 0.5, "ARM, Linux's RAM: through the ARM's own L1 and L2 (cached)",
            ha="center", va="center", fontsize=8.5)
    ax.add_patch(Rectangle((split, y_arm + 0.15), top - split, 0.7, facecolor="#ffcdd2", edgecolor="0.4",
                           lw=0.8, hatch="//", gid="arm:noncached"))
    ax.annotate("ARM, GPU memory via /dev/mem:\nnon-cached, whatever the flag", xy=(split + (top - split) / 2, y_arm + 0.85),
                xytext=(split - 260, y_arm + 1.55), fontsize=8.5, ha="center",
                arrowprops={"arrowstyle": "->", "color": "0.3"})
    y_ram = -1.0
    ax.add_patch(Rectangle((0, y_ram + 0.15), split, 0.7, facecolor="0.92", edgecolor="0.3", gid="ram:arm"))
    ax.add_patch(Rectangle((split, y_ram + 0.15), top - split, 0.7, facecolor="0.75", edgecolor="0.3", gid="ram:gpu"))
    ax.text(split / 2, y_ram + 0.5, f"physical RAM: Linux's {split:g} MiB", ha="center", va="center", fontsize=8.5)
    ax.text(split + (top - split) / 2, y_ram + 0.5, f"gpu_mem\n{top - split:g} MiB", ha="center", va="center",
            fontsize=MIN_FONT)
    ax.axvline(split, color="k", ls=":", lw=1, gid="split")
    ax.set_xlim(0, top)
    ax.set_ylim(y_ram, y_arm + 2.2)
    ax.set_yticks([])
    ax.set_xlabel("physical address (MiB): every row is the same RAM; bus address = alias base + physical address")
    ax.set_title(f"One memory, four VideoCore windows, two ARM paths ({board})")
    add_provenance(fig, [
        "VideoCore rows: BCM2835 ARM Peripherals 1.2.4 (the firmware wiki swaps the 0x4 and 0x8 descriptions); "
        "they govern the VideoCore's L2 only",
        "ARM row: read from the kernel source (arch/arm/mm/mmu.c, arch/arm64/mm/mmu.c); "
        "BCM2836/7 and later: the ARM has its own L2 (config_txt/memory.adoc); an inference until a live run",
    ])
    return fig


# --- published latency tables and the memory wall across Pi generations ----------------

def latency_curve(frame: pd.DataFrame, board: str = "pi3b", *, title: str | None = None) -> Figure:
    """Random-read latency (ns beyond an L1 hit) against block size, one line per recording and kind.

    ``frame`` holds latency rows of one board's recordings (load_all() filtered); its caches are
    shaded: the data and the shading come from the same machine, or this refuses.
    """
    lat = frame[frame["phase"] == "latency"]
    if lat.empty:
        raise UsageError("no latency rows to draw: give rows whose phase is 'latency' (e.g. from tinymembench-pi3b)")
    provs = _provenances(lat, None)
    if any(is_host(p) for p in provs.values()):
        raise UsageError("latency_curve draws published board data on that board's cache sizes; "
                         "a host run has no place on them")
    b = _board(board)
    fig, ax = new_axes()
    groups = list(lat.groupby(["recording", "benchmark"], sort=True))
    variant = _variants([key for key, _ in groups])
    for (rec, bench), rows in groups:
        rows = rows.sort_values("size_bytes")
        kind = "two reads at a time" if bench == "latency-dual" else "one read at a time"
        colour, marker = benchmark_style(bench)
        k = variant[(rec, bench)]
        ls = ("--" if bench == "latency-dual" else "-") if k == 0 else VARIANT_LINESTYLES[k % len(VARIANT_LINESTYLES)]
        # The legend names the recording (its source is in the footer), so that it stays off the curves.
        ax.plot(rows["size_bytes"], rows["seconds"] * 1e9, marker=marker, ms=5, color=colour, ls=ls,
                label=f"{rec}: {kind}", gid=f"latency:{rec}:{bench}")
    ax.set_xscale("log", base=2)
    size_axis(ax, sorted(lat["size_bytes"].unique()))
    ax.set_ylabel("extra time per random read (ns, beyond an L1 hit)")
    ax.set_xlabel("block size read at random")
    ax.set_title(title or f"Random-read latency against block size, {b.name} (published)")
    ax.legend(fontsize=MIN_FONT, loc="center right")
    cache_regions(ax, board, host=False)
    add_provenance(fig, _footer_lines(provs) + ["missing points: block sizes tinymembench timed at 0.0 ns "
                                                "(they fit in L1)"])
    return fig


def measured_latency_curve(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """pimem's own pointer-chase latency (ns per access, median with min-max) against block size.

    One line per buffer kind (latency-host, -direct, ...); the caches shaded are those of the
    machine that ran it (a host run's from its sidecar; the Pi 3B's only under Pi data).
    """
    lat = frame[(frame["phase"] == "latency") & frame["benchmark"].str.match(r"latency-(host|direct|coherent|l1)")]
    if lat.empty:
        raise UsageError("no pimem latency rows to draw: give rows of latency-host, latency-direct, ... "
                         "(pimem sweep --benchmarks latency-host, or the host-2026-12-02-c-loop recording)")
    provs = _provenances(lat, None)
    host = any(is_host(p) for p in provs.values())
    fig, ax = new_axes()
    info = _info(ax)
    info["host"] = host
    info.setdefault("host_recordings", set()).update(r for r, p in provs.items() if is_host(p) and r)
    groups = list(lat.groupby(["recording", "benchmark"], sort=True))
    variant = _variants([key for key, _ in groups])
    multi = lat["recording"].nunique() > 1
    spread_any = False
    for (rec, bench), rows in groups:
        g = rows.groupby("size_bytes")["seconds"]
        x = np.array(sorted(rows["size_bytes"].unique()), float)
        med, lo, hi = (g.median() * 1e9).to_numpy(), (g.min() * 1e9).to_numpy(), (g.max() * 1e9).to_numpy()
        colour, marker = benchmark_style(bench)
        k = variant[(rec, bench)]
        ax.plot(x, med, marker=marker, ms=4, color=colour, ls=VARIANT_LINESTYLES[k % len(VARIANT_LINESTYLES)],
                fillstyle=VARIANT_FILLSTYLES[k % 5], label=f"{bench} ({rec})" if multi else bench,
                gid=f"latency:{rec}:{bench}")
        ax.fill_between(x, lo, hi, color=colour, alpha=0.25, lw=0, gid=f"latency:{rec}:{bench}:band")
        spread = hi > lo
        spread_any = spread_any or bool(spread.any())
        if spread.any():
            ax.vlines(x[spread], lo[spread], hi[spread], color=colour, lw=1.0, gid=f"latency:{rec}:{bench}:whiskers")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    size_axis(ax, sorted(lat["size_bytes"].unique()))
    ax.set_ylabel("ns per random load\n(median; bars and band: min-max)" if spread_any
                  else "ns per random load\n(no spread: one sample per point)")
    ax.set_xlabel("block size chased through")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(host_title(title or "Memory latency against block size (pimem's pointer chase)", host))
    ax.legend(fontsize=MIN_FONT, loc="upper left")
    cache_regions(ax, "pi3b", host=host)
    add_provenance(fig, _footer_lines(provs) + ["tinymembench's tables subtract an L1 hit; this one does not: "
                                                "the first points are the L1 hit itself"])
    return fig


def _mountain_grid(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grid = frame.pivot(index="stride_words", columns="size_bytes", values="gb_per_s").sort_index()
    return grid.columns.to_numpy(float), grid.index.to_numpy(float), grid.to_numpy(float)


def _mountain_title(meta: Mapping[str, Any], view: str) -> str:
    host = not meta.get("machine", {}).get("is_pi", False)
    return host_title(f"Memory mountain ({meta.get('buffer_kind', 'host')} memory), {view}", host)


def mountain_heatmap(frame: pd.DataFrame, meta: Mapping[str, Any]) -> Figure:
    """The mountain from above: read GB/s for each working-set size (x) and stride (y)."""
    sizes, strides, gbps = _mountain_grid(frame)
    fig, ax = new_axes(size=(8.0, 4.8))
    mesh = ax.pcolormesh(np.arange(len(sizes) + 1), np.arange(len(strides) + 1), gbps, cmap="viridis")
    ax.set_xticks(np.arange(len(sizes)) + 0.5, [size_label(v) for v in sizes], rotation=45, ha="right",
                  fontsize=MIN_FONT)
    ax.set_yticks(np.arange(len(strides)) + 0.5, [f"{int(k)}" for k in strides], fontsize=MIN_FONT)
    ax.set_xlabel("working set (bytes read over and over)")
    ax.set_ylabel("stride (8-byte words)")
    fig.colorbar(mesh, ax=ax, label="read bandwidth, GB/s (10^9 B/s)")
    ax.set_title(_mountain_title(meta, "heat map"))
    add_provenance(fig, [f"{meta.get('machine', {}).get('description', 'machine not recorded')}",
                         "bytes counted: the 8-byte words read (CS:APP's convention); median of the timed regions"])
    return fig


def mountain_surface(frame: pd.DataFrame, meta: Mapping[str, Any]) -> Figure:
    """The mountain as a 3-D surface (CS:APP figure 6.41's view): size and stride against read GB/s."""
    sizes, strides, gbps = _mountain_grid(frame)
    fig = _new_figure((8.0, 5.6))
    ax = fig.add_subplot(projection="3d")
    x, y = np.meshgrid(np.log2(sizes), strides)
    ax.plot_surface(x, y, gbps, cmap="viridis", edgecolor="0.3", linewidth=0.2)
    ax.set_xticks(np.log2(sizes)[::2], [size_label(v) for v in sizes[::2]], fontsize=MIN_FONT)
    ax.set_xlabel("working set", fontsize=8)
    ax.set_ylabel("stride (words)", fontsize=8)
    ax.set_zlabel("read GB/s", fontsize=8)
    ax.view_init(elev=25, azim=-130)
    ax.set_title(_mountain_title(meta, "surface"), fontsize=10)
    add_provenance(fig, [f"{meta.get('machine', {}).get('description', 'machine not recorded')}"])
    return fig


def memory_wall_generations(recordings: Sequence[Any]) -> Figure:
    """Across Raspberry Pi models: CPU clock x cores against DRAM bandwidth (memset) and latency (64 MiB).

    ``recordings`` are pimem.bench.data Recordings of published board runs (tinymembench-*), each
    with a memset row and a latency table; every point is labelled with its board and the
    footer names its source.
    """
    points = []
    for r in recordings:
        f, m = r.frame, r.meta["machine"]
        memset = f[(f.benchmark == "baseline") & (f.kernel == "libc")]
        far = f[(f.benchmark == "latency-single") & (f.size_bytes == f[f.phase == "latency"].size_bytes.max())]
        if not r.is_pi or memset.empty or far.empty or not m.get("cpu_mhz") or not m.get("cores"):
            raise UsageError(f"{r.name}: needs a board run with a memset row, a latency table, cpu_mhz and cores")
        points.append((m["cpu_mhz"] * m["cores"] / 1000, float(memset.gb_per_s.iloc[0]),
                       float(far.seconds.iloc[0]) * 1e9, m["board"], r.provenance()))
    points.sort()
    fig, (left, right) = _two_axes()
    (bcol, bmark), (lcol, lmark) = benchmark_style("baseline"), benchmark_style("latency-single")
    labels: list[Any] = []
    for i, (x, gbs, ns, board, _) in enumerate(points):
        short = board.replace("Raspberry Pi ", "")
        offset = (4, 4 if i % 2 else -10)   # alternate above and below: neighbours sit close
        left.plot(x, gbs, bmark, color=bcol, gid=f"bandwidth:{board}")
        labels.append(left.annotate(short, (x, gbs), fontsize=MIN_FONT, xytext=offset, textcoords="offset points",
                                    gid=f"point-label:bandwidth:{board}"))
        right.plot(x, ns, lmark, color=lcol, gid=f"latency:{board}")
        labels.append(right.annotate(short, (x, ns), fontsize=MIN_FONT, xytext=offset, textcoords="offset points",
                                     gid=f"point-label:latency:{board}"))
    left.set_ylabel("DRAM fill bandwidth, memset (GB/s)")
    right.set_ylabel("random read at 64 MiB (ns beyond L1)")
    for ax in (left, right):
        ax.set_xlabel("CPU clock x cores (GHz)")
        ax.grid(alpha=0.3)
    left.set_title("DRAM bandwidth", fontsize=10)
    right.set_title("DRAM latency", fontsize=10)
    fig.suptitle("The memory wall across Raspberry Pi generations (published tinymembench runs)")
    for ax in (left, right):
        ax.margins(x=0.1, y=0.15)
    add_provenance(fig, [f"{board}: {prov}" for _, _, _, board, prov in points])
    fig.subplots_adjust(wspace=0.3, top=1 - 0.8 / fig.get_figheight(), left=0.07, right=0.98)
    place_point_labels(fig, labels)
    return fig


def _two_axes() -> tuple[Figure, tuple[Axes, Axes]]:
    fig = _new_figure((11.0, 6.4))
    left, right = fig.subplots(1, 2)
    return fig, (left, right)
