"""The compiled timing core: ``csrc/pimem_core.c`` built with the system C compiler.

Python calls a kernel once per operation, and on a Cortex-A53 one ctypes
call costs microseconds: more than a 4 KiB fill. The core moves the
repetition loop into C: one call times a whole region of operations and
returns its nanoseconds (``benchmarks/membench.c`` includes the same file, so
C and pimem time the same loops).

Built on first use into a cache only the current user can write
(``~/.cache/pimem/core`` of the *effective* user, so root's own when run as
root; ``$PIMEM_CORE_DIR``, or ``$XDG_CACHE_HOME`` for other users, may move
it), checked 0700 and owned by us, every folder above it writable by no
other user, never through a symlink. As root the compiler must be root's
own, in folders only root can write, and runs with a minimal environment.
The library's name carries a hash of the source, the compiler and the
flags, so an edit or a new compiler builds afresh. ``PIMEM_CORE=off`` skips
it. Without a compiler pimem falls back to the per-call kernels, says so in
one line, and keeps marking overhead-bound points.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import pwd
import secrets
import shlex
import shutil
import stat
import subprocess
import tempfile
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..exc import UnsafeDirectory
from ..safefs import private_dir

__all__ = ["SOURCE", "CFLAGS", "CoreStatus", "core_dir", "load", "status", "compiler"]

SOURCE = Path(__file__).resolve().parent / "csrc" / "pimem_core.c"
CFLAGS = ("-O2", "-Wall", "-Wextra", "-shared", "-fPIC")
VERSION = 2                     # PIMEM_CORE_VERSION in the source
ENV_DIR = "PIMEM_CORE_DIR"
ENV_SWITCH = "PIMEM_CORE"       # "off": do not build or load the core


@dataclass(frozen=True)
class CoreStatus:
    """What became of the core in this process: loaded (with its path), or why not."""

    loaded: bool
    path: Path | None
    message: str
    build_s: float | None = None     # seconds spent compiling, None if it was cached


def core_dir() -> Path:
    """Where the built library is kept (not yet checked or created).

    As root ``$XDG_CACHE_HOME`` is ignored (sudo may keep the caller's
    environment); ``$PIMEM_CORE_DIR`` counts, but :func:`load` then refuses
    it unless every folder above it is root's and writable by no one else.
    """
    euid = os.geteuid()
    env = os.environ.get(ENV_DIR, "").strip()
    if env:
        return Path(env).expanduser()
    try:
        home = Path(pwd.getpwuid(euid).pw_dir)
    except KeyError:   # a uid with no passwd entry (containers): a private folder of its own under /tmp
        return Path(tempfile.gettempdir()) / f"pimem-core-{euid}"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg) if xdg and euid != 0 and os.path.isabs(xdg) else home / ".cache"
    return base / "pimem" / "core"


def _untrusted_ancestor(directory: Path) -> str | None:
    """Why another user could swap ``directory`` out from under us, or None.

    Every folder above it must be a real directory (no symlink) owned by
    root or by us and writable by no one else, unless sticky (as /tmp is:
    there no one can rename our entries).
    """
    for parent in Path(os.path.abspath(directory)).parents:
        try:
            st = os.lstat(parent)
        except OSError as e:
            return f"{parent} cannot be examined ({e.strerror})"
        if stat.S_ISLNK(st.st_mode):
            return f"{parent} is a symbolic link"
        if st.st_uid not in (0, os.geteuid()):
            return f"{parent} belongs to uid {st.st_uid}"
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return f"{parent} is writable by group or others"
    return None


def compiler() -> list[str] | None:
    """The C compiler's command: $CC if set (and found), else cc, gcc or clang on PATH; None if none.

    As root the compiler must be a file root owns in folders only root can
    write (sudo may keep the caller's PATH or CC); one that is not is ignored.
    """
    cc = os.environ.get("CC", "").strip()
    words = shlex.split(cc) if cc else []
    candidates = [words] if words else [[name] for name in ("cc", "gcc", "clang")]
    for cand in candidates:
        found = shutil.which(cand[0])
        if found and (os.geteuid() != 0 or _trusted_file(Path(found).resolve())):
            return [found, *cand[1:]]
    return None


def _trusted_file(path: Path) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (stat.S_ISREG(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o022
            and _untrusted_ancestor(path) is None)


def _compiler_env(cc: list[str]) -> dict[str, str] | None:
    """As root, a minimal environment (no COMPILER_PATH, GCC_EXEC_PREFIX, CPATH, ... of the caller's)."""
    if os.geteuid() != 0:
        return None
    return {"PATH": f"{Path(cc[0]).parent}:/usr/bin:/bin", "LC_ALL": "C", "HOME": "/root"}


def _fingerprint(cc: list[str], source: bytes) -> str:
    h = hashlib.sha256(source)
    exe = Path(cc[0])
    try:
        st = exe.stat()
        h.update(f"{exe.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    except OSError:
        h.update(str(exe).encode())
    h.update(" ".join([*cc[1:], *CFLAGS, platform.machine(), str(ctypes.sizeof(ctypes.c_void_p))]).encode())
    return h.hexdigest()[:16]


def _ours(path: Path) -> bool:
    """A regular file we own that no one else can write (the directory is private too)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _build(cc: list[str], directory: Path, target: Path) -> str | None:
    """Compile into a fresh temporary in ``directory``, then rename it to ``target``; the error text or None."""
    tmp = directory / f".build-{secrets.token_hex(8)}.so"
    try:
        proc = subprocess.run([*cc, *CFLAGS, "-o", str(tmp), str(SOURCE)],
                              capture_output=True, text=True, timeout=120, env=_compiler_env(cc))
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{cc[0]} could not run: {e}"
    if proc.returncode == 0 and os.path.isfile(tmp) and not os.path.islink(tmp):
        os.chmod(tmp, 0o700)        # whatever the umask: only this user may write it
    if proc.returncode != 0 or not _ours(tmp):
        tmp.unlink(missing_ok=True)
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return f"{cc[0]} failed: {lines[-1] if lines else 'exit status ' + str(proc.returncode)}"
    os.replace(tmp, target)
    return None


_lib: ctypes.CDLL | None = None
_status: CoreStatus | None = None


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    u64, size, vp = ctypes.c_uint64, ctypes.c_size_t, ctypes.c_void_p
    sigs = {
        "pimem_core_version": ([], ctypes.c_int),
        "pimem_sum": ([vp, size], u64),
        "pimem_sum_stride": ([vp, size, size], u64),
        "pimem_time_fill": ([vp, ctypes.c_int, size, u64, ctypes.c_int], u64),
        "pimem_time_copy": ([vp, vp, size, u64, ctypes.c_int], u64),
        "pimem_time_read": ([vp, size, u64], u64),
        "pimem_time_read_stride": ([vp, size, size, u64], u64),
        "pimem_chase_setup": ([vp, size, size, u64], size),
        "pimem_chase_cycle": ([vp, size], size),
        "pimem_time_chase": ([ctypes.POINTER(vp), u64], u64),
        "pimem_explain_sigbus": ([ctypes.c_char_p, ctypes.c_int], ctypes.c_int),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    return lib


def _load() -> tuple[ctypes.CDLL | None, CoreStatus]:
    if os.environ.get(ENV_SWITCH, "").strip().lower() in ("off", "0", "no"):
        return None, CoreStatus(False, None, f"the compiled core is switched off ({ENV_SWITCH}=off)")
    cc = compiler()
    if cc is None:
        return None, CoreStatus(False, None, "no C compiler found (cc, gcc, clang or $CC); "
                                "install one (sudo apt install gcc) for the compiled timing core")
    try:
        source = SOURCE.read_bytes()
    except OSError as e:
        return None, CoreStatus(False, None, f"cannot read {SOURCE}: {e.strerror}")
    directory = core_dir()
    try:
        private_dir(directory, "the compiled core's cache", f"or set {ENV_DIR} to a private directory")
    except UnsafeDirectory as e:
        return None, CoreStatus(False, None, str(e))
    why = _untrusted_ancestor(directory)   # after creating it: missing parents cannot be examined
    if why:
        return None, CoreStatus(False, None, f"the compiled core's cache {directory} is not safe: {why}, so "
                                f"another user could replace the library; set {ENV_DIR} to a private directory")
    target = directory / f"pimem_core-{_fingerprint(cc, source)}.so"
    built = None
    if not _ours(target):
        if os.path.lexists(target):
            return None, CoreStatus(False, None, f"{target} is not a file this user owns alone; remove it")
        t0 = time.perf_counter()
        error = _build(cc, directory, target)
        if error:
            return None, CoreStatus(False, None, f"the compiled core did not build: {error}")
        built = time.perf_counter() - t0
    try:
        lib = _declare(ctypes.CDLL(str(target)))
    except (OSError, AttributeError) as e:
        return None, CoreStatus(False, target, f"cannot load {target}: {e}; remove it to rebuild")
    if lib.pimem_core_version() != VERSION:
        return None, CoreStatus(False, target, f"{target} is core version {lib.pimem_core_version()}, "
                                f"not {VERSION}; remove it to rebuild")
    how = f"built in {built:.1f} s" if built is not None else "cached"
    return lib, CoreStatus(True, target, f"compiled timing core loaded ({how}): {target}", built)


def load() -> ctypes.CDLL | None:
    """The core's library (built and loaded once per process), or None with a one-line notice on stderr."""
    global _lib, _status
    if _status is None:
        _lib, _status = _load()
        if not _status.loaded and os.environ.get(ENV_SWITCH, "").strip().lower() not in ("off", "0", "no"):
            print(f"pimem: {_status.message}; timing with per-call kernels "
                  "(small sizes are marked overhead-bound)", file=sys.stderr)
    return _lib


def status() -> CoreStatus:
    """What :func:`load` found (loading it first if needed)."""
    load()
    assert _status is not None
    return _status


#: What a SIGBUS on a Pi means, printed before the process dies (the compiled core's handler).
BUS_ERROR_NOTE = (
    "pimem: SIGBUS, an alignment fault: on a Raspberry Pi, GPU memory is Device memory, where an access "
    "at an address not a multiple of its size, or memset of 0 (numpy's a[:] = 0, which uses DC ZVA), "
    "kills the process. Use GpuBuffer.fill(value), .write(data, offset) and .read(offset, size) instead of "
    "numpy operations on buf.array at odd offsets or lengths, or copy the data to host memory first"
)


def explain_bus_errors() -> bool:
    """Make a SIGBUS print BUS_ERROR_NOTE (and Python's traceback, through faulthandler) before the process
    dies; True when the compiled core's handler is in place (faulthandler alone otherwise)."""
    from ..memory.device import enable_faulthandler, stderr_fd

    enable_faulthandler()
    lib = load()
    return lib is not None and lib.pimem_explain_sigbus(BUS_ERROR_NOTE.encode(), stderr_fd()) == 0
