"""The two declared schemas of a recording (pimem/bench/schemas/), and the names and tables read from them."""
from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ...firmware.memflags import MemFlag


# --- the schemas --------------------------------------------------------------

def _schema_file(name: str) -> dict[str, Any]:
    # importlib.resources: the package may be installed, zipped or not, beside no data/ folder.
    return json.loads(resources.files("pimem.bench").joinpath("schemas").joinpath(name).read_text("utf-8"))


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

#: The longest `label` (a student's or board's name) a sidecar may carry.
LABEL_MAX: int = META_SCHEMA["properties"]["label"]["maxLength"]
