#!/usr/bin/env python3
"""The operation matrix: which numpy operations on GpuBuffer.array survive GPU memory's mapping.

On a Pi (and on scripts/pi-machine.sh's machine) pimem maps GPU memory through /dev/mem, which
gives Device-nGnRnE (arm64) / Strongly-ordered (32-bit ARM) memory: unaligned accesses, and on
arm64 DC ZVA (glibc's memset of zero), fault with SIGBUS. Each operation runs in a process of
its own, once per ARM-usable flag, and is reported as ok, a Python error, or the signal that
killed it.

    .venv/bin/python scripts/pi-machine/op_matrix.py [--size BYTES] [--flags NAME ...] [--ops NAME ...] [--json]
    .venv/bin/python scripts/pi-machine/op_matrix.py --list

Run it on the machine as root (PIMEM_BACKEND=pi); elsewhere it runs on the emulator (a file
mapping, where nothing faults), which shows only that the operations themselves are right.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

FLAGS = {"DIRECT|ZERO": ("DIRECT", "ZERO"), "COHERENT": ("COHERENT",),
         "L1_NONALLOCATING": ("L1_NONALLOCATING",)}

# name -> Python statement run with `a` = buf.array (uint8, `size` bytes), `np`, `host` (uint8 array).
OPS: dict[str, str] = {
    "fill 0": "a[:] = 0",
    "fill 0xA5": "a[:] = 0xA5",
    "copy in (a[:] = host)": "a[:] = host",
    "copy out (a.copy())": "a.copy()",
    "bytes(a)": "bytes(a)",
    "a.sum()": "a.sum()",
}
for _dt in ("uint16", "uint32", "uint64", "float32", "float64"):
    OPS[f"{_dt}: fill 0"] = f"a.view(np.{_dt})[:] = 0"
    OPS[f"{_dt}: fill 1"] = f"a.view(np.{_dt})[:] = 1"
    OPS[f"{_dt}: sum"] = f"a.view(np.{_dt}).sum()"
OPS.update({
    "a[1:4097] = 3": "a[1:4097] = 3",
    "a[1:4097].copy()": "a[1:4097].copy()",
    "a[1:4097] = host[:4096]": "a[1:4097] = host[:4096]",
    "np.frombuffer(a, uint32).sum()": "np.frombuffer(a, dtype=np.uint32).sum()",
    "np.frombuffer(a[1:5], uint8).copy()": "np.frombuffer(a[1:5], dtype=np.uint8).copy()",
    # GpuBuffer's own methods, which must never fault (pimem.memory.device).
    "buf.fill(0)": "buf.fill(0)",
    "buf.fill(0xA5)": "buf.fill(0xA5)",
    "buf.write(host)": "buf.write(host)",
    "buf.write(host[:4099], offset=1)": "buf.write(host[:4099], offset=1)",
    "buf.read()": "buf.read()",
    "buf.read(1, 4099)": "buf.read(1, 4099)",
    # A fault with pimem's note: the line it prints before the process dies.
    "a[1:4097] = 3 after explain_bus_errors()": "explain_bus_errors(); a[1:4097] = 3",
})
# Rows that do not depend on a flag: README's own example and two CLI commands.
README_EXAMPLE = ("with GpuBuffer(1 << 20, MemFlag.DIRECT | MemFlag.ZERO) as buf:\n"
                  "    buf.array[:] = 0xA5\n    buf.fill(0xA5)\n    buf.write(b'hello', offset=1)\n"
                  "    print(buf.read(0, 8))")
SINGLE = {
    "README example (= 0xA5, fill, write, read)": [sys.executable, "-c",
                                             "from pimem import GpuBuffer, MemFlag\n" + README_EXAMPLE],
    "pimem selftest": [sys.executable, "-m", "pimem", "selftest"],
    "pimem bench 4": [sys.executable, "-m", "pimem", "bench", "4"],
}


def child(flag: str, op: str, size: int) -> None:
    sys.path.insert(0, REPO)
    import numpy as np

    from pimem import GpuBuffer, MemFlag

    flags = MemFlag(0)
    for name in FLAGS[flag]:
        flags |= MemFlag[name]
    host = (np.arange(size) % 251).astype(np.uint8)
    with GpuBuffer(size, flags) as buf:
        a = buf.array
        print(f"bus 0x{buf.bus_address:08X} phys 0x{buf.phys_address:08X}", file=sys.stderr)
        from pimem.bench.core import explain_bus_errors   # imported before the marker: its memsets are not the op's
        if os.environ.get("PIMEM_ZVA_MARK"):
            os.getsid(0)   # a marker: zva_gdb.py starts watching here
        exec(OPS[op], {"a": a, "np": np, "host": host, "buf": buf, "explain_bus_errors": explain_bus_errors})
        del a


def zva(size: int, flag: str, op: str, env: dict, command: list[str] | None = None) -> str:
    """'Z' if the operation (or a whole command) executes DC ZVA on GPU memory, '-' if not, '?' if gdb cannot tell."""
    import shutil

    if shutil.which("gdb") is None or os.uname().machine != "aarch64":
        return "?"
    if command is None:
        command = [sys.executable, os.path.abspath(__file__), "--size", str(size), "--child", flag, op]
        env = dict(env, PIMEM_ZVA_MARK="1")
    else:
        env = dict(env, PIMEM_ZVA_FROM_START="1")
    proc = subprocess.run(["gdb", "-q", "-batch", "-x", os.path.join(HERE, "zva_gdb.py"), "--args", *command],
                          capture_output=True, env=env, cwd=REPO, text=True, errors="replace")
    out = proc.stdout
    if "ZVA-DEVMEM" in out:
        return "Z"
    if "ZVA-SITES" not in out or "ZVA-UNKNOWN" in out or "ZVA-ERROR" in out:
        why = [l for l in out.splitlines() if l.startswith(("ZVA-ERROR", "ZVA-UNKNOWN"))]
        why = why or (proc.stderr.strip().splitlines() or ["no output"])[-3:]
        print(f"  zva ({op or command[-1]}): gdb could not tell: {' / '.join(why)[:300]}", flush=True)
        return "?"
    return "-"


def alignment_fixups() -> int | None:
    """32-bit ARM: how many user accesses the kernel's alignment trap has fixed up (/proc/cpu/alignment)."""
    try:
        with open("/proc/cpu/alignment") as f:
            for line in f:
                if line.startswith("User:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def outcome(proc: subprocess.CompletedProcess) -> tuple[str, str]:
    rc = proc.returncode
    if rc == 0:
        return "ok", ""
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        lines = proc.stderr.decode(errors="replace").splitlines()
        where = [l.strip() for l in lines if l.strip().startswith("File ")]
        noted = " (pimem's note printed)" if any(l.startswith("pimem: SIGBUS") for l in lines) else ""
        return f"killed by {name}{noted}", (where[0] if where else "")
    lines = [l for l in proc.stderr.decode(errors="replace").splitlines() if l.strip()]
    return "Python error" if any("Traceback" in l for l in lines) else f"exit {rc}", (lines[-1] if lines else "")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1 << 20, help="buffer size in bytes (default 1 MiB)")
    p.add_argument("--flags", nargs="+", choices=list(FLAGS), default=list(FLAGS))
    p.add_argument("--ops", nargs="+", help="operation names (default: all; see --list)")
    p.add_argument("--no-single", action="store_true", help="leave out the README example and the CLI rows")
    p.add_argument("--json", action="store_true", help="print the results as JSON as well")
    p.add_argument("--zva", action="store_true",
                   help="arm64: also run each operation under gdb (scripts/pi-machine/zva_gdb.py) and say whether "
                        "it executes DC ZVA on GPU memory (QEMU does not fault on it; a Pi does)")
    p.add_argument("--zva-commands", action="store_true",
                   help="the same for the README example, pimem selftest and pimem bench, watched whole under gdb: "
                        "very slow (every memset of zero in Python's start-up stops gdb; over 20 minutes)")
    p.add_argument("--list", action="store_true", help="list the operations")
    p.add_argument("--child", nargs=2, metavar=("FLAG", "OP"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(*args.child, args.size)
        return 0
    if args.list:
        print("\n".join(f"{name:40s} {stmt}" for name, stmt in OPS.items()))
        return 0
    ops = args.ops or list(OPS)
    unknown = [o for o in ops if o not in OPS]
    if unknown:
        p.error(f"unknown operation(s) {unknown}; see --list")
    # faulthandler: a process killed by a signal says where (the signal still ends it).
    env = dict(os.environ, PYTHONFAULTHANDLER="1", PYTHONPATH=REPO)
    backend = os.environ.get("PIMEM_BACKEND") or ("pi" if os.path.exists("/dev/vcio") else "emulator")
    print(f"op matrix: {args.size} bytes per buffer, backend {backend}, {os.uname().machine}, "
          f"{8 * __import__('struct').calcsize('P')}-bit Python {sys.version.split()[0]}")
    sys.stdout.flush()
    results: dict[str, dict[str, list[str]]] = {}
    t0 = time.monotonic()
    for op in ops:
        results[op] = {}
        for flag in args.flags:
            before = alignment_fixups()
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--size", str(args.size),
                                   "--child", flag, op], capture_output=True, env=env, cwd=REPO)
            results[op][flag] = list(outcome(proc))
            after = alignment_fixups()
            if before is not None and after is not None and after > before:
                # The 32-bit kernel fixed up unaligned word or ldrd/strd accesses: silent, slow, and
                # a SIGBUS where the trap is off (echo 4 >/proc/cpu/alignment) or cannot help (NEON).
                results[op][flag][0] += f" ({after - before} fixup{'s' if after - before > 1 else ''})"
            if args.zva:
                results[op][flag][0] += " " + zva(args.size, flag, op, env)
        print(f"  {op}: " + ", ".join(f"{flag} {results[op][flag][0]}" for flag in args.flags), flush=True)
    if not args.no_single:
        for name, cmd in SINGLE.items():
            proc = subprocess.run(cmd, capture_output=True, env=env, cwd=REPO)
            results[name] = {"-": list(outcome(proc))}
            if args.zva_commands:
                results[name]["-"][0] += " " + zva(args.size, "", "", env, command=cmd)
            print(f"  {name}: {results[name]['-'][0]}", flush=True)
    width = max([len("operation")] + [len(op) for op in results])
    cols = args.flags
    print(f"{'operation':{width}s} | " + " | ".join(f"{c:26s}" for c in cols))
    print("-" * width + "-+-" + "-+-".join("-" * 26 for _ in cols))
    notes = []
    for op, row in results.items():
        cells = []
        for c in cols:
            if "-" in row:
                cell = row["-"] if c == cols[0] else ["", ""]
            else:
                cell = row[c]
            cells.append(f"{cell[0]:26s}")
            if cell[1]:
                notes.append(f"{op} [{c}]: {cell[1]}")
        print(f"{op:{width}s} | " + " | ".join(cells))
    for n in notes:
        print(f"  note: {n}")
    if args.zva:
        print("  Z: executes DC ZVA on GPU memory (glibc memset of zero): faults on a Pi, not under QEMU; "
              "-: does not; ?: gdb could not tell")
    print(f"op matrix: {len(results)} rows in {time.monotonic() - t0:.0f} s")
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
