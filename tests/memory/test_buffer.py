"""GpuBuffer lifecycle and misuse, on the emulator."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from pimem.memory.buffer import wait_for_releases

from pimem import GpuBuffer, MemFlag
from pimem.firmware.board import decode_revision
from pimem.firmware.emulator import FirmwareEmulator
from pimem.exc import BufferClosedError, GpuMemoryExhausted, UnsupportedBoard, UsageError, ViewsOutliveBuffer
from pimem.firmware.memflags import Alias

MiB = 1 << 20


def firmware(emu_dir) -> FirmwareEmulator:
    """A second look at the firmware state, as another process would see it."""
    return FirmwareEmulator(emu_dir)


def test_roundtrip_and_alias_per_flag(backend, emu_dir):
    for flag, alias in [(MemFlag.DIRECT, Alias.DIRECT), (MemFlag.COHERENT, Alias.COHERENT),
                        (MemFlag.L1_NONALLOCATING, Alias.L1_NONALLOCATING)]:
        with GpuBuffer(3 * 4096 + 5, flag | MemFlag.ZERO, backend=backend) as buf:
            assert buf.alias is alias
            assert buf.phys_address == buf.bus_address & 0x3FFFFFFF
            assert buf.array.size == 3 * 4096 + 5 and not buf.array.any()
            buf.array[:] = 0xA5
            # Another process's view of the firmware memory sees the bytes.
            fw = firmware(emu_dir)
            with open(fw.memory_path, "rb") as f:
                f.seek(buf.phys_address - fw.vc_base)
                assert f.read(buf.size) == b"\xa5" * buf.size
    assert firmware(emu_dir).allocations() == []
    assert backend.ledger.entries() == []


def test_alias_is_read_from_the_bus_address_not_the_flag(backend, monkeypatch):
    real_lock = backend.mailbox.lock
    # A firmware that hands DIRECT memory out through the 0x4 alias.
    monkeypatch.setattr(backend.mailbox, "lock", lambda h: (real_lock(h) & 0x3FFFFFFF) | 0x40000000)
    with GpuBuffer(4096, MemFlag.DIRECT, backend=backend) as buf:
        assert buf.alias is Alias.L1_NONALLOCATING


def test_default_init_is_all_ones_without_zero_flag(backend):
    with GpuBuffer(8192, MemFlag.DIRECT, backend=backend) as buf:
        assert (buf.array == 0xFF).all()


def test_double_close_and_use_after_close(backend, emu_dir):
    buf = GpuBuffer(4096, backend=backend)
    buf.close()
    buf.close()
    assert buf.closed
    with pytest.raises(BufferClosedError, match="closed"):
        buf.array
    with pytest.raises(BufferClosedError):
        buf.address
    with pytest.raises(BufferClosedError):
        buf.view(np.uint32)
    assert firmware(emu_dir).allocations() == []


def test_exception_inside_with_releases_and_propagates(backend, emu_dir):
    with pytest.raises(ZeroDivisionError):
        with GpuBuffer(MiB, backend=backend) as buf:
            buf.array[:] = 1
            1 / 0
    assert firmware(emu_dir).allocations() == []
    assert backend.ledger.entries() == []


def test_view_outliving_buffer_keeps_memory_until_deleted(backend, emu_dir):
    with GpuBuffer(4 * 4096, backend=backend) as buf:
        view = buf.view(np.uint32)[100:200]
        with pytest.warns(ViewsOutliveBuffer, match="stay allocated"):
            buf.close()
    # Still allocated and mapped: writing through the view is safe.
    assert len(firmware(emu_dir).allocations()) == 1
    view[:] = 7
    assert (view == 7).all()
    del view
    gc.collect()
    assert wait_for_releases()   # the collector's releases run in pimem's releasing thread
    assert firmware(emu_dir).allocations() == []
    assert backend.ledger.entries() == []


def test_buffer_dropped_without_close_is_released(backend, emu_dir):
    buf = GpuBuffer(4096, backend=backend)
    buf.array[0] = 1
    del buf
    gc.collect()
    assert wait_for_releases()
    assert firmware(emu_dir).allocations() == []


def test_out_of_memory_message(backend, emu_dir):
    with pytest.raises(GpuMemoryExhausted) as e:
        GpuBuffer(128 * MiB, backend=backend)
    msg = str(e.value)
    assert "asked 128 MiB" in msg and "76 MiB" in msg and "gpu_mem=" in msg and "config.txt" in msg
    assert firmware(emu_dir).allocations() == []


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_bad_sizes(backend, size):
    with pytest.raises(UsageError, match="positive"):
        GpuBuffer(size, backend=backend)


@pytest.mark.parametrize("args, kwargs, named", [
    ((4096, "DIRECT"), {}, "flags='DIRECT'"),
    ((4096, None), {}, "flags=None"),
    ((4096, -1), {}, "flags=-1"),
    ((4096, 0x180), {}, "flags=384"),
    ((4096, MemFlag.DIRECT | MemFlag.DISCARDABLE), {}, "DISCARDABLE"),
    ((4096, MemFlag.DIRECT | MemFlag.ZERO | MemFlag.NO_INIT), {}, "ZERO and NO_INIT"),
    ((4096,), {"alignment": "4096"}, "alignment='4096'"),
    ((4096,), {"alignment": 3000}, "alignment=3000"),
    ((4096,), {"backend": 42}, "backend=42"),
    ((4096,), {"backend": "gpu"}, "'gpu'"),
    (("4096",), {}, "size='4096'"),
    ((1 << 40,), {}, "below 4 GiB"),
])
def test_bad_arguments_name_the_argument(emu_dir, args, kwargs, named):
    with pytest.raises(UsageError) as e:
        GpuBuffer(*args, **kwargs)
    assert named in str(e.value), str(e.value)
    assert firmware(emu_dir).allocations() == []


def test_numpy_integers_and_backend_names_are_fine(emu_dir):
    with GpuBuffer(np.int64(4096), np.int32(int(MemFlag.DIRECT)), backend="emulator", alignment=np.uint16(4096)) as b:
        assert b.size == 4096 and b.flags == MemFlag.DIRECT


def test_normal_alias_refused(backend):
    with pytest.raises(UsageError, match="NORMAL"):
        GpuBuffer(4096, MemFlag.ZERO, backend=backend)


def test_pi5_says_it_cannot(backend, emu_dir):
    backend.board = decode_revision("c04170")
    with pytest.raises(UnsupportedBoard, match="Pi 5|5 Model B|mailbox"):
        GpuBuffer(4096, backend=backend)
    assert firmware(emu_dir).allocations() == []


def test_failed_mapping_releases(backend, emu_dir, monkeypatch):
    def refuse(phys, size):
        raise OSError("no mapping today")
    monkeypatch.setattr(backend.transport, "map_physical", refuse)
    with pytest.raises(OSError):
        GpuBuffer(4096, backend=backend)
    assert firmware(emu_dir).allocations() == []
    assert backend.ledger.entries() == []


def _child(code: str, emu_dir, **kw) -> subprocess.Popen:
    env = dict(os.environ, PIMEM_BACKEND="emulator", PIMEM_EMULATOR_DIR=str(emu_dir))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_a_detached_view_outlives_its_buffer(emu_dir):
    # A with-block left on an error detaches the views; the scratch memory they point at must
    # stay mapped after the buffer object itself is gone (it used to be unmapped: a segfault).
    p = _child("""
        import gc
        from pimem import GpuBuffer
        try:
            with GpuBuffer(8192) as buf:
                view = buf.array[:16]
                raise ValueError
        except ValueError:
            pass
        del buf
        gc.collect()
        view[:] = 9
        print(int(view.sum()))
    """, emu_dir)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, (p.returncode, err)
    assert out.split() == ["144"]
    assert firmware(emu_dir).allocations() == []


def test_view_alive_at_exit_is_released_and_detached(emu_dir):
    p = _child("""
        import numpy as np
        from pimem import GpuBuffer
        buf = GpuBuffer(8192)
        keep = buf.view(np.uint32)
        keep[:] = 3
        print("ok")
    """, emu_dir)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert firmware(emu_dir).allocations() == []


def test_ctrl_c_in_the_middle_of_work_leaves_nothing(emu_dir):
    import signal
    import time
    p = _child("""
        import sys
        from pimem import GpuBuffer
        n = 0
        while True:
            with GpuBuffer(1 << 20) as a, GpuBuffer(1 << 20) as b:
                a.array[:] = 1
                b.array[:] = a.array
            n += 1
            if n == 3:
                print("running", flush=True)
    """, emu_dir)
    assert p.stdout.readline().strip() == "running"
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert "KeyboardInterrupt" in err
    assert firmware(emu_dir).allocations() == []


def test_sigkilled_process_leaks_and_next_process_reclaims(emu_dir, backend):
    import signal
    fw = firmware(emu_dir)
    whole = fw.free_bytes()
    p = _child("""
        import time
        from pimem import GpuBuffer
        bufs = [GpuBuffer(4 << 20) for _ in range(3)]
        print("holding", flush=True)
        time.sleep(60)
    """, emu_dir)
    assert p.stdout.readline().strip() == "holding"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    # The firmware does not notice the death: the memory is gone.
    assert len(fw.allocations()) == 3 and fw.free_bytes() == whole - 12 * MiB
    # A new process opening the mailbox takes it back.
    q = _child("""
        from pimem import get_backend
        b = get_backend()
        print(len(b.reclaimed), sum(e.size for e in b.reclaimed))
    """, emu_dir)
    out, err = q.communicate(timeout=60)
    assert out.split() == ["3", str(12 * MiB)], err
    assert "reclaimed 3 GPU allocation" in err
    assert fw.allocations() == [] and fw.free_bytes() == whole
    assert backend.ledger.entries() == []
