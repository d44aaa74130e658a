"""Figures for the notebooks: bandwidth curves, cache regions, report bars.

Every function draws with matplotlib's object-oriented API and returns (or
draws into) a ``Figure``; nothing here calls ``plt.show``. Every figure
carries the provenance of its data as a footer: the ``provenance`` column
of a recorded frame (``pimem.data.load_all``), or a string passed in (see
``run_provenance`` for a live sweep). A host run is labelled a host run; the
Pi's caches and DRAM peak, when drawn over host data, say that they are the
Pi's and not the host's.

Units: GB/s = 10^9 bytes/s throughout (the original lesson printed GiB/s
and called them GB/s). A copy counts its bytes once (tinymembench's
convention); ``bus_bytes`` is what crosses the memory bus.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from .exc import UsageError
from .sweep import format_size

GB = 1e9
FOOTER_GID = "pimem-footer"
STATISTICS = ("median", "min", "mean", "best")
_HOST_PREFIX = "host run"


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
    from .data import Recording

    return Recording("live", Path(""), pd.DataFrame(), dict(meta)).provenance()


def is_host(provenance: str) -> bool:
    """True for a host run's provenance line (pimem.data writes them starting 'host run' or 'host:')."""
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
                         "provenance=run_provenance(result.meta) for a live sweep, or use pimem.data.load_all()")
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
    """Add lines to the figure's footer (created at the bottom left on first use); returns the Text."""
    footer = next((t for t in fig.texts if t.get_gid() == FOOTER_GID), None)
    old = footer.get_text().split("\n")[1:] if footer is not None else []
    new = old + [ln for ln in lines if ln not in old]
    # One line per source below the header, so that overlays can append theirs.
    body = "\n".join(["Data:"] + new)
    if footer is None:
        footer = fig.text(0.01, 0.005, body, ha="left", va="bottom", fontsize=7.5, color="0.3",
                          gid=FOOTER_GID, wrap=True)
    else:
        footer.set_text(body)
    # Make room for the footer under the axes (a long line wraps onto a second).
    width_chars = fig.get_figwidth() * 72 / 3.6
    rows = 1 + sum(1 + int(len(ln) // width_chars) for ln in new)
    inch = rows * 7.5 * 1.25 / 72 + 0.65  # footer lines + the x axis' labels
    fig.subplots_adjust(bottom=min(0.6, inch / fig.get_figheight()))
    return footer


def footer_text(fig: Figure) -> str:
    """The footer's text ('' when there is none)."""
    return next((t.get_text() for t in fig.texts if t.get_gid() == FOOTER_GID), "")


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
    _display_ready()
    fig = Figure(figsize=size, layout=None)
    return fig, fig.add_subplot()


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
                         "schema of data/README.md (pimem.sweep.results_frame or pimem.data.load_all)")
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
                    band: bool = True) -> Figure:
    """Bandwidth (GB/s) against buffer size, one line per benchmark/phase (and recording, and kernel).

    Each point is the ``statistic`` of its samples, with the min-max range of
    the samples shaded. Hollow markers: overhead-bound points (call overhead
    dominated; a lower bound on bandwidth). Diamonds: published figures (one
    statistic, no samples). Failed points are left out.
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
    any_ob = False
    for i, (key, s) in enumerate(pts.groupby(["recording", "benchmark", "phase", "kernel"], sort=False)):
        label = _series_label(key, multi)
        colour = f"C{i % 10}"
        x, y = s["size_bytes"].to_numpy(float), s["value"].to_numpy(float)
        ob, pub = s["overhead_bound"].to_numpy(bool), s["published"].to_numpy(bool)
        marker = "D" if pub.all() else "o"
        line, = ax.plot(x, y, "-" if len(x) > 1 else "", color=colour, lw=1.4, label=label, gid=f"{label}:line")
        if band and len(x) > 1 and (s["n"] > 1).any():
            ax.fill_between(x, s["lo"], s["hi"], color=colour, alpha=0.15, lw=0, gid=f"{label}:band")
        ax.plot(x[~ob], y[~ob], marker, color=colour, ms=5, ls="", gid=f"{label}:points")
        if ob.any():
            any_ob = True
            ax.plot(x[ob], y[ob], marker, mfc="none", mec=colour, ms=6, ls="", gid=f"{label}:overhead")
        if not len(x) > 1:
            line.set_marker(marker)
    handles, labels = ax.get_legend_handles_labels()
    if any_ob:
        handles.append(Line2D([], [], marker="o", mfc="none", mec="0.3", ls="", gid="overhead-note"))
        labels.append("hollow: overhead-bound\n(call overhead dominates;\na lower bound on bandwidth)")
    if band and (pts["n"] > 1).any():
        handles.append(Line2D([], [], color="0.6", lw=6, alpha=0.4))
        labels.append("shaded: min-max of the samples")
    # Outside the axes, on the right: the curves and the cache labels stay visible.
    ax.legend(handles, labels, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
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
                        transform=ax.get_xaxis_transform(), ha="right", va="top", fontsize=7, color="0.35",
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
    from .data import DataError, data_dir, load_recording

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
                    va="bottom", fontsize=7, color="0.3", gid=f"region-label:{name}")
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
    ax.text(1.0, b.peak_gb_per_s, f" {b.name} peak {b.peak_gb_per_s:.1f} GB/s{ref}", transform=ax.get_yaxis_transform(),
            ha="right", va="bottom", fontsize=8, gid="peak-label")
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
        bars.append(_Bar(label, secs, None if failed else int(g["bytes"].iloc[0]) / secs / GB, status))
    return bars, size


def _bars_from_results(results: Sequence[Any], statistic: str) -> tuple[list[_Bar], int]:
    bars = [_Bar(f"{r.benchmark}: {r.phase}", r.seconds(statistic), r.gb_per_s(statistic),
                 "PASS" if r.verified else "FAIL") for r in results]
    return bars, results[0].size


def report_provenance(report: Any) -> str:
    """A provenance line for a ``pimem.report.BenchReport`` measured now."""
    from .sweep import cpu_model

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
    colours = ["#c62828" if b.status == "FAIL" else "#1565c0" if b.status == "PASS" else "#757575" for b in bars]
    rects = ax.barh(ys, vals, color=colours, gid="bars")
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
    """Published Raspberry Pi figures (data/) beside a run, one row per benchmark phase.

    ``published`` defaults to every published recording in data/ of the course's board, the
    Pi 3 (the other models' runs are for the generations figure), and their bandwidth rows.
    Each point is labelled with its buffer size, since the sources used different sizes; the
    run is drawn at the size of each published point where it has one, else at its nearest size.
    """
    if published is None:
        from .data import load_all

        allrec = load_all()
        published = allrec[allrec["provenance"].str.contains("published:", regex=False)
                           & allrec["provenance"].str.startswith("Raspberry Pi 3")
                           & (allrec["phase"] != "latency")]
    if benchmarks is not None:
        published = published[published["benchmark"].isin(list(benchmarks))]
    if published.empty:
        raise UsageError("no published figures to draw; check data/ (python -m pimem check-data)")
    pub = summarize_points(published, "median")
    rows = list(dict.fromkeys(zip(pub["benchmark"], pub["phase"])))
    fig, ax = new_axes(ax, (8.5, 0.55 * len(rows) + 2.2))
    y_of = {r: len(rows) - 1 - i for i, r in enumerate(rows)}
    provs = _provenances(published, None)
    recs = list(dict.fromkeys(pub["recording"]))
    markers = "DsP^v<>"
    for j, rec in enumerate(recs):
        s = pub[pub["recording"] == rec]
        ys = [y_of[(b, p)] + 0.12 * (j - len(recs) / 2) for b, p in zip(s["benchmark"], s["phase"])]
        ax.plot(s["value"], ys, markers[j % len(markers)], color=f"C{j}", ls="", label=rec, gid=f"published:{rec}")
        for x, y, n in zip(s["value"], ys, s["size_bytes"]):
            ax.annotate(size_label(n), (x, y), xytext=(4, 0), textcoords="offset points", fontsize=6.5, va="center")
    notes = _footer_lines({r: provs[r] for r in recs if r in provs})
    host = False
    if run is not None:
        run_provs = _provenances(run, provenance)
        host = any(is_host(p) for p in run_provs.values())
        rp = summarize_points(run, statistic)
        xs, ys, sizes = [], [], []
        for (b, p), y in y_of.items():
            mine = rp[(rp["benchmark"] == b) & (rp["phase"] == p)]
            if mine.empty:
                continue
            want = int(pub[(pub["benchmark"] == b) & (pub["phase"] == p)]["size_bytes"].max())
            pick = mine.iloc[int(np.argmin(np.abs(np.log2(mine["size_bytes"].to_numpy(float)) - np.log2(want))))]
            xs.append(pick["value"]), ys.append(y + 0.3), sizes.append(int(pick["size_bytes"]))
        label = "this run" + (" (host run, not a Pi)" if host else "")
        ax.plot(xs, ys, "o", color="k", mfc="none", ls="", label=label, gid="run")
        for x, y, n in zip(xs, ys, sizes):
            ax.annotate(size_label(n), (x, y), xytext=(4, 0), textcoords="offset points", fontsize=6.5, va="center")
        notes += [f"this run: {p}" for p in run_provs.values()]
    ax.set_yticks(list(y_of.values()), [f"{b}: {p}" for b, p in y_of])
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.set_xlabel("bandwidth, GB/s (10^9 bytes/s; log scale; a copy counts its bytes once)")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=7.5, loc="best")
    _info(ax)["host"] = host
    ax.set_title(host_title(title or "Published Raspberry Pi figures" + (" beside this run" if run is not None else ""),
                            host, True))
    add_provenance(fig, notes)
    return fig


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

    from .memflags import Alias

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
            fontsize=7.5)
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
    for (rec, bench), rows in lat.groupby(["recording", "benchmark"], sort=True):
        rows = rows.sort_values("size_bytes")
        kind = "two reads at a time" if bench == "latency-dual" else "one read at a time"
        ax.plot(rows["size_bytes"], rows["seconds"] * 1e9, marker="o", ms=3,
                ls="--" if bench == "latency-dual" else "-", label=f"{provs[rec]}: {kind}", gid=f"latency:{rec}:{bench}")
    ax.set_xscale("log", base=2)
    size_axis(ax, sorted(lat["size_bytes"].unique()))
    ax.set_ylabel("extra time per random read (ns, beyond an L1 hit)")
    ax.set_xlabel("block size read at random")
    ax.set_title(title or f"Random-read latency against block size, {b.name} (published)")
    ax.legend(fontsize=7, loc="lower right")
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
    for (rec, bench), rows in lat.groupby(["recording", "benchmark"], sort=True):
        g = rows.groupby("size_bytes")["seconds"]
        x = np.array(sorted(rows["size_bytes"].unique()), float)
        med, lo, hi = (g.median() * 1e9).to_numpy(), (g.min() * 1e9).to_numpy(), (g.max() * 1e9).to_numpy()
        line, = ax.plot(x, med, marker="o", ms=3, label=bench, gid=f"latency:{rec}:{bench}")
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    size_axis(ax, sorted(lat["size_bytes"].unique()))
    ax.set_ylabel("ns per random load (median; band: min-max)")
    ax.set_xlabel("block size chased through")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(host_title(title or "Memory latency against block size (pimem's pointer chase)", host))
    ax.legend(fontsize=7.5, loc="upper left")
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
    ax.set_xticks(np.arange(len(sizes)) + 0.5, [size_label(v) for v in sizes], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(np.arange(len(strides)) + 0.5, [f"{int(k)}" for k in strides], fontsize=7)
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
    _display_ready()
    fig = Figure(figsize=(8.0, 5.6))
    ax = fig.add_subplot(projection="3d")
    x, y = np.meshgrid(np.log2(sizes), strides)
    ax.plot_surface(x, y, gbps, cmap="viridis", edgecolor="0.3", linewidth=0.2)
    ax.set_xticks(np.log2(sizes)[::2], [size_label(v) for v in sizes[::2]], fontsize=7)
    ax.set_xlabel("working set", fontsize=8)
    ax.set_ylabel("stride (words)", fontsize=8)
    ax.set_zlabel("read GB/s", fontsize=8)
    ax.view_init(elev=25, azim=-130)
    ax.set_title(_mountain_title(meta, "surface"), fontsize=10)
    add_provenance(fig, [f"{meta.get('machine', {}).get('description', 'machine not recorded')}"])
    return fig


def memory_wall_generations(recordings: Sequence[Any]) -> Figure:
    """Across Raspberry Pi models: CPU clock x cores against DRAM bandwidth (memset) and latency (64 MiB).

    ``recordings`` are pimem.data Recordings of published board runs (tinymembench-*), each
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
    for i, (x, gbs, ns, board, _) in enumerate(points):
        short = board.replace("Raspberry Pi ", "")
        offset = (4, 4 if i % 2 else -10)   # alternate above and below: neighbours sit close
        left.plot(x, gbs, "o", color="C0", gid=f"bandwidth:{board}")
        left.annotate(short, (x, gbs), fontsize=7, xytext=offset, textcoords="offset points")
        right.plot(x, ns, "s", color="C3", gid=f"latency:{board}")
        right.annotate(short, (x, ns), fontsize=7, xytext=offset, textcoords="offset points")
    left.set_ylabel("DRAM fill bandwidth, memset (GB/s)")
    right.set_ylabel("random read at 64 MiB (ns beyond L1)")
    for ax in (left, right):
        ax.set_xlabel("CPU clock x cores (GHz)")
        ax.grid(alpha=0.3)
    left.set_title("DRAM bandwidth", fontsize=10)
    right.set_title("DRAM latency", fontsize=10)
    fig.suptitle("The memory wall across Raspberry Pi generations (published tinymembench runs)")
    fig.subplots_adjust(wspace=0.3, top=0.84)
    add_provenance(fig, [f"{board}: {prov}" for _, _, _, board, prov in points])
    return fig


def _two_axes() -> tuple[Figure, tuple[Axes, Axes]]:
    _display_ready()
    fig = Figure(figsize=(11.0, 4.6), layout=None)
    left, right = fig.subplots(1, 2)
    return fig, (left, right)
