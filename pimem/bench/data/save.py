"""Saving a recording: validated, written to temp files, then named so a half-done save never looks like one."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ...exc import DataError, UsageError
from .files import _NAME_RE, _frame_rows, validate_frame
from .rules import _check_rows
from .schema import _FIELDS, COLUMNS
from .sidecar import _kind


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
    return write_recording(directory, *recording_texts(frame, meta, name))


def recording_texts(frame: pd.DataFrame, meta: Mapping[str, Any], name: str) -> tuple[str, str, str]:
    """(name, CSV text, sidecar text) of a valid recording, or UsageError/DataError saying what is wrong.

    The checking half of save_recording: it can run before the writing half moves to another user.
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
    return name, _csv_text(rows), meta_text


def write_recording(directory: str | os.PathLike[str], name: str, csv_text: str, meta_text: str) -> Path:
    """The writing half of save_recording (texts from recording_texts)."""
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
