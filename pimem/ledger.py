"""The ledger of live GPU allocations, so that none outlives its process.

The firmware never frees a mailbox allocation when the process that made
it dies (the vcio release handler only drops a module reference;
markondej/fm_transmitter#107). So every allocation is written down here
(pid, process start time, handle, size, flags, bus address, time), one
file per allocation, in a directory that a reboot clears (/run); and the
next process to open the mailbox releases what dead processes left.

Every change of who owns a handle (allocate + record, release + forget,
reclaim) happens under one lock file, so a reclaimer can never release a
handle that a live process has since been given.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from .exc import GpuMemoryError, MailboxError, PimemError
from .mailbox import Mailbox


@dataclass(frozen=True)
class Allocation:
    pid: int
    start_time: int | None   # from /proc/PID/stat, to tell a reused pid from the original
    handle: int
    size: int
    flags: int
    bus: int
    time: float
    backend: str

    @property
    def filename(self) -> str:
        return f"{self.pid}-{self.handle}.json"


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot), None where unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


def process_alive(pid: int, start_time: int | None) -> bool:
    """Is the process that wrote an entry still running (and not a reused pid)?"""
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


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back for a few lines that must not be split.

    Between the firmware handing out a handle and the ledger recording it
    (or between unlock and release), an interrupt would leak the memory.
    New signals are blocked in the kernel; one Python already caught but
    has not yet acted on is parked by a stand-in handler. Both are
    delivered as soon as the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    parked: list[int] = []
    # Swap the handler first: signal.signal() runs any handler already due,
    # and a KeyboardInterrupt from it must not leave the mask blocked.
    old_handler = signal.signal(signal.SIGINT, lambda signum, frame: parked.append(signum))
    try:
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            yield
        finally:
            # Unblock first: what was pending trips now and is parked below.
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    finally:
        signal.signal(signal.SIGINT, old_handler)
    if parked and callable(old_handler):
        old_handler(signal.SIGINT, None)  # the default one raises KeyboardInterrupt here


class Ledger:
    """Live allocations of every pimem process on this board (or emulator)."""

    def __init__(self, directory: str | os.PathLike, backend: str) -> None:
        self.directory = Path(directory)
        self.backend = backend
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PimemError(
                f"cannot create the allocation ledger {self.directory}: {e.strerror}; "
                "set PIMEM_LEDGER_DIR to a writable directory"
            ) from None
        self._lock_path = self.directory / "ledger.lock"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the ledger (across processes), with interrupts held back."""
        with deferred_interrupts(), open(self._lock_path, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def record(self, handle: int, size: int, flags: int, bus: int) -> Allocation:
        """Write an entry for a fresh allocation (call with the ledger locked)."""
        pid = os.getpid()
        entry = Allocation(pid, process_start_time(pid), handle, size, int(flags), bus, time.time(), self.backend)
        path = self.directory / entry.filename
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(entry)))
        os.replace(tmp, path)
        return entry

    def forget(self, entry: Allocation) -> None:
        """Drop the entry of an allocation that has been released."""
        with contextlib.suppress(FileNotFoundError):
            (self.directory / entry.filename).unlink()

    def entries(self) -> list[Allocation]:
        out = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                out.append(Allocation(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue  # a stray or half-written file is not an allocation
        return out

    def reclaim(self, mailbox: Mailbox) -> list[Allocation]:
        """Release every allocation whose process is gone; returns what was freed."""
        freed = []
        with self.locked():
            entries = self.entries()
            live_handles = {e.handle for e in entries if process_alive(e.pid, e.start_time)}
            for e in entries:
                if e.handle in live_handles:
                    if not process_alive(e.pid, e.start_time):
                        # A dead entry for a handle a live process now owns:
                        # the dead one did release it, then died before forgetting.
                        self.forget(e)
                    continue
                if self._release_if_same(mailbox, e):
                    freed.append(e)
                self.forget(e)
        return freed

    @staticmethod
    def _release_if_same(mailbox: Mailbox, e: Allocation) -> bool:
        # Only release a handle that still locks at the recorded address:
        # otherwise it was freed already and may belong to someone else now.
        try:
            bus = mailbox.lock(e.handle)
        except (GpuMemoryError, MailboxError):
            return False
        try:
            mailbox.unlock(e.handle)   # our probe's lock
            if bus != e.bus:
                return False
            with contextlib.suppress(GpuMemoryError):
                mailbox.unlock(e.handle)   # the dead process's lock, if it still held one
            mailbox.release(e.handle)
            return True
        except (GpuMemoryError, MailboxError):
            return False
