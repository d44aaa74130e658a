"""pimem.firmware.transport: the ioctl number, error translation, the two transports.

Expected values come from the kernel and firmware sources quoted in
/work/shared/FACTS.md section 1: IOCTL_MBOX_PROPERTY is _IOWR(100, 0, char *),
so 0xC0046400 for a 32-bit process and 0xC0086400 for a 64-bit one; the
kernel answers EINVAL and copies nothing back when the firmware reports an
error (drivers/firmware/raspberrypi.c). No real /dev/vcio is needed: the
ioctl and os.open are replaced where a test needs them.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
from pathlib import Path
import struct

import numpy as np
import pytest

from pimem.firmware import transport
from pimem.exc import MailboxError, MailboxPermissionError, MailboxUnavailable
from pimem.firmware.transport import (
    PAGE_SIZE,
    EmulatorTransport,
    VcioTransport,
    detach_mapping,
    ioctl_property_number,
)

SUCCESS = 0x80000000
RESPONSE_BIT = 0x80000000

IOCTL_32 = 0xC0046400  # _IOWR(100, 0, char *) with sizeof(char *) == 4
IOCTL_64 = 0xC0086400  # ... == 8

_real_calcsize = struct.calcsize


def pack(*words: int) -> bytes:
    return struct.pack(f"<{len(words)}I", *words)


def words_of(buf: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(buf) // 4}I", bytes(buf))


def pretend_pointer_size(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    """Make struct.calcsize('P') answer ``size``, as on a 32- or 64-bit Python."""
    def calcsize(fmt: str) -> int:
        return size if fmt in ("P", "@P") else _real_calcsize(fmt)
    monkeypatch.setattr(struct, "calcsize", calcsize)


@pytest.fixture
def vcio_path(tmp_path):
    """A file to stand in for /dev/vcio: open() works, the ioctl is faked."""
    path = tmp_path / "vcio"
    path.write_bytes(b"")
    return str(path)


@pytest.fixture
def emulator(tmp_path):
    t = EmulatorTransport(state_dir=tmp_path / "emu")
    yield t
    t.close()


# --- the ioctl number -------------------------------------------------------

def test_ioctl_number_for_32_bit_process():
    assert ioctl_property_number(4) == IOCTL_32


def test_ioctl_number_for_64_bit_process():
    assert ioctl_property_number(8) == IOCTL_64


def test_ioctl_number_default_matches_this_interpreter():
    expected = {4: IOCTL_32, 8: IOCTL_64}[_real_calcsize("P")]
    assert ioctl_property_number() == expected


@pytest.mark.parametrize("size", [0, 2, 16])
def test_ioctl_number_rejects_other_pointer_sizes(size):
    with pytest.raises(MailboxError):
        ioctl_property_number(size)


@pytest.mark.parametrize("pointer_size, expected", [(4, IOCTL_32), (8, IOCTL_64)])
def test_default_follows_pointer_size(monkeypatch, pointer_size, expected):
    pretend_pointer_size(monkeypatch, pointer_size)
    assert ioctl_property_number() == expected


@pytest.mark.parametrize("pointer_size, expected", [(4, IOCTL_32), (8, IOCTL_64)])
def test_vcio_transport_sends_the_number_for_its_pointer_size(monkeypatch, vcio_path,
                                                              pointer_size, expected):
    pretend_pointer_size(monkeypatch, pointer_size)
    seen = []

    def fake_ioctl(fd, request, arg, mutate_flag=True):
        seen.append(request)
        arg[4:8] = pack(SUCCESS)
        struct.pack_into("<II", arg, 16, RESPONSE_BIT | 4, 0xA02082)
        return 0

    t = VcioTransport(vcio_path)
    try:
        monkeypatch.setattr(fcntl, "ioctl", fake_ioctl)
        t.property(bytearray(pack(28, 0, 0x00010002, 4, 0, 0, 0)))
    finally:
        t.close()
    assert seen == [expected]


# --- VcioTransport: opening -------------------------------------------------

def test_missing_vcio_is_unavailable_and_says_what_to_do(tmp_path):
    missing = str(tmp_path / "no-such-vcio")
    with pytest.raises(MailboxUnavailable) as info:
        VcioTransport(missing)
    message = str(info.value)
    assert missing in message
    assert "emulator" in message.lower()  # the way out on a machine that is not a Pi
    assert isinstance(info.value, MailboxError)


def test_unopenable_vcio_is_a_permission_error_naming_the_video_group(monkeypatch, vcio_path):
    # Tests run as root, so chmod 000 would not stop open(): fake the refusal.
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if os.fspath(path) == vcio_path:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(MailboxPermissionError) as info:
        VcioTransport(vcio_path)
    message = str(info.value)
    assert "video" in message
    assert vcio_path in message
    assert isinstance(info.value, MailboxError)


@pytest.mark.parametrize("err", [errno.ENXIO, errno.ENODEV])
def test_other_open_failures_become_mailbox_errors(monkeypatch, vcio_path, err):
    real_open = os.open

    def failing_open(path, flags, *args, **kwargs):
        if os.fspath(path) == vcio_path:
            raise OSError(err, os.strerror(err), path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", failing_open)
    with pytest.raises(MailboxError):
        VcioTransport(vcio_path)


def test_close_twice_is_harmless(vcio_path):
    t = VcioTransport(vcio_path)
    t.close()
    t.close()


# --- VcioTransport: the ioctl ------------------------------------------------

def test_fake_ioctl_gets_the_buffer_and_mutate_flag(monkeypatch, vcio_path):
    request = pack(28, 0, 0x00010002, 4, 0, 0, 0)
    answer = pack(28, SUCCESS, 0x00010002, 4, RESPONSE_BIT | 4, 0x00A02082, 0)
    calls = []

    def fake_ioctl(fd, req, arg, mutate_flag=None):
        calls.append((fd, req, bytes(arg), type(arg), mutate_flag))
        arg[:] = answer  # the kernel writes the answer in place
        return 0

    t = VcioTransport(vcio_path)
    try:
        monkeypatch.setattr(fcntl, "ioctl", fake_ioctl)
        buf = bytearray(request)
        t.property(buf)
        fd = t._fd
    finally:
        t.close()
    assert len(calls) == 1
    got_fd, req, sent, kind, mutate = calls[0]
    assert got_fd == fd
    assert req == {4: IOCTL_32, 8: IOCTL_64}[_real_calcsize("P")]
    assert sent == request
    assert kind is bytearray
    assert mutate is True
    assert bytes(buf) == answer


def test_mailbox_reads_a_faked_kernel_answer(monkeypatch, vcio_path):
    from pimem.firmware.mailbox import Mailbox

    def fake_ioctl(fd, req, arg, mutate_flag=None):
        assert bytes(arg) == pack(32, 0, 0x00010006, 8, 0, 0, 0, 0)
        arg[:] = pack(32, SUCCESS, 0x00010006, 8, RESPONSE_BIT | 8, 0x3B400000, 0x04C00000, 0)
        return 0

    t = VcioTransport(vcio_path)
    try:
        monkeypatch.setattr(fcntl, "ioctl", fake_ioctl)
        vc = Mailbox(t).vc_memory()
    finally:
        t.close()
    assert (vc.base, vc.size) == (0x3B400000, 0x04C00000)


def test_einval_becomes_a_mailbox_error_that_explains(monkeypatch, vcio_path):
    def einval(fd, req, arg, mutate_flag=None):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    t = VcioTransport(vcio_path)
    request = pack(28, 0, 0x00010002, 4, 0, 0, 0)
    buf = bytearray(request)
    try:
        monkeypatch.setattr(fcntl, "ioctl", einval)
        with pytest.raises(MailboxError) as info:
            t.property(buf)
    finally:
        t.close()
    message = str(info.value)
    assert "EINVAL" in message
    # Both documented causes: a firmware error, or the wrong ioctl number.
    assert "firmware" in message
    assert "ioctl" in message and "dmesg" in message
    assert bytes(buf) == request


def test_other_ioctl_errors_become_mailbox_errors(monkeypatch, vcio_path):
    def eio(fd, req, arg, mutate_flag=None):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    t = VcioTransport(vcio_path)
    try:
        monkeypatch.setattr(fcntl, "ioctl", eio)
        with pytest.raises(MailboxError, match=str(errno.EIO)):
            t.property(bytearray(pack(28, 0, 0x00000001, 4, 0, 0, 0)))
    finally:
        t.close()


def test_real_ioctl_on_a_regular_file_is_a_mailbox_error(vcio_path):
    # An ordinary file answers ENOTTY: still a MailboxError, not an OSError.
    t = VcioTransport(vcio_path)
    try:
        with pytest.raises(MailboxError):
            t.property(bytearray(pack(28, 0, 0x00000001, 4, 0, 0, 0)))
    finally:
        t.close()


# --- VcioTransport: mapping /dev/mem ------------------------------------------

@pytest.fixture
def devmem(tmp_path):
    """A file standing in for /dev/mem: four pages, each filled with its index."""
    path = tmp_path / "mem"
    path.write_bytes(b"".join(bytes([i]) * PAGE_SIZE for i in range(4)))
    return path


@pytest.mark.parametrize("phys", [1, PAGE_SIZE - 4, PAGE_SIZE + 1, 0x3AAA8001])
def test_map_physical_refuses_unaligned_addresses(vcio_path, devmem, phys):
    t = VcioTransport(vcio_path, str(devmem))
    try:
        with pytest.raises(MailboxError, match="(?i)page"):
            t.map_physical(phys, PAGE_SIZE)
    finally:
        t.close()


@pytest.mark.parametrize("size", [0, -PAGE_SIZE])
def test_map_physical_refuses_empty_sizes(vcio_path, devmem, size):
    t = VcioTransport(vcio_path, str(devmem))
    try:
        with pytest.raises(MailboxError):
            t.map_physical(0, size)
    finally:
        t.close()


def test_map_physical_maps_only_the_gpu_memory(vcio_path, devmem):
    t = VcioTransport(vcio_path, str(devmem))
    try:
        with pytest.raises(MailboxError, match="only the GPU memory"):
            t.map_physical(2 * PAGE_SIZE, PAGE_SIZE)      # no range given yet
        t.allow_mapping(2 * PAGE_SIZE, 2 * PAGE_SIZE)
        for phys, size in ((0, PAGE_SIZE), (PAGE_SIZE, 2 * PAGE_SIZE), (3 * PAGE_SIZE, 2 * PAGE_SIZE)):
            with pytest.raises(MailboxError, match="outside the GPU memory"):
                t.map_physical(phys, size)
    finally:
        t.close()


def test_map_physical_maps_the_right_offset(vcio_path, devmem):
    t = VcioTransport(vcio_path, str(devmem))
    t.allow_mapping(0, 4 * PAGE_SIZE)
    try:
        m = t.map_physical(2 * PAGE_SIZE, PAGE_SIZE)
    finally:
        t.close()
    try:
        assert m[:] == bytes([2]) * PAGE_SIZE
        m[0:4] = b"\xAA\xBB\xCC\xDD"  # shared: reaches the "memory"
        m.flush()
        assert devmem.read_bytes()[2 * PAGE_SIZE:2 * PAGE_SIZE + 4] == b"\xAA\xBB\xCC\xDD"
    finally:
        m.close()


def test_map_physical_permission_error_says_root(monkeypatch, vcio_path, devmem):
    t = VcioTransport(vcio_path, str(devmem))
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if os.fspath(path) == str(devmem):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_open(path, flags, *args, **kwargs)

    try:
        monkeypatch.setattr(os, "open", refusing_open)
        t.allow_mapping(0, PAGE_SIZE)
        with pytest.raises(MailboxPermissionError, match="root"):
            t.map_physical(0, PAGE_SIZE)
    finally:
        t.close()


def test_map_physical_missing_devmem_is_a_mailbox_error(tmp_path, vcio_path):
    t = VcioTransport(vcio_path, str(tmp_path / "no-such-mem"))
    t.allow_mapping(0, PAGE_SIZE)
    try:
        with pytest.raises(MailboxError, match="no-such-mem"):
            t.map_physical(0, PAGE_SIZE)
    finally:
        t.close()


# --- EmulatorTransport: the kernel's behaviour around the firmware -----------

def test_emulator_answers_a_hand_built_request(emulator):
    buf = bytearray(pack(28, 0, 0x00010002, 4, 0, 0, 0))
    emulator.property(buf)
    assert words_of(buf) == (28, SUCCESS, 0x00010002, 4, RESPONSE_BIT | 4, 0xA02082, 0)


# rpi_firmware_property_list() (drivers/firmware/raspberrypi.c) builds the firmware's
# buffer itself: buf[1] = RPI_FIRMWARE_STATUS_REQUEST (0) and buf[size / 4 - 1] =
# RPI_FIRMWARE_PROPERTY_END (0), with only the tags copied from the caller; vcio.c then
# sets word 1 of the caller's buffer to success and copies the whole buffer back.

def test_emulator_answers_a_reused_buffer_like_a_fresh_one(emulator):
    buf = bytearray(pack(28, 0, 0x00010002, 4, 0, 0, 0))
    emulator.property(buf)
    assert words_of(buf)[1] == SUCCESS
    struct.pack_into("<I", buf, 16, 0)   # ask again; word 1 still says 0x80000000
    emulator.property(buf)
    assert words_of(buf) == (28, SUCCESS, 0x00010002, 4, RESPONSE_BIT | 4, 0xA02082, 0)


def test_emulator_ignores_the_callers_last_word_as_the_kernel_does(emulator):
    # The kernel writes its own end tag in place of the caller's last word, and
    # copies the caller's buffer back with that word as it was.
    buf = bytearray(pack(28, 0, 0x00010002, 4, 0, 0, 0xDEADBEEF))
    emulator.property(buf)
    assert words_of(buf) == (28, SUCCESS, 0x00010002, 4, RESPONSE_BIT | 4, 0xA02082, 0xDEADBEEF)


def test_emulator_reads_only_the_size_words_count_from_a_longer_buffer(emulator):
    # vcio.c copies `size` bytes in and out (the size word's, not the buffer's length):
    # a 1 KiB buffer with a 28-byte message is answered and the rest left alone.
    buf = bytearray(pack(28, 0, 0x00010002, 4, 0, 0, 0) + b"\xAA" * (1024 - 28))
    emulator.property(buf)
    assert words_of(buf[:28]) == (28, SUCCESS, 0x00010002, 4, RESPONSE_BIT | 4, 0xA02082, 0)
    assert buf[28:] == b"\xAA" * (1024 - 28)


def test_emulator_leaves_the_buffer_as_it_was_when_the_firmware_state_is_damaged(emulator):
    (emulator.firmware.state_dir / "state.jsonl").write_text("garbage")
    request = pack(28, 0x80000000, 0x00010002, 4, 0, 0, 0xDEADBEEF)
    buf = bytearray(request)
    with pytest.raises(Exception, match="damaged"):
        emulator.property(buf)
    assert bytes(buf) == request


def test_emulator_leaves_the_buffer_as_it_was_when_the_state_cannot_be_written(emulator, monkeypatch):
    # The answer is written, then the state write fails (a full disk): the ioctl fails
    # and, as vcio.c copies nothing back on failure, the caller sees its own request.
    import pimem.firmware.emulator as emulator_mod

    real_write = os.write
    monkeypatch.setattr(emulator_mod.os, "write", lambda fd, data: real_write(fd, data[:3]))
    request = pack(36, 0, 0x0003000C, 12, 0, 4096, 4096, 4, 0)
    buf = bytearray(request)
    from pimem.exc import DiskFull

    with pytest.raises(DiskFull, match="no room left in .*PIMEM_EMULATOR_DIR"):   # the folder named, not stdout
        emulator.property(buf)
    monkeypatch.undo()
    assert bytes(buf) == request
    assert emulator.firmware.allocations() == []


MALFORMED = {
    # The value buffer runs past the end of the message: the firmware
    # cannot parse it (status 0x80000001) and the kernel answers EINVAL.
    "value buffer past the end": pack(28, 0, 0x00010002, 0x100, 0, 0, 0),
    # The size word is not a whole number of 32-bit words: the kernel refuses.
    "size not a multiple of 4": pack(30, 0, 0x00010002, 4, 0, 0, 0, 0),
    # The size word claims more than the caller passed.
    "size word past the buffer": pack(64, 0, 0x00010002, 4, 0, 0, 0),
    # No room for size, code and end tag.
    "size word 8": pack(8, 0, 0x00010002, 4, 0, 0, 0),
}


@pytest.mark.parametrize("request_bytes", list(MALFORMED.values()), ids=list(MALFORMED))
def test_emulator_malformed_message_is_an_error_and_leaves_the_buffer(emulator, request_bytes):
    buf = bytearray(request_bytes)
    with pytest.raises(MailboxError):
        emulator.property(buf)
    assert bytes(buf) == request_bytes  # nothing copied back, not even the status


def test_emulator_unknown_tag_is_left_unanswered(emulator):
    # The wiki: unknown tags are ignored, the response bit is not set; the
    # buffer as a whole still succeeds and is copied back.
    buf = bytearray(pack(28, 0, 0x00010099, 4, 0, 0x12345678, 0))
    emulator.property(buf)
    assert words_of(buf) == (28, SUCCESS, 0x00010099, 4, 0, 0x12345678, 0)


def test_emulator_only_touches_the_size_it_was_given(emulator):
    # The kernel copies `size` bytes in and back; bytes after them are the caller's.
    trailer = b"\xEE" * 8
    buf = bytearray(pack(28, 0, 0x00010002, 4, 0, 0, 0) + trailer)
    emulator.property(buf)
    assert words_of(buf[:28]) == (28, SUCCESS, 0x00010002, 4, RESPONSE_BIT | 4, 0xA02082, 0)
    assert bytes(buf[28:]) == trailer


def test_emulator_map_physical_checks_alignment_and_range(emulator):
    fw = emulator.firmware
    with pytest.raises(MailboxError):
        emulator.map_physical(fw.vc_base + 1, PAGE_SIZE)
    with pytest.raises(MailboxError):
        emulator.map_physical(fw.vc_base - PAGE_SIZE, PAGE_SIZE)  # below GPU memory
    with pytest.raises(MailboxError):
        emulator.map_physical(fw.vc_base + fw.gpu_mem - PAGE_SIZE, 2 * PAGE_SIZE)  # runs past it
    m = emulator.map_physical(fw.vc_base, PAGE_SIZE)
    m.close()


# --- detach_mapping ------------------------------------------------------------

def test_detach_mapping_cuts_numpy_views_off_the_file(tmp_path):
    path = tmp_path / "shared.bin"
    size = 2 * PAGE_SIZE
    path.write_bytes(b"\x00" * size)
    with open(path, "r+b") as f:
        m = mmap.mmap(f.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    view = np.frombuffer(m, dtype=np.uint8)
    view[:] = 1
    m.flush()
    assert path.read_bytes() == b"\x01" * size  # the view reaches the file

    address = view.ctypes.data
    assert address == ctypes.addressof(ctypes.c_char.from_buffer(m))
    detach_mapping(address, size)

    view[:] = 7
    assert int(view.sum()) == 7 * size  # the view still works...
    assert path.read_bytes() == b"\x01" * size  # ...but no longer reaches the file
    with open(path, "rb") as f:
        assert os.pread(f.fileno(), size, 0) == b"\x01" * size
    del view
    m.close()


def test_detach_mapping_refuses_an_unaligned_address(tmp_path):
    buf = mmap.mmap(-1, 2 * PAGE_SIZE)
    try:
        base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        with pytest.raises(OSError):
            detach_mapping(base + 1, PAGE_SIZE)
    finally:
        buf.close()


@pytest.mark.parametrize("size_word", [0, 8, 4096])
def test_property_refuses_a_size_word_that_is_not_the_buffer_length(emulator, size_word):
    # The kernel copies word 0's count of bytes back into our buffer: a larger
    # count would write past it, a smaller one would truncate the answer.
    buf = bytearray(struct.pack("<7I", size_word, 0, 0x00000001, 4, 0, 0, 0))
    before = bytes(buf)
    with pytest.raises(MailboxError, match="size word"):
        emulator.property(buf)
    assert bytes(buf) == before


def test_a_tmp_folder_another_user_made_first_is_not_used(tmp_path, monkeypatch, capsys):
    # Without XDG_RUNTIME_DIR, a user's emulator lives in /tmp/pimem-emulator-UID: a name anyone can take first.
    from pimem.firmware import transport

    uid = 4242 if os.geteuid() != 4242 else 4243
    taken = Path("/tmp") / f"pimem-emulator-{uid}"
    if taken.exists():
        pytest.skip(f"{taken} exists")
    taken.mkdir()   # made by this process: another user, from uid 4242's point of view
    try:
        monkeypatch.setattr(transport.os, "geteuid", lambda: uid)
        monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path))
        transport._noticed_taken.clear()
        chosen = transport._runtime_dir("pimem-emulator")
        assert chosen == tmp_path / ".cache" / "pimem" / "pimem-emulator"
        assert str(taken) in capsys.readouterr().err
        os.rmdir(taken)
        assert transport._runtime_dir("pimem-emulator") == taken   # free again: the usual place
    finally:
        if taken.exists():
            os.rmdir(taken)


# --- the recording transport -------------------------------------------------------

def test_recording_transport_keeps_each_answered_exchange(emulator):
    from pimem.firmware.transport import RecordingTransport

    log = RecordingTransport(emulator)
    request = pack(32, 0, 0x00010006, 8, 0, 0, 0, 0)   # VC memory: base and size
    buf = bytearray(request)
    log.property(buf)
    assert log.exchanges == [(request, bytes(buf))]
    assert log.exchanges[0].tag == 0x00010006
    assert log.exchanges[0].values() == (emulator.firmware.vc_base, emulator.firmware.gpu_mem)
    # A message the kernel refuses raises as before, and is not an exchange.
    with pytest.raises(MailboxError):
        log.property(bytearray(pack(64, 0, 0x00000001, 4, 0, 0, 0)))
    assert len(log.exchanges) == 1
    assert log.name == "emulator" and log.describe() == emulator.describe()
