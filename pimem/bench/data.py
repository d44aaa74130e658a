"""Recorded data: bandwidth figures with their provenance.

One recording is two files in ``data/``: ``NAME.csv``, a tidy table with one
row per timed sample (or per published statistic), and ``NAME.json``, its
sidecar, which says where the numbers came from (a published source, or
the machine they were recorded on). Two schema files in the package define
the format: ``schemas/recording-table.schema.json``, a Frictionless Table
Schema of the CSV's columns, and ``schemas/recording-meta.schema.json``, a
JSON Schema (draft 2020-12) of the sidecar; ``data/README.md`` explains them.
This module checks files against the schemas (and the few rules a schema
cannot state), loads them, and saves new ones so that a half-done save never
looks like a recording.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import math
import numbers
import operator
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exc import DataError, UsageError
from ..firmware.memflags import MemFlag
from ..paths import DATA_DIR


# --- the schemas --------------------------------------------------------------

def _schema_file(name: str) -> dict[str, Any]:
    # importlib.resources: the package may be installed, zipped or not, beside no data/ folder.
    return json.loads(resources.files(__package__).joinpath("schemas").joinpath(name).read_text("utf-8"))


#: The Table Schema of NAME.csv and the JSON Schema of NAME.json (pimem/bench/schemas/).
TABLE_SCHEMA: dict[str, Any] = _schema_file("recording-table.schema.json")
META_SCHEMA: dict[str, Any] = _schema_file("recording-meta.schema.json")
_FIELDS: dict[str, dict[str, Any]] = {f["name"]: f for f in TABLE_SCHEMA["fields"]}


def _enum(column: str) -> tuple[str, ...]:
    return tuple(v for v in _FIELDS[column]["constraints"]["enum"] if v != "")


SCHEMA: str = META_SCHEMA["properties"]["schema"]["const"]

#: The CSV columns, in their required order.
COLUMNS: tuple[str, ...] = tuple(_FIELDS)

#: Each benchmark and the phases its rows may have (the schema lists the names; which
#: phases go with which benchmark is a rule between two columns, so it is kept here).
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

PHASES: tuple[str, ...] = _enum("phase")
STATISTICS: tuple[str, ...] = _enum("statistic")
VERIFIED: tuple[str, ...] = _enum("verified")
ALIASES: tuple[str, ...] = _enum("alias")
SOURCE_KINDS: tuple[str, ...] = tuple(META_SCHEMA["properties"]["source"]["properties"]["kind"]["enum"])

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

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
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
    return DATA_DIR


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


# --- the Table Schema: one cell ---------------------------------------------
# A small reader of the Table Schema features the table schema uses: each field's
# type casts a cell (CSV text, or a frame's value), then its constraints are checked.
# A frame's missing value (None, NaN, pd.NA) counts as an empty cell.

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


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
# XML Schema's decimal with an exponent; Table Schema's NaN and INF are left out: a measurement is finite.
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _cast_string(field: Mapping[str, Any]) -> Callable[[Any], Any]:
    return str


def _cast_integer(field: Mapping[str, Any]) -> Callable[[Any], Any]:
    def cast(x: Any) -> int:
        if isinstance(x, str):
            if not _INTEGER_TEXT.fullmatch(x):
                raise ValueError(f"{x!r} is not a whole number")
            return int(x)
        if _is_bool(x):
            raise ValueError(f"{x!r} is a boolean, not a whole number")
        try:
            f = float(x)   # a frame's int column holding NaN has become float
        except (TypeError, ValueError):
            raise ValueError(f"{x!r} is not a whole number") from None
        if not math.isfinite(f) or f != int(f):
            raise ValueError(f"{x!r} is not a whole number")
        return int(x) if isinstance(x, numbers.Integral) else int(f)
    return cast


def _cast_number(field: Mapping[str, Any]) -> Callable[[Any], Any]:
    def cast(x: Any) -> float:
        if isinstance(x, str):
            if not _NUMBER_TEXT.fullmatch(x):
                finite = x.lower().lstrip("+-") not in ("nan", "inf", "infinity")
                raise ValueError(f"{x!r} is not a {'' if finite else 'finite '}number")
            f = float(x)
        elif _is_bool(x):
            raise ValueError(f"{x!r} is a boolean, not a number")
        else:
            try:
                f = float(x)
            except (TypeError, ValueError):
                raise ValueError(f"{x!r} is not a number") from None
        if not math.isfinite(f):
            raise ValueError(f"{x!r} is not a finite number")
        return f
    return cast


def _cast_boolean(field: Mapping[str, Any]) -> Callable[[Any], Any]:
    true = field.get("trueValues", ["true", "True", "TRUE", "1"])
    false = field.get("falseValues", ["false", "False", "FALSE", "0"])
    words = {**{t: True for t in true}, **{f: False for f in false}}

    def cast(x: Any) -> bool:
        if _is_bool(x):
            return bool(x)
        if isinstance(x, str) and x in words:
            return words[x]
        raise ValueError(f"{x!r} is not {true[0]} or {false[0]}")
    return cast


_CASTS: dict[str, Callable[[Mapping[str, Any]], Callable[[Any], Any]]] = {
    "string": _cast_string, "integer": _cast_integer, "number": _cast_number, "boolean": _cast_boolean,
}
_BOUNDS = {"minimum": (operator.ge, ">="), "exclusiveMinimum": (operator.gt, ">"),
           "maximum": (operator.le, "<="), "exclusiveMaximum": (operator.lt, "<")}
_CONSTRAINTS = {"required", "enum", "pattern", *_BOUNDS}


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


_MEMO_SIZE = 1024


def _field_reader(field: Mapping[str, Any], table: Mapping[str, Any]) -> Callable[[Any], Any]:
    """The cell reader of one Table Schema field: cell -> value, or ValueError saying what is wrong."""
    name, kind = field["name"], field.get("type", "string")
    constraints = field.get("constraints", {})
    unknown = sorted(set(constraints) - _CONSTRAINTS) + ([] if kind in _CASTS else [f"type {kind}"])
    if unknown:   # the spec: report a constraint one cannot evaluate rather than skip it
        raise NotImplementedError(f"table schema, field {name!r}: pimem.bench.data does not read {', '.join(unknown)}")
    missing = frozenset(field.get("missingValues", table.get("missingValues", [""])))
    required = constraints.get("required", False) or name in table.get("primaryKey", ())
    noun = _a(field.get("title", name))
    expected = f"; expected {field['description']}" if field.get("description") else ""
    cast = _CASTS[kind](field)
    checks: list[tuple[Callable[[Any], bool], Callable[[Any], str]]] = []
    if "enum" in constraints:
        allowed = constraints["enum"]
        listed = ", ".join(str(v) for v in allowed if v != "") + (" (or empty)" if "" in allowed else "")
        checks.append((frozenset(allowed).__contains__,
                       lambda v: f"{v!r} is not {noun}; expected one of: {listed}"))
    if "pattern" in constraints:   # XML Schema regular expressions match the whole value
        rx = re.compile(constraints["pattern"])
        checks.append((lambda v: rx.fullmatch(v) is not None, lambda v: f"{v!r} is not {noun}{expected}"))
    for key, (op, sign) in _BOUNDS.items():
        if key in constraints:
            bound = constraints[key]
            what = "is negative" if key == "minimum" and bound == 0 else f"is not {sign} {bound}"
            checks.append((lambda v, op=op, bound=bound: op(v, bound), lambda v, what=what: f"{v!r} {what}{expected}"))
    memo: dict[str, Any] = {}   # cell text -> value: most cells of a recording repeat

    def value_of(cell: Any) -> Any:
        if not isinstance(cell, str) and _missing(cell):
            cell = ""   # a frame's None, NaN or pd.NA is an empty cell
        try:
            return None if isinstance(cell, str) and cell in missing else cast(cell)
        except ValueError as e:
            raise ValueError(f"{e}{expected}") from None

    def checked(value: Any) -> Any:
        if value is None:
            if required:
                raise ValueError("is empty" + expected)
            return None
        for ok, message in checks:
            if not ok(value):
                raise ValueError(message(value))
        return value

    def read(cell: Any) -> Any:
        if not isinstance(cell, str):
            return checked(value_of(cell))
        if cell in memo:
            return memo[cell]
        value = checked(value_of(cell.strip()))
        if len(memo) < _MEMO_SIZE:
            memo[cell] = value
        return value

    return read


_READERS: tuple[tuple[str, Callable[[Any], Any]], ...] = tuple(
    (f["name"], _field_reader(f, TABLE_SCHEMA)) for f in TABLE_SCHEMA["fields"])
_PRIMARY_KEY: tuple[str, ...] = tuple(TABLE_SCHEMA.get("primaryKey", ()))


# --- the Table Schema: the header and the rows --------------------------------

def _check_header(header: list[str], where: str) -> list[str]:
    """Problems with the column names (empty list when they are COLUMNS in order: fieldsMatch exact)."""
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


_BUS_WHY = {1: "a fill, write or read moves its bytes once",
            2: "a copy reads and writes, so bus_bytes = 2 x bytes",
            3: "standard's total is its fill (once) plus its copy (twice), so bus_bytes = 3 x bytes"}


def _row_rules(row: Mapping[str, Any], bad: set[str], kind: str | None) -> Iterator[tuple[str, str]]:
    """What the table schema cannot say: rules between columns, and between the row and its sidecar.

    Yields (column, problem); a rule is skipped when a cell it needs already failed the schema.
    """
    ok = bad.isdisjoint   # ok(columns): none of them failed the schema
    bench, phase, stat = row["benchmark"], row["phase"], row["statistic"]
    size, nbytes, bus, seconds = row["size_bytes"], row["bytes"], row["bus_bytes"], row["seconds"]
    if ok(("benchmark", "phase")) and phase not in BENCHMARKS[bench]:
        yield "phase", f"{phase!r} is not a phase of {bench}; expected: {' or '.join(BENCHMARKS[bench])}"
    if ok(("size_bytes", "bytes")) and nbytes != size:
        yield "bytes", (f"{nbytes} differs from size_bytes {size}; the bytes counted for bandwidth "
                        "are the buffer size (a copy counts its bytes once)")
    if ok(("phase", "bytes", "bus_bytes")) and bus != BUS_FACTOR[phase] * nbytes:
        factor = BUS_FACTOR[phase]
        yield "bus_bytes", f"{bus} is not {factor * nbytes}: {_BUS_WHY[factor]}"
    if ok(("statistic", "sample")) and stat != "sample" and row["sample"] != 0:
        yield "sample", f"{row['sample']} on a {stat} row; a statistic's row has sample 0"

    for col, unit, shown in (("gb_per_s", 1e9, "1e9"), ("gib_per_s", float(2 ** 30), "2**30")):
        value = row[col]
        if col in bad:
            continue
        if phase == "latency":
            if value is not None:
                yield col, f"{value!r} on a latency row; leave it empty (the time of one access is no bandwidth)"
        elif row["verified"] == "fail":
            if value is not None:
                yield col, f"{value!r} on a row whose verification failed; leave it empty (a wrong result has no bandwidth)"
        elif value is None:
            yield col, f"is empty; expected bytes / seconds / {shown} (empty only when verified is fail)"
        elif ok(("seconds", "bytes")):
            expected = nbytes / seconds / unit
            if abs(value - expected) > _REL_TOL * expected:
                yield col, f"{value!r} is not bytes / seconds / {shown} = {expected!r} (relative tolerance {_REL_TOL:g})"

    flags, alias = row["flags"], row["alias"]
    flag_value: int | None = None
    if flags and "flags" not in bad:
        try:
            flag_value = _parse_flags(flags)
        except ValueError as e:
            yield "flags", str(e)
    if ok(("benchmark", "flags")):
        mode = _BUFFER_MODE[bench]
        if mode is None:
            if flags:
                yield "flags", f"{flags!r} on {bench}, which uses host buffers only; leave it empty"
            if alias and "alias" not in bad:
                yield "alias", f"{alias!r} on {bench}, which uses host buffers only; leave it empty"
        elif not flags:
            yield "flags", f"is empty, but {bench} uses a GPU buffer; expected its allocation flags, e.g. {mode.name}"
        elif flag_value is not None and (flag_value & _MODE_MASK) != int(mode):
            yield "flags", (f"{flags!r} does not give {bench}'s buffer the {mode.name} mode "
                            f"(flags & 0xC must be {int(mode)})")

    if kind == "published":
        if "verified" not in bad and row["verified"] != "unknown":
            yield "verified", (f"{row['verified']!r} in a published recording; expected unknown "
                               "(a published figure carries no check we ran)")
        if "reps" not in bad and row["reps"] != 1:
            yield "reps", (f"{row['reps']} in a published recording; expected 1 "
                           "(how the source repeated goes in statistic_note)")


def _check_row(label: str, raw: Mapping[str, Any], kind: str | None) -> tuple[dict[str, Any] | None, list[str]]:
    """Parse and check one row; returns its typed values (None if any is bad) and the problems."""
    problems: list[str] = []
    row: dict[str, Any] = {}
    bad: set[str] = set()
    for col, read in _READERS:
        try:
            row[col] = read(raw[col])
        except ValueError as e:
            problems.append(f"{label}, column '{col}': {e}")
            row[col] = None
            bad.add(col)
    problems += [f"{label}, column '{col}': {what}" for col, what in _row_rules(row, bad, kind)]
    return (None if problems else row), problems


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
        if _PRIMARY_KEY:
            key = tuple(row[k] for k in _PRIMARY_KEY)
            if key in seen:
                *rest, last = _PRIMARY_KEY
                problems.append(f"{label}, column '{last}': repeats {seen[key]} (the same {', '.join(rest)} and "
                                f"{last}: the table's primary key); rows of one series need distinct {last} numbers")
            else:
                seen[key] = label.split(" (")[0]
        typed.append(row)
    if count == 0:
        problems.append("no data rows: a recording needs at least one row below the header")
    return typed, problems


# --- the JSON Schema of the sidecar -------------------------------------------

def _parse_time(s: str) -> datetime:
    # Python 3.10's fromisoformat does not take a trailing Z.
    return datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)


#: The longest `label` (a student's or board's name) a sidecar may carry.
LABEL_MAX: int = META_SCHEMA["properties"]["label"]["maxLength"]


def label_problem(label: Any) -> str | None:
    """What is wrong with a sidecar's optional `label` (None when it is fine): non-empty printable text.

    The sidecar schema declares the rule (a pattern can exclude control characters, not all
    that Python cannot print); this says it in words, and catches the rest.
    """
    if not isinstance(label, str):
        return f"{label!r} is not text; expected a student's or board's name, e.g. alice or pi-07"
    if not label.strip():
        return "is empty; give a student's or board's name, e.g. alice or pi-07 (or leave the label out)"
    if not label.isprintable():
        return (f"{label!r} has characters that cannot be printed (tabs, newlines, control codes); "
                "use letters, digits, spaces and punctuation")
    if label != label.strip():
        return f"{label!r} starts or ends with spaces; remove them"
    if len(label) > LABEL_MAX:
        return f"{label[:LABEL_MAX]!r}... is {len(label)} characters long; use at most {LABEL_MAX}"
    return None


def _import_jsonschema() -> Any:
    if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        # jsonschema imports rfc3987_syntax, where installed (Jupyter's jsonschema[format-nongpl]
        # brings it), for its "iri" format, and that builds a parser on import: a second here,
        # several on a Pi. The sidecar schema has no "iri"; so it is kept out while jsonschema
        # loads (only the iri formats then go unchecked in this process), and importable after.
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
        try:
            import jsonschema
        finally:
            if "rfc3987_syntax" in sys.modules and sys.modules["rfc3987_syntax"] is None:
                del sys.modules["rfc3987_syntax"]
    import jsonschema
    return jsonschema


def _is_time(value: Any) -> bool:
    if isinstance(value, str):
        _parse_time(value)   # ValueError: not a time
    return True


@functools.lru_cache(maxsize=None)
def _meta_validator() -> Any:
    """The sidecar's validator, made once (jsonschema is imported on first use)."""
    jsonschema = _import_jsonschema()
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("date-time", raises=ValueError)(_is_time)   # as provenance() will read it
    return jsonschema.validators.validator_for(META_SCHEMA)(META_SCHEMA, format_checker=checker)


_JSON_TYPES = {"string": "text", "number": "a number", "integer": "a whole number", "boolean": "true or false",
               "object": "an object", "array": "a list", "null": "null"}
# Fields whose failures code words better than a generic message can.
_WORDING: dict[str, Callable[[Any], str | None]] = {"label": label_problem}


def _json(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _expected(path: list[str]) -> str:
    """'; expected ' and the description the schema gives the field at path ('' if none)."""
    node: Any = META_SCHEMA
    for key in path:
        node = node.get("properties", {}).get(key) if isinstance(node, dict) else None
    described = node.get("description") if isinstance(node, dict) else None
    return f"; expected {described}" if described else ""


def _worded(error: Any) -> list[tuple[str, str]]:
    """A jsonschema ValidationError as (field, what is wrong and what to do) pairs."""
    path = [str(p) for p in error.absolute_path]
    keyword, want, value = error.validator, error.validator_value, error.instance
    if keyword == "required":
        return [(".".join(path + [k]), "is missing" + _expected(path + [k]))
                for k in want if isinstance(value, dict) and k not in value]
    field = ".".join(path)
    if field in _WORDING:
        why = _WORDING[field](value)
        if why:
            return [(field, why)]
    custom = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
    if isinstance(custom, dict):
        custom = custom.get(keyword)
    if custom:
        return [(field, custom.replace("{value}", _json(value)) + ("" if ";" in custom else _expected(path)))]
    shown = _json(value)
    if keyword == "type":
        kinds = [want] if isinstance(want, str) else list(want)
        what = f"{shown} is not " + " or ".join(_JSON_TYPES.get(k, k) for k in kinds) + _expected(path)
    elif keyword == "const":
        what = f"{shown}; expected {_json(want)}"
    elif keyword == "enum":
        what = f"{shown}; expected one of: " + ", ".join(w if isinstance(w, str) else _json(w) for w in want)
    elif keyword == "format":
        what = f"{shown} is not a {want}" + _expected(path)
    elif keyword in _BOUNDS:
        what = f"{shown} is not {_BOUNDS[keyword][1]} {want}" + _expected(path)
    else:
        what = error.message + _expected(path)
    return [(field, what)]


def _meta_rules(meta: Any) -> Iterator[tuple[str, str]]:
    """What the sidecar schema cannot say: a label Python cannot print (beyond control characters)."""
    if isinstance(meta, dict) and isinstance(meta.get("label"), str):
        why = label_problem(meta["label"])
        if why:
            yield "label", why


def _check_meta(meta: Any) -> list[str]:
    """Problems with the sidecar, each as "field 'a.b': what is wrong" (the first problem of each field)."""
    found: dict[str, str] = {}
    for error in _meta_validator().iter_errors(meta):
        for field, what in _worded(error):
            found.setdefault(field, what)
    for field, what in _meta_rules(meta):
        found.setdefault(field, what)
    return [f"field '{f}': {w}" if f else f"the sidecar: {w}" for f, w in found.items()]


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
    head = (f"{len(problems)} problems (schema: pimem/bench/schemas/, explained in data/README.md):\n"
            if len(problems) > 1 else "")
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


_DTYPES = {"integer": "int64", "number": "float64", "boolean": "bool"}   # text: pandas picks its string dtype


def _build_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    cols: dict[str, Any] = {}
    for c in COLUMNS:
        kind = _FIELDS[c].get("type", "string")
        values = [r[c] for r in rows]
        if kind == "number":
            values = [math.nan if v is None else v for v in values]
        cols[c] = pd.Series(values, dtype=_DTYPES.get(kind))
    return pd.DataFrame(cols, columns=list(COLUMNS))


# --- files ------------------------------------------------------------------

_MAX_FILE = 256 << 20   # bytes: far above any recording, far below what would exhaust memory


def _read_text(path: Path, encoding: str) -> str:
    """A regular file's text: never a FIFO (it would hang), a device or a symlink loop."""
    from ..safefs import read_regular

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
    field = _FIELDS[col]
    if field.get("type") == "boolean":
        return (field.get("trueValues") or ["true"])[0] if value else (field.get("falseValues") or ["false"])[0]
    if field.get("type") == "number":
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
