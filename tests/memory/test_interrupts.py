"""Ctrl-C: every one interrupts, and no interrupted measurement keeps its GPU memory.

Through a real Jupyter kernel (jupyter_client), as a student's interrupt arrives; through a
Python loop that drops buffers as fast as it can (the garbage collector's releases); and through
the command line.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from pimem.firmware.emulator import FirmwareEmulator

jupyter_client = pytest.importorskip("jupyter_client", reason="needs jupyter_client (the test extras)")


def _env(emu_dir) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIMEM_")}
    return env | {"PIMEM_BACKEND": "emulator", "PIMEM_EMULATOR_DIR": str(emu_dir), "PYTHONWARNINGS": "ignore"}


class Kernel:
    """A real IPython kernel, with cells run and interrupted as JupyterLab does."""

    def __init__(self, env: dict) -> None:
        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(kernel_name="python3", env=env)

    def run(self, code: str, timeout: float = 120) -> dict:
        msg_id = self.kc.execute(code)
        return self._reply(msg_id, timeout)

    def run_interrupted(self, code: str, after: float, timeout: float = 120) -> dict:
        msg_id = self.kc.execute(code)
        time.sleep(after)
        self.km.interrupt_kernel()
        reply = self._reply(msg_id, timeout)
        time.sleep(0.5)   # ipykernel aborts what arrives just after an error, as Run All's next cells
        return reply

    def _reply(self, msg_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self.kc.get_shell_msg(timeout=deadline - time.monotonic())
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]
        raise TimeoutError("no reply from the kernel")

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def kernel(emu_dir):
    k = Kernel(_env(emu_dir))
    yield k
    k.close()


# What a student interrupts: a live sweep, a benchmark, a mountain, an explorer's measurement.
WORK = {
    "sweep": "from pimem.bench.sweep import sweep\nfrom pimem.bench.benchmarks import RunOptions\n"
             "from pimem import get_backend\n"
             "sweep(get_backend(), ['zerocopy', 'standard', 'read-direct'], [32 << 20], kernel='numpy', "
             "options=RunOptions(iterations=2000), progress=False)",
    "benchmark": "from pimem.bench.benchmarks import run_benchmark, RunOptions\nfrom pimem.bench.kernels import get_kernel\n"
                 "run_benchmark('standard', 32 << 20, kernel=get_kernel('numpy'), options=RunOptions(iterations=2000))",
    "mountain": "from pimem.bench.mountain import mountain\n"
                "mountain(kind='direct', sizes=[16 << 20, 32 << 20], strides=list(range(1, 13)), iterations=200, "
                "progress=False, announce=lambda m: None)",
    "explorer": "from pimem.course import widgets\n"
                "ex = widgets.size_explorer(widgets.live_runner(), benchmarks=['zerocopy'], size=32 << 20, "
                "iterations=20)\nfor _ in range(500):\n    ex.controls['iterations'].value = 19 + _ % 2",
    "with-block": "from pimem import GpuBuffer\nimport numpy as np\n"
                  "with GpuBuffer(32 << 20) as buf:\n    v = buf.array.view(np.uint32)\n"
                  "    while True:\n        v[:] = 7",
}


@pytest.mark.parametrize("work", sorted(WORK))
def test_an_interrupted_cell_gives_its_gpu_memory_back(kernel, emu_dir, work):
    from pimem.course import widgets   # noqa: F401 - the explorer case needs it importable

    # Imports first, uninterrupted: on a loaded machine an interrupt that lands inside numpy's import
    # surfaces as an ImportError, and the test is about the work, not the import.
    imports = "\n".join(line for line in WORK[work].splitlines() if line.startswith(("from ", "import ")))
    assert kernel.run(imports)["status"] == "ok", work
    for attempt, after in enumerate((1.0, 2.5)):
        reply = kernel.run_interrupted(WORK[work], after=after)
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", (work, attempt, reply)
        # IPython keeps the traceback (and every frame's views) for %debug: the memory must be back anyway.
        assert FirmwareEmulator(emu_dir).allocations() == [], (work, attempt)
        big = kernel.run("from pimem import GpuBuffer\nb = GpuBuffer(40 << 20)\nb.close()")
        assert big["status"] == "ok", (work, attempt, big)


def test_every_ctrl_c_in_a_kernel_interrupts_a_loop_that_drops_buffers(kernel, emu_dir):
    loop = ("from pimem import GpuBuffer\nimport numpy as np\n"
            "while True:\n    b = GpuBuffer(64 << 10)\n    b.array.view(np.uint32)[:] = 1\n    b = None")
    rng = random.Random(7)
    for i in range(12):
        reply = kernel.run_interrupted(loop, after=rng.uniform(0.3, 1.2), timeout=60)
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", (i, reply)
    kernel.run("from pimem.memory.buffer import wait_for_releases\nwait_for_releases()")
    assert FirmwareEmulator(emu_dir).allocations() == []


_LOOP = textwrap.dedent("""
    import sys
    from pimem import GpuBuffer
    print("looping", flush=True)
    while True:
        b = GpuBuffer(4096)
        b.array[:16] = 1
        b = None          # dropped: the garbage collector's release
""")


def test_every_ctrl_c_interrupts_a_python_loop_and_nothing_leaks(emu_dir):
    rng = random.Random(11)
    for i in range(15):
        p = subprocess.Popen([sys.executable, "-c", _LOOP], env=_env(emu_dir), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "looping"
        time.sleep(rng.uniform(0.05, 0.6))
        p.send_signal(signal.SIGINT)
        try:
            out, err = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            pytest.fail(f"run {i}: Ctrl-C was swallowed: the loop went on for 20 s")
        # Python ends on an unhandled KeyboardInterrupt by dying of SIGINT, as a shell expects.
        assert p.returncode == -signal.SIGINT and "KeyboardInterrupt" in err, (i, p.returncode, err)
        assert "Exception ignored" not in err, (i, err)
    # Whatever a dead loop left, the next process's reclaim takes back; here nothing should be left at all.
    assert FirmwareEmulator(emu_dir).allocations() == []


def test_ctrl_c_stops_the_cli_with_130_and_nothing_leaks(emu_dir):
    for after in (0.8, 1.6, 2.4):
        p = subprocess.Popen([sys.executable, "-m", "pimem", "bench", "32", "--iterations", "200", "--kernel", "numpy"],
                             env=_env(emu_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(after)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 130 and "interrupted" in err and "Traceback" not in err, (after, p.returncode, err)
        assert FirmwareEmulator(emu_dir).allocations() == []
