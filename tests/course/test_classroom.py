"""A class's results: record --label, load_class on a messy folder, the summary, the figure, the example, the notebook."""
from __future__ import annotations

import copy
import csv
import json
import math
import shutil
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pimem.course import classroom
from pimem.bench import data
from pimem.cli import main
from pimem.exc import DataError, UsageError

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
EXAMPLE = DATA / "class-example"
NOTEBOOK = REPO / "notebooks" / "labs" / "class-results.ipynb"
KiB, MiB = 1 << 10, 1 << 20


# --- building recordings (test data only) ------------------------------------------

def row(benchmark: str, phase: str, size: int, seconds: float, sample: int, *, kernel: str = "c-loop",
        verified: str = "pass") -> dict[str, Any]:
    ok = verified != "fail"
    return {"benchmark": benchmark, "phase": phase, "size_bytes": size, "statistic": "sample", "sample": sample,
            "seconds": seconds, "bytes": size, "bus_bytes": data.BUS_FACTOR[phase] * size,
            "gb_per_s": size / seconds / 1e9 if ok else math.nan,
            "gib_per_s": size / seconds / 2 ** 30 if ok else math.nan,
            "reps": 10, "overhead_bound": False, "verified": verified, "kernel": kernel, "flags": "", "alias": ""}


def frame(seconds: dict[tuple[str, str, int], list[float]], **kw: Any) -> pd.DataFrame:
    rows = [row(b, p, n, s, i, **kw) for (b, p, n), times in seconds.items() for i, s in enumerate(times)]
    return pd.DataFrame(rows, columns=list(data.COLUMNS))


def meta(*, pi: bool = True, label: str | None = None, created: str = "2026-12-03T09:00:00+00:00") -> dict[str, Any]:
    m: dict[str, Any] = {
        "schema": data.SCHEMA, "title": "a test run",
        "source": {"kind": "measured", "reference": "", "url": "", "notes": ""},
        "machine": {"is_pi": False, "description": "host run: a test machine with the emulator backend",
                    "board": None, "revision": None, "cpu_model": "Intel(R) Xeon(R) CPU", "arch": "x86_64",
                    "kernel": "6.1.0"},
        "software": {"python": "3.11.7", "numpy": "2.0.0", "pimem": "0.1.0"},
        "backend": "emulator", "kernel_choice": "c-loop", "created": created,
        "command": "pimem record", "statistic_note": "each sample one timed region",
    }
    if pi:
        m["machine"].update(is_pi=True, description="Raspberry Pi 3 Model B Rev 1.2", board="Raspberry Pi 3B",
                            revision="a02082", cpu_model="Cortex-A53", arch="aarch64")
        m["backend"] = "pi"
    if label is not None:
        m["label"] = label
    return m


ALICE = {("baseline", "fill", 4 * KiB): [1.0e-6, 1.1e-6, 0.9e-6], ("baseline", "fill", MiB): [1.0e-3, 1.2e-3],
         ("read-host", "read", MiB): [0.8e-3, 0.9e-3, 1.0e-3]}
BOB = {("baseline", "fill", 4 * KiB): [2.0e-6, 2.5e-6], ("baseline", "fill", MiB): [1.5e-3, 1.4e-3, 1.6e-3]}
CAROL = {("baseline", "fill", MiB): [0.7e-3, 0.75e-3], ("read-host", "read", MiB): [2.0e-3]}
DAN = {("baseline", "fill", MiB): [0.05e-3, 0.06e-3]}   # a fast PC


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    """A folder as a teacher collects it: four good recordings, and every kind of bad or duplicate file."""
    folder = tmp_path / "class"
    data.save_recording(frame(ALICE), meta(label="alice"), folder, "pi-2026-12-03-c-loop-alice")
    data.save_recording(frame(BOB), meta(label="bob", created="2026-12-03T09:05:00+00:00"), folder / "bob",
                        "pi-2026-12-03-c-loop")
    data.save_recording(frame(CAROL), meta(created="2026-12-03T09:07:00+00:00"), folder, "carol-run")  # no label
    data.save_recording(frame(DAN), meta(pi=False, label="dan"), folder, "host-2026-12-03-c-loop-dan")
    a = folder / "pi-2026-12-03-c-loop-alice"
    # duplicates: alice's files copied again; alice's run re-saved with one number edited
    for ext in (".csv", ".json"):
        shutil.copyfile(a.with_suffix(ext), folder / f"pi-2026-12-03-c-loop-alice-copy{ext}")
    edited = frame(ALICE)
    edited.loc[0, ["seconds", "gb_per_s", "gib_per_s"]] = [2e-6, 4096 / 2e-6 / 1e9, 4096 / 2e-6 / 2 ** 30]
    data.save_recording(edited, meta(label="alice"), folder, "zz-alice-again")
    # bad: a schema error, broken JSON, a CSV without sidecar, a sidecar without CSV, a wrong extension
    text = a.with_suffix(".csv").read_text().splitlines()
    text[1] = text[1].replace("baseline", "fastest", 1)
    (folder / "broken.csv").write_text("\n".join(text) + "\n")
    shutil.copyfile(a.with_suffix(".json"), folder / "broken.json")
    shutil.copyfile(a.with_suffix(".csv"), folder / "badjson.csv")
    (folder / "badjson.json").write_text('{"schema": "pimem-recording/1", "title": ')
    shutil.copyfile(a.with_suffix(".csv"), folder / "lonely.csv")
    shutil.copyfile(a.with_suffix(".json"), folder / "orphan.json")
    (folder / "results.xlsx").write_bytes(b"PK\x03\x04 not really a spreadsheet")
    # passed over in silence: the folder's README, hidden files and folders
    (folder / "README.md").write_text("my class\n")
    (folder / ".DS_Store").write_bytes(b"\0\0")
    (folder / ".ipynb_checkpoints").mkdir()
    shutil.copyfile(a.with_suffix(".csv"), folder / ".ipynb_checkpoints" / "x.csv")
    return folder


# --- labels --------------------------------------------------------------------------

@pytest.mark.parametrize("text, slug", [("alice", "alice"), ("  Bob  ", "Bob"), ("Zoë B.", "Zoe-B"),
                                        ("pi 07 / row 3", "pi-07-row-3"), ("a.csv", "a-csv"),
                                        ("..x..", "x"), ("under_score", "under_score")])
def test_labels_are_stripped_and_slugs_fit_the_name_pattern(text: str, slug: str) -> None:
    label = classroom.check_label(text)
    assert label == text.strip()
    assert classroom.label_slug(label) == slug
    assert data.NAME_RE.match(f"pi-2026-12-03-c-loop-{slug}")


def test_a_label_in_another_script_still_gets_a_distinct_name() -> None:
    a, b = classroom.label_slug("李明"), classroom.label_slug("王芳")
    assert a != b and a.startswith("label-") and data.NAME_RE.match(a)


@pytest.mark.parametrize("bad, words", [("", "empty"), ("   ", "empty"), ("a\tb", "cannot be printed"),
                                        ("a\nb", "cannot be printed"), ("x" * 41, "at most 40"), (7, "not text")])
def test_bad_labels_are_refused_naming_the_value(bad: Any, words: str) -> None:
    with pytest.raises(UsageError) as info:
        classroom.check_label(bad, option="--label")
    msg = str(info.value)
    assert msg.startswith("--label ") and words in msg and "\n" not in msg
    assert repr(bad)[:20] in msg


@pytest.mark.parametrize("label, ok", [(None, True), ("alice", True), ("Zoë", True), ("", False),
                                       (" alice", False), ("a\x07", False), (["alice"], False), ("x" * 41, False)])
def test_the_sidecar_label_is_checked(tmp_path: Path, label: Any, ok: bool) -> None:
    m = meta()
    m["label"] = label
    if ok:
        path = data.save_recording(frame(BOB), m, tmp_path, "r")
        assert data.load_recording(path).meta["label"] == label
        return
    with pytest.raises(DataError, match="field 'label'"):
        data.validate_frame(frame(BOB), m)
    # a hand-edited sidecar is reported by check-data too
    path = data.save_recording(frame(BOB), meta(), tmp_path, "r")
    side = json.loads(path.with_suffix(".json").read_text())
    side["label"] = label
    path.with_suffix(".json").write_text(json.dumps(side))
    assert any("field 'label'" in p for p in data.check_data_dir(tmp_path))


# --- pimem record --label ----------------------------------------------------------------

def _record(capsys, directory: Path, *more: str) -> tuple[int, str, str]:
    try:
        code = main(["record", "--sizes", "4KiB", "--benchmarks", "baseline", "--no-progress", "--iterations", "2",
                     "--warmup", "0", "--dir", str(directory), *more])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_record_label_goes_into_the_sidecar_and_the_default_name(capsys, tmp_path: Path) -> None:
    code, out, err = _record(capsys, tmp_path, "--label", " Zoë B. ")
    assert code == 0, err
    (rec,) = data.list_recordings(tmp_path)
    assert rec.meta["label"] == "Zoë B."
    day, kernel = rec.meta["created"][:10], rec.meta["kernel_choice"]
    assert rec.name == f"host-{day}-{kernel}-Zoe-B" and str(rec.path) in out
    assert data.check_data_dir(tmp_path) == []
    assert classroom.load_class(tmp_path).boards == ["Zoë B."]


def test_record_label_with_a_name_keeps_the_name(capsys, tmp_path: Path) -> None:
    code, _, err = _record(capsys, tmp_path, "--name", "t", "--label", "alice")
    assert code == 0, err
    assert data.load_recording(tmp_path / "t.csv").meta["label"] == "alice"


def test_record_without_label_has_no_label(capsys, tmp_path: Path) -> None:
    assert _record(capsys, tmp_path, "--name", "t")[0] == 0
    assert "label" not in data.load_recording(tmp_path / "t.csv").meta


@pytest.mark.parametrize("bad, words", [("", "empty"), ("a\tb", "cannot be printed"), ("y" * 50, "at most 40")])
def test_record_refuses_a_bad_label_before_measuring(capsys, tmp_path: Path, bad: str, words: str) -> None:
    code, out, err = _record(capsys, tmp_path, "--label", bad)
    assert code == 2 and out == ""
    assert err.startswith("pimem record: --label ") and words in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())


# --- load_class ------------------------------------------------------------------------------

def test_good_files_load_and_bad_ones_are_skipped_with_their_name(messy: Path) -> None:
    r = classroom.load_class(messy)
    assert r.boards == ["alice", "bob", "carol-run", "dan"]     # carol: no label, so the file's name
    assert sorted(r.recordings) == ["bob/pi-2026-12-03-c-loop", "carol-run", "host-2026-12-03-c-loop-dan",
                                    "pi-2026-12-03-c-loop-alice"]
    assert list(r.frame.columns[:4]) == ["board", "runs_on", "recording", "provenance"]
    assert list(r.frame.columns[4:]) == list(data.COLUMNS)
    assert set(r.frame.loc[r.frame.board == "dan", "runs_on"]) == {classroom.HOST}
    assert set(r.frame.loc[r.frame.board != "dan", "runs_on"]) == {classroom.PI}
    assert r.host_boards() == ["dan"]
    assert len(r.frame) == sum(len(v) for d in (ALICE, BOB, CAROL, DAN) for v in d.values())

    by_file = {p.split(":", 1)[0]: p for p in r.problems}
    assert set(by_file) == {"broken.csv", "badjson.csv", "lonely.csv", "orphan.json", "results.xlsx",
                            "pi-2026-12-03-c-loop-alice-copy.csv", "zz-alice-again.csv"}, r.problems
    assert all("\n" not in p and "skipped" in p for p in r.problems)
    assert "'fastest' is not a benchmark" in by_file["broken.csv"] and "check-data" in by_file["broken.csv"]
    assert "not valid JSON" in by_file["badjson.csv"]
    assert "lonely.json is missing" in by_file["lonely.csv"] and "copy lonely.json" in by_file["lonely.csv"]
    assert "without its orphan.csv" in by_file["orphan.json"]
    assert "not a recording (a .xlsx file)" in by_file["results.xlsx"]
    assert "same measurements as pi-2026-12-03-c-loop-alice.csv" in by_file["pi-2026-12-03-c-loop-alice-copy.csv"]
    assert "same label 'alice' and recording time" in by_file["zz-alice-again.csv"]
    assert not any(p.startswith(str(messy)) for p in r.problems)    # files named by their place in the folder
    assert f"check-data --dir {messy}" in by_file["broken.csv"]         # a command that can be run as it is
    assert [p.split(":", 1)[0] for p in r.problems] == [                # in the folder's order
        "badjson.csv", "broken.csv", "lonely.csv", "orphan.json", "pi-2026-12-03-c-loop-alice-copy.csv",
        "results.xlsx", "zz-alice-again.csv"]
    report = r.report()
    assert "loaded 4 recordings from 4 boards" in report and "skipped 7 files" in report
    assert "host runs, not Raspberry Pis" in report and "dan" in report
    for p in r.problems:
        assert p in report
    assert "README" not in report and "DS_Store" not in report and "checkpoints" not in report


def test_one_board_in_two_recordings_is_pooled_with_a_note(tmp_path: Path) -> None:
    data.save_recording(frame(ALICE), meta(label="alice"), tmp_path, "a1")
    data.save_recording(frame(BOB), meta(label="alice", created="2026-12-04T09:00:00+00:00"), tmp_path, "a2")
    r = classroom.load_class(tmp_path)
    assert r.boards == ["alice"] and r.problems == [] and len(r.recordings) == 2
    assert any("'alice' has 2 recordings" in n for n in r.notes)
    s = classroom.summary(r)
    assert (s["boards"] == 1).all()


def test_empty_missing_and_all_bad_folders_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such folder"):
        classroom.load_class(tmp_path / "nope")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        classroom.load_class(tmp_path / "f.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README.md").write_text("nothing yet")
    with pytest.raises(DataError, match="no recordings in this folder"):
        classroom.load_class(empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.csv").write_text("benchmark\n")
    with pytest.raises(DataError) as info:
        classroom.load_class(bad)
    assert "no recording could be loaded" in str(info.value) and "x.csv" in str(info.value)


def _expected_summary(folder: Path, files: dict[str, str]) -> dict[tuple[str, str, int], tuple[float, float, float, int]]:
    """From the CSV text alone: per board, the median of its samples; then the class's median, min, max, count."""
    per_board: dict[tuple[str, str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for name, board in files.items():
        with open(folder / f"{name}.csv", newline="") as f:
            for rec in csv.DictReader(f):
                assert rec["unit"] == "s"   # a measured run stores seconds
                if rec["verified"] != "fail" and rec["phase"] != "latency":
                    per_board[(rec["benchmark"], rec["phase"], int(rec["size_bytes"]))][board].append(
                        int(rec["size_bytes"]) / float(rec["value"]) / 1e9)
    out = {}
    for key, boards in per_board.items():
        meds = [statistics.median(v) for v in boards.values()]
        out[key] = (statistics.median(meds), min(meds), max(meds), len(meds))
    return out


def test_summary_numbers_match_the_csv_rows(messy: Path) -> None:
    s = classroom.summary(classroom.load_class(messy))
    pi = s[s["runs_on"] == classroom.PI]
    want = _expected_summary(messy, {"pi-2026-12-03-c-loop-alice": "alice", "bob/pi-2026-12-03-c-loop": "bob",
                                     "carol-run": "carol"})
    got = {(b, p, n): (m, lo, hi, c) for b, p, n, m, lo, hi, c in
           zip(pi.benchmark, pi.phase, pi.size_bytes, pi.median_gb_per_s, pi.min_gb_per_s, pi.max_gb_per_s, pi.boards)}
    assert set(got) == set(want)
    for key in want:
        assert got[key][:3] == pytest.approx(want[key][:3], rel=1e-12), key
        assert got[key][3] == want[key][3], key
    assert want[("baseline", "fill", MiB)][3] == 3 and want[("baseline", "fill", 4 * KiB)][3] == 2
    # The host run is its own group, never pooled with the Pis.
    host = s[s["runs_on"] == classroom.HOST]
    assert list(host["boards"]) == [1]
    dan = _expected_summary(messy, {"host-2026-12-03-c-loop-dan": "dan"})[("baseline", "fill", MiB)]
    assert host["median_gb_per_s"].iloc[0] == pytest.approx(dan[0])
    assert list(s.columns) == ["runs_on", "benchmark", "phase", "size_bytes", "size", "median_gb_per_s",
                               "min_gb_per_s", "max_gb_per_s", "boards", "kernels"]
    assert list(pi.benchmark) == ["baseline", "baseline", "read-host"]   # schema order, then size


def test_failed_and_latency_rows_have_no_bandwidth_in_the_summary(tmp_path: Path) -> None:
    f = frame(BOB)
    f.loc[0, ["verified", "gb_per_s", "gib_per_s"]] = ["fail", math.nan, math.nan]
    data.save_recording(f, meta(label="bob"), tmp_path, "b")
    m = classroom.board_medians(classroom.load_class(tmp_path))
    small = m[m["size_bytes"] == 4 * KiB]
    assert small["samples"].tolist() == [1] and small["gb_per_s"].iloc[0] == pytest.approx(4096 / 2.5e-6 / 1e9)


# --- the figure -----------------------------------------------------------------------

def _gids(fig) -> list[str]:
    return [a.get_gid() for ax in fig.axes for a in ax.get_children() if a.get_gid()]


def _legend(fig) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def test_class_spread_on_the_example_labels_host_runs(messy: Path) -> None:
    from pimem.course import plots

    r = classroom.load_class()
    fig = classroom.class_spread(r)
    gids = _gids(fig)
    panels = {(b, p) for b, p in zip(r.frame.benchmark, r.frame.phase)}
    assert len([ax for ax in fig.axes if ax.get_visible()]) == len(panels) == 7
    for board in ("board-a", "board-b", "board-c"):
        assert f"board:{board}:baseline:fill" in gids
    assert "spread:host run:baseline:fill" in gids and not any(g.startswith("spread:Raspberry Pi") for g in gids)
    assert {g.split(":")[1] for g in gids if g.startswith("published:")} >= {"original-lesson-pi3b",
                                                                              "tinymembench-pi3b", "qmkl-pi3"}
    legend = _legend(fig)
    for board in ("board-a", "board-b", "board-c"):
        assert any(t.startswith(board) and "host run, not a Pi" in t for t in legend), legend
    assert any("host runs, not Pis" in t for t in legend)
    assert "host run" in fig._suptitle.get_text()
    footer = plots.footer_text(fig)
    for rec in r.recordings.values():
        assert rec.provenance() in footer
    assert "Raspberry Pi 3B, published: original lesson" in footer


def test_class_spread_options_and_refusals(messy: Path) -> None:
    from pimem.course import plots

    r = classroom.load_class(messy)
    fig = classroom.class_spread(r, published=False, benchmarks=["baseline"])
    gids = _gids(fig)
    assert not any(g.startswith("published:") for g in gids)
    assert "spread:Raspberry Pi:baseline:fill" in gids and "board:dan:baseline:fill" in gids
    assert not any(g.startswith("spread:host run") for g in gids)   # one host board: no band to draw
    assert any(t.startswith("dan") and "host run, not a Pi" in t for t in _legend(fig))
    assert not any(t.startswith("alice") and "host" in t for t in _legend(fig))
    with pytest.raises(UsageError, match="nope"):
        classroom.class_spread(r, benchmarks=["nope"])
    host = data.load_all()
    host = host[host["recording"] == "host-2026-12-02-libc"]
    with pytest.raises(UsageError, match="host run"):
        classroom.class_spread(r, published=host)
    if callable(getattr(plots, "benchmark_style", None)):
        line = next(a for ax in fig.axes for a in ax.get_lines() if a.get_gid() == "board:alice:baseline:fill")
        assert line.get_color() == plots.benchmark_style("baseline")[0]


# --- the example class folder ----------------------------------------------------------------

def test_the_shipped_example_is_what_make_example_class_makes(tmp_path: Path) -> None:
    written = classroom.make_example_class(tmp_path / "ex")
    made = {p.name: p.read_bytes() for p in (tmp_path / "ex").iterdir()}
    shipped = {p.name: p.read_bytes() for p in EXAMPLE.iterdir() if p.name != "README.md"}
    assert sorted(made) == sorted(shipped) == sorted(p.name for p in written)
    for name in made:
        assert made[name] == shipped[name], f"data/class-example/{name} differs: run make_example_class()"
    # Running it again over its own output gives the same files (it replaces, never adds -2).
    classroom.make_example_class(tmp_path / "ex")
    assert {p.name: p.read_bytes() for p in (tmp_path / "ex").iterdir()} == made


def test_the_example_copies_shipped_rows_only() -> None:
    for name, label in classroom.EXAMPLE_BOARDS:
        ex = data.load_recording(EXAMPLE / f"{name}-{label}.csv")
        orig = data.load_recording(DATA / f"{name}.csv")
        keep = orig.frame[orig.frame.benchmark.isin(classroom.EXAMPLE_BENCHMARKS)].reset_index(drop=True)
        pd.testing.assert_frame_equal(ex.frame, keep)
        side = copy.deepcopy(ex.meta)
        assert side.pop("label") == label and "not a class's data" in side.pop("example")
        assert side == orig.meta and not ex.is_pi and "host run" in ex.provenance()
    readme = (EXAMPLE / "README.md").read_text()
    assert "not the data\nof any class" in readme or "not the data of any class" in readme.replace("\n", " ")
    assert "make_example_class" in readme and "host" in readme


def test_the_example_folder_does_not_disturb_check_data() -> None:
    assert data.check_data_dir(DATA) == []
    assert all(r.path.parent == DATA for r in data.list_recordings(DATA))
    r = classroom.load_class(classroom.example_folder())
    assert r.boards == ["board-a", "board-b", "board-c"] and len(r.problems) == 2


# --- the notebook ---------------------------------------------------------------------------

def test_the_notebook_has_the_shape_of_a_lab() -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# Class results")
    for part in ("What you will learn", "What you need", "Time."):
        assert part in first.source
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and params[0].source.startswith('MODE = "auto"') and "FOLDER = None" in params[0].source
    assert any("resolve_mode(MODE)" in c.source for c in nb.cells)
    assert nb.cells[-1].source.startswith("## Summary") and "try" in nb.cells[-1].source
    for c in nb.cells:
        assert "nbgrader" not in c.metadata and "BEGIN SOLUTION" not in c.source
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None
            assert len(c.source.splitlines()) <= 5, c.source


def test_the_notebook_runs_on_the_example_and_reports_the_skipped_files() -> None:
    pytest.importorskip("nbclient")
    from pimem.course import render

    nb = render.execute_notebook(NOTEBOOK, timeout=120)
    texts = [o.get("text", "") + o.get("data", {}).get("text/plain", "")
             for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "\n".join(texts)
    assert "skipped 2 files" in text
    assert "host-2026-12-02-numpy-board-d.csv: its sidecar host-2026-12-02-numpy-board-d.json is missing" in text
    assert "host-2026-12-02-libc-board-a-copy.csv: the same measurements as" in text
    assert "host runs, not Raspberry Pis" in text
    pngs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 1
    assert not any(o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
