"""pimem.firmware.protocol against the firmware wiki's message format.

Every expected buffer here is written out by hand, word by word, from the
firmware wiki page "Mailbox property interface" (raspberrypi/firmware):

    u32 buffer size in bytes (header, tags, end tag and padding)
    u32 request/response code: 0x00000000 request,
        0x80000000 success, 0x80000001 error parsing the request
    tag: u32 tag id, u32 value buffer size in bytes,
         u32 request/response word (request: 0; response: bit 31 set,
         bits 30..0 the response length in bytes), value buffer
    u32 end tag 0

Tag ids and value counts are those listed in /work/shared/FACTS.md
section 1. Nothing here is computed with pimem's own encoder.
"""
from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pimem.exc import MailboxError
from pimem.firmware.protocol import Tag, build_request, parse_response

SUCCESS = 0x80000000
PARSE_ERROR = 0x80000001
RESPONSE_BIT = 0x80000000


def pack(*words: int) -> bytes:
    """Little-endian 32-bit words, as the firmware reads them."""
    return struct.pack(f"<{len(words)}I", *words)


# tag id -> (words sent, words answered), from the wiki's tag list.
DOC_TAGS = {
    0x00000001: (0, 1),  # get firmware revision -> revision
    0x00010001: (0, 1),  # get board model -> model
    0x00010002: (0, 1),  # get board revision -> revision
    0x00010005: (0, 2),  # get ARM memory -> base, size
    0x00010006: (0, 2),  # get VC memory -> base, size
    0x0003000C: (3, 1),  # allocate memory: size, alignment, flags -> handle
    0x0003000D: (1, 1),  # lock memory: handle -> bus address
    0x0003000E: (1, 1),  # unlock memory: handle -> status
    0x0003000F: (1, 1),  # release memory: handle -> status
    # The wiki's layouts (request words, response words):
    0x00030002: (1, 2),  # get clock rate: clock id -> id, rate
    0x00030004: (1, 2),  # get max clock rate
    0x00030007: (1, 2),  # get min clock rate
    0x00030047: (1, 2),  # get clock rate measured
    0x00030006: (1, 2),  # get temperature: id -> id, thousandths of a degree
    0x0003000A: (1, 2),  # get max temperature
    0x00030046: (1, 1),  # get throttled: reset mask -> bits
    0x00030010: (7, 1),  # execute code: address, r0..r5 -> r0
    0x00030011: (4, 1),  # execute QPU: count, control, no flush, timeout -> status (hello_fft's 16 bytes)
    0x00030012: (1, 1),  # enable QPU: on/off -> status
    0x00030080: (257, 1),  # gencmd (vcgencmd.c): error word + 1024 bytes of text -> error word (+ text)
}
MEMORY_TAGS = (0x0003000C, 0x0003000D, 0x0003000E, 0x0003000F)


# --- build_request: byte-exact --------------------------------------------

# (tag, values, the whole request written out by hand)
REQUESTS = [
    # 7 words = 28 bytes; a 4-byte value buffer for the 1-word answer.
    (0x00000001, (), pack(28, 0, 0x00000001, 4, 0, 0, 0)),
    (0x00010001, (), pack(28, 0, 0x00010001, 4, 0, 0, 0)),
    (0x00010002, (), pack(28, 0, 0x00010002, 4, 0, 0, 0)),
    # 8 words = 32 bytes; an 8-byte value buffer for base and size.
    (0x00010005, (), pack(32, 0, 0x00010005, 8, 0, 0, 0, 0)),
    (0x00010006, (), pack(32, 0, 0x00010006, 8, 0, 0, 0, 0)),
    # 9 words = 36 bytes: size 1 MiB, alignment 4096, flags DIRECT (4).
    (0x0003000C, (0x00100000, 0x1000, 4),
     pack(36, 0, 0x0003000C, 12, 0, 0x00100000, 0x00001000, 0x00000004, 0)),
    (0x0003000C, (0xFFFFFFFF, 0, 0xFFFFFFFF),
     pack(36, 0, 0x0003000C, 12, 0, 0xFFFFFFFF, 0, 0xFFFFFFFF, 0)),
    (0x0003000D, (7,), pack(28, 0, 0x0003000D, 4, 0, 7, 0)),
    (0x0003000E, (7,), pack(28, 0, 0x0003000E, 4, 0, 7, 0)),
    (0x0003000F, (0xDEADBEEF,), pack(28, 0, 0x0003000F, 4, 0, 0xDEADBEEF, 0)),
]


@pytest.mark.parametrize("tag, values, expected", REQUESTS,
                         ids=[f"0x{t:08x}-{i}" for i, (t, _, _) in enumerate(REQUESTS)])
def test_build_request_is_byte_exact(tag, values, expected):
    buf = build_request(tag, values)
    assert bytes(buf) == expected
    # The ioctl writes the answer in place: the buffer must be mutable.
    assert isinstance(buf, bytearray)


def test_build_request_firmware_revision_as_hex():
    # The same message as a hex dump, to read against the wiki's example.
    expected = bytes.fromhex(
        "1c000000"  # size 28
        "00000000"  # request
        "01000000"  # tag 0x00000001
        "04000000"  # value buffer: 4 bytes
        "00000000"  # request word
        "00000000"  # value buffer
        "00000000"  # end tag
    )
    assert bytes(build_request(0x00000001)) == expected


def test_build_request_accepts_tag_enum_and_list():
    assert bytes(build_request(Tag.LOCK_MEMORY, [0x1234])) == pack(28, 0, 0x0003000D, 4, 0, 0x1234, 0)


def test_tag_enum_has_the_documented_ids():
    assert {t.value for t in Tag} == set(DOC_TAGS)


@pytest.mark.parametrize("tag, values", [
    (0x00000001, (1,)),          # takes nothing
    (0x00010005, (0, 0)),        # takes nothing; the two words are the answer
    (0x0003000C, ()),            # size, alignment, flags
    (0x0003000C, (4096, 4096)),  # flags missing
    (0x0003000C, (1, 2, 3, 4)),
    (0x0003000D, ()),
    (0x0003000D, (1, 2)),
    (0x0003000E, ()),
    (0x0003000F, (1, 2)),
])
def test_build_request_rejects_wrong_value_count(tag, values):
    with pytest.raises(MailboxError):
        build_request(tag, values)


@pytest.mark.parametrize("values", [
    (-1,), (2**32,), (2**40,), (True,), (1.0,), ("7",), (None,),
])
def test_build_request_rejects_values_outside_u32(values):
    with pytest.raises(MailboxError):
        build_request(0x0003000D, values)


@pytest.mark.parametrize("bad", [(2**32, 0, 4), (4096, -1, 4), (4096, 4096, 2**32)])
def test_build_request_rejects_out_of_range_allocate_values(bad):
    with pytest.raises(MailboxError):
        build_request(0x0003000C, bad)


@pytest.mark.parametrize("tag", [-1, 2**32])
def test_build_request_rejects_tag_outside_u32(tag):
    with pytest.raises(MailboxError):
        build_request(tag)


# --- parse_response: good answers -----------------------------------------

# (tag, the firmware's answer written out by hand, the values it holds)
RESPONSES = [
    (0x00000001, pack(28, SUCCESS, 0x00000001, 4, RESPONSE_BIT | 4, 0x68A60009, 0), (0x68A60009,)),
    (0x00010001, pack(28, SUCCESS, 0x00010001, 4, RESPONSE_BIT | 4, 0, 0), (0,)),
    (0x00010002, pack(28, SUCCESS, 0x00010002, 4, RESPONSE_BIT | 4, 0x00A02082, 0), (0xA02082,)),
    (0x00010005, pack(32, SUCCESS, 0x00010005, 8, RESPONSE_BIT | 8, 0, 0x3B400000, 0),
     (0, 0x3B400000)),
    (0x00010006, pack(32, SUCCESS, 0x00010006, 8, RESPONSE_BIT | 8, 0x3B400000, 0x04C00000, 0),
     (0x3B400000, 0x04C00000)),
    # The answer overwrites the first request word; alignment and flags stay.
    (0x0003000C, pack(36, SUCCESS, 0x0003000C, 12, RESPONSE_BIT | 4, 5, 0x1000, 4, 0), (5,)),
    (0x0003000D, pack(28, SUCCESS, 0x0003000D, 4, RESPONSE_BIT | 4, 0xFAAA8000, 0), (0xFAAA8000,)),
    (0x0003000E, pack(28, SUCCESS, 0x0003000E, 4, RESPONSE_BIT | 4, 0, 0), (0,)),
    (0x0003000F, pack(28, SUCCESS, 0x0003000F, 4, RESPONSE_BIT | 4, 0, 0), (0,)),
]


@pytest.mark.parametrize("tag, response, values", RESPONSES,
                         ids=[f"0x{t:08x}" for t, _, _ in RESPONSES])
def test_parse_response_returns_the_values(tag, response, values):
    assert tuple(parse_response(response, tag)) == values
    assert tuple(parse_response(bytearray(response), tag)) == values


def test_parse_response_accepts_a_longer_desired_length():
    # The wiki: "Response length indicates the desired length even when it
    # is longer than the buffer size filled". The 4 bytes asked for are there.
    response = pack(28, SUCCESS, 0x00010002, 4, RESPONSE_BIT | 8, 0xA02082, 0)
    assert tuple(parse_response(response, 0x00010002)) == (0xA02082,)


def test_parse_response_with_explicit_response_words():
    # A tag pimem has no spec for (0x00010004, board serial: 2 words).
    response = pack(32, SUCCESS, 0x00010004, 8, RESPONSE_BIT | 8, 0x11111111, 0x22222222, 0)
    assert tuple(parse_response(response, 0x00010004, 2)) == (0x11111111, 0x22222222)


# --- parse_response: every bad answer raises -------------------------------

GOOD_LOCK = pack(28, SUCCESS, 0x0003000D, 4, RESPONSE_BIT | 4, 0xFAAA8000, 0)

BAD_RESPONSES = {
    "status parse error 0x80000001":
        pack(28, PARSE_ERROR, 0x0003000D, 4, 0, 7, 0),
    "status 0: never answered (the request itself)":
        pack(28, 0, 0x0003000D, 4, 0, 7, 0),
    "status 0 even with a tag answered":
        pack(28, 0, 0x0003000D, 4, RESPONSE_BIT | 4, 0xFAAA8000, 0),
    "unknown status 0x12345678":
        pack(28, 0x12345678, 0x0003000D, 4, RESPONSE_BIT | 4, 0xFAAA8000, 0),
    "status 0x80000002":
        pack(28, 0x80000002, 0x0003000D, 4, RESPONSE_BIT | 4, 0xFAAA8000, 0),
    "status 0x00000001":
        pack(28, 0x00000001, 0x0003000D, 4, RESPONSE_BIT | 4, 0xFAAA8000, 0),
    "response bit clear (unknown tag ignored), request word 0":
        pack(28, SUCCESS, 0x0003000D, 4, 0, 7, 0),
    "response bit clear, length bits set":
        pack(28, SUCCESS, 0x0003000D, 4, 4, 0xFAAA8000, 0),
    "length 0 as QEMU answers unimplemented tags":
        pack(28, SUCCESS, 0x0003000D, 4, RESPONSE_BIT | 0, 7, 0),
    "length 2, shorter than the 4-byte answer":
        pack(28, SUCCESS, 0x0003000D, 4, RESPONSE_BIT | 2, 0xFAAA8000, 0),
    "wrong tag id (unlock instead of lock)":
        pack(28, SUCCESS, 0x0003000E, 4, RESPONSE_BIT | 4, 0, 0),
    "wrong tag id 0":
        pack(28, SUCCESS, 0, 4, RESPONSE_BIT | 4, 0xFAAA8000, 0),
    "truncated: size word kept, last word lost":
        pack(28, SUCCESS, 0x0003000D, 4, RESPONSE_BIT | 4, 0xFAAA8000),
    "truncated: before the value":
        pack(20, SUCCESS, 0x0003000D, 4, RESPONSE_BIT | 4),
    "truncated: half a value":
        pack(28, SUCCESS, 0x0003000D, 4, RESPONSE_BIT | 4) + b"\x00\x80",
    "empty buffer": b"",
    "size word larger than the buffer":
        pack(32, SUCCESS, 0x0003000D, 4, RESPONSE_BIT | 4, 0xFAAA8000, 0),
    "size word smaller than the buffer":
        pack(24, SUCCESS, 0x0003000D, 4, RESPONSE_BIT | 4, 0xFAAA8000, 0),
    "size word 0":
        pack(0, SUCCESS, 0x0003000D, 4, RESPONSE_BIT | 4, 0xFAAA8000, 0),
    "extra bytes after the message":
        GOOD_LOCK + pack(0),
    "value buffer size 0":
        pack(28, SUCCESS, 0x0003000D, 0, RESPONSE_BIT | 4, 0xFAAA8000, 0),
}


@pytest.mark.parametrize("response", list(BAD_RESPONSES.values()), ids=list(BAD_RESPONSES))
def test_parse_response_rejects_bad_lock_answers(response):
    assert parse_response(GOOD_LOCK, 0x0003000D) == (0xFAAA8000,)  # the baseline is good
    with pytest.raises(MailboxError):
        parse_response(response, 0x0003000D)


@pytest.mark.parametrize("tag", MEMORY_TAGS)
def test_qemu_zero_length_answer_never_reads_the_request_back(tag):
    # QEMU answers the memory tags with success and length 0, leaving the
    # request's words in place: reading them would give the size as handle.
    sent, answered = DOC_TAGS[tag]
    request_values = [0x00100000, 0x1000, 4][:sent]
    value_words = max(sent, answered)
    words = [4 * (6 + value_words), SUCCESS, tag, 4 * value_words, RESPONSE_BIT | 0,
             *request_values, *[0] * (value_words - sent), 0]
    with pytest.raises(MailboxError):
        parse_response(pack(*words), tag)


def test_parse_response_short_length_for_two_word_tag():
    # ARM memory answers base and size: a 4-byte answer is missing the size.
    response = pack(32, SUCCESS, 0x00010005, 8, RESPONSE_BIT | 4, 0, 0x3B400000, 0)
    with pytest.raises(MailboxError):
        parse_response(response, 0x00010005)


def test_parse_response_value_buffer_too_small_for_two_words():
    response = pack(32, SUCCESS, 0x00010006, 4, RESPONSE_BIT | 8, 0x3B400000, 0x04C00000, 0)
    with pytest.raises(MailboxError):
        parse_response(response, 0x00010006)


def test_parse_error_message_says_what_happened():
    with pytest.raises(MailboxError, match="0x80000001"):
        parse_response(BAD_RESPONSES["status parse error 0x80000001"], 0x0003000D)
    with pytest.raises(MailboxError, match="(?i)response bit"):
        parse_response(BAD_RESPONSES["response bit clear (unknown tag ignored), request word 0"],
                       0x0003000D)
    with pytest.raises(MailboxError, match="(?i)truncated"):
        parse_response(BAD_RESPONSES["truncated: before the value"], 0x0003000D)


def test_parse_response_rejects_value_buffer_past_the_end():
    # The size word says 28 bytes, so a 4096-byte value buffer cannot be there.
    response = pack(28, SUCCESS, 0x0003000D, 4096, RESPONSE_BIT | 4, 0xFAAA8000, 0)
    with pytest.raises(MailboxError):
        parse_response(response, 0x0003000D)


# --- parse_response: properties --------------------------------------------

def documented_answer(buf: bytes, tag: int, n: int) -> tuple[int, ...] | None:
    """The n values if ``buf`` is, per the wiki, a successful answer to ``tag``."""
    if len(buf) < 4 * (5 + n):
        return None
    size, status, got_tag, value_size, code = struct.unpack_from("<5I", buf, 0)
    if size != len(buf) or status != SUCCESS or got_tag != tag:
        return None
    if not code & RESPONSE_BIT or code & 0x7FFFFFFF < 4 * n or value_size < 4 * n:
        return None
    if 20 + value_size + 4 > size:  # the value buffer and end tag lie inside the message
        return None
    # The wiki: the buffer is 32-bit words, a value buffer is "u8 ... padding to align the
    # tag to 32 bits", and the tags end with the end tag, 0x0.
    if size % 4 or value_size % 4 or struct.unpack_from("<I", buf, 20 + value_size)[0] != 0:
        return None
    return struct.unpack_from(f"<{n}I", buf, 20)


INTERESTING_WORDS = st.sampled_from([
    0, 1, 4, 8, 12, 28, 32, 36, SUCCESS, PARSE_ERROR, RESPONSE_BIT, RESPONSE_BIT | 2,
    RESPONSE_BIT | 4, RESPONSE_BIT | 8, 0x7FFFFFFF, 0xFFFFFFFF, *DOC_TAGS,
])
WORDS = st.one_of(INTERESTING_WORDS, st.integers(0, 0xFFFFFFFF))


def check_parse(buf: bytes, tag: int) -> None:
    n = DOC_TAGS[tag][1]
    expected = documented_answer(buf, tag, n)
    status = struct.unpack_from("<I", buf, 4)[0] if len(buf) >= 8 else None
    code = struct.unpack_from("<I", buf, 16)[0] if len(buf) >= 20 else None
    if expected is None:
        with pytest.raises(MailboxError):
            parse_response(buf, tag)
    else:
        assert status == SUCCESS and code & RESPONSE_BIT  # never otherwise
        assert tuple(parse_response(buf, tag)) == expected
        assert tuple(parse_response(bytearray(buf), tag)) == expected


@settings(max_examples=300, deadline=None)
@given(tag=st.sampled_from(MEMORY_TAGS + (0x00010005,)), data=st.binary(max_size=64))
def test_arbitrary_bytes_raise_or_are_a_valid_answer(tag, data):
    check_parse(data, tag)


@st.composite
def header_like_words(draw):
    """Random words where each header field is, three times in four, the right one."""
    tag = draw(st.sampled_from(MEMORY_TAGS + (0x00010005,)))
    n = DOC_TAGS[tag][1]
    rest = draw(st.lists(WORDS, max_size=6))
    right = [None, SUCCESS, tag, 4 * n, RESPONSE_BIT | 4 * n]
    other = [
        st.sampled_from([0, 20, 24, 28, 32, 36]) | st.integers(0, 0xFFFFFFFF),
        st.sampled_from([PARSE_ERROR, 0, 1, 0x80000002, 0x7FFFFFFF]) | st.integers(0, 0xFFFFFFFF),
        st.sampled_from(sorted(DOC_TAGS)) | st.integers(0, 0xFFFFFFFF),
        st.sampled_from([0, 2, 4, 8, 12, 4096]) | st.integers(0, 0xFFFFFFFF),
        st.sampled_from([RESPONSE_BIT | k for k in (0, 2, 4, 6, 8, 12)] + [0, 4, 8])
        | st.integers(0, 0xFFFFFFFF),
    ]
    header = [right[i] if right[i] is not None and draw(st.integers(0, 3)) else draw(other[i])
              for i in range(5)]
    words = header + rest
    if draw(st.booleans()):
        words = words[:draw(st.integers(0, len(words)))]
    if words and draw(st.integers(0, 3)):
        words[0] = 4 * len(words)  # a size word that matches
    return tag, words


@settings(max_examples=500, deadline=None)
@given(header_like_words())
def test_arbitrary_words_raise_or_are_a_valid_answer(drawn):
    tag, words = drawn
    check_parse(pack(*words), tag)


@st.composite
def valid_answers(draw):
    """A well-formed successful answer to a random tag, per the wiki."""
    tag = draw(st.sampled_from(sorted(DOC_TAGS)))
    sent, answered = DOC_TAGS[tag]
    value_words = draw(st.integers(max(sent, answered), max(sent, answered) + 2))
    values = draw(st.lists(st.integers(0, 0xFFFFFFFF), min_size=value_words, max_size=value_words))
    length = draw(st.integers(4 * answered, 4 * value_words + 8))
    padding = draw(st.integers(0, 3))
    words = [4 * (5 + value_words + 1 + padding), SUCCESS, tag, 4 * value_words,
             RESPONSE_BIT | length, *values, 0, *[0] * padding]
    return tag, words, tuple(values[:answered])


@settings(max_examples=200, deadline=None)
@given(valid_answers())
def test_valid_answers_give_exactly_the_value_words(answer):
    tag, words, values = answer
    assert tuple(parse_response(pack(*words), tag)) == values


MUTATIONS = st.one_of(
    st.tuples(st.just("word"), st.integers(0, 4), WORDS),  # the header
    st.tuples(st.just("word"), st.integers(0, 12), WORDS),
    st.tuples(st.just("length"), st.just(0), st.integers(0, 16)),
    st.tuples(st.just("fix size"), st.just(0), st.just(0)),
    st.tuples(st.just("bit"), st.integers(0, 48), st.integers(0, 7)),
    st.tuples(st.just("truncate"), st.integers(0, 48), st.just(0)),
    st.tuples(st.just("append"), st.integers(1, 8), st.integers(0, 255)),
)


def mutate(buf: bytearray, op: tuple[str, int, int]) -> bytearray:
    kind, where, what = op
    if kind == "word" and 4 * where + 4 <= len(buf):
        struct.pack_into("<I", buf, 4 * where, what)
    elif kind == "bit" and where < len(buf):
        buf[where] ^= 1 << what
    elif kind == "length" and len(buf) >= 20:
        struct.pack_into("<I", buf, 16, RESPONSE_BIT | what)  # answered, `what` bytes
    elif kind == "fix size" and len(buf) >= 4:
        struct.pack_into("<I", buf, 0, len(buf))  # a size word that matches
    elif kind == "truncate":
        del buf[where:]
    elif kind == "append":
        buf += bytes([what]) * where
    return buf


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_answers(), st.lists(MUTATIONS, min_size=1, max_size=4))
def test_mutated_answers_raise_or_give_the_value_words(answer, ops):
    tag, words, _ = answer
    buf = bytearray(pack(*words))
    for op in ops:
        buf = mutate(buf, op)
    check_parse(bytes(buf), tag)


@settings(max_examples=200, deadline=None)
@given(valid_answers(), st.integers(0, 0xFFFFFFFF))
def test_never_a_value_unless_status_is_success(answer, status):
    assume(status != SUCCESS)
    tag, words, _ = answer
    words[1] = status
    with pytest.raises(MailboxError):
        parse_response(pack(*words), tag)


@settings(max_examples=200, deadline=None)
@given(valid_answers(), st.integers(0, 0x7FFFFFFF))
def test_never_a_value_when_the_response_bit_is_clear(answer, code):
    tag, words, _ = answer
    words[4] = code  # bit 31 clear, any length
    with pytest.raises(MailboxError):
        parse_response(pack(*words), tag)


@pytest.mark.parametrize("change, match", [
    (lambda w: w.__setitem__(-1, 0xDEADBEEF), "end tag"),                # no end tag after the value buffer
    (lambda w: w.__setitem__(3, 6), "whole 32-bit words"),               # value buffer not a multiple of 4
])
def test_answer_needs_its_end_tag_and_whole_words(change, match):
    words = [28, SUCCESS, 0x0003000D, 4, RESPONSE_BIT | 4, 0xFB400000, 0]
    assert parse_response(pack(*words), 0x0003000D) == (0xFB400000,)
    change(words)
    with pytest.raises(MailboxError, match=match):
        parse_response(pack(*words), 0x0003000D)
