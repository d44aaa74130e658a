#!/usr/bin/env python3
"""/dev/vcio for a kernel without the vcio driver: a CUSE device that pimem's firmware emulator answers.

Runs inside the Pi-shaped machine (scripts/pi-machine.sh), as root. Debian's kernel has no vcio
driver (raspberrypi/linux only) and QEMU's raspi property channel does not implement the memory
tags, so this daemon makes a character device /dev/vcio with CUSE (the kernel's `cuse` module)
and speaks the FUSE/CUSE protocol on /dev/cuse itself: no libfuse. It handles open, release and
ioctl; a program on the machine (pimem's VcioTransport) then does exactly what it does on a Pi:
ioctl(IOCTL_MBOX_PROPERTY) on /dev/vcio, mmap of /dev/mem at the locked address.

IOCTL_MBOX_PROPERTY is _IOWR(100, 0, char *): its argument is a pointer to a buffer whose first
word is its size, which the ioctl number does not tell. So the device is registered with
CUSE_UNRESTRICTED_IOCTL and each ioctl takes FUSE's retry dance (FUSE_IOCTL_RETRY): the first
request carries no data and is answered "read 4 bytes at the pointer"; the second carries the
size word and is answered "read and write back `size` bytes there"; the third carries the buffer,
which the emulator answers. The answer is what vcio.c + drivers/firmware/raspberrypi.c give:
pimem's EmulatorTransport._ioctl models that (EINVAL and the buffer untouched when the firmware
reports an error), and is used as it is.

The emulator's GPU memory is the machine's real physical memory above System RAM (vc_base = the
end of System RAM in /proc/iomem), and its own writes there (the ZERO and all-ones
initialisation, compaction's moves) go through /dev/mem: so a process that maps a locked buffer
from /dev/mem sees Device-nGnRnE (arm64) / Strongly-ordered (32-bit ARM) memory, as on a Pi.

  vcio_cuse.py [--gpu-mem MIB] [--state-dir DIR] [--ready FILE]

Stops on SIGTERM/SIGINT. Protocol: include/uapi/linux/fuse.h, fs/fuse/cuse.c, fs/fuse/ioctl.c.
"""
from __future__ import annotations

import argparse
import errno
import os
import signal
import struct
import sys
import traceback

# --- include/uapi/linux/fuse.h ----------------------------------------------
FUSE_KERNEL_VERSION = 7
FUSE_OPEN, FUSE_READ, FUSE_WRITE, FUSE_RELEASE, FUSE_FLUSH = 14, 15, 16, 18, 25
FUSE_INTERRUPT, FUSE_IOCTL, FUSE_POLL = 36, 39, 40
CUSE_INIT = 4096
CUSE_UNRESTRICTED_IOCTL = 1 << 0
FUSE_IOCTL_COMPAT, FUSE_IOCTL_UNRESTRICTED, FUSE_IOCTL_RETRY = 1 << 0, 1 << 1, 1 << 2

IN_HEADER = struct.Struct("<IIQQIIIHH")   # len, opcode, unique, nodeid, uid, gid, pid, total_extlen, padding
OUT_HEADER = struct.Struct("<IiQ")        # len, error, unique
CUSE_INIT_IN = struct.Struct("<IIII")     # major, minor, unused, flags
CUSE_INIT_OUT = struct.Struct("<IIIIIIII40x")   # major, minor, unused, flags, max_read, max_write, dev_major, dev_minor, spare[10]
OPEN_OUT = struct.Struct("<QII")          # fh, open_flags, padding
IOCTL_IN = struct.Struct("<QIIQII")       # fh, flags, cmd, arg, in_size, out_size
IOCTL_OUT = struct.Struct("<iIII")        # result, flags, in_iovs, out_iovs
IOVEC = struct.Struct("<QQ")              # base, len

# FUSE hands at most fc->max_pages (32 by default: FUSE_DEFAULT_MAX_PAGES_PER_REQ) of ioctl data.
MAX_MESSAGE = 32 * 4096
READ_SIZE = MAX_MESSAGE + 64 * 1024


def log(msg: str) -> None:
    print(f"vcio-cuse: {msg}", file=sys.stderr, flush=True)


def system_ram_end() -> int:
    """One past the highest 'System RAM' address in /proc/iomem (needs root to see addresses)."""
    end = 0
    with open("/proc/iomem") as f:
        for line in f:
            if line.startswith(" "):
                continue
            span, _, name = line.partition(" : ")
            if name.strip() == "System RAM":
                end = max(end, int(span.split("-")[1], 16) + 1)
    if not end:
        raise SystemExit("vcio-cuse: /proc/iomem lists no System RAM (run as root)")
    return end


class VcioDevice:
    def __init__(self, transport, native_request: int, compat_request: int) -> None:
        self.transport = transport
        self.native_request = native_request
        self.compat_request = compat_request
        self.next_fh = 1

    # Each handler returns (error, payload): error 0 with bytes, or a positive errno, or None for no reply.
    def handle(self, opcode: int, body: bytes):
        if opcode == FUSE_OPEN:
            fh, self.next_fh = self.next_fh, self.next_fh + 1
            return 0, OPEN_OUT.pack(fh, 0, 0)
        if opcode in (FUSE_RELEASE, FUSE_FLUSH):
            return 0, b""
        if opcode == FUSE_INTERRUPT:
            return None   # an ioctl is answered at once; nothing to interrupt
        if opcode == FUSE_IOCTL:
            return self.ioctl(body)
        if opcode in (FUSE_READ, FUSE_WRITE):
            return errno.EINVAL, b""   # vcio has no read or write: a misc device without them gives EINVAL
        return errno.ENOSYS, b""

    def ioctl(self, body: bytes):
        _fh, flags, cmd, arg, in_size, _out_size = IOCTL_IN.unpack_from(body)
        data = body[IOCTL_IN.size:IOCTL_IN.size + in_size]
        # vcio.c: the native ioctl takes IOCTL_MBOX_PROPERTY only; a 32-bit process on a 64-bit
        # kernel comes through compat_ioctl, which takes IOCTL_MBOX_PROPERTY32 only.
        expected = self.compat_request if flags & FUSE_IOCTL_COMPAT else self.native_request
        if cmd != expected:
            log(f"unknown ioctl 0x{cmd:08X} (expected 0x{expected:08X}): EINVAL, as vcio.c")
            return errno.EINVAL, b""
        if not flags & FUSE_IOCTL_UNRESTRICTED:
            return errno.EIO, b""   # registered unrestricted; a restricted ioctl cannot retry
        if len(data) < 4:   # first round: read the size word at the pointer
            return 0, IOCTL_OUT.pack(0, FUSE_IOCTL_RETRY, 1, 0) + IOVEC.pack(arg, 4)
        size = struct.unpack_from("<I", data)[0]
        if size < 12:
            return errno.EINVAL, b""   # vcio.c refuses a size under 12
        if size > MAX_MESSAGE:
            return errno.ENOMEM, b""   # more than FUSE carries (vcio itself would kmalloc it)
        if len(data) != size:   # second round: the whole buffer, in and back out
            return 0, IOCTL_OUT.pack(0, FUSE_IOCTL_RETRY, 1, 1) + IOVEC.pack(arg, size) + IOVEC.pack(arg, size)
        buf = bytearray(data)
        try:
            self.transport._ioctl(buf)   # the kernel's wrapping of the firmware, as pimem models it
        except OSError as e:
            return e.errno or errno.EIO, b""
        except Exception:   # a bug here must not take /dev/vcio down with it
            log("the emulator failed:\n" + traceback.format_exc())
            return errno.EIO, b""
        return 0, IOCTL_OUT.pack(0, 0, 0, 0) + bytes(buf)


def reply(fd: int, unique: int, error: int, payload: bytes = b"") -> None:
    msg = OUT_HEADER.pack(OUT_HEADER.size + len(payload), -error, unique) + payload
    try:
        os.write(fd, msg)
    except OSError as e:
        if e.errno != errno.ENOENT:   # ENOENT: the request was interrupted and is gone
            raise


def serve(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.project)
    from pimem.firmware.transport import EmulatorTransport, ioctl_property_number

    vc_base = args.vc_base if args.vc_base is not None else system_ram_end()
    gpu_mem = args.gpu_mem * 2**20
    transport = EmulatorTransport(args.state_dir, gpu_mem, vc_base=vc_base, physical_memory="/dev/mem")
    fw = transport.firmware
    log(f"firmware emulator in {args.state_dir}: GPU memory 0x{fw.vc_base:08X}+{fw.gpu_mem // 2**20} MiB, "
        f"heap 0x{fw.vc_base:08X}-0x{fw.vc_base + fw.heap_size - 1:08X}, written through /dev/mem")
    if fw.vc_base + fw.heap_size > 0x3F000000:
        raise SystemExit("vcio-cuse: the heap would reach the peripheral window at 0x3F000000")

    device = VcioDevice(transport, ioctl_property_number(), ioctl_property_number(4))
    try:
        fd = os.open("/dev/cuse", os.O_RDWR)
    except FileNotFoundError:
        raise SystemExit("vcio-cuse: no /dev/cuse: load the kernel's cuse module (modprobe cuse)") from None
    running = True

    def stop(signum, frame):
        nonlocal running
        running = False
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while running:
            try:
                msg = os.read(fd, READ_SIZE)
            except InterruptedError:
                continue
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.EINTR, errno.EAGAIN):
                    continue   # a request interrupted before we read it
                if e.errno == errno.ENODEV:
                    log("the kernel closed the device")
                    return
                raise
            length, opcode, unique = IN_HEADER.unpack_from(msg)[:3]
            body = msg[IN_HEADER.size:length]
            if opcode == CUSE_INIT:
                major, minor, _unused, _flags = CUSE_INIT_IN.unpack_from(body)
                if major != FUSE_KERNEL_VERSION or minor < 16:
                    raise SystemExit(f"vcio-cuse: kernel FUSE protocol {major}.{minor}; need 7.16 or later "
                                     "(ioctl retries)")
                # The kernel's own minor: every structure is then laid out as it expects.
                info = b"DEVNAME=vcio\0"
                reply(fd, unique, 0, CUSE_INIT_OUT.pack(FUSE_KERNEL_VERSION, minor, 0, CUSE_UNRESTRICTED_IOCTL,
                                                        MAX_MESSAGE, MAX_MESSAGE, 0, 0) + info)
                log(f"/dev/vcio registered (FUSE {major}.{minor}); ioctl 0x{device.native_request:08X}"
                    + (f", compat 0x{device.compat_request:08X}" if device.native_request != device.compat_request else ""))
                if args.ready:
                    with open(args.ready, "w") as f:
                        f.write(f"{os.getpid()}\n")
                continue
            answer = device.handle(opcode, body)
            if answer is not None:
                reply(fd, unique, *answer)
    except KeyboardInterrupt:
        pass
    finally:
        os.close(fd)
        transport.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gpu-mem", type=int, default=76, help="gpu_mem in MiB (default 76, a 1 GB board's)")
    p.add_argument("--vc-base", type=lambda s: int(s, 0), default=None,
                   help="where GPU memory starts (default: the end of System RAM in /proc/iomem)")
    p.add_argument("--state-dir", default="/run/pimem-firmware", help="the emulator's state (cleared at reboot)")
    p.add_argument("--project", default=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                   help="the pimem checkout to take the emulator from")
    p.add_argument("--ready", help="write the daemon's pid here once /dev/vcio is registered")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("vcio-cuse: needs root (/dev/cuse, /dev/mem)")
    serve(args)


if __name__ == "__main__":
    main()
