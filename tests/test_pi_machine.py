"""scripts/pi-machine/vcio_cuse.py: the CUSE /dev/vcio's ioctl answers, against a model of the kernel.

The kernel side (fs/fuse/ioctl.c fuse_do_ioctl in unrestricted mode) is modelled here: it sends
the ioctl with the data of the in-iovecs the server asked for, follows FUSE_IOCTL_RETRY replies
and finally copies the reply's data to the out-iovecs. On the machine itself the real kernel
does this (scripts/pi-machine.sh runs pimem's selftest through it).
"""
from __future__ import annotations

import errno
import importlib.util
import struct
from pathlib import Path

import pytest

from pimem.firmware.transport import EmulatorTransport, ioctl_property_number

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("vcio_cuse", REPO / "scripts" / "pi-machine" / "vcio_cuse.py")
vc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vc)

MIB = 2**20
ARG = 0x1000   # where the caller's buffer sits in the model's "user memory"


def kernel_ioctl(device, cmd: int, user: bytearray, compat: bool = False) -> tuple[int, int]:
    """What fuse_do_ioctl does for one ioctl: returns (-errno or result, rounds)."""
    flags = vc.FUSE_IOCTL_UNRESTRICTED | (vc.FUSE_IOCTL_COMPAT if compat else 0)
    in_iov: list[tuple[int, int]] = []
    out_iov: list[tuple[int, int]] = []
    for rounds in range(1, 5):
        data = b"".join(bytes(user[b - ARG:b - ARG + n]) for b, n in in_iov)
        out_size = sum(n for _, n in out_iov)
        body = vc.IOCTL_IN.pack(1, flags, cmd, ARG, len(data), out_size) + data
        error, payload = device.handle(vc.FUSE_IOCTL, body)
        if error:
            return -error, rounds
        result, oflags, n_in, n_out = vc.IOCTL_OUT.unpack_from(payload)
        rest = payload[vc.IOCTL_OUT.size:]
        if oflags & vc.FUSE_IOCTL_RETRY:
            assert len(rest) == (n_in + n_out) * vc.IOVEC.size   # fuse_copy_ioctl_iovec: else EIO
            iovs = [vc.IOVEC.unpack_from(rest, i * vc.IOVEC.size) for i in range(n_in + n_out)]
            assert all(ARG <= b and b - ARG + n <= len(user) for b, n in iovs), "outside the caller's buffer"
            in_iov, out_iov = iovs[:n_in], iovs[n_in:]
            continue
        assert len(rest) <= out_size   # fuse_do_ioctl: "transferred > inarg.out_size" is EIO
        pos = 0
        for b, n in out_iov:
            chunk = rest[pos:pos + n]
            user[b - ARG:b - ARG + len(chunk)] = chunk
            pos += len(chunk)
        return result, rounds
    raise AssertionError("the server asked to retry more than twice")


@pytest.fixture
def device(tmp_path):
    physical = tmp_path / "mem"
    with open(physical, "wb") as f:
        f.truncate(2**30)
    transport = EmulatorTransport(tmp_path / "fw", 76 * MIB, vc_base=0x3B400000, physical_memory=physical)
    dev = vc.VcioDevice(transport, ioctl_property_number(), ioctl_property_number(4))
    dev.physical = physical
    return dev


def message(*tag_words: int) -> bytearray:
    words = (4 * (len(tag_words) + 3), 0, *tag_words, 0)
    return bytearray(struct.pack(f"<{len(words)}I", *words))


def test_board_revision_takes_three_rounds(device):
    user = message(0x00010002, 4, 0, 0)
    assert kernel_ioctl(device, ioctl_property_number(), user) == (0, 3)
    w = struct.unpack("<7I", user)
    assert w[1] == 0x80000000 and w[4] == 0x80000004 and w[5] == 0xA02082


def test_allocate_lock_gives_the_gpu_range_and_initialises_physical_memory(device):
    user = message(0x0003000C, 12, 0, 8192, 4096, 4 | 16)   # DIRECT | ZERO
    with open(device.physical, "r+b") as f:
        f.seek(0x3B400000)
        f.write(b"\x5a" * 8192)
    assert kernel_ioctl(device, ioctl_property_number(), user)[0] == 0
    handle = struct.unpack("<9I", user)[5]
    user = message(0x0003000D, 4, 0, handle)
    assert kernel_ioctl(device, ioctl_property_number(), user)[0] == 0
    bus = struct.unpack("<7I", user)[5]
    assert bus == 0xFB400000   # alias 0xC, at vc_base
    with open(device.physical, "rb") as f:
        f.seek(bus & 0x3FFFFFFF)
        assert f.read(8192) == bytes(8192)


def test_firmware_error_is_einval_and_leaves_the_buffer(device):
    user = message(0x00010002, 400, 0, 0)   # a value buffer past the end: the firmware's parse error
    before = bytes(user)
    assert kernel_ioctl(device, ioctl_property_number(), user)[0] == -errno.EINVAL
    assert bytes(user) == before


@pytest.mark.parametrize("cmd, compat, ok", [
    (ioctl_property_number(), False, True),
    (ioctl_property_number(4), True, True),                   # a 32-bit process on a 64-bit kernel
    (ioctl_property_number(8), True, False),                  # compat_ioctl takes only the 32-bit number
    (0xC0086401, False, False),
])
def test_only_the_property_ioctl_is_taken(device, cmd, compat, ok):
    if ioctl_property_number() == ioctl_property_number(4) and cmd == ioctl_property_number(8):
        pytest.skip("one number on a 32-bit interpreter")
    user = message(0x00010002, 4, 0, 0)
    result = kernel_ioctl(device, cmd, user, compat=compat)[0]
    assert (result == 0) == ok and (ok or result == -errno.EINVAL)


@pytest.mark.parametrize("size", [0, 4, 8, 11])
def test_a_size_under_12_is_einval(device, size):
    user = message(0x00010002, 4, 0, 0)
    struct.pack_into("<I", user, 0, size)
    assert kernel_ioctl(device, ioctl_property_number(), user)[0] == -errno.EINVAL


def test_open_and_release_are_answered(device):
    error, payload = device.handle(vc.FUSE_OPEN, struct.pack("<II", 2, 0))
    assert error == 0 and len(payload) == vc.OPEN_OUT.size
    assert device.handle(vc.FUSE_RELEASE, bytes(24)) == (0, b"")
    assert device.handle(vc.FUSE_READ, bytes(40))[0] == errno.EINVAL   # vcio has no read
