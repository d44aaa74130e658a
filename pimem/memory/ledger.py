"""The ledger of live GPU allocations, so that none outlives its process.

The firmware never frees a mailbox allocation when the process that made
it dies (the vcio release handler only drops a module reference;
markondej/fm_transmitter#107). So every allocation is written down here
(pid, handle, size, flags, bus address, time, and its owner file), one
file per allocation, in a private directory that a reboot clears (/run);
and the next process to open the mailbox releases what dead processes left.

Liveness is what the kernel guarantees, not a pid: each process holds an
flock on its own owner file for as long as it lives (the kernel drops it at
death, whatever killed it), and reclaim frees only entries whose owner lock
it can take, and only handles the firmware confirms (they still lock at the
recorded address). Pids and start times are kept for people to read.

Every change of who owns a handle (allocate + record, release + forget,
reclaim) happens under one lock file, so a reclaimer can never release a
handle that a live process has since been given.

The window SIGKILL leaves: between the firmware's allocate answer and the
entry reaching the disk (a few microseconds; the entry is written straight
after allocate, before lock). A kill there leaks the handle until reboot:
no tag lists the firmware's handles, so nothing can find it afterwards.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Iterator

from ..paths import pimem_command
from ..exc import GpuMemoryError, MailboxError
from ..firmware.mailbox import Mailbox
from ..safefs import FileLock, open_file, private_dir, read_regular, write_file


@dataclass(frozen=True)
class Allocation:
    pid: int
    start_time: int | None   # from /proc/PID/stat: for people; liveness is the owner lock
    handle: int
    size: int
    flags: int
    bus: int | None          # None between allocate and lock
    time: float
    backend: str
    owner: str | None = None  # the owner file whose flock says the process lives

    @property
    def filename(self) -> str:
        return f"{self.pid}-{self.handle}.json"


_U32 = 2**32
_OWNER_RE = re.compile(r"^owner-[0-9]+-[0-9a-f]{16}\.lock$")
_ENTRY_RE = re.compile(r"^([0-9]+)-([0-9]+)\.json$")


def _is_int(v: object, lo: int, hi: int) -> bool:
    return type(v) is int and lo <= v < hi


def parse_entry(data: bytes, name: str) -> Allocation:
    """An entry from its file's bytes; ValueError says what is wrong with it."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"not JSON ({e})") from None
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    known = {f.name for f in fields(Allocation)}
    if set(raw) - known or not {"pid", "handle", "size", "flags", "bus"} <= set(raw):
        raise ValueError(f"keys {sorted(raw)} are not an allocation's")
    checks = [("pid", _is_int(raw.get("pid"), 1, 2**22 + 1)), ("handle", _is_int(raw.get("handle"), 1, _U32)),
              ("size", _is_int(raw.get("size"), 1, _U32)), ("flags", _is_int(raw.get("flags"), 0, _U32)),
              ("bus", raw.get("bus") is None or _is_int(raw.get("bus"), 0, _U32)),
              ("start_time", raw.get("start_time") is None or _is_int(raw.get("start_time"), 0, 2**63)),
              ("time", type(raw.get("time", 0.0)) in (int, float)),
              ("backend", isinstance(raw.get("backend", ""), str)),
              ("owner", raw.get("owner") is None or (isinstance(raw["owner"], str) and _OWNER_RE.match(raw["owner"])))]
    bad = [k for k, ok in checks if not ok]
    if bad:
        raise ValueError(f"bad {', '.join(bad)}: {', '.join(f'{k}={raw.get(k)!r:.40}' for k in bad)}")
    entry = Allocation(**{"start_time": None, "time": 0.0, "backend": "", **raw})
    m = _ENTRY_RE.match(name)
    if m and (int(m.group(1)), int(m.group(2))) != (entry.pid, entry.handle):
        raise ValueError(f"its name says pid {m.group(1)} handle {m.group(2)}, its content pid {entry.pid} "
                         f"handle {entry.handle}")
    return entry


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot), None where unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def process_alive(pid: int, start_time: int | None) -> bool:
    """Is the process that wrote an entry still running (and not a reused pid)?

    Only for entries written before owner files existed: a pid can be
    reused, and /proc's start time reads differently under emulation.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if start_time is None:
        return True
    now = process_start_time(pid)
    return now is None or now == start_time


_PARKED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back for a few lines that must not be split.

    Between the firmware handing out a handle and the ledger recording it
    (or between unlock and release), an interrupt would leak the memory.
    New signals are blocked in this thread; Python's handlers (which always
    run in the main thread, whichever thread the kernel delivered a signal
    to, e.g. a BLAS worker) are swapped for stand-ins that park the signal.
    Both are delivered as soon as the block ends. SIGTERM gets a Python
    handler from pimem.memory.buffer (release everything, then die of SIGTERM), so
    it always passes through here rather than killing the process mid-section.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    parked: list[int] = []
    # Swap the handlers first: signal.signal() runs any handler already due,
    # and a KeyboardInterrupt from it must not leave the mask blocked.
    old_handlers: dict[int, object] = {}
    try:
        for signum in _PARKED:
            old_handlers[signum] = signal.signal(signum, lambda n, frame: parked.append(n))
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(_PARKED))
        try:
            yield
        finally:
            # Unblock first: what was pending trips now and is parked below.
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    finally:
        for signum, handler in old_handlers.items():
            signal.signal(signum, handler)
    for signum in dict.fromkeys(parked):
        handler = old_handlers.get(signum)
        if callable(handler):
            handler(signum, None)   # the default SIGINT one raises KeyboardInterrupt here
        elif handler == signal.SIG_DFL:
            os.kill(os.getpid(), signum)   # what would have happened, now that it is safe


_owners: dict[tuple[str, int], str] = {}   # (ledger dir, pid) -> owner file name
_owner_fds: list[int] = []                 # held open (and flocked) until the process ends
_owner_guard = threading.Lock()
_start_times: dict[int, int | None] = {}   # read once per process: /proc costs time in the SIGKILL window


def _warn(message: str) -> None:
    print(f"pimem: {message}", file=sys.stderr)


class Ledger:
    """Live allocations of every pimem process on this board (or emulator)."""

    def __init__(self, directory: str | os.PathLike, backend: str) -> None:
        self.backend = backend
        self.directory = private_dir(directory, "the allocation ledger",
                                     "set PIMEM_LEDGER_DIR to a directory of your own")
        self._lock = FileLock(self.directory / "ledger.lock")
        self._warned: set[str] = set()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the ledger (across processes), with interrupts held back."""
        with deferred_interrupts(), self._lock.held():
            yield

    # --- this process's owner file ---
    def _owner(self) -> str:
        """The owner file of this process, created and flocked on first use."""
        key = (str(self.directory), os.getpid())
        with _owner_guard:
            name = _owners.get(key)
            if name is None:
                name = f"owner-{os.getpid()}-{secrets.token_hex(8)}.lock"
                fd = open_file(self.directory / name, os.O_RDWR | os.O_CREAT | os.O_EXCL)
                fcntl.flock(fd, fcntl.LOCK_EX)   # ours alone: the file is new
                _owner_fds.append(fd)
                _owners[key] = name
                _start_times[os.getpid()] = process_start_time(os.getpid())
        return name

    def _owner_dead(self, owner: str) -> bool:
        """True if no process holds `owner`'s flock (its owner died), or the file is gone."""
        try:
            fd = open_file(self.directory / owner, os.O_RDWR | os.O_NONBLOCK)
        except FileNotFoundError:
            return True
        except OSError:
            return False   # cannot tell: believe it alive
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:   # EWOULDBLOCK: held, so alive; anything else: cannot tell, so alive
            return False
        else:
            return True
        finally:
            os.close(fd)

    def live_owners(self) -> list[int]:
        """Pids of the other processes that hold GPU memory through this ledger now (their owner
        file is flocked: they live, and may hold handles)."""
        pids = []
        for path in sorted(self.directory.iterdir()):
            m = _OWNER_RE.match(path.name)
            if m and path.name not in _owners.values() and not self._owner_dead(path.name):
                pids.append(int(path.name.split("-")[1]))
        return pids

    def is_live(self, entry: Allocation) -> bool:
        if entry.owner is None:   # written by an older pimem
            return process_alive(entry.pid, entry.start_time)
        return not self._owner_dead(entry.owner)

    # --- entries ---
    def record(self, handle: int, size: int, flags: int, bus: int | None) -> Allocation:
        """Write an entry for an allocation already made (call with the ledger locked).

        For code that gets the handle from elsewhere; a fresh allocation records through
        `recording()`, which is ready before the firmware answers.
        """
        with self.recording(size, flags) as pending:
            entry = pending.commit(handle)
        return entry if bus is None else self.locked_at(entry, bus)

    @contextlib.contextmanager
    def recording(self, size: int, flags: int) -> Iterator["PendingEntry"]:
        """An entry made ready before allocate: `commit(handle)` then costs one write.

        Use inside `locked()`: ``with ledger.recording(n, f) as pending: h = allocate(...);
        entry = pending.commit(h)``. Everything but the handle is serialised and its
        temporary file opened first, so the gap after the firmware's answer, where a
        SIGKILL leaks the handle, is one write. Uncommitted, the temporary is removed.
        """
        pending = PendingEntry(self, size, int(flags))
        try:
            yield pending
        finally:
            pending.close()

    def locked_at(self, entry: Allocation, bus: int) -> Allocation:
        """The entry, now with the bus address its lock returned (call with the ledger locked)."""
        entry = replace(entry, bus=bus)
        self._write(entry)
        return entry

    def _write(self, entry: Allocation) -> None:
        write_file(self.directory / entry.filename, json.dumps(asdict(entry)).encode())

    def forget(self, entry: Allocation) -> None:
        """Drop the entry of an allocation that has been released."""
        with contextlib.suppress(FileNotFoundError):
            (self.directory / entry.filename).unlink()

    def _scan(self) -> tuple[list[tuple[Path, Allocation]], list[Path]]:
        """(file, entry) for every entry, complete temporaries included, and the files that are not
        entries (half-written temporaries, malformed entries: warned about once)."""
        good, bad = [], []
        for path in sorted(self.directory.iterdir()):
            name = path.name
            is_tmp = name.startswith(".") and name.endswith(".tmp") and ".json." in name
            if not (name.endswith(".json") or is_tmp):
                continue
            target = name[1:name.index(".json.") + 5] if is_tmp else name
            try:
                good.append((path, parse_entry(read_regular(path, limit=4096), target)))
            except (OSError, ValueError) as e:
                bad.append(path)
                if not is_tmp and name not in self._warned:   # a temporary may be mid-write
                    self._warned.add(name)
                    _warn(f"ignoring the ledger entry {path}: {e}; '{pimem_command('cleanup')}' removes it once no "
                          "live process can own it")
        return good, bad

    def entries(self) -> list[Allocation]:
        """The allocations recorded, one per handle (a temporary beside its entry is the newer)."""
        return self._newest(self._scan()[0])

    @staticmethod
    def _newest(scanned: list[tuple[Path, Allocation]]) -> list[Allocation]:
        best: dict[str, Allocation] = {}
        for path, entry in scanned:
            if entry.filename not in best or path.name.endswith(".tmp"):
                best[entry.filename] = entry
        return sorted(best.values(), key=lambda e: (e.pid, e.handle))

    def reclaim(self, mailbox: Mailbox) -> list[Allocation]:
        """Release every allocation whose process is gone; returns what was freed."""
        freed = []
        with self.locked():
            scanned, bad = self._scan()
            entries = self._newest(scanned)
            live = [e for e in entries if self.is_live(e)]
            live_handles = {e.handle for e in live}
            for e in entries:
                if e in live:
                    continue
                if e.handle not in live_handles and self._release_if_same(mailbox, e):
                    freed.append(e)
                # Otherwise a dead entry for a handle a live process now owns: the dead
                # one did release it, then died before forgetting. Either way: gone.
                self.forget(e)
            self._tidy(scanned, bad, live_owners={e.owner for e in live if e.owner})
        return freed

    def _tidy(self, scanned: list[tuple[Path, Allocation]], bad: list[Path], live_owners: set[str]) -> None:
        """Remove temporaries and malformed entries no live process can own, and dead owners' files."""
        for path, entry in scanned:
            if path.name.endswith(".tmp") and entry.owner not in live_owners:
                with contextlib.suppress(OSError):
                    path.unlink()
        for path in bad:
            # Unreadable as an entry: nobody's allocation can be proved by it. Remove it once
            # no live process could be writing it (the pid in its name is dead, or it has none).
            m = _ENTRY_RE.match(path.name)
            if m is None or not process_alive(int(m.group(1)), None):
                with contextlib.suppress(OSError):
                    path.unlink()
        for path in self.directory.iterdir():
            name = path.name
            if (_OWNER_RE.match(name) and name not in live_owners and name not in _owners.values()
                    and self._owner_dead(name)):
                with contextlib.suppress(OSError):
                    path.unlink()

    @staticmethod
    def _release_if_same(mailbox: Mailbox, e: Allocation) -> bool:
        # Only release a handle that still locks at the recorded address:
        # otherwise it was freed already and may belong to someone else now.
        # An entry without an address (killed between allocate and lock) names a
        # handle no live entry owns, under the ledger lock: it is still the dead one's.
        try:
            bus = mailbox.lock(e.handle)
        except (GpuMemoryError, MailboxError):
            return False
        try:
            mailbox.unlock(e.handle)   # our probe's lock
            if e.bus is not None and bus != e.bus:
                return False
            if e.bus is not None:
                with contextlib.suppress(GpuMemoryError):
                    mailbox.unlock(e.handle)   # the dead process's lock, if it still held one
            mailbox.release(e.handle)
            return True
        except (GpuMemoryError, MailboxError):
            return False


# stress_kill.py --seed 1: 0 of 100 allocate-loop kills leaked with it, 10 with the entry written after the answer.
class PendingEntry:
    """A ledger entry waiting for its handle (see Ledger.recording)."""

    _MARK = "271828182845"   # stands in for the handle in the template; replaced by digits

    def __init__(self, ledger: Ledger, size: int, flags: int) -> None:
        self.ledger = ledger
        pid = os.getpid()
        owner = ledger._owner()
        self._entry = Allocation(pid, _start_times.get(pid), 0, size, flags, None, time.time(), ledger.backend, owner)
        template = json.dumps(asdict(self._entry) | {"handle": self._MARK})
        head, tail = template.split(f'"{self._MARK}"')
        self._head, self._tail = head.encode(), tail.encode()
        self._tmp = ledger.directory / f".{pid}-pending.json.{secrets.token_hex(8)}.tmp"
        self._fd: int | None = open_file(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        self.entry: Allocation | None = None

    def commit(self, handle: int) -> Allocation:
        """Record `handle` (one write), then move the entry to its name."""
        if type(handle) is not int or not 0 < handle < _U32:
            raise MailboxError(f"cannot record handle {handle!r}")
        assert self._fd is not None, "commit() once"
        os.write(self._fd, self._head + b"%d" % handle + self._tail)   # complete: reclaim reads it
        os.close(self._fd)
        self._fd = None
        self.entry = replace(self._entry, handle=handle)
        os.replace(self._tmp, self.ledger.directory / self.entry.filename)
        return self.entry

    def close(self) -> None:
        if self._fd is not None:   # never committed: nothing was allocated
            os.close(self._fd)
            self._fd = None
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
