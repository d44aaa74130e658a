"""Transports: carry a property message to the firmware and map its memory.

Two of them, with one interface (like gpiozero's pin factories):

- VcioTransport: a real Raspberry Pi. The ioctl on /dev/vcio, and mmap of
  /dev/mem for the memory the firmware gave us.
- EmulatorTransport: pimem.firmware.emulator's model of the firmware, with the
  kernel's behaviour around it (EINVAL and nothing copied back when the
  firmware reports an error, as drivers/firmware/raspberrypi.c does).

RecordingTransport wraps either and keeps every exchange's bytes (for the course's tables).
Errors from either are turned into pimem's own, with what to do.
"""
from __future__ import annotations

import abc
import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import struct
import sys
from pathlib import Path

from ..paths import pimem_command
from ..exc import MailboxError, MailboxPermissionError, MailboxUnavailable
from .protocol import RESPONSE_SUCCESS, Exchange

VCIO_PATH = "/dev/vcio"
DEVMEM_PATH = "/dev/mem"
PAGE_SIZE = mmap.PAGESIZE

# _IOC encoding from include/uapi/asm-generic/ioctl.h.
_IOC_WRITE, _IOC_READ = 1, 2
_IOC_NRSHIFT, _IOC_TYPESHIFT, _IOC_SIZESHIFT, _IOC_DIRSHIFT = 0, 8, 16, 30
VCIO_IOC_MAGIC = 100


def ioctl_property_number(pointer_size: int | None = None) -> int:
    """IOCTL_MBOX_PROPERTY = _IOWR(100, 0, char *) for this interpreter.

    The size field is sizeof(char *), so a 64-bit process needs 0xC0086400
    and a 32-bit one 0xC0046400; the wrong one gets EINVAL (vcio.c).
    """
    if pointer_size is None:
        pointer_size = struct.calcsize("P")
    if pointer_size not in (4, 8):
        raise MailboxError(f"pointer size {pointer_size} is neither 4 nor 8 bytes")
    return (
        ((_IOC_READ | _IOC_WRITE) << _IOC_DIRSHIFT)
        | (pointer_size << _IOC_SIZESHIFT)
        | (VCIO_IOC_MAGIC << _IOC_TYPESHIFT)
        | (0 << _IOC_NRSHIFT)
    )


class Transport(abc.ABC):
    """Sends property messages and maps the physical memory they hand out."""

    #: "pi" or "emulator"
    name: str

    def property(self, buf: bytearray) -> None:
        """Send one property message; the answer is written into ``buf``."""
        # The kernel copies as many bytes as word 0 says, in and back out:
        # a size word larger than buf would make it write past our buffer.
        size = int.from_bytes(bytes(buf[:4]), "little") if len(buf) >= 4 else 0
        if size < 12 or size % 4 or size > len(buf):
            raise MailboxError(
                f"the message's size word says {size} bytes for a {len(buf)}-byte buffer; it must be "
                "a multiple of 4, at least 12 and no more than the buffer. Build messages with "
                "pimem.firmware.protocol.build_request")
        try:
            self._ioctl(buf)
        except OSError as e:
            if e.errno == errno.EINVAL:
                raise MailboxError(
                    "the mailbox refused the request (EINVAL). Usually: the firmware reported an "
                    "error for the buffer (a malformed message or a tag it does not know), or the "
                    f"ioctl number does not match this process's pointer size "
                    f"(sent 0x{ioctl_property_number():08X}); see 'dmesg' for 'unknown ioctl'"
                ) from None
            raise MailboxError(f"the mailbox ioctl failed: {e.strerror} (errno {e.errno})") from None

    @abc.abstractmethod
    def _ioctl(self, buf: bytearray) -> None:
        """Do what ioctl(IOCTL_MBOX_PROPERTY) does; raise OSError as it would."""

    #: (base, size) of the only physical memory map_physical may map: the GPU's.
    _mappable: tuple[int, int] | None = None

    #: Why the mappable range ends where it does, when something other than the firmware's answer ends it.
    _mappable_note = ""

    def allow_mapping(self, base: int, size: int, note: str = "") -> None:
        """Let map_physical map inside [base, base + size): the VC memory the firmware reports, less what
        the ARM cannot reach there (`note` says what, for the refusal)."""
        self._mappable = (base, size)
        self._mappable_note = note

    def _check_mappable(self, phys: int, size: int) -> None:
        check_mapping(phys, size)
        if self._mappable is None:
            raise MailboxError("this transport maps only the GPU memory the firmware reports; open it with "
                               "pimem.memory.backend.open_backend (or get_backend), which asks the firmware first")
        base, length = self._mappable
        if not (base <= phys and phys + size <= base + length):
            raise MailboxError(f"0x{phys:08X}+{size} bytes is outside the GPU memory the firmware reports "
                               f"(0x{base:08X}-0x{base + length - 1:08X}{self._mappable_note}); "
                               "pimem maps nothing else")

    @abc.abstractmethod
    def map_physical(self, phys: int, size: int) -> mmap.mmap:
        """A shared read/write mapping of ``size`` bytes at page-aligned ``phys``.

        Only inside the range given to allow_mapping (the GPU memory); pimem.memory.buffer
        calls it only with an address its own lock call returned: pimem is not a
        general /dev/mem tool.
        """

    @abc.abstractmethod
    def default_ledger_dir(self) -> Path:
        """Where the allocation ledger lives: somewhere cleared when the firmware restarts."""

    def close(self) -> None:
        """Release the transport's file descriptors."""

    def why_unanswered(self, tag: int) -> str | None:
        """Why this transport's firmware leaves `tag` unanswered, if it knows (else None)."""
        return None

    def gpu_mem_advice(self, mib: int) -> str:
        """How to give this firmware gpu_mem=`mib`, said as the advice that ends an error message."""
        return f"set gpu_mem={mib} in /boot/firmware/config.txt and reboot"

    def host_memory(self, size: int) -> mmap.mmap | None:
        """Host memory backed as this transport's GPU memory is, or None for ordinary process memory.

        On a Pi, host buffers are ordinary memory (None). The emulator's "GPU" memory is a
        shared file mapping; a host run's host buffers get the same kind of mapping, so that
        the two differ in nothing a Pi would not show (page size, huge pages, TLB reach).
        """
        return None

    def describe(self) -> str:
        return self.name


class RecordingTransport(Transport):
    """Another transport, keeping the request and the answer of every exchange the firmware answers.

    The course's tables of raw messages come from it: pimem's own calls go through unchanged,
    and `exchanges` shows what they sent and what came back.
    """

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.name = inner.name
        self.exchanges: list[Exchange] = []

    def property(self, buf: bytearray) -> None:
        request = bytes(buf)
        self.inner.property(buf)
        self.exchanges.append(Exchange(request, bytes(buf)))

    def _ioctl(self, buf: bytearray) -> None:
        raise NotImplementedError("property() hands the whole call to the inner transport")

    def allow_mapping(self, base: int, size: int, note: str = "") -> None:
        self.inner.allow_mapping(base, size, note)

    def map_physical(self, phys: int, size: int) -> mmap.mmap:
        return self.inner.map_physical(phys, size)

    def default_ledger_dir(self) -> Path:
        return self.inner.default_ledger_dir()

    def close(self) -> None:
        """Nothing of its own to close: the inner transport's owner closes it."""

    def why_unanswered(self, tag: int) -> str | None:
        return self.inner.why_unanswered(tag)

    def gpu_mem_advice(self, mib: int) -> str:
        return self.inner.gpu_mem_advice(mib)

    def host_memory(self, size: int) -> mmap.mmap | None:
        return self.inner.host_memory(size)

    def describe(self) -> str:
        return self.inner.describe()


def check_mapping(phys: int, size: int) -> None:
    """MailboxError unless `phys` is page aligned and `size` positive: what any mapping needs."""
    if phys % PAGE_SIZE:
        raise MailboxError(f"physical address 0x{phys:08X} is not page aligned ({PAGE_SIZE} bytes)")
    if size <= 0:
        raise MailboxError(f"cannot map {size} bytes")


class VcioTransport(Transport):
    """The real thing: /dev/vcio and /dev/mem on a Raspberry Pi."""

    name = "pi"

    def __init__(self, vcio_path: str = VCIO_PATH, devmem_path: str = DEVMEM_PATH) -> None:
        self.vcio_path = vcio_path
        self.devmem_path = devmem_path
        self._request = ioctl_property_number()
        try:
            self._fd = os.open(vcio_path, os.O_RDWR)
        except FileNotFoundError:
            raise MailboxUnavailable(
                f"there is no {vcio_path}: this is not a Raspberry Pi, or its kernel has no vcio "
                "driver. Use the emulator (PIMEM_BACKEND=emulator) or run on a Pi with Raspberry Pi OS"
            ) from None
        except PermissionError:
            raise MailboxPermissionError(
                f"permission denied opening {vcio_path}: add yourself to the 'video' group "
                "(sudo usermod -aG video $USER, then log in again) or run as root"
            ) from None
        except OSError as e:
            # ENXIO/ENODEV: the device node is there but its driver is not.
            raise MailboxUnavailable(
                f"cannot open {vcio_path}: {e.strerror} (errno {e.errno}). The node exists but "
                "the vcio driver did not answer; update Raspberry Pi OS (sudo apt full-upgrade) "
                "or use the emulator (PIMEM_BACKEND=emulator)"
            ) from None

    def _ioctl(self, buf: bytearray) -> None:
        # mutate_flag=True: the kernel writes the answer back into buf.
        fcntl.ioctl(self._fd, self._request, buf, True)

    def map_physical(self, phys: int, size: int) -> mmap.mmap:
        self._check_mappable(phys, size)
        try:
            # O_SYNC asks for an uncached mapping; memory outside Linux's RAM
            # (the GPU's) is mapped non-cached either way (phys_mem_access_prot).
            fd = os.open(self.devmem_path, os.O_RDWR | os.O_SYNC)
        except PermissionError:
            raise MailboxPermissionError(
                f"permission denied opening {self.devmem_path}: mapping GPU memory needs root "
                f"(CAP_SYS_RAWIO). Run as root, e.g. '{pimem_command('info') if os.geteuid() else 'sudo ' + pimem_command('info')}'"
            ) from None
        except OSError as e:
            raise MailboxError(
                f"cannot open {self.devmem_path}: {e.strerror}. pimem maps GPU memory through "
                "/dev/mem; a container or a kernel without it cannot; run on the Pi itself"
            ) from None
        try:
            return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=phys)
        except OSError as e:
            raise MailboxError(
                f"mapping {size} bytes of {self.devmem_path} at 0x{phys:08X} failed: {e.strerror}. "
                "A kernel built with CONFIG_STRICT_DEVMEM may refuse it"
            ) from None
        finally:
            os.close(fd)

    def default_ledger_dir(self) -> Path:
        return _runtime_dir("pimem")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class EmulatorTransport(Transport):
    """pimem.firmware.emulator's firmware, wrapped the way the kernel wraps the real one."""

    name = "emulator"

    def __init__(self, state_dir: str | os.PathLike | None = None, gpu_mem: int | None = None, *,
                 vc_base: int | None = None, physical_memory: str | os.PathLike | None = None) -> None:
        # vc_base, physical_memory: see FirmwareEmulator (a machine whose physical memory is the GPU's).
        from .emulator import FirmwareEmulator

        self._named: set[int] = set()
        # gpu_mem None: what the state booted with (a fresh one: PIMEM_EMULATOR_GPU_MEM, else 76 MiB).
        self.firmware = FirmwareEmulator(state_dir if state_dir is not None else default_emulator_dir(),
                                         gpu_mem=gpu_mem, vc_base=vc_base, physical_memory=physical_memory)

    def _ioctl(self, buf: bytearray) -> None:
        # What the kernel does around the firmware (raspberrypi/linux,
        # drivers/char/broadcom/vcio.c vcio_user_property_list and
        # drivers/firmware/raspberrypi.c rpi_firmware_property_list): it copies
        # `size` bytes in (the size word's count, not the caller's buffer
        # length), refuses a size under 12 (vcio.c) or not a whole number of
        # words (raspberrypi.c: `size & 3`), sends the
        # firmware only the tags between the header and the last word, with
        # word 1 set to 0 (a request) and its own end tag as the last word, and
        # copies the tags back, with word 1 set to success, only when the
        # firmware answered success; otherwise EINVAL and the buffer is untouched.
        # So a reused buffer (word 1 still 0x80000000) or one whose last word
        # is not 0 is answered like a fresh one.
        size = struct.unpack_from("<I", buf, 0)[0] if len(buf) >= 4 else 0
        if size > len(buf):   # copy_from_user would read past the caller's buffer
            raise OSError(errno.EFAULT, os.strerror(errno.EFAULT))
        if size & 3 or size < 12:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        self._name_unmodelled(buf)
        # The firmware answers in the caller's buffer itself (no copy in and out, so
        # nothing but a status check runs after it commits an allocation); a failed
        # request changes only word 1, and the two words the kernel rewrote are put back.
        code, last = struct.unpack_from("<I", buf, 4)[0], struct.unpack_from("<I", buf, size - 4)[0]
        struct.pack_into("<I", buf, 4, 0)
        struct.pack_into("<I", buf, size - 4, 0)
        ok = False
        try:
            self.firmware.process(buf)
            ok = struct.unpack_from("<I", buf, 4)[0] == RESPONSE_SUCCESS
        finally:
            struct.pack_into("<I", buf, size - 4, last)
            if not ok:
                struct.pack_into("<I", buf, 4, code)
        if not ok:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    def host_memory(self, size: int) -> mmap.mmap:
        # A file of its own beside memory.bin (same filesystem, same kind of pages), unlinked
        # at once: nothing is left behind, whatever ends the process.
        from ..safefs import open_file

        path = self.firmware.state_dir / f".host-{os.urandom(8).hex()}.tmp"
        fd = open_file(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        try:
            os.unlink(path)
            # Disk for every page before the mapping exists: on a full file system an unbacked
            # page kills whoever touches it (SIGBUS); reserved here, it is an error instead.
            os.posix_fallocate(fd, 0, size)
            return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as e:
            raise self.firmware.storage_error(e) from None
        finally:
            os.close(fd)

    def _name_unmodelled(self, buf: bytearray) -> None:
        # A C program reading the answer (hello_fft's qpu_enable returns p[5]) would
        # read its own request back; it at least gets told why, once per tag. (The
        # first tag: the programs that send these send one tag per message.)
        from .emulator import UNMODELLED_TAGS

        tag = struct.unpack_from("<I", buf, 8)[0]
        if tag in UNMODELLED_TAGS and tag not in self._named:
            self._named.add(tag)
            with contextlib.suppress(OSError, ValueError):   # a closed or full stderr
                print(f"pimem: {self.why_unanswered(tag)}", file=sys.stderr)

    def gpu_mem_advice(self, mib: int) -> str:
        from .emulator import reset_command

        return (f"give the emulator gpu_mem={mib} (what a Pi's config.txt sets): {reset_command(mib << 20)} "
                "(it forgets every emulated allocation)")

    def why_unanswered(self, tag: int) -> str | None:
        from .emulator import UNMODELLED_TAGS

        if tag in UNMODELLED_TAGS:
            return (f"the firmware emulator leaves {UNMODELLED_TAGS[tag]} unanswered: it cannot run code "
                    "on the VideoCore; run this on a Raspberry Pi (PIMEM_BACKEND=pi)")
        return None

    def map_physical(self, phys: int, size: int) -> mmap.mmap:
        check_mapping(phys, size)
        if self._mappable is not None:
            self._check_mappable(phys, size)
        fw = self.firmware
        if not (fw.vc_base <= phys and phys + size <= fw.vc_base + fw.gpu_mem):
            raise MailboxError(
                f"0x{phys:08X}+{size} is outside the emulated GPU memory "
                f"(0x{fw.vc_base:08X}..0x{fw.vc_base + fw.gpu_mem:08X})"
            )
        return fw.map_memory(phys - fw.vc_base, size)

    def default_ledger_dir(self) -> Path:
        # The ledger lives and dies with the emulator's state, as a real
        # ledger in /run lives and dies with the firmware (a reboot).
        return Path(self.firmware.state_dir) / "ledger"

    def describe(self) -> str:
        return f"emulator ({self.firmware.state_dir})"


def _runtime_dir(name: str) -> Path:
    """A directory cleared at reboot: /run for root, else XDG_RUNTIME_DIR, else /tmp.

    In /tmp the name is predictable, so another user may have made it first: then this user's
    cache folder is used instead (said once on stderr), never theirs.
    """
    if os.geteuid() == 0:
        return Path("/run") / name
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return Path(xdg) / name
    shared = Path("/tmp") / f"{name}-{os.geteuid()}"
    try:
        st = os.lstat(shared)
    except FileNotFoundError:
        return shared
    if st.st_uid == os.geteuid() and os.path.isdir(shared) and not os.path.islink(shared):
        return shared
    fallback = Path(os.path.expanduser("~")) / ".cache" / "pimem" / name
    if name not in _noticed_taken:
        _noticed_taken.add(name)
        print(f"pimem: {shared} belongs to another user (uid {st.st_uid}), so pimem uses {fallback} instead "
              "(set XDG_RUNTIME_DIR, or PIMEM_EMULATOR_DIR and PIMEM_LEDGER_DIR, to choose)", file=sys.stderr)
    return fallback


_noticed_taken: set[str] = set()


def default_emulator_dir() -> Path:
    """PIMEM_EMULATOR_DIR, or a per-user directory cleared at reboot."""
    env = os.environ.get("PIMEM_EMULATOR_DIR")
    return Path(env) if env else _runtime_dir("pimem-emulator")


# --- unmapping a region that numpy views still point into ----------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_MAP_FIXED = 0x10
_MAP_ANONYMOUS = getattr(mmap, "MAP_ANONYMOUS", 0x20)
_MAP_FAILED = ctypes.c_void_p(-1).value


def detach_mapping(address: int, size: int) -> None:
    """Put private anonymous memory where a shared mapping was.

    Used when GPU memory must be released while numpy views of it still
    exist (at interpreter exit): afterwards those views read and write a
    private scratch page instead of memory the firmware may give to
    someone else.
    """
    res = _libc.mmap(ctypes.c_void_p(address), size, mmap.PROT_READ | mmap.PROT_WRITE,
                     mmap.MAP_PRIVATE | _MAP_ANONYMOUS | _MAP_FIXED, -1, 0)
    if res == _MAP_FAILED or res != address:
        err = ctypes.get_errno()
        raise OSError(err, f"could not replace the mapping at 0x{address:x}: {os.strerror(err)}")
