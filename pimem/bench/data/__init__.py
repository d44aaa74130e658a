"""Recorded data: bandwidth figures with their provenance, as NAME.csv (the table) and NAME.json (its sidecar).

The format is declared in pimem/bench/schemas/ (the benchmarks in pimem/bench/catalog.py) and explained in
data/README.md; this package gathers its rooms: schema (the declared names), quantities (what a row stores
and what is computed from it), table (cells and header), rules (between columns), sidecar, files (reading
and listing), save (writing).
"""
from __future__ import annotations

from ...exc import DataError, UsageError
from .files import (
    ENV_DATA_DIR, ENV_USER_DATA_DIR, NAME_MAX, NAME_RE, Recording, check_data_dir, check_name, data_dir, data_folders,
    list_recordings, load_all, load_recording, orphan_sidecars, RECORDING_COLUMNS, remove_data_leftovers, user_data_dir,
    validate_frame,
)
from .quantities import DERIVED, PER_BYTES_UNITS, RATE_UNITS, TIME_UNITS, UNITS, seconds_of
from .rules import label_problem
from .save import save_recording
from .schema import (
    ALIASES, BENCHMARKS, BUFFER_MODE, BUS_FACTOR, COLUMNS, LABEL_MAX, META_SCHEMA, PHASES, SCHEMA, SOURCE_KINDS,
    STATISTICS, STORED, TABLE_SCHEMA, VERIFIED,
)

__all__ = [
    "ALIASES", "BENCHMARKS", "BUFFER_MODE", "BUS_FACTOR", "COLUMNS", "DERIVED", "DataError", "ENV_DATA_DIR",
    "ENV_USER_DATA_DIR", "LABEL_MAX", "META_SCHEMA", "NAME_MAX", "NAME_RE", "PER_BYTES_UNITS", "PHASES", "RATE_UNITS", "RECORDING_COLUMNS", "Recording",
    "SCHEMA", "SOURCE_KINDS", "STATISTICS", "STORED", "TABLE_SCHEMA", "TIME_UNITS", "UNITS", "UsageError",
    "VERIFIED", "check_data_dir", "check_name", "data_dir", "data_folders", "label_problem", "list_recordings",
    "load_all", "load_recording", "orphan_sidecars", "remove_data_leftovers", "save_recording", "seconds_of",
    "user_data_dir", "validate_frame",
]
