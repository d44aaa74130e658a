#!/usr/bin/env bash
# The default COMMAND of scripts/pi-machine.sh: pimem's live path on the Pi-shaped machine
# (PIMEM_BACKEND=pi: ioctl on /dev/vcio, mmap of /dev/mem; GPU memory mapped Device-nGnRnE /
# Strongly-ordered). Runs every step, prints a summary, exits 1 if any step failed.
# Run from the project's folder; the machine puts the venv first on PATH.
cd "$(dirname "$0")/../.."
failed=()
step() {   # step NAME COMMAND...: run, report the time and how it ended (a signal by name)
    local name=$1 t=$SECONDS rc
    shift
    echo "== $name: $*"
    "$@"
    rc=$?
    if [ "$rc" -gt 128 ]; then
        echo "== $name: killed by SIG$(kill -l $((rc - 128))) ($((SECONDS - t)) s)"
        failed+=("$name (SIG$(kill -l $((rc - 128))))")
    elif [ "$rc" -ne 0 ]; then
        echo "== $name: exit $rc ($((SECONDS - t)) s)"
        failed+=("$name (exit $rc)")
    else
        echo "== $name: ok ($((SECONDS - t)) s)"
    fi
}

step memory-split python3 - <<'PY'
import mmap, os
ram = [l for l in open("/proc/iomem") if "System RAM" in l]
print("".join(ram), end="")
end = max(int(l.split(":")[0].split("-")[1], 16) for l in ram)
assert end == 0x3B3FFFFF, f"System RAM ends at 0x{end:08X}, not 0x3B3FFFFF"
fd = os.open("/dev/mem", os.O_RDWR | os.O_SYNC)
m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0x3B400000)
m.close()
print("/dev/mem maps the GPU range (0x3B400000)")
try:
    mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0x3B3FF000)
    raise SystemExit("/dev/mem mapped System RAM: STRICT_DEVMEM is not in force")
except PermissionError:
    print("/dev/mem refuses System RAM (EPERM: STRICT_DEVMEM)")
PY
step info pimem info
step selftest pimem selftest
step bench pimem bench 4
step sweep pimem sweep --no-progress --iterations 3 --sizes 64KiB 1MiB --benchmarks baseline zerocopy
step latency pimem sweep --no-progress --iterations 3 --sizes 64KiB 1MiB --benchmarks latency-host latency-direct
step mountain pimem mountain --kind direct --no-progress --sizes 16KiB 256KiB 1MiB --strides 1 4
step safe-methods python3 -c "
from pimem import GpuBuffer
import numpy as np
host = (np.arange(10001) % 251).astype(np.uint8)
with GpuBuffer(1 << 20) as buf:
    buf.fill(0); buf.fill(0xA5); buf.write(host, offset=3)
    assert (buf.read(3, host.size) == host).all() and buf.read(0, 3).tolist() == [0xA5] * 3
print('GpuBuffer.fill, write and read: ok on Device memory')"
step run-kit pimem run-kit --quick --dir /tmp/kit
step run-kit-labelled python3 - <<'PY'
import json, pathlib
metas = [json.loads(p.read_text()) for p in pathlib.Path("/tmp/kit").rglob("*.json")]
assert metas, "run-kit wrote nothing in /tmp/kit"
for m in metas:
    assert m["machine"]["is_pi"] is False and m["machine"].get("emulated"), m["machine"]
print(len(metas), "sidecars, each labelled emulated and none Pi data:", metas[0]["machine"]["emulated"])
PY
# The Jupyter-kernel test is left out here: its kernel never answered on this machine within 600 s
# (cause not found: the guest brings lo up; a kernel's start under TCG is the suspect); it runs on the host.
step tests python3 -m pytest -q -p no:cacheprovider tests/memory/test_buffer.py tests/memory/test_device.py \
    tests/bench/test_kernels.py tests/bench/test_core.py \
    --deselect tests/bench/test_core.py::test_in_a_jupyter_kernel_the_note_reaches_the_terminal_jupyter_runs_in

echo
if [ ${#failed[@]} -gt 0 ]; then
    echo "checks: FAILED: ${failed[*]}"
    exit 1
fi
echo "checks: all passed"
