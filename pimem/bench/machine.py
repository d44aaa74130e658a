"""The machine a run is measured on, as its recording's sidecar describes it: CPU, caches, software, board."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from ..exc import MailboxError, UsageError
from ..firmware.mailbox import Clock, describe_throttled
from ..firmware.protocol import Tag
from ..memory.backend import Backend
from ..safefs import write_kernel_setting
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
    emulated = info.emulated
    is_pi = backend.name == "pi" and emulated is None
    cpu = cpu_model()
    board = info.revision.describe() if info.revision else None
    if is_pi:
        description = f"{board or 'Raspberry Pi'} ({cpu}), measured live through /dev/vcio and /dev/mem"
    elif emulated:
        description = (f"emulated machine ({emulated}), not a Raspberry Pi: pimem's pi backend on {cpu} "
                       f"({platform.machine()}); its timings are the emulator's, never a Pi's")
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
            **({"emulated": emulated} if emulated else {}),
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


# --- the conditions of a live run: clock, governor, throttling, temperature ------------------

CPU_SYSFS = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class RunConditions:
    """The CPU's state at one moment of a run: what decides whether its times are the board's best.

    An idle Pi 3B runs at 600 MHz under the ondemand governor and ramps to 1200 under load; the
    firmware lowers the clock when it is hot or under-powered (raspberrypi/documentation config_txt/overclocking.adoc).
    """

    governor: str | None            #: cpu0's cpufreq governor (sysfs)
    cur_mhz: float | None           #: cpu0's clock now, as cpufreq says
    max_mhz: float | None           #: cpu0's highest clock (cpuinfo_max_freq)
    arm_measured_mhz: float | None  #: the ARM clock the firmware measures (CLOCK_RATE_MEASURED)
    arm_max_mhz: float | None       #: the ARM's highest clock, the firmware says (MAX_CLOCK_RATE)
    throttled: int | None           #: GET_THROTTLED's bits
    temperature_c: float | None     #: the SoC's temperature
    unknown: tuple[str, ...] = ()   #: what could not be read here, and why

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["unknown"] = list(self.unknown)
        d["throttled_now_or_since_boot"] = describe_throttled(self.throttled) if self.throttled else []
        return d


def _sysfs_number(path: Path) -> float | None:
    try:
        return int(path.read_text().strip()) / 1000   # kHz -> MHz
    except (OSError, ValueError):
        return None


def read_conditions(backend: Backend, cpu_root: Path = CPU_SYSFS) -> RunConditions:
    """The clock, governor, throttling and temperature now; what cannot be read is None and said why."""
    unknown: list[str] = []
    freq = cpu_root / "cpu0" / "cpufreq"
    try:
        governor: str | None = (freq / "scaling_governor").read_text().strip()
    except OSError:
        governor = None
        unknown.append(f"cpufreq: {freq} is absent (no frequency scaling driver on this machine)")
    cur, top = _sysfs_number(freq / "scaling_cur_freq"), _sysfs_number(freq / "cpuinfo_max_freq")
    firmware: dict[str, Any] = dict.fromkeys(("arm_measured_mhz", "arm_max_mhz", "throttled", "temperature_c"))
    if backend.name != "pi":
        unknown.append("firmware clock, throttling and temperature: the emulator models them; they are not "
                       "this machine's")
    else:
        mb = backend.mailbox
        reads = {"arm_measured_mhz": lambda: mb.clock_rate(Clock.ARM, Tag.CLOCK_RATE_MEASURED) / 1e6,
                 "arm_max_mhz": lambda: mb.clock_rate(Clock.ARM, Tag.MAX_CLOCK_RATE) / 1e6,
                 "throttled": mb.throttled, "temperature_c": mb.temperature}
        for key, read in reads.items():
            try:
                firmware[key] = read()
            except MailboxError as e:
                unknown.append(f"{key}: the firmware did not answer ({e})")
    return RunConditions(governor, cur, top, **firmware, unknown=tuple(unknown))


def conditions_warning(before: RunConditions, after: RunConditions) -> str | None:
    """One line when a run's times may not be the board's best: a clock below its maximum, a governor
    that ramps, throttling now or since boot, a hot SoC. None when nothing says so."""
    parts = []
    measured, top = after.arm_measured_mhz, after.arm_max_mhz or after.max_mhz
    if measured and top and measured < 0.97 * top:
        parts.append(f"the ARM ran at {measured:.0f} MHz just after the run, below its {top:.0f} MHz")
    if before.governor and before.governor != "performance" and (before.max_mhz or 0) > (before.cur_mhz or 0):
        parts.append(f"the {before.governor} governor had the CPU at {before.cur_mhz:.0f} of {before.max_mhz:.0f} MHz "
                     "when the run began, so the first points may be slow (--performance fixes the clock)")
    bits = (before.throttled or 0) | (after.throttled or 0)
    if bits:
        parts.append("the firmware reports " + ", ".join(describe_throttled(bits)) + f" (GET_THROTTLED 0x{bits:X}): "
                     "check the power supply and cooling")
    hot = max((c.temperature_c for c in (before, after) if c.temperature_c is not None), default=None)
    if hot is not None and hot >= 80:
        parts.append(f"the SoC reached {hot:.0f} C; the firmware throttles at 85 C")
    return ("clock: " + "; ".join(parts)) if parts else None


def conditions_record(before: RunConditions, after: RunConditions) -> dict[str, Any]:
    """The sidecar's `conditions`: both snapshots and the warning line (or null)."""
    return {"before": before.as_dict(), "after": after.as_dict(), "warning": conditions_warning(before, after)}


@contextmanager
def watched(backend: Backend) -> Iterator[dict[str, Any]]:
    """Read the conditions before the block and after it: the dict yielded is conditions_record()'s on exit."""
    record: dict[str, Any] = {}
    before = read_conditions(backend)
    yield record
    record.update(conditions_record(before, read_conditions(backend)))


@contextmanager
def performance_governor(cpu_root: Path = CPU_SYSFS) -> Iterator[dict[str, str]]:
    """Every CPU's cpufreq governor set to performance for the block (root only), the previous ones put back on
    exit, Ctrl-C or SIGTERM. Yields {governor file: the governor it had}."""
    import signal
    import threading

    files = sorted(cpu_root.glob("cpu[0-9]*/cpufreq/scaling_governor"))
    if not files:
        raise UsageError(f"--performance: this machine has no cpufreq governor to set ({cpu_root}/cpu*/cpufreq is "
                         "absent); run without --performance")
    if not all(os.access(f, os.W_OK) for f in files):
        # Root on a Pi; the check is on the files themselves so that it says the same under any user.
        raise UsageError(f"--performance sets the CPU governor ({files[0]}), which this user may not write; run "
                         "pimem as root (sudo .venv/bin/pimem ...) or without --performance")
    previous = {str(f): f.read_text().strip() for f in files}
    handler = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM would end the process without running the restore below: make it an exit that does.
        handler = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        for f in files:
            write_kernel_setting(f, "performance")
        yield previous
    finally:
        failed = []
        for name, governor in previous.items():
            try:
                write_kernel_setting(name, governor)
            except OSError as e:
                failed.append(f"{name} ({e.strerror or e})")
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)
        if failed:
            print("pimem: could not put the CPU governor back: " + ", ".join(failed)
                  + f"; set it by hand (echo ondemand | sudo tee {cpu_root}/cpu*/cpufreq/scaling_governor)",
                  file=sys.stderr)
