"""pimem.course.widgets: controls, one recompute per change, recorded mode never measures."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

from pimem.course import widgets
from pimem.exc import UsageError
from test_plots import HOST, MiB, rows

SIZES = tuple(1 << p for p in range(12, 27))  # 4 KiB .. 64 MiB


class Runner:
    """A fake live runner: records its calls and returns made-up host rows."""

    def __init__(self):
        self.calls = []

    def __call__(self, benchmarks, sizes, iterations):
        self.calls.append((list(benchmarks), list(sizes), iterations))
        return pd.concat([rows(bench=b, phase={"standard": "total"}.get(b, "fill" if b == "baseline" else "write"),
                               sizes=sizes) for b in benchmarks]).drop(columns=["recording"])


def recorded():
    return pd.concat([rows(sizes=SIZES), rows(bench="zerocopy", phase="write", sizes=SIZES)])


def sliders(ex):
    return [c for c in ex.controls.values() if hasattr(c, "continuous_update")]


def test_size_options_are_powers_of_two_labelled_in_kib_mib():
    assert widgets.size_options([4096, 1 << 20]) == [("4 KiB", 4096), ("1 MiB", 1 << 20)]
    with pytest.raises(UsageError, match="power of two"):
        widgets.size_options([3000])


@pytest.mark.parametrize("make", [widgets.size_explorer, widgets.curve_explorer])
def test_every_slider_has_continuous_update_off(make):
    ex = make(Runner(), benchmarks=["baseline"], sizes=SIZES)
    assert len(sliders(ex)) == 2
    assert all(s.continuous_update is False for s in sliders(ex))


def test_size_explorer_live_measures_once_per_change_with_the_new_values():
    run = Runner()
    ex = widgets.size_explorer(run, benchmarks=["baseline", "zerocopy"], size=MiB, iterations=3, sizes=SIZES)
    assert run.calls == [(["baseline", "zerocopy"], [MiB], 3)]   # the static figure at the defaults
    assert ex.static_figure is not None and len(ex.output.outputs) == 1, "the default figure is the one shown"
    ex.controls["size"].value = 4096
    assert run.calls[1:] == [(["baseline", "zerocopy"], [4096], 3)]
    ex.controls["iterations"].value = 7
    assert run.calls[2:] == [(["baseline", "zerocopy"], [4096], 7)]
    ex.controls["benchmarks"].value = ("zerocopy",)
    assert run.calls[3:] == [(["zerocopy"], [4096], 7)]
    assert ex.recomputes == 3
    (out,) = ex.output.outputs
    assert out["output_type"] == "display_data" and out["data"]["image/png"]
    assert ex.figure is not ex.static_figure and "4 KiB" in ex.figure.axes[0].get_title()


def test_curve_explorer_live_passes_the_sizes_in_the_range():
    run = Runner()
    ex = widgets.curve_explorer(run, benchmarks=["baseline"], size_range=(4096, MiB), sizes=SIZES)
    ex.controls["sizes"].value = (16384, 65536)
    assert run.calls[-1] == (["baseline"], [16384, 32768, 65536], 5)
    assert len(run.calls) == 2
    assert "not the host's" in widgets.plots.footer_text(ex.figure)


def test_recorded_mode_never_calls_the_runner_and_picks_from_the_data(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("recorded mode measured")

    import pimem.bench.benchmarks
    import pimem.bench.sweep

    for mod, name in ((widgets, "live_runner"), (pimem.bench.sweep, "sweep"), (pimem.bench.benchmarks, "run_benchmark")):
        monkeypatch.setattr(mod, name, boom)
    data = recorded()
    ex = widgets.size_explorer(data, benchmarks=["baseline", "zerocopy"], size=MiB, sizes=SIZES)
    assert "iterations" not in ex.controls, "recorded: the iterations slider does nothing, so it is not shown"
    ex.controls["size"].value = 4096
    labels = [t.get_text() for t in ex.figure.axes[0].get_yticklabels()]
    assert sorted(labels) == ["baseline: fill", "zerocopy: write"]
    assert HOST in widgets.plots.footer_text(ex.figure)
    cx = widgets.curve_explorer(data, benchmarks=["baseline"], sizes=SIZES)
    cx.controls["sizes"].value = (4096, 8192)
    pts = [a for a in cx.figure.axes[0].lines if a.get_gid() == "baseline:points"][0]
    assert list(pts.get_xdata()) == [4096, 8192]


def test_recorded_choice_without_data_says_so_in_the_output():
    data = pd.concat([rows(sizes=(4096,)), rows(bench="zerocopy", phase="write", sizes=(MiB,))])
    ex = widgets.size_explorer(data, benchmarks=["baseline"], size=4096, sizes=SIZES)
    ex.controls["benchmarks"].value = ("zerocopy",)
    (out,) = ex.output.outputs
    assert out["output_type"] == "stream" and "no recorded data" in out["text"]
    assert ex.figure is None


def test_unknown_benchmark_and_bad_size_are_errors():
    with pytest.raises(UsageError, match="read-direct"):
        widgets.size_explorer(recorded(), benchmarks=["read-direct"], size=MiB, sizes=SIZES)
    with pytest.raises(UsageError, match="size"):
        widgets.size_explorer(Runner(), benchmarks=["baseline"], size=3 * MiB, sizes=SIZES)


def test_source_for_follows_the_mode(monkeypatch):
    from pimem.course.mode import RunMode

    frame = widgets.source_for(RunMode(False, "emulator", "test"))
    assert isinstance(frame, pd.DataFrame) and set(frame["recording"]) == {widgets.DEFAULT_RECORDING}
    assert callable(widgets.source_for(RunMode(True, "pi", "test")))


def test_live_runner_measures_on_the_emulator_and_labels_a_host_run(backend):
    frame = widgets.live_runner(backend=backend)(["baseline"], [64 << 10], 2)
    assert set(frame["benchmark"]) == {"baseline"} and len(frame) == 2
    (prov,) = set(frame["provenance"])
    assert prov.startswith("host run") and "Raspberry Pi" not in prov


def test_live_off_a_pi_says_host_run_once_and_prints_no_notice(capsys, monkeypatch):
    # Live mode off a Pi: the mode line says "host run"; no "(data/this run (live))", no stderr notice.
    from pimem.course import plots
    from pimem.course.mode import RunMode
    from pimem.memory import backend as backend_mod

    monkeypatch.delenv("PIMEM_BACKEND")
    backend_mod.close_backends()
    runner = widgets.source_for(RunMode(True, "emulator", "live asked, not a Pi"))
    frame = runner(["baseline"], [64 << 10], 2)
    label = plots.data_label(frame)
    assert label.startswith("host run:") and "data/" not in label and "this run" not in label
    assert capsys.readouterr().err == ""


def test_a_recorded_host_run_is_named_by_its_folder():
    from pimem.course import plots

    frame = pd.DataFrame({"recording": ["h1", "h2"], "provenance": ["host run: X", "host run: Y"], "mine": [False, True]})
    assert plots.data_label(frame) == "host run (data/h1); host run (my-data/h2)"


def _shown(box):
    """Every widget in the explorer's box, depth first."""
    out = []
    for child in box.children:
        out.append(child)
        if hasattr(child, "children"):
            out += _shown(child)
    return out


@pytest.mark.parametrize("make", [widgets.size_explorer, widgets.curve_explorer])
def test_one_figure_redrawn_in_place(make):
    ex = make(Runner(), benchmarks=["baseline"], sizes=SIZES)
    first, first_figure = ex.output.outputs, ex.figure
    assert len(first) == 1 and first[0]["data"]["image/png"]
    ex.controls["iterations"].value = 9
    assert len(ex.output.outputs) == 1 and ex.figure is not first_figure, "the figure is replaced, not added to"
    assert [w for w in _shown(ex.box) if w is ex.output] == [ex.output]
    bundle = ex.mimebundle()
    assert set(bundle) == {"application/vnd.jupyter.widget-view+json", "image/png"}, \
        "a reader without widgets sees the figure, never the controls' repr text"


def test_recorded_mode_says_what_it_is_and_hides_what_does_nothing():
    data = recorded()
    data["provenance"] = HOST
    ex = widgets.curve_explorer(data, benchmarks=["baseline"], sizes=SIZES)
    assert "Recorded" in ex.status.value and "nothing is measured" in ex.status.value
    assert "host run" in ex.status.value
    shown = _shown(ex.box)
    assert not [w for w in shown if getattr(w, "description", "") == "iterations"]
    assert ex.status in shown and ex.box.children[0] is ex.status


def test_live_mode_line_names_a_host_run_and_shows_progress_while_measuring(backend):
    runner = widgets.live_runner(backend=backend)
    assert runner.host_run
    ex = widgets.size_explorer(runner, benchmarks=["baseline"], size=64 << 10, iterations=1,
                               sizes=(32 << 10, 64 << 10))
    assert "host run" in ex.status.value and "measures" in ex.status.value
    seen = []
    ex.progress.observe(lambda ch: seen.append((ch["new"], ex.progress.layout.visibility)), names="value")
    ex.controls["size"].value = 32 << 10
    assert seen and seen[-1][0] == ex.progress.max and all(vis == "visible" for _, vis in seen)
    assert ex.progress.layout.visibility == "hidden", "the bar goes away once the figure is drawn"
    assert "measured 1/1" in ex.progress.description or "measuring" in ex.progress.description


def test_only_drawable_benchmarks_are_offered():
    data = pd.concat([recorded(), rows(bench="read-host", phase="read", sizes=SIZES),
                      rows(bench="latency-host", phase="latency", sizes=SIZES)])
    ex = widgets.curve_explorer(data, benchmarks=["baseline"], sizes=SIZES, phases=["fill", "write"])
    assert list(ex.controls["benchmarks"].options) == ["baseline", "zerocopy"]
    ex = widgets.curve_explorer(data, benchmarks=["baseline"], sizes=SIZES, phases=["fill", "write", "read"])
    assert "read-host" in ex.controls["benchmarks"].options and "latency-host" not in ex.controls["benchmarks"].options
    for name in ex.controls["benchmarks"].options:          # every offered one draws
        ex.controls["benchmarks"].value = (name,)
        assert ex.figure is not None, (name, ex.message)
    with pytest.raises(UsageError, match="cannot be drawn"):
        widgets.curve_explorer(data, benchmarks=["read-host"], sizes=SIZES, phases=["fill"])


def test_labels_and_readouts_are_not_cut():
    ex = widgets.curve_explorer(Runner(), benchmarks=["baseline"], sizes=SIZES, size_range=(4096, 64 * MiB))
    for c in [*ex.controls.values(), *ex.controls["benchmarks"].children[1].children]:
        if isinstance(c, widgets.CheckList):
            continue
        assert c.style.description_width == "initial", c.description
    assert ex.controls["sizes"].readout is False
    labels = [w.value for w in _shown(ex.box) if isinstance(w, widgets.W.Label)]
    assert labels == ["4 KiB to 64 MiB"]
    ex.controls["sizes"].value = (8192, MiB)
    assert [w.value for w in _shown(ex.box) if isinstance(w, widgets.W.Label)] == ["8 KiB to 1 MiB"]


def test_benchmarks_are_checkboxes_that_redraw_once_per_tick():
    run = Runner()
    ex = widgets.size_explorer(run, benchmarks=["baseline"], size=MiB, sizes=SIZES)
    choice = ex.controls["benchmarks"]
    boxes = {b.description: b for b in choice.children[1].children}
    assert all(isinstance(b, widgets.W.Checkbox) for b in boxes.values()) and "tick" in choice.children[0].value
    assert [n for n, b in boxes.items() if b.value] == ["baseline"]
    boxes["zerocopy"].value = True                        # a click
    assert run.calls[-1][0] == ["baseline", "zerocopy"] and ex.recomputes == 1
    choice.value = ("standard",)                          # set from Python: one redraw, boxes follow
    assert ex.recomputes == 2 and run.calls[-1][0] == ["standard"]
    assert [n for n, b in boxes.items() if b.value] == ["standard"]


def test_recorded_axes_stay_put_across_every_control():
    # 31 GB/s at 64 MiB and 92 GB/s at 2 MiB must not draw bars of the same length.
    data = pd.concat([rows(sizes=SIZES), rows(bench="zerocopy", phase="write", sizes=SIZES[:3], samples=(30, 60, 90)),
                      rows(bench="zerocopy", phase="write", sizes=SIZES[3:])])
    ex = widgets.size_explorer(data, benchmarks=["baseline"], size=MiB, sizes=SIZES)
    limits = set()
    for size in (4096, MiB):
        for choice in (("baseline",), ("zerocopy",), ("baseline", "zerocopy")):
            ex.controls["size"].value, ex.controls["benchmarks"].value = size, choice
            limits.add(ex.figure.axes[0].get_xlim())
    assert len(limits) == 1, limits
    cx = widgets.curve_explorer(data, benchmarks=["baseline"], sizes=SIZES, size_range=(4096, MiB))
    seen = set()
    for rng in ((4096, 8192), (16384, MiB), (4096, MiB)):
        cx.controls["sizes"].value = rng
        seen.add((cx.figure.axes[0].get_xlim(), cx.figure.axes[0].get_ylim()))
    assert len(seen) == 1, seen


def test_live_axes_only_grow():
    def run(benchmarks, sizes, iterations):   # 4 KiB is fast, 1 MiB slow
        return rows(sizes=sizes, samples=(90.0,) if sizes == [4096] else (1.0,)).drop(columns=["recording"])

    ex = widgets.size_explorer(run, benchmarks=["baseline"], size=MiB, sizes=SIZES)
    tops = []
    for size in (4096, MiB, 4096):
        ex.controls["size"].value = size
        tops.append(ex.figure.axes[0].get_xlim()[1])
    assert tops == sorted(tops)


def test_recorded_size_slider_offers_only_recorded_sizes():
    data = rows(sizes=(4096, MiB))
    ex = widgets.size_explorer(data, benchmarks=["baseline"], size=MiB, sizes=SIZES)
    assert [v for _, v in ex.controls["size"].options] == [4096, MiB]


def test_live_says_why_a_benchmark_is_missing(backend):
    runner = widgets.live_runner(backend=backend)
    heap = backend.mailbox.relocatable_heap()
    big = 1 << (heap.bit_length())          # a power of two beyond the GPU heap
    ex = widgets.size_explorer(runner, benchmarks=["baseline"], size=64 << 10, iterations=1,
                               sizes=(64 << 10, big))
    ex.controls["benchmarks"].value = ("baseline", "zerocopy")
    ex.controls["size"].value = big
    texts = [o.get("text", "") for o in ex.output.outputs]
    assert any("zerocopy" in t and "GPU heap" in t for t in texts), texts
