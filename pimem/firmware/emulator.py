"""A pure-Python model of the VideoCore firmware behind /dev/vcio, as on a Pi 3B.

`FirmwareEmulator.process` takes a mailbox property buffer and answers it in
place the way the firmware does, so the code above it cannot tell the two
apart (apart from speed). It follows the documented behaviour: the
raspberrypi/firmware wiki page "Mailbox property interface" (buffer layout,
tags, allocation flags) and `include/soc/bcm2835/raspberrypi-firmware.h`
(status codes). Where the documentation is silent, the comments say which
choice was made and why.

What it answers: the board and memory tags, the four memory tags (from a
relocatable heap that is gpu_mem less what the firmware keeps for itself,
board.FIRMWARE_RESERVE_MIB), clock rates (ARM, CORE, SDRAM), temperature,
throttled state, and GET_GENCMD_RESULT for `get_mem`, `measure_temp` and
`get_throttled`. What it cannot honestly model, it leaves unanswered, as the
firmware does an unknown tag: the tags that run code on the VideoCore,
EXECUTE_CODE (VPU), EXECUTE_QPU and SET_ENABLE_QPU (see UNMODELLED_TAGS); the
emulator's transport says so by name. Clock rates and the temperature are
fixed, plausible figures, not a model of load or heat.

Like the firmware's, the emulator's state outlives the processes that use it:
it lives in a directory (a JSON Lines journal of states and a sparse file
holding the GPU memory), so an allocation that a killed process never
released stays allocated, and every process using the directory sees it.
"""
from __future__ import annotations

import errno
import json
import mmap
import os
import pathlib
import shutil
import struct
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from .board import FIRMWARE_RESERVE_MIB, PI3B
from ..exc import CorruptState, DiskFull, UsageError
from ..units import MiB
from ..safefs import FileLock, folder_error, open_file, private_dir, read_regular, write_file

STATE_FILE = "state.jsonl"
# The journal is rewritten as its last line once it grows past this: rarely, and
# before a request changes anything (see _load), never as a request's commit.
_JOURNAL_LIMIT = 64 * 1024
# Two states of the fullest heap the board allows (a block in every page of 1 GiB, about
# 100 bytes each): compaction waits for the next request, so the journal may hold two.
_JOURNAL_READ_LIMIT = 2 * (2**30 // 4096) * 128
DEFAULT_GPU_MEM = PI3B.default_gpu_mem
#: The emulator's gpu_mem in MiB, as config.txt's `gpu_mem=` gives a Pi's: read when a state boots.
ENV_GPU_MEM = "PIMEM_EMULATOR_GPU_MEM"

_RAM = PI3B.ram_bytes
_PAGE = 4096
_CHUNK = MiB  # bytes per read/write when filling or moving GPU memory

_STATUS_SUCCESS = 0x80000000
_STATUS_ERROR = 0x80000001  # "error parsing request"
_TAG_RESPONSE = 0x80000000  # bit 31 of a tag's request/response word

_TAG_FIRMWARE_REVISION = 0x00000001
_TAG_BOARD_MODEL = 0x00010001
_TAG_BOARD_REVISION = 0x00010002
_TAG_ARM_MEMORY = 0x00010005
_TAG_VC_MEMORY = 0x00010006
_TAG_ALLOCATE = 0x0003000C
_TAG_LOCK = 0x0003000D
_TAG_UNLOCK = 0x0003000E
_TAG_RELEASE = 0x0003000F
_TAG_CLOCK_RATE = 0x00030002
_TAG_MAX_CLOCK_RATE = 0x00030004
_TAG_TEMPERATURE = 0x00030006
_TAG_MIN_CLOCK_RATE = 0x00030007
_TAG_MAX_TEMPERATURE = 0x0003000A
_TAG_THROTTLED = 0x00030046
_TAG_CLOCK_RATE_MEASURED = 0x00030047
_TAG_GENCMD = 0x00030080

# Tags a Pi 3B's firmware answers that the emulator cannot honestly model: they run
# code on the VideoCore (its VPU, or its QPUs through the job list of EXECUTE_QPU).
# They stay unanswered (response bit clear, the request left as it was), and the
# transport names them, so a program such as hello_fft is told why it cannot run here.
UNMODELLED_TAGS = {
    0x00030010: "EXECUTE_CODE (run code on the VPU)",
    0x00030011: "EXECUTE_QPU (run QPU programs)",
    0x00030012: "SET_ENABLE_QPU (power the QPUs)",
}

# Clock rates in Hz, as a Pi 3B's firmware reports them while the ARM is busy (the
# course measures under load): config_txt/overclocking.adoc, Pi 3 column (arm_freq
# 1200, core_freq 400, sdram_freq 450; minimums 600, 250, 400). Clock ids from the
# firmware wiki: 3 ARM, 4 CORE, 8 SDRAM. The emulator cannot measure a clock, so the
# measured tag answers the set rate; other clocks it does not model answer 0, as the
# wiki says the firmware does for a clock that does not exist.
_CLOCKS = {3: (1_200_000_000, 600_000_000, 1_200_000_000),   # id: (rate, min, max)
           4: (400_000_000, 250_000_000, 400_000_000),
           8: (450_000_000, 400_000_000, 450_000_000)}
# Thousandths of a degree C. 48.3 C: a Pi 3B at rest in one published run
# (ThomasKaiser/sbc-bench results/4hOp.txt), an illustration rather than a model;
# 85 C: the firmware's default temp_limit (overclocking.adoc), an inference for the maximum.
_TEMPERATURE = 48_300
_MAX_TEMPERATURE = 85_000
# The firmware's malloc pool: "Malloc pool size=13M" in published vcdbg dumps
# (raspberrypi/firmware#192, raspberrypi/userland#626).
_MALLOC_TOTAL_MIB = 13

# How many request words each known tag reads; any other tag is unknown.
_REQUEST_WORDS = {
    _TAG_FIRMWARE_REVISION: 0,
    _TAG_BOARD_MODEL: 0,
    _TAG_BOARD_REVISION: 0,
    _TAG_ARM_MEMORY: 0,
    _TAG_VC_MEMORY: 0,
    _TAG_ALLOCATE: 3,
    _TAG_LOCK: 1,
    _TAG_UNLOCK: 1,
    _TAG_RELEASE: 1,
    _TAG_CLOCK_RATE: 1,
    _TAG_MAX_CLOCK_RATE: 1,
    _TAG_MIN_CLOCK_RATE: 1,
    _TAG_CLOCK_RATE_MEASURED: 1,
    _TAG_TEMPERATURE: 1,
    _TAG_MAX_TEMPERATURE: 1,
    _TAG_THROTTLED: 1,
    _TAG_GENCMD: 1,   # the error word; the command text follows it (see _gencmd)
}

_FLAG_ZERO = 16
_FLAG_NO_INIT = 32
# Bus alias (bits 31..30) by flag bits 2..3, as a BCM2837 answers: the
# original lesson's run shows COHERENT at 0x8... and DIRECT at 0xC...
_ALIAS = {0: 0x00000000, 4: 0xC0000000, 8: 0x80000000, 12: 0x40000000}

_FAILED = 1  # any nonzero status from unlock/release means failure


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def _footprint(block: dict[str, Any]) -> int:
    # Blocks start on a page and own whole pages, so any block can be mmapped
    # without exposing its neighbour.
    return _round_up(block["size"], _PAGE)


def _parse(view: memoryview) -> list[tuple[int, int, int]] | None:
    """Check the whole buffer before touching anything, as a parse error must
    leave it unchanged but for the status word. Returns (tag, position,
    value size) for each tag, or None if the buffer is malformed."""
    # The firmware reads only as many bytes as the size word says: a longer
    # buffer (other mailbox libraries send a fixed 1 KiB one) is answered
    # within its first `size` bytes, and the rest is left as it is.
    size, code = struct.unpack_from("<II", view, 0)
    n = size
    if size > len(view) or n < 12 or n % 4 or code != 0:
        return None
    tags = []
    pos = 8
    while pos < n:
        (tag,) = struct.unpack_from("<I", view, pos)
        if tag == 0:
            return tags
        if pos + 12 > n:
            # No room for another tag header: the walk ends, as if at the end tag.
            # vcgencmd (raspberrypi/utils) declares a 1024-byte value buffer but sends
            # 1028 bytes of it, so the word after it is text, and the kernel's end tag
            # is the word after that; real firmware answers it, so the walk must end here.
            return tags if tags else None
        (value_size,) = struct.unpack_from("<I", view, pos + 4)
        end = pos + 12 + _round_up(value_size, 4)
        if end > n:
            return None
        tags.append((tag, pos, value_size))
        pos = end
    return None  # no end tag


def gpu_mem_setting() -> int | None:
    """PIMEM_EMULATOR_GPU_MEM in bytes (the variable is in MiB, like config.txt's gpu_mem), or None if unset."""
    text = os.environ.get(ENV_GPU_MEM, "").strip()
    if not text:
        return None
    digits = text[:-1] if text[-1:] in "Mm" else text   # config.txt's own style, 128 or 128M
    if not digits.isdigit() or len(digits) > 4:
        raise UsageError(f"{ENV_GPU_MEM}={text!r}: give the emulator's gpu_mem in MiB, as config.txt does, "
                         "e.g. 128 (the original lesson's Pi) or 76 (the firmware's default)")
    return int(digits) * MiB


def reset_command(gpu_mem: int | None = None) -> str:
    """The command that boots the emulator afresh (with `gpu_mem` bytes, if given)."""
    from ..paths import pimem_command

    return pimem_command("cleanup --reset-emulator" + (f" --gpu-mem {gpu_mem // MiB}" if gpu_mem else ""))


def _check_arguments(gpu_mem: object, firmware_reserve: object, vc_base: object, board_revision: object,
                     firmware_revision: object) -> None:
    """UsageError naming the first of FirmwareEmulator's arguments that is out of range."""
    if isinstance(gpu_mem, bool) or not isinstance(gpu_mem, int) or gpu_mem % MiB or not MiB <= gpu_mem < _RAM:
        raise UsageError(
            f"gpu_mem={gpu_mem!r}: give a whole number of MiB from 1 MiB to "
            f"1023 MiB (the emulated board has 1 GiB), e.g. 76 * 2**20")
    if vc_base is not None and (isinstance(vc_base, bool) or not isinstance(vc_base, int) or vc_base <= 0
                                or vc_base % MiB or vc_base + gpu_mem > _RAM):
        raise UsageError(f"vc_base={vc_base!r}: give a whole number of MiB above 0 with vc_base + gpu_mem "
                         "within the 1 GiB a bus address reaches")
    if not isinstance(firmware_reserve, int) or firmware_reserve % MiB or not 0 <= firmware_reserve < gpu_mem:
        raise UsageError(
            f"firmware_reserve={firmware_reserve!r} with gpu_mem={gpu_mem // MiB} MiB: give a whole number "
            f"of MiB below gpu_mem (the firmware keeps {FIRMWARE_RESERVE_MIB} MiB of it on a Pi 3B), "
            "or a larger gpu_mem")
    for name, value in (("board_revision", board_revision),
                        ("firmware_revision", firmware_revision)):
        if not isinstance(value, int) or not 0 <= value < 2**32:
            raise UsageError(f"{name}={value!r}: give a 32-bit unsigned integer")


class FirmwareEmulator:
    """The VideoCore firmware of a Raspberry Pi 3B (1 GiB), kept in `state_dir`.

    If `state_dir` already holds state, the firmware "has already booted" and keeps the
    gpu_mem it booted with, as a Pi keeps its gpu_mem until it reboots: `gpu_mem=None`
    takes it, and any other value is refused with the command that boots it again.
    A fresh state boots with `gpu_mem`, else PIMEM_EMULATOR_GPU_MEM, else 76 MiB.
    """

    def __init__(self, state_dir: str | os.PathLike, gpu_mem: int | None = None,
                 board_revision: int = 0xA02082,
                 # 0x68A60009: the revision a real Pi 3B printed in the
                 # original lesson's run.
                 firmware_revision: int = 0x68A60009,
                 firmware_reserve: int = FIRMWARE_RESERVE_MIB * MiB,
                 *, vc_base: int | None = None,
                 physical_memory: str | os.PathLike | None = None) -> None:
        # vc_base and physical_memory are for a machine whose real physical memory stands for
        # the GPU's (scripts/pi-machine: a kernel under qemu-system answers /dev/vcio with this
        # emulator). vc_base: where the GPU memory starts (default: the top gpu_mem of 1 GiB, as
        # on a Pi; used at boot only, like gpu_mem). physical_memory: a file addressed by physical
        # address, such as /dev/mem: the emulator's own writes to GPU memory (the ZERO and
        # all-ones initialisation, compaction's moves) go to vc_base + offset in it instead of
        # to memory.bin, so the memory another process maps from /dev/mem is what it initialised.
        asked = gpu_mem if gpu_mem is not None else gpu_mem_setting()
        gpu_mem = asked if asked is not None else DEFAULT_GPU_MEM
        _check_arguments(gpu_mem, firmware_reserve, vc_base, board_revision, firmware_revision)
        self._physical = None if physical_memory is None else pathlib.Path(physical_memory)
        self.board_revision = board_revision
        self.firmware_revision = firmware_revision
        self.state_dir = pathlib.Path(state_dir)
        self.memory_path = self.state_dir / "memory.bin"
        self._state_path = self.state_dir / STATE_FILE
        self._state_lock = FileLock(self.state_dir / "lock")
        private_dir(self.state_dir, "the emulator's state directory",
                    "set PIMEM_EMULATOR_DIR to a directory of your own")
        with self._locked():
            if os.path.lexists(self.state_dir / "state.json") and not os.path.lexists(self._state_path):
                # An older pimem's state (and its ledger) may still be in use by a running
                # process: booting over it would hand out the same memory twice.
                raise CorruptState(f"the emulator's state in {self.state_dir} was written by an older pimem "
                                   "(state.json); stop the processes that use it, then run "
                                   f"'{reset_command()}'")
            state = (self._load() if os.path.lexists(self._state_path)
                     else self._boot(gpu_mem, gpu_mem - firmware_reserve, vc_base))
        if asked is not None and asked != state["gpu_mem"]:
            raise UsageError(
                f"the emulator in {self.state_dir} booted with gpu_mem={state['gpu_mem'] // MiB} MiB and keeps it, "
                f"as a Pi keeps its gpu_mem until it reboots; {asked // MiB} MiB was asked "
                f"({ENV_GPU_MEM} or gpu_mem=). To boot it again with {asked // MiB} MiB (every emulated "
                f"allocation is lost): {reset_command(asked)}")
        self.gpu_mem: int = state["gpu_mem"]
        #: The relocatable heap the mailbox allocates from: the bottom of the GPU's
        #: memory; the firmware's own part is the top `gpu_mem - heap_size` bytes.
        self.heap_size: int = state["heap_size"]
        self.vc_base: int = state["vc_base"]

    # --- the mailbox -------------------------------------------------------

    def process(self, buf: bytearray) -> None:
        """Answer one property request in place, exactly like the firmware.

        Bad bytes never raise: a malformed buffer gets status 0x80000001 and
        is otherwise left as it was. Raises TypeError if `buf` is not a
        writable, contiguous buffer.
        """
        view = memoryview(buf)
        if view.readonly:
            raise TypeError(f"process() answers in place and needs a writable buffer "
                            f"such as a bytearray, not a read-only {type(buf).__name__}")
        view = view.cast("B")
        if len(view) < 8:
            return  # too short to hold even the status word
        tags = _parse(view)
        if tags is None:
            struct.pack_into("<I", view, 4, _STATUS_ERROR)
            return
        size = struct.unpack_from("<I", view, 0)[0]
        original = bytes(view[:size])   # put back if the request fails after answering
        with self._locked():
            try:
                self._answer_all(view, tags, size)
            except BaseException:
                view[:size] = original   # the firmware's failure leaves the request as it was
                raise
        struct.pack_into("<I", view, 4, _STATUS_SUCCESS)

    def _answer_all(self, view: memoryview, tags: list[tuple[int, int, int]], size: int) -> None:
        """Answer every tag in place and commit the state (called with the state lock held)."""
        state = self._load()
        before = json.dumps(state)
        for tag, pos, value_size in tags:
            if tag not in _REQUEST_WORDS:
                # The wiki: "Unknown tags are ignored (the response bit
                # will not be set)". So the whole tag is left untouched.
                continue
            if tag == _TAG_GENCMD:
                # The command text follows the error word, inside the value buffer and
                # the one word past it that vcgencmd also fills (see _parse).
                response = self._gencmd(state, bytes(view[pos + 16:min(size, pos + 16 + value_size)]))
            else:
                words = self._answer(state, tag, self._request(view, pos, value_size,
                                                               _REQUEST_WORDS[tag]))
                response = struct.pack(f"<{len(words)}I", *words)
            # The wiki: "The response is truncated to the provided buffer
            # length" and "Response length indicates the desired length
            # even when it is longer than the buffer size filled".
            filled = min(value_size, len(response))
            view[pos + 12:pos + 12 + filled] = response[:filled]
            struct.pack_into("<I", view, pos + 8, _TAG_RESPONSE | len(response))
        if json.dumps(state) != before:
            self._save(state)

    @staticmethod
    def _request(view: memoryview, pos: int, value_size: int, count: int) -> tuple[int, ...]:
        # The wiki does not say what the firmware reads when a value buffer is
        # shorter than the request. We read only the bytes inside it and take
        # the missing words as 0, rather than the next tag's bytes: a missing
        # handle or size is then 0 and the tag fails (handle 0, bus address 0,
        # nonzero status); a missing alignment or flags word is a valid 0.
        raw = bytes(view[pos + 12:pos + 12 + min(value_size, 4 * count)])
        return struct.unpack(f"<{count}I", raw.ljust(4 * count, b"\0"))

    def _answer(self, state: dict[str, Any], tag: int, args: tuple[int, ...]) -> list[int]:
        if tag == _TAG_FIRMWARE_REVISION:
            return [self.firmware_revision]
        if tag == _TAG_BOARD_MODEL:
            return [0]
        if tag == _TAG_BOARD_REVISION:
            return [self.board_revision]
        if tag == _TAG_ARM_MEMORY:
            return [0, state["vc_base"]]  # the ARM has everything below the GPU
        if tag == _TAG_VC_MEMORY:
            return [state["vc_base"], state["gpu_mem"]]
        if tag == _TAG_ALLOCATE:
            return [self._allocate(state, *args)]
        if tag == _TAG_LOCK:
            return [self._lock(state, *args)]
        if tag == _TAG_UNLOCK:
            return [self._unlock(state, *args)]
        if tag == _TAG_RELEASE:
            return [self._release(state, *args)]
        if tag in (_TAG_CLOCK_RATE, _TAG_CLOCK_RATE_MEASURED, _TAG_MIN_CLOCK_RATE, _TAG_MAX_CLOCK_RATE):
            rate, low, high = _CLOCKS.get(args[0], (0, 0, 0))
            return [args[0], low if tag == _TAG_MIN_CLOCK_RATE else high if tag == _TAG_MAX_CLOCK_RATE else rate]
        if tag == _TAG_TEMPERATURE:
            return [args[0], _TEMPERATURE]
        if tag == _TAG_MAX_TEMPERATURE:
            return [args[0], _MAX_TEMPERATURE]
        if tag == _TAG_THROTTLED:
            return [0]   # no under-voltage, capping or throttling, now or since boot
        raise AssertionError(f"tag 0x{tag:08x} has request words but no answer")

    def _gencmd(self, state: dict[str, Any], raw: bytes) -> bytes:
        """GET_GENCMD_RESULT: a u32 error code, then the reply text, NUL-terminated.

        The layout is vcgencmd's (raspberrypi/utils vcgencmd.c: error word, then the
        text). `get_mem` answers as `vcgencmd get_mem NAME` prints, `NAME=<n>M`, with
        0 for a name it does not know (pelwell in raspberrypi/firmware#1009:
        "unrecognised parameters return 0 rather than failing"). Other commands are
        not modelled: the reply is an error, with text saying so (the firmware's own
        error number for this is not documented; 1 is a choice).
        """
        words = raw.split(b"\0", 1)[0].decode("ascii", "replace").split()
        error, text = 0, ""
        mib = MiB
        if words[:1] == ["get_mem"] and len(words) == 2:
            free = sum(end - start for start, end in self._holes(state))
            sizes = {"arm": state["vc_base"], "gpu": state["gpu_mem"], "reloc_total": state["heap_size"],
                     "reloc": free, "malloc_total": _MALLOC_TOTAL_MIB * mib}
            text = f"{words[1]}={sizes.get(words[1], 0) // mib}M"
        elif words == ["measure_temp"]:
            text = f"temp={_TEMPERATURE / 1000:.1f}'C"
        elif words == ["get_throttled"]:
            text = "throttled=0x0"
        else:
            error = 1
            text = (f'error=1 error_msg="the pimem emulator does not model {" ".join(words)!r}; it answers '
                    'get_mem arm|gpu|reloc|reloc_total|malloc_total, measure_temp and get_throttled"')
        return struct.pack("<I", error) + text.encode() + b"\0"

    # --- the relocatable heap ----------------------------------------------

    def _allocate(self, state: dict[str, Any], size: int, alignment: int, flags: int) -> int:
        if size == 0 or size > state["heap_size"]:
            return 0
        # A power of two, and at least a page so every block can be mmapped.
        alignment = max(_PAGE, 1 << max(alignment - 1, 0).bit_length())
        footprint = _round_up(size, _PAGE)
        offset = self._first_fit(state, footprint, alignment)
        if offset is None:
            self._compact(state)
            offset = self._first_fit(state, footprint, alignment)
            if offset is None:
                return 0
        live = {block["handle"] for block in state["blocks"]}
        handle = state["next_handle"]
        while handle in live:  # only after 2**32 - 1 allocations wrap around
            handle = handle % 0xFFFFFFFF + 1
        state["next_handle"] = handle % 0xFFFFFFFF + 1  # never 0
        state["blocks"].append({"handle": handle, "offset": offset, "size": size,
                                "align": alignment, "flags": flags, "lock_count": 0})
        state["blocks"].sort(key=lambda block: block["offset"])
        # The wiki: "default is all ones". NO_INIT leaves the bytes, but the pages are reserved all the same.
        self._reserve(offset, footprint, 0x00 if flags & _FLAG_ZERO else None if flags & _FLAG_NO_INIT else 0xFF)
        return handle

    @staticmethod
    def _holes(state: dict[str, Any]) -> Iterator[tuple[int, int]]:
        """(start, end) offsets of the free gaps, lowest first."""
        cursor = 0
        for block in state["blocks"]:
            if block["offset"] > cursor:
                yield cursor, block["offset"]
            cursor = block["offset"] + _footprint(block)
        if state["heap_size"] > cursor:
            yield cursor, state["heap_size"]

    def _first_fit(self, state: dict[str, Any], footprint: int, alignment: int) -> int | None:
        base = state["vc_base"]
        for start, end in self._holes(state):
            # Align the bus address, not the offset: vc_base is only MiB-aligned.
            offset = _round_up(base + start, alignment) - base
            if offset + footprint <= end:
                return offset
        return None

    def _compact(self, state: dict[str, Any]) -> None:
        """Slide every unlocked block down as far as it goes; locked blocks
        stay put, since the ARM may be using their bus addresses."""
        base = state["vc_base"]
        cursor = 0
        for block in state["blocks"]:  # sorted by offset
            if not block["lock_count"]:
                target = _round_up(base + cursor, block["align"]) - base
                if target < block["offset"]:
                    self._move(block["offset"], target, _footprint(block))
                    block["offset"] = target
            cursor = block["offset"] + _footprint(block)

    @staticmethod
    def _find(state: dict[str, Any], handle: int) -> dict[str, Any] | None:
        return next((b for b in state["blocks"] if b["handle"] == handle), None)

    def _lock(self, state: dict[str, Any], handle: int) -> int:
        block = self._find(state, handle)
        if block is None:
            return 0
        block["lock_count"] += 1
        return _ALIAS[block["flags"] & 0xC] | (state["vc_base"] + block["offset"])

    def _unlock(self, state: dict[str, Any], handle: int) -> int:
        block = self._find(state, handle)
        if block is None or not block["lock_count"]:
            return _FAILED
        block["lock_count"] -= 1
        return 0

    def _release(self, state: dict[str, Any], handle: int) -> int:
        block = self._find(state, handle)
        if block is None:
            return _FAILED
        # Assumption: release frees a block even while it is locked. The wiki
        # does not say what the firmware does here; freeing keeps the model
        # simple, and a caller must not rely on either behaviour.
        state["blocks"].remove(block)
        return 0

    # --- the backing memory ------------------------------------------------

    def _reserve(self, offset: int, length: int, value: int | None) -> None:
        """Give a block's pages disk before anyone maps them, then fill them with `value` (None: as they are).

        memory.bin is sparse: a page of a mapping with no disk behind it on a full file system
        kills the process that touches it (SIGBUS). Reserved here, a full disk is an error instead.
        """
        if self._physical is not None:
            if value is not None:
                # Whole 1 MiB or page-sized copies from a bytes object (16-byte aligned data, as the
                # page-aligned mapping): memcpy's aligned path, never memset (DC ZVA faults on Device memory).
                with self.map_memory(offset, length) as mem:
                    chunk = bytes([value]) * min(length, _CHUNK)
                    for start in range(0, length, _CHUNK):
                        n = min(_CHUNK, length - start)
                        mem[start:start + n] = chunk[:n]
            return
        fd = self._open_memory()
        try:
            os.posix_fallocate(fd, offset, length)
            if value is not None:
                chunk = memoryview(bytes([value]) * min(length, _CHUNK))
                done = 0
                while done < length:
                    done += os.pwrite(fd, chunk[:length - done], offset + done)
        except OSError as e:
            raise self.storage_error(e) from None
        finally:
            os.close(fd)

    def _move(self, source: int, target: int, length: int) -> None:
        # Copying low to high is safe for overlapping ranges because the
        # target lies below the source.
        if self._physical is not None:
            with self.map_memory(target, source + length - target) as mem:
                shift = source - target
                for start in range(0, length, _CHUNK):
                    n = min(_CHUNK, length - start)
                    mem[start:start + n] = mem[shift + start:shift + start + n]
            return
        fd = self._open_memory()
        try:
            done = 0
            while done < length:
                data = os.pread(fd, min(_CHUNK, length - done), source + done)
                os.pwrite(fd, data, target + done)
                done += len(data)
        except OSError as e:
            raise self.storage_error(e) from None
        finally:
            os.close(fd)

    def storage_error(self, e: OSError) -> Exception:
        """A write of the emulated GPU memory or state failed: say which folder, and what to do."""
        err = folder_error(e, self.state_dir, "the emulated GPU memory and its state")
        if isinstance(err, DiskFull):
            err.args = (f"{err.args[0]}; the emulator keeps its GPU memory as a file in {self.state_dir}: "
                        "set PIMEM_EMULATOR_DIR to a folder with room (as much as the buffers you ask for)",)
        return err

    # --- state on disk -----------------------------------------------------

    def _open_memory(self) -> int:
        """memory.bin, read/write (never through a symlink)."""
        try:
            return open_file(self.memory_path, os.O_RDWR)
        except FileNotFoundError:
            raise self._corrupt("memory.bin (the emulated GPU memory) is missing") from None
        except OSError as e:
            raise self._corrupt(f"memory.bin cannot be opened: {e.strerror}") from None

    def map_memory(self, offset: int, size: int) -> mmap.mmap:
        """A shared read/write mapping of `size` bytes of the emulated GPU memory from `offset` (page aligned)."""
        if self._physical is not None:   # the GPU memory is physical memory: map it where it is
            fd = open_file(self._physical, os.O_RDWR | os.O_SYNC)
            try:
                return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                                 offset=self.vc_base + offset)
            finally:
                os.close(fd)
        fd = self._open_memory()
        try:
            return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=offset)
        finally:
            os.close(fd)

    def _corrupt(self, what: str) -> CorruptState:
        return CorruptState(f"the emulator's state in {self.state_dir} is damaged: {what}. Run "
                            f"'{reset_command()}' (or delete {self.state_dir})")

    def _locked(self) -> AbstractContextManager[None]:
        # One exclusive lock per request: processes sharing a state dir take
        # turns, as requests to the real firmware do.
        if os.path.isdir(self._state_lock.path):
            raise self._corrupt("'lock' is a directory")
        return self._state_lock.held()

    def _load(self) -> dict[str, Any]:
        # Called with the state lock held: trimming and compacting are safe here.
        try:
            journal = read_regular(self._state_path, limit=_JOURNAL_READ_LIMIT)
        except FileNotFoundError:
            raise self._corrupt(f"{STATE_FILE} is missing") from None
        except (OSError, ValueError) as e:
            raise self._corrupt(f"{STATE_FILE} cannot be read ({e})") from None
        end = journal.rfind(b"\n") + 1
        last = journal[journal.rfind(b"\n", 0, end - 1) + 1:end]
        try:
            state = json.loads(last)
        except (ValueError, RecursionError) as e:
            raise self._corrupt(f"{STATE_FILE} cannot be read ({e})") from None
        ints = ("gpu_mem", "heap_size", "vc_base", "next_handle")
        if (not isinstance(state, dict) or any(type(state.get(k)) is not int for k in ints)
                or not isinstance(state.get("blocks"), list)):
            raise self._corrupt(f"{STATE_FILE} does not hold the emulator's state (gpu_mem, heap_size, vc_base, next_handle, blocks)")
        keys = ("handle", "offset", "size", "align", "flags", "lock_count")
        for block in state["blocks"]:
            if not isinstance(block, dict) or any(type(block.get(k)) is not int for k in keys):
                raise self._corrupt(f"{STATE_FILE} holds a malformed block {block!r:.80}")
            if not (0 < block["handle"] < 2**32 and 0 < block["size"] and block["offset"] >= 0
                    and block["offset"] + _footprint(block) <= state["heap_size"] and block["lock_count"] >= 0
                    and block["align"] > 0 and not block["align"] & (block["align"] - 1)):
                raise self._corrupt(f"{STATE_FILE} holds a block no firmware could have made {block!r:.120}")
        try:
            size = os.lstat(self.memory_path).st_size
        except FileNotFoundError:
            raise self._corrupt("memory.bin (the emulated GPU memory) is missing") from None
        if size != state["gpu_mem"] or not 0 < state["heap_size"] <= size:
            raise self._corrupt(f"memory.bin is {size} bytes, the GPU memory {state['gpu_mem']} "
                                f"and its heap {state['heap_size']}")
        # Only a state that reads whole is ever rewritten; a damaged one is reported as it is.
        if end < len(journal):
            # A process killed inside its append: that request never answered, so the
            # state is the line before it. Cut the fragment so the next append starts clean.
            fd = open_file(self._state_path, os.O_WRONLY)
            try:
                os.ftruncate(fd, end)
            finally:
                os.close(fd)
        if end > _JOURNAL_LIMIT:
            for stale in self.state_dir.glob(f".{STATE_FILE}.*.tmp"):   # a compaction killed midway
                stale.unlink(missing_ok=True)
            write_file(self._state_path, last)
        return state

    def _save(self, state: dict[str, Any]) -> None:
        # A request commits with one append, and nothing slow follows before the caller records the answer.
        # stress_kill.py --seed 1: a new file renamed over the old leaked 5 of 100 allocate-loop kills, this 0.
        # A process killed mid-append leaves a fragment that _load cuts. No fsync: the state must survive
        # processes, not power cuts.
        line = json.dumps(state).encode() + b"\n"
        fd = open_file(self._state_path, os.O_WRONLY | os.O_APPEND)
        try:
            start = os.fstat(fd).st_size
            try:
                if os.write(fd, line) != len(line):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self._state_path))
            except OSError as e:
                os.ftruncate(fd, start)   # the request fails whole: no fragment left behind
                raise self.storage_error(e) from None
        finally:
            os.close(fd)

    def _boot(self, gpu_mem: int, heap_size: int, vc_base: int | None = None) -> dict[str, Any]:
        # A new file replaces the old rather than truncating it: a process
        # that still maps the old memory keeps a valid (stale) mapping
        # instead of dying of SIGBUS.
        temporary = self.memory_path.with_name(f".memory.bin.{os.urandom(8).hex()}.tmp")
        fd = open_file(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        try:
            os.ftruncate(fd, gpu_mem)  # sparse: takes no disk until written
        finally:
            os.close(fd)
        os.replace(temporary, self.memory_path)
        state = {"gpu_mem": gpu_mem, "heap_size": heap_size,
                 "vc_base": _RAM - gpu_mem if vc_base is None else vc_base,
                 "next_handle": 1, "blocks": []}
        write_file(self._state_path, json.dumps(state).encode() + b"\n")
        return state

    # --- inspection (for tests and `info`) ---------------------------------

    def allocations(self) -> list[dict]:
        """The live blocks, lowest offset first: handle, offset (from
        vc_base), size (as asked for), flags and lock_count."""
        with self._locked():
            state = self._load()
        keys = ("handle", "offset", "size", "flags", "lock_count")
        return [{key: block[key] for key in keys} for block in state["blocks"]]

    def free_bytes(self) -> int:
        """Free bytes in the heap (blocks own whole pages)."""
        with self._locked():
            state = self._load()
        return sum(end - start for start, end in self._holes(state))

    def largest_free_block(self) -> int:
        """The largest free gap, before any compaction."""
        with self._locked():
            state = self._load()
        return max((end - start for start, end in self._holes(state)), default=0)

    @classmethod
    def reset(cls, state_dir: str | os.PathLike, gpu_mem: int | None = None,
              firmware_reserve: int = FIRMWARE_RESERVE_MIB * MiB) -> "FirmwareEmulator":
        """Throw away the state in `state_dir` (damaged or not) and boot afresh.

        With `gpu_mem` (bytes), else PIMEM_EMULATOR_GPU_MEM, else the default 76 MiB.
        """
        state_dir = private_dir(state_dir, "the emulator's state directory",
                                "set PIMEM_EMULATOR_DIR to a directory of your own")
        with FileLock(state_dir / "lock").held():
            # The ledger in the state dir (EmulatorTransport.default_ledger_dir) goes too, as a
            # reboot clears /run: its entries name handles the fresh firmware hands out again.
            for name in (STATE_FILE, "state.json", "memory.bin", "ledger"):   # state.json: the format before the journal
                path = state_dir / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif os.path.lexists(path):
                    path.unlink()
        return cls(state_dir, gpu_mem=gpu_mem, firmware_reserve=firmware_reserve)

    def reboot(self) -> None:
        """Boot again with the same gpu_mem: every allocation is gone and the
        memory is fresh."""
        with self._locked():
            self._boot(self.gpu_mem, self.heap_size, self.vc_base)
