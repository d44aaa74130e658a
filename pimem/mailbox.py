"""The mailbox property calls, one method per tag, over any transport."""
from __future__ import annotations

from dataclasses import dataclass

from .exc import GpuMemoryError, GpuMemoryExhausted, MailboxError
from .memflags import MemFlag
from .protocol import Tag, build_request, parse_response, tag_name
from .transport import Transport

MiB = 1 << 20

#: gpu_mem values worth suggesting, in MiB (config.txt accepts any multiple of 16).
_GPU_MEM_STEPS = (128, 192, 256, 320, 384, 448, 512)
#: Room the firmware keeps for itself inside gpu_mem (code, video buffers);
#: an estimate to suggest a setting, not a measurement.
_FIRMWARE_RESERVE_MIB = 64


@dataclass(frozen=True)
class MemoryRange:
    base: int
    size: int

    @property
    def end(self) -> int:
        return self.base + self.size


class Mailbox:
    """Property calls to the VideoCore firmware.

    Every method validates the answer (pimem.protocol.parse_response) and
    raises instead of returning a number that only looks like a result.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def call(self, tag: int, *values: int, response_words: int | None = None) -> tuple[int, ...]:
        """The generic call: one tag, its values, the validated answer."""
        buf = build_request(tag, values)
        self.transport.property(buf)
        return parse_response(buf, tag, response_words)

    # --- board information ---
    def firmware_revision(self) -> int:
        return self.call(Tag.FIRMWARE_REVISION)[0]

    def board_model(self) -> int:
        return self.call(Tag.BOARD_MODEL)[0]

    def board_revision(self) -> int:
        return self.call(Tag.BOARD_REVISION)[0]

    def arm_memory(self) -> MemoryRange:
        return MemoryRange(*self.call(Tag.ARM_MEMORY))

    def vc_memory(self) -> MemoryRange:
        return MemoryRange(*self.call(Tag.VC_MEMORY))

    # --- GPU memory ---
    def allocate(self, size: int, alignment: int, flags: MemFlag | int) -> int:
        """A handle to ``size`` bytes of GPU memory; raises GpuMemoryExhausted on handle 0."""
        handle = self.call(Tag.ALLOCATE_MEMORY, size, alignment, int(flags))[0]
        if handle == 0:
            raise GpuMemoryExhausted(exhausted_message(size, self.vc_memory().size))
        return handle

    def lock(self, handle: int) -> int:
        """Pin the block and return its bus address (the firmware answers 0 on failure)."""
        bus = self.call(Tag.LOCK_MEMORY, handle)[0]
        if bus == 0:
            raise GpuMemoryError(f"lock of handle {handle} failed: the firmware returned bus address 0 "
                                 "(no such handle, or it was released)")
        return bus

    def unlock(self, handle: int) -> None:
        self._status_call(Tag.UNLOCK_MEMORY, handle)

    def release(self, handle: int) -> None:
        self._status_call(Tag.RELEASE_MEMORY, handle)

    def _status_call(self, tag: Tag, handle: int) -> None:
        status = self.call(tag, handle)[0]
        if status != 0:
            raise GpuMemoryError(f"{tag_name(tag)} of handle {handle} failed: the firmware returned "
                                 f"status {status} (no such handle, or not locked)")


def suggest_gpu_mem(asked: int, vc_size: int) -> int | None:
    """A gpu_mem setting (MiB) likely to fit ``asked`` bytes, or None if none does."""
    # The setting must hold the ask plus what the firmware keeps for itself,
    # and be larger than today's, or it changes nothing.
    need = max(-(-asked // MiB) + _FIRMWARE_RESERVE_MIB, vc_size // MiB + 1)
    return next((m for m in _GPU_MEM_STEPS if m >= need), None)


def exhausted_message(asked: int, vc_size: int) -> str:
    head = (f"GPU memory exhausted: asked {asked / MiB:g} MiB, the firmware has "
            f"{vc_size / MiB:g} MiB of GPU memory in all (some of it already in use)")
    hint = suggest_gpu_mem(asked, vc_size)
    if hint is None:
        return (head + "; ask for less: no gpu_mem setting fits this on a 1 GB board, "
                "and run 'python -m pimem cleanup' to free what dead processes left")
    return (head + f"; set gpu_mem={hint} in /boot/firmware/config.txt and reboot, "
            "or run 'python -m pimem cleanup' to free what dead processes left")



__all__ = ["Mailbox", "MemoryRange", "MailboxError", "exhausted_message", "suggest_gpu_mem"]
