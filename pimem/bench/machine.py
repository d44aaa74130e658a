"""The machine a run is measured on, as its recording's sidecar describes it: CPU, caches, software, board."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from ..memory.backend import Backend
from .benchmarks import RunOptions
from .data import SCHEMA


def cpu_caches(root: str = "/sys/devices/system/cpu/cpu0/cache") -> list[dict[str, Any]]:
    """This machine's CPU caches as sysfs reports them for cpu0: level, type, bytes (empty if unknown).

    Kept with a recording so that a plot shades the caches of the machine that produced the data.
    """
    caches = []
    for index in sorted(Path(root).glob("index[0-9]*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        n = int(size[:-1]) * units[size[-1]] if size[-1:] in units and size[:-1].isdigit() else None
        if n is None and size.isdigit():
            n = int(size)
        if n:
            caches.append({"level": level, "type": kind, "bytes": n})
    return caches

def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo (x86 'model name', ARM 'Model' or the implementer line)."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or platform.machine()
    for key in ("model name", "Model", "Hardware"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if m:
            return m.group(1).strip()
    return platform.machine()


def run_metadata(backend: Backend, kernel: str, options: RunOptions, command: str | None = None) -> dict:
    """Where and how a run was measured: the provenance every recording carries."""
    from ..memory.info import system_info

    info = system_info(backend)
    is_pi = backend.name == "pi"
    cpu = cpu_model()
    board = info.revision.describe() if info.revision else None
    if is_pi:
        description = f"{board or 'Raspberry Pi'} ({cpu}), measured live through /dev/vcio and /dev/mem"
    else:
        description = (f"host run on {cpu} ({platform.machine()}), not a Raspberry Pi: the GPU buffers are the "
                       "emulator's host memory")
    return {
        "schema": SCHEMA,
        "title": f"pimem sweep on {'a Raspberry Pi' if is_pi else 'a host machine'}",
        "source": {"kind": "measured", "reference": f"pimem {__version__}",
                   "notes": "recorded with pimem's timing engine"},
        "machine": {
            "is_pi": is_pi,
            "description": description,
            "board": board if is_pi else None,
            "revision": f"{info.revision_code:x}" if is_pi else None,
            "firmware": f"0x{info.firmware_revision:08X}" if is_pi else None,
            "cpu_model": cpu,
            "arch": platform.machine(),
            "kernel": platform.release(),
            "gpu_mem_bytes": info.vc_memory[1],
            "caches": cpu_caches(),
        },
        "software": {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
                     "pimem": __version__},
        "backend": backend.name,
        "kernel_choice": kernel,
        "iterations": options.iterations,
        "warmup": options.warmup,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "statistic_note": ("one row per timed sample; seconds per operation, the cost of the same call on "
                           "zero bytes subtracted (overhead-bound points keep their raw time)"),
    }
