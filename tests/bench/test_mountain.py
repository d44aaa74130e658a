"""The memory mountain: the strided read against numpy, the recorded host mountain, the CLI."""
from __future__ import annotations

import numpy as np
import pytest

from pimem.course import plots
from pimem.cli import main
from pimem.exc import DataError
from pimem.bench.kernels import KERNELS
from pimem.bench.mountain import COLUMNS, load_mountain, mountain, save_mountain

needs_core = pytest.mark.skipif("c-loop" not in KERNELS, reason="no C compiler here: the core did not build")


@needs_core
@pytest.mark.parametrize("stride", [1, 2, 3, 7, 12, 1000])
def test_the_strided_sum_reads_exactly_every_strideth_word(stride):
    words = np.random.default_rng(stride).integers(0, 2**63, 777, dtype=np.uint64)
    lib = KERNELS["c-loop"]._lib
    assert lib.pimem_sum_stride(words.ctypes.data, words.nbytes, stride) == int(words[::stride].sum(dtype=np.uint64))


@needs_core
def test_a_small_mountain_has_every_point_and_counts_the_words_read(backend):
    frame, meta = mountain(backend, sizes=[4096, 65536], strides=[1, 4], iterations=2, progress=False,
                           announce=lambda m: None)
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 4
    row = frame[(frame.size_bytes == 4096) & (frame.stride_words == 4)].iloc[0]
    assert row.bytes == 8 * 128 and row.gb_per_s == pytest.approx(row.bytes / row.seconds / 1e9)
    assert meta["machine"]["is_pi"] is False and meta["buffer_kind"] == "host"


def test_a_mountain_on_the_pi_shaped_machine_is_not_pi_data(backend, monkeypatch, tmp_path):
    monkeypatch.setattr("pimem.memory.info.read_emulated_machine", lambda: "qemu-raspi3b")
    monkeypatch.setattr(backend, "name", "pi")
    frame, meta = mountain(backend, sizes=[4096], strides=[1], iterations=2, progress=False,
                           announce=lambda m: None)
    assert meta["machine"]["is_pi"] is False and meta["machine"]["emulated"] == "qemu-raspi3b"
    meta["machine"]["is_pi"] = True
    save_mountain(frame, meta, tmp_path / "claimed")
    with pytest.raises(DataError, match="emulated machine"):
        load_mountain(tmp_path / "claimed")


def test_the_recorded_host_mountain_loads_and_says_host_run():
    frame, meta = load_mountain("host-2026-12-02")
    assert meta["machine"]["is_pi"] is False and "host run" in meta["machine"]["description"]
    assert set(frame.stride_words) == set(range(1, 13)) and frame.size_bytes.nunique() == 12
    for fig in (plots.mountain_heatmap(frame, meta), plots.mountain_surface(frame, meta)):
        assert "host run" in fig.axes[0].get_title()


def test_a_mountain_whose_bandwidth_does_not_add_up_is_refused(tmp_path):
    frame, meta = load_mountain("host-2026-12-02")
    bad = frame.copy()
    bad.loc[3, "gb_per_s"] *= 2
    save_mountain(bad, meta, tmp_path / "bad")
    with pytest.raises(DataError, match="gb_per_s is not bytes / seconds"):
        load_mountain(tmp_path / "bad")
    with pytest.raises(Exception, match="never overwrites"):
        save_mountain(frame, meta, tmp_path / "bad")


@needs_core
def test_cli_prints_the_grid_and_the_time_it_will_take(emu_dir, capsys):
    assert main(["mountain", "--sizes", "16KiB", "64KiB", "--strides", "1", "2", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "host run" in out and "16 KiB" in out and "about" in err and "estimated from one timed pass" in err


@needs_core
def test_a_direct_mountain_releases_its_gpu_buffer(backend):
    frame, meta = mountain(backend, kind="direct", sizes=[16384], strides=[1, 2], iterations=1, progress=False,
                           announce=lambda m: None)
    assert len(frame) == 2 and meta["buffer_kind"] == "direct"
    assert backend.ledger.entries() == []       # nothing left allocated


@pytest.mark.parametrize("sizes, strides, words", [([100], [1], "multiples of 8"),
                                                   ([4096], [513], "at most 512"),
                                                   ([4096], [0], "at least 1 word")])
def test_bad_sizes_and_strides_are_refused_with_what_to_give(backend, sizes, strides, words):
    from pimem.exc import UsageError
    with pytest.raises(UsageError, match=words):
        mountain(backend, sizes=sizes, strides=strides, progress=False, announce=lambda m: None)


@needs_core
def test_a_huge_stride_reads_one_word_not_past_the_buffer():
    words = np.arange(8, dtype=np.uint64) + 5
    lib = KERNELS["c-loop"]._lib
    assert lib.pimem_sum_stride(words.ctypes.data, words.nbytes, (1 << 62) + 1) == 5
