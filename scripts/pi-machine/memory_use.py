"""The memory the course needs: JupyterLab's server and a kernel running each notebook, resident sizes.

Run on the Pi-shaped machine (memory is meaningful under QEMU even though time is not):
    sudo bash scripts/pi-machine.sh arm64 -- python3 scripts/pi-machine/memory_use.py
Prints, per notebook, the kernel's peak resident size (VmHWM) after it ran top to bottom (a kernel of
its own, as a notebook's), the server's resident size meanwhile, and their sum against the 400 MiB goal (a Pi Zero 2 W
has 512 MB; a Pi 3B with gpu_mem=128 leaves Linux 896 MB).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GOAL_MIB = 400


def status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def start_server(port: int, wait_s: float) -> subprocess.Popen:
    log = open("/tmp/memory_use-jupyterlab.log", "w+b")
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
                               f"--port={port}", "--IdentityProvider.token=", "--ServerApp.password=",
                               f"--ServerApp.root_dir={REPO}"],
                              stdout=log, stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    while time.monotonic() < t0 + wait_s and server.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=30).read()
            print(f"JupyterLab answered after {time.monotonic() - t0:.0f} s", flush=True)
            return server
        except OSError:
            time.sleep(5)
    server.kill()
    log.seek(0)
    tail = log.read().decode(errors="replace").splitlines()[-15:]
    raise SystemExit(f"JupyterLab did not answer within {wait_s:.0f} s (exit {server.poll()}); its log ends:\n"
                     + "\n".join(tail))


def run_notebook(path: Path) -> float:
    """Run every cell in a fresh kernel; the kernel's peak resident size in MiB."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=3600, startup_timeout=1200, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})   # TCG: minutes to start
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        return status_mib(pid, "VmHWM")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="*", help="default: notebooks/NN-*.ipynb")
    p.add_argument("--port", type=int, default=8899)
    p.add_argument("--wait", type=float, default=1800, help="seconds to wait for JupyterLab to answer")
    args = p.parse_args()
    notebooks = [Path(n) for n in args.notebooks] or sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    os.environ.setdefault("PIMEM_MODE", "recorded")   # the figures, not TCG-timed benchmarks
    t0 = time.monotonic()
    alone = {nb.name: run_notebook(nb) for nb in notebooks[:1]}   # a kernel with no server beside it
    for name, mib in alone.items():
        print(f"{name}: kernel peak {mib:.0f} MiB with no server running ({time.monotonic() - t0:.0f} s)", flush=True)
    server = start_server(args.port, args.wait)
    try:
        idle = status_mib(server.pid, "VmRSS")
        print(f"JupyterLab server, idle: {idle:.0f} MiB resident ({os.uname().machine}, "
              f"PIMEM_MODE={os.environ['PIMEM_MODE']})", flush=True)
        worst = 0.0
        for nb in notebooks:
            t = time.monotonic()
            kernel = run_notebook(nb)
            server_now = status_mib(server.pid, "VmRSS")
            total = kernel + server_now
            worst = max(worst, total)
            print(f"{nb.name:40s} kernel peak {kernel:5.0f} MiB + server {server_now:4.0f} MiB = {total:5.0f} MiB "
                  f"({'within' if total <= GOAL_MIB else 'over'} {GOAL_MIB}; {time.monotonic() - t:.0f} s)",
                  flush=True)
        print(f"largest: {worst:.0f} MiB; goal: server plus one kernel <= {GOAL_MIB} MiB: "
              f"{'met' if worst <= GOAL_MIB else 'NOT met'}")
        return 0 if worst <= GOAL_MIB else 1
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
