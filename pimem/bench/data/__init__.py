"""Recorded data: bandwidth figures with their provenance, as NAME.csv (the table) and NAME.json (its sidecar).

The format is declared in pimem/bench/schemas/ and explained in data/README.md; this package re-exports its rooms.
"""
from __future__ import annotations

from ...exc import DataError, UsageError
from .files import (
    NAME_MAX, NAME_RE, ENV_DATA_DIR, ENV_USER_DATA_DIR, Recording, check_data_dir, check_name, data_dir, data_folders, list_recordings,
    load_all, load_recording, orphan_sidecars, remove_data_leftovers, user_data_dir, validate_frame,
)
from .rules import label_problem
from .save import save_recording
from .schema import (
    _BUFFER_MODE, ALIASES, BENCHMARKS, BUS_FACTOR, COLUMNS, LABEL_MAX, META_SCHEMA, PHASES, SCHEMA, SOURCE_KINDS,
    STATISTICS, TABLE_SCHEMA, VERIFIED,
)
from .table import _field_reader

__all__ = [
    "ALIASES", "BENCHMARKS", "BUS_FACTOR", "COLUMNS", "PHASES", "Recording", "SCHEMA", "STATISTICS",
    "NAME_MAX", "NAME_RE", "VERIFIED", "check_data_dir", "check_name", "data_dir", "data_folders", "list_recordings", "load_all", "load_recording",
    "orphan_sidecars", "remove_data_leftovers", "save_recording", "user_data_dir", "validate_frame",
]
