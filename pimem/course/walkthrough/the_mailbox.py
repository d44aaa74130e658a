"""Helpers for notebooks/03-the-mailbox.ipynb: property messages word by word, the memory tags, a leak."""
from __future__ import annotations

# Sources for the word layout and codes: the firmware wiki "Mailbox
# property interface" (raspberrypi/firmware), include/soc/bcm2835/
# raspberrypi-firmware.h, OpenBSD sys/dev/ic/bcm2835_vcprop.h (bit 31 of
# a tag's request/response word).

import contextlib
import mmap
import os
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import pandas as pd

from ...memory.backend import Backend, get_backend
from ...firmware.board import decode_revision
from ...exc import GpuMemoryError, MailboxError, PimemError, RevisionError, UsageError
from ...memory.ledger import Allocation
from ...firmware.memflags import BusAddress, MemFlag, bus_to_phys, flag_names
from ...firmware import protocol
from ...firmware.protocol import (
    END_TAG,
    REQUEST,
    RESPONSE_PARSE_ERROR,
    RESPONSE_SUCCESS,
    TAG_RESPONSE,
    WORD,
    Tag,
    build_request,
)
from ...firmware.transport import RecordingTransport
from ...units import MiB
from ._shared import whole_pages
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


def _known_tag(tag: int) -> Tag | None:
    try:
        return Tag(tag)
    except ValueError:
        return None


def _tag_label(tag: int) -> str:
    known = _known_tag(tag)
    if known is None:
        return f"tag 0x{tag:08X}: a tag pimem does not know (the firmware ignores unknown tags)"
    return f"tag 0x{tag:08X}: {_SHORT[known]}"


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
    if len(words) < 3:
        raise UsageError(f"a property message has at least 3 words (size, code, end tag); this one has {len(words)}")
    size_note = "" if words[0] == len(buf) else f" (but the buffer holds {len(buf)}: malformed)"
    meanings = [f"buffer size: {words[0]} bytes{size_note}", _status_meaning(words[1])]
    answered = bool(words[1] & TAG_RESPONSE)
    ended = False
    while not ended and len(meanings) < len(words):
        i = len(meanings)
        if words[i] == END_TAG:
            meanings += ["end tag"] + ["padding after the end tag"] * (len(words) - i - 1)
            ended = True
        elif i + 3 > len(words):
            meanings += ["truncated tag header: the message ends inside it"] * (len(words) - i)
            ended = True
        else:
            meanings += _tag_meanings(words, i, answered)
    rows = [(i * WORD, f"0x{w:08X}", m) for i, (w, m) in enumerate(zip(words, meanings))]
    if not ended:
        rows.append((len(words) * WORD, "", "(no end tag: malformed)"))
    return pd.DataFrame(rows, columns=["offset", "hex", "meaning"])


def _tag_meanings(words: list[int], i: int, answered: bool) -> list[str]:
    """What each word of the tag at word `i` means: its header, then its values (as far as the message goes)."""
    tag, value_size, code = words[i:i + 3]
    if code & TAG_RESPONSE:
        length: int | None = code & ~TAG_RESPONSE
        code_meaning = f"request/response code (bit 31 = response): set, answer is {length} bytes"
    elif answered:
        length = 0
        code_meaning = "request/response code (bit 31 = response): clear, the firmware did not answer this tag"
    else:
        length = None
        code_meaning = "request/response code (bit 31 = response): clear, a request"
    known = _known_tag(tag)
    names = () if known is None else (_REQUEST_VALUES if length is None else _RESPONSE_VALUES).get(known, ())
    values = words[i + 3:i + 3 + -(-value_size // WORD)]
    return [_tag_label(tag), f"value buffer size: {value_size} bytes", code_meaning,
            *(_value_word_meaning(tag, names, k, v, length) for k, v in enumerate(values))]


def _value_word_meaning(tag: int, names: tuple[str, ...], k: int, value: int, length: int | None) -> str:
    """Value word `k` of a tag: a request's (length None) or an answer's `length` bytes, or neither."""
    if length is None and k >= len(names):
        return "room for the answer (the firmware writes over it)"
    if length is None:
        return _value_meaning(tag, names[k], value)
    if k * WORD < length:
        return _value_meaning(tag, names[k], value) if k < len(names) else f"answer word {k}"
    return "not part of the answer: the request's own word, left as it was"


# --- sending a message ------------------------------------------------------

class Exchange(protocol.Exchange):
    """A request as sent and the same buffer as the firmware answered it."""

    __slots__ = ()

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


_STEP_NAMES = {Tag.ALLOCATE_MEMORY: "allocate", Tag.LOCK_MEMORY: "lock", Tag.UNLOCK_MEMORY: "unlock",
               Tag.RELEASE_MEMORY: "release"}


def lifecycle(size: int = 4096, flags: MemFlag | int = MemFlag.DIRECT | MemFlag.ZERO,
              backend: Backend | None = None, map_memory: bool = True) -> Lifecycle:
    """Allocate, lock, map (write and read back), unlock, release, as raw messages.

    The memory is held as a GpuBuffer's is (Backend.allocation: in the ledger from the
    firmware's answer to the release, given back on every path), through a transport that
    records each message and its answer. Mapping needs /dev/mem (root) on a Pi;
    map_memory=False skips it.
    """
    backend = backend if backend is not None else get_backend()
    backend.require_memory_tags()
    length = whole_pages(size)
    flags = MemFlag(int(flags))
    log = RecordingTransport(backend.transport)
    mapped = None
    with backend.through(log).allocation(length, flags, map=map_memory) as held:
        if map_memory:
            mapped = Step("map", _touch(held.mapping, held.bus, length, flags))
    lc = Lifecycle(length, flags)
    for request, response in log.exchanges:
        ex = Exchange(request, response)
        tag = Tag(ex.tag)
        lc.steps.append(Step(_STEP_NAMES[tag], _value_meaning(tag, _RESPONSE_VALUES[tag][0], ex.values()[0]), ex))
        if tag == Tag.LOCK_MEMORY and mapped is not None:
            lc.steps.append(mapped)
    return lc


def _touch(mapping: mmap.mmap, bus: int, length: int, flags: MemFlag) -> str:
    """Read the mapped block's first word, write a pattern and read it back: what the map step says."""
    phys = bus_to_phys(bus)
    first = struct.unpack_from("<I", mapping, 0)[0]
    pattern = 0xA5A5A5A5
    struct.pack_into("<I", mapping, 0, pattern)
    back = struct.unpack_from("<I", mapping, 0)[0]
    if back != pattern:
        raise GpuMemoryError(f"wrote 0x{pattern:08X} at physical 0x{phys:08X} and read back 0x{back:08X}")
    # The wiki says memory is all ones unless ZERO or NO_INIT is given; the firmware's header
    # rtos_common_mem.h says a block without ZERO gets each word set to MEM_HANDLE_INVALID, which it
    # defines as 0. The two disagree, so a live first word is the evidence.
    init = "zeroed (ZERO)" if flags & MemFlag.ZERO else ("not initialised (NO_INIT)" if flags & MemFlag.NO_INIT
                                                       else "all ones by the wiki, 0 by rtos_common_mem.h (the default)")
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
    length = whole_pages(size)
    rows = []
    handles: list[int] = []

    def stage(name: str, held: str, ledger_note: str) -> None:
        rows.append({"stage": name, "child's allocations held": held,
                     "ledger entries": ledger_note, "free GPU heap (get_mem reloc)": _free_heap(backend)})

    def child_entries() -> int:
        # The ledger entries that name one of the child's handles.
        return sum(1 for e in backend.ledger.entries() if e.handle in handles)

    stage("before", "none", f"{len(backend.ledger.entries())} (all of live processes)")
    reclaimed: list[Allocation] = []
    try:
        with _child_holding(backend, length, count, timeout) as held:
            handles += [h for h, _ in held]
            stage("child running", f"{len(held)} x {length / MiB:g} MiB", f"{child_entries()} of the child's")
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


@contextlib.contextmanager
def _child_holding(backend: Backend, length: int, count: int, timeout: float) -> Iterator[list[tuple[int, int]]]:
    """A child process holding `count` allocations of `length` bytes: their (handle, bus); SIGKILLed on leaving.

    PimemError, with the last line of its stderr, if it does not report them within `timeout` seconds.
    """
    p = subprocess.Popen([sys.executable, "-c", _CHILD.format(size=length, count=count)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=_child_env(backend))
    # The timer kills a child that hangs, so reading its lines cannot block forever.
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    held = None
    try:
        held = _reported(p.stdout)
        if held is not None and len(held) == count:
            yield held
    finally:
        timer.cancel()
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait(timeout=timeout)
        err = p.stderr.read()
        p.stdout.close()
        p.stderr.close()
    if held is None or len(held) != count:
        # The last line of its stderr is the exception that stopped it.
        last = next((ln for ln in reversed(err.strip().splitlines()) if ln.strip()), "no error output")
        raise PimemError(f"the child process did not report holding {count} allocation(s) within "
                         f"{timeout:g} s (exit code {p.returncode}): {last}")


def _reported(lines: IO[str]) -> list[tuple[int, int]] | None:
    """The (handle, bus) lines the child prints before "holding"; None if it ends (or is killed) first."""
    held = []
    for line in lines:
        if line.strip() == "holding":
            return held
        handle, bus = map(int, line.split())
        held.append((handle, bus))
    return None


__all__ = [
    "QUERY_TAGS", "Exchange", "LeakDemo", "Lifecycle", "Step", "annotate", "exchange", "leak_demo", "lifecycle",
    "send", "side_by_side",
]
