"""Explorers for the notebooks: sliders that re-measure (live) or re-pick (recorded).

An explorer gets a *source*: a runner (a callable that measures now, see
``live_runner``) or a recorded frame (``pimem.data.load_all`` rows, with
their ``provenance`` column). Every slider has ``continuous_update=False``:
one measurement when the slider is let go, not one per pixel dragged.

Widgets need a running kernel to react. A rendered notebook keeps their
controls but not their callbacks (FACTS.md section 6), so displaying an
explorer also shows a plain image of the figure at the default values.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as W
import pandas as pd
from matplotlib.figure import Figure

from . import plots
from .benchmarks import BENCHMARKS
from .exc import UsageError
from .report import BENCH_SET
from .sweep import DEFAULT_SIZES, MiB, format_size

#: benchmarks, sizes, iterations -> a frame in the recording schema with a 'provenance' column.
Runner = Callable[[Sequence[str], Sequence[int], int], pd.DataFrame]
Source = Runner | pd.DataFrame

DEFAULT_RECORDING = "host-2026-12-02-libc"
LIVE_RECORDING = "this run (live)"
MAX_ITERATIONS = 20


# --- sources ----------------------------------------------------------------------

def live_runner(kernel: str | None = None, backend: Any = None) -> Runner:
    """A runner that sweeps on ``backend`` (default: ``get_backend()``) and labels the frame with its provenance."""
    from .backend import get_backend
    from .benchmarks import RunOptions
    from .sweep import sweep

    def run(benchmarks: Sequence[str], sizes: Sequence[int], iterations: int) -> pd.DataFrame:
        result = sweep(backend or get_backend(), list(benchmarks), list(sizes), kernel=kernel,
                       options=RunOptions(iterations=int(iterations)), progress=False,
                       command="pimem.widgets explorer")
        frame = result.frame.copy()
        frame.insert(0, "provenance", plots.run_provenance(result.meta))
        frame.insert(0, "recording", LIVE_RECORDING)
        return frame

    return run


def recorded_source(recording: str = DEFAULT_RECORDING) -> pd.DataFrame:
    """One recording from data/ as a frame with its 'recording' and 'provenance' columns."""
    from .data import load_all

    frame = load_all()
    picked = frame[frame["recording"] == recording]
    if picked.empty:
        raise UsageError(f"no recording named {recording!r} in data/; there are: "
                         + ", ".join(sorted(frame["recording"].unique())))
    return picked.reset_index(drop=True)


def source_for(run: Any, recording: str = DEFAULT_RECORDING, kernel: str | None = None) -> Source:
    """A live runner when ``run`` (a ``pimem.mode.RunMode``) is live, else the recorded frame."""
    return live_runner(kernel) if run.live else recorded_source(recording)


# --- controls ---------------------------------------------------------------------

def size_options(sizes: Sequence[int] = DEFAULT_SIZES) -> list[tuple[str, int]]:
    """(label, bytes) pairs for a SelectionSlider: powers of two only, labelled in KiB/MiB."""
    bad = [s for s in sizes if s <= 0 or s & (s - 1)]
    if bad:
        raise UsageError(f"size {bad[0]} is not a power of two; the size sliders step in powers of two")
    return [(format_size(s), int(s)) for s in sorted(set(sizes))]


def _benchmark_options(source: Source, wanted: Sequence[str]) -> list[str]:
    names = list(BENCHMARKS) if callable(source) else list(dict.fromkeys(source["benchmark"]))
    missing = [b for b in wanted if b not in names]
    if missing:
        raise UsageError(f"benchmark(s) {', '.join(missing)} not available here; choose from: {', '.join(names)}")
    return names


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


def _output_of(fig: Figure | None, message: str = "") -> dict[str, Any]:
    if fig is None:
        return {"output_type": "stream", "name": "stdout", "text": message + "\n"}
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(_png(fig)).decode("ascii"), "text/plain": repr(fig)}}


# --- the explorer -----------------------------------------------------------------

@dataclass
class Explorer:
    """Controls, an Output redrawn in place, and the static figure at the default values."""

    controls: dict[str, W.Widget]
    output: W.Output
    static_figure: Figure | None
    live: bool
    draw: Callable[[dict[str, Any]], Figure]
    figure: Figure | None = None
    message: str = ""
    recomputes: int = 0
    box: W.VBox = field(init=False)

    def __post_init__(self) -> None:
        self.box = W.VBox([*self.controls.values(), self.output])
        for c in self.controls.values():
            c.observe(self._changed, names="value")

    def values(self) -> dict[str, Any]:
        return {k: c.value for k, c in self.controls.items()}

    def _changed(self, _change: dict[str, Any]) -> None:
        self.redraw()

    def redraw(self) -> None:
        """Recompute at the controls' values and replace the Output's contents."""
        self.recomputes += 1
        try:
            self.figure, self.message = self.draw(self.values()), ""
        except UsageError as e:  # e.g. nothing recorded for this choice: say so where the figure goes
            self.figure, self.message = None, str(e)
        self.output.outputs = (_output_of(self.figure, self.message),)

    def _ipython_display_(self) -> None:
        from IPython.display import Image, Markdown, display

        if self.static_figure is not None:
            display(Markdown("*The figure at the default values (a plain image, kept for readers "
                             "without a running kernel). Move a control to draw a new one below it.*"))
            display(Image(_png(self.static_figure)))
        display(self.box)


def _slider_note(live: bool) -> str:
    return "" if live else "recorded data: iterations fixed by the recording"


def _iterations(value: int, live: bool) -> W.IntSlider:
    if not 1 <= value <= MAX_ITERATIONS:
        raise UsageError(f"iterations={value} is outside 1..{MAX_ITERATIONS}")
    return W.IntSlider(value=value, min=1, max=MAX_ITERATIONS, description="iterations",
                       continuous_update=False, disabled=not live, tooltip=_slider_note(live))


def _pick(frame: pd.DataFrame, benchmarks: Sequence[str], sizes: Sequence[int]) -> pd.DataFrame:
    f = frame[frame["benchmark"].isin(list(benchmarks)) & frame["size_bytes"].isin(list(sizes))]
    if f.empty:
        raise UsageError(f"no recorded data for {', '.join(benchmarks) or 'no benchmark'} at "
                         f"{', '.join(format_size(s) for s in sizes)}; choose another size or benchmark")
    return f


def fetch(source: Source, benchmarks: Sequence[str], sizes: Sequence[int], iterations: int = 5) -> pd.DataFrame:
    """Measure now (a runner) or pick the recorded rows (a frame) for these benchmarks and sizes."""
    if not benchmarks:
        raise UsageError("no benchmark selected; pick at least one in the list")
    if callable(source):
        return source(list(benchmarks), list(sizes), int(iterations))
    return _pick(source, benchmarks, sizes)


def size_explorer(source: Source, *, benchmarks: Sequence[str] = BENCH_SET, size: int = 64 * MiB,
                  iterations: int = 5, sizes: Sequence[int] = DEFAULT_SIZES, value: str = "gb_per_s",
                  static: bool = True) -> Explorer:
    """Bars of each benchmark at one size; a size slider, iterations (live only) and a benchmark list."""
    live = callable(source)
    opts = size_options(sizes)
    if size not in dict((v, k) for k, v in opts):
        raise UsageError(f"size {size} is not one of the slider's sizes ({opts[0][0]} .. {opts[-1][0]})")
    controls: dict[str, W.Widget] = {
        "size": W.SelectionSlider(options=opts, value=size, description="size", continuous_update=False),
        "iterations": _iterations(iterations, live),
        "benchmarks": W.SelectMultiple(options=_benchmark_options(source, benchmarks), value=tuple(benchmarks),
                                       description="benchmarks", rows=min(9, len(BENCHMARKS))),
    }

    def draw(v: dict[str, Any]) -> Figure:
        frame = fetch(source, v["benchmarks"], [v["size"]], v["iterations"])
        return plots.report_bars(frame, value=value, size=v["size"])

    return _explorer(controls, draw, live, static)


def curve_explorer(source: Source, *, benchmarks: Sequence[str] = ("baseline", "standard", "zerocopy"),
                   size_range: tuple[int, int] = (4 << 10, 64 * MiB), iterations: int = 5,
                   sizes: Sequence[int] = DEFAULT_SIZES, phases: Sequence[str] | None = None,
                   overlays: bool = True, static: bool = True) -> Explorer:
    """Bandwidth curves over a size range; a range slider, iterations (live only) and a benchmark list."""
    live = callable(source)
    opts = size_options(sizes)
    values = [v for _, v in opts]
    if size_range[0] not in values or size_range[1] not in values or size_range[0] > size_range[1]:
        raise UsageError(f"size_range {size_range} must be two of the slider's sizes, smallest first "
                         f"({opts[0][0]} .. {opts[-1][0]})")
    controls: dict[str, W.Widget] = {
        "sizes": W.SelectionRangeSlider(options=opts, index=(values.index(size_range[0]),
                                                             values.index(size_range[1])),
                                        description="sizes", continuous_update=False),
        "iterations": _iterations(iterations, live),
        "benchmarks": W.SelectMultiple(options=_benchmark_options(source, benchmarks), value=tuple(benchmarks),
                                       description="benchmarks", rows=min(9, len(BENCHMARKS))),
    }

    def draw(v: dict[str, Any]) -> Figure:
        lo, hi = v["sizes"]
        chosen = [s for s in values if lo <= s <= hi]
        frame = fetch(source, v["benchmarks"], chosen, v["iterations"])
        fig = plots.bandwidth_curve(frame, phases=phases)
        if overlays:
            plots.cache_regions(fig.axes[0])
            plots.peak_line(fig.axes[0])
        return fig

    return _explorer(controls, draw, live, static)


def _explorer(controls: dict[str, W.Widget], draw: Callable[[dict[str, Any]], Figure], live: bool,
              static: bool) -> Explorer:
    ex = Explorer(controls, W.Output(), None, live, draw)
    if static:
        # The default values' figure: measured once now (live) or picked from data/ (recorded).
        ex.static_figure = draw(ex.values())
        ex.figure = ex.static_figure
    return ex
