"""pimem.firmware.mailbox over the emulated Pi 3B and over hand-made fake firmware.

What a Pi 3B should answer comes from FACTS.md section 3 (1 GiB of RAM,
gpu_mem 76 MiB by default on 1 GB boards, revision code a02082) and the
original lesson's run (firmware 0x68A60009; COHERENT at 0xBAAA8000, DIRECT
at 0xFAAA8000). Fake transports answer with words written out by hand from
the firmware wiki's message format.
"""
from __future__ import annotations

import errno
import os
import re
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# What a Pi 3B's firmware keeps of gpu_mem: published `vcdbg reloc` dumps show a heap of
# gpu_mem - 20 MiB (raspberrypi/firmware #377, #365, #192, #573).
FIRMWARE_RESERVE_MIB = 20

from pimem.exc import GpuMemoryError, GpuMemoryExhausted, MailboxError
from pimem.firmware.mailbox import Mailbox, exhausted_message, suggest_gpu_mem
from pimem.firmware.memflags import Alias, MemFlag, bus_to_phys
from pimem.firmware.transport import EmulatorTransport, Transport

KiB = 1024
MiB = 1 << 20
GiB = 1 << 30
SUCCESS = 0x80000000
PARSE_ERROR = 0x80000001
RESPONSE_BIT = 0x80000000


def pack(*words: int) -> bytes:
    return struct.pack(f"<{len(words)}I", *words)


@pytest.fixture
def transport(tmp_path):
    t = EmulatorTransport(state_dir=tmp_path / "emu")
    yield t
    t.close()


@pytest.fixture
def mailbox(transport):
    return Mailbox(transport)


# --- board information from the emulated Pi 3B ----------------------------------

def test_board_revision_is_a_pi_3b(mailbox):
    assert mailbox.board_revision() == 0xA02082


def test_firmware_revision_is_the_lessons(mailbox):
    assert mailbox.firmware_revision() == 0x68A60009


def test_board_model_is_a_32_bit_word(mailbox):
    # The wiki gives no value for a Pi 3B; only check the call is answered.
    model = mailbox.board_model()
    assert isinstance(model, int) and 0 <= model <= 0xFFFFFFFF


def test_vc_memory_is_76_mib_by_default(mailbox):
    vc = mailbox.vc_memory()
    assert vc.size == 76 * MiB
    assert vc.end == 1 * GiB  # the GPU's memory is the top of the 1 GiB
    assert vc.end == vc.base + vc.size


def test_arm_and_vc_memory_make_1_gib(mailbox):
    arm, vc = mailbox.arm_memory(), mailbox.vc_memory()
    assert arm.base == 0
    assert arm.size + vc.size == 1 * GiB
    assert arm.end == vc.base  # the GPU's part starts where the ARM's ends
    assert arm.size == 1 * GiB - 76 * MiB


def test_gpu_mem_128_gives_the_lessons_split(tmp_path):
    # The lesson's board: ARM memory 896 MB, GPU memory 128 MB.
    t = EmulatorTransport(state_dir=tmp_path / "emu128", gpu_mem=128 * MiB)
    try:
        mb = Mailbox(t)
        assert mb.arm_memory().size == 896 * MiB
        assert mb.vc_memory().size == 128 * MiB
    finally:
        t.close()


def test_unknown_tag_is_an_error_not_a_value(mailbox):
    # 0x00010004 (board serial) is not emulated: the firmware leaves the
    # response bit clear, and the call must say so instead of returning 0s.
    with pytest.raises(MailboxError):
        mailbox.call(0x00010004, response_words=2)


# --- the allocation lifecycle ------------------------------------------------

def test_allocate_lock_unlock_release(mailbox, transport):
    size = 64 * KiB
    handle = mailbox.allocate(size, 4096, MemFlag.DIRECT)
    assert handle != 0
    bus = mailbox.lock(handle)
    assert Alias.from_bus(bus) is Alias.DIRECT  # 0xC..., as in the lesson's run
    phys = bus_to_phys(bus)
    vc = mailbox.vc_memory()
    assert vc.base <= phys and phys + size <= vc.end
    assert phys % 4096 == 0
    assert mailbox.unlock(handle) is None
    assert mailbox.release(handle) is None
    assert transport.firmware.allocations() == []


def test_coherent_gives_the_8_alias(mailbox):
    handle = mailbox.allocate(4 * KiB, 4096, MemFlag.COHERENT)
    try:
        assert Alias.from_bus(mailbox.lock(handle)) is Alias.COHERENT
        mailbox.unlock(handle)
    finally:
        mailbox.release(handle)


def test_lock_honours_alignment(mailbox):
    first = mailbox.allocate(4 * KiB, 4096, MemFlag.DIRECT | MemFlag.NO_INIT)
    second = mailbox.allocate(4 * KiB, 1 * MiB, MemFlag.DIRECT | MemFlag.NO_INIT)
    assert first != second
    a, b = bus_to_phys(mailbox.lock(first)), bus_to_phys(mailbox.lock(second))
    assert b % MiB == 0
    assert a + 4 * KiB <= b or b + 4 * KiB <= a  # no overlap


def test_lock_of_a_bad_handle_raises(mailbox):
    with pytest.raises(GpuMemoryError, match="1234"):
        mailbox.lock(1234)
    with pytest.raises(GpuMemoryError):
        mailbox.lock(0)


def test_unlock_and_release_of_a_bad_handle_raise(mailbox):
    with pytest.raises(GpuMemoryError):
        mailbox.unlock(1234)
    with pytest.raises(GpuMemoryError):
        mailbox.release(1234)


def test_unlock_of_an_unlocked_handle_raises(mailbox):
    handle = mailbox.allocate(4 * KiB, 4096, MemFlag.DIRECT)
    with pytest.raises(GpuMemoryError):
        mailbox.unlock(handle)
    mailbox.release(handle)


def test_released_handle_is_dead(mailbox):
    handle = mailbox.allocate(4 * KiB, 4096, MemFlag.DIRECT)
    mailbox.lock(handle)
    mailbox.unlock(handle)
    mailbox.release(handle)
    with pytest.raises(GpuMemoryError):
        mailbox.lock(handle)
    with pytest.raises(GpuMemoryError):
        mailbox.unlock(handle)
    with pytest.raises(GpuMemoryError):
        mailbox.release(handle)


# --- exhaustion --------------------------------------------------------------

def check_exhausted_message(message: str, asked_mib: int, gpu_mib: int) -> None:
    assert f"{asked_mib} MiB" in message
    assert f"{gpu_mib} MiB" in message
    m = re.search(r"gpu_mem=(\d+)", message)
    assert m, message
    suggested = int(m.group(1))
    assert suggested - FIRMWARE_RESERVE_MIB >= asked_mib  # its heap must at least hold what was asked
    assert suggested % 16 == 0 and suggested < 1024
    assert "cleanup" in message


def test_too_big_allocation_is_exhausted(mailbox, transport):
    with pytest.raises(GpuMemoryExhausted) as info:
        mailbox.allocate(100 * MiB, 4096, MemFlag.DIRECT)
    assert isinstance(info.value, GpuMemoryError)
    check_exhausted_message(str(info.value), 100, 76)
    assert transport.firmware.allocations() == []


def test_full_heap_is_exhausted(mailbox):
    big = mailbox.allocate(40 * MiB, 4096, MemFlag.DIRECT | MemFlag.NO_INIT)   # of a 56 MiB heap
    try:
        with pytest.raises(GpuMemoryExhausted) as info:
            mailbox.allocate(32 * MiB, 4096, MemFlag.DIRECT | MemFlag.NO_INIT)
        check_exhausted_message(str(info.value), 32, 76)
    finally:
        mailbox.release(big)
    # Once freed, the same request fits.
    mailbox.release(mailbox.allocate(32 * MiB, 4096, MemFlag.DIRECT | MemFlag.NO_INIT))


def test_exhausted_message_when_no_setting_fits():
    message = exhausted_message(2 * GiB, 76 * MiB, 56 * MiB)
    assert "2048 MiB" in message and "76 MiB" in message and "56 MiB heap" in message
    assert "cleanup" in message
    for value in re.findall(r"gpu_mem=(\d+)", message):
        assert int(value) * MiB >= 2 * GiB  # never suggest a setting too small


@pytest.mark.parametrize("asked_mib", [
    1, 8, 32, 76, 100, 200,
    400,
])
def test_suggest_gpu_mem_is_a_setting_that_holds_the_ask(asked_mib):
    suggested = suggest_gpu_mem(asked_mib * MiB, 76 * MiB)
    assert suggested is not None
    assert suggested - FIRMWARE_RESERVE_MIB >= asked_mib and suggested % 16 == 0 and suggested < 1024


def test_the_heap_comes_from_the_firmware_where_it_answers(mailbox):
    # The emulator answers `get_mem reloc_total` as a board does.
    assert mailbox.gencmd("get_mem reloc_total") == "reloc_total=56M"
    assert mailbox.relocatable_heap() == 56 * MiB
    with pytest.raises(MailboxError, match="does not model"):
        mailbox.gencmd("version")


def test_gencmd_sends_the_documented_request_and_reads_the_reply():
    # raspberrypi/utils vcgencmd.c: tag 0x00030080, an error word, then the NUL-terminated
    # command; the reply's error word, then its text. (pimem declares 1028 bytes, the
    # error word and vcgencmd's 1024 bytes of text, where vcgencmd itself declares 1024.)
    def text_words(text: bytes) -> tuple[int, ...]:
        return struct.unpack("<256I", text.ljust(1024, b"\0"))

    fake = FakeFirmware({0x00030080: (0, *text_words(b"reloc_total=56M\0"))})
    assert Mailbox(fake).gencmd("get_mem reloc_total") == "reloc_total=56M"
    assert fake.sent == [pack(1052, 0, 0x00030080, 1028, 0, 0, *text_words(b"get_mem reloc_total\0"), 0)]
    fake = FakeFirmware({0x00030080: (2, *text_words(b'error=2 error_msg="Invalid arguments"\0'))})
    with pytest.raises(MailboxError, match="Invalid arguments"):
        Mailbox(fake).gencmd("get_mem")


def test_gencmd_reads_only_what_the_firmware_answered():
    # An answer of 4 bytes (the error word alone): the command text still in the buffer
    # is the request's, not a reply.
    fake = FakeFirmware({0x00030080: (0,)})
    assert Mailbox(fake).gencmd("get_mem reloc_total") == ""
    assert Mailbox(fake).reloc_total() is None


def test_the_heap_is_estimated_where_the_firmware_does_not_answer():
    # A firmware without GET_GENCMD_RESULT (as QEMU's): gpu_mem less the usual reserve.
    fw = FakeFirmware({0x00010006: (0x38000000, 128 * MiB)})   # VC_MEMORY only
    assert Mailbox(fw).relocatable_heap() == (128 - FIRMWARE_RESERVE_MIB) * MiB


def test_suggest_gpu_mem_none_when_nothing_fits():
    assert suggest_gpu_mem(1 * GiB, 76 * MiB) is None


# --- fake firmware: a bad answer never becomes a handle ------------------------

class FakeFirmware(Transport):
    """Answers each tag with hand-chosen words, optionally damaging the answer."""

    name = "fake"

    def __init__(self, answers: dict[int, tuple[int, ...]], status: int = SUCCESS,
                 code: int | None = None, touch: bool = True) -> None:
        self.answers = answers
        self.status = status
        self.code = code  # None: RESPONSE_BIT | 4 * len(answer)
        self.touch = touch
        self.sent: list[bytes] = []

    def _ioctl(self, buf: bytearray) -> None:
        self.sent.append(bytes(buf))
        if not self.touch:
            return  # as if nothing answered
        tag = struct.unpack_from("<I", buf, 8)[0]
        if tag not in self.answers:   # a tag this firmware does not know: the wiki's "ignored"
            struct.pack_into("<I", buf, 4, self.status)
            return
        values = self.answers[tag]
        code = self.code if self.code is not None else RESPONSE_BIT | 4 * len(values)
        struct.pack_into("<I", buf, 4, self.status)
        struct.pack_into("<I", buf, 16, code)
        if code & RESPONSE_BIT:
            struct.pack_into(f"<{len(values)}I", buf, 20, *values)

    def map_physical(self, phys, size):
        raise AssertionError("not used")

    def default_ledger_dir(self) -> Path:
        raise AssertionError("not used")


ANSWERS = {
    0x0003000C: (0x00000005,),          # handle 5
    0x0003000D: (0xFAAA8000,),
    0x0003000E: (0,),
    0x0003000F: (0,),
    0x00010006: (0x3B400000, 0x04C00000),
}


def test_allocate_sends_the_documented_request():
    fake = FakeFirmware(ANSWERS)
    assert Mailbox(fake).allocate(0x00100000, 4096, MemFlag.DIRECT | MemFlag.ZERO) == 5
    assert fake.sent == [pack(36, 0, 0x0003000C, 12, 0, 0x00100000, 0x1000, 4 | 16, 0)]


def test_lock_unlock_release_send_the_documented_requests():
    fake = FakeFirmware(ANSWERS)
    mb = Mailbox(fake)
    assert mb.lock(5) == 0xFAAA8000
    mb.unlock(5)
    mb.release(5)
    assert fake.sent == [
        pack(28, 0, 0x0003000D, 4, 0, 5, 0),
        pack(28, 0, 0x0003000E, 4, 0, 5, 0),
        pack(28, 0, 0x0003000F, 4, 0, 5, 0),
    ]


def test_handle_zero_from_fake_is_exhausted_with_the_firmwares_size():
    fake = FakeFirmware({**ANSWERS, 0x0003000C: (0,)})
    with pytest.raises(GpuMemoryExhausted) as info:
        Mailbox(fake).allocate(100 * MiB, 4096, MemFlag.DIRECT)
    check_exhausted_message(str(info.value), 100, 76)  # 0x04C00000 = 76 MiB


@pytest.mark.parametrize("fake", [
    pytest.param(FakeFirmware(ANSWERS, code=0), id="response bit clear"),
    pytest.param(FakeFirmware(ANSWERS, code=4), id="response bit clear, length 4"),
    pytest.param(FakeFirmware(ANSWERS, code=RESPONSE_BIT | 0), id="length 0 (QEMU)"),
    pytest.param(FakeFirmware(ANSWERS, code=RESPONSE_BIT | 2), id="length 2"),
    pytest.param(FakeFirmware(ANSWERS, status=0), id="status 0"),
    pytest.param(FakeFirmware(ANSWERS, status=PARSE_ERROR), id="status 0x80000001"),
    pytest.param(FakeFirmware(ANSWERS, status=0x00000001), id="status 1"),
    pytest.param(FakeFirmware(ANSWERS, touch=False), id="untouched"),
])
def test_bad_answers_to_allocate_raise_never_a_handle(fake):
    with pytest.raises(MailboxError):
        Mailbox(fake).allocate(0x00100000, 4096, MemFlag.DIRECT)


@pytest.mark.parametrize("method, args", [
    ("lock", (5,)), ("unlock", (5,)), ("release", (5,)), ("vc_memory", ()),
    ("arm_memory", ()), ("board_revision", ()), ("firmware_revision", ()),
])
def test_qemu_like_answers_raise_for_every_call(method, args):
    answers = {**ANSWERS, 0x00010005: (0, 0x3B400000), 0x00010002: (0xA02082,),
               0x00000001: (0x68A60009,)}
    with pytest.raises(MailboxError):
        getattr(Mailbox(FakeFirmware(answers, code=RESPONSE_BIT | 0)), method)(*args)


class RaisingTransport(FakeFirmware):
    def __init__(self, err: int) -> None:
        super().__init__(ANSWERS)
        self.err = err

    def _ioctl(self, buf: bytearray) -> None:
        raise OSError(self.err, os.strerror(self.err))


@pytest.mark.parametrize("err", [errno.EINVAL, errno.EIO, errno.EFAULT])
def test_ioctl_failure_is_a_mailbox_error(err):
    with pytest.raises(MailboxError):
        Mailbox(RaisingTransport(err)).allocate(4096, 4096, MemFlag.DIRECT)


@settings(max_examples=200, deadline=None)
@given(status=st.sampled_from([0, 1, SUCCESS, PARSE_ERROR, 0x80000002]) | st.integers(0, 2**32 - 1),
       code=st.sampled_from([0, 4, RESPONSE_BIT, RESPONSE_BIT | 4, RESPONSE_BIT | 8])
       | st.integers(0, 2**32 - 1),
       handle=st.integers(1, 2**32 - 1))
def test_allocate_returns_only_a_real_answer(status, code, handle):
    fake = FakeFirmware({**ANSWERS, 0x0003000C: (handle,)}, status=status, code=code)
    good = status == SUCCESS and code & RESPONSE_BIT and (code & 0x7FFFFFFF) >= 4
    if good:
        assert Mailbox(fake).allocate(0x00100000, 4096, MemFlag.DIRECT) == handle
    else:
        with pytest.raises(MailboxError):
            Mailbox(fake).allocate(0x00100000, 4096, MemFlag.DIRECT)
