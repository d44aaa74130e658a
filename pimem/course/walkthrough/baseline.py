"""Helpers for notebooks/04-baseline.ipynb: the clock and throttling state a live run starts from."""
from __future__ import annotations

import pandas as pd

from ...bench.machine import RunConditions, conditions_warning, read_conditions
from ...firmware.mailbox import describe_throttled
from ...memory.backend import Backend, get_backend


def _mhz(value: float | None) -> str:
    return "not read here" if value is None else f"{value:.0f} MHz"


def clock_table(backend: Backend | str | None = None, conditions: RunConditions | None = None) -> pd.DataFrame:
    """What decides whether a run's times are the board's best, read now: governor, clocks, throttling, heat.

    An idle Pi 3B runs at 600 MHz under the ondemand governor and only ramps to 1200 MHz under load
    (config_txt/overclocking.adoc: arm_freq, arm_freq_min); the firmware lowers the clock when hot or
    under-powered (GET_THROTTLED, the bits of `vcgencmd get_throttled`). The last row is pimem's verdict,
    the same line every measuring command prints.
    """
    if conditions is None:
        backend = get_backend(backend) if not isinstance(backend, Backend) else backend
        conditions = read_conditions(backend)
    c = conditions
    bits = c.throttled
    throttled = ("not read here" if bits is None else
                 f"0x{bits:X}: " + (", ".join(describe_throttled(bits)) or "none set"))
    rows = [
        ("cpufreq governor (sysfs)", c.governor or "not read here"),
        ("CPU clock now (cpufreq scaling_cur_freq)", _mhz(c.cur_mhz)),
        ("CPU's highest clock (cpuinfo_max_freq)", _mhz(c.max_mhz)),
        ("ARM clock the firmware measures (CLOCK_RATE_MEASURED)", _mhz(c.arm_measured_mhz)),
        ("throttled bits (GET_THROTTLED)", throttled),
        ("SoC temperature", "not read here" if c.temperature_c is None else f"{c.temperature_c:.1f} C"),
        ("verdict", conditions_warning(c, c) or (
            "none: neither cpufreq nor the firmware could be read here"
            if c.governor is None and c.arm_measured_mhz is None and c.throttled is None
            else "nothing says this run would be slowed")),
    ]
    rows += [("not read", why) for why in c.unknown]
    return pd.DataFrame(rows, columns=["what", "now"])


__all__ = ["clock_table"]
