"""The two declared schemas of a recording (pimem/bench/schemas/), and the names and tables read from them."""
from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ...firmware.memflags import MemFlag
from ..catalog import BUS_FACTOR, CATALOG  # noqa: F401 - BUS_FACTOR is part of the format
from ..catalog import PHASES as CATALOG_PHASES
from .quantities import DERIVED, UNITS


# --- the schemas --------------------------------------------------------------

def _schema_file(name: str) -> dict[str, Any]:
    # importlib.resources: the package may be installed, zipped or not, beside no data/ folder.
    return json.loads(resources.files("pimem.bench").joinpath("schemas").joinpath(name).read_text("utf-8"))


#: The Table Schema of NAME.csv and the JSON Schema of NAME.json (pimem/bench/schemas/).
TABLE_SCHEMA: dict[str, Any] = _schema_file("recording-table.schema.json")
META_SCHEMA: dict[str, Any] = _schema_file("recording-meta.schema.json")
FIELDS: dict[str, dict[str, Any]] = {f["name"]: f for f in TABLE_SCHEMA["fields"]}
# The names the catalog declares, and the units quantities.py reads: the schema file does not repeat them.
FIELDS["benchmark"].setdefault("constraints", {})["enum"] = list(CATALOG)
FIELDS["phase"].setdefault("constraints", {})["enum"] = list(CATALOG_PHASES)
FIELDS["unit"].setdefault("constraints", {})["enum"] = list(UNITS)


def _enum(column: str) -> tuple[str, ...]:
    return tuple(v for v in FIELDS[column]["constraints"]["enum"] if v != "")


SCHEMA: str = META_SCHEMA["properties"]["schema"]["const"]

#: The CSV's columns, in the order a save writes them (a file may leave out those not required).
STORED: tuple[str, ...] = tuple(FIELDS)
REQUIRED: tuple[str, ...] = tuple(n for n, f in FIELDS.items() if f.get("constraints", {}).get("required"))

#: A recording's frame (what load_recording gives and plots read): the stored columns, with the computed
#: ones (quantities.DERIVED) where the stored quantity is, and the quantity (value, unit) last.
_QUANTITY = STORED.index("value"), STORED.index("unit") + 1
COLUMNS: tuple[str, ...] = (*STORED[:_QUANTITY[0]], *DERIVED, *STORED[_QUANTITY[1]:], *STORED[slice(*_QUANTITY)])

#: Each benchmark and the phases its rows may have (pimem.bench.catalog declares them).
BENCHMARKS: dict[str, tuple[str, ...]] = {name: spec.phases for name, spec in CATALOG.items()}

PHASES: tuple[str, ...] = _enum("phase")
STATISTICS: tuple[str, ...] = _enum("statistic")
VERIFIED: tuple[str, ...] = _enum("verified")
ALIASES: tuple[str, ...] = _enum("alias")
SOURCE_KINDS: tuple[str, ...] = tuple(META_SCHEMA["properties"]["source"]["properties"]["kind"]["enum"])

#: The cache mode (flags & 0xC) of each benchmark's GPU buffer; None = host buffers only.
BUFFER_MODE: dict[str, MemFlag | None] = {name: spec.flags for name, spec in CATALOG.items()}
MODE_MASK = int(MemFlag.L1_NONALLOCATING)

#: The longest `label` (a student's or board's name) a sidecar may carry.
LABEL_MAX: int = META_SCHEMA["properties"]["label"]["maxLength"]
