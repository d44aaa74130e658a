"""pimem.bench.machine: the conditions of a live run (clock, governor, throttling, temperature), --performance."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pimem.bench import machine
from pimem.bench.machine import RunConditions, conditions_warning, read_conditions
from pimem.exc import UsageError
from pimem.firmware.mailbox import describe_throttled


def cpufreq(root: Path, cpus: int = 4, governor: str = "ondemand", cur_khz: int = 600000,
            max_khz: int = 1200000) -> Path:
    """A sysfs cpu folder as a Pi 3B's kernel shows it (cpufreq-dt, four cores)."""
    for n in range(cpus):
        d = root / f"cpu{n}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_governor").write_text(governor + "\n")
        (d / "scaling_cur_freq").write_text(f"{cur_khz}\n")
        (d / "cpuinfo_max_freq").write_text(f"{max_khz}\n")
    return root


class PiLike:
    """The emulator's mailbox behind a backend named pi: the firmware-reading path without a board."""

    name = "pi"

    def __init__(self, backend):
        self.mailbox = backend.mailbox


def test_conditions_read_sysfs_and_say_what_is_unknown(tmp_path, backend):
    c = read_conditions(backend, cpufreq(tmp_path))
    assert (c.governor, c.cur_mhz, c.max_mhz) == ("ondemand", 600.0, 1200.0)
    # The emulator's clocks are a model: not recorded as this machine's, and said so.
    assert c.arm_measured_mhz is None and c.throttled is None
    assert any("emulator models them" in u for u in c.unknown)
    bare = read_conditions(backend, tmp_path / "none")
    assert bare.governor is None and any("cpufreq" in u and "absent" in u for u in bare.unknown)


def test_on_a_pi_the_firmware_is_asked(tmp_path, backend):
    c = read_conditions(PiLike(backend), cpufreq(tmp_path, governor="performance", cur_khz=1200000))
    assert c.arm_measured_mhz == pytest.approx(1200.0) and c.arm_max_mhz == pytest.approx(1200.0)
    assert c.throttled == 0 and 20 < c.temperature_c < 90
    assert conditions_warning(c, c) is None


def snapshot(**kw) -> RunConditions:
    base = dict(governor="performance", cur_mhz=1200.0, max_mhz=1200.0, arm_measured_mhz=1200.0,
                arm_max_mhz=1200.0, throttled=0, temperature_c=50.0)
    return RunConditions(**{**base, **kw})


@pytest.mark.parametrize("before, after, said", [
    (snapshot(governor="ondemand", cur_mhz=600.0), snapshot(), "ondemand governor had the CPU at 600 of 1200"),
    (snapshot(), snapshot(arm_measured_mhz=600.0), "ran at 600 MHz just after the run, below its 1200"),
    (snapshot(), snapshot(throttled=0x50005), "under-voltage now"),
    (snapshot(throttled=0x50000), snapshot(), "under-voltage has occurred"),
    (snapshot(), snapshot(temperature_c=83.0), "reached 83 C"),
])
def test_one_line_says_why_times_may_not_be_the_boards_best(before, after, said):
    line = conditions_warning(before, after)
    assert line is not None and line.startswith("clock: ") and said in line and "\n" not in line


def test_throttled_bits_in_words():
    assert describe_throttled(0) == []
    assert describe_throttled(0x50005) == ["under-voltage now", "throttled now", "under-voltage has occurred",
                                           "throttling has occurred"]


def test_performance_sets_every_cpu_and_puts_back(tmp_path, monkeypatch):
    root = cpufreq(tmp_path)
    monkeypatch.setattr(machine, "write_kernel_setting", lambda p, text: Path(p).write_text(text))
    files = sorted(root.glob("cpu*/cpufreq/scaling_governor"))
    with machine.performance_governor(root) as previous:
        assert {f.read_text() for f in files} == {"performance"}
        assert set(previous.values()) == {"ondemand"}
    assert {f.read_text().strip() for f in files} == {"ondemand"}
    with pytest.raises(KeyboardInterrupt):
        with machine.performance_governor(root):
            raise KeyboardInterrupt
    assert {f.read_text().strip() for f in files} == {"ondemand"}
    with pytest.raises(UsageError, match="no cpufreq governor"):
        with machine.performance_governor(tmp_path / "none"):
            pass


def test_performance_without_permission_says_to_run_as_root(tmp_path, monkeypatch):
    root = cpufreq(tmp_path)
    written = []
    monkeypatch.setattr(machine, "write_kernel_setting", lambda p, text: written.append(p))
    monkeypatch.setattr(machine.os, "access", lambda path, mode: False)
    with pytest.raises(UsageError, match=r"may not write.*sudo .venv/bin/pimem"):
        with machine.performance_governor(root):
            pass
    assert written == []


_TERMINATED = """
import os, signal, sys
from pathlib import Path
from pimem.bench import machine
machine.write_kernel_setting = lambda p, text: Path(p).write_text(text)
with machine.performance_governor(Path(sys.argv[1])):
    print("set", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    import time; time.sleep(30)
"""


def test_sigterm_puts_the_governor_back(tmp_path):
    root = cpufreq(tmp_path, cpus=2)
    done = subprocess.run([sys.executable, "-c", _TERMINATED, str(root)], capture_output=True, text=True, timeout=60)
    assert "set" in done.stdout and done.returncode == 128 + signal.SIGTERM, done.stderr
    assert {f.read_text().strip() for f in root.glob("cpu*/cpufreq/scaling_governor")} == {"ondemand"}


def test_kernel_settings_are_written_only_under_sys_or_proc(tmp_path):
    from pimem.safefs import write_kernel_setting

    with pytest.raises(ValueError, match="not a kernel setting"):
        write_kernel_setting(tmp_path / "x", "performance")


def test_a_sweep_and_a_bench_carry_the_conditions(backend):
    from pimem.bench.benchmarks import RunOptions
    from pimem.bench.report import bench
    from pimem.bench.sweep import sweep

    quick = RunOptions(iterations=2, warmup=0)
    result = sweep(backend, ["baseline"], [1 << 16], options=quick, progress=False)
    assert set(result.meta["conditions"]) == {"before", "after", "warning"}
    from pimem.bench import data

    data.validate_frame(result.frame, result.meta)   # the sidecar schema declares them
    report = bench(backend, 1 << 16, options=quick, benchmarks=("baseline",))
    assert report.as_dict()["conditions"]["after"]["unknown"]


def test_a_run_on_the_pi_shaped_machine_says_so_and_is_not_pi_data(backend, monkeypatch):
    from pimem.bench.data.sidecar import check_meta
    from pimem.bench.benchmarks import RunOptions

    monkeypatch.setattr("pimem.memory.info.read_emulated_machine", lambda: "qemu-raspi3b")
    monkeypatch.setattr(backend, "name", "pi")       # the real mailbox path, answered by a program
    meta = machine.run_metadata(backend, "numpy", RunOptions())
    assert meta["machine"]["is_pi"] is False and meta["machine"]["emulated"] == "qemu-raspi3b"
    assert "emulated machine (qemu-raspi3b), not a Raspberry Pi" in meta["machine"]["description"]
    assert check_meta(meta) == []


def test_info_on_the_pi_shaped_machine_does_not_say_this_raspberry_pi(backend, monkeypatch):
    from pimem.memory.info import system_info

    monkeypatch.setattr("pimem.memory.info.read_emulated_machine", lambda: "qemu-raspi3b")
    monkeypatch.setattr(backend, "name", "pi")
    text = "\n".join(system_info(backend).lines())
    assert "an emulated machine, qemu-raspi3b: not a Raspberry Pi" in text and "this Raspberry Pi" not in text
