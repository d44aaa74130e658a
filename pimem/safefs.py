"""Files pimem writes, safe against other users and against its own finalizers.

pimem runs as root on a Pi, and its state (the ledger, the emulator) lives in
directories other users may be able to name in advance (/tmp/pimem-UID). So:

- `private_dir` creates a directory 0700 and refuses one that is a symlink,
  is not owned by us, or is writable by group or others;
- files are opened with O_NOFOLLOW (a planted symlink is never followed) and
  only regular files are read (a FIFO cannot hang a reader);
- `write_file` is the one way pimem writes a file: a temporary with O_EXCL under an
  unpredictable name, then renamed into place (or linked, never replacing); a full or
  read-only folder is a FolderError that names it;
- `FileLock` is an flock on one file, counted per thread: a signal handler that
  lands while its thread holds a pimem lock must not take one, or it deadlocks
  against itself; `call_when_unlocked` runs its work once the last lock is dropped.

- `as_invoking_user` runs work as the user behind `sudo`, so what they keep stays theirs.

This module is at the bottom of the package: it imports nothing of pimem but exc.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import stat
import threading
from collections.abc import Callable, Iterator
from typing import Any
from pathlib import Path

from .exc import DiskFull, FolderError, UnsafeDirectory

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


def folder_error(e: OSError, folder: str | os.PathLike, what: str) -> FolderError:
    """pimem's error for an OSError met writing `what` in `folder`: it names the folder and what to do."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"no room left in {folder} to write {what} ({e.strerror}); free some space there, "
                        "or choose another folder")
    if e.errno == errno.EROFS:
        return FolderError(f"{folder} is on a read-only file system, so {what} cannot be written there; "
                           "choose another folder")
    if e.errno in (errno.EACCES, errno.EPERM):
        return FolderError(f"this user may not write {what} in {folder} ({e.strerror}); choose a folder of your own")
    if e.errno == errno.ELOOP:
        return FolderError(f"{Path(folder) / what} is a symbolic link, and pimem never writes through one "
                           "(another user may have planted it): remove it")
    if e.errno == errno.ENAMETOOLONG:
        return FolderError(f"the name of {what} is too long for the file system of {folder}; choose a shorter one")
    return FolderError(f"cannot write {what} in {folder}: {e.strerror or e}")


def check_room(folder: str | os.PathLike, need: int, what: str) -> None:
    """DiskFull, before any work, when the file system `folder` is (or will be) on has less than `need` bytes."""
    probe = Path(folder).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        st = os.statvfs(probe)
    except OSError:
        return   # cannot tell: the write itself will say
    free = st.f_bavail * st.f_frsize
    if free < need:
        raise DiskFull(f"only {free // 1024} KiB free where {folder} is, and {what} needs about "
                       f"{need // 1024} KiB; free some space there first (nothing was measured yet)")


def tmp_name(path: Path) -> Path:
    """A temporary beside `path`: hidden, unpredictable, and naming the process that wrote it."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp")


def write_file(path: str | os.PathLike, data: bytes | str, *, replace: bool = True, mode: int = 0o600,
               durable: bool = False) -> Path:
    """Write `data` to `path`, the one way pimem writes a file: a new temporary, then its name.

    The temporary is created with O_EXCL under an unpredictable name beside `path` (no symlink
    can wait there, and none is followed), written whole, then given its name:
    - replace=True: renamed over whatever `path` is (a planted symlink is replaced, not followed);
    - replace=False: hard-linked to `path`, which fails with FileExistsError on any existing name.
    A process killed midway leaves the old file and a `.NAME.PID-RANDOM.tmp` (remove_leftovers).
    `mode` passes through the umask as for any new file. `durable` syncs the file and the folder.
    Errors the user can act on (a full disk, a read-only folder) are FolderError naming the folder.
    """
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = tmp_name(path)
    try:
        fd = open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as e:
        raise folder_error(e, path.parent, path.name) from None
    try:
        try:
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, FileExistsError):
            raise folder_error(e, path.parent, path.name) from None
        raise
    if durable:
        sync_folder(path.parent)
    return path


def write_kernel_setting(path: str | os.PathLike, text: str) -> None:
    """Write a kernel setting (a file under /sys or /proc, e.g. a CPU's cpufreq governor).

    Such a file cannot be replaced by a new one, so write_file's temporary does not apply: it is
    opened in place, never through a symbolic link, and only under /sys or /proc (root's folders).
    """
    real = Path(path)
    if real.parts[:2] not in (("/", "sys"), ("/", "proc")):
        raise ValueError(f"{path}: not a kernel setting under /sys or /proc")
    fd = os.open(real, os.O_WRONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        os.write(fd, text.encode("ascii"))
    finally:
        os.close(fd)


def sync_folder(folder: str | os.PathLike) -> None:
    """Make a folder's new names durable (where the platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_TMP_RE = re.compile(r"^\..+\.([0-9]+)-[0-9a-f]{12}\.tmp$")


def leftovers(folder: str | os.PathLike) -> list[Path]:
    """Temporaries of write_file in `folder` whose writer is dead: what an interrupted write left."""
    found = []
    for p in sorted(Path(folder).iterdir()) if os.path.isdir(folder) else []:
        m = _TMP_RE.match(p.name)
        if m and not _pid_alive(int(m.group(1))) and p.is_file() and not p.is_symlink():
            found.append(p)
    return found


def remove_leftovers(folder: str | os.PathLike) -> list[Path]:
    """Delete the leftovers of interrupted writes in `folder` (this user's own only); returns them."""
    removed = []
    for p in leftovers(folder):
        with contextlib.suppress(OSError):
            if os.lstat(p).st_uid == os.geteuid():
                p.unlink()
                removed.append(p)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != 0


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


# --- locks, and a signal handler that needs them --------------------------------------

_local = threading.local()   # per thread: how many pimem locks it holds, and work waiting for none


def locks_held() -> int:
    """How many pimem file locks this thread holds now."""
    return getattr(_local, "held", 0)


def call_when_unlocked(work: Callable[[], None]) -> bool:
    """Run `work` now if this thread holds no pimem lock, else when it drops its last one.

    For a signal handler (SIGTERM: release everything, then die), which runs in the main thread
    wherever it was: taking a lock that thread already holds would deadlock. Returns True if it ran now.
    """
    if locks_held():
        _local.__dict__.setdefault("deferred", []).append(work)
        return False
    work()
    return True


def _run_deferred() -> None:
    deferred = _local.__dict__.get("deferred")
    while deferred and not locks_held():
        deferred.pop(0)()


class FileLock:
    """An exclusive flock on `path`, taken per call and counted for the thread that holds it.

    Not re-entrant by design: pimem never nests the same lock; a signal handler that would
    (SIGTERM landing inside a locked section) defers its work with `call_when_unlocked`.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """The lock, for a `with` block; a lock file that cannot be opened is a FolderError naming its folder."""
        try:
            fd = open_file(self.path, os.O_RDWR | os.O_CREAT)
        except OSError as e:
            raise folder_error(e, self.path.parent, self.path.name) from None
        _local.held = locks_held() + 1
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            _local.held -= 1
            os.close(fd)
            raise
        try:
            yield
        finally:
            try:
                os.close(fd)   # closing drops the flock
            finally:
                _local.held -= 1
            if not _local.held:
                _run_deferred()
