"""Live or recorded: what a notebook can do on this machine.

A notebook's ``parameters`` cell sets ``MODE = "auto"``. Auto means live
on a Raspberry Pi where pimem can map GPU memory (the pi backend and
root), and recorded data otherwise (with the emulator for the mailbox
walk-through). ``MODE = "live"`` off a Pi measures this computer on the
emulator backend: a host run, labelled so in every figure, never a Pi's. ``PIMEM_MODE`` overrides "auto": the render command sets
it to "recorded" so committed outputs never depend on the machine.
"""
from __future__ import annotations

import html
import os
from dataclasses import dataclass

from ..memory.backend import default_backend_name
from ..exc import UsageError

ENV_MODE = "PIMEM_MODE"
MODES = ("auto", "live", "recorded")


@dataclass(frozen=True)
class RunMode:
    """The mode a notebook runs in, and why."""

    live: bool
    backend: str   # the backend the mailbox walk-through uses: "pi" or "emulator"
    reason: str

    @property
    def name(self) -> str:
        return "live" if self.live else "recorded"

    @property
    def host_run(self) -> bool:
        """Measuring this computer, not a Pi (live on the emulator backend)."""
        return self.live and self.backend != "pi"

    def banner_text(self) -> str:
        if self.host_run:
            return ("LIVE on this computer, a host run: figures are measured now in this machine's memory, "
                    f"with the emulator standing in for the GPU firmware; they are not a Pi's. ({self.reason})")
        if self.live:
            return f"LIVE on this Raspberry Pi: figures are measured now. ({self.reason})"
        return (f"RECORDED data: figures come from data/, each labelled with its source; "
                f"the mailbox runs on the {self.backend} backend. ({self.reason})")

    def _repr_html_(self) -> str:
        colour = "#ef6c00" if self.host_run else "#2e7d32" if self.live else "#1565c0"
        return (f'<div style="border-left:6px solid {colour};padding:6px 10px;margin:4px 0;'
                f'background:#f5f5f5"><b>{html.escape("LIVE, HOST RUN" if self.host_run else self.name.upper())}</b> '
                f'{html.escape(self.banner_text().split(": ", 1)[1])}</div>')

    def __str__(self) -> str:
        return self.banner_text()


def _can_go_live() -> tuple[bool, str]:
    if default_backend_name() != "pi":
        return False, "no /dev/vcio here, or PIMEM_BACKEND=emulator: not a Raspberry Pi"
    if os.geteuid() != 0:
        return False, "a Raspberry Pi, but not root: mapping GPU memory through /dev/mem needs root"
    return True, "Raspberry Pi, running as root"


def resolve_mode(mode: str = "auto") -> RunMode:
    """Turn a notebook's MODE parameter into a RunMode (see the module docstring)."""
    if mode not in MODES:
        raise UsageError(f"MODE must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    if mode == "auto":
        forced = os.environ.get(ENV_MODE, "auto")
        if forced not in MODES:
            raise UsageError(f"{ENV_MODE} must be one of {', '.join(map(repr, MODES))}, got {forced!r}")
        mode = forced
    possible, why = _can_go_live()
    if mode == "live" and not possible:
        if default_backend_name() == "pi":   # a Pi, but not root: its GPU memory cannot be mapped
            raise UsageError(f"MODE='live' asked, but {why}; start JupyterLab with sudo, or use MODE='auto'")
        return RunMode(True, "emulator", f"live asked, {why}: measuring this computer instead")
    if mode == "recorded":
        return RunMode(False, default_backend_name() if possible else "emulator",
                       "recorded mode asked" + (f" ({ENV_MODE})" if os.environ.get(ENV_MODE) else ""))
    if possible:
        from ..bench.core import explain_bus_errors

        explain_bus_errors()   # a fault on GPU memory names its cause, not a silently dead kernel
        return RunMode(True, "pi", why)
    return RunMode(False, "emulator", why)
