"""The compiled timing core: where it is built, what it refuses, and the fallback without a compiler."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pimem.bench import core
from pimem.bench.kernels import KERNELS, NumpyKernel
from pimem.bench.timing import time_op

needs_core = pytest.mark.skipif("c-loop" not in KERNELS, reason="no C compiler here: the core did not build")

PROBE = ("import pimem.bench.kernels as k, pimem.bench.core as c; s = c.status(); "
         "print(k.DEFAULT_KERNEL, s.loaded, s.build_s is not None, s.path)")


def _run(env_extra: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CC", core.ENV_SWITCH)}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)


@needs_core
def test_built_once_into_a_private_cache_then_loaded_from_it(tmp_path):
    cache = tmp_path / "cache" / "core"
    first = _run({core.ENV_DIR: str(cache)}, tmp_path)
    assert first.returncode == 0, first.stderr
    kernel, loaded, built, path = first.stdout.split()
    assert (kernel, loaded, built) == ("c-loop", "True", "True") and first.stderr == ""
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700 and Path(path).parent == cache
    again = _run({core.ENV_DIR: str(cache)}, tmp_path)
    assert again.stdout.split()[:3] == ["c-loop", "True", "False"]     # cached: not built twice


def test_without_a_compiler_it_falls_back_with_one_line(tmp_path):
    # Hide every compiler: an empty PATH (python is called by its full path).
    empty = tmp_path / "bin"
    empty.mkdir()
    p = _run({"PATH": str(empty), core.ENV_DIR: str(tmp_path / "c")}, tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[:2] == ["libc", "False"]
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "no C compiler found" in lines[0] and "overhead-bound" in lines[0]


@needs_core
def test_a_cache_others_can_write_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    p = _run({core.ENV_DIR: str(shared)}, tmp_path)
    assert p.stdout.split()[:2] == ["libc", "False"]
    assert "writable by group or others" in p.stderr and not list(shared.iterdir())


@needs_core
def test_a_planted_symlink_cache_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    p = _run({core.ENV_DIR: str(tmp_path / "link")}, tmp_path)
    assert p.stdout.split()[:2] == ["libc", "False"] and "symbolic link" in p.stderr


def test_switched_off_quietly(tmp_path):
    p = _run({core.ENV_SWITCH: "off", core.ENV_DIR: str(tmp_path / "c")}, tmp_path)
    assert p.stdout.split()[:2] == ["libc", "False"] and p.stderr == ""


def test_the_cache_is_the_effective_users_own(monkeypatch):
    monkeypatch.delenv(core.ENV_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/someone-elses-cache")
    import pwd
    home = Path(pwd.getpwuid(os.geteuid()).pw_dir)
    expected = home / ".cache" if os.geteuid() == 0 else Path("/tmp/someone-elses-cache")
    assert core.core_dir() == expected / "pimem" / "core"


# --- the compiled kernel against the numpy one (an independent implementation) ---

@needs_core
@pytest.mark.parametrize("device", [False, True])
def test_compiled_ops_agree_with_numpy_at_every_alignment(device):
    c, ref = KERNELS["c-loop"], NumpyKernel()
    rng = np.random.default_rng(7)
    src = rng.integers(0, 256, 5000, dtype=np.uint8)
    for off in range(9):
        for n in (0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4096):
            view = src[off:off + n]
            assert c.read(view) == ref.read(view), (off, n)
            dst = np.zeros(5000, np.uint8)
            c.fill(dst[off:off + n], 0xA5, device=device)
            assert (dst[off:off + n] == 0xA5).all() and not dst[:off].any() and not dst[off + n:].any()
            c.fill(dst[off:off + n], 0, device=device)
            assert not dst.any()
            c.copy(dst[off:off + n], src[3:3 + n], device=device)
            assert (dst[off:off + n] == src[3:3 + n]).all() and not dst[:off].any() and not dst[off + n:].any()


@needs_core
def test_a_region_is_timed_in_c_with_no_overhead_to_remove():
    buf = np.zeros(4096, np.uint8)
    op = KERNELS["c-loop"].fill_op(buf, 0xA5)
    calls = []

    def region(reps):
        calls.append(reps)
        return op.region(reps)

    t = time_op(op.run, region=region, iterations=3, warmup=1, min_sample_s=0.001)
    assert t.overhead_s == 0 and not t.overhead_bound and t.reps == calls[-1]
    assert len(calls) >= 4 and all(r == t.reps for r in calls[-3:])
    assert (buf == 0xA5).all()


@needs_core
def test_the_chase_visits_every_slot_once():
    buf = np.zeros(64 * 100, np.uint8)
    op, count = KERNELS["c-loop"].chase_op(buf, 64, 16)
    assert count == 100 and op.run() == 100
    words = buf.view(np.uint64 if np.dtype(np.uintp).itemsize == 8 else np.uint32)[:: 64 // np.dtype(np.uintp).itemsize]
    targets = (words.astype(np.int64) - buf.ctypes.data) // 64
    assert sorted(targets.tolist()) == list(range(100)) and all(targets != np.arange(100))  # a permutation, no fixed point


@needs_core
def test_a_loose_umask_still_gives_a_private_library(tmp_path):
    cache = tmp_path / "core"
    env = {core.ENV_DIR: str(cache)}
    code = "import os; os.umask(0o002); " + PROBE
    p = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                       timeout=120)
    assert p.stdout.split()[:2] == ["c-loop", "True"], p.stderr
    lib = next(cache.glob("pimem_core-*.so"))
    assert stat.S_IMODE(lib.stat().st_mode) == 0o700


@needs_core
def test_a_compiler_error_is_reported_not_raised(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    cc = fake / "cc"
    cc.write_text("#!/bin/sh\necho 'pimem_core.c:1: error: this compiler is broken' >&2\nexit 1\n")
    cc.chmod(0o755)
    p = _run({"CC": str(cc), core.ENV_DIR: str(tmp_path / "c")}, tmp_path)
    assert p.stdout.split()[:2] == ["libc", "False"]
    assert "did not build" in p.stderr and "this compiler is broken" in p.stderr


@needs_core
def test_a_cache_under_a_folder_others_can_write_is_refused(tmp_path):
    # The cache itself would be private, but whoever can write its parent could swap it before the load.
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    p = _run({core.ENV_DIR: str(loose / "core")}, tmp_path)
    assert p.stdout.split()[:2] == ["libc", "False"]
    assert f"{loose} is writable by group or others" in p.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="what root may run")
def test_root_ignores_a_compiler_another_user_could_have_written(tmp_path):
    planted = tmp_path / "planted"
    planted.mkdir()
    planted.chmod(0o777)                    # a folder anyone can write: its cc is no one's to trust
    cc = planted / "cc"
    cc.write_text("#!/bin/sh\nexit 1\n")
    cc.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CC"}
    env["PATH"] = str(planted)
    assert subprocess.run([sys.executable, "-c", "import pimem.bench.core as c; print(c.compiler())"], env=env,
                          capture_output=True, text=True, timeout=60).stdout.strip() == "None"


_BUS_ERROR = """
import signal
from pimem.bench import core
print(core.explain_bus_errors(), flush=True)
signal.raise_signal(signal.SIGBUS)
print("still alive", flush=True)
"""


@needs_core
def test_a_bus_error_names_its_cause_then_kills_the_process(tmp_path):
    # A real alignment fault needs Device memory (a Pi, or scripts/pi-machine.sh); here the signal is sent.
    done = subprocess.run([sys.executable, "-c", _BUS_ERROR], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.stdout.split() == ["True"], done.stdout
    assert done.returncode == -signal.SIGBUS
    assert "pimem: SIGBUS, an alignment fault" in done.stderr and "GpuBuffer.fill" in done.stderr
    assert "Fatal Python error: Bus error" in done.stderr           # faulthandler's traceback after it
    assert done.stderr.index("pimem: SIGBUS") < done.stderr.index("Fatal Python error")


def test_without_the_core_a_bus_error_still_shows_a_traceback(tmp_path):
    env = {**os.environ, core.ENV_SWITCH: "off"}
    done = subprocess.run([sys.executable, "-c", _BUS_ERROR], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=env)
    assert done.stdout.split() == ["False"] and done.returncode == -signal.SIGBUS
    assert "Fatal Python error: Bus error" in done.stderr and "pimem: SIGBUS" not in done.stderr


_REAL_FAULT = """
import mmap, os, sys
from pimem.bench import core
print(core.explain_bus_errors(), flush=True)
with open(sys.argv[1], "w+b") as f:
    f.truncate(4096)
    m = mmap.mmap(f.fileno(), 4096)
    f.truncate(0)              # the page behind m is gone: touching it is a real SIGBUS (BUS_ADRERR)
    m[0]
print("still alive", flush=True)
"""


@needs_core
def test_a_real_fault_runs_the_handler_then_dies_of_it(tmp_path):
    done = subprocess.run([sys.executable, "-c", _REAL_FAULT, str(tmp_path / "shrinks")], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.stdout.split() == ["True"] and done.returncode == -signal.SIGBUS, done.stderr
    assert "pimem: SIGBUS that is not an alignment fault" in done.stderr and "(address 0x" in done.stderr
    assert "an alignment fault: on a Raspberry Pi" not in done.stderr      # only BUS_ADRALN is called that
    assert "Fatal Python error: Bus error" in done.stderr


@needs_core
def test_in_a_jupyter_kernel_the_note_reaches_the_terminal_jupyter_runs_in(tmp_path):
    # ipykernel points fd 2 at a pipe a thread drains; the note must go to the real stderr instead.
    driver = """
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
nb = nbformat.v4.new_notebook()
nb.cells = [nbformat.v4.new_code_cell("from pimem.bench.core import explain_bus_errors; explain_bus_errors()"),
            nbformat.v4.new_code_cell("import signal; signal.raise_signal(signal.SIGBUS)")]
try:
    NotebookClient(nb, timeout=600, startup_timeout=600, kernel_name="python3").execute()   # slow on QEMU
except DeadKernelError:
    print("the kernel died")
"""
    pytest.importorskip("nbclient")
    spec = tmp_path / "kernels" / "python3"      # a kernel of this Python, whatever kernels the machine has
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "this Python", "language": "python"}))
    env = {**os.environ, "JUPYTER_PATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, timeout=1200, cwd=tmp_path,
                          env=env)
    assert "the kernel died" in done.stdout, done.stderr[-2000:]
    assert "pimem: SIGBUS, an alignment fault" in done.stderr
