"""Allocate, lock, map, write, read back and release with every ARM-usable flag."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import Backend
from .buffer import GpuBuffer
from ..exc import PimemError
from ..firmware.memflags import ARM_USABLE_FLAGS, Alias, MemFlag

SELFTEST_SIZE = 64 * 1024


@dataclass(frozen=True)
class SelftestResult:
    flag: str
    handle: int | None
    bus: int | None
    alias: str | None
    expected_alias: str       # what a BCM2837's firmware gives this flag
    phys: int | None
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {
            "flag": self.flag, "handle": self.handle,
            "bus": None if self.bus is None else f"0x{self.bus:08X}",
            "alias": self.alias, "expected_alias": self.expected_alias,
            "phys": None if self.phys is None else f"0x{self.phys:08X}",
            "result": "PASS" if self.passed else "FAIL", "detail": self.detail,
        }


def _check_one(flag: MemFlag, backend: Backend, size: int) -> SelftestResult:
    expected = str(Alias.for_flags(flag))
    try:
        with GpuBuffer(size, flag | MemFlag.ZERO, backend=backend) as buf:
            words = buf.view(np.uint32)
            if np.any(words != 0):
                problem = "not zeroed although allocated with ZERO"
            else:
                # A pattern that differs per word catches mapping the wrong page.
                pattern = np.arange(words.size, dtype=np.uint32) * np.uint32(2654435761)
                words[:] = pattern
                bad = np.flatnonzero(words != pattern)
                problem = f"{bad.size} words read back wrong, first at byte {bad[0] * 4}" if bad.size else ""
            del words
            return SelftestResult(flag.name or str(flag), buf.handle, buf.bus_address, str(buf.alias), expected,
                                  buf.phys_address, not problem,
                                  problem or f"wrote and read back {size} bytes")
    except PimemError as e:
        return SelftestResult(flag.name or str(flag), None, None, None, expected, None, False, str(e))


def selftest(backend: Backend, size: int = SELFTEST_SIZE) -> list[SelftestResult]:
    """One round trip per ARM-usable flag; every buffer is released before the next."""
    return [_check_one(flag, backend, size) for flag in ARM_USABLE_FLAGS]
