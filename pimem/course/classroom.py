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
import math
import os
import re
import tempfile
import unicodedata
from collections.abc import Sequence
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


def _first_problem(message: str, path: Path, rel: Path) -> tuple[int, str]:
    """(how many problems, the first) from a DataError of pimem.bench.data, the file named by its place in the folder."""
    lines = [ln for ln in message.splitlines() if ln.strip()]
    m = re.match(r"^(\d+) problems", lines[0]) if lines else None
    count = int(m.group(1)) if m else 1
    first = lines[1] if m and len(lines) > 1 else (lines[0] if lines else message)
    for p in (path, path.with_suffix(".json"), path.with_suffix(".csv")):
        first = first.replace(f"{p}, ", f"{p.name}, ").replace(f"{p}: ", f"{p.name}: ")
    return count, first


def _content_key(r: Recording) -> str:
    return hashlib.sha256(r.frame.to_csv(index=False).encode("utf-8")).hexdigest()


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
    files = _files(where)
    present = set(files)
    problems: list[str] = []
    loaded: list[tuple[Path, Recording]] = []
    for rel in files:
        path = where / rel
        suffix = path.suffix.lower()
        if rel.name.split(".")[0].lower() in _README_NAMES:
            continue
        if path.suffix not in (".csv", ".json"):
            kind = f"a {suffix} file" if suffix else "a file without an extension"
            hint = " (.CSV: rename it to .csv, with its sidecar .json)" if suffix in (".csv", ".json") else ""
            problems.append(f"{rel}: not a recording ({kind}){hint}; a recording is NAME.csv with its sidecar "
                            "NAME.json from a student's data/; skipped: remove it or move it out of the folder")
            continue
        if path.suffix == ".json":
            if rel.with_suffix(".csv") not in present:
                problems.append(f"{rel}: a sidecar without its {rel.stem}.csv, so there are no numbers to load; "
                                f"skipped: copy {rel.stem}.csv from the student's data/ beside it")
            continue
        if rel.with_suffix(".json") not in present:
            problems.append(f"{rel}: its sidecar {rel.stem}.json is missing, so where its numbers came from is "
                            f"unknown; skipped: copy {rel.stem}.json from the student's data/ beside it")
            continue
        try:
            loaded.append((rel, data.load_recording(path)))
        except DataError as e:
            count, first = _first_problem(str(e), path, rel)
            more = f" ({count} problems; the first)" if count > 1 else ""
            problems.append(f"{rel}: does not follow the recording schema{more}: {first}; skipped: ask for a "
                            f"fresh copy of the student's file (pimem check-data --dir {where / rel.parent} "
                            "lists every problem)")
        except (PimemError, OSError, ValueError) as e:   # never fatal: one bad file is one line
            problems.append(f"{rel}: cannot be read ({type(e).__name__}: {e}); skipped: ask for a fresh copy")

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

    # One line per file, in the folder's order (the file a line names comes first in it).
    problems.sort(key=lambda p: _sort_key(Path(p.split(": ", 1)[0])))
    if not kept:
        if problems:
            raise DataError(f"{where}: no recording could be loaded; every file was skipped:\n"
                            + "\n".join(f"  - {p}" for p in problems))
        raise DataError(f"{where}: no recordings in this folder; copy each student's data/NAME.csv and its "
                        "NAME.json into it (pimem record --label NAME writes them)")

    frames, notes = [], []
    boards: dict[str, list[str]] = {}
    for name, (rel, r, board) in kept.items():
        f = r.frame.copy()
        f.insert(0, "provenance", r.provenance())
        f.insert(0, "recording", name)
        f.insert(0, "runs_on", PI if r.is_pi else HOST)
        f.insert(0, "board", board)
        frames.append(f)
        boards.setdefault(board, []).append(name)
    for board, names in boards.items():
        if len(names) > 1:
            notes.append(f"board {board!r} has {len(names)} recordings ({', '.join(names)}): "
                         "their samples are pooled as one board")
    kinds = {b: {PI if kept[n][1].is_pi else HOST for n in names} for b, names in boards.items()}
    for board, k in kinds.items():
        if len(k) > 1:
            notes.append(f"board {board!r} has both Raspberry Pi and host recordings: they are kept apart")
    frame = pd.concat(frames, ignore_index=True)
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
    from ..bench.sweep import format_size

    m = board_medians(results)
    g = m.groupby(["runs_on", "benchmark", "phase", "size_bytes"], sort=False)
    out = g.agg(median_gb_per_s=("gb_per_s", "median"), min_gb_per_s=("gb_per_s", "min"),
                max_gb_per_s=("gb_per_s", "max"), boards=("board", "nunique"),
                kernels=("kernel", lambda k: ", ".join(sorted({x for s in k for x in s.split(", ")}))))
    out = _order(out.reset_index())
    out.insert(out.columns.get_loc("size_bytes") + 1, "size", out["size_bytes"].map(format_size))
    return out


# --- the figure -----------------------------------------------------------------------

_PUBLISHED_MARKERS = "*sPXhp"


def _variant(k: int) -> tuple[Any, str]:
    """The k-th board's (line style, marker fill), as plots draws several series of one benchmark."""
    return (plots.VARIANT_LINESTYLES[k % len(plots.VARIANT_LINESTYLES)],
            plots.VARIANT_FILLSTYLES[k % len(plots.VARIANT_FILLSTYLES)])


def published_pi3(directory: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The published Raspberry Pi 3 bandwidth figures in data/ (as plots.published_comparison picks them)."""
    allrec = data.load_all(directory)
    return allrec[allrec["provenance"].str.contains("published:", regex=False)
                  & allrec["provenance"].str.startswith("Raspberry Pi 3")
                  & (allrec["phase"] != "latency")].reset_index(drop=True)


def _panel_title(benchmark: str, phase: str) -> str:
    return benchmark if phase in ("fill", "write", "read") and benchmark != "standard" else f"{benchmark} {phase}"


def _published_frame(published: pd.DataFrame | bool | None, notes: list[str]) -> pd.DataFrame | None:
    if published is None:
        published = published_pi3()
        if published.empty:
            notes.append(f"no published Raspberry Pi 3 figures found in data/ ({pimem_command('check-data')})")
    elif published is False:
        return None
    elif not isinstance(published, pd.DataFrame):
        raise UsageError(f"published must be None (the published Pi 3 figures in data/), False (none) or a "
                         f"frame of published rows (pimem.bench.data.load_all), got {type(published).__name__}")
    if published.empty:
        return None
    if "provenance" not in published.columns or "recording" not in published.columns:
        raise UsageError("published needs the 'recording' and 'provenance' columns of pimem.bench.data.load_all()")
    hosts = sorted({str(r) for r, p in zip(published["recording"], published["provenance"]) if plots.is_host(p)})
    if hosts:
        raise UsageError(f"published figures must be Raspberry Pi figures, but {', '.join(hosts)} is a host run; "
                         "a host run belongs in the class folder (load_class labels it), not among published figures")
    return published


def class_spread(results: ClassResults, published: pd.DataFrame | bool | None = None, *,
                 benchmarks: Sequence[str] | None = None, logy: bool = True, title: str | None = None) -> Any:
    """Per benchmark (one small axes each): every board's median GB/s against size, the class's spread
    (the min-max band of the boards' medians) and the published Raspberry Pi figures beside them.

    ``published``: None draws the published Pi 3 figures in data/ (``published_pi3``), False none,
    or a frame of published rows with ``recording`` and ``provenance`` columns (pimem.bench.data.load_all).
    Each panel is in its benchmark's colour and marker (plots.benchmark_style); boards differ in
    line style and marker fill; published figures are black-edged, one marker shape per source.
    Host runs are labelled "host run, not a Pi" and their spread is a band of its own (hatched):
    they are never pooled with, or drawn as, Pi data. ``logy`` (default): a log bandwidth axis,
    so that a host's tens of GB/s and a Pi's one or two stay readable side by side.
    Returns a matplotlib Figure.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

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
    pub_pts = plots.summarize_points(published, "median") if published is not None else None

    panels = list(dict.fromkeys(zip(meds["benchmark"], meds["phase"])))
    boards = sorted(meds["board"].unique())
    variant = {b: _variant(i) for i, b in enumerate(boards)}
    host_of = {b: bool((results.frame.loc[results.frame["board"] == b, "runs_on"] == HOST).all()) for b in boards}
    kernel_of = meds.groupby("board")["kernel"].agg(lambda k: ", ".join(sorted({x for s in k for x in s.split(", ")})))
    pub_recs = list(dict.fromkeys(pub_pts["recording"])) if pub_pts is not None else []
    pub_marker = {r: _PUBLISHED_MARKERS[i % len(_PUBLISHED_MARKERS)] for i, r in enumerate(pub_recs)}

    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    legend_in = 3.6
    plots._display_ready()
    fig = Figure(figsize=(3.9 * ncols + legend_in, 3.0 * nrows + 2.2), layout=None)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    drawn_pub: set[str] = set()
    bands: set[str] = set()
    for k, (bench, phase) in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        colour, marker = plots.benchmark_style(bench)
        here = meds[(meds["benchmark"] == bench) & (meds["phase"] == phase)]
        sizes = set(here["size_bytes"])
        for group in (PI, HOST):
            g = here[here["runs_on"] == group]
            if g.empty:
                continue
            stats = g.groupby("size_bytes")["gb_per_s"].agg(["min", "max", "count"]).sort_index()
            several = (stats["count"] >= 2).to_numpy()
            if several.any():
                ax.fill_between(stats.index.to_numpy(float), stats["min"], stats["max"], where=several,
                                color=colour, alpha=0.2 if group == PI else 0.12, lw=0,
                                hatch=None if group == PI else "///", gid=f"spread:{group}:{bench}:{phase}")
                bands.add(group)
            for board, s in g.groupby("board", sort=True):
                s = s.sort_values("size_bytes")
                ls, fill = variant[board]
                ax.plot(s["size_bytes"], s["gb_per_s"], linestyle=ls, marker=marker, fillstyle=fill, ms=4,
                        lw=1.1, color=colour, mec=colour, gid=f"board:{board}:{bench}:{phase}")
        if pub_pts is not None:
            p = pub_pts[(pub_pts["benchmark"] == bench) & (pub_pts["phase"] == phase)]
            for rec, s in p.groupby("recording", sort=False):
                ax.plot(s["size_bytes"], s["value"], pub_marker[rec], mfc=colour, mec="k", mew=1.0, ms=7, ls="",
                        zorder=5, gid=f"published:{rec}:{bench}:{phase}")
                sizes |= set(s["size_bytes"])
                drawn_pub.add(rec)
        plots.size_axis(ax, sorted(sizes))
        ax.set_xlabel("buffer size", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="x", labelsize=6.5, labelrotation=45)
        if logy:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        if k % ncols == 0:
            ax.set_ylabel("GB/s (10^9 B/s)" + (", log scale" if logy else ""), fontsize=8)
        ax.set_title(_panel_title(bench, phase), fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    for k in range(len(panels), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)

    handles: list[Any] = []
    labels: list[str] = []
    for b in boards:
        ls, fill = variant[b]
        handles.append(Line2D([], [], color="0.35", marker="o", fillstyle=fill, linestyle=ls, ms=5))
        labels.append(f"{b} [{kernel_of[b]}]" + (": host run, not a Pi" if host_of[b] else ""))
    for group in (PI, HOST):
        if group in bands:
            handles.append(Patch(facecolor="0.6", alpha=0.4, hatch=None if group == PI else "///"))
            labels.append("class spread (" + ("Raspberry Pis" if group == PI else "host runs, not Pis")
                          + "):\nmin-max of the boards' medians")
    for rec in pub_recs:
        if rec in drawn_pub:
            handles.append(Line2D([], [], color="0.6", marker=pub_marker[rec], mec="k", mew=1.0, ms=7, ls=""))
            labels.append(f"{rec}\n(published, a Raspberry Pi)")
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1 - (legend_in - 0.15) / fig.get_figwidth(), 0.93),
               fontsize=8, title="colour and marker: the benchmark\nline style: the board", title_fontsize=8,
               frameon=False)
    host_any = any(host_of.values())
    pi_any = bool(drawn_pub) or not all(host_of.values())
    fig.suptitle(plots.host_title(title or "Class results: each board's median bandwidth", host_any, pi_any),
                 fontsize=11)
    fig.subplots_adjust(left=0.6 / fig.get_figwidth(), right=1 - legend_in / fig.get_figwidth(),
                        top=1 - 0.75 / fig.get_figheight(), wspace=0.3, hspace=0.75)

    lines = []
    for name in sorted(results.recordings, key=lambda n: (results.frame.loc[results.frame["recording"] == n,
                                                                            "board"].iloc[0], n)):
        board = results.frame.loc[results.frame["recording"] == name, "board"].iloc[0]
        if board in boards:
            lines.append((f"{board} ({name})" if board != name else name) + f": {results.recordings[name].provenance()}")
    if published is not None:
        provs = dict(zip(published["recording"], published["provenance"]))
        lines += [f"{rec}: {provs[rec]}" for rec in pub_recs if rec in drawn_pub]
    lines += notes + ["each line: a board's median of its samples; band: min-max of the boards' medians where "
                      "2 or more boards have the size; GB/s = 10^9 B/s, a copy counts its bytes once"]
    plots.add_provenance(fig, lines)
    return fig


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
    "class_spread", "example_folder", "label_slug", "load_class", "make_example_class", "published_pi3",
    "resolve_folder", "summary",
]
