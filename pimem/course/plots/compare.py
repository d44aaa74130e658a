"""Side-by-side figures: report bars, and published figures beside a run."""
from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from ...paths import pimem_command
from ...exc import UsageError
from .curves import summarize_points
from .style import (BENCHMARK_STYLES, FOOTER_FONT, GB, MIN_FONT, STATISTICS, Source, add_provenance, axes_info,
                    benchmark_style, footer_lines, host_title, keep_labels_inside, new_axes, size_label,
                    sources)


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


def report_provenance(report: Any) -> Source:
    """The source of a ``pimem.bench.report.BenchReport`` measured now."""
    from ...bench.machine import cpu_model

    if report.info.emulated:
        return Source(f"emulated machine ({report.info.emulated}), not a Raspberry Pi: measured now, the emulator's "
                      "timings")
    if not report.info.is_pi:
        return Source(f"host run: {cpu_model()} ({report.info.machine}), pimem emulator backend, measured now")
    board = report.info.revision.describe() if report.info.revision else "Raspberry Pi"
    return Source(f"{board}, measured now: pimem pi backend, {report.kernel} kernel", is_pi=True)


def report_bars(data: Any, *, value: str = "gb_per_s", statistic: str = "median", size: int | None = None,
                ax: Axes | None = None, title: str | None = None, provenance: str | Source | None = None,
                limit: float | None = None) -> Figure:
    """Horizontal bars, one per benchmark phase, of bandwidth (GB/s) or time (ms), marked PASS/FAIL.

    ``data``: a ``BenchReport``, a list of ``PhaseResult``, or a frame in the
    recording schema (one size, or pass ``size=``). A FAIL has no bandwidth:
    its bar is empty and says FAIL. ``limit``: the largest value the axis must hold (default:
    these bars'), so that figures drawn one after another share one scale.
    """
    if value not in ("gb_per_s", "ms"):
        raise UsageError(f"value {value!r} is not 'gb_per_s' or 'ms'")
    if statistic not in STATISTICS:
        raise UsageError(f"statistic {statistic!r} is not one of: {', '.join(STATISTICS)}")
    if isinstance(data, pd.DataFrame):
        provs = list(sources(data, provenance).values())
        bars, size = _bars_from_frame(data, statistic, size)
    elif hasattr(data, "results") and hasattr(data, "info"):
        provs = list(sources(pd.DataFrame(), provenance or report_provenance(data)).values())
        bars, size = _bars_from_results(data.results, "min" if statistic == "best" else statistic)
    else:
        results = list(data)
        if not results:
            raise UsageError("report_bars got no results to draw")
        if provenance is None:
            raise UsageError("a list of PhaseResult carries no provenance; pass provenance='...' "
                             "(e.g. run_provenance(sweep_result.meta))")
        provs = list(sources(pd.DataFrame(), provenance).values())
        bars, size = _bars_from_results(results, "min" if statistic == "best" else statistic)
    fig, ax = new_axes(ax, (8.0, 0.45 * len(bars) + 1.8))
    _draw_bars(ax, bars, value, limit)
    host = any(not s.is_pi for s in provs)
    axes_info(ax)["host"] = host
    ax.set_title(host_title(title or f"Benchmarks at {size_label(size)} ({statistic})", host,
                            any(s.is_pi for s in provs)))
    add_provenance(fig, [s.line for s in provs])
    return fig


def _draw_bars(ax: Axes, bars: list[_Bar], value: str, limit: float | None) -> None:
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
    top = limit if limit else max(vals) if vals and max(vals) > 0 else 1.0
    for rect, b, v in zip(rects, bars, vals):
        shown = "-" if value == "gb_per_s" and b.gb_per_s is None else (f"{v:.3g} GB/s" if value == "gb_per_s"
                                                                        else f"{v:.3g} ms")
        ax.text(v + top * 0.01, rect.get_y() + rect.get_height() / 2, f"{shown}  {b.status}",
                va="center", fontsize=8, gid=f"bar-label:{b.label}")
    ax.set_yticks(ys, [b.label for b in bars])
    ax.set_xlim(0, top * 1.35)
    ax.set_xlabel("bandwidth, GB/s (10^9 bytes/s; a copy counts its bytes once)" if value == "gb_per_s"
                  else "time of one operation, ms")


# --- published figures beside a run ---------------------------------------------

@dataclass
class _Point:
    """One row of the comparison: a source's figure for a benchmark phase."""
    source: str
    value: float
    lo: float
    hi: float
    size: int
    published: bool
    overhead_bound: bool = False


_PHASE_ORDER = ("fill", "write", "read", "copy", "total", "latency")


def course_published(directory: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The published bandwidth figures of the course's board, the Pi 3: from ``directory``, or the data folders.

    Single figures only: a published sweep by size (one recording holding several sizes of a benchmark,
    phase and kernel, such as cpp-memory-performance-pi3b) is left out, since the comparisons place one
    figure per source; draw a sweep with ``bandwidth_curve``.
    """
    from ...bench.data import load_all

    allrec = load_all(directory)
    pub = allrec[(allrec["kind"] == "published") & allrec["board"].str.startswith("Raspberry Pi 3")
                 & (allrec["phase"] != "latency")]
    sizes = pub.groupby(["recording", "benchmark", "phase", "kernel"])["size_bytes"].transform("nunique")
    return pub[sizes == 1].reset_index(drop=True)


def _published_points(pub: pd.DataFrame, boards: Mapping[str, str] | None = None
                      ) -> dict[tuple[str, str], list[_Point]]:
    """{(benchmark, phase): its published points}, the groups in the catalog's order.

    ``boards`` ({recording: board}): name each point in plain words ("Pi 3B, tinymembench memset
    (published)") rather than by its recording and kernel.
    """
    order = list(BENCHMARK_STYLES)

    def rank(bp: tuple[str, str]) -> tuple[int, str, int, str]:
        b, p = bp
        return (order.index(b) if b in order else len(order), b,
                _PHASE_ORDER.index(p) if p in _PHASE_ORDER else len(_PHASE_ORDER), p)

    groups = sorted(dict.fromkeys(zip(pub["benchmark"], pub["phase"])), key=rank)
    entries: dict[tuple[str, str], list[_Point]] = {g: [] for g in groups}
    for rec in dict.fromkeys(pub["recording"]):
        mine = pub[pub["recording"] == rec]
        kinds = mine.groupby(["benchmark", "phase"])["kernel"].nunique()
        for _, r in mine.iterrows():
            # A recording with two kernels for one benchmark (memset and a C fill) names the kernel.
            source = f"{rec} [{r['kernel']}]" if kinds[(r["benchmark"], r["phase"])] > 1 else rec
            if boards is not None:
                from .pi import plain_label

                source = plain_label(rec, boards.get(rec, ""), r["benchmark"], r["phase"], r["kernel"], True)
            v = float(r["value"])
            entries[(r["benchmark"], r["phase"])].append(_Point(source, v, v, v, int(r["size_bytes"]), True))
    return entries


def _add_run_points(entries: dict[tuple[str, str], list[_Point]], pub: pd.DataFrame, run_points: pd.DataFrame) -> None:
    """The run's point in each group: at the size of the published point where it has one, else its nearest."""
    for b, p in entries:
        mine = run_points[(run_points["benchmark"] == b) & (run_points["phase"] == p)]
        if mine.empty:
            continue
        want = int(pub[(pub["benchmark"] == b) & (pub["phase"] == p)]["size_bytes"].max())
        pick = mine.iloc[int(np.argmin(np.abs(np.log2(mine["size_bytes"].to_numpy(float)) - np.log2(want))))]
        entries[(b, p)].append(_Point("this run", float(pick["value"]), float(pick["lo"]), float(pick["hi"]),
                                      int(pick["size_bytes"]), False, bool(pick["overhead_bound"])))


def _comparison_size(entries: Mapping[Any, list[_Point]], notes: Sequence[str], width: float) -> tuple[float, float]:
    """(height, top margin) in inches: one row per point under a header per group, and the footer."""
    n_rows = sum(1 + len(e) for e in entries.values()) + 0.5 * (len(entries) - 1)
    chars = max(40, int(width * 72 * 0.97 / (0.58 * FOOTER_FONT)))
    footer_rows = 1 + sum(len(textwrap.wrap(n, chars, break_on_hyphens=False)) or 1 for n in notes)
    top_in, bottom_in = 0.6, footer_rows * FOOTER_FONT * 1.3 / 72 + 0.75
    return n_rows * max(0.19, 1.6 / n_rows) + top_in + bottom_in, top_in


def _draw_comparison(ax: Axes, entries: Mapping[tuple[str, str], list[_Point]], run_label: str,
                     plain: bool = False) -> list[Any]:
    """Draw the groups' rows (no two points share one, so their size labels cannot overlap); the labels."""
    y = 0.0
    ticks: list[tuple[float, str, bool]] = []
    labels: list[Any] = []
    xs: list[float] = []
    run_in_legend = False
    for gi, ((b, p), points) in enumerate(entries.items()):
        if gi:
            ax.axhline(-(y - 0.75), color="0.75", lw=0.8, gid="separator")
        if plain:
            from .pi import what_words

            ticks.append((-y, what_words(b, p), True))
        else:
            ticks.append((-y, f"{b}: {p}", True))
        y += 1
        colour, marker = benchmark_style(b)
        for pt in points:
            ticks.append((-y, pt.source, False))
            if pt.published:
                ax.plot([pt.value], [-y], marker, color=colour, mec="k", mew=1.0, ms=7, ls="",
                        gid=f"published:{pt.source.split(' [')[0]}")
            else:
                if pt.hi > pt.lo:
                    ax.hlines([-y], [pt.lo], [pt.hi], color=colour, lw=1.1, gid="run:whiskers")
                    ax.plot([pt.lo, pt.hi], [-y, -y], ls="", marker="|", ms=6, mew=1.1, color=colour,
                            gid="run:whisker-caps")
                ax.plot([pt.value], [-y], marker, color=colour, ms=6, ls="", gid="run",
                        label="_nolegend_" if run_in_legend else run_label,
                        **({"mfc": "none", "mec": colour, "mew": 1.3} if pt.overhead_bound else {"mec": colour}))
                run_in_legend = True
            xs += [pt.value, pt.lo, pt.hi]
            # Beside the point, or beyond its bar's end (a run's whisker).
            labels.append(ax.annotate(size_label(pt.size), (max(pt.value, pt.hi), -y), xytext=(6, 0),
                                      textcoords="offset points", fontsize=MIN_FONT, va="center", ha="left",
                                      gid=f"size-label:{pt.source}:{b}:{p}"))
            labels[-1]._pimem_left = (min(pt.value, pt.lo), -y)  # type: ignore[attr-defined]
            y += 1
        y += 0.5
    ax.set_yticks([t[0] for t in ticks], [t[1] for t in ticks])
    for lab, (_, _, bold) in zip(ax.get_yticklabels(), ticks):
        lab.set_fontweight("bold" if bold else "normal")
        lab.set_fontsize(9.5 if bold else 9)
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(-(y - 0.5) - 0.1, 0.6)
    ax.set_xscale("log")
    ax.set_xlim(min(xs) / 1.6, max(xs) * 1.6)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(_plain_minor))   # 0.2, 0.5, 2, 5 rather than 2x10^-1
    ax.set_xlabel("bandwidth, GB/s (10^9 bytes/s; log scale; a copy counts its bytes once)")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return labels


def _plain_minor(value: float, _pos: int) -> str:
    """A log axis's minor tick as a plain number, only at 2 and 5 times a power of ten."""
    if value <= 0:
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return f"{value:g}" if round(mantissa, 6) in (2.0, 5.0) else ""


def _comparison_legend(ax: Axes, entries: Mapping[Any, list[_Point]], run_label: str | None) -> None:
    handles = [Line2D([], [], marker="o", color="0.6", mec="k", mew=1.0, ms=7, ls="", gid="published-note")]
    texts = ["black edge: a published figure\n(the row names its source)"]
    if run_label is not None:
        spread = any(pt.lo < pt.hi for pts in entries.values() for pt in pts if not pt.published)
        handles.append(Line2D([], [], marker="o", color="0.4", ms=6, ls="", gid="run-note"))
        texts.append(run_label + ("\n(bar: slowest to fastest sample)" if spread
                                  else "\n(no spread: one sample per point)"))
    handles.append(Line2D([], [], ls="", gid="size-note"))
    texts.append("beside each point:\nits buffer size")
    ax.legend(handles, texts, fontsize=MIN_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def published_comparison(run: pd.DataFrame | None = None, published: pd.DataFrame | None = None, *,
                         benchmarks: Sequence[str] | None = None, statistic: str = "median",
                         ax: Axes | None = None, provenance: str | Source | None = None,
                         title: str | None = None, plain: bool = False) -> Figure:
    """Published Raspberry Pi figures (data/) beside a run: a group of rows per benchmark phase.

    ``plain``: name the groups and rows in plain words ("cached fill"; "Pi 3B, tinymembench memset
    (published)") rather than by benchmark, recording and kernel.

    ``published`` defaults to every published recording in data/ of the course's board, the
    Pi 3 (the other models' runs are for the generations figure), and their bandwidth rows.
    Under each benchmark phase's header, one row per source (the recording, or "this run"),
    so that no two points share a row; each point is in its benchmark's colour and marker
    (published ones edged in black) and labelled with its buffer size, since the sources used
    different sizes. The run is drawn at the size of each published point where it has one,
    else at its nearest size, with a bar from its slowest to its fastest sample.
    """
    published = course_published() if published is None else published
    if benchmarks is not None:
        published = published[published["benchmark"].isin(list(benchmarks))]
    if published.empty:
        raise UsageError(f"no published figures to draw; check data/ ({pimem_command('check-data')})")
    pub = summarize_points(published, "median")
    provs = sources(published)
    boards = dict(zip(published["recording"], published["board"])) if plain and "board" in published else None
    entries = _published_points(pub, boards)
    notes = footer_lines({r: provs[r] for r in dict.fromkeys(pub["recording"]) if r in provs})
    host, run_label = False, None
    if run is not None:
        run_provs = sources(run, provenance)
        host = any(not s.is_pi for s in run_provs.values())
        _add_run_points(entries, pub, summarize_points(run, statistic))
        run_label = "this run" + (" (host run, not a Pi)" if host else "")
        notes += [f"this run: {s.line}" for s in run_provs.values()]
    width = 12.0 if plain else 10.0
    height, top_in = _comparison_size(entries, notes, width)
    fig, ax = new_axes(ax, (width, height))
    labels = _draw_comparison(ax, entries, run_label or "this run", plain)
    _comparison_legend(ax, entries, run_label)
    axes_info(ax)["host"] = host
    ax.set_title(host_title(title or "Published Raspberry Pi figures" + (" beside this run" if run is not None else ""),
                            host, True))
    add_provenance(fig, notes)
    fig.subplots_adjust(top=1 - top_in / fig.get_figheight(), right=0.8 if plain else 0.76,
                        left=0.36 if plain else 0.2)
    keep_labels_inside(fig, ax, labels)
    return fig


