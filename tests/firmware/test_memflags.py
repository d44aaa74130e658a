"""pimem.firmware.memflags against the firmware wiki and the BCM2835 manual.

Flag values: the firmware wiki's allocation flags. Aliases: bits 31..30 of a
bus address (BCM2835 ARM Peripherals, sections 1.2.1 and 1.2.3). bus_to_phys clears
them (hello_fft gpu_fft_base.c). The original lesson's run: COHERENT gave
0xBAAA8000, DIRECT 0xFAAA8000, and the lesson misprinted the latter's alias
as 0x3 (FACTS.md sections 2 and 7).
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pimem.exc import AddressError, PimemError
from pimem.firmware.memflags import Alias, BusAddress, MemFlag, bus_to_phys, parse_address


# --- flags ---------------------------------------------------------------------

@pytest.mark.parametrize("name, value", [
    ("NORMAL", 0),
    ("DISCARDABLE", 1),
    ("DIRECT", 4),
    ("COHERENT", 8),
    ("L1_NONALLOCATING", 12),
    ("ZERO", 16),
    ("NO_INIT", 32),
    ("HINT_PERMALOCK", 64),
])
def test_flag_values_are_the_firmwares(name, value):
    assert int(MemFlag[name]) == value


def test_l1_nonallocating_is_direct_or_coherent():
    assert MemFlag.DIRECT | MemFlag.COHERENT == MemFlag.L1_NONALLOCATING == 12


def test_flags_combine_into_the_word_sent():
    assert int(MemFlag.DIRECT | MemFlag.ZERO | MemFlag.HINT_PERMALOCK) == 4 + 16 + 64


# --- aliases ---------------------------------------------------------------------

@pytest.mark.parametrize("bus, digit", [
    (0x00000000, 0x0), (0x3FFFFFFF, 0x0), (0x3AAA8000, 0x0),
    (0x40000000, 0x4), (0x7FFFFFFF, 0x4), (0x7AAA8000, 0x4),
    (0x80000000, 0x8), (0xBFFFFFFF, 0x8), (0xBAAA8000, 0x8),  # the lesson's COHERENT
    (0xC0000000, 0xC), (0xFFFFFFFF, 0xC), (0xFAAA8000, 0xC),  # the lesson's DIRECT
])
def test_alias_from_bus(bus, digit):
    alias = Alias.from_bus(bus)
    assert int(alias) == digit
    assert alias.base == digit << 28


def test_lesson_direct_address_is_alias_c_not_3():
    # The lesson printed "Alias: 0x3" for 0xFAAA8000: bits 31..30 are 3,
    # which is the 0xC alias. The display must say 0xC.
    alias = Alias.from_bus(0xFAAA8000)
    assert alias is Alias.DIRECT
    assert int(alias) == 0xC
    assert str(alias) == "0xC"
    assert "0x3" not in str(alias)


def test_alias_names_match_the_flags_that_give_them():
    # Wiki: DIRECT "0xC alias", COHERENT "0x8 alias"; NORMAL is the 0x0
    # alias; the remaining 0x4 goes to L1_NONALLOCATING (DIRECT|COHERENT).
    assert Alias.from_bus(0xFAAA8000) is Alias.DIRECT
    assert Alias.from_bus(0xBAAA8000) is Alias.COHERENT
    assert Alias.from_bus(0x7AAA8000) is Alias.L1_NONALLOCATING
    assert Alias.from_bus(0x3AAA8000) is Alias.NORMAL


@pytest.mark.parametrize("bus", [0x3AAA8000, 0x7AAA8000, 0xBAAA8000, 0xFAAA8000])
def test_bus_to_phys_clears_the_alias(bus):
    assert bus_to_phys(bus) == 0x3AAA8000


@pytest.mark.parametrize("bus, phys", [
    (0x00000000, 0x00000000), (0xC0000000, 0x00000000), (0xFFFFFFFF, 0x3FFFFFFF),
    (0xBB400000, 0x3B400000), (0x7B400000, 0x3B400000),
])
def test_bus_to_phys_more(bus, phys):
    assert bus_to_phys(bus) == phys


@given(st.integers(0, 0xFFFFFFFF))
def test_bus_to_phys_keeps_the_low_30_bits(bus):
    phys = bus_to_phys(bus)
    assert phys == bus % (1 << 30)
    assert (int(Alias.from_bus(bus)) << 28) | phys == bus


@pytest.mark.parametrize("flags, digit", [
    (MemFlag.NORMAL, 0x0),
    (MemFlag.DIRECT, 0xC),
    (MemFlag.COHERENT, 0x8),
    (MemFlag.L1_NONALLOCATING, 0x4),
    # The other flags do not change the alias.
    (MemFlag.DIRECT | MemFlag.ZERO, 0xC),
    (MemFlag.COHERENT | MemFlag.NO_INIT | MemFlag.HINT_PERMALOCK, 0x8),
    (MemFlag.DISCARDABLE, 0x0),
    (4 | 16 | 64 | 1, 0xC),  # a plain int works too
    (12 | 32, 0x4),
])
def test_alias_for_flags(flags, digit):
    assert int(Alias.for_flags(flags)) == digit


def test_sources_disagree_exactly_for_4_and_8():
    assert {int(a) for a in Alias if a.sources_disagree} == {0x4, 0x8}


def test_manual_descriptions():
    # BCM2835 ARM Peripherals, sections 1.2.1 (memory map) and 1.2.3 (footnote).
    assert Alias.from_bus(0x00000000).manual == "L1 and L2 cached"
    assert Alias.from_bus(0x40000000).manual == "L2 cache coherent (non allocating)"
    assert Alias.from_bus(0x80000000).manual == "L2 cached (only)"
    assert Alias.from_bus(0xC0000000).manual == "direct uncached"


def test_firmware_descriptions_follow_the_wiki_comments():
    assert "uncached" in Alias.DIRECT.firmware
    assert "non-allocating in l2 but coherent" in Alias.COHERENT.firmware.lower()
    assert "allocating in l2" in Alias.L1_NONALLOCATING.firmware.lower()
    assert "don't use from arm" in Alias.NORMAL.firmware.lower()


def test_bus_address_decode_of_lesson_address():
    d = BusAddress.decode(0xFAAA8000)
    assert (d.bus, int(d.alias), d.phys) == (0xFAAA8000, 0xC, 0x3AAA8000)
    shown = d.as_dict()
    assert shown["bus"] == "0xFAAA8000"
    assert shown["alias"] == "0xC"
    assert shown["phys"] == "0x3AAA8000"
    assert shown["sources_disagree"] is False
    assert BusAddress.decode(0xBAAA8000).as_dict()["sources_disagree"] is True


# --- out of range --------------------------------------------------------------

BAD_BUS = [-1, 2**32, 2**32 + 0x3AAA8000, 2**64, True, False, 1.0, "0xFAAA8000", None]


@pytest.mark.parametrize("bus", BAD_BUS)
def test_alias_from_bus_rejects_non_addresses(bus):
    with pytest.raises(AddressError):
        Alias.from_bus(bus)


@pytest.mark.parametrize("bus", BAD_BUS)
def test_bus_to_phys_rejects_non_addresses(bus):
    with pytest.raises(AddressError):
        bus_to_phys(bus)


@pytest.mark.parametrize("bus", [-1, 2**32])
def test_bus_address_decode_rejects_out_of_range(bus):
    with pytest.raises(AddressError):
        BusAddress.decode(bus)


def test_address_error_is_a_value_error_and_pimem_error():
    with pytest.raises(ValueError):
        bus_to_phys(2**32)
    with pytest.raises(PimemError):
        bus_to_phys(2**32)


# --- parse_address --------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("0xFAAA8000", 0xFAAA8000),
    ("0XFAAA8000", 0xFAAA8000),
    ("0xfaaa8000", 0xFAAA8000),
    ("faaa8000", 0xFAAA8000),
    ("FAAA8000", 0xFAAA8000),
    ("  0xFAAA8000\n", 0xFAAA8000),
    ("0xFAAA_8000", 0xFAAA8000),
    ("38000000", 0x38000000),  # bare digits are hex, not decimal
    ("10", 0x10),
    ("0", 0),
    ("0xFFFFFFFF", 0xFFFFFFFF),
    (0xBAAA8000, 0xBAAA8000),  # an int passes through
    (0, 0),
])
def test_parse_address(text, value):
    assert parse_address(text) == value


@pytest.mark.parametrize("text", [
    "", "   ", "0x", "zz", "0xFAAA800G", "0x FAAA8000", "FAAA 8000", "0o17", "0xFAAA8000h",
    "1.5",
])
def test_parse_address_rejects_non_hex(text):
    with pytest.raises(AddressError) as info:
        parse_address(text)
    assert "0x" in str(info.value)  # shows the expected form


@pytest.mark.parametrize("text", [
    "0x100000000", "100000000", "-1", "-0x1", "0xFFFFFFFFFF", -1, 2**32, True,
])
def test_parse_address_rejects_out_of_range(text):
    with pytest.raises(AddressError):
        parse_address(text)


@given(st.integers(0, 0xFFFFFFFF))
def test_parse_address_round_trips_hex(value):
    assert parse_address(f"0x{value:08X}") == value
    assert parse_address(f"{value:x}") == value
