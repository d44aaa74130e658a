"""pimem.course.walkthrough against the firmware's documented behaviour, and its clean-up.

Expected words are written out by hand from the firmware wiki ("Mailbox
property interface"): size, request code 0x00000000, tag id, value buffer
size, request/response word (bit 31 set in a response, bits 30..0 the
answer's length), values, end tag 0; buffer status 0x80000000 on success
(include/soc/bcm2835/raspberrypi-firmware.h). Not from pimem's own builder.
"""
from __future__ import annotations

import json
import struct

import os

import pytest

from pimem.course import walkthrough as w
from pimem.firmware.emulator import FirmwareEmulator
from pimem.exc import GpuMemoryError, MailboxError, PimemError, UsageError
from pimem.firmware.memflags import MemFlag
from pimem.firmware.protocol import Tag, build_request

MiB = 1 << 20


def words(*ws: int) -> bytes:
    return struct.pack(f"<{len(ws)}I", *ws)


def unpack(buf: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(buf) // 4}I", buf))


def firmware(emu_dir) -> FirmwareEmulator:
    return FirmwareEmulator(emu_dir)


def nothing_held(backend, emu_dir) -> None:
    fw = firmware(emu_dir)
    assert fw.allocations() == []
    assert fw.free_bytes() == fw.heap_size
    assert backend.ledger.entries() == []


# --- annotate ---------------------------------------------------------------

ALLOCATE_REQUEST = words(36, 0x00000000, 0x0003000C, 12, 0x00000000, 4096, 4096, 0x14, 0)
ALLOCATE_RESPONSE = words(36, 0x80000000, 0x0003000C, 12, 0x80000004, 7, 4096, 0x14, 0)


def test_annotates_an_allocate_request_word_by_word():
    t = w.annotate(ALLOCATE_REQUEST)
    assert list(t["offset"]) == [0, 4, 8, 12, 16, 20, 24, 28, 32]
    assert list(t["hex"]) == ["0x00000024", "0x00000000", "0x0003000C", "0x0000000C", "0x00000000",
                              "0x00001000", "0x00001000", "0x00000014", "0x00000000"]
    m = list(t["meaning"])
    assert m[0].startswith("buffer size: 36 bytes")
    assert m[1].startswith("request code")
    assert m[2].startswith("tag 0x0003000C") and "allocate memory" in m[2]
    assert m[3] == "value buffer size: 12 bytes"
    assert "bit 31" in m[4] and "request" in m[4]
    assert m[5] == "size: 4096 bytes"
    assert m[6] == "alignment: 4096 bytes"
    assert m[7] == "flags: DIRECT|ZERO"
    assert m[8] == "end tag"


def test_annotates_the_response_and_marks_words_outside_the_answer():
    m = list(w.annotate(ALLOCATE_RESPONSE)["meaning"])
    assert "0x80000000 = success" in m[1]
    assert "set" in m[4] and "4 bytes" in m[4]       # bit 31 set, length 4
    assert m[5] == "handle: 7"
    # The answer is 4 bytes: words 6 and 7 are the request's, not the firmware's.
    assert "not part of the answer" in m[6] and "not part of the answer" in m[7]
    assert m[8] == "end tag"


def test_annotates_failures_as_the_documentation_describes_them():
    parse_error = words(36, 0x80000001, 0x0003000C, 12, 0, 4096, 4096, 0x14, 0)
    assert "error parsing" in w.annotate(parse_error)["meaning"][1]
    # An answered buffer with a tag whose bit 31 is clear: the firmware ignored the tag.
    unanswered = words(28, 0x80000000, 0x00012345, 4, 0, 0, 0)
    m = list(w.annotate(unanswered)["meaning"])
    assert "did not answer" in m[4] and "not know" in m[2]
    # Handle 0 and bus address 0 are the firmware's failure answers.
    assert "could not allocate" in w.annotate(words(36, 0x80000000, 0x3000C, 12, 0x80000004, 0, 0, 0, 0))["meaning"][5]
    assert "lock failed" in w.annotate(words(28, 0x80000000, 0x3000D, 4, 0x80000004, 0, 0))["meaning"][5]
    with pytest.raises(UsageError, match="whole 32-bit words"):
        w.annotate(b"\0" * 10)


def test_annotates_a_lock_response_by_decoding_the_bus_address():
    m = list(w.annotate(words(28, 0x80000000, 0x3000D, 4, 0x80000004, 0xFAAA8000, 0))["meaning"])
    assert "alias 0xC" in m[5] and "0x3AAA8000" in m[5]


# --- exchange / send --------------------------------------------------------

def test_exchange_returns_the_request_and_the_documented_response(backend, emu_dir):
    ex = w.exchange(Tag.VC_MEMORY, backend=backend)
    req, resp = ex
    r = unpack(req)
    assert r[0] == len(req) and r[1] == 0x00000000 and r[2] == 0x00010006 and r[-1] == 0
    a = unpack(resp)
    assert a[0] == len(resp) == len(req)
    assert a[1] == 0x80000000                       # buffer status: success
    assert a[4] & 0x80000000 and a[4] & 0x7FFFFFFF == 8   # bit 31 set, 8 bytes: base and size
    fw = firmware(emu_dir)
    assert (a[5], a[6]) == (fw.vc_base, fw.gpu_mem) == ex.values()
    assert ex.tag == 0x00010006
    assert list(ex.table().columns) == ["offset", "hex (request)", "meaning (request)",
                                        "hex (response)", "meaning (response)"]


def test_send_carries_a_hand_built_message(backend):
    ex = w.send(words(32, 0, 0x00000001, 4, 0, 0, 0, 0), backend)  # firmware revision, padded
    assert unpack(ex.response)[1] == 0x80000000 and unpack(ex.response)[5] == backend.mailbox.firmware_revision()


@pytest.mark.parametrize("tag", [Tag.ALLOCATE_MEMORY, Tag.LOCK_MEMORY, Tag.UNLOCK_MEMORY, Tag.RELEASE_MEMORY])
def test_send_refuses_the_memory_tags(backend, emu_dir, tag):
    values = (4096, 4096, 4) if tag == Tag.ALLOCATE_MEMORY else (1,)
    with pytest.raises(UsageError, match="lifecycle"):
        w.exchange(tag, *values, backend=backend)
    # Also hidden behind a harmless first tag.
    two = words(52, 0, 0x1, 4, 0, 0, 0x3000C, 12, 0, 4096, 4096, 4, 0)
    with pytest.raises(UsageError, match="0x0003000C"):
        w.send(two, backend)
    nothing_held(backend, emu_dir)


def test_send_refuses_a_size_word_that_is_not_the_length(backend):
    # The kernel copies as many bytes as word 0 says: it must match the buffer.
    with pytest.raises(UsageError, match="word 0 says the buffer is 64 bytes but it holds 28"):
        w.send(words(64, 0, 0x1, 4, 0, 0, 0), backend)
    with pytest.raises(UsageError, match="no end tag"):
        w.send(words(24, 0, 0x1, 4, 0, 0), backend)
    with pytest.raises(UsageError, match="request code"):
        w.send(words(28, 0x80000000, 0x1, 4, 0, 0, 0), backend)


# --- aliases ----------------------------------------------------------------

def test_alias_table_shows_both_sources_and_where_they_disagree():
    t = w.alias_table().set_index("alias")
    assert list(t.index) == ["0x0", "0x4", "0x8", "0xC"]
    assert list(t["bus base"]) == ["0x00000000", "0x40000000", "0x80000000", "0xC0000000"]
    assert list(t["bits 31..30"]) == ["00", "01", "10", "11"]
    # BCM2835 ARM Peripherals 1.2.1 and 1.2.3, as quoted in FACTS.md section 2.
    assert t.loc["0x4", "BCM2835 manual (1.2.1, 1.2.3)"] == "L2 cache coherent (non allocating)"
    assert t.loc["0x8", "BCM2835 manual (1.2.1, 1.2.3)"] == "L2 cached (only)"
    # The firmware wiki: COHERENT (the 0x8 alias) is "non-allocating in L2 but coherent".
    assert "non-allocating" in t.loc["0x8", "firmware wiki (flag comment)"]
    assert list(t["sources disagree"]) == ["", "yes", "yes", ""]


def test_decode_table_reads_the_original_lessons_addresses():
    t = w.decode_table(0xBAAA8000, 0xFAAA8000)
    assert list(t["bus >> 30"]) == [2, 3]      # the "0x3" the original printed: bits 31..30
    assert list(t["alias (top hex digit, low bits clear)"]) == ["0x8", "0xC"]
    assert list(t["flag that gets it"]) == ["COHERENT", "DIRECT"]
    assert list(t["physical"]) == ["0x3AAA8000", "0x3AAA8000"]


# --- flag survey ------------------------------------------------------------

def test_flag_survey_decodes_the_address_and_releases(backend, emu_dir):
    t = w.flag_survey(backend)
    assert list(t["flag"]) == ["DIRECT", "COHERENT", "L1_NONALLOCATING"]
    for _, row in t.iterrows():
        bus = int(row["bus address"], 16)
        assert row["alias (from the address)"] == f"0x{(bus >> 30) << 2:X}"
        assert int(row["physical"], 16) == bus & 0x3FFFFFFF
        assert row["handle"] != 0
    nothing_held(backend, emu_dir)


def test_flag_survey_releases_when_a_lock_fails_midway(backend, emu_dir, monkeypatch):
    real_lock, calls = backend.mailbox.lock, []

    def lock(handle):
        calls.append(handle)
        if len(calls) == 2:
            raise GpuMemoryError("injected: lock failed")
        return real_lock(handle)

    monkeypatch.setattr(backend.mailbox, "lock", lock)
    with pytest.raises(GpuMemoryError, match="injected"):
        w.flag_survey(backend)
    monkeypatch.undo()
    nothing_held(backend, emu_dir)


def test_flag_survey_releases_when_interrupted_while_holding(backend, emu_dir, monkeypatch):
    real = w.aliases.BusAddress.decode

    def decode(bus):
        raise KeyboardInterrupt

    monkeypatch.setattr(w.aliases.BusAddress, "decode", decode)
    with pytest.raises(KeyboardInterrupt):
        w.flag_survey(backend)
    monkeypatch.setattr(w.aliases.BusAddress, "decode", real)
    nothing_held(backend, emu_dir)


# --- lifecycle --------------------------------------------------------------

def test_lifecycle_messages_follow_the_documentation(backend, emu_dir):
    lc = w.lifecycle(5000, MemFlag.DIRECT | MemFlag.ZERO, backend=backend)
    assert [s.name for s in lc.steps] == ["allocate", "lock", "map", "unlock", "release"]
    tags = {"allocate": 0x3000C, "lock": 0x3000D, "unlock": 0x3000E, "release": 0x3000F}
    for s in lc.steps:
        if s.exchange is None:
            continue
        req, resp = unpack(s.exchange.request), unpack(s.exchange.response)
        assert req[1] == 0 and req[2] == tags[s.name] and req[4] == 0 and req[-1] == 0
        assert resp[1] == 0x80000000 and resp[4] == 0x80000004
    alloc = unpack(lc.step("allocate").exchange.request)
    assert alloc[5:8] == [8192, 4096, 0x14]         # size rounded to whole pages, alignment, flags
    handle = unpack(lc.step("allocate").exchange.response)[5]
    assert unpack(lc.step("lock").exchange.request)[5] == handle
    bus = unpack(lc.step("lock").exchange.response)[5]
    assert bus >> 30 == 3                             # DIRECT: the 0xC alias
    assert unpack(lc.step("release").exchange.response)[5] == 0   # status 0: released
    assert "first word 0x00000000" in lc.step("map").result     # ZERO
    assert f"0x{bus & 0x3FFFFFFF:08X}" in lc.step("map").result
    assert lc.table("allocate").shape[0] == 9
    with pytest.raises(UsageError, match="sends no mailbox message"):
        lc.table("map")
    nothing_held(backend, emu_dir)


def test_lifecycle_without_zero_reads_all_ones(backend):
    lc = w.lifecycle(4096, MemFlag.COHERENT, backend=backend)
    assert "first word 0xFFFFFFFF" in lc.step("map").result   # the wiki: default is all ones


@pytest.mark.parametrize("error", [MailboxError("injected"), KeyboardInterrupt()])
def test_lifecycle_releases_when_mapping_fails(backend, emu_dir, monkeypatch, error):
    def fail(phys, size):
        raise error

    monkeypatch.setattr(backend.transport, "map_physical", fail)
    with pytest.raises(type(error)):
        w.lifecycle(4096, backend=backend)
    nothing_held(backend, emu_dir)


def test_lifecycle_releases_when_the_unlock_message_fails(backend, emu_dir, monkeypatch):
    real, sent = backend.transport.property, []

    def property_(buf):
        sent.append(struct.unpack_from("<I", buf, 8)[0])
        if sent.count(0x3000E) == 1 and sent[-1] == 0x3000E:
            raise MailboxError("injected: unlock lost")
        return real(buf)

    monkeypatch.setattr(backend.transport, "property", property_)
    with pytest.raises(MailboxError, match="injected"):
        w.lifecycle(4096, backend=backend)
    monkeypatch.undo()
    nothing_held(backend, emu_dir)


def test_lifecycle_rejects_a_bad_size(backend, emu_dir):
    with pytest.raises(UsageError, match="positive number of bytes"):
        w.lifecycle(0, backend=backend)
    nothing_held(backend, emu_dir)


# --- leak demonstration -------------------------------------------------------

def test_leak_demo_shows_the_leak_then_the_heap_whole_again(backend, emu_dir):
    demo = w.leak_demo(backend, size=3 * MiB, count=2)
    s = demo.stages.set_index("stage")
    assert list(s.index) == ["before", "child running", "after SIGKILL", "after reclaim"]
    heap = s["free GPU heap (get_mem reloc)"]
    # gpu_mem 76 MiB, of which the firmware lends out 56 MiB; the child takes 2 x 3 MiB.
    assert heap["before"] == "56 MiB" and heap["child running"] == "50 MiB"
    assert heap["after SIGKILL"] == "50 MiB"        # the firmware did not notice the death
    assert heap["after reclaim"] == "56 MiB"
    assert s.loc["after SIGKILL", "child's allocations held"].startswith("2 still locked")
    assert s.loc["after reclaim", "child's allocations held"].startswith("0 ")
    assert len(demo.handles) == 2
    nothing_held(backend, emu_dir)


def test_leak_demo_leaves_a_live_buffer_alone(backend, emu_dir):
    from pimem import GpuBuffer
    with GpuBuffer(MiB, backend=backend) as mine:
        w.leak_demo(backend, size=MiB, count=1)
        assert [e.handle for e in backend.ledger.entries()] == [mine.handle]
        assert firmware(emu_dir).allocations()[0]["handle"] == mine.handle
    nothing_held(backend, emu_dir)


def test_leak_demo_reclaims_when_it_fails_after_the_kill(backend, emu_dir, monkeypatch):
    def fail(backend, held):
        raise PimemError("injected after the kill")

    monkeypatch.setattr(w.the_mailbox, "_still_allocated", fail)
    with pytest.raises(PimemError, match="injected"):
        w.leak_demo(backend, size=MiB, count=2)
    nothing_held(backend, emu_dir)


def test_leak_demo_reports_a_child_that_cannot_allocate(backend, emu_dir):
    with pytest.raises(PimemError, match="did not report holding.*exhausted"):
        w.leak_demo(backend, size=200 * MiB, count=1)
    nothing_held(backend, emu_dir)


def test_leak_demo_rejects_a_bad_count(backend):
    with pytest.raises(UsageError, match="count"):
        w.leak_demo(backend, count=0)


# --- this machine and the course ----------------------------------------------

def test_machine_table_prints_no_temporary_path(backend, emu_dir):
    t = w.machine_table(backend)
    text = t.to_string()
    assert str(emu_dir) not in text
    v = dict(zip(t["what"], t["value"]))
    assert v["revision code"] == "a02082"
    assert v["GPU memory (gpu_mem)"].endswith("(76 MiB)")      # the default for 1 GB boards
    assert "this process" not in v, "the process differs by machine: this_process() describes it"


def test_this_process_names_machine_bits_user_and_ioctl(monkeypatch):
    import platform
    import struct

    from pimem.firmware.transport import ioctl_property_number

    line = w.this_process()
    bits = struct.calcsize("P") * 8
    assert f"{platform.machine()}, {bits}-bit" in line and f"ioctl 0x{ioctl_property_number():08X}" in line, line
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert "root" in w.this_process() and "not root" not in w.this_process()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "not root" in w.this_process()


def test_course_outline_lists_notebooks_in_order_with_titles(tmp_path):
    for name, title in [("01-b.ipynb", "# One"), ("00-a.ipynb", "# Zero\ntext"), ("notes.ipynb", "# no")]:
        nb = {"cells": [{"cell_type": "markdown", "source": [title]}], "metadata": {}, "nbformat": 4,
              "nbformat_minor": 5}
        (tmp_path / name).write_text(json.dumps(nb))
    t = w.course_outline(tmp_path)
    assert list(t["notebook"]) == ["00-a.ipynb", "01-b.ipynb"]
    assert list(t["title"]) == ["Zero", "One"]


def test_build_request_matches_the_hand_written_layout():
    # The annotation tests use hand-written words; the notebooks use build_request.
    assert bytes(build_request(Tag.ALLOCATE_MEMORY, (4096, 4096, 0x14))) == ALLOCATE_REQUEST


def test_an_answer_of_length_zero_is_not_read_as_a_handle():
    # QEMU's raspi machines answer memory tags with success and length 0
    # (qemu hw/misc/bcm2835_property.c): word 5 is then the request's size.
    qemu = words(36, 0x80000000, 0x3000C, 12, 0x80000000, 4096, 4096, 0x14, 0)
    m = list(w.annotate(qemu)["meaning"])
    assert "answer is 0 bytes" in m[4]
    assert all("not part of the answer" in x for x in m[5:8])


# --- notebook 04: the clock a live run starts from ---------------------------------------------------

def test_clock_table_shows_an_idle_pi_at_600_mhz_and_its_throttled_bits_in_words():
    from pimem.bench.machine import RunConditions

    idle = RunConditions(governor="ondemand", cur_mhz=600, max_mhz=1200, arm_measured_mhz=600, arm_max_mhz=1200,
                         throttled=0x50005, temperature_c=62.0)
    t = w.clock_table(conditions=idle).set_index("what")["now"]
    assert t["cpufreq governor (sysfs)"] == "ondemand"
    assert t["ARM clock the firmware measures (CLOCK_RATE_MEASURED)"] == "600 MHz"
    assert "under-voltage now" in t["throttled bits (GET_THROTTLED)"]
    assert "throttling has occurred" in t["throttled bits (GET_THROTTLED)"]
    assert "--performance" in t["verdict"] and "below its 1200 MHz" in t["verdict"]


def test_clock_table_off_a_pi_says_what_it_could_not_read(backend):
    t = w.clock_table(backend)
    assert (t.what == "not read").any()
    assert "emulator" in " ".join(t[t.what == "not read"].now)
