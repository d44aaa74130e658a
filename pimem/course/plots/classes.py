"""A class's results: each board's median curve, the class's spread, and published Pi figures beside them."""
from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from .curves import summarize_points
from .style import (VARIANT_FILLSTYLES, VARIANT_LINESTYLES, add_provenance, benchmark_style, host_title, new_figure,
                    size_axis, sources)

#: One marker shape per published source (edged in black, in the benchmark's colour).
PUBLISHED_MARKERS = "*sPXhp"
_LEGEND_IN = 3.6   # inches on the right for the legend


def _variant(k: int) -> tuple[Any, str]:
    """The k-th board's (line style, marker fill), as the curves draw several series of one benchmark."""
    return VARIANT_LINESTYLES[k % len(VARIANT_LINESTYLES)], VARIANT_FILLSTYLES[k % len(VARIANT_FILLSTYLES)]


def _panel_title(benchmark: str, phase: str) -> str:
    return benchmark if phase in ("fill", "write", "read") and benchmark != "standard" else f"{benchmark} {phase}"


def _draw_boards(ax: Axes, here: pd.DataFrame, host_boards: Collection[str], variant: dict[str, Any],
                 bands: set[bool]) -> None:
    """One panel's boards: a line each, and the spread of their medians, Pis and host runs apart."""
    bench, phase = here["benchmark"].iloc[0], here["phase"].iloc[0]
    colour, marker = benchmark_style(bench)
    is_host = here["board"].isin(list(host_boards))
    for host in (False, True):
        g = here[is_host == host]
        if g.empty:
            continue
        stats = g.groupby("size_bytes")["gb_per_s"].agg(["min", "max", "count"]).sort_index()
        several = (stats["count"] >= 2).to_numpy()
        if several.any():
            group = "host run" if host else "Raspberry Pi"
            ax.fill_between(stats.index.to_numpy(float), stats["min"], stats["max"], where=several,
                            color=colour, alpha=0.12 if host else 0.2, lw=0, hatch="///" if host else None,
                            gid=f"spread:{group}:{bench}:{phase}")
            bands.add(host)
        for board, s in g.groupby("board", sort=True):
            s = s.sort_values("size_bytes")
            ls, fill = variant[board]
            ax.plot(s["size_bytes"], s["gb_per_s"], linestyle=ls, marker=marker, fillstyle=fill, ms=4,
                    lw=1.1, color=colour, mec=colour, gid=f"board:{board}:{bench}:{phase}")


def _draw_published(ax: Axes, points: pd.DataFrame, colour: str, marker_of: dict[str, str], drawn: set[str],
                    where: str) -> set[int]:
    """The published points of one panel; their sizes."""
    sizes: set[int] = set()
    for rec, s in points.groupby("recording", sort=False):
        ax.plot(s["size_bytes"], s["value"], marker_of[rec], mfc=colour, mec="k", mew=1.0, ms=7, ls="",
                zorder=5, gid=f"published:{rec}:{where}")
        sizes |= set(s["size_bytes"])
        drawn.add(rec)
    return sizes


def _style_panel(ax: Axes, sizes: set[int], logy: bool, first_column: bool, title: str) -> None:
    size_axis(ax, sorted(sizes))
    ax.set_xlabel("buffer size", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.tick_params(axis="x", labelsize=6.5, labelrotation=45)
    if logy:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    if first_column:
        ax.set_ylabel("GB/s (10^9 B/s)" + (", log scale" if logy else ""), fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="major", alpha=0.3)


def _legend(fig: Figure, boards: Sequence[str], host_boards: Collection[str], kernels: pd.Series,
            variant: dict[str, Any], bands: set[bool], published: Sequence[str], marker_of: dict[str, str]) -> None:
    handles: list[Any] = []
    labels: list[str] = []
    for b in boards:
        ls, fill = variant[b]
        handles.append(Line2D([], [], color="0.35", marker="o", fillstyle=fill, linestyle=ls, ms=5))
        labels.append(f"{b} [{kernels[b]}]" + (": host run, not a Pi" if b in host_boards else ""))
    for host in (False, True):
        if host in bands:
            handles.append(Patch(facecolor="0.6", alpha=0.4, hatch="///" if host else None))
            labels.append("class spread (" + ("host runs, not Pis" if host else "Raspberry Pis")
                          + "):\nmin-max of the boards' medians")
    for rec in published:
        handles.append(Line2D([], [], color="0.6", marker=marker_of[rec], mec="k", mew=1.0, ms=7, ls=""))
        labels.append(f"{rec}\n(published, a Raspberry Pi)")
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1 - (_LEGEND_IN - 0.15) / fig.get_figwidth(), 0.93),
               fontsize=8, title="colour and marker: the benchmark\nline style: the board", title_fontsize=8,
               frameon=False)


def class_panels(medians: pd.DataFrame, published: pd.DataFrame | None, footer: Sequence[str], *,
                 host_boards: Collection[str], notes: Sequence[str] = (), logy: bool = True,
                 title: str | None = None) -> Figure:
    """Per benchmark phase (one small axes each): every board's median GB/s against size, the spread of
    the boards' medians, and published Raspberry Pi figures beside them.

    ``medians``: one row per board, benchmark, phase and size (board, benchmark, phase, size_bytes,
    gb_per_s, kernel: pimem.course.classroom.board_medians). ``host_boards``: the boards that are
    host runs; they are labelled so, and their spread is a hatched band of its own. ``published``:
    rows of published recordings (load_all's columns) or None. ``footer``: the boards' data lines,
    followed in the footer by the published sources drawn and ``notes``.
    """
    pub_pts = summarize_points(published, "median") if published is not None else None
    pub_recs = list(dict.fromkeys(pub_pts["recording"])) if pub_pts is not None else []
    marker_of = {r: PUBLISHED_MARKERS[i % len(PUBLISHED_MARKERS)] for i, r in enumerate(pub_recs)}
    panels = list(dict.fromkeys(zip(medians["benchmark"], medians["phase"])))
    boards = sorted(medians["board"].unique())
    variant = {b: _variant(i) for i, b in enumerate(boards)}
    kernels = medians.groupby("board")["kernel"].agg(lambda k: ", ".join(sorted({x for s in k for x in s.split(", ")})))

    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = new_figure((3.9 * ncols + _LEGEND_IN, 3.0 * nrows + 2.2))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    drawn: set[str] = set()
    bands: set[bool] = set()
    for k, (bench, phase) in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        here = medians[(medians["benchmark"] == bench) & (medians["phase"] == phase)]
        _draw_boards(ax, here, host_boards, variant, bands)
        sizes = set(here["size_bytes"])
        if pub_pts is not None:
            p = pub_pts[(pub_pts["benchmark"] == bench) & (pub_pts["phase"] == phase)]
            sizes |= _draw_published(ax, p, benchmark_style(bench)[0], marker_of, drawn, f"{bench}:{phase}")
        _style_panel(ax, sizes, logy, k % ncols == 0, _panel_title(bench, phase))
    for k in range(len(panels), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    shown = [r for r in pub_recs if r in drawn]
    _legend(fig, boards, host_boards, kernels, variant, bands, shown, marker_of)
    host_any = any(b in host_boards for b in boards)
    pi_any = bool(drawn) or not all(b in host_boards for b in boards)
    fig.suptitle(host_title(title or "Class results: each board's median bandwidth", host_any, pi_any), fontsize=11)
    fig.subplots_adjust(left=0.6 / fig.get_figwidth(), right=1 - _LEGEND_IN / fig.get_figwidth(),
                        top=1 - 0.75 / fig.get_figheight(), wspace=0.3, hspace=0.75)
    srcs = sources(published) if published is not None else {}
    add_provenance(fig, [*footer, *(f"{rec}: {srcs[rec].line}" for rec in shown), *notes,
                         "each line: a board's median of its samples; band: min-max of the boards' medians where "
                         "2 or more boards have the size; GB/s = 10^9 B/s, a copy counts its bytes once"])
    return fig
