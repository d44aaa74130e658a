"""gdb script: does the program execute a DC ZVA instruction in libc? (arm64 only)

QEMU does not raise the alignment fault that DC ZVA (data cache zero by virtual address) takes
on Device memory, though a Pi does: so an operation that passes on scripts/pi-machine.sh's
machine may still die of SIGBUS on a Pi if it reaches glibc's DC ZVA path (memset of zero,
above a size threshold). This finds every DC ZVA instruction in the libc the program loaded
(encoding 0xD50B7420 | Rt), breaks on all of them, and at the first hit prints
"ZVA-HIT <address of the zeroed block>" and a short backtrace, then lets the program run on.
Only hits on addresses inside a /dev/mem mapping count ("ZVA-DEVMEM"): a memset of zero on
ordinary memory is harmless. Watching starts at the program's call of getsid() (a marker; OpenBLAS calls sched_yield).

    gdb -q -batch -x scripts/pi-machine/zva_gdb.py --args python3 ...
"""
import re

import gdb  # noqa: provided by gdb

gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("set breakpoint pending on")
# The program calls getsid() right before the operation (op_matrix.py --child with
# PIMEM_ZVA_MARK=1): only what happens from there counts (Python's start-up zeroes plenty of
# ordinary memory with memset).
# PIMEM_ZVA_FROM_START=1: watch the whole program instead (slower: every memset of zero counts).
import os

FROM_START = bool(os.environ.get("PIMEM_ZVA_FROM_START"))
gdb.execute("tbreak __libc_start_main" if FROM_START else "tbreak getsid")   # python3 is stripped: no main
gdb.execute("run", to_string=True)

pid = gdb.selected_inferior().pid
if not pid:
    print("ZVA-ERROR the program ended before its marker (getsid, or __libc_start_main)")
    raise SystemExit
libc_maps = []
with open(f"/proc/{pid}/maps") as f:
    for line in f:
        parts = line.split()
        if len(parts) >= 6 and "libc.so" in parts[5]:
            start, end = (int(x, 16) for x in parts[0].split("-"))
            libc_maps.append((start, end, parts[1], int(parts[2], 16), parts[5]))
exec_maps = [m for m in libc_maps if "x" in m[2]]
if not exec_maps:
    print("ZVA-ERROR libc is not mapped")
else:
    start, end, _perm, file_off, path = exec_maps[0]
    with open(path, "rb") as f:
        f.seek(file_off)
        text = f.read(end - start)
    sites = []
    for off in range(0, len(text) - 3, 4):
        word = int.from_bytes(text[off:off + 4], "little")
        if word & 0xFFFFFFE0 == 0xD50B7420:
            sites.append(start + off)
    print(f"ZVA-SITES {len(sites)} in {path}")
    for a in sites:
        gdb.execute(f"break *{a:#x}", to_string=True)

    def devmem_ranges():
        out = []
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                if "/dev/mem" in line:
                    s, e = (int(x, 16) for x in line.split()[0].split("-"))
                    out.append((s, e))
        return out

    ordinary = 0
    while True:
        try:
            gdb.execute("continue", to_string=True)
        except gdb.error:
            break
        inferior = gdb.selected_inferior()
        if not inferior.pid:
            break
        frame = gdb.selected_frame()
        insn = int.from_bytes(bytes(inferior.read_memory(frame.pc(), 4)), "little")
        if insn & 0xFFFFFFE0 != 0xD50B7420:
            break   # stopped for another reason (a signal)
        reg = insn & 31
        addr = int(frame.read_register(f"x{reg}")) & 0xFFFFFFFFFFFFFFFF
        dev = any(s <= addr < e for s, e in devmem_ranges())
        if not dev:
            if ordinary < 3:
                bt = gdb.execute("bt 8", to_string=True)
                print(f"ZVA-ORDINARY {addr:#x} (GPU mappings: {[(hex(a), hex(b)) for a, b in devmem_ranges()]}) "
                      + " | ".join(re.sub(r"\s+", " ", l).strip() for l in bt.splitlines()))
            ordinary += 1
            if ordinary == (200000 if FROM_START else 2000):
                print("ZVA-UNKNOWN 2000 DC ZVA on ordinary memory; gave up watching")
                gdb.execute("delete", to_string=True)
            continue
        print(f"ZVA-HIT {addr:#x} ZVA-DEVMEM")
        if dev:
            bt = gdb.execute("bt 4", to_string=True)
            print("ZVA-BT " + " | ".join(re.sub(r"\s+", " ", l).strip() for l in bt.splitlines()))
            gdb.execute("delete", to_string=True)   # one hit on Device memory is the answer
if gdb.selected_inferior().pid:
    gdb.execute("kill", to_string=True)
