"""The mailbox property calls, one method per tag, over any transport."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import re
import struct

from .board import FIRMWARE_RESERVE_MIB
from ..exc import GpuMemoryError, GpuMemoryExhausted, MailboxError, UsageError
from .memflags import MemFlag
from .protocol import Clock, Tag, answered_bytes, build_request, parse_response, tag_name
from .transport import Transport

from ..units import MiB, format_size

#: gpu_mem values worth suggesting, in MiB (config.txt accepts any multiple of 16).
_GPU_MEM_STEPS = (128, 192, 256, 320, 384, 448, 512)
_GENCMD_TEXT = 1024   # bytes of command and reply text (vcgencmd's MAX_STRING)


@dataclass(frozen=True)
class MemoryRange:
    base: int
    size: int

    @property
    def end(self) -> int:
        return self.base + self.size


class Mailbox:
    """Property calls to the VideoCore firmware.

    Every method validates the answer (pimem.firmware.protocol.parse_response) and
    raises instead of returning a number that only looks like a result.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def call(self, tag: int, *values: int, response_words: int | None = None) -> tuple[int, ...]:
        """The generic call: one tag, its values, the validated answer."""
        return self._exchange(tag, values, response_words)[1]

    def _exchange(self, tag: int, values: tuple[int, ...],
                  response_words: int | None = None) -> tuple[bytearray, tuple[int, ...]]:
        buf = build_request(tag, values)
        self.transport.property(buf)
        try:
            return buf, parse_response(buf, tag, response_words)
        except MailboxError:
            why = self.transport.why_unanswered(int(tag))
            if why is None:
                raise
            raise MailboxError(f"{tag_name(tag)}: {why}") from None

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

    def clock_rate(self, clock: Clock | int, kind: Tag = Tag.CLOCK_RATE) -> int:
        """A clock's rate in Hz; `kind` is CLOCK_RATE, MIN_/MAX_CLOCK_RATE or CLOCK_RATE_MEASURED."""
        if kind not in (Tag.CLOCK_RATE, Tag.MIN_CLOCK_RATE, Tag.MAX_CLOCK_RATE, Tag.CLOCK_RATE_MEASURED):
            raise UsageError(f"{tag_name(kind)} is not a clock-rate tag; give CLOCK_RATE, MIN_CLOCK_RATE, "
                             "MAX_CLOCK_RATE or CLOCK_RATE_MEASURED")
        return self.call(kind, int(clock))[1]

    def temperature(self) -> float:
        """The SoC's temperature in degrees C."""
        return self.call(Tag.TEMPERATURE, 0)[1] / 1000

    def throttled(self) -> int:
        """The throttled bits (0: no under-voltage, capping or throttling, now or since boot; THROTTLED_BITS)."""
        return self.call(Tag.THROTTLED, 0)[0]

    def gencmd(self, command: str) -> str:
        """What `vcgencmd COMMAND` prints, through the mailbox (GET_GENCMD_RESULT).

        Raises MailboxError if the firmware reports an error for the command.
        """
        if not command.isascii() or "\0" in command:
            raise MailboxError(f"gencmd command {command!r}: give plain ASCII text, as vcgencmd takes")
        text = command.encode("ascii") + b"\0"
        if len(text) > _GENCMD_TEXT:
            raise MailboxError(f"gencmd command is {len(text)} bytes with its NUL; at most {_GENCMD_TEXT}")
        # The layout vcgencmd sends (raspberrypi/utils vcgencmd.c): an error word, then the text.
        words = (0, *struct.unpack(f"<{_GENCMD_TEXT // 4}I", text.ljust(_GENCMD_TEXT, b"\0")))
        buf, (error,) = self._exchange(Tag.GENCMD_RESULT, words)
        reply = answered_bytes(buf)[4:].split(b"\0", 1)[0].decode("ascii", "replace")
        if error:
            raise MailboxError(f"gencmd {command!r} failed (error {error}): {reply}")
        return reply

    def get_mem(self, name: str) -> int | None:
        """`vcgencmd get_mem NAME` in bytes (reloc_total, reloc, arm, gpu, ...), or None if the firmware does not say."""
        try:
            m = re.fullmatch(rf"{re.escape(name)}=(\d+)M", self.gencmd(f"get_mem {name}").strip())
        except MailboxError:
            return None
        return int(m.group(1)) * MiB if m is not None else None

    def reloc_total(self) -> int | None:
        """The firmware's relocatable heap in bytes (`get_mem reloc_total`), or None if it does not say."""
        total = self.get_mem("reloc_total")
        return total if total else None   # 0: what the firmware answers for a name it does not know

    def relocatable_heap(self) -> int:
        """Bytes in the firmware's relocatable heap, which GPU memory is allocated from.

        The firmware's own figure where it gives one, else gpu_mem less what a Pi 3B's
        firmware keeps (board.FIRMWARE_RESERVE_MIB, an estimate).
        """
        told = self.reloc_total()
        return told if told is not None else max(self.vc_memory().size - FIRMWARE_RESERVE_MIB * MiB, 0)

    # --- GPU memory ---
    def allocate(self, size: int, alignment: int, flags: MemFlag | int) -> int:
        """A handle to ``size`` bytes of GPU memory; raises GpuMemoryExhausted on handle 0."""
        handle = self.call(Tag.ALLOCATE_MEMORY, size, alignment, int(flags))[0]
        if handle == 0:
            raise self.exhausted(size)
        return handle

    def exhausted(self, asked: int) -> GpuMemoryExhausted:
        """The error for an allocation of `asked` bytes the firmware refused."""
        return GpuMemoryExhausted(exhausted_message(asked, self.vc_memory().size, self.relocatable_heap(),
                                                    self.transport.gpu_mem_advice))

    def too_big(self, asked: int, *, what: str = "", less: str = "ask for less") -> str | None:
        """Why `asked` bytes can never come from this firmware's heap, and what to do; None if they can.

        For checking a request before any work is done (the heap may still be partly in use).
        `what` follows the heap's size ("which zerocopy needs"); `less` is how to ask for less.
        """
        heap = self.relocatable_heap()
        if asked <= heap:
            return None
        gpu_mem = self.vc_memory().size
        head = (f"{format_size(asked)} is more than the firmware's GPU heap ({format_size(heap)} of gpu_mem's "
                f"{format_size(gpu_mem)}){what}")
        hint = suggest_gpu_mem(asked, gpu_mem, heap)
        if hint is None:
            return head + f"; {less} (no gpu_mem setting fits this on a 1 GB board)"
        return head + f"; {less}, or {self.transport.gpu_mem_advice(hint)}"

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


def suggest_gpu_mem(asked: int, gpu_mem: int, heap: int | None = None) -> int | None:
    """A gpu_mem setting (MiB) whose heap likely holds ``asked`` bytes, or None if none does.

    The firmware keeps gpu_mem - heap for itself (board.FIRMWARE_RESERVE_MIB when the heap is not known).
    """
    reserve = FIRMWARE_RESERVE_MIB if heap is None else -(-(gpu_mem - heap) // MiB)
    need = max(-(-asked // MiB) + reserve, gpu_mem // MiB + 1)
    return next((m for m in _GPU_MEM_STEPS if m >= need), None)


def exhausted_message(asked: int, gpu_mem: int, heap: int, advice: Callable[[int], str] | None = None) -> str:
    """Why an allocation failed and what to do; `advice(mib)` says how to set gpu_mem (default: config.txt)."""
    from ..paths import pimem_command

    head = (f"GPU memory exhausted: asked {asked / MiB:g} MiB; the firmware allocates from a "
            f"{heap / MiB:g} MiB heap (gpu_mem is {gpu_mem / MiB:g} MiB, and the firmware keeps the rest), "
            "some of it perhaps in use")
    cleanup = f"'{pimem_command('cleanup')}' frees what dead processes left"
    hint = suggest_gpu_mem(asked, gpu_mem, heap)
    if hint is None:
        return head + f"; ask for less: no gpu_mem setting fits this on a 1 GB board; {cleanup}"
    advice = advice or (lambda mib: f"set gpu_mem={mib} in /boot/firmware/config.txt and reboot")
    return head + f"; {advice(hint)}; or {cleanup}"


#: What each bit of GET_THROTTLED (vcgencmd get_throttled) means: bits 0-3 now, 16-19 since boot
#: (raspberrypi/documentation, computers/os.adoc, vcgencmd get_throttled).
THROTTLED_BITS: dict[int, str] = {
    0: "under-voltage now", 1: "ARM frequency capped now", 2: "throttled now", 3: "soft temperature limit now",
    16: "under-voltage has occurred", 17: "ARM frequency capping has occurred", 18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}


def describe_throttled(bits: int) -> list[str]:
    """The throttled bits in words (empty: none set)."""
    return [what for bit, what in THROTTLED_BITS.items() if bits >> bit & 1]


__all__ = ["Clock", "Mailbox", "MemoryRange", "MailboxError", "THROTTLED_BITS", "describe_throttled",
           "exhausted_message", "suggest_gpu_mem"]
