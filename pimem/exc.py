"""Every error pimem raises, in one module (as gpiozero does with gpiozero.exc).

Each message names what went wrong, the value involved, and what to do.
"""
from __future__ import annotations


class PimemError(Exception):
    """Base class: catch this to catch anything pimem raises on purpose."""


class PimemWarning(UserWarning):
    """Base class of pimem's warnings."""


class BackendNotice(PimemWarning):
    """Tells which backend was picked when none was asked for."""


# --- mailbox protocol and transport ---------------------------------------

class MailboxError(PimemError):
    """The firmware's answer was missing, malformed or an error."""


class MailboxUnavailable(MailboxError):
    """There is no mailbox to talk to (no /dev/vcio, or a board without the tags)."""


class MailboxPermissionError(MailboxError):
    """/dev/vcio or /dev/mem exists but this process may not open it."""


# --- state on disk --------------------------------------------------------

class UnsafeDirectory(PimemError):
    """A state or ledger directory that another user could steer (symlink, foreign, writable)."""


class CorruptState(PimemError):
    """The emulator's state files are damaged or missing."""


class FolderError(PimemError):
    """A folder pimem must write in cannot take the file: full, read-only, or not this user's to write."""


class DiskFull(FolderError):
    """The folder's file system has no room left (ENOSPC, or a quota)."""


# --- GPU memory -----------------------------------------------------------

class GpuMemoryError(PimemError):
    """A GPU memory operation (allocate, lock, map, unlock, release) failed."""


class GpuMemoryExhausted(GpuMemoryError):
    """The firmware returned handle 0: it has not got the memory asked for."""


class BufferClosedError(GpuMemoryError):
    """A GpuBuffer was used after close()."""


class UnsupportedBoard(PimemError):
    """This board's firmware cannot give the ARM GPU memory through the mailbox."""


class RevisionError(PimemError, ValueError):
    """A board revision code that cannot be decoded."""


class AddressError(PimemError, ValueError):
    """A bus address outside 32 bits, or otherwise not a bus address."""


# --- benchmarks and data --------------------------------------------------

class BenchmarkError(PimemError):
    """A benchmark could not run, or its result failed verification."""


class DataError(PimemError):
    """A recorded data file does not follow the schema in data/README.md.

    `problems` lists each problem as its own line (file, row, column, what is wrong), for code
    that reports them one by one.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems) if problems is not None else [message]


class UsageError(PimemError, ValueError):
    """A bad argument from the user (size, benchmark name, option)."""


class ViewsOutliveBuffer(PimemWarning):
    """A GpuBuffer was closed while numpy views of it were alive."""


class NotebookError(PimemError):
    """A notebook could not be executed, rendered or converted."""
