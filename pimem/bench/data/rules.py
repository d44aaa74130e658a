"""The rules a schema cannot state: between a row's columns, a row and its sidecar, and a sidecar's label."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from ...firmware.memflags import MemFlag
from .schema import _BUFFER_MODE, _MODE_MASK, BENCHMARKS, BUS_FACTOR, LABEL_MAX
from .table import _PRIMARY_KEY, _READERS

_REL_TOL = 1e-6


# --- the rows -----------------------------------------------------------------

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


# --- the sidecar --------------------------------------------------------------

def _parse_time(s: str) -> datetime:
    # Python 3.10's fromisoformat does not take a trailing Z.
    return datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)


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


def _meta_rules(meta: Any) -> Iterator[tuple[str, str]]:
    """What the sidecar schema cannot say: a label Python cannot print (beyond control characters)."""
    if isinstance(meta, dict) and isinstance(meta.get("label"), str):
        why = label_problem(meta["label"])
        if why:
            yield "label", why
