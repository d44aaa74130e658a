"""pimem: GPU memory on the Raspberry Pi through the VideoCore mailbox, for teaching.

Layers, each using only the one below it:
protocol (message bytes) -> transport (/dev/vcio or the emulator) ->
mailbox (one call per tag) -> buffer (GpuBuffer) -> benchmarks -> plots,
widgets -> notebooks.

The public names are imported on first use (PEP 562), so that `python -m pimem`
starts in pimem.__main__, where a Ctrl-C during the imports is one line.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "get_backend": "backend", "GpuBuffer": "buffer", "PimemError": "exc",
    "Alias": "memflags", "BusAddress": "memflags", "MemFlag": "memflags", "bus_to_phys": "memflags",
}

__all__ = ["Alias", "BusAddress", "GpuBuffer", "MemFlag", "PimemError", "bus_to_phys", "get_backend", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pimem' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
