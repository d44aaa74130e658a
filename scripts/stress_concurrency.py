"""Many processes allocating at once: does any buffer ever overlap another, and does anything leak?

    .venv/bin/python scripts/stress_concurrency.py [--processes 8] [--seconds 60]

Each process, against one emulator state directory (a throwaway one), allocates GPU buffers
of random sizes in a loop, fills each with a pattern of its own (its pid and a counter), keeps a
few at a time, and before releasing one checks that every byte is still its pattern: another
process given the same memory would have overwritten it. At the end the emulator must hold no
allocation. Prints buffers, overlaps (buffers found overwritten) and leaked handles; exits 1 if
either is not 0.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time


def worker(state_dir: str, seconds: float, seed: int, out: "mp.Queue[tuple[int, int]]") -> None:
    os.environ["PIMEM_BACKEND"] = "emulator"
    os.environ["PIMEM_EMULATOR_DIR"] = state_dir
    import numpy as np

    from pimem import GpuBuffer
    from pimem.exc import GpuMemoryExhausted

    rng = random.Random(seed)
    held: list[tuple[GpuBuffer, int]] = []
    made = bad = 0
    deadline = time.monotonic() + seconds

    def give_back(buf: GpuBuffer, pattern: int) -> int:
        ok = bool((buf.array.view(np.uint32) == pattern).all())
        buf.close()
        return 0 if ok else 1

    while time.monotonic() < deadline:
        if held and (len(held) >= 4 or rng.random() < 0.5):
            bad += give_back(*held.pop(rng.randrange(len(held))))
            continue
        try:
            buf = GpuBuffer(rng.choice((4, 16, 64, 256)) << 10)
        except GpuMemoryExhausted:
            continue
        pattern = ((os.getpid() & 0xFFFF) << 16) | (made & 0xFFFF)
        buf.array.view(np.uint32)[:] = pattern
        held.append((buf, pattern))
        made += 1
    for buf, pattern in held:
        bad += give_back(buf, pattern)
    out.put((made, bad))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pimem-concurrency-") as tmp:
        state_dir = os.path.join(tmp, "emu")
        out: mp.Queue = mp.Queue()
        procs = [mp.Process(target=worker, args=(state_dir, args.seconds, i, out)) for i in range(args.processes)]
        for p in procs:
            p.start()
        results = [out.get(timeout=args.seconds + 300) for _ in procs]
        for p in procs:
            p.join()
        os.environ["PIMEM_EMULATOR_DIR"] = state_dir
        from pimem.memory.backend import open_backend

        backend = open_backend("emulator", emulator_dir=state_dir)
        leaked = len(backend.transport.firmware.allocations())
        backend.transport.close()
    made, overlaps = sum(m for m, _ in results), sum(b for _, b in results)
    print(f"{args.processes} processes for {args.seconds:g} s: {made} buffers, {overlaps} overlaps "
          f"(a buffer found overwritten), {leaked} leaked")
    return 0 if overlaps == 0 and leaked == 0 and made > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
