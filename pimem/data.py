"""Recorded data: bandwidth figures with their provenance.

One recording is two files in ``data/``: ``NAME.csv``, a tidy table with one
row per timed sample (or per published statistic), and ``NAME.json``, its
sidecar, which says where the numbers came from (a published source, or
the machine they were recorded on). ``data/README.md`` is the schema; this
module checks files against it, loads them, and saves new ones so that a
half-done save never looks like a recording.
"""
from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .exc import DataError, UsageError
from .memflags import MemFlag

SCHEMA = "pimem-recording/1"

#: The CSV columns, in their required order.
COLUMNS: tuple[str, ...] = (
    "benchmark", "phase", "size_bytes", "statistic", "sample", "seconds",
    "bytes", "bus_bytes", "gb_per_s", "gib_per_s", "reps", "overhead_bound",
    "verified", "kernel", "flags", "alias",
)

#: Each benchmark and the phases its rows may have.
BENCHMARKS: dict[str, tuple[str, ...]] = {
    "baseline": ("fill",),
    "standard": ("fill", "copy", "total"),
    "zerocopy": ("write",),
    "write-coherent": ("write",),
    "write-l1nonalloc": ("write",),
    "read-host": ("read",),
    "read-direct": ("read",),
    "read-coherent": ("read",),
    "read-l1nonalloc": ("read",),
    "host-copy": ("copy",),
    "copy-to-direct": ("copy",),
    "copy-from-direct": ("copy",),
    # Published latency tables (tinymembench's "single random read / dual random read"):
    # `seconds` is the time of one access, and a latency row has no bandwidth.
    "latency-single": ("latency",),
    "latency-dual": ("latency",),
    # pimem's own pointer chase: `seconds` is the whole time of one access.
    "latency-host": ("latency",),
    "latency-direct": ("latency",),
    "latency-coherent": ("latency",),
    "latency-l1nonalloc": ("latency",),
}

PHASES: tuple[str, ...] = ("fill", "copy", "total", "write", "read", "latency")
STATISTICS: tuple[str, ...] = ("sample", "mean", "median", "min", "best")
VERIFIED: tuple[str, ...] = ("pass", "fail", "unknown")
SOURCE_KINDS: tuple[str, ...] = ("published", "measured")
RECORDING_BACKENDS: tuple[str, ...] = ("pi", "emulator")
ALIASES: tuple[str, ...] = ("0x0", "0x4", "0x8", "0xC")

#: Bus bytes per counted byte: a copy reads and writes; standard's total is
#: its fill (once) plus its copy (twice).
BUS_FACTOR: dict[str, int] = {"fill": 1, "write": 1, "read": 1, "copy": 2, "total": 3, "latency": 1}

# The cache mode (flags & 0xC) of each benchmark's GPU buffer; None = host buffers only.
_MODE_MASK = int(MemFlag.L1_NONALLOCATING)
_BUFFER_MODE: dict[str, MemFlag | None] = {
    "baseline": None, "read-host": None, "host-copy": None, "latency-single": None, "latency-dual": None,
    "latency-host": None, "latency-direct": MemFlag.DIRECT, "latency-coherent": MemFlag.COHERENT,
    "latency-l1nonalloc": MemFlag.L1_NONALLOCATING,
    "standard": MemFlag.COHERENT,
    "zerocopy": MemFlag.DIRECT,
    "write-coherent": MemFlag.COHERENT,
    "write-l1nonalloc": MemFlag.L1_NONALLOCATING,
    "read-direct": MemFlag.DIRECT,
    "read-coherent": MemFlag.COHERENT,
    "read-l1nonalloc": MemFlag.L1_NONALLOCATING,
    "copy-to-direct": MemFlag.DIRECT,
    "copy-from-direct": MemFlag.DIRECT,
}

_INT_COLUMNS = ("size_bytes", "sample", "bytes", "bus_bytes", "reps")
_FLOAT_COLUMNS = ("seconds", "gb_per_s", "gib_per_s")
_KERNEL_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_RAW_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_PI_RE = re.compile(r"raspberry\s*pi|\bpi\s*[0-9]", re.IGNORECASE)
_REL_TOL = 1e-6
_MAX_REPORTED = 20
# Temporary files of save_recording: hidden, and not ending in .csv/.json,
# so nothing that lists recordings ever mistakes one for a recording.
_TMP_SUFFIXES = (".csv.tmp", ".json.tmp")

ENV_DATA_DIR = "PIMEM_DATA_DIR"


# --- locating the data ------------------------------------------------------

def data_dir() -> Path:
    """The repository's data/ folder (beside the pimem package), or $PIMEM_DATA_DIR."""
    env = os.environ.get(ENV_DATA_DIR, "").strip()
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent / "data"


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
        day = _parse_time(meta["created"]).date().isoformat()
        if machine["is_pi"]:
            return (f"{machine['board']}, measured: pimem {meta['backend']} backend, "
                    f"{meta['kernel_choice']} kernel, recorded {day}")
        arch = f" ({machine['arch']})" if machine.get("arch") else ""
        return f"host run: {machine['cpu_model']}{arch}, pimem {meta['backend']} backend, recorded {day}"


# --- parsing one cell -------------------------------------------------------

def _missing(x: Any) -> bool:
    """None, NaN or pd.NA: what an empty cell becomes in a frame."""
    if x is None:
        return True
    if isinstance(x, (str, bytes)):
        return False
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):  # list-like cells
        return False


def _is_bool(x: Any) -> bool:
    # bool is an int subclass: True must not pass as the number 1
    return isinstance(x, (bool, np.bool_))


def _text(x: Any) -> str:
    if _missing(x):
        return ""
    return x.strip() if isinstance(x, str) else str(x)


def _as_int(x: Any) -> int:
    """A whole number, from CSV text or from a frame cell (where NaN may have made it float)."""
    if _is_bool(x):
        raise ValueError(f"{x!r} is a boolean; expected a whole number")
    if isinstance(x, str):
        s = x.strip()
        if not s:
            raise ValueError("is empty; expected a whole number")
        if not _RAW_INT_RE.match(s):
            raise ValueError(f"{s!r} is not a whole number")
        return int(s)
    if _missing(x):
        raise ValueError("is empty; expected a whole number")
    try:
        f = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{x!r} is not a whole number") from None
    if not math.isfinite(f) or f != int(f):
        raise ValueError(f"{x!r} is not a whole number")
    return int(x) if isinstance(x, numbers.Integral) else int(f)


def _as_float(x: Any) -> float | None:
    """A number, or None for an empty cell."""
    if _is_bool(x):
        raise ValueError(f"{x!r} is a boolean; expected a number")
    if isinstance(x, str):
        s = x.strip()
        if not s:
            return None
        try:
            f = float(s)
        except ValueError:
            raise ValueError(f"{s!r} is not a number") from None
    elif _missing(x):
        return None
    else:
        try:
            f = float(x)
        except (TypeError, ValueError):
            raise ValueError(f"{x!r} is not a number") from None
    if not math.isfinite(f):
        raise ValueError(f"{x!r} is not a finite number")
    return f


def _as_bool(x: Any) -> bool:
    if _is_bool(x):
        return bool(x)
    s = _text(x).lower()
    if s in ("true", "false"):
        return s == "true"
    raise ValueError(f"{_text(x)!r} is not true or false")


def _parse_flags(s: str) -> int:
    value = 0
    names = s.split("|")
    for n in names:
        n = n.strip()
        if n not in MemFlag.__members__:
            raise ValueError(f"{n!r} in {s!r} is not a flag; expected names joined by '|' from: "
                             + ", ".join(MemFlag.__members__))
        value |= int(MemFlag[n])
    if len(set(names)) != len(names):
        raise ValueError(f"{s!r} names a flag twice")
    return value


# --- checking rows ----------------------------------------------------------

def _check_header(header: list[str], where: str) -> list[str]:
    """Problems with the column names (empty list when they are COLUMNS in order)."""
    if tuple(header) == COLUMNS:
        return []
    expected = "expected the columns " + ",".join(COLUMNS) + " in that order"
    problems = []
    for c in COLUMNS:
        if c not in header:
            problems.append(f"{where}, column '{c}': is missing; {expected}")
    for c in header:
        if c not in COLUMNS:
            problems.append(f"{where}, column '{c}': is not a column of {SCHEMA}; {expected}")
    for c in sorted({c for c in header if header.count(c) > 1}):
        problems.append(f"{where}, column '{c}': appears more than once; {expected}")
    if not problems:
        problems.append(f"{where}: the columns are out of order ({','.join(header)}); {expected}")
    return problems


def _check_row(label: str, raw: Mapping[str, Any], kind: str | None) -> tuple[dict[str, Any] | None, list[str]]:
    """Parse and check one row; returns its typed values (None if any is bad) and the problems."""
    problems: list[str] = []
    row: dict[str, Any] = {}

    def bad(col: str, what: str) -> None:
        problems.append(f"{label}, column '{col}': {what}")

    for col in ("benchmark", "phase", "statistic", "verified", "kernel", "flags", "alias"):
        row[col] = _text(raw[col])
    for col in _INT_COLUMNS:
        try:
            row[col] = _as_int(raw[col])
        except ValueError as e:
            bad(col, str(e))
            row[col] = None
    for col in _FLOAT_COLUMNS:
        try:
            row[col] = _as_float(raw[col])
        except ValueError as e:
            bad(col, str(e))
            row[col] = math.nan  # present but unusable: skip the checks that need it
    try:
        row["overhead_bound"] = _as_bool(raw["overhead_bound"])
    except ValueError as e:
        bad("overhead_bound", f"{e}; expected true when call overhead dominates the time, else false")

    bench, phase = row["benchmark"], row["phase"]
    if bench not in BENCHMARKS:
        bad("benchmark", f"{bench!r} is not a benchmark; expected one of: {', '.join(BENCHMARKS)}")
    if phase not in PHASES:
        bad("phase", f"{phase!r} is not a phase; expected one of: {', '.join(PHASES)}")
    elif bench in BENCHMARKS and phase not in BENCHMARKS[bench]:
        bad("phase", f"{phase!r} is not a phase of {bench}; expected: {' or '.join(BENCHMARKS[bench])}")
    if row["statistic"] not in STATISTICS:
        bad("statistic", f"{row['statistic']!r} is not a statistic; expected one of: {', '.join(STATISTICS)}")
    if row["verified"] not in VERIFIED:
        bad("verified", f"{row['verified']!r} is not a verification result; expected one of: {', '.join(VERIFIED)}")

    size, nbytes, bus = row["size_bytes"], row["bytes"], row["bus_bytes"]
    for col in ("size_bytes", "bytes", "bus_bytes"):
        if row[col] is not None and row[col] <= 0:
            bad(col, f"{row[col]} is not > 0")
    if size is not None and nbytes is not None and size > 0 and nbytes != size:
        bad("bytes", f"{nbytes} differs from size_bytes {size}; the bytes counted for bandwidth "
                     "are the buffer size (a copy counts its bytes once)")
    if nbytes is not None and bus is not None and phase in BUS_FACTOR and nbytes > 0:
        factor = BUS_FACTOR[phase]
        if bus != factor * nbytes:
            why = {1: "a fill, write or read moves its bytes once",
                   2: "a copy reads and writes, so bus_bytes = 2 x bytes",
                   3: "standard's total is its fill (once) plus its copy (twice), so bus_bytes = 3 x bytes"}[factor]
            bad("bus_bytes", f"{bus} is not {factor * nbytes}: {why}")

    sample = row["sample"]
    if sample is not None:
        if sample < 0:
            bad("sample", f"{sample} is negative; expected an index from 0")
        elif row["statistic"] in STATISTICS and row["statistic"] != "sample" and sample != 0:
            bad("sample", f"{sample} on a {row['statistic']} row; a statistic's row has sample 0")
    if row["reps"] is not None and row["reps"] < 1:
        bad("reps", f"{row['reps']} is not >= 1 (operations per timed region)")

    seconds = row["seconds"]
    if seconds is None:
        bad("seconds", "is empty; expected the time of one operation in seconds (> 0)")
    elif not math.isnan(seconds) and seconds <= 0:
        bad("seconds", f"{seconds!r} is not > 0; expected the time of one operation in seconds")
    time_ok = seconds is not None and not math.isnan(seconds) and seconds > 0

    for col, unit in (("gb_per_s", 1e9), ("gib_per_s", float(2 ** 30))):
        value = row[col]
        if phase == "latency":
            if value is not None:
                bad(col, f"{value!r} on a latency row; leave it empty (the time of one access is no bandwidth)")
            continue
        if row["verified"] == "fail":
            if value is not None:
                bad(col, f"{value!r} on a row whose verification failed; leave it empty "
                         "(a wrong result has no bandwidth)")
            continue
        if value is None:
            bad(col, "is empty; expected bytes / seconds / "
                     + ("1e9" if col == "gb_per_s" else "2**30")
                     + " (empty only when verified is fail)")
        elif not math.isnan(value) and time_ok and nbytes is not None and nbytes > 0:
            expected = nbytes / seconds / unit
            if abs(value - expected) > _REL_TOL * expected:
                bad(col, f"{value!r} is not bytes / seconds / {'1e9' if col == 'gb_per_s' else '2**30'} "
                         f"= {expected!r} (relative tolerance {_REL_TOL:g})")

    if not _KERNEL_RE.match(row["kernel"]):
        bad("kernel", f"{row['kernel']!r} is not a kernel name; expected a lower-case word "
                      "such as numpy, libc, c or tinymembench")

    flags, alias = row["flags"], row["alias"]
    flag_value: int | None = None
    if flags:
        try:
            flag_value = _parse_flags(flags)
        except ValueError as e:
            bad("flags", str(e))
    if alias and alias not in ALIASES:
        bad("alias", f"{alias!r} is not an alias; expected one of: {', '.join(ALIASES)} (or empty)")
    if bench in _BUFFER_MODE:
        mode = _BUFFER_MODE[bench]
        if mode is None:
            if flags:
                bad("flags", f"{flags!r} on {bench}, which uses host buffers only; leave it empty")
            if alias:
                bad("alias", f"{alias!r} on {bench}, which uses host buffers only; leave it empty")
        elif not flags:
            bad("flags", f"is empty, but {bench} uses a GPU buffer; expected its allocation flags, "
                         f"e.g. {mode.name}")
        elif flag_value is not None and (flag_value & _MODE_MASK) != int(mode):
            bad("flags", f"{flags!r} does not give {bench}'s buffer the {mode.name} mode "
                         f"(flags & 0xC must be {int(mode)})")

    if kind == "published":
        if row["verified"] != "unknown":
            bad("verified", f"{row['verified']!r} in a published recording; expected unknown "
                            "(a published figure carries no check we ran)")
        if row["reps"] is not None and row["reps"] != 1:
            bad("reps", f"{row['reps']} in a published recording; expected 1 "
                        "(how the source repeated goes in statistic_note)")

    return (None if problems else row), problems


_KEY = ("benchmark", "phase", "size_bytes", "statistic", "sample", "kernel", "flags", "reps")


def _check_rows(rows: Iterable[tuple[str, Mapping[str, Any]]], kind: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    typed: list[dict[str, Any]] = []
    problems: list[str] = []
    seen: dict[tuple[Any, ...], str] = {}
    count = 0
    for label, raw in rows:
        count += 1
        row, found = _check_row(label, raw, kind)
        problems += found
        if row is None:
            continue
        key = tuple(row[k] for k in _KEY)
        if key in seen:
            problems.append(f"{label}, column 'sample': repeats {seen[key]} (same benchmark, phase, "
                            "size_bytes, statistic, sample, kernel, flags and reps); samples of one "
                            "series need distinct sample numbers")
        else:
            seen[key] = label.split(" (")[0]
        typed.append(row)
    if count == 0:
        problems.append("no data rows: a recording needs at least one row below the header")
    return typed, problems


# --- checking the sidecar ---------------------------------------------------

def _parse_time(s: str) -> datetime:
    # Python 3.10's fromisoformat does not take a trailing Z.
    return datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)


def _check_meta(meta: Any) -> list[str]:
    """Problems with the sidecar, each as "field 'a.b': what is wrong"."""
    if not isinstance(meta, dict):
        return [f"the sidecar is a {type(meta).__name__}; expected a JSON object"]
    problems: list[str] = []

    def bad(field: str, what: str) -> None:
        problems.append(f"field '{field}': {what}")

    def text(obj: dict[str, Any], key: str, field: str, *, required: bool, nonempty: bool = True) -> str | None:
        if key not in obj:
            if required:
                bad(field, "is missing" + ("" if nonempty else "; expected text (may be empty)"))
            return None
        v = obj[key]
        if v is None and not required:
            return None
        if not isinstance(v, str):
            bad(field, f"{v!r} is not text")
            return None
        if nonempty and required and not v.strip():
            bad(field, "is empty")
        return v

    def section(key: str) -> dict[str, Any]:
        v = meta.get(key)
        if not isinstance(v, dict):
            bad(key, "is missing" if v is None else f"{v!r} is not an object")
            return {}
        return v

    if meta.get("schema") != SCHEMA:
        bad("schema", f"{meta.get('schema')!r}; expected {SCHEMA!r}")
    text(meta, "title", "title", required=True)

    source = section("source")
    kind = source.get("kind")
    if source and kind not in SOURCE_KINDS:
        bad("source.kind", f"{kind!r}; expected one of: {', '.join(SOURCE_KINDS)}")
    published, measured = kind == "published", kind == "measured"
    if source:
        text(source, "reference", "source.reference", required=True, nonempty=published)
        text(source, "url", "source.url", required=published, nonempty=False)
        text(source, "notes", "source.notes", required=True, nonempty=published)
        text(source, "short", "source.short", required=False)

    machine = section("machine")
    is_pi = machine.get("is_pi")
    if machine:
        if not isinstance(is_pi, bool):
            bad("machine.is_pi", f"{is_pi!r}; expected true or false")
        description = text(machine, "description", "machine.description", required=True) or ""
        text(machine, "board", "machine.board", required=is_pi is True)
        text(machine, "revision", "machine.revision", required=measured and is_pi is True)
        cpu_model = text(machine, "cpu_model", "machine.cpu_model", required=measured) or ""
        text(machine, "arch", "machine.arch", required=measured)
        text(machine, "kernel", "machine.kernel", required=measured)
        for key in ("cpu_mhz", "sdram_mhz"):
            v = machine.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
                bad(f"machine.{key}", f"{v!r}; expected a number > 0, or null when the source does not give it")
        if is_pi is False and _PI_RE.search(cpu_model):
            bad("machine.cpu_model", f"{cpu_model!r} names a Raspberry Pi, but is_pi is false; "
                                     "give the processor as the host reports it")
    else:
        description = ""

    software = meta.get("software")
    if not isinstance(software, dict):
        bad("software", "is missing" if software is None else f"{software!r} is not an object")
    elif measured:
        for key in ("python", "numpy", "pimem"):
            text(software, key, f"software.{key}", required=True)

    backend = meta.get("backend", "<missing>")
    if backend == "<missing>":
        bad("backend", "is missing; expected pi or emulator for a measured recording, null for a published one")
    elif published and backend is not None:
        bad("backend", f"{backend!r} in a published recording; expected null (pimem did not run it)")
    elif measured and backend not in RECORDING_BACKENDS:
        bad("backend", f"{backend!r}; a measured recording needs one of: {', '.join(RECORDING_BACKENDS)}")
    if measured and backend == "emulator":
        if is_pi is True:
            bad("machine.is_pi", "true, but the backend is the emulator: an emulator run is a host run, "
                                 "not a Raspberry Pi measurement; set is_pi to false")
        if "host run" not in description.lower():
            bad("machine.description", f"{description!r} does not say it is a host run; an emulator "
                                       "recording's description must contain 'host run'")
    if measured and backend == "pi" and is_pi is False:
        bad("machine.is_pi", "false, but the backend is pi, which only runs on a Raspberry Pi")

    if "kernel_choice" not in meta and measured:
        bad("kernel_choice", "is missing; expected the kernel the recorder chose (e.g. numpy)")
    else:
        text(meta, "kernel_choice", "kernel_choice", required=measured)
    created = text(meta, "created", "created", required=True)
    if created:
        try:
            _parse_time(created)
        except ValueError:
            bad("created", f"{created!r} is not an ISO-8601 time such as 2026-11-25T09:30:00+00:00")
    text(meta, "command", "command", required=True)
    text(meta, "statistic_note", "statistic_note", required=True)
    return problems


def _kind(meta: Any) -> str | None:
    try:
        k = meta["source"]["kind"]
    except (TypeError, KeyError):
        return None
    return k if k in SOURCE_KINDS else None


def _raise(problems: list[str]) -> None:
    if not problems:
        return
    shown = problems[:_MAX_REPORTED]
    more = len(problems) - len(shown)
    head = f"{len(problems)} problems (schema: data/README.md):\n" if len(problems) > 1 else ""
    tail = f"\n... and {more} more" if more else ""
    raise DataError(head + "\n".join(shown) + tail)


# --- frames -----------------------------------------------------------------

def _frame_rows(frame: pd.DataFrame) -> Iterable[tuple[str, dict[str, Any]]]:
    for pos, (index, record) in enumerate(zip(frame.index, frame.to_dict("records"))):
        # Row numbers as the saved CSV will show them (the header is row 1).
        yield f"row {pos + 2} (index {index!r})", record


def validate_frame(frame: pd.DataFrame, meta: Mapping[str, Any], *, name: str = "<frame>") -> None:
    """Check a frame built in memory and its sidecar dict; DataError lists what is wrong."""
    if not isinstance(frame, pd.DataFrame):
        raise UsageError(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}")
    problems = [f"{name} (meta), {p}" for p in _check_meta(meta)]
    header = _check_header([str(c) for c in frame.columns], "header")
    problems += [f"{name}, {p}" for p in header]
    if not header:
        _, found = _check_rows(_frame_rows(frame), _kind(meta))
        problems += [f"{name}, {p}" for p in found]
    _raise(problems)


def _build_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    cols: dict[str, Any] = {}
    for c in COLUMNS:
        values = [r[c] for r in rows]
        if c in _INT_COLUMNS:
            cols[c] = pd.Series(values, dtype="int64")
        elif c in _FLOAT_COLUMNS:
            cols[c] = pd.Series([math.nan if v is None else v for v in values], dtype="float64")
        elif c == "overhead_bound":
            cols[c] = pd.Series(values, dtype="bool")
        else:
            cols[c] = pd.Series(values)  # text: pandas picks its string dtype
    return pd.DataFrame(cols, columns=list(COLUMNS))


# --- files ------------------------------------------------------------------

_MAX_FILE = 256 << 20   # bytes: far above any recording, far below what would exhaust memory


def _read_text(path: Path, encoding: str) -> str:
    """A regular file's text: never a FIFO (it would hang), a device or a symlink loop."""
    from .safefs import read_regular

    return read_regular(path, limit=_MAX_FILE).decode(encoding)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows; write the value, or null")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]}... is too large for a float")
    return value


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
    return meta, [f"{path}, {p}" for p in _check_meta(meta)]


def _read_table(path: Path, kind: str | None) -> tuple[list[dict[str, Any]], list[str]]:
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
        return [], [f"{path}, row 1: the file is empty; expected the header " + ",".join(COLUMNS)]
    header = [h.strip() for h in records[0]]
    problems = [f"{path}, {p}" for p in _check_header(header, "row 1 (header)")]
    if problems:
        return [], problems

    def labelled() -> Iterable[tuple[str, dict[str, Any]]]:
        # Row numbers as a spreadsheet shows them: the header is row 1.
        for number, record in enumerate(records[1:], start=2):
            if not any(cell.strip() for cell in record):
                continue  # a blank line carries no data
            if len(record) != len(COLUMNS):
                problems.append(f"{path}, row {number}: has {len(record)} fields; the header has {len(COLUMNS)}")
                continue
            yield f"row {number}", dict(zip(COLUMNS, record))

    typed, found = _check_rows(labelled(), kind)
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
    rows, found = _read_table(csv_path, _kind(meta))
    problems += found
    if problems:
        return None, problems
    return Recording(csv_path.stem, csv_path, _build_frame(rows), meta), []


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
    """Every problem with the recordings in a folder (default: data_dir()); empty means all good."""
    folder = _folder(directory)
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
    jsons = {p.stem: p for p in _visible(folder, ".json")}
    for stem, path in csvs.items():
        problems += _inspect(path, folder / f"{stem}.json")[1]
    for stem, path in jsons.items():
        if stem not in csvs:
            problems.append(f"{path}: a sidecar without its {stem}.csv (a save that did not finish?); "
                            "restore the CSV or delete the sidecar")
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") and p.name.endswith(_TMP_SUFFIXES):
            problems.append(f"{p}: a temporary file left by an interrupted save_recording; delete it")
    return problems


def list_recordings(directory: str | os.PathLike[str] | None = None) -> list[Recording]:
    """Every recording in a folder (default: data_dir()), by name; DataError if one is broken.

    A recording is a CSV with its sidecar: a sidecar alone (what an
    interrupted save can leave) is not listed; check_data_dir reports it.
    """
    folder = _folder(directory)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such directory (set {ENV_DATA_DIR} to the folder of recordings)")
    return [load_recording(p) for p in _visible(folder, ".csv")]


def load_all(directory: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """All recordings in one frame, with `recording` (its name) and `provenance` columns first."""
    frames = []
    for r in list_recordings(directory):
        f = r.frame.copy()
        f.insert(0, "provenance", r.provenance())
        f.insert(0, "recording", r.name)
        frames.append(f)
    if not frames:
        return pd.DataFrame(columns=["recording", "provenance", *COLUMNS])
    return pd.concat(frames, ignore_index=True)


# --- saving -----------------------------------------------------------------

def _format(col: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if col == "overhead_bound":
        return "true" if value else "false"
    if col in _FLOAT_COLUMNS:
        return repr(float(value))  # shortest text that reads back to the same float
    return str(value)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([_format(c, r[c]) for c in COLUMNS])
    return out.getvalue()


def _write_temp(directory: Path, name: str, suffix: str, text: str) -> Path:
    # os.open with mode 0o666 lets the umask decide the permissions, as for
    # any new file (mkstemp would make the recording private to its owner).
    for _ in range(100):
        tmp = directory / f".{name}.{secrets.token_hex(6)}{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        break
    else:
        raise DataError(f"{directory}: cannot create a temporary file for {name}")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        _discard(tmp)
        raise
    return tmp


def _fsync_dir(directory: Path) -> None:
    # Makes the new directory entry durable; not possible on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _place(src: Path, dst: Path) -> None:
    """Give the finished temp file its final name, never replacing an existing file.

    A hard link fails if dst exists, even if another process took the name a
    moment ago; os.replace would silently overwrite it. Where links are not
    supported, fall back to check-then-replace.
    """
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError:
        if dst.exists():
            raise FileExistsError(str(dst)) from None
        os.replace(src, dst)
        return
    _discard(src)


def _discard(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def save_recording(frame: pd.DataFrame, meta: Mapping[str, Any], directory: str | os.PathLike[str],
                   name: str) -> Path:
    """Validate, then write NAME.csv and NAME.json into directory; returns the CSV path.

    Never overwrites: if NAME is taken (by either file), it uses NAME-2,
    NAME-3, ... Both files are written to hidden temp files and synced first;
    the sidecar gets its name before the CSV, and the CSV is what makes a
    recording, so an interrupted save leaves at most a sidecar without CSV
    (which no listing shows and check_data_dir reports) and never a CSV
    without its provenance.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.endswith((".csv", ".json")):
        raise UsageError(f"recording name {name!r}: use letters, digits, '.', '_' and '-', "
                         "starting with a letter or digit, without .csv/.json")
    validate_frame(frame, meta, name=name)
    rows, _ = _check_rows(_frame_rows(frame), _kind(meta))
    try:
        meta_text = json.dumps(meta, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except (TypeError, ValueError) as e:
        raise DataError(f"{name} (meta): cannot be written as JSON: {e}") from None
    csv_text = _csv_text(rows)

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    tmp_json = _write_temp(folder, name, ".json.tmp", meta_text)
    try:
        tmp_csv = _write_temp(folder, name, ".csv.tmp", csv_text)
    except BaseException:
        _discard(tmp_json)
        raise
    placed: Path | None = None
    try:
        n = 1
        while True:
            stem = name if n == 1 else f"{name}-{n}"
            n += 1
            json_path, csv_path = folder / f"{stem}.json", folder / f"{stem}.csv"
            if json_path.exists() or csv_path.exists():
                continue
            try:
                _place(tmp_json, json_path)
            except FileExistsError:
                continue
            placed = json_path
            _fsync_dir(folder)  # the sidecar is durable before the CSV can appear
            try:
                _place(tmp_csv, csv_path)
            except FileExistsError:
                _discard(json_path)  # ours: we just created it
                placed = None
                tmp_json = _write_temp(folder, name, ".json.tmp", meta_text)
                continue
            placed = None
            _fsync_dir(folder)
            return csv_path
    except BaseException:
        # Interrupted between the two names: take back our sidecar so
        # nothing half-saved stays behind.
        if placed is not None:
            _discard(placed)
        raise
    finally:
        _discard(tmp_json)
        _discard(tmp_csv)


__all__ = [
    "ALIASES", "BENCHMARKS", "BUS_FACTOR", "COLUMNS", "PHASES", "Recording", "SCHEMA", "STATISTICS",
    "VERIFIED", "check_data_dir", "data_dir", "list_recordings", "load_all", "load_recording",
    "save_recording", "validate_frame",
]
