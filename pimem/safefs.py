"""Files pimem writes, safe against other users and against its own finalizers.

pimem runs as root on a Pi, and its state (the ledger, the emulator) lives in
directories other users may be able to name in advance (/tmp/pimem-UID). So:

- `private_dir` creates a directory 0700 and refuses one that is a symlink,
  is not owned by us, or is writable by group or others;
- files are opened with O_NOFOLLOW (a planted symlink is never followed) and
  only regular files are read (a FIFO cannot hang a reader);
- `write_atomic` writes a temporary with O_EXCL under an unpredictable name,
  then renames it into place;
- `FileLock` is an flock on one file, counted per process: a finalizer that
  runs (from the garbage collector) while this process holds any pimem lock
  must not take one, or it deadlocks against itself. `locks_held()` tells it,
  and `call_when_unlocked` runs deferred work once the last lock is dropped.

- `as_invoking_user` runs work as the user behind `sudo`, so what they keep stays theirs.

This module is at the bottom of the package: it imports nothing of pimem but exc.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterator
from typing import Any
from pathlib import Path

from .exc import UnsafeDirectory

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def private_dir(path: str | os.PathLike, what: str, hint: str) -> Path:
    """Create `path` (0700) if missing and check that only we can write it.

    Raises UnsafeDirectory naming the directory, what is wrong and `hint`
    (what to do) when it is a symlink, not a directory, owned by another
    user, or writable by group or others.
    """
    path = Path(path)
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError):
        raise UnsafeDirectory(f"{what} {path}: a part of that path is a file, not a directory; {hint}") from None
    except OSError as e:
        raise UnsafeDirectory(f"cannot create {what} {path}: {e.strerror}; {hint}") from None
    created = False
    try:
        os.mkdir(path, 0o700)
        created = True
    except FileExistsError:
        pass
    except NotADirectoryError:
        raise UnsafeDirectory(f"{what} {path}: a part of that path is a file, not a directory; {hint}") from None
    except OSError as e:
        raise UnsafeDirectory(f"cannot create {what} {path}: {e.strerror}; {hint}") from None
    try:
        st = os.lstat(path)
    except OSError as e:
        raise UnsafeDirectory(f"cannot examine {what} {path}: {e.strerror}; {hint}") from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeDirectory(f"{what} {path} is a symbolic link; pimem never follows one there "
                              f"(another user may have planted it): remove it, or {hint}")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeDirectory(f"{what} {path} is not a directory; remove it, or {hint}")
    if st.st_uid != os.geteuid():
        raise UnsafeDirectory(f"{what} {path} belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()}); "
                              f"another user may have made it to steer pimem: remove it, or {hint}")
    if created:
        os.chmod(path, 0o700)   # the umask may have taken bits off; make it exactly 0700
    elif st.st_mode & 0o022:
        raise UnsafeDirectory(f"{what} {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
                              f"make it private (chmod 700 {path}), or {hint}")
    return path


def open_file(path: str | os.PathLike, flags: int, mode: int = 0o600) -> int:
    """os.open that never follows a symlink in the last component."""
    return os.open(path, flags | _NOFOLLOW | _CLOEXEC, mode)


def read_regular(path: str | os.PathLike, limit: int = 1 << 20) -> bytes:
    """The bytes of a regular file (no symlink, FIFO or device), at most `limit`.

    Raises OSError for anything else, and ValueError when the file is larger.
    """
    fd = open_file(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        if st.st_size > limit:
            raise ValueError(f"{path} is {st.st_size} bytes, more than {limit}")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise ValueError(f"{path} is more than {limit} bytes")
        return data
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path`: a new temporary (O_EXCL, random name), then rename.

    A process killed mid-write leaves the old file (and a `.tmp` named
    `.NAME.RANDOM.tmp`); a symlink at the temporary's name cannot exist in
    advance because the name is unpredictable, and O_EXCL refuses one anyway.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)


def invoking_user() -> tuple[int, int] | None:
    """(uid, gid) of the user who ran `sudo`, when this process is root by sudo; else None."""
    if os.geteuid() != 0:
        return None
    try:
        uid, gid = int(os.environ["SUDO_UID"]), int(os.environ["SUDO_GID"])
    except (KeyError, ValueError):
        return None
    return None if uid == 0 else (uid, gid)


def as_invoking_user(work: Callable[[], Any]) -> Any:
    """Run `work` as the user who ran sudo (in a child process), or here when not under sudo.

    The files a user keeps (their working copy, their venv's settings) must stay theirs when
    `sudo pimem lab` makes them, and root must not write where that user could plant a
    symlink. `work` returns something JSON can carry; a PimemError it raises is raised here,
    with its message.
    """
    who = invoking_user()
    if who is None:
        return work()
    import json

    from . import exc

    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: drop to the user for good, do the work, report, exit
        os.close(rfd)
        try:
            try:
                os.setgroups([])
                os.setgid(who[1])
                os.setuid(who[0])
                reply = {"ok": work()}
            except exc.PimemError as e:
                reply = {"error": type(e).__name__, "message": str(e)}
            except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises
                reply = {"error": "PimemError", "message": f"{type(e).__name__}: {e}"}
            os.write(wfd, json.dumps(reply, default=str).encode())
        finally:
            os._exit(0)
    os.close(wfd)
    chunks = []
    while True:
        chunk = os.read(rfd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(rfd)
    os.waitpid(pid, 0)
    try:
        reply = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        reply = {}
    if "ok" in reply:
        return reply["ok"]
    cls = getattr(exc, reply.get("error", ""), exc.PimemError)
    raise cls(reply.get("message", f"the work as uid {who[0]} ended without a word"))


# --- locks, and what a finalizer may do --------------------------------------------

_count_guard = threading.Lock()   # held only to change the counters, never while blocking
_held = 0                          # pimem file locks held by any thread of this process
_deferred: list[Callable[[], None]] = []
_draining = threading.local()


def locks_held() -> int:
    """How many pimem file locks this process holds now (any thread)."""
    return _held


def call_when_unlocked(work: Callable[[], None]) -> bool:
    """Run `work` now if this process holds no pimem lock, else when the last one is dropped.

    For finalizers: returns True if it ran now. Work deferred while a lock is held
    runs in the thread that drops the last lock, outside every lock.
    """
    with _count_guard:
        if _held:
            _deferred.append(work)
            return False
    work()
    return True


def run_deferred() -> None:
    """Run work that finalizers deferred (also called at exit)."""
    if getattr(_draining, "active", False):
        return
    _draining.active = True
    try:
        while True:
            with _count_guard:
                if _held or not _deferred:
                    return
                work = _deferred.pop(0)
            work()
    finally:
        _draining.active = False


class FileLock:
    """An exclusive flock on `path`, taken per call and counted for this process.

    Not re-entrant by design: pimem never nests the same lock, and a finalizer
    that would (the garbage collector firing inside a locked section) defers
    its work with `call_when_unlocked` instead of deadlocking on it.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def held(self) -> "_Held":
        """The lock, for a `with` block."""
        return _Held(self.path)


class _Held:
    # A class rather than a generator context manager: it is released straight
    # after a firmware request commits, where every microsecond counts (see GpuBuffer).
    __slots__ = ("path", "fd")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> None:
        global _held
        fd = open_file(self.path, os.O_RDWR | os.O_CREAT)
        with _count_guard:
            _held += 1
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            with _count_guard:
                _held -= 1
            os.close(fd)
            raise
        self.fd = fd

    def __exit__(self, *exc: object) -> None:
        global _held
        try:
            os.close(self.fd)   # closing drops the flock
        finally:
            with _count_guard:
                _held -= 1
        if _deferred:
            run_deferred()
