"""Helpers for notebooks/03-the-mailbox.ipynb: property messages word by word, the memory tags, a leak."""
from __future__ import annotations

# Sources for the word layout and codes: the firmware wiki "Mailbox
# property interface" (raspberrypi/firmware), include/soc/bcm2835/
# raspberrypi-firmware.h, OpenBSD sys/dev/ic/bcm2835_vcprop.h (bit 31 of
# a tag's request/response word).

import contextlib
import os
import signal
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from ...memory.backend import Backend, get_backend
from ...firmware.board import decode_revision
from ...exc import GpuMemoryError, MailboxError, PimemError, RevisionError, UsageError
from ...memory.ledger import Allocation
from ...firmware.memflags import BusAddress, MemFlag, bus_to_phys, flag_names
from ...firmware.protocol import (
    END_TAG,
    REQUEST,
    RESPONSE_PARSE_ERROR,
    RESPONSE_SUCCESS,
    TAG_RESPONSE,
    WORD,
    Tag,
    build_request,
    parse_response,
)
from ...firmware.transport import PAGE_SIZE
from ._shared import MiB, _check_size, _give_back
from ...paths import REPO

#: Tags that only read: the only ones exchange() and send() will carry.
#: Memory tags go through lifecycle() and flag_survey(), which record what
#: they allocate in the ledger and release it on every path.
QUERY_TAGS: frozenset[Tag] = frozenset(
    {Tag.FIRMWARE_REVISION, Tag.BOARD_MODEL, Tag.BOARD_REVISION, Tag.ARM_MEMORY, Tag.VC_MEMORY}
)

_SHORT = {  # what a tag does, in a few words, for the annotation
    Tag.FIRMWARE_REVISION: "get firmware revision",
    Tag.BOARD_MODEL: "get board model",
    Tag.BOARD_REVISION: "get board revision",
    Tag.ARM_MEMORY: "get ARM memory",
    Tag.VC_MEMORY: "get VC (GPU) memory",
    Tag.ALLOCATE_MEMORY: "allocate memory",
    Tag.LOCK_MEMORY: "lock memory",
    Tag.UNLOCK_MEMORY: "unlock memory",
    Tag.RELEASE_MEMORY: "release memory",
}

# Names of the value words, request side and response side.
_REQUEST_VALUES = {
    Tag.ALLOCATE_MEMORY: ("size", "alignment", "flags"),
    Tag.LOCK_MEMORY: ("handle",),
    Tag.UNLOCK_MEMORY: ("handle",),
    Tag.RELEASE_MEMORY: ("handle",),
}
_RESPONSE_VALUES = {
    Tag.FIRMWARE_REVISION: ("firmware revision",),
    Tag.BOARD_MODEL: ("board model",),
    Tag.BOARD_REVISION: ("board revision",),
    Tag.ARM_MEMORY: ("base", "size"),
    Tag.VC_MEMORY: ("base", "size"),
    Tag.ALLOCATE_MEMORY: ("handle",),
    Tag.LOCK_MEMORY: ("bus address",),
    Tag.UNLOCK_MEMORY: ("status",),
    Tag.RELEASE_MEMORY: ("status",),
}


# --- annotating a message word by word -------------------------------------

def _words(buf: bytes | bytearray) -> list[int]:
    if len(buf) % WORD:
        raise UsageError(f"a property message is whole 32-bit words; this one is {len(buf)} bytes "
                         f"({len(buf) % WORD} byte(s) too many)")
    return list(struct.unpack(f"<{len(buf) // WORD}I", buf))


def _status_meaning(code: int) -> str:
    if code == REQUEST:
        return "request code: 0x00000000 = process this request"
    if code == RESPONSE_SUCCESS:
        return "response code: 0x80000000 = success (bit 31 set: answered)"
    if code == RESPONSE_PARSE_ERROR:
        return "response code: 0x80000001 = error parsing the request"
    return f"request/response code: 0x{code:08X} is neither a request nor a known response"


def _tag_label(tag: int) -> str:
    try:
        return f"tag 0x{tag:08X}: {_SHORT[Tag(tag)]}"
    except ValueError:
        return f"tag 0x{tag:08X}: a tag pimem does not know (the firmware ignores unknown tags)"


def _value_meaning(tag: int, name: str, value: int) -> str:
    if name in ("size", "alignment"):
        return f"{name}: {value} bytes" + (f" ({value / MiB:g} MiB)" if value >= MiB else "")
    if name == "flags":
        return f"flags: {flag_names(value)}"
    if name == "handle":
        return "handle: 0 = the firmware could not allocate" if value == 0 else f"handle: {value}"
    if name == "bus address":
        if value == 0:
            return "bus address: 0 = lock failed (no such handle)"
        d = BusAddress.decode(value)
        return f"bus address: alias {d.alias}, physical 0x{d.phys:08X}"
    if name == "status":
        return "status: 0 = success" if value == 0 else f"status: {value} = failed"
    if name == "base":
        return f"base: 0x{value:08X}"
    if name == "board revision":
        try:
            return f"board revision: {value:x} = {decode_revision(value).describe()}"
        except RevisionError:
            return f"board revision: {value:x} (not a documented revision code)"
    if name in ("firmware revision", "board model"):
        return f"{name}: 0x{value:08X}"
    return f"{name}: 0x{value:08X}"


def annotate(buf: bytes | bytearray) -> pd.DataFrame:
    """One row per 32-bit word of a property message: offset, hex, meaning.

    Works for a request and for its response (told apart by word 1, the
    buffer's request/response code). In a response, value words past the
    answer's length are marked as left over from the request: the
    firmware writes only as many bytes as its answer needs.
    """
    words = _words(buf)
    rows: list[tuple[int, str, str]] = []

    def add(i: int, meaning: str) -> None:
        rows.append((i * WORD, f"0x{words[i]:08X}", meaning))

    if len(words) < 3:
        raise UsageError(f"a property message has at least 3 words (size, code, end tag); this one has {len(words)}")
    add(0, f"buffer size: {words[0]} bytes" + ("" if words[0] == len(buf) else
                                              f" (but the buffer holds {len(buf)}: malformed)"))
    add(1, _status_meaning(words[1]))
    answered = words[1] & TAG_RESPONSE
    i = 2
    while i < len(words):
        tag = words[i]
        if tag == END_TAG:
            add(i, "end tag")
            for j in range(i + 1, len(words)):
                add(j, "padding after the end tag")
            break
        if i + 3 > len(words):
            for j in range(i, len(words)):
                add(j, "truncated tag header: the message ends inside it")
            break
        add(i, _tag_label(tag))
        value_size = words[i + 1]
        add(i + 1, f"value buffer size: {value_size} bytes")
        code = words[i + 2]
        if code & TAG_RESPONSE:
            length = code & ~TAG_RESPONSE
            add(i + 2, f"request/response code (bit 31 = response): set, answer is {length} bytes")
        elif answered:
            length = 0
            add(i + 2, "request/response code (bit 31 = response): clear, the firmware did not answer this tag")
        else:
            length = None
            add(i + 2, "request/response code (bit 31 = response): clear, a request")
        known = Tag(tag) if tag in Tag._value2member_map_ else None
        n_values = -(-value_size // WORD)
        if length is None:
            names = _REQUEST_VALUES.get(known, ()) if known is not None else ()
        else:
            names = _RESPONSE_VALUES.get(known, ()) if known is not None else ()
        for k in range(n_values):
            j = i + 3 + k
            if j >= len(words):
                break
            if length is None:
                meaning = (_value_meaning(tag, names[k], words[j]) if k < len(names)
                           else "room for the answer (the firmware writes over it)")
            elif k * WORD < length and k < len(names):
                meaning = _value_meaning(tag, names[k], words[j])
            elif k * WORD < length:
                meaning = f"answer word {k}"
            else:
                meaning = "not part of the answer: the request's own word, left as it was"
            add(j, meaning)
        i += 3 + n_values
    else:
        rows.append((len(words) * WORD, "", "(no end tag: malformed)"))
    return pd.DataFrame(rows, columns=["offset", "hex", "meaning"])


# --- sending a message ------------------------------------------------------

class Exchange(NamedTuple):
    """A request as sent and the same buffer as the firmware answered it."""

    request: bytes
    response: bytes

    @property
    def tag(self) -> int:
        """The (first) tag id in the message."""
        return struct.unpack_from("<I", self.request, 8)[0]

    def values(self) -> tuple[int, ...]:
        """The answer, validated by pimem.firmware.protocol.parse_response."""
        return parse_response(self.response, self.tag)

    def table(self) -> pd.DataFrame:
        """Request and response side by side, word by word."""
        return side_by_side(self.request, self.response)


def side_by_side(request: bytes | bytearray, response: bytes | bytearray) -> pd.DataFrame:
    """annotate() of a request and of its response, joined on the offset."""
    req, resp = annotate(request), annotate(response)
    out = req.merge(resp, on="offset", how="outer", suffixes=(" (request)", " (response)"))
    return out.fillna("")


def _tags_of(request: bytes | bytearray) -> list[int]:
    """The tag ids of a well-formed request, or UsageError saying what is wrong."""
    words = _words(request)
    if len(words) < 3:
        raise UsageError(f"a property message has at least 3 words; this one has {len(words)}")
    if words[0] != len(request):
        # The kernel copies as many bytes as word 0 says: a larger value
        # would make it read (and write back) past this Python buffer.
        raise UsageError(f"word 0 says the buffer is {words[0]} bytes but it holds {len(request)}; "
                         "set word 0 to the buffer's length")
    if words[1] != REQUEST:
        raise UsageError(f"word 1 must be the request code 0x00000000, got 0x{words[1]:08X}")
    tags, i = [], 2
    while i < len(words):
        if words[i] == END_TAG:
            return tags
        if i + 3 > len(words):
            break
        tags.append(words[i])
        i += 3 + -(-words[i + 1] // WORD)
    raise UsageError("the message has no end tag (a 0 word after the last tag's value buffer); "
                     "build it with pimem.firmware.protocol.build_request")


def _send(backend: Backend, request: bytes | bytearray) -> Exchange:
    buf = bytearray(request)
    backend.transport.property(buf)
    return Exchange(bytes(request), bytes(buf))


def send(request: bytes | bytearray, backend: Backend | None = None) -> Exchange:
    """Send a hand-built message through the backend's transport; return both buffers.

    Only read-only tags (QUERY_TAGS) are carried: a raw allocate would
    bypass the ledger, and a raw release could free another process's
    memory. Use lifecycle() to watch the memory tags' messages.
    """
    backend = backend if backend is not None else get_backend()
    for tag in _tags_of(request):
        if tag not in QUERY_TAGS:
            raise UsageError(
                f"send() carries only the read-only tags ({', '.join(f'0x{t:08X}' for t in sorted(QUERY_TAGS))}); "
                f"tag 0x{tag:08X} changes GPU memory. Use pimem.course.walkthrough.lifecycle() to see the memory "
                "tags' messages: it records the allocation and releases it on every path")
    return _send(backend, request)


def exchange(tag: int, *values: int, backend: Backend | None = None) -> Exchange:
    """Build the request for one read-only tag, send it, return (request, response)."""
    return send(build_request(tag, values), backend)


# --- allocate, lock, map, unlock, release: one message at a time -------------

@dataclass
class Step:
    """One step of lifecycle(): the mailbox exchange (None for the mapping) and what it gave."""

    name: str
    result: str
    exchange: Exchange | None = None


@dataclass
class Lifecycle:
    """What lifecycle() did, step by step. Everything it allocated is released."""

    size: int
    flags: MemFlag
    steps: list[Step] = field(default_factory=list)

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([{"step": s.name,
                              "message": _tag_label(s.exchange.tag) if s.exchange else "(no message: mmap of /dev/mem)",
                              "result": s.result} for s in self.steps])

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise UsageError(f"no step {name!r}; the steps are {[s.name for s in self.steps]}")

    def table(self, name: str) -> pd.DataFrame:
        """The request and response of one step, word by word."""
        ex = self.step(name).exchange
        if ex is None:
            raise UsageError(f"step {name!r} sends no mailbox message")
        return ex.table()


def _call(backend: Backend, lc: Lifecycle, name: str, tag: Tag, *values: int) -> int:
    ex = _send(backend, build_request(tag, values))
    value = ex.values()[0]
    lc.steps.append(Step(name, _value_meaning(tag, _RESPONSE_VALUES[tag][0], value), ex))
    return value


def lifecycle(size: int = 4096, flags: MemFlag | int = MemFlag.DIRECT | MemFlag.ZERO,
              backend: Backend | None = None, map_memory: bool = True) -> Lifecycle:
    """Allocate, lock, map (write and read back), unlock, release, as raw messages.

    The allocation is in the ledger from the firmware's answer to release,
    and the whole walk runs with the ledger locked (interrupts held back),
    so it cannot leak; on any error it is unlocked and released before the error
    propagates. Mapping needs /dev/mem (root) on a Pi; map_memory=False
    skips it.
    """
    backend = backend if backend is not None else get_backend()
    backend.require_memory_tags()
    length = _check_size(size)
    flags = MemFlag(int(flags))
    lc = Lifecycle(length, flags)
    ledger = backend.ledger
    with ledger.locked(), ledger.recording(length, flags) as pending:
        handle = _call(backend, lc, "allocate", Tag.ALLOCATE_MEMORY, length, PAGE_SIZE, int(flags))
        if handle == 0:
            raise backend.mailbox.exhausted(length)
        locked = released = False
        entry: Allocation | None = None
        try:
            entry = pending.commit(handle)
            bus = _call(backend, lc, "lock", Tag.LOCK_MEMORY, handle)
            if bus == 0:
                raise GpuMemoryError(f"lock of handle {handle} failed: the firmware returned bus address 0")
            locked = True
            entry = ledger.locked_at(entry, bus)
            if map_memory:
                lc.steps.append(Step("map", _map_and_touch(backend, bus, length, flags)))
            status = _call(backend, lc, "unlock", Tag.UNLOCK_MEMORY, handle)
            locked = status != 0
            if status:
                raise GpuMemoryError(f"unlock of handle {handle} failed: status {status}")
            status = _call(backend, lc, "release", Tag.RELEASE_MEMORY, handle)
            released = status == 0
            if status:
                raise GpuMemoryError(f"release of handle {handle} failed: status {status}")
        finally:
            if not released:
                released = _give_back(backend, handle, locked)
            if entry is not None and released:
                ledger.forget(entry)
    return lc


def _map_and_touch(backend: Backend, bus: int, length: int, flags: MemFlag) -> str:
    """Map the block, read its first word, write a pattern and read it back."""
    phys = bus_to_phys(bus)
    mapping = backend.transport.map_physical(phys, length)
    try:
        first = struct.unpack_from("<I", mapping, 0)[0]
        pattern = 0xA5A5A5A5
        struct.pack_into("<I", mapping, 0, pattern)
        back = struct.unpack_from("<I", mapping, 0)[0]
    finally:
        mapping.close()
    if back != pattern:
        raise GpuMemoryError(f"wrote 0x{pattern:08X} at physical 0x{phys:08X} and read back 0x{back:08X}")
    # The wiki says memory is all ones unless ZERO or NO_INIT is given; the firmware's own
    # header comments describe the default differently, so a live first word is the evidence.
    init = "zeroed (ZERO)" if flags & MemFlag.ZERO else ("not initialised (NO_INIT)" if flags & MemFlag.NO_INIT
                                                       else "all ones by the wiki (the default)")
    return (f"mapped {length} bytes at physical 0x{phys:08X}; first word 0x{first:08X}, {init}; "
            f"wrote 0x{pattern:08X}, read back 0x{back:08X}")


# --- a process that dies holding GPU memory -----------------------------------

_CHILD = """
import sys, time
from pimem.memory.backend import get_backend
from pimem.memory.buffer import GpuBuffer
from pimem.firmware.memflags import MemFlag
backend = get_backend()
held = [GpuBuffer({size}, MemFlag.DIRECT | MemFlag.ZERO, backend=backend) for _ in range({count})]
for b in held:
    print(b.handle, b.bus_address, flush=True)
print("holding", flush=True)
time.sleep(600)
"""


@dataclass
class LeakDemo:
    """leak_demo()'s record: one row per stage, and the child's handles."""

    handles: list[int]
    size: int
    stages: pd.DataFrame


def _still_allocated(backend: Backend, held: list[tuple[int, int]]) -> int:
    """How many of (handle, bus) still lock at that bus address (probe: lock, then unlock)."""
    n = 0
    for handle, bus in held:
        try:
            got = backend.mailbox.lock(handle)
        except (GpuMemoryError, MailboxError):
            continue
        with contextlib.suppress(PimemError):
            backend.mailbox.unlock(handle)
        n += got == bus
    return n


def _free_heap(backend: Backend) -> str:
    # What `vcgencmd get_mem reloc` prints: the free part of the firmware's heap, in whole MiB.
    # A firmware that answers 0 for reloc_total does not know the names (it answers 0 for any).
    free = backend.mailbox.get_mem("reloc") if backend.mailbox.reloc_total() else None
    return "n/a (the firmware does not report it)" if free is None else f"{free // MiB} MiB"


def _child_env(backend: Backend) -> dict[str, str]:
    env = dict(os.environ)
    env["PIMEM_BACKEND"] = backend.name
    env["PIMEM_LEDGER_DIR"] = str(backend.ledger.directory)
    fw = getattr(backend.transport, "firmware", None)
    if fw is not None:
        env["PIMEM_EMULATOR_DIR"] = str(fw.state_dir)
    root = str(REPO)   # the folder that holds pimem/
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def leak_demo(backend: Backend | None = None, size: int = 4 * MiB, count: int = 2,
              timeout: float = 60.0) -> LeakDemo:
    """A child process allocates GPU memory and is SIGKILLed; then pimem reclaims it.

    Stages: before; child holding; after SIGKILL (the firmware still holds
    the memory: each handle still locks at its address); after reclaim
    (pimem's ledger reclaim, as done when any process opens the mailbox).
    Whatever happens, the child is killed and a reclaim runs before
    returning, so nothing stays allocated.
    """
    backend = backend if backend is not None else get_backend()
    backend.require_memory_tags()
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 16:
        raise UsageError(f"count must be 1..16 allocations, got {count!r}")
    length = _check_size(size)
    rows = []

    def stage(name: str, held: str, ledger_note: str) -> None:
        rows.append({"stage": name, "child's allocations held": held,
                     "ledger entries": ledger_note, "free GPU heap (get_mem reloc)": _free_heap(backend)})

    def child_entries() -> int:
        # The ledger entries that name one of the child's handles.
        return sum(1 for e in backend.ledger.entries() if e.handle in handles)

    handles: list[int] = []
    held: list[tuple[int, int]] = []
    stage("before", "none", f"{len(backend.ledger.entries())} (all of live processes)")
    p = subprocess.Popen([sys.executable, "-c", _CHILD.format(size=length, count=count)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=_child_env(backend))
    reclaimed: list[Allocation] = []
    try:
        # The timer kills a child that hangs, so reading its lines cannot block forever.
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            lines = []
            for line in p.stdout:
                if line.strip() == "holding":
                    break
                lines.append(line)
            else:
                lines = None  # the child ended (or was killed by the timer) before holding
            if lines is not None:
                held = [tuple(map(int, ln.split())) for ln in lines]  # type: ignore[misc]
                handles = [h for h, _ in held]
                stage("child running", f"{len(held)} x {length / MiB:g} MiB", f"{child_entries()} of the child's")
        finally:
            timer.cancel()
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait(timeout=timeout)
            err = p.stderr.read()
            p.stdout.close()
            p.stderr.close()
        if lines is None or len(held) != count:
            # The last line of its stderr is the exception that stopped it.
            last = next((ln for ln in reversed(err.strip().splitlines()) if ln.strip()), "no error output")
            raise PimemError(f"the child process did not report holding {count} allocation(s) within "
                             f"{timeout:g} s (exit code {p.returncode}): {last}")
        stage("after SIGKILL", f"{_still_allocated(backend, held)} still locked at their addresses",
              f"{child_entries()} of a dead process")
        reclaimed = backend.ledger.reclaim(backend.mailbox)
        mine = [e for e in reclaimed if e.handle in handles]
        stage("after reclaim", f"{count - len(mine)} (reclaim released {len(mine)})",
              f"{child_entries()} of the child's")
    finally:
        # Whatever went wrong above, the child is dead now: take its memory back.
        if not reclaimed:
            with contextlib.suppress(PimemError):
                backend.ledger.reclaim(backend.mailbox)
    return LeakDemo(handles, length, pd.DataFrame(rows))


__all__ = [
    "QUERY_TAGS", "Exchange", "LeakDemo", "Lifecycle", "Step", "annotate", "exchange", "leak_demo", "lifecycle",
    "send", "side_by_side",
]
