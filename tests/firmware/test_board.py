"""Tests for pimem.firmware.board.

Expected values are copied from the Raspberry Pi documentation,
documentation/asciidoc/computers/raspberry-pi/revision-codes.adoc (raspberrypi/documentation,
commit 0456a78c93ba57be2d9e95733df961069925555b), not computed by the code under test.
"""
from __future__ import annotations

import struct
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from pimem.firmware.board import (
    BoardRevision,
    decode_revision,
    read_model_string,
    read_revision_from_system,
)
from pimem.exc import PimemError, RevisionError

# (code, model, processor, memory_mb, manufacturer, revision, mailbox_alloc)
# Model, revision, RAM and manufacturer: the "New-style revision codes in use" table.
# Processor: the PPPP digit of the code read against the "Processor" field list.
NEW_STYLE_ROWS = [
    (0xA02082, "3B", "BCM2837", 1024, "Sony UK", "1.2", True),
    (0xA22082, "3B", "BCM2837", 1024, "Embest", "1.2", True),
    (0xA32082, "3B", "BCM2837", 1024, "Sony Japan", "1.2", True),
    (0xA52082, "3B", "BCM2837", 1024, "Stadium", "1.2", True),
    (0xA22083, "3B", "BCM2837", 1024, "Embest", "1.3", True),
    (0xA020D3, "3B+", "BCM2837", 1024, "Sony UK", "1.3", True),
    (0xA020D4, "3B+", "BCM2837", 1024, "Sony UK", "1.4", True),
    (0x9020E0, "3A+", "BCM2837", 512, "Sony UK", "1.0", True),
    (0xA01041, "2B", "BCM2836", 1024, "Sony UK", "1.1", True),
    (0xA22042, "2B", "BCM2837", 1024, "Embest", "1.2", True),  # "2B (with BCM2837)"
    (0x900021, "A+", "BCM2835", 512, "Sony UK", "1.1", True),
    (0x900032, "B+", "BCM2835", 512, "Sony UK", "1.2", True),
    (0x900061, "CM1", "BCM2835", 512, "Sony UK", "1.1", True),
    (0x920093, "Zero", "BCM2835", 512, "Embest", "1.3", True),
    (0x9000C1, "Zero W", "BCM2835", 512, "Sony UK", "1.1", True),
    (0xA220A0, "CM3", "BCM2837", 1024, "Embest", "1.0", True),
    (0xA02100, "CM3+", "BCM2837", 1024, "Sony UK", "1.0", True),
    (0x902120, "Zero 2 W", "BCM2837", 512, "Sony UK", "1.0", True),
    (0xA03111, "4B", "BCM2711", 1024, "Sony UK", "1.1", True),
    (0xC03111, "4B", "BCM2711", 4096, "Sony UK", "1.1", True),
    (0xB03114, "4B", "BCM2711", 2048, "Sony UK", "1.4", True),
    (0xD03115, "4B", "BCM2711", 8192, "Sony UK", "1.5", True),
    (0xC03130, "400", "BCM2711", 4096, "Sony UK", "1.0", True),
    (0xA03140, "CM4", "BCM2711", 1024, "Sony UK", "1.0", True),
    (0xD03140, "CM4", "BCM2711", 8192, "Sony UK", "1.0", True),
    (0xB04170, "5", "BCM2712", 2048, "Sony UK", "1.0", False),
    (0xC04170, "5", "BCM2712", 4096, "Sony UK", "1.0", False),
    (0xD04170, "5", "BCM2712", 8192, "Sony UK", "1.0", False),
    (0xE04171, "5", "BCM2712", 16384, "Sony UK", "1.1", False),
    (0xE04180, "CM5", "BCM2712", 16384, "Sony UK", "1.0", False),
    # The type table says "500/500+" for type 0x19; the code table names each code.
    (0xD04190, "500", "BCM2712", 8192, "Sony UK", "1.0", False),
    (0xE04190, "500+", "BCM2712", 16384, "Sony UK", "1.0", False),
    (0xD14190, "500/500+", "BCM2712", 8192, "Egoman", "1.0", False),   # not in the code table: the type's name
    (0xB041A0, "CM5 Lite", "BCM2712", 2048, "Sony UK", "1.0", False),
]


@pytest.mark.parametrize(
    "code, model, processor, memory_mb, manufacturer, revision, mailbox_alloc", NEW_STYLE_ROWS
)
def test_new_style_table(code, model, processor, memory_mb, manufacturer, revision,
                         mailbox_alloc):
    board = decode_revision(code)
    assert board == BoardRevision(
        code=code,
        new_style=True,
        model=model,
        processor=processor,
        memory_mb=memory_mb,
        manufacturer=manufacturer,
        revision=revision,
        warranty_void=False,
        mailbox_alloc=mailbox_alloc,
    )


# Old-style table: (code, model, revision, RAM MB, manufacturer); all are Pi 1 / BCM2835.
OLD_STYLE_ROWS = [
    (0x0002, "B", "1.0", 256, "Egoman"),
    (0x0003, "B", "1.0", 256, "Egoman"),
    (0x0004, "B", "2.0", 256, "Sony UK"),
    (0x0005, "B", "2.0", 256, "Qisda"),
    (0x0006, "B", "2.0", 256, "Egoman"),
    (0x0007, "A", "2.0", 256, "Egoman"),
    (0x0008, "A", "2.0", 256, "Sony UK"),
    (0x0009, "A", "2.0", 256, "Qisda"),
    (0x000D, "B", "2.0", 512, "Egoman"),
    (0x000E, "B", "2.0", 512, "Sony UK"),
    (0x000F, "B", "2.0", 512, "Egoman"),
    (0x0010, "B+", "1.2", 512, "Sony UK"),
    (0x0011, "CM1", "1.0", 512, "Sony UK"),
    (0x0012, "A+", "1.1", 256, "Sony UK"),
    (0x0013, "B+", "1.2", 512, "Embest"),
    (0x0014, "CM1", "1.0", 512, "Embest"),
    (0x0015, "A+", "1.1", 256, "Embest"),  # documented as "256 MB / 512 MB": lower bound
]


@pytest.mark.parametrize("code, model, revision, memory_mb, manufacturer", OLD_STYLE_ROWS)
def test_old_style_table(code, model, revision, memory_mb, manufacturer):
    board = decode_revision(code)
    assert board == BoardRevision(
        code=code,
        new_style=False,
        model=model,
        processor="BCM2835",
        memory_mb=memory_mb,
        manufacturer=manufacturer,
        revision=revision,
        warranty_void=False,
        mailbox_alloc=True,
    )


def test_old_style_warranty_bit():
    board = decode_revision("1000002")
    assert board.code == 0x1000002
    assert board.new_style is False
    assert (board.model, board.revision, board.memory_mb, board.manufacturer) == (
        "B", "1.0", 256, "Egoman")
    assert board.warranty_void is True
    assert "warranty void" in board.describe()


def test_old_style_000e():
    board = decode_revision("000e")
    assert (board.model, board.revision, board.memory_mb, board.manufacturer) == (
        "B", "2.0", 512, "Sony UK")
    assert board.describe() == "Raspberry Pi Model B rev 2.0, BCM2835, 512 MB, Sony UK"


def test_new_style_warranty_bit_25():
    # a02082 with W (bit 25) set: 0xa02082 | 0x2000000
    board = decode_revision(0x2A02082)
    assert board.warranty_void is True
    assert board.model == "3B"
    assert decode_revision(0xA02082).warranty_void is False


def test_new_style_ignores_otp_and_overvoltage_bits():
    # N, O, Q (bits 31-29) do not change the board.
    board = decode_revision(0xE0A02082)
    assert (board.model, board.processor, board.memory_mb) == ("3B", "BCM2837", 1024)
    assert board.code == 0xE0A02082


@pytest.mark.parametrize("given", ["a02082", "0xa02082", "0XA02082", "A02082", "  a02082\n",
                                   0xA02082])
def test_string_and_int_forms(given):
    board = decode_revision(given)
    assert board.code == 0xA02082
    assert board.model == "3B"


def test_string_is_hex_int_is_number():
    # "1000002" as cpuinfo prints it is hex; the int 1000002 is decimal (0xf4242) and invalid.
    assert decode_revision("1000002").code == 0x1000002
    with pytest.raises(RevisionError):
        decode_revision(1000002)


def test_describe_examples():
    assert decode_revision("a02082").describe() == (
        "Raspberry Pi 3 Model B rev 1.2, BCM2837, 1 GB, Sony UK")
    assert decode_revision("a22082").describe() == (
        "Raspberry Pi 3 Model B rev 1.2, BCM2837, 1 GB, Embest")
    assert decode_revision("a020d3").describe() == (
        "Raspberry Pi 3 Model B+ rev 1.3, BCM2837, 1 GB, Sony UK")
    assert decode_revision("c03111").describe() == (
        "Raspberry Pi 4 Model B rev 1.1, BCM2711, 4 GB, Sony UK")
    assert decode_revision("902120").describe() == (
        "Raspberry Pi Zero 2 W rev 1.0, BCM2837, 512 MB, Sony UK")
    assert decode_revision("d04170").describe() == (
        "Raspberry Pi 5 rev 1.0, BCM2712, 8 GB, Sony UK")
    assert decode_revision("c03130").describe() == (
        "Raspberry Pi 400 rev 1.0, BCM2711, 4 GB, Sony UK")


def test_board_types_without_codes_in_use():
    # Types in the field list that have no row in the "in use" table.
    assert decode_revision(0x800150).model == "CM4S"     # type 0x15, BCM2835 field, 256 MB
    assert decode_revision(0x9021B0).model == "CM0"      # type 0x1b
    assert decode_revision(0x800050).model == "Alpha"    # type 0x05


def test_memory_other_and_unknown_manufacturer():
    # MMM = 7 is "Other": the size is not in the code.
    board = decode_revision(0xF04170)
    assert board.memory_mb == 0
    assert "not in the revision code" in board.describe()
    # CCCC = 9 is not in the table; the board still decodes.
    board = decode_revision(0xC93111)
    assert board.model == "4B"
    assert "unknown" in board.manufacturer


def test_frozen():
    board = decode_revision("a02082")
    with pytest.raises(FrozenInstanceError):
        board.model = "4B"  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad, why",
    [
        (0xA02072, "board type 0x07"),       # type 0x07 is not in the table
        (0xA020B2, "board type 0x0b"),       # nor is 0x0b
        (0xA021C0, "board type 0x1c"),       # beyond the last documented type
        (0xA05082, "processor field 5"),     # processor 5 is not in the table
        (0x000A, "old-style"),               # 000a-000c were never used
        (0x0000, "old-style"),
        (0x0016, "old-style"),
        (0x1000016, "old-style"),
        (0x3000002, "old-style"),            # only the 0x1000000 bit may join an old code
        ("zz1234", "not a hexadecimal"),
        ("", "not a hexadecimal"),
        ("0x", "not a hexadecimal"),
        ("a0_2082", "not a hexadecimal"),    # int() would accept underscores; cpuinfo never
        ("-a02082", "not a hexadecimal"),
        (-1, "negative"),
        (1 << 32, "32 bits"),
        ("1ffffffff", "32 bits"),
        (1.5, "not an int"),
        (True, "not an int"),
        (None, "not an int"),
    ],
)
def test_invalid_codes(bad, why):
    with pytest.raises(RevisionError) as info:
        decode_revision(bad)
    message = str(info.value)
    assert repr(bad) in message          # names the value
    assert why in message                # says why
    assert "/proc/cpuinfo" in message    # says what to do
    assert "pimem info" in message


def test_revision_error_is_value_error():
    with pytest.raises(ValueError):
        decode_revision("nope")
    with pytest.raises(PimemError):
        decode_revision("nope")


# --- /proc readers against a fake tree ---------------------------------------

def _write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


CPUINFO_3B = (
    "processor\t: 0\n"
    "model name\t: ARMv7 Processor rev 4 (v7l)\n"
    "\n"
    "Hardware\t: BCM2835\n"
    "Revision\t: a02082\n"
    "Serial\t\t: 00000000765fc593\n"
    "Model\t\t: Raspberry Pi 3 Model B Rev 1.2\n"
)


def test_revision_from_device_tree(tmp_path):
    _write(tmp_path, "proc/device-tree/system/linux,revision", struct.pack(">I", 0xC03111))
    # cpuinfo says something else: the device tree wins.
    _write(tmp_path, "proc/cpuinfo", CPUINFO_3B.encode())
    assert read_revision_from_system(tmp_path) == 0xC03111
    assert read_revision_from_system(str(tmp_path)) == 0xC03111


def test_revision_device_tree_is_big_endian(tmp_path):
    _write(tmp_path, "proc/device-tree/system/linux,revision", bytes([0x00, 0xA0, 0x20, 0x82]))
    assert read_revision_from_system(tmp_path) == 0xA02082


def test_revision_from_cpuinfo(tmp_path):
    _write(tmp_path, "proc/cpuinfo", CPUINFO_3B.encode())
    assert read_revision_from_system(tmp_path) == 0xA02082


def test_revision_from_cpuinfo_old_style_warranty(tmp_path):
    _write(tmp_path, "proc/cpuinfo", b"Hardware\t: BCM2708\nRevision\t: 1000002\n")
    assert read_revision_from_system(tmp_path) == 0x1000002


def test_revision_bad_device_tree_size_falls_back(tmp_path):
    _write(tmp_path, "proc/device-tree/system/linux,revision", b"\x00\xa0")
    _write(tmp_path, "proc/cpuinfo", CPUINFO_3B.encode())
    assert read_revision_from_system(tmp_path) == 0xA02082


def test_revision_not_a_pi(tmp_path):
    assert read_revision_from_system(tmp_path) is None
    # A PC's cpuinfo has no Revision line.
    _write(tmp_path, "proc/cpuinfo", b"processor\t: 0\nvendor_id\t: GenuineIntel\n")
    assert read_revision_from_system(tmp_path) is None


def test_revision_cpuinfo_garbage(tmp_path):
    _write(tmp_path, "proc/cpuinfo", b"Revision\t: banana\n")
    with pytest.raises(RevisionError, match="banana"):
        read_revision_from_system(tmp_path)


def test_model_string(tmp_path):
    assert read_model_string(tmp_path) is None
    _write(tmp_path, "proc/device-tree/model", b"Raspberry Pi 3 Model B Rev 1.2\x00")
    assert read_model_string(tmp_path) == "Raspberry Pi 3 Model B Rev 1.2"


def test_readers_roundtrip_with_decode(tmp_path):
    _write(tmp_path, "proc/device-tree/system/linux,revision", struct.pack(">I", 0xA020D3))
    code = read_revision_from_system(tmp_path)
    assert code is not None
    assert decode_revision(code).model == "3B+"
