"""The measuring commands: bench, sweep, record (and check-data on what record leaves)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pimem.bench import data
from pimem.bench.benchmarks import BENCHMARKS
from pimem.cli import main
from pimem.bench.kernels import KERNELS
from pimem.bench.report import BENCH_SET, LATENCY_SET

LATENCY = LATENCY_SET if "c-loop" in KERNELS else ()   # latency needs the compiled core

QUICK = ("--iterations", "2", "--warmup", "0")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:          # argparse's own errors exit from parse_args
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def _env(emu_dir) -> dict:
    return dict(os.environ, PIMEM_BACKEND="emulator", PIMEM_EMULATOR_DIR=str(emu_dir))


# --- bench: the report ------------------------------------------------------------

@pytest.fixture(scope="module")
def bench_text(tmp_path_factory):
    emu = tmp_path_factory.mktemp("bench-firmware")
    p = subprocess.run([sys.executable, "-m", "pimem", "bench", "1"], env=_env(emu),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    return p.stdout


def _section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def test_bench_every_row_passes(bench_text):
    rows = _section(bench_text, "Results")[1:]       # after the column header
    assert len(rows) == sum(len(BENCHMARKS[b].phases) for b in BENCH_SET)
    for row in rows:
        assert re.search(r"  PASS( \(overhead-bound\))?$", row), row


def test_bench_units_are_both_labelled_and_consistent(bench_text):
    assert "GB/s = 10^9 bytes/s" in bench_text and "GiB/s = 2^30 bytes/s" in bench_text
    header, *rows = _section(bench_text, "Results")
    assert re.search(r"\bGB/s\b", header) and "GiB/s" in header
    for row in rows:
        nums = row.split()
        gb, gib = float(nums[-4]), float(nums[-3])
        assert gb / gib == pytest.approx(2**30 / 1e9, rel=0.01), row   # GB and GiB not swapped


def test_bench_alias_table(bench_text):
    table = _section(bench_text, "Bus address aliases (bits 31..30 of a bus address)")
    for alias, base in (("0x0", 0), ("0x4", 0x40000000), ("0x8", 0x80000000), ("0xC", 0xC0000000)):
        assert any(l.split()[:2] == [alias, f"0x{base:08X}"] for l in table), table
    assert "BCM2835 manual" in table[0] and "firmware" in table[0]


def test_bench_prints_the_alias_the_bus_address_has(bench_text):
    used = _section(bench_text, "GPU buffers used")
    seen = {}
    for line in used:
        m = re.search(r"^\s+(\S+)\s+flags (\S+)\s+bus 0x([0-9A-F]{8}) -> alias (0x[0-9A-F])\b", line)
        assert m, line
        bus = int(m.group(3), 16)
        assert m.group(4) == f"0x{((bus >> 30) & 3) << 2:X}", line
        seen[m.group(1)] = (m.group(2), m.group(4))
    # The original lesson printed 0x3 for a DIRECT buffer: bits 31..30 unshifted.
    assert seen["zerocopy"] == ("DIRECT|ZERO", "0xC") and seen["read-direct"][1] == "0xC"
    assert not re.search(r"alias 0x3\b", bench_text)


def test_bench_analysis_and_host_note(bench_text):
    # Off a Pi: what a host run shows (the copy), and what it cannot (uncached GPU memory), not emulator noise.
    analysis = _section(bench_text, "Analysis")
    for start in ("Zero-copy is", "The copy is", "What a host run cannot show"):
        assert any(l.strip().startswith(start) for l in analysis), (start, analysis)
    for start in ("Writing the DIRECT buffer", "Reading the DIRECT buffer"):
        assert not any(l.strip().startswith(start) for l in analysis), (start, analysis)
    assert "% of the standard total" in bench_text
    assert "host run" in bench_text and "not of a Raspberry Pi" in bench_text


def test_bench_json_has_the_same_structure(emu_dir, bench_text):
    p = subprocess.run([sys.executable, "-m", "pimem", "bench", "1", "--json", *QUICK], env=_env(emu_dir),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["size_bytes"] == 1 << 20 and d["host_run"] is True and d["iterations"] == 2
    assert [(r["benchmark"], r["phase"]) for r in d["results"]] == [
        (b, ph) for b in BENCH_SET + LATENCY for ph in BENCHMARKS[b].phases]
    latency = [r for r in d["results"] if r["phase"] == "latency"]
    assert len(d["results"]) - len(latency) == len(_section(bench_text, "Results")) - 1
    for r in latency:       # one line per kind of buffer, in ns, with the extra over an L1 hit
        assert r["status"] == "PASS" and r["gb_per_s"] is None and 0 < r["l1_seconds"] and 0 < r["seconds"]
        assert re.search(rf"^  {r['benchmark']} +[0-9.]+ ns per access; an L1 hit takes", bench_text, re.M)
    for r in (r for r in d["results"] if r["phase"] != "latency"):
        assert r["status"] == "PASS"
        assert r["gb_per_s"] / r["gib_per_s"] == pytest.approx(2**30 / 1e9)
        assert len(r["samples_s"]) == 2
        if r["bus"] is not None:
            assert r["alias"] == f"0x{(int(r['bus'], 16) >> 30) << 2:X}"
    assert next(r for r in d["results"] if r["benchmark"] == "zerocopy")["alias"] == "0xC"
    assert set(d["analysis"]) >= {"zerocopy_speedup_over_standard", "copy_share_of_standard",
                                  "direct_write_vs_cached_fill", "uncached_read_slowdown"}
    assert all(v is not None for v in d["analysis"].values())


# --- bad arguments: one line, status 2, no traceback ---------------------------------------

BAD = [
    (("bench", "0"), "'0'"),
    (("bench", "--", "-1"), "'-1'"),
    (("bench", "x"), "'x'"),
    (("bench", "1000"), "GPU heap (56 MiB"),
    (("bench", "1", "--iterations", "0"), "--iterations"),
    (("bench", "1", "--iterations", "-1"), "--iterations"),
    (("bench", "1", "--iterations", "x"), "'x'"),
    (("bench", "1", "--warmup", "-1"), "--warmup"),
]
for cmd in ("sweep", "record"):
    BAD += [
        ((cmd, "--sizes", "0"), "'0'"),
        ((cmd, "--sizes", "4KiB", "-1"), "'-1'"),
        ((cmd, "--sizes", "x"), "'x'"),
        ((cmd, "--sizes", "1GiB"), "GPU heap (56 MiB of gpu_mem"),
        ((cmd, "--sizes", "1GiB", "--benchmarks", "zerocopy"), "GPU heap (56 MiB of gpu_mem"),
        ((cmd, "--benchmarks", "fastest"), "'fastest'"),
        ((cmd, "--benchmarks", "baseline,nope"), "'nope'"),
        ((cmd, "--sizes", "4KiB", "--iterations", "0"), "--iterations"),
        ((cmd, "--sizes", "4KiB", "--iterations", "-1"), "--iterations"),
        ((cmd, "--sizes", "4KiB", "--iterations", "x"), "'x'"),
    ]
BAD += [(("record", "--sizes", "4KiB", "--name", "../escape"), "'../escape'")]


@pytest.mark.parametrize("argv,names", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_argument_is_one_clear_line(capsys, tmp_path, argv, names):
    extra = ("--dir", str(tmp_path)) if argv[0] == "record" else ()
    code, out, err = run(capsys, *argv, *extra)
    assert code == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert names in err and err.startswith(f"pimem {argv[0]}"), err
    assert out == ""
    assert not list(tmp_path.iterdir())          # record wrote nothing


def test_host_only_sweep_may_exceed_gpu_memory(capsys, backend):
    big = backend.mailbox.vc_memory().size + (1 << 20)
    code, out, err = run(capsys, "sweep", "--sizes", str(big), "--benchmarks", "baseline", "--no-progress",
                         "--iterations", "1", "--warmup", "0", "--json")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert {r["size_bytes"] for r in rows} == {big}


def test_sweep_text_and_json(capsys):
    code, out, err = run(capsys, "sweep", "--sizes", "4KiB", "64KiB", "--benchmarks", "baseline,zerocopy",
                         "--no-progress", *QUICK)
    assert code == 0 and err == "" and "PASS" in out and "FAIL" not in out
    code, out, err = run(capsys, "sweep", "--sizes", "4KiB", "--benchmarks", "standard", "--json", *QUICK)
    d = json.loads(out)
    assert code == 0 and d["meta"]["machine"]["is_pi"] is False and d["notes"] == []
    assert {r["phase"] for r in d["rows"]} == {"fill", "copy", "total"} and len(d["rows"]) == 6


# --- record ------------------------------------------------------------------------

def _record(capsys, directory, name="t", *more):
    return run(capsys, "record", "--sizes", "4KiB", "--benchmarks", "baseline", "standard", "--no-progress",
               "--name", name, "--dir", str(directory), *QUICK, *more)


def test_record_writes_a_loadable_recording(capsys, tmp_path):
    code, out, err = _record(capsys, tmp_path)
    assert code == 0, err
    assert str(tmp_path / "t.csv") in out and "t.json" in out
    rec = data.load_recording(tmp_path / "t.csv")
    assert rec.meta["backend"] == "emulator" and rec.is_pi is False and rec.meta["skipped"] == []
    assert "host run" in rec.provenance()
    assert set(zip(rec.frame["benchmark"], rec.frame["phase"])) == {
        ("baseline", "fill"), ("standard", "fill"), ("standard", "copy"), ("standard", "total")}
    assert len(rec.frame) == 4 * 2 and set(rec.frame["verified"]) == {"pass"}
    assert data.check_data_dir(tmp_path) == []


def test_record_saves_in_the_users_folder_never_the_course(capsys, tmp_path, monkeypatch):
    # README's `pimem record`, as written: into my-data/ (here the test's own), made private, never data/.
    mine = tmp_path / "my-data"
    monkeypatch.setenv("PIMEM_USER_DATA_DIR", str(mine))
    course = {p.name for p in data.data_dir().iterdir()}
    code, out, err = run(capsys, "record", "--sizes", "4KiB", "--benchmarks", "baseline", *QUICK, "--no-progress")
    assert code == 0, err
    saved = [p for p in mine.iterdir() if p.suffix == ".csv"]
    assert len(saved) == 1 and str(saved[0]) in out and saved[0].name.startswith("host-")
    assert (mine.stat().st_mode & 0o777) == 0o700
    assert {p.name for p in data.data_dir().iterdir()} == course
    # What the notebooks read: the course's recordings, then this one, marked as the user's.
    everything = data.load_all()
    assert everything[everything["mine"]]["recording"].unique().tolist() == [saved[0].stem]


def test_record_contribute_saves_into_the_course_data(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PIMEM_DATA_DIR", str(tmp_path / "course-data"))
    (tmp_path / "course-data").mkdir()
    code, out, err = run(capsys, "record", "--contribute", "--name", "pi-run", "--sizes", "4KiB",
                         "--benchmarks", "baseline", *QUICK, "--no-progress")
    assert code == 0, err
    assert (tmp_path / "course-data" / "pi-run.csv").exists() and "data/README.md" in out
    code, out, err = run(capsys, "record", "--contribute", "--dir", str(tmp_path), "--sizes", "4KiB")
    assert code == 2 and "--contribute" in err and "--dir" in err


def test_reset_emulator_takes_gpu_mem_and_bench_64_then_fits(capsys, emu_dir):
    # README's way to run the original lesson's 64 MiB off a Pi: the emulator with its gpu_mem=128.
    code, out, err = run(capsys, "bench", "64", *QUICK)
    assert code == 2 and "cleanup --reset-emulator --gpu-mem 128" in err and "config.txt" not in err.split("(")[0]
    code, out, err = run(capsys, "cleanup", "--reset-emulator", "--gpu-mem", "128")
    assert code == 0 and "gpu_mem=128 MiB" in out and "108 MiB" in out
    code, out, err = run(capsys, "bench", "64", *QUICK)
    assert code == 0, err
    code, out, err = run(capsys, "cleanup", "--gpu-mem", "128")
    assert code == 2 and "--reset-emulator" in err


def test_record_never_overwrites(capsys, tmp_path):
    assert _record(capsys, tmp_path)[0] == 0
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, out, err = _record(capsys, tmp_path)
    assert code == 0, err
    assert str(tmp_path / "t-2.csv") in out
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name in first} == first
    assert sorted(r.name for r in data.list_recordings(tmp_path)) == ["t", "t-2"]


def test_skipped_points_are_kept_in_a_recording(tmp_path, backend):
    # What record does with the default sizes, which reach past the emulator's GPU memory.
    from pimem.bench.benchmarks import RunOptions
    from pimem.bench.sweep import sweep

    big = backend.mailbox.vc_memory().size + (1 << 20)
    r = sweep(backend, ["zerocopy"], [4096, big], kernel="numpy",
              options=RunOptions(iterations=1, warmup=0, reps=1), progress=False)
    path = data.save_recording(r.frame, r.meta, tmp_path, "skips")
    assert data.load_recording(path).meta["skipped"] == r.notes
    skipped, advice = r.notes
    assert skipped.startswith("zerocopy at 77 MiB skipped") and "GPU heap" in skipped
    # Once, for the largest skipped size: how to give the emulator a heap that holds it.
    assert advice.startswith("to go further:") and "cleanup --reset-emulator --gpu-mem 128" in advice


def test_record_with_nothing_measured_is_a_clear_error(capsys, tmp_path, monkeypatch):
    from pimem.bench import sweep as sweep_mod
    from pimem.exc import GpuMemoryExhausted

    def refuse(*a, **kw):
        raise GpuMemoryExhausted("no memory")
    monkeypatch.setattr(sweep_mod, "run_benchmark", refuse)
    code, out, err = _record(capsys, tmp_path)
    assert code == 2 and "nothing was measured" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


# A child that records, but stops (and is SIGKILLed) in the middle of saving.
_CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from pimem.bench import data

    stage, marker = sys.argv[1], Path(sys.argv[2])

    def stop_here():
        marker.write_text("stopped")
        time.sleep(120)

    from pimem import safefs
    real_write = data.save.write_file

    def write(path, text, **kw):
        if Path(path).suffix == ".csv":
            if stage == "csv-temp":   # half of the CSV in its temporary, then killed mid-write
                safefs.tmp_name(Path(path)).write_text(text[: len(text) // 2])
            stop_here()               # before-csv-name: the sidecar has its name, the CSV not yet
        return real_write(path, text, **kw)
    data.save.write_file = write

    from pimem.cli import main
    sys.exit(main(sys.argv[3:]))
""")


@pytest.mark.parametrize("stage", ["csv-temp", "before-csv-name"])
def test_sigkill_mid_record_leaves_earlier_recording_intact(capsys, tmp_path, emu_dir, stage):
    rec_dir = tmp_path / "data"
    assert _record(capsys, rec_dir)[0] == 0
    earlier = {p.name: p.read_bytes() for p in rec_dir.iterdir()}
    assert sorted(earlier) == ["t.csv", "t.json"]

    marker = tmp_path / "stopped"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, stage, str(marker), "record", "--sizes", "4KiB", "--benchmarks",
         "baseline", "--no-progress", "--name", "t", "--dir", str(rec_dir), *QUICK],
        env=_env(emu_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child never reached the save"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    # The earlier recording is byte for byte what it was, and the only one listed.
    assert {n: (rec_dir / n).read_bytes() for n in earlier} == earlier
    assert [r.name for r in data.list_recordings(rec_dir)] == ["t"]
    assert data.load_recording(rec_dir / "t.csv").frame is not None
    leftovers = sorted(p for p in rec_dir.iterdir() if p.name not in earlier)
    assert leftovers, "a killed save leaves something behind to report"
    problems = data.check_data_dir(rec_dir)
    for p in leftovers:
        # Temp files are hidden; a sidecar may have its name, but never a CSV.
        assert p.name.startswith(".") and p.name.endswith(".tmp") or p.suffix == ".json", p
        assert any(str(p) in problem for problem in problems), (p, problems)
    assert not any(problem.startswith(str(rec_dir / "t.")) for problem in problems), problems
    if stage == "csv-temp":
        assert any(".csv." in p.name and p.name.endswith(".tmp") for p in leftovers)
    else:
        assert (rec_dir / "t-2.json").exists() and not (rec_dir / "t-2.csv").exists()


def test_check_data_command_reports_leftover_temp_files(capsys, tmp_path):
    assert _record(capsys, tmp_path)[0] == 0
    code, out, _ = run(capsys, "check-data", "--dir", str(tmp_path))
    assert code == 0 and "every recording follows the schema" in out
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()          # the pid of a writer that is gone
    leftover = f".t.csv.{dead}-0123456789ab.tmp"
    (tmp_path / leftover).write_text("benchmark,pha")
    code, out, _ = run(capsys, "check-data", "--dir", str(tmp_path), "--json")
    d = json.loads(out)
    assert code == 1 and len(d["problems"]) == 1 and leftover in d["problems"][0]
    assert "--remove-leftovers" in d["problems"][0]
    code, out, _ = run(capsys, "check-data", "--dir", str(tmp_path), "--remove-leftovers")
    assert code == 0 and f"removed {tmp_path / leftover}" in out and not (tmp_path / leftover).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as sudo does")
def test_under_sudo_a_recording_and_its_folder_belong_to_the_user(capsys, monkeypatch):
    import shutil
    import tempfile

    nobody = 65534
    base = Path(tempfile.mkdtemp(prefix="pimem-sudo-"))
    try:
        os.chmod(base, 0o755)
        checkout = base / "checkout"
        checkout.mkdir()
        os.chown(checkout, nobody, nobody)
        monkeypatch.setenv("PIMEM_USER_DATA_DIR", str(checkout / "my-data"))
        monkeypatch.setenv("SUDO_UID", str(nobody))
        monkeypatch.setenv("SUDO_GID", str(nobody))
        code, out, err = run(capsys, "record", "--sizes", "4KiB", "--benchmarks", "baseline", *QUICK,
                             "--no-progress")
        assert code == 0, err
        made = [checkout / "my-data", *(checkout / "my-data").iterdir()]
        assert len(made) == 3 and {p.stat().st_uid for p in made} == {nobody}
        # A folder root made earlier (not the user's) is refused, never written into as root.
        root_made = checkout / "root-made"
        root_made.mkdir(mode=0o700)
        monkeypatch.setenv("PIMEM_USER_DATA_DIR", str(root_made))
        code, out, err = run(capsys, "record", "--sizes", "4KiB", "--benchmarks", "baseline", *QUICK,
                             "--no-progress")
        assert code == 2 and "belongs to uid 0" in err and list(root_made.iterdir()) == []
    finally:
        shutil.rmtree(base)


# --- run-kit: everything the course draws, in one folder ---------------------------------

def test_run_kit_records_the_sweep_and_both_mountains_and_checks_them(capsys, backend, tmp_path):
    code, out, err = run(capsys, "run-kit", "--quick", "--backend", "emulator", "--dir", str(tmp_path / "kit"),
                         "--name", "kit")
    assert code == 0, err
    r = data.load_recording(tmp_path / "kit" / "kit.csv")
    assert set(r.frame["benchmark"]) == {n for n, s in BENCHMARKS.items() if s.runnable
                                         and (s.phases != ("latency",) or "c-loop" in KERNELS)}
    assert set(r.meta["conditions"]) == {"before", "after", "warning"}
    assert sorted(p.name for p in (tmp_path / "kit" / "mountain").glob("*.csv")) == [
        "kit-mountain-direct.csv", "kit-mountain-host.csv"]
    assert "every recording follows the schema" in out and "Adding a run from your Pi" in out
    assert out.index("[1/3]") < out.index("[2/3]") < out.index("[3/3]")


def test_run_kit_refuses_a_bad_name_before_measuring(capsys, backend, tmp_path):
    code, out, err = run(capsys, "run-kit", "--quick", "--backend", "emulator", "--dir", str(tmp_path), "--name", "a/b")
    assert code != 0 and "--name" in err and not any(tmp_path.iterdir())
