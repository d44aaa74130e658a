"""Issue 24: recorded mode teaches the Pi first. The cache-line prediction and figures, the three paths, the
mountain's ridges, the C-loop host default, and the notebooks' first figures."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from pimem.bench.data import load_all
from pimem.bench.mountain import load_mountain
from pimem.course import plots, predict as P, widgets
from pimem.course.plots.style import footer_text
from pimem.exc import UsageError
from pimem.firmware.board import PI3B

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return load_all()


@pytest.fixture(scope="module")
def hill():
    return load_mountain("host-2026-12-02")


# --- the cache line ---------------------------------------------------------------------------

def test_line_time_is_a_line_over_the_peak_and_over_the_slowest_published_read(data):
    t = P.line_time(data)
    lo, _hi = P.cached_dram_read(data)
    assert t.low == pytest.approx(64 / (PI3B.peak_bytes_per_s / 1e9))
    assert t.high == pytest.approx(64 / lo)
    assert t.unit == "ns" and "prediction, not a measurement" in t.label
    assert any("bcm2837.dtsi" in s for s in t.sources)


def test_stride_prediction_rises_to_the_line_then_stays_flat(data):
    strides = np.array([8, 16, 32, 64, 128, 512])
    fast, slow = P.stride_read_ns(data, strides)
    t, loop = P.line_time(data), P.in_cache_read_ns(data)
    assert np.all(np.diff(slow[:4]) > 0) and np.all(slow[3:] == slow[3])   # the knee is at 64 B
    assert slow[3] == pytest.approx(t.high) and fast[3] == pytest.approx(t.low)
    assert np.all(fast >= loop) and fast[0] == pytest.approx(loop)          # never faster than the loop itself
    assert 4 < loop < 4.5     # the published sum: 4.18 ns per element in the caches (gcc)


def test_cache_line_figure_draws_the_prediction_the_published_point_and_the_line(data):
    fig = plots.cache_line_stride(data)
    ax = fig.axes[0]
    gids = {a.get_gid() for a in ax.get_children()}
    assert {"prediction:stride", "pi:stride-8", "line-size"} <= gids
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("prediction, not a measurement" in t for t in labels)
    assert any("(published)" in t and "cpp-memory-performance" in t for t in labels)
    assert all("host" not in t for t in labels)
    assert ax.get_xlim()[0] < 64 < ax.get_xlim()[1]
    foot = footer_text(fig)
    assert "bcm2837.dtsi" in foot and "cpp-memory-performance" in foot


def test_host_cache_line_is_this_computer_and_refuses_a_pi(hill):
    frame, meta = hill
    fig = plots.host_cache_line(frame, meta)
    ax = fig.axes[0]
    assert "not a Pi" in ax.get_title()
    (line,) = [ln for ln in ax.lines if ln.get_gid() == "host:stride"]
    assert list(line.get_xdata()) == sorted(frame.stride_words.unique() * 8)
    assert "inside its L3" in ax.get_legend().get_texts()[0].get_text()   # 32 MiB < the host's 105 MiB L3
    with pytest.raises(UsageError):
        plots.host_cache_line(frame, {**meta, "machine": {**meta["machine"], "is_pi": True}})


# --- 06: three paths ----------------------------------------------------------------------------

def test_three_paths_reads_bus_bytes_and_times_from_the_original_lesson(data):
    t = P.three_paths(data)
    assert list(t["bus bytes per byte"]) == [1.0, 3.0, 1.0]
    assert list(t["Pi 3B, 64 MiB, ms (original lesson)"].round(2)) == [50.16, 109.56, 38.26]
    assert list(t["the GPU can read the result"]) == ["no", "yes", "yes"]
    assert "uncached" in t["reading it back from the CPU"].iloc[2] and "MB/s" in t["reading it back from the CPU"].iloc[2]


def test_three_paths_follows_the_data(data):
    d = data.copy()
    mask = (d.recording == "original-lesson-pi3b") & (d.benchmark == "zerocopy")
    d.loc[mask, "seconds"] = 0.040
    assert P.three_paths(d)["Pi 3B, 64 MiB, ms (original lesson)"].iloc[2] == pytest.approx(40.0)
    with pytest.raises(UsageError):
        P.three_paths(d[~mask])


# --- 07: the mountain's ridges -----------------------------------------------------------------

def test_mountain_levels_from_the_sidecar_and_for_a_pi(hill):
    frame, meta = hill
    assert plots.mountain_levels(frame, meta) == [("L1", 16384, 32768), ("L2", 65536, 2 << 20),
                                                  ("L3", 4 << 20, 32 << 20)]
    pi_meta = {"machine": {"is_pi": True}}
    assert [n for n, *_ in plots.mountain_levels(frame, pi_meta)] == ["L1", "L2", "DRAM"]
    assert plots.mountain_levels(frame, pi_meta)[1] == ("L2", 65536, 512 << 10)


@pytest.mark.parametrize("draw", [plots.mountain_heatmap, plots.mountain_surface])
def test_mountain_figures_name_their_ridges(hill, draw):
    frame, meta = hill
    fig = draw(frame, meta)
    texts = {t.get_gid(): t.get_text() for t in fig.axes[0].texts if t.get_gid()}
    assert {k for k in texts if k.startswith("ridge:")} == {"ridge:L1", "ridge:L2", "ridge:L3"}
    assert all("ridge" in v for k, v in texts.items() if k.startswith("ridge:"))


def test_surface_is_turned_so_the_ridges_face_the_reader(hill):
    fig = plots.mountain_surface(*hill)
    ax = fig.axes[0]
    assert -90 <= ax.azim <= -30 and ax.elev <= 30


# --- the host default and the notebooks ----------------------------------------------------------

def test_recorded_default_is_the_c_loop_run_with_no_overhead_bound_point():
    assert widgets.DEFAULT_RECORDING == plots.HOST_RECORDING == "host-2026-12-02-c-loop"
    frame = widgets.recorded_source()
    assert not frame["overhead_bound"].astype(bool).any()


def _cells(name: str) -> list[dict]:
    return json.loads((NOTEBOOKS / name).read_text())["cells"]


COURSE = ["01-memory-wall.ipynb", "04-baseline.ipynb", "05-standard-copy.ipynb", "06-zero-copy.ipynb",
          "07-bandwidth-curves.ipynb"]
PI_FIRST = ("plots.demand_ceiling_achieved(", "plots.pi_bandwidth(", "plots.cache_line_stride(", "plain=True")


@pytest.mark.parametrize("name", COURSE)
def test_first_figure_is_pi_data_or_a_pi_prediction(name):
    first = next(c for c in _cells(name) if c["cell_type"] == "code"
                 and any("image/png" in o.get("data", {}) for o in c.get("outputs", [])))
    assert any(k in "".join(first["source"]) for k in PI_FIRST), "".join(first["source"])


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_no_notebook_draws_the_overhead_bound_recording(name):
    code = "".join("".join(c["source"]) for c in _cells(name) if c["cell_type"] == "code")
    assert "host-2026-12-02-libc" not in code and "host-2026-12-02-numpy" not in code


@pytest.mark.parametrize("name", COURSE)
def test_host_figures_come_after_on_this_computer(name):
    cells = _cells(name)
    heads = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
             and "".join(c["source"]).lstrip().startswith("## On this computer")]
    host = [i for i, c in enumerate(cells) if c["cell_type"] == "code"
            and any(k in "".join(c["source"]) for k in ("host_frame(", "host_bandwidth(", "host_cache_line(",
                                                          "source_for(", "load_mountain("))]
    if name == "07-bandwidth-curves.ipynb" or host:
        assert heads, "a host figure without an 'On this computer' part"
        assert all(i > heads[0] for i in host)
