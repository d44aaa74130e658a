"""Helpers for notebooks/00-start-here.ipynb: this machine, this process, the course outline."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pandas as pd

from ...memory.backend import Backend, get_backend
from ...units import MiB


def machine_table(backend: Backend | None = None) -> pd.DataFrame:
    """What the firmware (or its model) reports: backend, board, firmware, memory split.

    Like `pimem info`, without the emulator's state path (a temporary
    directory would make the output differ from run to run) and without
    this process, which `this_process()` describes: a rendered course must
    read the same whichever machine rendered it.
    """
    from ...memory.info import system_info

    backend = backend if backend is not None else get_backend()
    info = system_info(backend)
    arm, vc = info.arm_memory, info.vc_memory
    board = info.revision.describe() if info.revision else f"unknown revision {info.revision_code:x}"
    rows = [
        ("backend", "pi (/dev/vcio)" if backend.name == "pi" else "emulator (pimem's model of a Pi 3B firmware)"),
        ("board", board),
        ("revision code", f"{info.revision_code:x}"),
        ("firmware revision", f"0x{info.firmware_revision:08X}"),
        ("ARM memory", f"0x{arm[0]:08X} - 0x{arm[0] + arm[1] - 1:08X} ({arm[1] // MiB} MiB)"),
        ("GPU memory (gpu_mem)", f"0x{vc[0]:08X} - 0x{vc[0] + vc[1] - 1:08X} ({vc[1] // MiB} MiB)"),
    ]
    return pd.DataFrame(rows, columns=["what", "value"])


def this_process() -> str:
    """This Python process: machine, 32- or 64-bit, root or not, and the ioctl number it sends.

    One line that differs from machine to machine (x86_64 or aarch64 or armv7l,
    root or not), so notebooks print it in a cell tagged volatile.
    """
    from ...memory.info import describe_process

    return f"this process: {describe_process()} (the number it sends to /dev/vcio)"


def course_outline(directory: str | os.PathLike | None = None) -> pd.DataFrame:
    """The notebooks in order, each with the title of its first heading."""
    from ..lab import notebooks_dir

    directory = Path(directory) if directory is not None else notebooks_dir()
    rows = []
    for path in sorted(directory.glob("[0-9][0-9]-*.ipynb")):
        title = ""
        with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
            nb = json.loads(path.read_text())
            for cell in nb["cells"]:
                if cell.get("cell_type") == "markdown":
                    src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                    heading = next((ln for ln in src.splitlines() if ln.startswith("#")), "")
                    title = heading.lstrip("#").strip()
                    break
        rows.append({"notebook": path.name, "title": title})
    return pd.DataFrame(rows, columns=["notebook", "title"])


__all__ = ["course_outline", "machine_table", "this_process"]
