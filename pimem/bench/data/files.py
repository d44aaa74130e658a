"""Reading, checking and listing recordings: the data folder, Recording, load_recording, load_all."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ...exc import DataError, UsageError
from ...paths import DATA_DIR, MY_DATA_DIR, pimem_command
from ...safefs import leftovers, remove_leftovers
from .quantities import derived, quantity_of
from .rules import check_rows, parse_time
from .schema import COLUMNS, FIELDS, REQUIRED, SCHEMA, STORED
from .sidecar import check_meta, kind_of
from .table import check_header

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: The longest recording name: NAME.json, and the temporary .NAME.json.PID-RANDOM.tmp of a save,
#: must fit a file system's 255 bytes.
NAME_MAX = 200


def check_name(name: object, *, what: str = "recording name") -> str:
    """A recording's (or mountain's) name, or UsageError saying what a name may be."""
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > NAME_MAX \
            or name.endswith((".csv", ".json")):
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
        raise UsageError(f"{what} {shown}: use up to {NAME_MAX} letters, digits, '.', '_' and '-', starting "
                         "with a letter or digit, without a folder or .csv/.json")
    return name
_MAX_REPORTED = 20

ENV_DATA_DIR = "PIMEM_DATA_DIR"
ENV_USER_DATA_DIR = "PIMEM_USER_DATA_DIR"


# --- locating the data ------------------------------------------------------

def data_dir() -> Path:
    """The course's recordings: the repository's data/ folder (beside the pimem package), or $PIMEM_DATA_DIR."""
    env = os.environ.get(ENV_DATA_DIR, "").strip()
    if env:
        return Path(env).expanduser()
    return DATA_DIR


def user_data_dir() -> Path:
    """This user's own recordings: my-data/ beside my-notebooks/ (git-ignored), or $PIMEM_USER_DATA_DIR.

    `pimem record` and `pimem mountain --save` write here unless told otherwise, so using
    the course never changes the committed data/.
    """
    env = os.environ.get(ENV_USER_DATA_DIR, "").strip()
    if env:
        return Path(env).expanduser()
    return MY_DATA_DIR


def data_folders() -> list[Path]:
    """Where recordings are read from by default: the course's data/, then this user's folder if it exists."""
    mine = user_data_dir()
    return [data_dir()] + ([mine] if mine.is_dir() and mine != data_dir() else [])


def _folder(directory: str | os.PathLike[str] | None) -> Path:
    return data_dir() if directory is None else Path(directory)


# --- the recording ----------------------------------------------------------

@dataclass
class Recording:
    """One recording: its table and its sidecar, already validated."""

    name: str
    path: Path          # the CSV
    frame: pd.DataFrame
    meta: dict[str, Any]
    mine: bool = False  # from this user's my-data/, not the course's data/

    @property
    def kind(self) -> str:
        """'published' or 'measured'."""
        return self.meta["source"]["kind"]

    @property
    def is_pi(self) -> bool:
        return bool(self.meta["machine"]["is_pi"])

    def provenance(self) -> str:
        """One short line for plot titles and banners; a host run never says Pi."""
        meta, machine, source = self.meta, self.meta["machine"], self.meta["source"]
        if source["kind"] == "published":
            who = (machine.get("board") or machine["description"]) if machine["is_pi"] \
                else f"host: {machine.get('cpu_model') or machine['description']}"
            return f"{who}, published: {source.get('short') or meta['title']}"
        day = parse_time(meta["created"]).date().isoformat()
        if machine["is_pi"]:
            return (f"{machine['board']}, measured: pimem {meta['backend']} backend, "
                    f"{meta['kernel_choice']} kernel, recorded {day}")
        arch = f" ({machine['arch']})" if machine.get("arch") else ""
        return f"host run: {machine['cpu_model']}{arch}, pimem {meta['backend']} backend, recorded {day}"

def _raise(problems: list[str]) -> None:
    if not problems:
        return
    shown = problems[:_MAX_REPORTED]
    more = len(problems) - len(shown)
    head = (f"{len(problems)} problems (schema: pimem/bench/schemas/, explained in data/README.md):\n"
            if len(problems) > 1 else "")
    tail = f"\n... and {more} more" if more else ""
    raise DataError(head + "\n".join(shown) + tail, problems=problems)


# --- frames -----------------------------------------------------------------

def stored_rows(frame: pd.DataFrame) -> Iterable[tuple[str, dict[str, Any]]]:
    """(label, stored row) for each row of a frame: what its CSV will hold (a measured row's seconds
    become its value, in s)."""
    for pos, (index, record) in enumerate(zip(frame.index, frame.to_dict("records"))):
        value, unit = quantity_of(record)
        # Row numbers as the saved CSV will show them (the header is row 1).
        yield f"row {pos + 2} (index {index!r})", {**record, "value": value, "unit": unit}


def validate_frame(frame: pd.DataFrame, meta: Mapping[str, Any], *, name: str = "<frame>") -> None:
    """Check a frame built in memory and its sidecar dict; DataError lists what is wrong."""
    if not isinstance(frame, pd.DataFrame):
        raise UsageError(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}")
    problems = [f"{name} (meta), {p}" for p in check_meta(meta)]
    # A frame measured in memory may give its time as seconds rather than as value and unit.
    timed = "seconds" in frame.columns
    missing = [c for c in REQUIRED if c not in frame.columns and not (timed and c in ("value", "unit"))]
    problems += [f"{name}, header, column '{c}': is missing; a recording's frame has the columns "
                 + ",".join(COLUMNS) for c in missing]
    if not missing:
        _, found = check_rows(stored_rows(frame), kind_of(meta))
        problems += [f"{name}, {p}" for p in found]
    _raise(problems)


_DTYPES = {"integer": "int64", "number": "float64", "boolean": "bool"}   # text: pandas picks its string dtype
#: For a column that is not required and is empty in some row (pandas' nullable types; a number's empty is NaN).
_NULLABLE = {"integer": "Int64", "number": "float64", "boolean": "boolean"}
_TYPES = {**{c: FIELDS[c].get("type", "string") for c in STORED},
          "seconds": "number", "bytes": "integer", "bus_bytes": "integer", "gb_per_s": "number", "gib_per_s": "number"}


def build_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A recording's frame (COLUMNS) from its checked stored rows: the computed columns added."""
    full = [{**r, **derived(r)} for r in rows]
    cols: dict[str, Any] = {}
    for c in COLUMNS:
        kind = _TYPES[c]
        values = [r[c] for r in full]
        if kind == "number":
            values = [math.nan if v is None else v for v in values]
        dtypes = _NULLABLE if None in values else _DTYPES
        cols[c] = pd.Series(values, dtype=dtypes.get(kind))
    return pd.DataFrame(cols, columns=list(COLUMNS))


# --- files ------------------------------------------------------------------

_MAX_FILE = 256 << 20   # bytes: far above any recording, far below what would exhaust memory


def _read_text(path: Path, encoding: str) -> str:
    """A regular file's text: never a FIFO (it would hang), a device or a symlink loop."""
    from ...safefs import read_regular

    return read_regular(path, limit=_MAX_FILE).decode(encoding)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows; write the value, or null")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]}... is too large for a float")
    return value


#: The format before the quantity and its unit were stored: its seconds are the value (in s), and the
#: columns it stored beside them are computed now. A user's my-data/ may hold files an earlier pimem wrote.
_V1 = "pimem-recording/1"
_V1_COMPUTED = ("bytes", "bus_bytes", "gb_per_s", "gib_per_s")


def _v1_as_current(header: list[str], records: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    keep = [i for i, h in enumerate(header) if h not in _V1_COMPUTED]
    header = ["value" if header[i] == "seconds" else header[i] for i in keep] + ["unit"]
    return header, [[r[i] for i in keep if i < len(r)] + ["s"] if len(r) == len(keep) + len(_V1_COMPUTED) else r
                    for r in records]


def _read_meta(path: Path) -> tuple[Any, list[str]]:
    try:
        text = _read_text(path, "utf-8")
    except OSError as e:
        return None, [f"{path}: cannot be read: {e.strerror or e}; it must be a regular file"]
    except UnicodeDecodeError as e:
        return None, [f"{path}: is not UTF-8 text ({e.reason})"]
    except ValueError as e:
        return None, [f"{path}: {e}"]
    try:
        meta = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as e:
        return None, [f"{path}, line {e.lineno}, column {e.colno}: not valid JSON: {e.msg}"]
    except RecursionError:
        return None, [f"{path}: JSON nested too deeply to be a sidecar; regenerate it with pimem record"]
    except ValueError as e:
        return None, [f"{path}: not valid JSON for a sidecar: {e}"]
    if isinstance(meta, dict) and meta.get("schema") == _V1:
        meta = {**meta, "schema": SCHEMA, "read_as": _V1}
    return meta, [f"{path}, {p}" for p in check_meta(meta)]


def _read_table(path: Path, kind: str | None, v1: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    try:
        text = _read_text(path, "utf-8-sig")  # -sig: spreadsheets may add a BOM
    except OSError as e:
        return [], [f"{path}: cannot be read: {e.strerror or e}; it must be a regular file"]
    except UnicodeDecodeError as e:
        return [], [f"{path}: is not UTF-8 text ({e.reason})"]
    except ValueError as e:
        return [], [f"{path}: {e}"]
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as e:
        return [], [f"{path}: not a CSV pimem can read ({e}); a recording's fields are short numbers and names"]
    if not records:
        return [], [f"{path}, row 1: the file is empty; expected the header " + ",".join(STORED)]
    header = [h.strip() for h in records[0]]
    if v1:
        header, records[1:] = _v1_as_current(header, records[1:])
    problems = [f"{path}, {p}" for p in check_header(header, "row 1 (header)")]
    if problems:
        return [], problems

    def labelled() -> Iterable[tuple[str, dict[str, Any]]]:
        # Row numbers as a spreadsheet shows them: the header is row 1.
        for number, record in enumerate(records[1:], start=2):
            if not any(cell.strip() for cell in record):
                continue  # a blank line carries no data
            if len(record) != len(header):
                problems.append(f"{path}, row {number}: has {len(record)} fields; the header has {len(header)}")
                continue
            yield f"row {number}", dict(zip(header, record))

    typed, found = check_rows(labelled(), kind)
    return typed, problems + [f"{path}, {p}" for p in found]


def _pair(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix == ".csv":
        return p, p.with_suffix(".json")
    if p.suffix == ".json":
        return p.with_suffix(".csv"), p
    if not p.suffix and p.with_suffix(".csv").exists():
        return p.with_suffix(".csv"), p.with_suffix(".json")
    raise UsageError(f"{p}: not a recording; give the path of its .csv or its .json")


def _inspect(csv_path: Path, json_path: Path) -> tuple[Recording | None, list[str]]:
    if not csv_path.exists():
        extra = f" (its sidecar {json_path.name} exists: a save that did not finish?)" if json_path.exists() else ""
        return None, [f"{csv_path}: no such file{extra}"]
    if not json_path.exists():
        return None, [f"{csv_path}: its sidecar {json_path.name} is missing; every recording is a "
                      f"NAME.csv with a NAME.json saying where its numbers came from (data/README.md)"]
    meta, problems = _read_meta(json_path)
    v1 = isinstance(meta, dict) and meta.pop("read_as", None) == _V1
    rows, found = _read_table(csv_path, kind_of(meta), v1)
    problems += found
    if problems:
        return None, problems
    return Recording(csv_path.stem, csv_path, build_frame(rows), meta), []


def load_recording(path: str | os.PathLike[str]) -> Recording:
    """Load and validate one recording from its .csv or .json path.

    Raises DataError naming the file, the row (as a spreadsheet numbers it)
    and the column of every problem found.
    """
    recording, problems = _inspect(*_pair(path))
    _raise(problems)
    assert recording is not None
    return recording


def _visible(directory: Path, suffix: str) -> list[Path]:
    return sorted(p for p in directory.glob(f"*{suffix}") if p.is_file() and not p.name.startswith("."))


def check_data_dir(directory: str | os.PathLike[str] | None = None) -> list[str]:
    """Every problem with the recordings in a folder (default: every folder of data_folders()); empty means all good."""
    if directory is None:
        return [p for folder in data_folders() for p in check_data_dir(folder)]
    folder = Path(directory)
    if not folder.is_dir():
        return [f"{folder}: " + ("not a directory" if os.path.lexists(folder) else "no such directory")
                + f"; give the folder of recordings (--dir, or {ENV_DATA_DIR})"]
    problems: list[str] = []
    for p in sorted(folder.iterdir()):
        if p.suffix in (".csv", ".json") and not p.name.startswith(".") and not p.is_file():
            what = ("a directory" if p.is_dir() else "a symbolic link that leads nowhere"
                    if p.is_symlink() and not p.exists() else "not a regular file")
            problems.append(f"{p}: named like a recording, but {what}; rename or remove it")
    csvs = {p.stem: p for p in _visible(folder, ".csv")}
    for stem, path in csvs.items():
        problems += _inspect(path, folder / f"{stem}.json")[1]
    fix = f"'{pimem_command('check-data --remove-leftovers')}' removes it"
    for path in orphan_sidecars(folder):
        problems.append(f"{path}: a sidecar without its {path.stem}.csv (a save that did not finish?); "
                        f"restore the CSV, or {fix}")
    for p in leftovers(folder):
        problems.append(f"{p}: a temporary file left by an interrupted save; {fix}")
    return problems


def orphan_sidecars(folder: str | os.PathLike[str]) -> list[Path]:
    """Sidecars (NAME.json) in `folder` without their NAME.csv: what a save killed between the two leaves."""
    folder = Path(folder)
    csvs = {p.stem for p in _visible(folder, ".csv")}
    return [p for p in _visible(folder, ".json") if p.stem not in csvs]


def remove_data_leftovers(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete what interrupted saves left in `folder` (temporaries, sidecars without a CSV); returns them."""
    removed = remove_leftovers(folder)
    for p in orphan_sidecars(folder):
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def list_recordings(directory: str | os.PathLike[str] | None = None) -> list[Recording]:
    """Every recording in a folder, by name; DataError if one is broken.

    Default: the course's data/, then this user's my-data/ (data_folders()). The user's own
    recordings come last and never stop the course: a broken one is skipped with a one-line
    note (pimem check-data names every problem), and one named like a course recording is
    listed as "NAME (yours)". A recording is a CSV with its sidecar: a sidecar alone (what
    an interrupted save can leave) is not listed; check_data_dir reports it.
    """
    if directory is None:
        course = list_recordings(data_dir())
        mine = user_data_dir()
        if mine not in data_folders()[1:]:
            return course
        return course + _user_recordings(mine, {r.name for r in course})
    folder = Path(directory)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such directory (set {ENV_DATA_DIR} to the folder of recordings)")
    return [load_recording(p) for p in _visible(folder, ".csv")]


def _user_recordings(folder: Path, taken: set[str]) -> list[Recording]:
    import sys

    from ...paths import pimem_command

    out = []
    for p in _visible(folder, ".csv"):
        recording, problems = _inspect(*_pair(p))
        if recording is None:
            print(f"pimem: skipped your recording {p} ({problems[0]}); "
                  f"'{pimem_command('check-data')}' lists every problem", file=sys.stderr)
            continue
        if recording.name in taken:
            recording.name = f"{recording.name} (yours)"
        recording.mine = True
        out.append(recording)
    return out


#: The columns load_all puts before a recording's own: which recording a row is from, and what a
#: reader needs to know of it without parsing the provenance line.
RECORDING_COLUMNS: tuple[str, ...] = ("recording", "provenance", "mine", "kind", "is_pi", "board")


def load_all(directory: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """All recordings in one frame, RECORDING_COLUMNS first: `recording` (its name), `provenance` (a line
    for a figure's footer), `mine` (from this user's my-data/), `kind` (published or measured), `is_pi`
    (the numbers are a Pi's) and `board` (the Pi's model, empty for a host run).
    Default folders: those of list_recordings()."""
    frames = []
    for r in list_recordings(directory):
        about = {"recording": r.name, "provenance": r.provenance(), "mine": r.mine, "kind": r.kind,
                 "is_pi": r.is_pi, "board": (r.meta["machine"].get("board") or "") if r.is_pi else ""}
        f = r.frame.copy()
        for i, column in enumerate(RECORDING_COLUMNS):
            f.insert(i, column, about[column])
        frames.append(f)
    if not frames:
        return pd.DataFrame(columns=[*RECORDING_COLUMNS, *COLUMNS])
    return pd.concat(frames, ignore_index=True)
