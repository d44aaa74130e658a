"""Shared by every figure: benchmark colours and markers, fonts, the provenance footer, axes, size labels."""
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
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from ...bench.catalog import CATALOG, OKABE_ITO  # noqa: F401 - OKABE_ITO: the palette the figures use
from ...exc import UsageError
from ...units import format_size

# Units: GB/s = 10^9 bytes/s throughout (the original lesson printed GiB/s and called them GB/s).
# A copy counts its bytes once (tinymembench's convention); ``bus_bytes`` is what crosses the memory bus.
GB = 1e9
FOOTER_GID = "pimem-footer"
STATISTICS = ("median", "min", "mean", "best")
#: The `recording` of rows measured now (a live run), rather than read from a data folder.
LIVE_RECORDING = "this run (live)"
#: The smallest text in any figure (points): footer, legends, labels of points and references.
MIN_FONT = 8.0
FOOTER_FONT = MIN_FONT


# --- one colour and one marker per benchmark, in every figure -------------------
# Declared with each benchmark in pimem.bench.catalog (Okabe & Ito's colour-blind-safe palette).

#: benchmark name -> (colour, marker): every benchmark the catalog declares.
BENCHMARK_STYLES: dict[str, tuple[str, str]] = {n: (s.colour, s.marker) for n, s in CATALOG.items()}
#: Colours for a benchmark the catalog does not declare (Paul Tol's muted palette).
FALLBACK_COLOURS = ("#332288", "#117733", "#44AA99", "#88CCEE", "#DDCC77", "#CC6677", "#AA4499", "#882255")
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
        return (FALLBACK_COLOURS[h % len(FALLBACK_COLOURS)],
                _FALLBACK_MARKERS[(h // len(FALLBACK_COLOURS)) % len(_FALLBACK_MARKERS)])


def variant_index(keys: Iterable[tuple[Any, ...]], bench_index: int = 1) -> dict[tuple[Any, ...], int]:
    """{series key: its index among the series of the same benchmark}, in order of appearance."""
    seen: dict[str, int] = {}
    out = {}
    for key in keys:
        b = key[bench_index]
        out[key] = seen.get(b, 0)
        seen[b] = out[key] + 1
    return out


# --- where the numbers come from ---------------------------------------------------

@dataclass(frozen=True)
class Source:
    """Where a series' numbers come from: the line a figure's footer shows, and whether they are a Pi's.

    A figure says "host run" for every series that is not a Pi's, and never draws one on a Pi's caches.
    """

    line: str
    is_pi: bool = False

    def __str__(self) -> str:
        return self.line


def run_provenance(meta: Mapping[str, Any]) -> Source:
    """The source of a live sweep (``SweepResult.meta``): its line as a recording would have it."""
    from ...bench.data import Recording

    return Source(Recording("live", Path(""), pd.DataFrame(), dict(meta)).provenance(), bool(meta["machine"]["is_pi"]))


def sources(frame: pd.DataFrame, provenance: str | Source | None = None) -> dict[str, Source]:
    """{recording (or ''): its Source} for the series in ``frame``; UsageError if their origin is unknown.

    From ``provenance`` when given (a line you write is drawn as a host run: pass a Source to say
    a Pi's), else from the frame's ``provenance`` and ``is_pi`` columns (pimem.bench.data.load_all's;
    a frame without ``is_pi`` is drawn as host data).
    """
    if provenance is not None:
        source = provenance if isinstance(provenance, Source) else Source(str(provenance))
        if not source.line.strip():
            raise UsageError("provenance is empty; say where the data came from, e.g. run_provenance(sweep.meta)")
        return {"": source}
    if "provenance" not in frame.columns:
        raise UsageError("the frame has no 'provenance' column and no provenance= was given; pass "
                         "provenance=run_provenance(result.meta) for a live sweep, or use pimem.bench.data.load_all()")
    keys = frame["recording"].fillna("") if "recording" in frame.columns else frame["provenance"]
    is_pi = frame["is_pi"] if "is_pi" in frame.columns else [False] * len(frame)
    out: dict[str, Source] = {}
    for key, line, pi in zip(keys, frame["provenance"], is_pi):
        out.setdefault(str(key), Source(str(line), bool(pi)))
    return out


def host_recordings(srcs: Mapping[str, Source]) -> set[str]:
    """The names of the recordings among ``srcs`` that are host runs."""
    return {r for r, s in srcs.items() if not s.is_pi and r}


def data_label(frame: pd.DataFrame) -> str:
    """Where a frame's numbers come from, to print beside them: 'host run (data/NAME)' or the Pi sources.

    A recorded host run is named by its recording (its provenance line names the machine
    it was recorded on, and is in every figure's footer); a live one by its provenance.
    """
    srcs = sources(frame)
    mine = set(frame.loc[frame["mine"].astype(bool), "recording"]) if "mine" in frame.columns else set()

    def label(rec: str, s: Source) -> str:
        if s.is_pi or not rec or rec == s.line or rec == LIVE_RECORDING:
            return s.line   # a live run's provenance says "host run" and what was measured
        return f"host run ({'my-data' if rec in mine else 'data'}/{rec})"
    return "; ".join(sorted(label(rec, s) for rec, s in srcs.items()))


def footer_lines(srcs: Mapping[str, Source]) -> list[str]:
    """The footer's lines for ``srcs``: 'recording: provenance', or the provenance alone."""
    return [s.line if not r or r == s.line else f"{r}: {s.line}" for r, s in srcs.items()]


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


def axes_info(ax: Axes) -> dict[str, Any]:
    """What pimem's figures drew on ``ax`` (host data or not, its sizes): the overlays drawn after ask."""
    if not hasattr(ax, "_pimem"):
        ax._pimem = {"host": False}  # type: ignore[attr-defined]
    return ax._pimem  # type: ignore[attr-defined]


def display_ready() -> None:
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
    fig = new_figure(size)
    return fig, fig.add_subplot()


def new_figure(size: tuple[float, float]) -> Figure:
    """A Figure not registered with pyplot, on an Agg canvas (so that ``fig.canvas.draw()`` lays it out)."""
    display_ready()
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


# --- placing point labels -----------------------------------------------------

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


def keep_labels_inside(fig: Figure, ax: Axes, labels: Sequence[Any]) -> None:
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
