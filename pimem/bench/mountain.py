"""The memory mountain (CS:APP 6.6): read bandwidth against working-set size and stride.

For each size and stride the compiled core reads one 8-byte word every
``stride`` words of the buffer, over and over (``pimem_time_read_stride``),
and the bandwidth counts the bytes of the words read. Small sizes and
stride 1 sit on the ridge (L1); larger strides use less of each cache line
fetched, and larger sizes fall off into L2 and then DRAM.

A mountain is kept as a small table of its own (``data/mountain/``): size,
stride, seconds per pass, bytes per pass, GB/s, with a JSON sidecar saying
where it was measured. It needs the compiled core: Python cannot time one
pass over 16 KiB.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pandas as pd

from ..memory.backend import Backend
from ..memory.buffer import GpuBuffer, host_array
from ..exc import BenchmarkError, DataError, UsageError
from ..firmware.memflags import MemFlag
from .timing import time_op

if TYPE_CHECKING:
    from .kernels import CompiledKernel

__all__ = ["DEFAULT_SIZES", "DEFAULT_STRIDES", "KINDS", "mountain", "estimate_seconds", "save_mountain",
           "load_mountain"]

DEFAULT_SIZES: tuple[int, ...] = tuple(1 << p for p in range(14, 26))   # 16 KiB .. 32 MiB
DEFAULT_STRIDES: tuple[int, ...] = tuple(range(1, 13))                  # in 8-byte words
KINDS: dict[str, MemFlag | None] = {"host": None, "direct": MemFlag.DIRECT}
COLUMNS = ("size_bytes", "stride_words", "seconds", "bytes", "gb_per_s", "reps")
MIN_SAMPLE_S = 0.002            # a short region: the mountain has some 150 points
ITERATIONS = 3


def _words_read(size: int, stride: int) -> int:
    return -(-(size // 8) // stride)       # ceil(words / stride)


def estimate_seconds(core: "CompiledKernel", buf: np.ndarray, sizes: Sequence[int], strides: Sequence[int],
                     iterations: int = ITERATIONS) -> float:
    """How long :func:`mountain` will take here, from one timed pass over the largest size at stride 1.

    Each point costs about (calibration + warm-up + iterations) regions of at
    least MIN_SAMPLE_S, or of one pass where a pass is longer.
    """
    big = max(sizes)
    t0 = time.perf_counter()
    core._lib.pimem_time_read_stride(buf.ctypes.data, big, 1, 1)
    one_pass = time.perf_counter() - t0
    regions = 4 + 1 + iterations    # calibration (about 4), warm-up, the timed ones
    # A strided pass reads fewer words but still fetches most lines: stride 1's time is the bound used.
    return sum(regions * max(MIN_SAMPLE_S, one_pass * s / big) for s in sizes for _ in strides)


def _measure(core: "CompiledKernel", buf: np.ndarray, kind: str, sizes: Sequence[int], strides: Sequence[int],
             iterations: int, progress: bool, announce: Callable[[str], None]) -> list[dict]:
    """The mountain's rows: every size and stride, read in ``buf`` by the compiled core."""
    from ..units import format_size

    lib = core._lib
    buf.view(np.uint8)[:] = 0xA5                      # touch every page before timing
    est = estimate_seconds(core, buf, sizes, strides, iterations)
    announce(f"pimem mountain: {len(sizes)} sizes x {len(strides)} strides in {kind} memory; "
             f"about {est:.0f} s here (estimated from one timed pass over {format_size(max(sizes))})")
    rows = []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(sizes) * len(strides), desc="pimem mountain", unit="point")
    addr = buf.ctypes.data
    try:
        for size in sizes:
            for stride in strides:
                def region(reps: int, size: int = size, stride: int = stride) -> int:
                    return lib.pimem_time_read_stride(addr, size, stride, reps)
                expected = int(buf[:size].view(np.uint64)[::stride].sum(dtype=np.uint64))
                got = int(lib.pimem_sum_stride(addr, size, stride))
                if got != expected:
                    raise BenchmarkError(f"the strided read at {size} bytes, stride {stride} summed "
                                         f"0x{got:x}, expected 0x{expected:x}: the core is broken; rebuild it")
                t = time_op(lambda: None, region=region, iterations=iterations, warmup=1,
                            min_sample_s=MIN_SAMPLE_S)
                nbytes = 8 * _words_read(size, stride)
                rows.append({"size_bytes": size, "stride_words": stride, "seconds": t.median_s,
                             "bytes": nbytes, "gb_per_s": nbytes / t.median_s / 1e9, "reps": t.reps})
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return rows


def mountain(backend: Backend | None = None, *, kind: str = "host", sizes: Sequence[int] = DEFAULT_SIZES,
             strides: Sequence[int] = DEFAULT_STRIDES,
             iterations: int = ITERATIONS, progress: bool = True,
             announce: Callable[[str], None] = print) -> tuple[pd.DataFrame, dict]:
    """Measure the mountain in a buffer of ``kind`` ("host" or "direct"); (table, sidecar)."""
    from .benchmarks import RunOptions, chase_kernel
    from .machine import run_metadata, watched

    if kind not in KINDS:
        raise UsageError(f"kind {kind!r} is not a kind of buffer for the mountain; use one of: {', '.join(KINDS)}")
    sizes, strides = sorted(set(sizes)), sorted(set(strides))
    if not sizes or not strides or min(sizes) < 64 or min(strides) < 1:
        raise UsageError("the mountain needs sizes of at least 64 bytes and strides of at least 1 word")
    odd = [s for s in sizes if s % 8]
    if odd:
        raise UsageError(f"size {odd[0]} is not a whole number of 8-byte words; give multiples of 8 (e.g. 16KiB)")
    if max(strides) > min(sizes) // 8:
        raise UsageError(f"stride {max(strides)} words is longer than the smallest size ({min(sizes)} bytes, "
                         f"{min(sizes) // 8} words); give strides of at most {min(sizes) // 8}")
    core = chase_kernel("the memory mountain")
    if backend is None:
        from ..memory.backend import get_backend
        backend = get_backend()
    big = max(sizes)
    if KINDS[kind] is not None:
        problem = backend.mailbox.too_big(big, what=", which the mountain's largest size needs",
                                          less="give smaller --sizes")
        if problem:
            raise UsageError(problem)
    with watched(backend) as conditions:
        if KINDS[kind] is None:
            rows = _measure(core, host_array(big, backend), kind, sizes, strides, iterations, progress, announce)
        else:
            # A with-block: interrupted (Ctrl-C in a notebook), the buffer is released at once.
            with GpuBuffer(big, KINDS[kind], backend=backend) as gpu:
                rows = _measure(core, gpu.array, kind, sizes, strides, iterations, progress, announce)
    if conditions["warning"]:
        announce(conditions["warning"])
    meta = run_metadata(backend, core.name, RunOptions(iterations=iterations, warmup=1))
    meta["conditions"] = conditions
    meta.update({"title": f"memory mountain, {kind} memory", "buffer_kind": kind,
                 "statistic_note": "median of the timed regions; bytes = the 8-byte words read per pass"})
    return pd.DataFrame(rows, columns=list(COLUMNS)), meta


def save_mountain(frame: pd.DataFrame, meta: dict, path: str | Path) -> Path:
    """Write NAME.csv and NAME.json (refusing to overwrite): the sidecar first, as a recording's."""
    from ..safefs import remove_leftovers, write_file

    path = Path(path)
    check_name(path.name)
    csv_path, json_path = path.with_name(path.name + ".csv"), path.with_name(path.name + ".json")
    remove_leftovers(path.parent)   # what an interrupted save of ours left here
    for p in (csv_path, json_path):
        if os.path.lexists(p):
            raise UsageError(f"{p} exists; pimem never overwrites a recording: choose another name")
    write_file(json_path, json.dumps(meta, indent=1) + "\n", replace=False, mode=0o644, durable=True)
    try:
        write_file(csv_path, frame.to_csv(index=False), replace=False, mode=0o644, durable=True)
    except BaseException:
        json_path.unlink(missing_ok=True)   # ours: no sidecar without its table
        raise
    return csv_path


def check_name(name: str) -> str:
    """A mountain's name: a plain file name (no folder, no suffix), as a recording's."""
    from .data import check_name as check_recording_name

    return check_recording_name(name, what="mountain name")


def load_mountain(name: str | Path) -> tuple[pd.DataFrame, dict]:
    """A saved mountain, checked: columns, positive numbers, and GB/s = bytes / seconds.

    A bare name is looked up in the course's data/mountain/, then in this user's my-data/mountain/.
    """
    from .data import data_folders

    path = Path(name)
    if path.parent == Path("."):
        found = [d / "mountain" / path for d in data_folders()
                 if (d / "mountain" / path).with_suffix(".csv").exists()]
        path = found[0] if found else data_folders()[0] / "mountain" / path
    path = path.with_suffix("")
    try:
        frame = pd.read_csv(path.with_suffix(".csv"))
        meta = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read the mountain ({e}); it needs NAME.csv and NAME.json") from None
    if tuple(frame.columns) != COLUMNS:
        raise DataError(f"{path}.csv: columns {','.join(frame.columns)}; expected {','.join(COLUMNS)}")
    if (frame[["size_bytes", "stride_words", "seconds", "bytes", "reps"]] <= 0).any().any():
        raise DataError(f"{path}.csv: every size, stride, time, byte count and reps must be > 0")
    expected = frame["bytes"] / frame["seconds"] / 1e9
    if not np.allclose(frame["gb_per_s"], expected, rtol=1e-6):
        raise DataError(f"{path}.csv: gb_per_s is not bytes / seconds / 1e9 on every row")
    if "machine" not in meta or "is_pi" not in meta["machine"]:
        raise DataError(f"{path}.json: says nothing of the machine (machine.is_pi); a mountain must say where it was measured")
    if meta["machine"]["is_pi"] and meta["machine"].get("emulated"):
        raise DataError(f"{path}.json: machine.is_pi is true, but the mountain was measured on an emulated machine "
                        f"({meta['machine']['emulated']}): its timings are not a Raspberry Pi's; set is_pi to false")
    return frame, meta
