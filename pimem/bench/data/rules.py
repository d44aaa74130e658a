"""The rules a schema cannot state: between a row's columns, a row and its sidecar, and a sidecar's label."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from ...firmware.memflags import MemFlag
from .quantities import PER_BYTES_UNITS, TIME_UNITS
from .schema import BENCHMARKS, BUFFER_MODE, LABEL_MAX, MODE_MASK
from .table import PRIMARY_KEY, READERS


# --- the rows -----------------------------------------------------------------

def parse_flags(s: str) -> int:
    """The value of flag names joined by '|' (e.g. 'DIRECT|ZERO'); ValueError naming what is wrong."""
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


def _row_rules(row: Mapping[str, Any], bad: set[str], kind: str | None) -> Iterator[tuple[str, str]]:
    """What the table schema cannot say: rules between columns, and between the row and its sidecar.

    Yields (column, problem); a rule is skipped when a cell it needs already failed the schema.
    """
    ok = bad.isdisjoint   # ok(columns): none of them failed the schema
    bench, phase, stat, unit = row["benchmark"], row["phase"], row["statistic"], row["unit"]
    if ok(("benchmark", "phase")) and phase not in BENCHMARKS[bench]:
        yield "phase", f"{phase!r} is not a phase of {bench}; expected: {' or '.join(BENCHMARKS[bench])}"
    if ok(("statistic", "sample")) and stat != "sample" and row["sample"] != 0:
        yield "sample", f"{row['sample']} on a {stat} row; a statistic's row has sample 0"
    if ok(("phase", "unit")) and phase == "latency" and unit not in TIME_UNITS:
        yield "unit", f"{unit!r} on a latency row; a latency is a time: {', '.join(TIME_UNITS)}"
    if ok(("unit", "size_bytes")) and unit in PER_BYTES_UNITS and row["size_bytes"] % PER_BYTES_UNITS[unit][1]:
        per = PER_BYTES_UNITS[unit][1]
        yield "size_bytes", (f"{row['size_bytes']} with unit {unit}, a time per {per} bytes; expected a whole "
                             f"number of {per}-byte elements (a multiple of {per})")
    if kind == "measured" and ok(("unit",)) and unit != "s":
        yield "unit", f"{unit!r} in a measured recording; pimem measures seconds: s"
    yield from _flag_rules(row, bad)
    if kind == "published":
        if "verified" not in bad and row["verified"] != "unknown":
            yield "verified", (f"{row['verified']!r} in a published recording; expected unknown "
                               "(a published figure carries no check we ran)")
        if "reps" not in bad and row["reps"] != 1:
            yield "reps", (f"{row['reps']} in a published recording; expected 1 "
                           "(how the source repeated goes in statistic_note)")


def _flag_rules(row: Mapping[str, Any], bad: set[str]) -> Iterator[tuple[str, str]]:
    """The flags and alias a row's benchmark may carry: its buffer's cache mode, or none for host memory."""
    bench, flags, alias = row["benchmark"], row["flags"], row["alias"]
    flag_value: int | None = None
    if flags and "flags" not in bad:
        try:
            flag_value = parse_flags(flags)
        except ValueError as e:
            yield "flags", str(e)
    if not bad.isdisjoint(("benchmark", "flags")):
        return
    mode = BUFFER_MODE[bench]
    if mode is None:
        if flags:
            yield "flags", f"{flags!r} on {bench}, which uses host buffers only; leave it empty"
        if alias and "alias" not in bad:
            yield "alias", f"{alias!r} on {bench}, which uses host buffers only; leave it empty"
    elif not flags:
        yield "flags", f"is empty, but {bench} uses a GPU buffer; expected its allocation flags, e.g. {mode.name}"
    elif flag_value is not None and (flag_value & MODE_MASK) != int(mode):
        yield "flags", (f"{flags!r} does not give {bench}'s buffer the {mode.name} mode "
                        f"(flags & 0xC must be {int(mode)})")


def check_row(label: str, raw: Mapping[str, Any], kind: str | None) -> tuple[dict[str, Any] | None, list[str]]:
    """Parse and check one stored row (a missing optional column reads as empty); its values (None if any
    is bad) and the problems."""
    problems: list[str] = []
    row: dict[str, Any] = {}
    bad: set[str] = set()
    for col, read in READERS.items():
        try:
            row[col] = read(raw.get(col, ""))
        except ValueError as e:
            problems.append(f"{label}, column '{col}': {e}")
            row[col] = None
            bad.add(col)
    problems += [f"{label}, column '{col}': {what}" for col, what in _row_rules(row, bad, kind)]
    return (None if problems else row), problems


def check_rows(rows: Iterable[tuple[str, Mapping[str, Any]]], kind: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Every row checked, and no two with the same primary key; (the good rows' values, the problems)."""
    typed: list[dict[str, Any]] = []
    problems: list[str] = []
    seen: dict[tuple[Any, ...], str] = {}
    count = 0
    for label, raw in rows:
        count += 1
        row, found = check_row(label, raw, kind)
        problems += found
        if row is None:
            continue
        key = tuple(row[k] for k in PRIMARY_KEY)
        if key in seen:
            *rest, last = PRIMARY_KEY
            problems.append(f"{label}, column '{last}': repeats {seen[key]} (the same {', '.join(rest)} and "
                            f"{last}: the table's primary key); rows of one series need distinct {last} numbers")
        else:
            seen[key] = label.split(" (")[0]
        typed.append(row)
    if count == 0:
        problems.append("no data rows: a recording needs at least one row below the header")
    return typed, problems


# --- the sidecar --------------------------------------------------------------

def parse_time(s: str) -> datetime:
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


def meta_rules(meta: Any) -> Iterator[tuple[str, str]]:
    """What the sidecar schema cannot say: a label Python cannot print (beyond control characters)."""
    if isinstance(meta, dict) and isinstance(meta.get("label"), str):
        why = label_problem(meta["label"])
        if why:
            yield "label", why
