"""Mailbox property messages as bytes: building requests and checking answers.

The lowest layer. A message is a list of little-endian 32-bit words:
total size in bytes, a request/response code, tags, then an end tag 0.
Each tag is: tag id, value buffer size in bytes, a request/response word,
then the value buffer. Source: the firmware wiki "Mailbox property
interface" (raspberrypi/firmware) and include/soc/bcm2835/raspberrypi-firmware.h.

Nothing here touches a device; pimem.firmware.transport sends what this builds.
"""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import NamedTuple

from ..exc import MailboxError

REQUEST = 0x00000000
#: Buffer status the firmware writes back when it handled the request.
RESPONSE_SUCCESS = 0x80000000
#: Buffer status for "error parsing request buffer".
RESPONSE_PARSE_ERROR = 0x80000001
#: Bit 31 of a tag's request/response word marks it answered; bits 30..0 are
#: the answer's length in bytes (OpenBSD bcm2835_vcprop.h; the Linux header's
#: comment calling it the "low bit" is wrong).
TAG_RESPONSE = 0x80000000
END_TAG = 0x00000000

WORD = 4


class Tag(enum.IntEnum):
    """The property tags pimem uses, with the firmware's ids."""

    FIRMWARE_REVISION = 0x00000001
    BOARD_MODEL = 0x00010001
    BOARD_REVISION = 0x00010002
    ARM_MEMORY = 0x00010005
    VC_MEMORY = 0x00010006
    ALLOCATE_MEMORY = 0x0003000C
    LOCK_MEMORY = 0x0003000D
    UNLOCK_MEMORY = 0x0003000E
    RELEASE_MEMORY = 0x0003000F
    CLOCK_RATE = 0x00030002
    MAX_CLOCK_RATE = 0x00030004
    TEMPERATURE = 0x00030006
    MIN_CLOCK_RATE = 0x00030007
    MAX_TEMPERATURE = 0x0003000A
    EXECUTE_CODE = 0x00030010
    EXECUTE_QPU = 0x00030011
    SET_ENABLE_QPU = 0x00030012
    THROTTLED = 0x00030046
    CLOCK_RATE_MEASURED = 0x00030047
    GENCMD_RESULT = 0x00030080


class Clock(enum.IntEnum):
    """Clock ids of the clock-rate tags (the firmware wiki's list)."""

    ARM = 3
    CORE = 4
    SDRAM = 8


@dataclass(frozen=True)
class TagSpec:
    """How many words a tag sends and how many it must get back."""

    request_words: int
    response_words: int
    what: str  # for messages: what the tag does, in words


TAG_SPECS: dict[Tag, TagSpec] = {
    Tag.FIRMWARE_REVISION: TagSpec(0, 1, "get firmware revision"),
    Tag.BOARD_MODEL: TagSpec(0, 1, "get board model"),
    Tag.BOARD_REVISION: TagSpec(0, 1, "get board revision"),
    Tag.ARM_MEMORY: TagSpec(0, 2, "get ARM memory (base, size)"),
    Tag.VC_MEMORY: TagSpec(0, 2, "get VC memory (base, size)"),
    Tag.ALLOCATE_MEMORY: TagSpec(3, 1, "allocate memory (size, alignment, flags -> handle)"),
    Tag.LOCK_MEMORY: TagSpec(1, 1, "lock memory (handle -> bus address)"),
    Tag.UNLOCK_MEMORY: TagSpec(1, 1, "unlock memory (handle -> status)"),
    Tag.RELEASE_MEMORY: TagSpec(1, 1, "release memory (handle -> status)"),
    Tag.CLOCK_RATE: TagSpec(1, 2, "get clock rate (clock id -> id, Hz)"),
    Tag.MAX_CLOCK_RATE: TagSpec(1, 2, "get max clock rate (clock id -> id, Hz)"),
    Tag.MIN_CLOCK_RATE: TagSpec(1, 2, "get min clock rate (clock id -> id, Hz)"),
    Tag.CLOCK_RATE_MEASURED: TagSpec(1, 2, "get measured clock rate (clock id -> id, Hz)"),
    Tag.TEMPERATURE: TagSpec(1, 2, "get temperature (id 0 -> id, thousandths of a degree C)"),
    Tag.MAX_TEMPERATURE: TagSpec(1, 2, "get max temperature (id 0 -> id, thousandths of a degree C)"),
    Tag.THROTTLED: TagSpec(1, 1, "get throttled state (clear mask -> bits)"),
    Tag.EXECUTE_CODE: TagSpec(7, 1, "execute VPU code (address, r0..r5 -> r0)"),
    Tag.EXECUTE_QPU: TagSpec(4, 1, "execute QPU programs (count, job list, no flush, timeout -> status)"),
    Tag.SET_ENABLE_QPU: TagSpec(1, 1, "enable the QPUs (on/off -> status)"),
    # 1 error word, then up to 1024 bytes of command in, reply text out (see Mailbox.gencmd).
    Tag.GENCMD_RESULT: TagSpec(257, 1, "run a gencmd command (text -> error, text)"),
}

# Words before the value buffer: size, code, tag id, value size, req/resp.
_HEADER_WORDS = 5


def tag_name(tag: int) -> str:
    """'LOCK_MEMORY (0x0003000d)' for a known tag, the hex id otherwise."""
    try:
        return f"{Tag(tag).name} (0x{tag:08x})"
    except ValueError:
        return f"tag 0x{tag:08x}"


def _check_u32(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
        raise MailboxError(f"{name} must be an unsigned 32-bit integer, got {value!r}")


def build_request(tag: int, values: tuple[int, ...] | list[int] = (),
                  response_words: int | None = None) -> bytearray:
    """The request buffer for one tag, ready for the ioctl.

    The value buffer is sized for the larger of the request and the
    expected response, as the firmware writes its answer in place.
    ``response_words`` says how long that answer is for a tag pimem does
    not know (by default, a known tag's own length, else ``len(values)``).
    """
    tag = int(tag)
    _check_u32("tag id", tag)
    spec = TAG_SPECS.get(Tag(tag)) if tag in Tag._value2member_map_ else None
    if spec is not None and len(values) != spec.request_words:
        raise MailboxError(
            f"{tag_name(tag)} takes {spec.request_words} value(s), got {len(values)}: {list(values)}"
        )
    for i, v in enumerate(values):
        _check_u32(f"value {i} of {tag_name(tag)}", v)
    if response_words is None:
        response_words = spec.response_words if spec else len(values)
    value_words = max(len(values), response_words)
    total_words = _HEADER_WORDS + value_words + 1  # + end tag
    words = [total_words * WORD, REQUEST, tag, value_words * WORD, REQUEST]
    words += list(values) + [0] * (value_words - len(values))
    words.append(END_TAG)
    return bytearray(struct.pack(f"<{len(words)}I", *words))


def parse_response(buf: bytes | bytearray, tag: int, response_words: int | None = None) -> tuple[int, ...]:
    """The values the firmware returned for ``tag``, after checking everything.

    Raises MailboxError unless the buffer is whole, its status is success,
    the tag is the one asked, its response bit is set, and its length
    covers every value the tag returns. So a failed or unanswered call can
    never be read as a handle or an address.
    """
    tag = int(tag)
    if response_words is None:
        response_words = TAG_SPECS[tag].response_words
    need = (_HEADER_WORDS + response_words) * WORD
    if len(buf) < need:
        raise MailboxError(
            f"{tag_name(tag)}: the response buffer is truncated ({len(buf)} bytes, need at least {need})"
        )
    size, status, got_tag, value_size, code = struct.unpack_from("<5I", buf, 0)
    if size != len(buf):
        raise MailboxError(
            f"{tag_name(tag)}: the response says it is {size} bytes long but {len(buf)} bytes came back"
        )
    if size % WORD or value_size % WORD:
        raise MailboxError(
            f"{tag_name(tag)}: the buffer ({size} bytes) and the value buffer ({value_size} bytes) must be whole "
            "32-bit words; this is not a property message"
        )
    if status != RESPONSE_SUCCESS:
        raise MailboxError(f"{tag_name(tag)}: {_failed_status(status)}")
    if got_tag != tag:
        raise MailboxError(f"{tag_name(tag)}: the response holds {tag_name(got_tag)} instead")
    if not code & TAG_RESPONSE:
        raise MailboxError(
            f"{tag_name(tag)}: the firmware did not answer this tag (response bit clear, word 0x{code:08x}); "
            "this firmware does not implement it (QEMU and the Raspberry Pi 5 do not implement the memory tags)"
        )
    length = code & ~TAG_RESPONSE
    if length < response_words * WORD:
        raise MailboxError(
            f"{tag_name(tag)}: the firmware answered {length} bytes, the tag returns {response_words * WORD}; "
            "an answer this short would hand back the request's own words"
        )
    if value_size < response_words * WORD:
        raise MailboxError(
            f"{tag_name(tag)}: the value buffer holds {value_size} bytes, too small for {response_words * WORD}"
        )
    # Header, value buffer and end tag must all lie inside the message.
    if _HEADER_WORDS * WORD + value_size + WORD > size:
        raise MailboxError(
            f"{tag_name(tag)}: the value buffer ({value_size} bytes) runs past the end of the "
            f"{size}-byte message"
        )
    end = _HEADER_WORDS * WORD + value_size
    end_tag = struct.unpack_from("<I", buf, end)[0]
    if end_tag != 0:
        raise MailboxError(
            f"{tag_name(tag)}: the word after the tag (offset {end}) is 0x{end_tag:08x}, not the end tag 0; "
            "a message with one tag ends there"
        )
    return struct.unpack_from(f"<{response_words}I", buf, _HEADER_WORDS * WORD)


def _failed_status(status: int) -> str:
    """What a buffer status other than success says."""
    if status == RESPONSE_PARSE_ERROR:
        return "the firmware could not parse the request (status 0x80000001)"
    if status == REQUEST:
        return "the firmware did not answer (status still 0x00000000)"
    return f"unknown buffer status 0x{status:08x}"


def answered_bytes(buf: bytes | bytearray) -> bytes:
    """The value bytes the firmware answered for a one-tag message (call after parse_response)."""
    value_size, code = struct.unpack_from("<2I", buf, 12)
    return bytes(buf[_HEADER_WORDS * WORD:_HEADER_WORDS * WORD + min(value_size, code & ~TAG_RESPONSE)])


def hexdump(buf: bytes | bytearray) -> list[str]:
    """One line per 32-bit word: offset, hex value (for teaching and errors)."""
    n = len(buf) // WORD
    return [f"{i * WORD:3d}: 0x{w:08x}" for i, w in enumerate(struct.unpack_from(f"<{n}I", buf))]


class Exchange(NamedTuple):
    """A request as sent and the same buffer as the firmware answered it."""

    request: bytes
    response: bytes

    @property
    def tag(self) -> int:
        """The (first) tag id in the message."""
        return struct.unpack_from("<I", self.request, 8)[0]

    def values(self) -> tuple[int, ...]:
        """The answer, validated by parse_response."""
        return parse_response(self.response, self.tag)
