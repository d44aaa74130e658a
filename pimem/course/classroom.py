"""A class's measurements together: the recordings a teacher collected from a room of Pis.

Each student runs ``pimem record --label NAME`` on their Pi, which writes a
recording (``NAME.csv`` and its sidecar ``NAME.json``, see data/README.md)
whose sidecar says whose board it was. The teacher copies those files into
one folder (subfolders, one per student, are fine) and:

    from pimem.course import classroom
    results = classroom.load_class("~/class-2026-12-03")
    print(results.report())             # what was loaded, and every file skipped and why
    classroom.summary(results)          # per benchmark and size: the class's median, min, max, boards
    classroom.class_spread(results)     # each board's curve, the class's spread, the published Pi figures

A collected folder is messy: files without their sidecar, a spreadsheet's
re-save, the same file copied twice. ``load_class`` never stops at one: it
skips each bad or duplicate file and says, in one line, which file, what is
wrong and what to do. Host runs (a PC, the emulator backend) are kept apart
from Raspberry Pis in every table and figure, and labelled as host runs.

``make_example_class`` builds data/class-example/, a small example folder
made from the shipped host recordings (relabelled, with one bad file and one
duplicate): an example of the machinery, never a class's data.
"""
from __future__ import annotations

import copy
import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..paths import pimem_command
from .. import safefs
from ..bench import data
from . import plots
from ..bench.data import Recording
from ..exc import DataError, PimemError, UsageError
from ..paths import DATA_DIR

#: How a board ran, the first key of every table: a Raspberry Pi or a host (never pooled).
PI, HOST = "Raspberry Pi", "host run"

#: The example class: (shipped host recording, the label it is given in the example).
EXAMPLE_BOARDS: tuple[tuple[str, str], ...] = (
    ("host-2026-12-02-libc", "board-a"),
    ("host-2026-12-02-numpy", "board-b"),
    ("host-2026-12-02-c-loop", "board-c"),
)
#: The rows the example keeps: pimem bench's set (the original lesson's three and the two reads).
EXAMPLE_BENCHMARKS: tuple[str, ...] = ("baseline", "standard", "zerocopy", "read-host", "read-direct")
_EXAMPLE_DUPLICATE = "host-2026-12-02-libc-board-a-copy"     # board-a's files copied a second time
_EXAMPLE_NO_SIDECAR = ("host-2026-12-02-numpy", "board-d")   # a CSV sent without its sidecar
_README_NAMES = ("readme",)   # README, README.md, README.txt: a folder's own notes, not recordings


# --- folders ----------------------------------------------------------------------

def example_folder() -> Path:
    """data/class-example/ in the repository (beside the pimem package; PIMEM_DATA_DIR does not move it)."""
    return DATA_DIR / "class-example"


def resolve_folder(folder: str | os.PathLike[str] | None = None) -> Path:
    """The folder to load: None is the example class, anything else a path (``~`` expanded)."""
    return example_folder() if folder is None else Path(folder).expanduser()


# --- labels -------------------------------------------------------------------------

def check_label(text: Any, *, option: str = "label") -> str:
    """A student's or board's name for ``pimem record --label``: stripped, or UsageError naming it."""
    value = text.strip() if isinstance(text, str) else text
    why = data.label_problem(value)
    if why:
        shown = repr(text) if len(repr(text)) <= 60 else repr(text)[:60] + "..."
        raise UsageError(f"{option} {shown}: {why}")
    return value


def label_slug(label: str) -> str:
    """The label as it goes into a recording's name: letters, digits, '_' and '-' (``Zoë B.`` -> ``Zoe-B``).

    Accents are dropped, every other character becomes '-'; a label with no Latin
    letter or digit at all (e.g. in another script) becomes ``label-`` and six hex
    digits of its hash, so that two such students still get different names.
    """
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9_]+", "-", ascii_text).strip("-_")
    if not slug:
        slug = "label-" + hashlib.sha256(label.encode("utf-8")).hexdigest()[:6]
    return slug


# --- loading a class --------------------------------------------------------------

@dataclass
class ClassResults:
    """The recordings of a class: one frame, and what was skipped.

    ``frame`` has the recording schema's columns (data/README.md) after four of its own:
    ``board`` (the sidecar's label, else the recording's name), ``runs_on`` ("Raspberry Pi"
    or "host run"), ``recording`` (the file's path in the folder, without .csv) and
    ``provenance`` (``Recording.provenance()``).
    """

    folder: Path
    frame: pd.DataFrame
    problems: list[str] = field(default_factory=list)     # one line per file skipped: file, what, what to do
    notes: list[str] = field(default_factory=list)        # worth knowing, nothing skipped
    recordings: dict[str, Recording] = field(default_factory=dict)   # by `recording`

    @property
    def boards(self) -> list[str]:
        return sorted(self.frame["board"].unique())

    def host_boards(self) -> list[str]:
        return sorted(self.frame.loc[self.frame["runs_on"] == HOST, "board"].unique())

    def report(self) -> str:
        """What was loaded and every file skipped, as lines to print."""
        n, b, host = len(self.recordings), len(self.boards), self.host_boards()
        lines = [f"{self.folder}: loaded {n} recording{'s' * (n != 1)} from {b} board{'s' * (b != 1)}: "
                 + ", ".join(self.boards)]
        if host:
            lines.append(f"host runs, not Raspberry Pis (kept apart from the Pis, and labelled so): {', '.join(host)}")
        if self.problems:
            lines.append(f"skipped {len(self.problems)} file{'s' * (len(self.problems) != 1)}:")
            lines += [f"  - {p}" for p in self.problems]
        else:
            lines.append("no file skipped")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()


def _sort_key(rel: Path) -> tuple[Any, ...]:
    # By folder, then stem: NAME comes before NAME-copy and NAME (1), so the original is the one kept.
    return (rel.parent.as_posix(), rel.stem, rel.suffix)


def _files(folder: Path) -> list[Path]:
    """Every file under folder (relative paths), hidden files and folders left out; symlinked folders not followed."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))   # .ipynb_checkpoints, .git, ...
        for name in files:
            if not name.startswith("."):                                 # .DS_Store, save_recording's temp files
                found.append((Path(root) / name).relative_to(folder))
    return sorted(found, key=_sort_key)


def _first_problem(error: DataError, path: Path) -> tuple[int, str]:
    """(how many problems, the first) of a recording's DataError, its file named without its folder."""
    first = error.problems[0] if error.problems else str(error)
    for p in (path, path.with_suffix(".json"), path.with_suffix(".csv")):
        first = first.replace(f"{p}, ", f"{p.name}, ").replace(f"{p}: ", f"{p.name}: ")
    return max(1, len(error.problems)), first


def _content_key(r: Recording) -> str:
    return hashlib.sha256(r.frame.to_csv(index=False).encode("utf-8")).hexdigest()


def _not_a_recording(rel: Path, present: set[Path]) -> str | None:
    """Why a file of the folder is skipped before it is read (None: a CSV with its sidecar, to load)."""
    suffix = rel.suffix.lower()
    if rel.suffix not in (".csv", ".json"):
        kind = f"a {suffix} file" if suffix else "a file without an extension"
        hint = " (.CSV: rename it to .csv, with its sidecar .json)" if suffix in (".csv", ".json") else ""
        return (f"{rel}: not a recording ({kind}){hint}; a recording is NAME.csv with its sidecar "
                "NAME.json from a student's data/; skipped: remove it or move it out of the folder")
    if rel.suffix == ".json":
        if rel.with_suffix(".csv") not in present:
            return (f"{rel}: a sidecar without its {rel.stem}.csv, so there are no numbers to load; "
                    f"skipped: copy {rel.stem}.csv from the student's data/ beside it")
        return ""   # read with its CSV
    if rel.with_suffix(".json") not in present:
        return (f"{rel}: its sidecar {rel.stem}.json is missing, so where its numbers came from is "
                f"unknown; skipped: copy {rel.stem}.json from the student's data/ beside it")
    return None


def _load_files(where: Path, problems: list[str]) -> list[tuple[Path, Recording]]:
    """Every recording of the folder that loads; a line in ``problems`` for each file that does not."""
    files = _files(where)
    present = set(files)
    loaded: list[tuple[Path, Recording]] = []
    for rel in files:
        if rel.name.split(".")[0].lower() in _README_NAMES:
            continue
        why = _not_a_recording(rel, present)
        if why is not None:
            problems += [why] if why else []
            continue
        path = where / rel
        try:
            loaded.append((rel, data.load_recording(path)))
        except DataError as e:
            count, first = _first_problem(e, path)
            more = f" ({count} problems; the first)" if count > 1 else ""
            problems.append(f"{rel}: does not follow the recording schema{more}: {first}; skipped: ask for a "
                            f"fresh copy of the student's file (pimem check-data --dir {where / rel.parent} "
                            "lists every problem)")
        except (PimemError, OSError, ValueError) as e:   # never fatal: one bad file is one line
            problems.append(f"{rel}: cannot be read ({type(e).__name__}: {e}); skipped: ask for a fresh copy")
    return loaded


def _without_duplicates(loaded: list[tuple[Path, Recording]],
                        problems: list[str]) -> dict[str, tuple[Path, Recording, str]]:
    """{name: (path, recording, board)}: the first of each set of copies, or of runs saved twice."""
    kept: dict[str, tuple[Path, Recording, str]] = {}
    by_content: dict[str, Path] = {}
    by_run: dict[tuple[str, str], Path] = {}
    for rel, r in loaded:
        label = r.meta.get("label")
        content = _content_key(r)
        run = (label, r.meta["created"]) if label else None
        if content in by_content:
            problems.append(f"{rel}: the same measurements as {by_content[content]} (a second copy); "
                            f"skipped: delete one of the two")
            continue
        if run is not None and run in by_run:
            problems.append(f"{rel}: the same label {label!r} and recording time {r.meta['created']} as "
                            f"{by_run[run]}, so the same run twice (saved again, or edited); skipped: keep one")
            continue
        by_content[content] = rel
        if run is not None:
            by_run[run] = rel
        name = rel.with_suffix("").as_posix()
        kept[name] = (rel, r, label or name)
    return kept


def _class_frame(kept: Mapping[str, tuple[Path, Recording, str]]) -> tuple[pd.DataFrame, list[str]]:
    """Every kept recording's rows with board, runs_on, recording and provenance first; and notes."""
    frames, notes = [], []
    boards: dict[str, list[str]] = {}
    for name, (_, r, board) in kept.items():
        f = r.frame.copy()
        about = {"board": board, "runs_on": PI if r.is_pi else HOST, "recording": name, "provenance": r.provenance()}
        for i, (column, value) in enumerate(about.items()):
            f.insert(i, column, value)
        frames.append(f)
        boards.setdefault(board, []).append(name)
    notes += [f"board {board!r} has {len(names)} recordings ({', '.join(names)}): their samples are pooled as "
              "one board" for board, names in boards.items() if len(names) > 1]
    notes += [f"board {board!r} has both Raspberry Pi and host recordings: they are kept apart"
              for board, names in boards.items() if len({kept[n][1].is_pi for n in names}) > 1]
    return pd.concat(frames, ignore_index=True), notes


def load_class(folder: str | os.PathLike[str] | None = None) -> ClassResults:
    """Load every recording in a folder a teacher collected; skip (and report) bad and duplicate files.

    ``folder``: the folder (searched with its subfolders), or None for the example class.
    Skipped, one line each in ``problems``: a file that is no recording (wrong extension),
    a CSV without its sidecar or a sidecar without its CSV, a recording that does not
    follow the schema (its first problem is quoted; ``pimem check-data --dir`` lists all),
    and a duplicate: the same measurements as a file already loaded, or the same label and
    recording time (the same run, edited or saved again). Of duplicates, the first in path
    order is kept. README files are the folder's own notes and are passed over.

    Raises DataError if the folder is missing or no recording in it can be loaded.
    """
    where = resolve_folder(folder)
    if not where.is_dir():
        what = "is a file, not a folder" if where.exists() else "no such folder"
        raise DataError(f"{where}: {what}; give the folder you copied the students' recordings into "
                        "(each NAME.csv with its NAME.json), or None for the example class")
    problems: list[str] = []
    kept = _without_duplicates(_load_files(where, problems), problems)
    # One line per file, in the folder's order (the file a line names comes first in it).
    problems.sort(key=lambda p: _sort_key(Path(p.split(": ", 1)[0])))
    if not kept:
        if problems:
            raise DataError(f"{where}: no recording could be loaded; every file was skipped:\n"
                            + "\n".join(f"  - {p}" for p in problems))
        raise DataError(f"{where}: no recordings in this folder; copy each student's data/NAME.csv and its "
                        "NAME.json into it (pimem record --label NAME writes them)")
    frame, notes = _class_frame(kept)
    return ClassResults(where, frame, problems, notes, {n: r for n, (_, r, _) in kept.items()})


# --- the class in numbers ---------------------------------------------------------

def _order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in the schema's benchmark and phase order (data.BENCHMARKS), then by size."""
    bench_rank = {b: i for i, b in enumerate(data.BENCHMARKS)}
    phase_rank = {p: i for i, p in enumerate(data.PHASES)}
    key = frame.assign(_b=frame["benchmark"].map(bench_rank), _p=frame["phase"].map(phase_rank))
    cols = ["runs_on", "_b", "_p", "size_bytes"] + (["board"] if "board" in frame.columns else [])
    return key.sort_values(cols, kind="stable").drop(columns=["_b", "_p"]).reset_index(drop=True)


def _frame_of(results: ClassResults | pd.DataFrame) -> pd.DataFrame:
    frame = results.frame if isinstance(results, ClassResults) else results
    need = {"board", "runs_on", "benchmark", "phase", "size_bytes", "gb_per_s", "verified", "kernel"}
    missing = need - set(frame.columns)
    if missing:
        raise UsageError(f"the class frame lacks the column(s) {', '.join(sorted(missing))}; "
                         "give the result of classroom.load_class(folder)")
    return frame


def board_medians(results: ClassResults | pd.DataFrame) -> pd.DataFrame:
    """One row per board, benchmark, phase and size: the median GB/s of that board's samples.

    Rows without a bandwidth are left out: failed verifications (a wrong result has no
    bandwidth) and latency rows (the time of one access is no bandwidth).
    """
    f = _frame_of(results)
    f = f[(f["verified"] != "fail") & f["gb_per_s"].notna()]
    g = f.groupby(["runs_on", "benchmark", "phase", "size_bytes", "board"], sort=False)
    out = g.agg(gb_per_s=("gb_per_s", "median"), samples=("gb_per_s", "size"),
                kernel=("kernel", lambda k: ", ".join(sorted(set(k)))),
                overhead_bound=("overhead_bound", lambda s: bool(s.astype(bool).any())))
    return _order(out.reset_index())


def summary(results: ClassResults | pd.DataFrame) -> pd.DataFrame:
    """Per benchmark, phase and size: the class's median, min and max GB/s, and how many boards.

    Each board counts once: its samples make one median (``board_medians``), and the
    class's figures are the median, min and max of those. Raspberry Pis and host runs are
    never pooled: ``runs_on`` keeps them apart. ``kernels`` lists the kernels the boards
    used (boards that used different ones measured different code).
    """
    from ..units import format_size

    m = board_medians(results)
    g = m.groupby(["runs_on", "benchmark", "phase", "size_bytes"], sort=False)
    out = g.agg(median_gb_per_s=("gb_per_s", "median"), min_gb_per_s=("gb_per_s", "min"),
                max_gb_per_s=("gb_per_s", "max"), boards=("board", "nunique"),
                kernels=("kernel", lambda k: ", ".join(sorted({x for s in k for x in s.split(", ")}))))
    out = _order(out.reset_index())
    out.insert(out.columns.get_loc("size_bytes") + 1, "size", out["size_bytes"].map(format_size))
    return out


# --- the figure -----------------------------------------------------------------------

def _published_frame(published: pd.DataFrame | bool | None, notes: list[str]) -> pd.DataFrame | None:
    if published is None:
        published = plots.course_published()
        if published.empty:
            notes.append(f"no published Raspberry Pi 3 figures found in data/ ({pimem_command('check-data')})")
    elif published is False:
        return None
    elif not isinstance(published, pd.DataFrame):
        raise UsageError(f"published must be None (the published Pi 3 figures in data/), False (none) or a "
                         f"frame of published rows (pimem.bench.data.load_all), got {type(published).__name__}")
    if published.empty:
        return None
    if not {"recording", "provenance", "is_pi"} <= set(published.columns):
        raise UsageError("published needs the 'recording', 'provenance' and 'is_pi' columns of "
                         "pimem.bench.data.load_all()")
    hosts = sorted(r for r, s in plots.sources(published).items() if not s.is_pi)
    if hosts:
        raise UsageError(f"published figures must be Raspberry Pi figures, but {', '.join(hosts)} is a host run; "
                         "a host run belongs in the class folder (load_class labels it), not among published figures")
    return published


def class_spread(results: ClassResults, published: pd.DataFrame | bool | None = None, *,
                 benchmarks: Sequence[str] | None = None, logy: bool = True, title: str | None = None) -> Any:
    """Per benchmark (one small axes each): every board's median GB/s against size, the class's spread
    (the min-max band of the boards' medians) and the published Raspberry Pi figures beside them.

    ``published``: None draws the published Pi 3 figures in data/ (``plots.course_published``), False none,
    or a frame of published rows with the ``recording``, ``provenance`` and ``is_pi`` columns of
    pimem.bench.data.load_all.
    Each panel is in its benchmark's colour and marker (plots.benchmark_style); boards differ in
    line style and marker fill; published figures are black-edged, one marker shape per source.
    Host runs are labelled "host run, not a Pi" and their spread is a band of its own (hatched):
    they are never pooled with, or drawn as, Pi data. ``logy`` (default): a log bandwidth axis,
    so that a host's tens of GB/s and a Pi's one or two stay readable side by side.
    Returns a matplotlib Figure.
    """
    if not isinstance(results, ClassResults):
        raise UsageError("class_spread draws a class: give the result of classroom.load_class(folder)")
    meds = board_medians(results)
    if benchmarks is not None:
        unknown = sorted(set(benchmarks) - set(meds["benchmark"]))
        if unknown:
            raise UsageError(f"benchmark(s) {', '.join(unknown)} are not in this class's recordings; they hold: "
                             + ", ".join(dict.fromkeys(meds["benchmark"])))
        meds = meds[meds["benchmark"].isin(list(benchmarks))]
    if meds.empty:
        raise UsageError("nothing to draw: the class's recordings have no bandwidth rows")
    notes: list[str] = []
    published = _published_frame(published, notes)
    boards = set(meds["board"])
    host_boards = {b for b in boards if (results.frame.loc[results.frame["board"] == b, "runs_on"] == HOST).all()}
    board_of = dict(zip(results.frame["recording"], results.frame["board"]))
    footer = [(f"{board_of[n]} ({n})" if board_of[n] != n else n) + f": {results.recordings[n].provenance()}"
              for n in sorted(results.recordings, key=lambda n: (board_of[n], n)) if board_of[n] in boards]
    return plots.class_panels(meds, published, footer, host_boards=host_boards, logy=logy, title=title, notes=notes)


# --- the example class ----------------------------------------------------------------

def make_example_class(out: str | os.PathLike[str] | None = None,
                       source: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write the example class folder (default data/class-example/) from the shipped host recordings.

    Three "boards": the host runs of EXAMPLE_BOARDS, their EXAMPLE_BENCHMARKS rows copied
    unchanged, each sidecar given a ``label`` and an ``example`` note saying where it came
    from; then board-a's two files copied again under another name (a duplicate), and a
    fourth CSV (the numpy run's baseline rows) without its sidecar (a bad file). No number
    is made up. ``source`` is the folder of the shipped recordings (default: the repository's
    data/). Replaces only the files it writes (README.md stays); returns their paths.
    """
    src = Path(source) if source is not None else DATA_DIR
    dst = safefs.private_dir(resolve_folder(out), "example class folder", "give a folder of your own")
    names = [f"{n}-{label}" for n, label in EXAMPLE_BOARDS] + [_EXAMPLE_DUPLICATE]
    targets = [dst / f"{n}{ext}" for n in names for ext in (".csv", ".json")]
    targets.append(dst / f"{_EXAMPLE_NO_SIDECAR[0]}-{_EXAMPLE_NO_SIDECAR[1]}.csv")
    for t in targets + [dst / f"{_EXAMPLE_NO_SIDECAR[0]}-{_EXAMPLE_NO_SIDECAR[1]}.json"]:
        if t.exists():
            t.unlink()

    def subset(name: str, benchmarks: Sequence[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
        r = data.load_recording(src / f"{name}.csv")
        if r.is_pi or r.kind != "measured":
            raise DataError(f"{r.path}: the example class is made from host runs only, and this is not one")
        frame = r.frame[r.frame["benchmark"].isin(list(benchmarks))].reset_index(drop=True)
        return frame, copy.deepcopy(r.meta)

    written = []
    for name, label in EXAMPLE_BOARDS:
        frame, meta = subset(name, EXAMPLE_BENCHMARKS)
        meta["label"] = label
        meta["example"] = (f"an example, not a class's data: the {', '.join(EXAMPLE_BENCHMARKS)} rows of the "
                           f"shipped host run data/{name}, copied unchanged and labelled {label!r} by "
                           "pimem.course.classroom.make_example_class")
        made = data.save_recording(frame, meta, dst, f"{name}-{label}")
        written += [made, made.with_suffix(".json")]
    first = written[0]
    for ext in (".csv", ".json"):
        safefs.write_file(dst / f"{_EXAMPLE_DUPLICATE}{ext}", first.with_suffix(ext).read_bytes(), mode=0o644)
        written.append(dst / f"{_EXAMPLE_DUPLICATE}{ext}")
    name, label = _EXAMPLE_NO_SIDECAR
    frame, meta = subset(name, ("baseline",))
    meta["label"] = label
    with tempfile.TemporaryDirectory() as tmp:
        made = data.save_recording(frame, meta, tmp, f"{name}-{label}")
        safefs.write_file(dst / made.name, made.read_bytes(), mode=0o644)   # the CSV only: its sidecar "was not sent"
    written.append(dst / made.name)
    return sorted(written)


__all__ = [
    "ClassResults", "EXAMPLE_BENCHMARKS", "EXAMPLE_BOARDS", "HOST", "PI", "board_medians", "check_label",
    "class_spread", "example_folder", "label_slug", "load_class", "make_example_class",
    "resolve_folder", "summary",
]
