"""Sweeps: the tidy results frame, the GPU-memory cap, progress, and run metadata."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pimem.bench import data, sweep as sweep_mod
from pimem.bench.benchmarks import RunOptions, run_benchmark
from pimem.exc import GpuMemoryExhausted, UsageError
from pimem.bench.kernels import KERNELS, Op
from pimem.bench.machine import run_metadata
from pimem.bench.sweep import COLUMNS, results_frame, sweep
from pimem.units import parse_size

QUICK = RunOptions(iterations=3, warmup=0, reps=2)
SIZE = 16 * 1024


def _results(backend, names, size=SIZE, kernel=None):
    k = kernel or KERNELS["numpy"]
    out = []
    for n in names:
        out += run_benchmark(n, size, kernel=k, backend=backend, options=QUICK)
    return out


# --- results_frame ------------------------------------------------------------

def test_frame_columns_rows_and_dtypes(backend):
    results = _results(backend, ["baseline", "standard", "zerocopy", "read-direct"])
    f = results_frame(results)
    assert list(f.columns) == list(COLUMNS) == list(data.COLUMNS)
    assert len(f) == sum(len(r.timing.samples_s) for r in results) == 6 * QUICK.iterations
    for col in ("size_bytes", "sample", "bytes", "bus_bytes", "reps"):
        assert pd.api.types.is_integer_dtype(f[col]), col
    for col in ("seconds", "gb_per_s", "gib_per_s"):
        assert pd.api.types.is_float_dtype(f[col]), col
    assert pd.api.types.is_bool_dtype(f["overhead_bound"])
    assert set(f["verified"]) == {"pass"}
    assert set(f["statistic"]) == {"sample"}
    for _, g in f.groupby(["benchmark", "phase"]):
        assert sorted(g["sample"]) == list(range(QUICK.iterations))
    # Each row's bandwidth is its own sample's, in both units.
    assert np.allclose(f["gb_per_s"], f["bytes"] / f["seconds"] / 1e9)
    assert np.allclose(f["gib_per_s"], f["bytes"] / f["seconds"] / 2**30)


def test_frame_flags_and_aliases(backend):
    f = results_frame(_results(backend, ["baseline", "standard", "zerocopy", "write-coherent", "read-host"]))
    by = {b: g for b, g in f.groupby("benchmark")}
    # The lesson's own run: COHERENT gave the 0x8 alias, DIRECT the 0xC (FACTS section 2).
    assert set(by["standard"]["flags"]) == {"COHERENT|ZERO"} and set(by["standard"]["alias"]) == {"0x8"}
    assert set(by["standard"]["phase"]) == {"fill", "copy", "total"}
    assert set(by["zerocopy"]["flags"]) == {"DIRECT|ZERO"} and set(by["zerocopy"]["alias"]) == {"0xC"}
    assert set(by["write-coherent"]["alias"]) == {"0x8"}
    for host in ("baseline", "read-host"):
        assert set(by[host]["flags"]) == {""} and set(by[host]["alias"]) == {""}


def test_frame_passes_the_recording_schema(backend):
    f = results_frame(_results(backend, ["baseline", "standard", "zerocopy", "read-host", "read-direct"]))
    data.validate_frame(f, run_metadata(backend, "numpy", QUICK, command="pytest"))


def test_failed_rows_have_no_bandwidth_and_still_pass_the_schema(backend):
    real = KERNELS["numpy"]

    class HalfFill:
        name = "broken"

        def fill_op(self, dst, value, **kw):
            return real.fill_op(dst.reshape(-1)[: dst.size // 2], value, **kw)

        def copy_op(self, dst, src):
            return real.copy_op(dst, src)

        def read_op(self, src):
            op = real.read_op(src)
            return Op(lambda: int(op.run()) ^ 1, op.empty, op.keep)

    f = results_frame(_results(backend, ["baseline", "read-host"], kernel=HalfFill()))
    assert set(f["verified"]) == {"fail"}
    assert f["gb_per_s"].isna().all() and f["gib_per_s"].isna().all()
    assert (f["seconds"] > 0).all()
    data.validate_frame(f, run_metadata(backend, "numpy", QUICK, command="pytest"))


# --- sweep() --------------------------------------------------------------------

def test_sizes_above_gpu_memory_are_skipped_for_gpu_benchmarks_only(backend):
    # The firmware lends out its heap (56 of the 76 MiB of gpu_mem), not all of gpu_mem.
    gpu = backend.mailbox.relocatable_heap()
    assert gpu == 56 << 20
    big = gpu + (1 << 20)
    r = sweep(backend, ["zerocopy", "baseline", "read-host"], [SIZE, big], kernel="numpy",
              options=RunOptions(iterations=2, warmup=0, reps=1), progress=False, command="pytest")
    points = set(zip(r.frame["benchmark"], r.frame["size_bytes"]))
    assert points == {("zerocopy", SIZE), ("baseline", SIZE), ("baseline", big),
                      ("read-host", SIZE), ("read-host", big)}
    note, advice = r.notes
    assert "zerocopy" in note and f"{big >> 20} MiB" in note and f"{gpu >> 20} MiB" in note
    assert "gpu_mem" in note and "gpu_mem=128" in advice   # and says what to do, once
    assert r.meta["skipped"] == r.notes          # kept with the data
    data.validate_frame(r.frame, r.meta)


def test_firmware_refusal_becomes_a_note(backend, monkeypatch):
    real = sweep_mod.run_benchmark

    def refuse_direct(name, size, **kw):
        if name == "zerocopy":
            raise GpuMemoryExhausted("no memory")
        return real(name, size, **kw)

    monkeypatch.setattr(sweep_mod, "run_benchmark", refuse_direct)
    r = sweep(backend, ["zerocopy", "baseline"], [SIZE], kernel="numpy", options=QUICK, progress=False)
    assert set(r.frame["benchmark"]) == {"baseline"}
    assert len(r.notes) == 1 and "zerocopy" in r.notes[0] and "16 KiB" in r.notes[0]
    assert r.meta["skipped"] == r.notes


def test_progress_bar_can_be_disabled(backend, capsys):
    sweep(backend, ["baseline"], [SIZE], kernel="numpy", options=QUICK, progress=False)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_progress_bar_names_the_benchmark_and_size_running(backend, capsys):
    sweep(backend, ["baseline", "zerocopy"], [4096, SIZE], kernel="numpy", options=QUICK, progress=True)
    err = capsys.readouterr().err
    for name in ("baseline", "zerocopy"):
        for size in ("4 KiB", "16 KiB"):
            assert f"{name} at {size}" in err, err
    assert "4/4" in err


def test_metadata_labels_a_host_run(backend):
    r = sweep(backend, ["baseline"], [SIZE], kernel="numpy", options=QUICK, progress=False, command="pimem x")
    m = r.meta
    assert m["backend"] == "emulator" and m["machine"]["is_pi"] is False
    assert "host run" in m["machine"]["description"]
    assert m["machine"]["cpu_model"].strip()
    assert m["machine"]["board"] is None and m["machine"]["firmware"] is None
    assert m["machine"]["gpu_mem_bytes"] == backend.mailbox.vc_memory().size
    assert m["kernel_choice"] == "numpy" and m["iterations"] == QUICK.iterations
    assert m["command"] == "pimem x" and m["skipped"] == []
    data.validate_frame(r.frame, m)


def test_sweep_rejects_bad_input(backend):
    with pytest.raises(UsageError, match="unknown benchmark 'nope'"):
        sweep(backend, ["nope"], [SIZE], progress=False)
    with pytest.raises(UsageError, match="no benchmark"):
        sweep(backend, [], [SIZE], progress=False)
    with pytest.raises(UsageError, match="-1"):
        sweep(backend, ["baseline"], [4096, -1], progress=False)


# --- sizes ------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("4096", 4096), ("64KiB", 64 * 1024), ("1MiB", 1 << 20), ("1.5MB", 1_500_000), ("2k", 2048),
    (" 3 mib ", 3 << 20), ("1GiB", 1 << 30), (512, 512)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


def test_parse_size_default_unit():
    assert parse_size("64", default_unit=1 << 20) == 64 << 20
    assert parse_size("64KiB", default_unit=1 << 20) == 64 << 10


@pytest.mark.parametrize("text,words", [("0", "positive"), ("-1", "negative"), ("x", "not a size"),
                                        ("1.5", "whole number"), ("4 parsecs", "not a size"), ("", "not a size")])
def test_parse_size_errors_name_the_value(text, words):
    with pytest.raises(UsageError) as e:
        parse_size(text)
    assert repr(text) in str(e.value) and words in str(e.value)


def test_cpu_caches_reads_sysfs(tmp_path):
    from pimem.bench.machine import cpu_caches

    for i, (level, kind, size) in enumerate([(1, "Data", "32K"), (1, "Instruction", "32K"), (2, "Unified", "512K")]):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    (tmp_path / "index9").mkdir()   # unreadable entries are skipped
    assert cpu_caches(str(tmp_path)) == [{"level": 1, "type": "Data", "bytes": 32768},
                                         {"level": 1, "type": "Instruction", "bytes": 32768},
                                         {"level": 2, "type": "Unified", "bytes": 524288}]
    assert cpu_caches(str(tmp_path / "none")) == []
