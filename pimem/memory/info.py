"""The readable record of this board, like gpiozero's pi_info()."""
from __future__ import annotations

import os
import platform
import struct
from dataclasses import asdict, dataclass
from typing import Any

from .backend import Backend, mappable_gpu_memory
from ..firmware.board import (FIRMWARE_RESERVE_MIB, BoardRevision, decode_revision,
                              read_emulated_machine, read_model_string)
from ..exc import MailboxError, RevisionError
from ..firmware.mailbox import Clock
from ..units import MiB


@dataclass(frozen=True)
class SystemInfo:
    backend: str
    model_string: str | None       # /proc/device-tree/model (None off a Pi)
    revision: BoardRevision | None
    revision_code: int
    board_model: int
    firmware_revision: int
    arm_memory: tuple[int, int]    # base, size
    vc_memory: tuple[int, int]
    gpu_heap: int                  # bytes the firmware lends out of vc_memory
    gpu_heap_told: bool            # True: the firmware's own figure; False: pimem's estimate
    gpu_heap_free: int | None      # bytes of it free now (get_mem reloc), None if the firmware does not say
    clocks_hz: dict[str, int | None]   # ARM, CORE, SDRAM now (the clock-rate tag); None where not answered
    machine: str                   # platform.machine() of this process
    pointer_bits: int              # 32 or 64: picks the ioctl number
    is_root: bool
    emulated: str | None = None    # what emulates this "Pi" (scripts/pi-machine.sh), None on a real one

    @property
    def is_pi(self) -> bool:
        """Measured on a Raspberry Pi: neither pimem's emulator nor an emulated machine."""
        return not self.backend.startswith("emulator") and not self.emulated

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["revision"] = asdict(self.revision) if self.revision else None
        d["revision_code"] = f"{self.revision_code:x}"
        d["firmware_revision"] = f"0x{self.firmware_revision:08X}"
        d["arm_memory"] = {"base": f"0x{self.arm_memory[0]:08X}", "size": self.arm_memory[1]}
        d["vc_memory"] = {"base": f"0x{self.vc_memory[0]:08X}", "size": self.vc_memory[1]}
        return d

    def lines(self) -> list[str]:
        arm, vc = self.arm_memory, self.vc_memory
        window_note = mappable_gpu_memory(vc[0], vc[1], self.revision)[2]
        board = self.revision.describe() if self.revision else f"unknown revision {self.revision_code:x}"
        where = (f"an emulated machine, {self.emulated}: not a Raspberry Pi" if self.emulated else
                 "emulated by pimem (no Raspberry Pi attached)" if self.backend.startswith("emulator") else
                 "this Raspberry Pi")
        return [
            f"Backend:      {self.backend}",
            f"Board:        {board} ({where})",
            f"Model string: {self.model_string or '(none: /proc/device-tree/model is absent)'}",
            f"Revision:     {self.revision_code:x}",
            f"Firmware:     0x{self.firmware_revision:08X}",
            f"ARM memory:   0x{arm[0]:08X} - 0x{arm[0] + arm[1] - 1:08X} ({arm[1] // MiB} MiB)",
            f"GPU memory:   0x{vc[0]:08X} - 0x{vc[0] + vc[1] - 1:08X} ({vc[1] // MiB} MiB, gpu_mem"
            + window_note + ")",
            f"GPU heap:     {self.gpu_heap // MiB} MiB lent out, the rest the firmware's own ("
            + ("the firmware's get_mem reloc_total)" if self.gpu_heap_told else
               f"estimated: gpu_mem less {FIRMWARE_RESERVE_MIB} MiB; the firmware did not say)")
            + ("" if self.gpu_heap_free is None else f"; {self.gpu_heap_free // MiB} MiB free now (get_mem reloc)"),
            "Clocks now:   " + ", ".join(f"{name} {hz / 1e6:g} MHz" if hz else f"{name} (not reported)"
                                         for name, hz in self.clocks_hz.items())
            + " (the clock-rate tag; the DRAM peak is SDRAM x 2 x 4 bytes)",
            f"Process:      {describe_process(self.machine, self.pointer_bits, self.is_root)}",
        ]


def describe_process(machine: str | None = None, pointer_bits: int | None = None, is_root: bool | None = None) -> str:
    """'aarch64, 64-bit, root; ioctl 0xC0086400': this process (by default) as the mailbox sees it."""
    from ..firmware.transport import ioctl_property_number

    machine = platform.machine() if machine is None else machine
    pointer_bits = struct.calcsize("P") * 8 if pointer_bits is None else pointer_bits
    is_root = os.geteuid() == 0 if is_root is None else is_root
    return (f"{machine}, {pointer_bits}-bit, {'root' if is_root else 'not root'}; "
            f"ioctl 0x{ioctl_property_number(pointer_bits // 8):08X}")


def _clock(mb: Any, clock: Clock) -> int | None:
    try:
        return mb.clock_rate(clock) or None   # 0: the firmware has no such clock
    except MailboxError:
        return None


def system_info(backend: Backend) -> SystemInfo:
    mb = backend.mailbox
    code = mb.board_revision()
    try:
        revision: BoardRevision | None = decode_revision(code)
    except RevisionError:
        revision = None
    arm, vc = mb.arm_memory(), mb.vc_memory()
    told = mb.reloc_total()
    # The model string describes the machine we run on, which the emulator is not.
    model = read_model_string() if backend.name == "pi" else None
    return SystemInfo(
        backend=backend.describe(),
        model_string=model,
        revision=revision,
        revision_code=code,
        board_model=mb.board_model(),
        firmware_revision=mb.firmware_revision(),
        arm_memory=(arm.base, arm.size),
        vc_memory=(vc.base, vc.size),
        gpu_heap=told if told is not None else mb.relocatable_heap(),
        gpu_heap_told=told is not None,
        gpu_heap_free=mb.get_mem("reloc"),
        clocks_hz={clock.name: _clock(mb, clock) for clock in Clock},
        machine=platform.machine(),
        pointer_bits=struct.calcsize("P") * 8,
        is_root=os.geteuid() == 0,
        emulated=read_emulated_machine() if backend.name == "pi" else None,
    )


__all__ = ["SystemInfo", "system_info"]
