"""Explorers for the notebooks: sliders that re-measure (live) or re-pick (recorded).

An explorer gets a *source*: a runner (a callable that measures now, see
``live_runner``) or a recorded frame (``pimem.bench.data.load_all`` rows, with
their ``provenance`` column). Every slider has ``continuous_update=False``:
one measurement when the slider is let go, not one per pixel dragged.

An explorer is one box: a line saying what the mode is and what moving a
control does, the controls that do something in that mode, and one figure,
redrawn in place. Widgets need a running kernel to react. A rendered notebook
keeps their state but not their callbacks (a saved widget has no kernel to call), so the
explorer's display also carries a plain image of its figure, which readers
without widgets see instead of the controls' text.
"""
from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as W
import traitlets
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from . import plots
from .plots.style import LIVE_RECORDING
from ..bench.benchmarks import BENCHMARKS
from ..exc import UsageError
from ..bench.report import BENCH_SET
from ..bench.sweep import DEFAULT_SIZES
from ..units import MiB, format_size

#: (done, total, what is running) -> None: a live measurement's progress.
Progress = Callable[[int, int, str], None]

#: The host recording drawn in recorded mode: pimem's compiled C loop, no overhead-bound point.
DEFAULT_RECORDING = plots.HOST_RECORDING
#: The CSS class of an explorer's mode line (pimem.course.html rewrites it for a page without a kernel).
MODE_LINE_CLASS = "pimem-mode"
#: What the mode line says in a page with no kernel behind it (the HTML edition).
STATIC_MODE_LINE = ("<b>A saved page</b>: no Python runs here, so the controls cannot redraw the figure; "
                    "it shows the values you see. Open the notebook in JupyterLab (bash scripts/start.sh) "
                    "to move them.")
MAX_ITERATIONS = 20


# --- sources ----------------------------------------------------------------------

@dataclass
class LiveRunner:
    """Measures now: benchmarks x sizes x iterations -> a frame in the recording schema with 'provenance'."""

    kernel: str | None = None
    backend: Any = None   # a Backend, or its name ("pi", "emulator"), or None: the default backend
    notes: list[str] = field(default_factory=list)   # what the last call skipped, and why

    @property
    def host_run(self) -> bool:
        """Measuring this computer (the emulator backend), not a Pi."""
        from ..memory.backend import default_backend_name

        name = self.backend if isinstance(self.backend, str) else getattr(self.backend, "name", None)
        return (name or default_backend_name()) != "pi"

    def __call__(self, benchmarks: Sequence[str], sizes: Sequence[int], iterations: int,
                 progress: Progress | None = None) -> pd.DataFrame:
        from ..memory.backend import get_backend
        from ..bench.benchmarks import RunOptions
        from ..bench.sweep import sweep

        backend = get_backend(self.backend) if self.backend is None or isinstance(self.backend, str) else self.backend
        result = sweep(backend, list(benchmarks), list(sizes), kernel=self.kernel,
                       options=RunOptions(iterations=int(iterations)), progress=progress or False,
                       command="pimem.course.widgets explorer")
        self.notes = list(result.notes)
        frame = result.frame.copy()
        source = plots.run_provenance(result.meta)
        for column, value in (("is_pi", source.is_pi), ("provenance", source.line), ("recording", LIVE_RECORDING)):
            frame.insert(0, column, value)
        return frame


#: A live runner (or any callable with its signature) or a recorded frame.
Source = Callable[..., pd.DataFrame] | pd.DataFrame


def live_runner(kernel: str | None = None, backend: Any = None) -> LiveRunner:
    """A runner that sweeps on ``backend`` (default: ``get_backend()``) and labels the frame with its provenance."""
    return LiveRunner(kernel, backend)


def recorded_source(recording: str = DEFAULT_RECORDING) -> pd.DataFrame:
    """One recording from data/ as a frame with its 'recording' and 'provenance' columns."""
    from ..bench.data import load_all

    frame = load_all()
    picked = frame[frame["recording"] == recording]
    if picked.empty:
        raise UsageError(f"no recording named {recording!r} in data/; there are: "
                         + ", ".join(sorted(frame["recording"].unique())))
    return picked.reset_index(drop=True)


def source_for(run: Any, recording: str = DEFAULT_RECORDING, kernel: str | None = None) -> Source:
    """A live runner when ``run`` (a ``pimem.course.mode.RunMode``) is live, else the recorded frame."""
    # The run's own backend by name: the mode line already said which, so no second notice on stderr.
    return live_runner(kernel, run.backend) if run.live else recorded_source(recording)


def mode_line(source: Source) -> str:
    """One line: what the explorer's mode is and what moving a control does."""
    if callable(source):
        grows = " The scale grows to the largest value measured so far."
        if getattr(source, "host_run", False):
            return ("<b>Live, a host run</b>: letting go of a control measures this computer again "
                    "(a few seconds; the emulator stands in for the GPU firmware, so this is not a Pi)." + grows)
        return "<b>Live on this Raspberry Pi</b>: letting go of a control measures again (a few seconds)." + grows
    names = ", ".join(sorted({str(r) for r in source.get("recording", pd.Series(dtype=str)).dropna()})) or "data/"
    host = any(not s.is_pi for s in plots.sources(source).values())
    kind = "a host run, not a Pi" if host else "recorded on a Pi"
    return (f"<b>Recorded</b> ({html.escape(names)}, {kind}): moving a control picks other points of that "
            "recording on the same scale; nothing is measured. Set MODE = \"live\" to measure.")


# --- controls ---------------------------------------------------------------------

def size_options(sizes: Sequence[int] = DEFAULT_SIZES) -> list[tuple[str, int]]:
    """(label, bytes) pairs for a SelectionSlider: powers of two only, labelled in KiB/MiB."""
    bad = [s for s in sizes if s <= 0 or s & (s - 1)]
    if bad:
        raise UsageError(f"size {bad[0]} is not a power of two; the size sliders step in powers of two")
    return [(format_size(s), int(s)) for s in sorted(set(sizes))]


def _drawable(name: str, phases: Sequence[str] | None) -> bool:
    """Whether a bandwidth figure can show this benchmark (latency has no bandwidth)."""
    spec = BENCHMARKS.get(name)
    own = spec.phases if spec is not None else ()
    if "latency" in own:
        return False
    return phases is None or not own or bool(set(own) & set(phases))


def _benchmark_options(source: Source, wanted: Sequence[str], phases: Sequence[str] | None = None) -> list[str]:
    if callable(source):
        names = list(BENCHMARKS)
    else:
        f = source if phases is None else source[source["phase"].isin(list(phases))]
        names = list(dict.fromkeys(f["benchmark"]))
    names = [n for n in names if _drawable(n, phases)]
    missing = [b for b in wanted if b not in names]
    if missing:
        raise UsageError(f"benchmark(s) {', '.join(missing)} cannot be drawn here; choose from: {', '.join(names)}")
    return names


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


def _output_of(fig: Figure | None, message: str = "") -> dict[str, Any]:
    if fig is None:
        return {"output_type": "stream", "name": "stdout", "text": message + "\n"}
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(_png(fig)).decode("ascii"), "text/plain": "<figure>"}}


_WIDE = {"description_width": "initial"}   # labels in full: no "benchmar..."


# --- the explorer -----------------------------------------------------------------

@dataclass
class Explorer:
    """A mode line, the controls that act in this mode, and one figure redrawn in place."""

    controls: dict[str, W.Widget]
    output: W.Output
    static_figure: Figure | None
    live: bool
    draw: Callable[[dict[str, Any], Progress | None], Figure]
    mode: str = ""
    source: Any = None
    rows: list[W.Widget] = field(default_factory=list)   # how the controls are laid out (default: one each)
    fixed: dict[str, Any] = field(default_factory=dict)  # values of controls hidden in this mode
    figure: Figure | None = None
    message: str = ""
    recomputes: int = 0
    box: W.VBox = field(init=False)
    status: W.HTML = field(init=False)
    progress: W.IntProgress = field(init=False)

    def __post_init__(self) -> None:
        self.status = W.HTML(self.mode, layout=W.Layout(width="100%"))
        self.status.add_class(MODE_LINE_CLASS)   # so the HTML edition can say what is true in a static page
        self.progress = W.IntProgress(value=0, min=0, max=1, description="measuring", style=_WIDE,
                                      layout=W.Layout(visibility="hidden", width="60%"))
        rows = self.rows or list(self.controls.values())
        self.box = W.VBox([self.status, *rows, self.progress, self.output])
        for c in self.controls.values():
            c.observe(self._changed, names="value")

    def values(self) -> dict[str, Any]:
        return {**self.fixed, **{k: c.value for k, c in self.controls.items()}}

    def _changed(self, _change: dict[str, Any]) -> None:
        self.redraw()

    def _report(self, done: int, total: int, what: str) -> None:
        self.progress.max = max(total, 1)
        self.progress.value = done
        self.progress.description = f"measuring {what}" if what else f"measured {done}/{total}"

    def redraw(self) -> None:
        """Recompute at the controls' values and replace the one figure (or say why there is none)."""
        self.recomputes += 1
        if self.live:
            self.progress.layout.visibility = "visible"
        try:
            figure, self.message = self.draw(self.values(), self._report if self.live else None), ""
        except UsageError as e:  # e.g. nothing recorded for this choice: say so where the figure goes
            figure, self.message = None, str(e)
        finally:
            self.progress.layout.visibility = "hidden"
        if self.figure is not None and self.figure is not self.static_figure:
            plt.close(self.figure)
        self.figure = figure
        outputs = [_output_of(self.figure, self.message)]
        notes = getattr(self.source, "notes", None) if self.live else None
        if notes and figure is not None:   # e.g. a size beyond the GPU heap: say why a bar is missing
            outputs.append({"output_type": "stream", "name": "stdout", "text": "".join(f"note: {n}\n" for n in notes)})
        self.output.outputs = tuple(outputs)

    def mimebundle(self) -> dict[str, Any]:
        """What a notebook shows: the widget (JupyterLab, the HTML edition) and, for any reader
        without widgets, the figure as a plain image, never the controls' repr text."""
        bundle = dict(self.box._repr_mimebundle_() or {})
        bundle.pop("text/plain", None)
        if self.figure is not None:
            bundle["image/png"] = base64.b64encode(_png(self.figure)).decode("ascii")
        return bundle

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.mimebundle(), raw=True)   # raw: exactly these two, no text/plain repr added


def _iterations(value: int) -> W.IntSlider:
    if not 1 <= value <= MAX_ITERATIONS:
        raise UsageError(f"iterations={value} is outside 1..{MAX_ITERATIONS}")
    return W.IntSlider(value=value, min=1, max=MAX_ITERATIONS, description="iterations", style=_WIDE,
                       continuous_update=False)


class CheckList(W.VBox):
    """A caption and one checkbox per option; `value` is the tuple of ticked options, in their order.

    Picking several from a list box needs Ctrl-click, and nothing on the screen says so: a row of
    checkboxes needs no explaining.
    """

    value = traitlets.Tuple()

    def __init__(self, options: Sequence[str], value: Sequence[str], caption: str) -> None:
        self._setting = False
        self.options = tuple(options)
        self._boxes = [W.Checkbox(value=o in value, description=o, indent=False, style=_WIDE,
                                  layout=W.Layout(width="13em")) for o in self.options]
        grid = W.GridBox(self._boxes, layout=W.Layout(grid_template_columns="repeat(3, 13em)"))
        super().__init__([W.HTML(caption), grid])
        self.value = tuple(o for o in self.options if o in value)
        for box in self._boxes:
            box.observe(self._ticked, names="value")
        self.observe(self._set, names="value")

    def _ticked(self, _change: dict[str, Any]) -> None:
        if not self._setting:
            self.value = tuple(b.description for b in self._boxes if b.value)

    def _set(self, change: dict[str, Any]) -> None:   # value set from Python: tick the boxes to match
        self._setting = True
        try:
            for b in self._boxes:
                b.value = b.description in change["new"]
        finally:
            self._setting = False


def _benchmark_list(source: Source, benchmarks: Sequence[str], phases: Sequence[str] | None) -> CheckList:
    options = _benchmark_options(source, benchmarks, phases)
    return CheckList(options, benchmarks, "benchmarks (tick one or more):")


def _pick(frame: pd.DataFrame, benchmarks: Sequence[str], sizes: Sequence[int]) -> pd.DataFrame:
    f = frame[frame["benchmark"].isin(list(benchmarks)) & frame["size_bytes"].isin(list(sizes))]
    if f.empty:
        raise UsageError(f"no recorded data for {', '.join(benchmarks) or 'no benchmark'} at "
                         f"{', '.join(format_size(s) for s in sizes)}; choose another size or benchmark")
    return f


def fetch(source: Source, benchmarks: Sequence[str], sizes: Sequence[int], iterations: int = 5,
          progress: Progress | None = None) -> pd.DataFrame:
    """Measure now (a runner) or pick the recorded rows (a frame) for these benchmarks and sizes."""
    if not benchmarks:
        raise UsageError("no benchmark selected; pick at least one in the list")
    if callable(source):
        if progress is not None and isinstance(source, LiveRunner):
            return source(list(benchmarks), list(sizes), int(iterations), progress)
        return source(list(benchmarks), list(sizes), int(iterations))
    return _pick(source, benchmarks, sizes)


def _recorded_sizes(source: Source, sizes: Sequence[int]) -> list[int]:
    """Recorded: the slider offers only sizes the recording has (live: every size asked)."""
    if callable(source):
        return list(sizes)
    have = set(int(s) for s in source["size_bytes"])
    return [s for s in sizes if s in have] or list(sizes)


class _Scale:
    """The top of an explorer's value axis, the same for every choice of its controls.

    Recorded: the largest value the recording holds for any benchmark the explorer offers, so
    moving a control never rescales the axis (a bar's length can be compared across sizes).
    Live: nothing is known before it is measured, so the axis grows to the largest value
    measured so far and never shrinks.
    """

    def __init__(self, source: Source, offered: Sequence[str], value: str,
                 phases: Sequence[str] | None = None) -> None:
        self.fixed: float | None = None
        self.seen = 0.0
        self.value = value
        if not callable(source):
            f = source[source["benchmark"].isin(list(offered)) & (source["verified"] == "pass")]
            if phases is not None:
                f = f[f["phase"].isin(list(phases))]
            values = self._values(f)
            self.fixed = float(values.max()) if len(values) and values.max() > 0 else None

    def _values(self, frame: pd.DataFrame) -> pd.Series:
        return frame["seconds"] * 1e3 if self.value == "ms" else frame["gb_per_s"]

    def top(self, frame: pd.DataFrame) -> float | None:
        if self.fixed is not None:
            return self.fixed
        values = self._values(frame[frame["verified"] == "pass"])
        self.seen = max(self.seen, float(values.max()) if len(values) else 0.0)
        return self.seen or None


def size_explorer(source: Source, *, benchmarks: Sequence[str] = BENCH_SET, size: int = 64 * MiB,
                  iterations: int = 5, sizes: Sequence[int] = DEFAULT_SIZES, value: str = "gb_per_s",
                  static: bool = True) -> Explorer:
    """Bars of each benchmark at one size; a size slider, iterations (live only) and a benchmark list."""
    opts = size_options(_recorded_sizes(source, sizes))
    if size not in dict((v, k) for k, v in opts):
        raise UsageError(f"size {size} is not one of the slider's sizes ({opts[0][0]} .. {opts[-1][0]})")
    controls: dict[str, W.Widget] = {
        "size": W.SelectionSlider(options=opts, value=size, description="size", continuous_update=False,
                                  style=_WIDE),
        "iterations": _iterations(iterations),
        "benchmarks": _benchmark_list(source, benchmarks, None),
    }

    scale = _Scale(source, controls["benchmarks"].options, value)

    def draw(v: dict[str, Any], progress: Progress | None) -> Figure:
        frame = fetch(source, v["benchmarks"], [v["size"]], v["iterations"], progress)
        return plots.report_bars(frame, value=value, size=v["size"], limit=scale.top(frame))

    return _explorer(source, controls, draw, static)


def curve_explorer(source: Source, *, benchmarks: Sequence[str] = ("baseline", "standard", "zerocopy"),
                   size_range: tuple[int, int] = (4 << 10, 64 * MiB), iterations: int = 5,
                   sizes: Sequence[int] = DEFAULT_SIZES, phases: Sequence[str] | None = None,
                   overlays: bool = True, static: bool = True) -> Explorer:
    """Bandwidth curves over a size range; a range slider, iterations (live only) and a benchmark list.

    The list offers only benchmarks this figure can draw (those with a phase in ``phases``).
    """
    opts = size_options(_recorded_sizes(source, sizes))
    values = [v for _, v in opts]
    if size_range[0] not in values or size_range[1] not in values or size_range[0] > size_range[1]:
        raise UsageError(f"size_range {size_range} must be two of the slider's sizes, smallest first "
                         f"({opts[0][0]} .. {opts[-1][0]})")
    # The slider's own readout is cut short ("4 KiB-64 Mi"): a label beside it shows the range in full.
    slider = W.SelectionRangeSlider(options=opts, index=(values.index(size_range[0]), values.index(size_range[1])),
                                    description="sizes", continuous_update=False, readout=False, style=_WIDE)
    readout = W.Label(_range_text(slider.value))
    slider.observe(lambda ch: setattr(readout, "value", _range_text(ch["new"])), names="value")
    controls: dict[str, W.Widget] = {
        "sizes": slider,
        "iterations": _iterations(iterations),
        "benchmarks": _benchmark_list(source, benchmarks, phases),
    }

    scale = _Scale(source, controls["benchmarks"].options, "gb_per_s", phases)

    def draw(v: dict[str, Any], progress: Progress | None) -> Figure:
        lo, hi = v["sizes"]
        chosen = [s for s in values if lo <= s <= hi]
        frame = fetch(source, v["benchmarks"], chosen, v["iterations"], progress)
        fig = plots.bandwidth_curve(frame, phases=phases)
        # One scale for every choice: the whole size range on x, the largest value on y.
        ax = fig.axes[0]
        plots.size_axis(ax, values)
        top = scale.top(frame) or ax.get_ylim()[1]
        if overlays:
            plots.cache_regions(ax)
            top = max(top, float(plots.peak_line(ax).get_ydata()[0]))
        ax.set_ylim(0, top * 1.08)
        return fig

    return _explorer(source, controls, draw, static, first_row=W.HBox([slider, readout]))


def _range_text(value: tuple[int, int]) -> str:
    return f"{format_size(value[0])} to {format_size(value[1])}"


def _explorer(source: Source, controls: dict[str, W.Widget], draw: Callable[[dict[str, Any], Progress | None], Figure],
              static: bool, first_row: W.Widget | None = None) -> Explorer:
    live = callable(source)
    fixed = {}
    if not live:
        # Recorded: the iterations are the recording's; a slider that does nothing is not shown.
        fixed["iterations"] = controls.pop("iterations").value
    rows = list(controls.values())
    if first_row is not None:
        rows[0] = first_row
    ex = Explorer(controls, W.Output(), None, live, draw, mode=mode_line(source), source=source, rows=rows,
                  fixed=fixed)
    if static:
        # The default values' figure: measured once now (live) or picked from data/ (recorded); it is
        # the one figure the explorer shows until a control moves.
        ex.static_figure = draw(ex.values(), None)
        ex.figure = ex.static_figure
        ex.output.outputs = (_output_of(ex.figure),)
    return ex


# --- the Pi first: published Pi data and predictions, this computer as an option --------------

#: The explorer's two views: the Pi 3B (published data and predictions, a live Pi run over them) and this computer.
PI_VIEWS = (("Raspberry Pi 3B: published data and predictions", "pi"), ("this computer: a host run", "host"))


def _series_rows(frame: pd.DataFrame, series: Sequence[str]) -> pd.DataFrame:
    pairs = {bp for s in series for bp in plots.SERIES[s][0]}
    return frame[[bp in pairs for bp in zip(frame["benchmark"], frame["phase"])]]


def pi_explorer(run: Any, *, series: Sequence[str] = ("fill", "cached-read"), iterations: int = 5,
                sizes: Sequence[int] = DEFAULT_SIZES, host_recording: str = plots.HOST_RECORDING,
                static: bool = True) -> Explorer:
    """Bandwidth against size for a Pi 3B: published Pi data and predictions by default; this computer an option.

    ``run`` is the notebook's RunMode. Recorded: the Pi view draws data/'s Pi recordings and the
    predictions of the ticked series; the host view the C-loop host recording, in a figure of its own.
    Live on a Pi: the Pi view measures the ticked series and draws them over the predictions. Live on
    another computer: the host view measures this computer; the Pi view stays published data and predictions.
    """
    from ..bench.data import load_all

    data = load_all()
    pi = data[data["recording"].isin(plots.PI3_RECORDINGS)].reset_index(drop=True)
    source: Source = live_runner(None, run.backend) if run.live else pi
    bad = [s for s in series if s not in plots.SERIES]
    if bad:
        raise UsageError(f"series {', '.join(bad)} unknown; choose from {', '.join(plots.SERIES)}")
    controls: dict[str, W.Widget] = {
        "view": W.ToggleButtons(options=list(PI_VIEWS), value="pi", description="draw", style=_WIDE),
        "iterations": _iterations(iterations),
        "series": CheckList(list(plots.SERIES), series, "what to draw (tick one or more):"),
    }
    swept = [s for s in sizes if s <= 64 * MiB]

    def measure(chosen: Sequence[str], its: int, progress: Progress | None) -> pd.DataFrame:
        benches = [b for s in chosen for (b, _p) in plots.SERIES[s][0] if b in BENCHMARKS]
        if not benches:
            raise UsageError("nothing to measure for these series")
        return _series_rows(fetch(source, list(dict.fromkeys(benches)), swept, its, progress), chosen)

    def draw(v: dict[str, Any], progress: Progress | None) -> Figure:
        chosen = list(v["series"])
        if not chosen:
            raise UsageError("nothing ticked; tick at least one series")
        if v["view"] == "host":
            frame = (measure(chosen, v["iterations"], progress) if run.live and run.host_run
                     else _series_rows(data[data["recording"] == host_recording], chosen))
            if frame.empty:
                raise UsageError(f"the host run has no rows for {', '.join(chosen)}")
            return plots.host_bandwidth(frame)
        live = measure(chosen, v["iterations"], progress) if run.live and not run.host_run else None
        return plots.pi_bandwidth(data, series=chosen, live=live)

    ex = _explorer(source, controls, draw, static)
    if not run.live:
        ex.status.value = ("<b>Recorded</b>: the Raspberry Pi 3B view draws published Pi figures (data/) and the "
                           "predictions, dashed and labelled; \"this computer\" draws the host run "
                           f"data/{html.escape(host_recording)}, never a Pi. Nothing is measured; set MODE = \"live\" "
                           "to measure.")
    elif run.host_run:
        ex.status.value = ("<b>Live, a host run</b>: the Raspberry Pi 3B view draws published Pi figures and the "
                           "predictions (nothing to measure: this is not a Pi); \"this computer\" measures this "
                           "computer again when a control is let go (the emulator stands in for the GPU).")
    return ex


def pi_measurement(run: Any, benchmarks: Sequence[str], sizes: Sequence[int], iterations: int = 5
                   ) -> pd.DataFrame | None:
    """A sweep measured now on a Pi, to draw over the predictions; None when recorded or live on another computer."""
    if not run.live or run.host_run:
        return None
    return fetch(live_runner(None, run.backend), benchmarks, sizes, iterations)


def host_frame(run: Any, benchmarks: Sequence[str], sizes: Sequence[int], iterations: int = 5,
               recording: str = plots.HOST_RECORDING) -> pd.DataFrame:
    """This computer's rows: measured now when live off a Pi, else the C-loop host recording (never a Pi)."""
    if run.live and run.host_run:
        return fetch(live_runner(None, run.backend), benchmarks, sizes, iterations)
    frame = recorded_source(recording)
    return frame[frame["benchmark"].isin(list(benchmarks)) & frame["size_bytes"].isin(list(sizes))]
