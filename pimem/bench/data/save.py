"""Saving a recording: validated, written to temp files, then named so a half-done save never looks like one."""
from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ...exc import DataError
from ...safefs import remove_leftovers, write_file
from .files import check_name, stored_rows, validate_frame
from .rules import check_rows
from .schema import FIELDS, REQUIRED, STORED
from .sidecar import kind_of


def _format(col: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    field = FIELDS[col]
    if field.get("type") == "boolean":
        return (field.get("trueValues") or ["true"])[0] if value else (field.get("falseValues") or ["false"])[0]
    if field.get("type") == "number":
        return repr(float(value))  # shortest text that reads back to the same float
    return str(value)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    # A column the format does not require and no row fills is left out (as a file from before it was
    # added has it), so that adding an optional column changes no file that does not use it.
    columns = [c for c in STORED if c in REQUIRED or any(r.get(c) is not None for r in rows)]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_format(c, r[c]) for c in columns])
    return out.getvalue()


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
    return write_recording(directory, *recording_texts(frame, meta, name))


def recording_texts(frame: pd.DataFrame, meta: Mapping[str, Any], name: str) -> tuple[str, str, str]:
    """(name, CSV text, sidecar text) of a valid recording, or UsageError/DataError saying what is wrong.

    The checking half of save_recording: it can run before the writing half moves to another user.
    """
    check_name(name)
    validate_frame(frame, meta, name=name)
    rows, _ = check_rows(stored_rows(frame), kind_of(meta))
    try:
        meta_text = json.dumps(meta, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except (TypeError, ValueError) as e:
        raise DataError(f"{name} (meta): cannot be written as JSON: {e}") from None
    return name, _csv_text(rows), meta_text


def write_recording(directory: str | os.PathLike[str], name: str, csv_text: str, meta_text: str) -> Path:
    """The writing half of save_recording (texts from recording_texts); returns the CSV's path.

    The sidecar gets its name before the CSV (a recording is its CSV), each through
    safefs.write_file without replacing anything; the leftovers of an interrupted save of
    ours in the folder are removed first.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    remove_leftovers(folder)
    n = 1
    while True:
        stem = name if n == 1 else f"{name}-{n}"
        n += 1
        json_path, csv_path = folder / f"{stem}.json", folder / f"{stem}.csv"
        if os.path.lexists(json_path) or os.path.lexists(csv_path):
            continue
        try:
            write_file(json_path, meta_text, replace=False, mode=0o644, durable=True)
        except FileExistsError:
            continue
        try:
            write_file(csv_path, csv_text, replace=False, mode=0o644, durable=True)
        except BaseException as e:
            json_path.unlink(missing_ok=True)   # ours, made a moment ago: no sidecar without its CSV
            if isinstance(e, FileExistsError):
                continue
            raise
        return csv_path
