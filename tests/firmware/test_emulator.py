"""The firmware emulator against the documented mailbox behaviour.

Every request is built by hand with struct, never with pimem's own encoder,
so these tests check the emulator against the firmware wiki ("Mailbox
property interface"), not against the code that talks to it.
"""
from __future__ import annotations

import os
import pathlib
import re
import signal
import struct
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pimem.firmware.emulator import DEFAULT_GPU_MEM, FirmwareEmulator
from pimem.exc import UsageError

SUCCESS = 0x80000000
ERROR = 0x80000001
REPO = pathlib.Path(__file__).resolve().parents[2]
KIB = 1024
MIB = 2**20


def request(*tag_words: int) -> bytearray:
    """Size word, request code 0, the given tag words, end tag."""
    words = (4 * (len(tag_words) + 3), 0, *tag_words, 0)
    return bytearray(struct.pack(f"<{len(words)}I", *words))


def words(buf: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(buf) // 4}I", buf)


def call(emu: FirmwareEmulator, tag: int, *args: int, answer_words: int = 1) -> tuple[int, ...]:
    """Send one tag with a value buffer just big enough; return its values."""
    count = max(len(args), answer_words)
    buf = request(tag, 4 * count, 0, *args, *[0] * (count - len(args)))
    emu.process(buf)
    w = words(buf)
    assert w[1] == SUCCESS
    assert w[4] == 0x80000000 | 4 * answer_words
    return w[5:5 + answer_words]


def allocate(emu: FirmwareEmulator, size: int, alignment: int = 4096, flags: int = 0) -> int:
    return call(emu, 0x3000C, size, alignment, flags)[0]


def lock(emu: FirmwareEmulator, handle: int) -> int:
    return call(emu, 0x3000D, handle)[0]


def unlock(emu: FirmwareEmulator, handle: int) -> int:
    return call(emu, 0x3000E, handle)[0]


def release(emu: FirmwareEmulator, handle: int) -> int:
    return call(emu, 0x3000F, handle)[0]


def offset_of(emu: FirmwareEmulator, bus: int) -> int:
    return (bus & 0x3FFFFFFF) - emu.vc_base


def read(emu: FirmwareEmulator, offset: int, n: int) -> bytes:
    with open(emu.memory_path, "rb") as f:
        f.seek(offset)
        return f.read(n)


def write(emu: FirmwareEmulator, offset: int, data: bytes) -> None:
    with open(emu.memory_path, "r+b") as f:
        f.seek(offset)
        f.write(data)


@pytest.fixture
def emu(tmp_path: pathlib.Path) -> FirmwareEmulator:
    return FirmwareEmulator(tmp_path / "fw", gpu_mem=1 * MIB, firmware_reserve=0)


# --- information tags ------------------------------------------------------

@pytest.mark.parametrize("tag, values", [
    (0x00000001, (0x68A60009,)),
    (0x00010001, (0,)),
    (0x00010002, (0xA02082,)),
    (0x00010005, (0, 0x3B400000)),
    (0x00010006, (0x3B400000, 76 * MIB)),
])
def test_information_tags_answer_exactly(tmp_path, tag, values):
    emu = FirmwareEmulator(tmp_path)
    n = len(values)
    buf = request(tag, 4 * n, 0, *[0] * n)
    emu.process(buf)
    assert bytes(buf) == struct.pack(f"<{n + 6}I", 4 * (n + 6), SUCCESS, tag, 4 * n,
                                     0x80000000 | 4 * n, *values, 0)


def test_defaults_describe_a_pi_3b_with_76_mib(tmp_path):
    emu = FirmwareEmulator(tmp_path)
    assert DEFAULT_GPU_MEM == 76 * MIB
    assert (emu.gpu_mem, emu.vc_base) == (76 * MIB, 0x3B400000)


def test_revisions_and_gpu_mem_are_configurable(tmp_path):
    emu = FirmwareEmulator(tmp_path, gpu_mem=128 * MIB, board_revision=0xA22082,
                           firmware_revision=0x12345678)
    assert call(emu, 0x00000001) == (0x12345678,)
    assert call(emu, 0x00010002) == (0xA22082,)
    assert call(emu, 0x00010005, answer_words=2) == (0, 896 * MIB)
    assert call(emu, 0x00010006, answer_words=2) == (896 * MIB, 128 * MIB)


@pytest.mark.parametrize("gpu_mem", [0, MIB + 1, 1024 * MIB, -MIB, 1.5 * MIB])
def test_bad_gpu_mem_is_refused(tmp_path, gpu_mem):
    with pytest.raises(UsageError):
        FirmwareEmulator(tmp_path, gpu_mem=gpu_mem)


def test_several_tags_in_one_request_are_answered_in_order(emu):
    buf = request(0x00010006, 8, 0, 0, 0,
                  0x0003000C, 12, 0, 4096, 4096, 0,
                  0x00010002, 4, 0, 0)
    emu.process(buf)
    w = words(buf)
    assert w[1] == SUCCESS
    assert w[4:7] == (0x80000008, emu.vc_base, MIB)
    assert w[9:11] == (0x80000004, 1)
    assert w[15:17] == (0x80000004, 0xA02082)


# --- value buffer sizes ----------------------------------------------------

def test_too_small_value_buffer_is_truncated_and_reports_the_full_length(emu):
    # ARM memory answers 8 bytes; give it 4. The end tag right after must
    # survive, and the length still says 8.
    buf = request(0x00010005, 4, 0, 0xDEADBEEF)
    emu.process(buf)
    assert words(buf) == (28, SUCCESS, 0x00010005, 4, 0x80000008, 0, 0)


def test_empty_value_buffer_gets_only_the_length(emu):
    buf = request(0x00000001, 0, 0)
    emu.process(buf)
    assert words(buf) == (24, SUCCESS, 1, 0, 0x80000004, 0)


def test_unaligned_value_buffer_is_filled_to_its_size_only(emu):
    # A 6-byte value buffer takes 8 bytes of the message (padding); the VC
    # memory answer is cut after 6 bytes and the 2 padding bytes stay.
    buf = request(0x00010006, 6, 0, 0x11111111, 0x22222222)
    emu.process(buf)
    value = bytes(buf[20:28])
    assert value == struct.pack("<I", emu.vc_base) + struct.pack("<I", MIB)[:2] + b"\x22\x22"
    assert words(buf)[4] == 0x80000008


def test_larger_value_buffer_keeps_its_tail(emu):
    buf = request(0x00000001, 12, 0, 0, 0xAAAAAAAA, 0xBBBBBBBB)
    emu.process(buf)
    assert words(buf)[4:8] == (0x80000004, 0x68A60009, 0xAAAAAAAA, 0xBBBBBBBB)


def test_request_shorter_than_its_arguments_reads_missing_words_as_zero(emu):
    # Lock with an empty value buffer: the handle is missing, so it is 0 and
    # the lock fails; the answer does not fit and only the length is set.
    buf = request(0x0003000D, 0, 0)
    emu.process(buf)
    assert words(buf) == (24, SUCCESS, 0x0003000D, 0, 0x80000004, 0)
    # Allocate with only the size: alignment and flags are 0, both valid.
    buf = request(0x0003000C, 4, 0, 8192)
    emu.process(buf)
    assert words(buf)[4:6] == (0x80000004, 1)
    assert emu.allocations()[0]["size"] == 8192


# --- unknown tags ----------------------------------------------------------

def test_unknown_tag_is_ignored_and_its_response_bit_stays_clear(emu):
    # The wiki: "Unknown tags are ignored (the response bit will not be set)".
    buf = request(0x00099999, 8, 0, 0x12345678, 0x9ABCDEF0,
                  0x00000001, 4, 0, 0)
    emu.process(buf)
    w = words(buf)
    assert w[1] == SUCCESS
    assert w[2:7] == (0x00099999, 8, 0, 0x12345678, 0x9ABCDEF0)
    assert w[7:11] == (1, 4, 0x80000004, 0x68A60009)


# --- malformed requests ----------------------------------------------------

def _with_size(buf: bytearray, size: int) -> bytearray:
    struct.pack_into("<I", buf, 0, size)
    return buf


MALFORMED = {
    "size word too big": _with_size(request(1, 4, 0, 0), 32),
    "size word too small": _with_size(request(1, 4, 0, 0), 24),
    "size word below 12": bytearray(struct.pack("<2I", 8, 0)),
    "size not a multiple of 4": bytearray(struct.pack("<3I", 14, 0, 0) + b"\0\0")[:14],
    "request code 1": bytearray(struct.pack("<7I", 28, 1, 1, 4, 0, 0, 0)),
    "request code already a response": bytearray(struct.pack("<7I", 28, SUCCESS, 1, 4, 0, 0, 0)),
    "value buffer past the end": bytearray(struct.pack("<7I", 28, 0, 1, 12, 0, 0, 0)),
    "unaligned value buffer past the end": bytearray(struct.pack("<7I", 28, 0, 1, 9, 0, 0, 0)),
    "huge value buffer": bytearray(struct.pack("<7I", 28, 0, 1, 0xFFFFFFF0, 0, 0, 0)),
    "tag header cut short": bytearray(struct.pack("<5I", 20, 0, 1, 4, 0)),
    "no end tag": bytearray(struct.pack("<6I", 24, 0, 1, 4, 0, 0)),
    "a tag id and nothing more": bytearray(struct.pack("<3I", 12, 0, 1)),
    "allocate without end tag": bytearray(struct.pack("<8I", 32, 0, 0x3000C, 12, 0, 4096, 4096, 0)),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_request_gets_error_status_and_nothing_else(emu, name):
    buf = MALFORMED[name]
    before = bytes(buf)
    emu.process(buf)
    assert bytes(buf[4:8]) == struct.pack("<I", ERROR)
    assert bytes(buf[:4]) + bytes(buf[8:]) == before[:4] + before[8:]
    assert emu.allocations() == []


def test_firmware_reads_only_what_the_size_word_says(emu):
    # The wiki's buffer layout: word 0 is "buffer size in bytes (including the
    # header values, the end tag and padding)"; bytes past it are not the message.
    # Other mailbox libraries send a fixed 1 KiB buffer with a smaller size word.
    buf = request(0x00010002, 4, 0, 0) + bytearray(b"\x55" * (1024 - 28))
    emu.process(buf)
    assert words(buf[:28]) == (28, SUCCESS, 0x00010002, 4, 0x80000004, 0xA02082, 0)
    assert buf[28:] == b"\x55" * (1024 - 28)


def test_a_size_word_past_the_buffer_is_an_error(emu):
    buf = bytearray(struct.pack("<7I", 64, 0, 0x00010002, 4, 0, 0, 0))
    emu.process(buf)
    assert words(buf)[1] == ERROR


def test_buffer_too_short_for_a_status_word_is_left_alone(emu):
    buf = bytearray(b"\x04\0\0\0")
    emu.process(buf)
    assert buf == b"\x04\0\0\0"


def test_read_only_buffer_is_a_type_error(emu):
    with pytest.raises(TypeError):
        emu.process(bytes(request(1, 4, 0, 0)))


# --- allocation lifecycle ----------------------------------------------------

def test_allocate_lock_unlock_release(emu):
    handle = allocate(emu, 10000, 4096, 4)
    assert handle != 0
    [block] = emu.allocations()
    assert block == {"handle": handle, "offset": 0, "size": 10000, "flags": 4, "lock_count": 0}
    bus = lock(emu, handle)
    assert bus == 0xC0000000 | emu.vc_base
    assert lock(emu, handle) == bus  # locks nest
    assert emu.allocations()[0]["lock_count"] == 2
    assert unlock(emu, handle) == 0
    assert unlock(emu, handle) == 0
    assert unlock(emu, handle) != 0  # not locked any more
    assert release(emu, handle) == 0
    assert emu.allocations() == []
    assert release(emu, handle) != 0
    assert lock(emu, handle) == 0
    assert unlock(emu, handle) != 0


def test_invalid_handles_fail(emu):
    assert lock(emu, 0) == 0
    assert lock(emu, 12345) == 0
    assert unlock(emu, 12345) != 0
    assert release(emu, 0) != 0


def test_release_frees_a_locked_block(emu):
    handle = allocate(emu, 4096)
    lock(emu, handle)
    assert release(emu, handle) == 0
    assert emu.allocations() == []


def test_handles_are_not_reused(emu):
    first = allocate(emu, 4096)
    release(emu, first)
    second = allocate(emu, 4096)
    assert second not in (0, first)


@pytest.mark.parametrize("flags, alias", [
    (0, 0x00000000),   # NORMAL
    (4, 0xC0000000),   # DIRECT
    (8, 0x80000000),   # COHERENT
    (12, 0x40000000),  # L1_NONALLOCATING
    (4 | 16 | 64 | 1, 0xC0000000),  # other flags do not change the alias
])
def test_lock_gives_the_alias_of_the_flags(emu, flags, alias):
    handle = allocate(emu, 4096, 4096, flags)
    bus = lock(emu, handle)
    assert bus & 0xC0000000 == alias
    assert bus & 0x3FFFFFFF == emu.vc_base


def test_alignment_applies_to_the_bus_address(tmp_path):
    emu = FirmwareEmulator(tmp_path, gpu_mem=3 * MIB, firmware_reserve=0)  # vc_base = 1021 MiB: odd
    allocate(emu, 4096)
    bus = lock(emu, allocate(emu, 4096, 2 * MIB))
    assert (bus & 0x3FFFFFFF) % (2 * MIB) == 0
    bus = lock(emu, allocate(emu, 100, 3000))  # rounded up to a page
    assert bus % 4096 == 0


def test_allocation_failures_give_handle_0(emu):
    assert allocate(emu, 0) == 0
    assert allocate(emu, MIB + 1) == 0
    assert allocate(emu, 0xFFFFFFFF) == 0
    assert allocate(emu, 4096, 0x80000001) == 0  # alignment beyond the heap
    whole = allocate(emu, MIB)
    assert whole != 0
    assert allocate(emu, 1) == 0
    assert emu.free_bytes() == 0
    assert emu.allocations() == [
        {"handle": whole, "offset": 0, "size": MIB, "flags": 0, "lock_count": 0}]


def test_free_bytes_count_whole_pages(emu):
    assert emu.free_bytes() == emu.largest_free_block() == MIB
    allocate(emu, 1)
    middle = allocate(emu, 4096)
    allocate(emu, 4096)
    release(emu, middle)
    assert emu.free_bytes() == MIB - 2 * 4096
    assert emu.largest_free_block() == MIB - 3 * 4096


# --- initial contents ------------------------------------------------------

def test_default_contents_are_all_ones(emu):
    bus = lock(emu, allocate(emu, 10000))
    assert read(emu, offset_of(emu, bus), 10000) == b"\xff" * 10000


def test_zero_flag_gives_zeros(emu):
    write(emu, 0, b"\x5a" * 8192)
    bus = lock(emu, allocate(emu, 8192, 4096, 16))
    assert read(emu, offset_of(emu, bus), 8192) == bytes(8192)


def test_no_init_leaves_the_old_contents(emu):
    handle = allocate(emu, 8192)
    offset = offset_of(emu, lock(emu, handle))
    write(emu, offset, bytes(range(256)) * 32)
    unlock(emu, handle)
    release(emu, handle)
    bus = lock(emu, allocate(emu, 8192, 4096, 32))
    assert offset_of(emu, bus) == offset  # first fit: the same place
    assert read(emu, offset, 8192) == bytes(range(256)) * 32


# --- compaction ------------------------------------------------------------

def test_compaction_moves_unlocked_blocks_and_keeps_their_contents(emu):
    slot = 128 * KIB
    handles = [allocate(emu, slot) for _ in range(8)]  # fills the 1 MiB heap
    assert all(handles) and emu.free_bytes() == 0
    patterns = {}
    for i, handle in enumerate(handles):
        patterns[handle] = bytes([i + 1]) * slot
        write(emu, i * slot, patterns[handle])
    pinned = handles[2]
    pinned_bus = lock(emu, pinned)
    for i in (0, 4, 6):
        release(emu, handles[i])
    assert emu.free_bytes() == 3 * slot
    assert emu.largest_free_block() == slot

    new = allocate(emu, 2 * slot)  # fits only after compaction

    assert new != 0
    layout = {b["handle"]: b["offset"] for b in emu.allocations()}
    assert layout == {handles[1]: 0, pinned: 2 * slot, handles[3]: 3 * slot,
                      handles[5]: 4 * slot, handles[7]: 5 * slot, new: 6 * slot}
    assert lock(emu, pinned) == pinned_bus  # the locked block did not move
    for handle in (handles[1], pinned, handles[3], handles[5], handles[7]):
        assert read(emu, layout[handle], slot) == patterns[handle]
    assert read(emu, 6 * slot, 2 * slot) == b"\xff" * 2 * slot


def test_compaction_cannot_move_locked_blocks(emu):
    slot = 256 * KIB
    handles = [allocate(emu, slot) for _ in range(4)]
    lock(emu, handles[1])
    lock(emu, handles[3])
    release(emu, handles[0])
    release(emu, handles[2])
    assert allocate(emu, 2 * slot) == 0  # 512 KiB free, but in two pieces
    assert allocate(emu, slot) != 0


# --- state that outlives a process ------------------------------------------

def test_two_instances_share_one_state_dir(tmp_path):
    first = FirmwareEmulator(tmp_path, gpu_mem=2 * MIB, firmware_reserve=0)
    handle = allocate(first, 4096)
    second = FirmwareEmulator(tmp_path, firmware_reserve=0)  # already booted: its gpu_mem stays
    assert (second.gpu_mem, second.vc_base) == (2 * MIB, first.vc_base)
    assert second.allocations() == first.allocations()
    assert lock(second, handle) == first.vc_base
    assert first.allocations()[0]["lock_count"] == 1


def _run_child(state_dir: pathlib.Path, body: str) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import os, signal, struct
        from pimem.firmware.emulator import FirmwareEmulator
        emu = FirmwareEmulator({str(state_dir)!r})
    """) + textwrap.dedent(body)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_killed_process_leaks_its_allocation(tmp_path):
    emu = FirmwareEmulator(tmp_path, gpu_mem=MIB, firmware_reserve=0)
    child = _run_child(tmp_path, """
        buf = bytearray(struct.pack("<9I", 36, 0, 0x3000C, 12, 0, 65536, 4096, 4, 0))
        emu.process(buf)
        print(struct.unpack_from("<I", buf, 20)[0], flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err.decode()
    handle = int(out)
    assert emu.allocations() == [
        {"handle": handle, "offset": 0, "size": 65536, "flags": 4, "lock_count": 0}]
    assert release(emu, handle) == 0


def test_a_process_killed_mid_write_leaves_the_state_it_had(tmp_path):
    # What a SIGKILL inside the state write leaves: a fragment of the next state.
    # That request never answered, so the firmware is as before it, and the next
    # request starts from a clean journal.
    emu = FirmwareEmulator(tmp_path, gpu_mem=MIB, firmware_reserve=0)
    handle = allocate(emu, 4096)
    journal = tmp_path / "state.jsonl"
    intact = journal.read_bytes()
    with open(journal, "ab") as f:
        f.write(b'{"heap_size": 1048576, "vc_base": 10, "blo')
    again = FirmwareEmulator(tmp_path)
    assert [b["handle"] for b in again.allocations()] == [handle]
    assert journal.read_bytes() == intact
    second = allocate(again, 4096)
    assert second not in (0, handle)
    assert [b["handle"] for b in emu.allocations()] == [handle, second]


def test_state_of_an_older_pimem_is_refused_not_booted_over(tmp_path):
    # An older pimem kept state.json; a process of it may still hand out that memory.
    (tmp_path / "state.json").write_text('{"heap_size": 1048576, "vc_base": 1, "next_handle": 2, "blocks": []}')
    from pimem.exc import CorruptState

    with pytest.raises(CorruptState, match="older pimem.*cleanup --reset-emulator"):
        FirmwareEmulator(tmp_path)
    assert not (tmp_path / "state.jsonl").exists()
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "1234-5.json").write_text("{}")
    emu = FirmwareEmulator.reset(tmp_path)
    assert emu.allocations() == [] and not (tmp_path / "ledger").exists() and not (tmp_path / "state.json").exists()


def test_a_damaged_journal_is_reported_as_it_is(tmp_path):
    from pimem.exc import CorruptState

    FirmwareEmulator(tmp_path)
    journal = tmp_path / "state.jsonl"
    journal.write_bytes(b"garbage\nmore")
    with pytest.raises(CorruptState):
        FirmwareEmulator(tmp_path)
    assert journal.read_bytes() == b"garbage\nmore"


def test_the_state_journal_stays_small(tmp_path):
    emu = FirmwareEmulator(tmp_path, gpu_mem=MIB, firmware_reserve=0)
    kept = allocate(emu, 8192)
    for _ in range(400):   # a few hundred bytes per state: well past the limit
        release(emu, allocate(emu, 4096))
    size = (tmp_path / "state.jsonl").stat().st_size
    assert size < 80 * KIB, size
    assert [b["handle"] for b in FirmwareEmulator(tmp_path).allocations()] == [kept]


def test_a_failed_state_write_fails_the_request_and_leaves_no_fragment(tmp_path, monkeypatch):
    import pimem.firmware.emulator as emulator

    emu = FirmwareEmulator(tmp_path, gpu_mem=MIB, firmware_reserve=0)
    journal = tmp_path / "state.jsonl"
    before = journal.read_bytes()
    real_write = os.write

    def short_write(fd, data):   # what a full disk does to a write
        return real_write(fd, data[:10])

    monkeypatch.setattr(emulator.os, "write", short_write)
    from pimem.exc import DiskFull

    with pytest.raises(DiskFull, match=f"no room left in {tmp_path}"):   # the folder named
        emu.process(request(0x3000C, 12, 0, 4096, 4096, 0))
    monkeypatch.undo()
    assert journal.read_bytes() == before
    assert emu.allocations() == []


def test_concurrent_processes_never_share_memory(tmp_path):
    emu = FirmwareEmulator(tmp_path, gpu_mem=MIB, firmware_reserve=0)
    children = [_run_child(tmp_path, """
        for _ in range(20):
            buf = bytearray(struct.pack("<9I", 36, 0, 0x3000C, 12, 0, 4096, 4096, 0, 0))
            emu.process(buf)
            assert struct.unpack_from("<I", buf, 20)[0] != 0
    """) for _ in range(4)]
    for child in children:
        _, err = child.communicate(timeout=30)
        assert child.returncode == 0, err.decode()
    blocks = emu.allocations()
    assert len({b["handle"] for b in blocks}) == 80
    assert len({b["offset"] for b in blocks}) == 80
    assert emu.free_bytes() == MIB - 80 * 4096


def test_reboot_forgets_everything(emu):
    handle = allocate(emu, 65536)
    lock(emu, handle)
    emu.reboot()
    assert emu.allocations() == []
    assert emu.free_bytes() == MIB
    assert emu.memory_path.stat().st_size == MIB
    assert read(emu, 0, 65536) == bytes(65536)
    assert lock(emu, handle) == 0


# --- arbitrary bytes ---------------------------------------------------------

def test_arbitrary_bytes_never_raise_and_errors_change_only_the_status(tmp_path):
    emu = FirmwareEmulator(tmp_path, gpu_mem=MIB, firmware_reserve=0)

    @settings(max_examples=400, deadline=None, database=None)
    @given(data=st.binary(max_size=96), fix_header=st.booleans())
    def check(data: bytes, fix_header: bool) -> None:
        buf = bytearray(data)
        if fix_header and len(buf) >= 8:
            # Mostly well-formed headers, so the tag walk gets exercised too.
            struct.pack_into("<2I", buf, 0, len(buf), 0)
        before = bytes(buf)
        emu.process(buf)
        if len(buf) < 8 or buf[4:8] != struct.pack("<I", SUCCESS):
            assert bytes(buf[:4]) + bytes(buf[8:]) == before[:4] + before[8:]

    check()


# --- what a Pi 3B's firmware keeps for itself, and the tags a course reads --------
# Expected values come from the sources named beside each, not from the emulator.

@pytest.mark.parametrize("gpu_mem_mib, reloc_mib", [
    # Published `vcdbg reloc` totals at a known gpu_mem: raspberrypi/firmware#377
    # (256 -> 236M), #365 (128 -> 108M), #192 and #573 (64 -> 44M), #192 (32 -> 12M).
    (256, 236), (128, 108), (64, 44), (32, 12),
])
def test_the_heap_is_what_published_firmware_dumps_show(tmp_path, gpu_mem_mib, reloc_mib):
    emu = FirmwareEmulator(tmp_path, gpu_mem=gpu_mem_mib * MIB)
    assert call(emu, 0x00010006, answer_words=2)[1] == gpu_mem_mib * MIB   # VC memory is all of gpu_mem
    assert emu.free_bytes() == reloc_mib * MIB
    assert allocate(emu, reloc_mib * MIB + 4096) == 0                     # the firmware's part is not lent
    assert allocate(emu, reloc_mib * MIB) != 0


def test_the_heap_sits_at_the_bottom_of_the_gpu_memory(tmp_path):
    # vcdbg dumps show the heap starting at the GPU's base (e.g. 0x10000000 with 256 MiB
    # on a 512 MB board) and ending 20 MiB below the top of RAM (0x1EC00000).
    emu = FirmwareEmulator(tmp_path, gpu_mem=256 * MIB)
    handle = allocate(emu, 4096)
    assert lock(emu, handle) & 0x3FFFFFFF == emu.vc_base


def test_a_gpu_mem_the_firmware_would_keep_whole_is_refused(tmp_path):
    with pytest.raises(UsageError, match="firmware_reserve"):
        FirmwareEmulator(tmp_path, gpu_mem=16 * MIB)


@pytest.mark.parametrize("tag, clock, rate", [
    # config_txt/overclocking.adoc, Pi 3 column: arm_freq 1200, core_freq 400, sdram_freq 450,
    # arm_freq_min 600, core_freq_min 250, sdram_freq_min 400. Clock ids: the wiki (3 ARM, 4 CORE, 8 SDRAM).
    (0x00030002, 3, 1_200_000_000), (0x00030004, 3, 1_200_000_000), (0x00030007, 3, 600_000_000),
    (0x00030002, 4, 400_000_000), (0x00030007, 4, 250_000_000),
    (0x00030002, 8, 450_000_000), (0x00030007, 8, 400_000_000),
    (0x00030047, 3, 1_200_000_000),
    # The wiki: "A rate of 0 is returned if the clock does not exist".
    (0x00030002, 0x42, 0),
])
def test_clock_rates_answer_as_the_wiki_lays_them_out(emu, tag, clock, rate):
    # Request: 4 bytes (clock id); response: 8 bytes (clock id, rate in Hz).
    assert call(emu, tag, clock, answer_words=2) == (clock, rate)


def test_a_kernel_sized_clock_request_is_answered(emu):
    # clk-raspberrypi.c sends a 12-byte value (id, rate, disable_turbo) for every clock tag.
    buf = request(0x00030002, 12, 0, 3, 0, 0)
    emu.process(buf)
    assert words(buf)[4:8] == (0x80000008, 3, 1_200_000_000, 0)


def test_temperatures_are_thousandths_of_a_degree(emu):
    # The wiki: "Return the temperature of the SoC in thousandths of a degree C. id should be zero."
    _, now = call(emu, 0x00030006, 0, answer_words=2)
    _, limit = call(emu, 0x0003000A, 0, answer_words=2)
    assert 20_000 <= now < limit == 85_000   # temp_limit defaults to 85 (overclocking.adoc)


def test_a_healthy_board_is_not_throttled(emu):
    # vcgencmd.1: "A value of zero indicates that none of the above conditions is true."
    # The kernel's hwmon driver asks with 0xffff (clear the sticky bits).
    assert call(emu, 0x00030046, 0xFFFF) == (0,)


def vcgencmd_buffer(command: str) -> bytearray:
    """Exactly what raspberrypi/utils vcgencmd.c sends: 263 words, a value buffer declared 1024
    bytes with an error word and then the text (so 1028 bytes used), garbage after the text,
    and the end tag as the last word."""
    p = [0] * 263
    p[0], p[2], p[3] = 263 * 4, 0x00030080, 1024
    text = command.encode() + b"\0"
    p[6:6 + -(-len(text) // 4)] = struct.unpack(f"<{-(-len(text) // 4)}I", text.ljust(-(-len(text) // 4) * 4, b"\0"))
    p[261] = 0xC0FFEE   # uninitialised stack in vcgencmd
    return bytearray(struct.pack("<263I", *p))


def gencmd_reply(buf: bytearray) -> tuple[int, str]:
    return struct.unpack_from("<I", buf, 20)[0], bytes(buf[24:24 + 1024]).split(b"\0")[0].decode()


@pytest.mark.parametrize("command, reply", [
    # The option names and the NAME=<n>M form: vcgencmd's documentation and raspberrypi/firmware#1009.
    ("get_mem arm", "arm=948M"), ("get_mem gpu", "gpu=76M"),
    ("get_mem reloc_total", "reloc_total=56M"),
    ("get_mem malloc_total", "malloc_total=13M"),   # "Malloc pool size=13M" (firmware#192)
    ("get_mem reloc_free", "reloc_free=0M"),        # firmware#1009: unknown names answer 0
])
def test_gencmd_answers_vcgencmd_as_it_sends(tmp_path, command, reply):
    from pimem.firmware.transport import EmulatorTransport

    t = EmulatorTransport(state_dir=tmp_path / "emu")
    buf = vcgencmd_buffer(command)
    t.property(buf)
    assert words(buf[:8]) == (263 * 4, SUCCESS)
    assert gencmd_reply(buf) == (0, reply)


def test_gencmd_free_heap_follows_allocations(emu):
    buf = vcgencmd_buffer("get_mem reloc")
    emu.process(buf)
    assert gencmd_reply(buf) == (0, "reloc=1M")
    allocate(emu, 512 * KIB)
    buf = vcgencmd_buffer("get_mem reloc")
    emu.process(buf)
    assert gencmd_reply(buf) == (0, "reloc=0M")   # whole MiB, rounded down


def test_gencmd_it_does_not_model_is_an_error_that_says_so(emu):
    buf = vcgencmd_buffer("codec_enabled H264")
    emu.process(buf)
    error, text = gencmd_reply(buf)
    assert error != 0 and "does not model" in text and "codec_enabled" in text


@pytest.mark.parametrize("tag, values", [
    (0x00030012, (1,)),                          # SET_ENABLE_QPU, as hello_fft's qpu_enable sends it
    (0x00030011, (8, 0xDEAD0000, 1, 10000)),    # EXECUTE_QPU: num_qpus, control, noflush, timeout
    (0x00030010, (0xBEEF0000, 1, 2, 3, 4, 5, 6)),
])
def test_code_running_tags_stay_unanswered_and_are_named(tmp_path, capsys, tag, values):
    from pimem.exc import MailboxError
    from pimem.firmware.mailbox import Mailbox
    from pimem.firmware.transport import EmulatorTransport

    t = EmulatorTransport(state_dir=tmp_path / "emu")
    n = len(values)
    buf = bytearray(struct.pack(f"<{n + 6}I", 4 * (n + 6), 0, tag, 4 * n, 4 * n, *values, 0))
    t.property(buf)
    assert words(buf)[4] & 0x80000000 == 0 and words(buf)[5:5 + n] == values   # the request, unread
    assert "cannot run code on the VideoCore" in capsys.readouterr().err
    with pytest.raises(MailboxError, match="cannot run code on the VideoCore"):
        Mailbox(t).call(tag, *values)


# --- gpu_mem is a setting of the emulated board ------------------------------

def test_a_booted_emulator_refuses_another_gpu_mem_and_names_the_reset(tmp_path):
    FirmwareEmulator(tmp_path, gpu_mem=76 * MIB)
    with pytest.raises(UsageError) as info:
        FirmwareEmulator(tmp_path, gpu_mem=128 * MIB)
    message = str(info.value)
    assert "gpu_mem=76 MiB" in message and "128 MiB was asked" in message
    assert "cleanup --reset-emulator --gpu-mem 128" in message
    assert FirmwareEmulator(tmp_path, gpu_mem=76 * MIB).gpu_mem == 76 * MIB   # the same value is fine


def test_gpu_mem_comes_from_the_environment_when_a_state_boots(tmp_path, monkeypatch):
    monkeypatch.setenv("PIMEM_EMULATOR_GPU_MEM", "128")
    emu = FirmwareEmulator(tmp_path / "a")
    assert (emu.gpu_mem, emu.heap_size, emu.vc_base) == (128 * MIB, 108 * MIB, 1024 * MIB - 128 * MIB)
    # An existing state keeps what it booted with: another value in the variable is refused.
    monkeypatch.setenv("PIMEM_EMULATOR_GPU_MEM", "76M")
    with pytest.raises(UsageError, match="booted with gpu_mem=128 MiB.*--gpu-mem 76"):
        FirmwareEmulator(tmp_path / "a")
    # reset() boots with the variable's value.
    assert FirmwareEmulator.reset(tmp_path / "a").gpu_mem == 76 * MIB


@pytest.mark.parametrize("text", ["lots", "-5", "12.5", "99999", "0x80"])
def test_a_bad_gpu_mem_variable_is_named(tmp_path, monkeypatch, text):
    monkeypatch.setenv("PIMEM_EMULATOR_GPU_MEM", text)
    with pytest.raises(UsageError, match=f"PIMEM_EMULATOR_GPU_MEM={re.escape(repr(text))}|gpu_mem="):
        FirmwareEmulator(tmp_path)


# --- physical memory standing for the GPU's (scripts/pi-machine) -------------

@pytest.fixture
def physical(tmp_path: pathlib.Path) -> pathlib.Path:
    """A sparse file standing for /dev/mem: offset = physical address, 1 GiB."""
    path = tmp_path / "mem"
    with open(path, "wb") as f:
        f.truncate(2**30)
    return path


def test_physical_memory_gets_the_emulators_writes_at_vc_base(tmp_path, physical):
    vc_base = 2**30 - 64 * MIB   # not the default place for gpu_mem=24 MiB (1 GiB - 24 MiB)
    emu = FirmwareEmulator(tmp_path / "fw", gpu_mem=24 * MIB, vc_base=vc_base, physical_memory=physical)
    assert emu.vc_base == vc_base
    assert call(emu, 0x00010006, answer_words=2) == (vc_base, 24 * MIB)   # VC memory
    assert call(emu, 0x00010005, answer_words=2) == (0, vc_base)         # ARM memory below it

    def phys(bus: int, n: int) -> bytes:
        with open(physical, "rb") as f:
            f.seek(bus & 0x3FFFFFFF)
            return f.read(n)

    ones = lock(emu, allocate(emu, 3 * 4096))
    zeros = lock(emu, allocate(emu, 8192, 4096, 16))
    assert (ones & 0x3FFFFFFF) == vc_base
    assert phys(ones, 3 * 4096) == b"\xff" * 3 * 4096    # the default all-ones, in physical memory
    assert phys(ones - 4096, 4096) == bytes(4096)         # nothing written below vc_base
    with open(physical, "r+b") as f:
        f.seek(zeros & 0x3FFFFFFF)
        f.write(b"\x5a" * 8192)
    zeros2 = lock(emu, allocate(emu, 8192, 4096, 16 | 4))
    assert phys(zeros2, 8192) == bytes(8192)
    assert read(emu, 0, 24 * MIB) == bytes(24 * MIB)     # memory.bin is not used
    # The emulator's transport maps the same physical memory.
    from pimem.firmware.transport import EmulatorTransport
    t = EmulatorTransport(tmp_path / "fw", 24 * MIB, vc_base=vc_base, physical_memory=physical)
    with t.map_physical(zeros & 0x3FFFFFFF, 8192) as m:
        assert m[:8192] == b"\x5a" * 8192


def test_physical_memory_gets_compactions_moves(tmp_path, physical):
    vc_base = 512 * MIB
    emu = FirmwareEmulator(tmp_path / "fw", gpu_mem=1 * MIB, firmware_reserve=0,
                           vc_base=vc_base, physical_memory=physical)
    slot = 128 * KIB
    handles = [allocate(emu, slot, 4096, 32) for _ in range(8)]   # NO_INIT: fills the heap
    with open(physical, "r+b") as f:
        for i in range(8):
            f.seek(vc_base + i * slot)
            f.write(bytes([i + 1]) * slot)
    release(emu, handles[0])
    release(emu, handles[2])
    new = allocate(emu, 2 * slot, 4096, 32)   # fits only after compaction
    assert new
    with open(physical, "rb") as f:
        f.seek(vc_base)
        moved = f.read(6 * slot)
    assert moved == b"".join(bytes([i + 1]) * slot for i in (1, 3, 4, 5, 6, 7))


@pytest.mark.parametrize("vc_base", [0, -MIB, MIB + 4096, 2**30 - MIB])
def test_bad_vc_base_is_refused(tmp_path, vc_base):
    with pytest.raises(UsageError, match="vc_base"):
        FirmwareEmulator(tmp_path, gpu_mem=4 * MIB, vc_base=vc_base)
