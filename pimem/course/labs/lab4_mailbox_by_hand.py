"""Checks and helpers for notebooks/labs/lab4-mailbox-by-hand.ipynb: mailbox messages built and read by hand."""
from __future__ import annotations

import random
import struct
import tempfile
from typing import Any, Callable, Sequence

from ...exc import MailboxError
from ...firmware.memflags import MemFlag
from ...firmware.protocol import RESPONSE_PARSE_ERROR, RESPONSE_SUCCESS, TAG_RESPONSE, Tag, build_request
from ...firmware.transport import EmulatorTransport, RecordingTransport
from ...memory.allocation import HeldAllocation
from .checks import CheckResult, NotAnswered, Report, call_student, hex_text, is_int, name_of, run_check


def reference_message(tag: int, values: Sequence[int], response_words: int) -> bytes:
    """The request, as the lab defines it: what pimem.firmware.protocol.build_request makes."""
    return bytes(build_request(tag, list(values), response_words))


_WORD_NAMES = ["word 0 (the total size in bytes)", "word 1 (the request code, 0)", "word 2 (the tag id)",
               "word 3 (the value buffer size in bytes)", "word 4 (the tag's request code, 0)"]


def _word_name(i: int, n: int) -> str:
    if i < 5:
        return _WORD_NAMES[i]
    return "the last word (the end tag, 0)" if i == n - 1 else f"word {i} (value {i - 5} of the value buffer)"


_MESSAGE_MORE = ("Write the words out as a list first, one per row of the table in section 1: the size (count "
                 "every byte: 6 words of header, tag header and end tag, plus the value buffer), 0, the tag, the "
                 "value buffer's size in bytes (room for the request's values or the answer's, whichever is "
                 "more), 0, the values padded with zeros to fill that buffer, and the end tag. Then pack the "
                 "list as little-endian 32-bit words. Compare your bytes with the lock(1) example: "
                 "1c000000 00000000 0d000300 04000000 00000000 01000000 00000000.")


def _message_problem(got: Any, want: bytes, tag: int, values: Sequence[int], rw: int) -> tuple[str, str] | None:
    """(why, hint) for a wrong message, or None if it is right."""
    if isinstance(got, (list, tuple)):
        return ("you returned a list of numbers; the mailbox takes bytes",
                "pack your words into bytes with struct.pack, as the exercise says")
    if not isinstance(got, (bytes, bytearray, memoryview)):
        return f"you returned {type(got).__name__}; the mailbox takes bytes", "return bytes (struct.pack makes them)"
    got = bytes(got)
    if got == want:
        return None
    n = len(want) // 4
    if len(got) == 2 * len(want):
        return (f"your message is {len(got)} bytes, twice too long: struct format 'L' or 'Q' is 8 bytes in 64-bit "
                "Python; the mailbox wants 32-bit words: '<I'", "use 4-byte words")
    if len(got) == len(want) and got == struct.pack(f">{n}I", *struct.unpack(f"<{n}I", want)):
        return ("your words are big-endian; the mailbox reads little-endian words",
                "the first character of the struct format sets the byte order")
    if len(got) % 4:
        return f"{len(got)} bytes is not a whole number of 32-bit words", "pack whole 32-bit words only"
    gw = struct.unpack(f"<{len(got) // 4}I", got)
    ww = struct.unpack(f"<{n}I", want)
    if len(gw) == n - 1 and list(gw) == list(ww[:-1]) or (len(gw) == n - 1 and gw[-1] != 0):
        return ("the message has no end tag: a 0 word must close it (and be counted in the size)",
                "end the message with the end tag")
    if len(gw) < n:
        return (f"your message has {len(gw)} words, it needs {n}: the value buffer must be big enough for the "
                f"request ({len(values)} word(s)) and the answer ({rw}), as the firmware writes its answer in place",
                "size the value buffer for whichever is longer, the request's values or the answer")
    for i, (g, w) in enumerate(zip(gw, ww)):
        if g != w:
            hint = "check that word against the table in section 1"
            if i == 0 and g == w // 4:
                hint = "you counted words; the size is in bytes"
            elif i == 0:
                hint = "count every byte: header, tag header, value buffer and end tag"
            elif i == 3 and g == w // 4:
                hint = "you counted words; the value buffer size is in bytes"
            return f"{_word_name(i, n)} is 0x{g:08X}, it should be 0x{w:08X}", hint
    return f"your message has {len(gw)} words, it needs {n}", "compare your words with the table, one by one"


def check_build_message(fn: Callable[[int, Sequence[int], int], bytes], *, seed: int | None = None,
                        hint: int = 1) -> CheckResult:
    """fn(tag, values, response_words) -> the request as little-endian 32-bit words."""
    def body(rep: Report) -> None:
        rng = random.Random(seed)
        cases = [(int(Tag.ALLOCATE_MEMORY), [rng.randrange(1, 4096) * 4096, 4096, int(MemFlag.DIRECT | MemFlag.ZERO)], 1),
                 (int(Tag.LOCK_MEMORY), [rng.randrange(1, 50)], 1),
                 (int(Tag.RELEASE_MEMORY), [rng.randrange(1, 50)], 1),
                 (int(Tag.VC_MEMORY), [], 2),
                 (0x00030000 | rng.randrange(0x100, 0x1000), [rng.getrandbits(32) for _ in range(2)], 3)]
        for tag, values, rw in cases:
            call = f"{name_of(fn)}(0x{tag:08X}, {values}, {rw})"
            got = call_student(fn, call, tag, list(values), rw)
            want = reference_message(tag, values, rw)
            problem = _message_problem(got, want, tag, values, rw)
            if problem:
                shown = bytes(got).hex(" ", 4) if isinstance(got, (bytes, bytearray, memoryview)) else repr(got)
                rep.fail(call, shown, f"{len(want)} bytes: {want.hex(' ', 4)}", problem[0], problem[1],
                         _MESSAGE_MORE, rank=2)
        rep.notes.append("byte for byte right for allocate, lock, release, a tag with no request values and an unknown tag")
    return run_check("Building a mailbox message", fn, body, check="check_build_message", hint=hint)


def _answer(tag: int, values: Sequence[int], *, status: int = RESPONSE_SUCCESS, code: int | None = None,
            answered_tag: int | None = None) -> bytearray:
    """A firmware answer made by hand, good or broken in one way."""
    n = len(values)
    words = [(6 + n) * 4, status, answered_tag if answered_tag is not None else tag, n * 4,
             TAG_RESPONSE | (n * 4) if code is None else code, *values, 0]
    return bytearray(struct.pack(f"<{len(words)}I", *words))


_VALUES_MORE = ("Unpack the header words first (size, status, tag, value buffer size, response code) and "
                "print them for a good answer: the values follow them, response_words of them. struct can "
                "start unpacking at a byte offset; a word is 4 bytes.")
_RAISE_MORE = ("Read each header word and compare it with what a good answer has: the status word must be "
               "the success code (0x80000000), the tag must be the one you asked about, the response code "
               "must have bit 31 set, and the length in its other bits must cover response_words words. "
               "Raise an exception (ValueError) as soon as one is wrong, before reading any value.")


def check_parse_answer(fn: Callable[[bytes, int, int], Sequence[int]], *, seed: int | None = None,
                       hint: int = 1) -> CheckResult:
    """fn(buf, tag, response_words) -> the values; it must raise (any exception) for a failed answer."""
    def body(rep: Report) -> None:
        rng = random.Random(seed)
        _try_good_answers(rep, fn, rng)
        _try_failed_answers(rep, fn, rng.randrange(1, 100))
        rep.notes.append("returns the values of good answers and refuses parse errors, unanswered tags, short answers "
                         "and answers for another tag")
    return run_check("Reading the firmware's answer", fn, body, check="check_parse_answer", hint=hint)


def _ints(got: Any) -> list[int] | None:
    try:
        return [int(v) for v in got]
    except (TypeError, ValueError):
        return None


def _try_good_answers(rep: Report, fn: Callable[[bytes, int, int], Sequence[int]], rng: random.Random) -> None:
    """Good answers to three tags: fn must return their values, and only those."""
    good = [(int(Tag.ALLOCATE_MEMORY), [rng.randrange(1, 100)]),
            (int(Tag.LOCK_MEMORY), [0xC0000000 | rng.randrange(0x38000, 0x3C000) << 12]),
            (int(Tag.VC_MEMORY), [0x3B400000, 0x04C00000])]
    for tag, values in good:
        buf = _answer(tag, values)
        call = f"{name_of(fn)}(<a good answer to 0x{tag:08X}: {buf.hex(' ', 4)}>, 0x{tag:08X}, {len(values)})"
        got = call_student(fn, call, bytes(buf), tag, len(values))
        gl = _ints(got) if got is not None else None
        if gl == list(values):
            continue
        words = list(struct.unpack(f"<{len(buf) // 4}I", buf))
        args = (call, repr(got), "the values " + ", ".join(f"0x{v:X}" for v in values))
        if gl == words:
            rep.fail(*args, "you returned every word of the answer; the values are only the words after the "
                     "header", "return only the values, from word 5 (byte 20)", _VALUES_MORE, rank=2)
        elif gl is not None and gl[:1] == [words[4]]:
            rep.fail(*args, "you started one word early, at the tag's response word",
                     "the values start at word 5 (byte offset 20)", _VALUES_MORE, rank=2)
        else:
            rep.fail(*args, "a good answer carries its values in the value buffer, after five header words",
                     "the values start at word 5 (byte offset 20)", _VALUES_MORE)


def _try_failed_answers(rep: Report, fn: Callable[[bytes, int, int], Sequence[int]], handle: int) -> None:
    """Answers to lock(handle) that failed in each way the firmware (or QEMU) fails: fn must raise."""
    lock = int(Tag.LOCK_MEMORY)
    bad = [("status 0x80000001 (the firmware could not parse the request)",
            _answer(lock, [handle], status=RESPONSE_PARSE_ERROR)),
           ("status 0x00000000 (the firmware never answered)", _answer(lock, [handle], status=0)),
           ("the tag's response bit clear (the tag was not answered)", _answer(lock, [handle], code=4)),
           ("response length 0 (how QEMU answers the memory tags)", _answer(lock, [handle], code=TAG_RESPONSE)),
           ("the answer is for another tag", _answer(lock, [handle], answered_tag=int(Tag.UNLOCK_MEMORY)))]
    for what, buf in bad:
        try:
            got = fn(bytes(buf), lock, 1)
        except NotImplementedError:
            raise NotAnswered() from None
        except Exception:  # noqa: BLE001 - raising is the right answer here
            continue
        rep.fail(f"{name_of(fn)}(<an answer with {what}: {buf.hex(' ', 4)}>, 0x{lock:08X}, 1)",
                 repr(got), "an exception", f"you returned {got!r} instead of raising. The value word still "
                 f"holds what was sent ({handle}, the handle), so a caller would take the request for the "
                 "answer (hello_fft's mailbox.c returns the size as a handle this way)",
                 "check the status, the tag, bit 31 of the response word and the length it gives, and raise "
                 "if any is wrong", _RAISE_MORE, rank=2)


class _SpyTransport(RecordingTransport):
    """A private emulator's transport that keeps every exchange, and can make one tag fail."""

    def __init__(self, directory: str, fail_tag: int | None = None) -> None:
        super().__init__(EmulatorTransport(directory))
        self.firmware = self.inner.firmware
        self.fail_tag = fail_tag

    def property(self, buf: bytearray) -> None:
        tag = struct.unpack_from("<I", buf, 8)[0] if len(buf) >= 12 else 0
        if tag == self.fail_tag:
            raise MailboxError("the mailbox refused the request (EINVAL) [a failure this check injected]")
        super().property(buf)

    def close(self) -> None:
        self.inner.close()


class _NoAnswer(Exception):
    """The firmware refused a student's message, or answered it with nothing held (handle or bus 0)."""


def _request(buf: bytes | bytearray) -> tuple[int, list[int]]:
    """The first tag of a message and the words of its value buffer (those inside the message)."""
    if len(buf) < 24:
        return 0, []
    words = struct.unpack_from(f"<{len(buf) // 4}I", buf)
    return words[2], list(words[5:5 + words[3] // 4])


def _answered(buf: bytes | bytearray) -> int | None:
    """The first value of a one-tag answer, or None if the firmware did not answer the tag."""
    status, code, value = (struct.unpack_from("<I", buf, at)[0] for at in (4, 16, 20))
    return value if status == RESPONSE_SUCCESS and code & TAG_RESPONSE else None


class LedgeredTransport:
    """The backend's transport, with every block a hand-built message allocates kept in pimem's ledger.

    Lab 4 sends raw messages, past GpuBuffer. On a Pi, a block a killed kernel left
    behind would then stay gone until a reboot: nothing frees mailbox memory when a
    process dies. So an allocate message is sent as the firmware call of pimem's one
    allocation sequence (Backend.allocation): recorded from the firmware's answer on,
    as a GpuBuffer's is. A lock adds its bus address, a release forgets it, and
    `.venv/bin/pimem cleanup` (or the next process) takes back what a killed kernel left.
    """

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.name = backend.transport.name
        self._held: dict[int, HeldAllocation] = {}   # handle -> what its allocate message got

    def property(self, buf: bytearray) -> None:
        tag, values = _request(buf)
        held = self._held.get(values[0]) if values else None
        try:
            if tag == Tag.ALLOCATE_MEMORY:
                size, alignment, flags = (*values, 0, 0, 0)[:3]
                held = self.backend.allocation(size, flags, alignment, lock=False, ask=lambda: self._value(buf))
                self._held[held.handle] = held
            elif tag == Tag.LOCK_MEMORY and held is not None and held.bus is None:
                held.lock(ask=lambda: self._value(buf))
            elif tag == Tag.RELEASE_MEMORY and held is not None:
                self._held.pop(held.handle).release(ask=lambda: self._released(buf))
            else:
                self.backend.transport.property(buf)
        except _NoAnswer:
            pass   # the answer is in buf, for the student's code to read

    def _value(self, buf: bytearray) -> int:
        """Send the message; the handle or bus address it answered, or _NoAnswer."""
        self.backend.transport.property(buf)
        value = _answered(buf)
        if not value:
            raise _NoAnswer
        return value

    def _released(self, buf: bytearray) -> None:
        """Send a release message; _NoAnswer unless its status says released."""
        self.backend.transport.property(buf)
        if _answered(buf) != 0:
            raise _NoAnswer

    def close(self) -> None:
        """Nothing to close: the backend owns the transport."""


def ledgered_transport(backend: Any = None) -> LedgeredTransport:
    """The transport lab 4 sends its hand-built messages through (see LedgeredTransport)."""
    from ...memory.backend import get_backend

    return LedgeredTransport(backend if backend is not None else get_backend())


_ROUND_TRIP_MORE = (
    "The order is allocate (answers a handle), lock (answers the bus address), unlock, release. Keep "
    "the bus address from the lock's answer in a variable, because after the release it means nothing. "
    "Whatever happens after the allocate succeeds, the release must run: put the steps after it in a "
    "try block and the release in its finally: block, then return the bus address.")


def check_round_trip(fn: Callable[[Any, int, int], int], *, seed: int | None = None, hint: int = 1) -> CheckResult:
    """fn(transport, size, flags) -> bus address: allocate, lock, unlock, release, freeing on every path.

    Runs on a private emulator (never on the Pi), so a leak here costs nothing.
    """
    def body(rep: Report) -> None:
        rng = random.Random(seed)
        for flags, alias in ((MemFlag.DIRECT | MemFlag.ZERO, 0xC), (MemFlag.COHERENT, 0x8)):
            _try_round_trip(rep, fn, rng.randrange(1, 64) * 4096, flags, alias)
        _try_failing_lock(rep, fn)
        rep.notes.append("allocates, locks, unlocks and releases, and frees the memory even when the lock fails")
    return run_check("Allocate, lock, unlock, release by hand", fn, body, check="check_round_trip", hint=hint)


def _try_round_trip(rep: Report, fn: Callable[[Any, int, int], int], size: int, flags: MemFlag, alias: int) -> None:
    """One round trip on a private emulator: nothing left held, the unlock sent, the lock's bus address returned."""
    with tempfile.TemporaryDirectory(prefix="pimem-lab4-") as d:
        t = _SpyTransport(d)
        try:
            call = f"{name_of(fn)}(transport, {size}, {int(flags)})"
            got = call_student(fn, call, t, size, int(flags))
            left = t.firmware.allocations()
        finally:
            t.close()
    sent = [ex.tag for ex in t.exchanges]
    if left:
        rep.fail(call, hex_text(got, 8), "a bus address, and every allocation released",
                 f"{len(left)} allocation(s) still held after your function returned. Nothing frees "
                 "mailbox memory when a process dies: on a Pi it stays gone until a reboot",
                 "unlock and release what you allocated", _ROUND_TRIP_MORE, rank=2)
    elif Tag.UNLOCK_MEMORY not in sent:
        rep.fail(call, hex_text(got, 8), "the block unlocked, then released",
                 "you released the block without unlocking it first; the firmware's documentation "
                 "does not say what release does to a locked block",
                 "send the unlock before the release", _ROUND_TRIP_MORE, rank=2)
    if not is_int(got) or not 0 <= got <= 0xFFFFFFFF or (got >> 28) & 0xC != alias:
        what = "not a bus address of this flag's alias"
        if is_int(got) and 0 < got < 1 << 16:
            what = f"{got} looks like the handle, not an address"
        elif is_int(got) and 0 < got < 0x40000000:
            what = f"0x{got:08X} is a physical address (alias bits cleared)"
        rep.fail(call, hex_text(got, 8), f"the bus address the lock answered (alias 0x{alias:X} for "
                 "these flags)", what, "return the lock's answer unchanged", _ROUND_TRIP_MORE, rank=2)


def _try_failing_lock(rep: Report, fn: Callable[[Any, int, int], int]) -> None:
    """A round trip whose lock fails: raising is fine, leaving the allocation behind is not."""
    with tempfile.TemporaryDirectory(prefix="pimem-lab4-") as d:
        t = _SpyTransport(d, fail_tag=int(Tag.LOCK_MEMORY))
        try:
            fn(t, 4096, int(MemFlag.DIRECT))
        except NotImplementedError:
            raise NotAnswered() from None
        except Exception:  # noqa: BLE001 - failing is fine; leaking is not
            pass
        finally:
            left = t.firmware.allocations()
            t.close()
    if left:
        rep.fail(f"{name_of(fn)}(transport, 4096, {int(MemFlag.DIRECT)}) with the lock made to fail",
                 "the allocation left behind", "an exception is fine, but the block released",
                 "when the lock fails (this check made it fail), your function leaves the allocation "
                 "behind", "release in a finally: block, so the memory comes back on every path",
                 _ROUND_TRIP_MORE, rank=2)
