"""pimem: GPU memory on the Raspberry Pi through the VideoCore mailbox, for teaching.

One folder per layer, each importing only from itself and the layers below (tests/test_layers.py):
firmware (message bytes, transports, mailbox calls, the emulator, board codes) -> memory (GpuBuffer,
the ledger, the backend) -> bench (timing, kernels, benchmarks, recordings) -> course (plots, widgets,
labs, rendering) -> notebooks. exc, safefs, paths and _version are the foundation; cli is the command.

The public names are imported on first use (PEP 562), so that `python -m pimem`
starts in pimem.__main__, where a Ctrl-C during the imports is one line.
"""
from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

_PUBLIC = {
    "get_backend": "memory.backend", "GpuBuffer": "memory.buffer", "PimemError": "exc",
    "Alias": "firmware.memflags", "BusAddress": "firmware.memflags", "MemFlag": "firmware.memflags",
    "bus_to_phys": "firmware.memflags",
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
