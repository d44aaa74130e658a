"""The ledger never releases what a live process owns, and cannot be steered by other users."""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import pwd
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from pimem.memory import backend as backend_mod
from pimem.exc import UnsafeDirectory
from pimem.memory.ledger import Allocation, Ledger, parse_entry, process_alive, process_start_time
from pimem.firmware.memflags import MemFlag


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_process_alive():
    me = os.getpid()
    assert process_alive(me, process_start_time(me))
    assert not process_alive(me, (process_start_time(me) or 0) + 1)  # a reused pid
    assert not process_alive(dead_pid(), None)


def _dead_owner(ledger: Ledger) -> str:
    """An owner file that no process holds: what a killed process leaves."""
    name = f"owner-{dead_pid()}-{os.urandom(8).hex()}.lock"
    (ledger.directory / name).write_bytes(b"")
    return name


def _entry_as(ledger: Ledger, handle: int, bus: int | None, *, owner: str | None, pid: int | None = None,
              size: int = 4096) -> Allocation:
    """An entry as another (dead) process would have written it."""
    e = Allocation(pid or os.getpid(), None, handle, size, int(MemFlag.DIRECT), bus, 0.0, ledger.backend, owner)
    (ledger.directory / e.filename).write_text(json.dumps(dataclasses.asdict(e)))
    return e


def test_reclaim_only_dead_and_only_same_address(backend):
    mb, ledger = backend.mailbox, backend.ledger
    dead = _dead_owner(ledger)
    h1 = mb.allocate(4096, 4096, MemFlag.DIRECT)
    bus1 = mb.lock(h1)
    _entry_as(ledger, h1, bus1, owner=dead, pid=1234567)
    # An entry of a dead process whose handle now locks elsewhere: not released.
    h2 = mb.allocate(4096, 4096, MemFlag.DIRECT)
    bus2 = mb.lock(h2)
    _entry_as(ledger, h2, bus2 ^ 0x1000, owner=dead, pid=1234568)
    # A live process's allocation (ours: our owner file is flocked): untouched.
    h3 = mb.allocate(4096, 4096, MemFlag.DIRECT)
    bus3 = mb.lock(h3)
    with ledger.locked():
        ledger.record(h3, 4096, MemFlag.DIRECT, bus3)
    freed = ledger.reclaim(mb)
    assert [e.handle for e in freed] == [h1]
    assert mb.lock(h2) == bus2 and mb.lock(h3) == bus3  # both still allocated
    assert {e.handle for e in ledger.entries()} == {h3}
    assert not (ledger.directory / dead).exists(), "a dead owner's file is removed once its entries are gone"


def test_entry_killed_between_allocate_and_lock_is_reclaimed(backend):
    mb, ledger = backend.mailbox, backend.ledger
    h = mb.allocate(4096, 4096, MemFlag.DIRECT)
    _entry_as(ledger, h, None, owner=_dead_owner(ledger), pid=1234569)
    assert [e.handle for e in ledger.reclaim(mb)] == [h]
    assert backend.transport.firmware.allocations() == []


def test_planted_entry_cannot_free_a_live_handle(backend):
    """A dead pid's entry for a handle a live process holds: only forgotten, never released."""
    mb, ledger = backend.mailbox, backend.ledger
    h = mb.allocate(4096, 4096, MemFlag.DIRECT)
    bus = mb.lock(h)
    with ledger.locked():
        ledger.record(h, 4096, MemFlag.DIRECT, bus)   # ours, live
    _entry_as(ledger, h, bus, owner=None, pid=dead_pid())          # planted, pid-based, dead
    _entry_as(ledger, h, bus, owner=_dead_owner(ledger), pid=4000000)  # planted, dead owner
    assert ledger.reclaim(mb) == []
    assert mb.lock(h) == bus
    assert [e.pid for e in ledger.entries()] == [os.getpid()]


def test_liveness_does_not_depend_on_proc(backend, monkeypatch):
    """Under qemu-user /proc's start time reads differently: a live buffer must survive reclaim."""
    from pimem import GpuBuffer
    from pimem.memory import ledger as ledger_mod

    with GpuBuffer(4096, backend=backend) as buf:
        monkeypatch.setattr(ledger_mod, "process_start_time", lambda pid: None)
        monkeypatch.setattr(ledger_mod, "process_alive", lambda pid, start: False)
        assert backend.ledger.reclaim(backend.mailbox) == []
        buf.array[:] = 7
        assert backend.transport.firmware.allocations()[0]["handle"] == buf.handle


def test_killed_process_is_reclaimed_whatever_its_pid(emu_dir, backend):
    code = textwrap.dedent("""
        import os, sys
        from pimem import GpuBuffer
        b = GpuBuffer(8192)
        print(b.handle, flush=True)
        sys.stdin.read()
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    handle = int(p.stdout.readline())
    assert backend.ledger.reclaim(backend.mailbox) == [], "the child is alive: nothing to reclaim"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert [e.handle for e in backend.ledger.reclaim(backend.mailbox)] == [handle]


def test_complete_temporary_entry_is_reclaimed_and_stale_ones_removed(backend):
    mb, ledger = backend.mailbox, backend.ledger
    h = mb.allocate(4096, 4096, MemFlag.DIRECT)
    bus = mb.lock(h)
    e = _entry_as(ledger, h, bus, owner=_dead_owner(ledger), pid=1234570)
    path = ledger.directory / e.filename
    path.rename(ledger.directory / f".{e.filename}.0123456789abcdef.tmp")   # killed before the rename
    (ledger.directory / f".{e.filename}.fedcba9876543210.tmp").write_text('{"pid": 12')   # half-written
    assert [x.handle for x in ledger.reclaim(mb)] == [h]
    assert [p.name for p in ledger.directory.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("content", [
    '{not json', '[]', '{"pid": "12", "handle": 1, "size": 4096, "flags": 4, "bus": 0}',
    '{"pid": 0, "handle": 1, "size": 4096, "flags": 4, "bus": 0}',
    '{"pid": -5, "handle": 1, "size": 4096, "flags": 4, "bus": 0}',
    '{"pid": 99999999999999999999, "handle": 1, "size": 4096, "flags": 4, "bus": 0}',
    '{"pid": 5, "handle": 1, "size": 4096, "flags": 4, "bus": 0, "owner": "../../etc/passwd"}',
    '[' * 100000,
])
def test_malformed_entries_are_skipped_with_a_warning(backend, capsys, content):
    (backend.ledger.directory / "5-1.json").write_text(content)
    assert backend.ledger.entries() == []
    err = capsys.readouterr().err
    assert "5-1.json" in err and "ignoring" in err, err
    backend.ledger.reclaim(backend.mailbox)   # no crash; pid 5's file cannot be a live writer's
    from pimem.cli import main

    assert main(["cleanup"]) == 0


def test_entry_whose_name_does_not_match_its_content():
    good = {"pid": 5, "handle": 1, "size": 4096, "flags": 4, "bus": 0}
    assert parse_entry(json.dumps(good).encode(), "5-1.json").handle == 1
    with pytest.raises(ValueError, match="name says pid 6"):
        parse_entry(json.dumps(good).encode(), "6-1.json")


def test_fifo_in_the_ledger_does_not_hang(backend):
    os.mkfifo(backend.ledger.directory / "7-1.json")
    assert backend.ledger.entries() == []


# --- directories other users could steer ---------------------------------------------

def test_ledger_dir_is_made_private_under_any_umask(tmp_path):
    old = os.umask(0)
    try:
        d = Ledger(tmp_path / "ledger", "emulator").directory
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700


@pytest.mark.parametrize("make", ["world-writable", "symlink", "file"])
def test_unsafe_ledger_dir_is_refused(tmp_path, make):
    d = tmp_path / "ledger"
    if make == "world-writable":
        d.mkdir()
        d.chmod(0o777)
    elif make == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        d.symlink_to(tmp_path / "elsewhere")
    else:
        d.write_text("")
    with pytest.raises(UnsafeDirectory, match=str(d)) as e:
        Ledger(d, "emulator")
    assert "PIMEM_LEDGER_DIR" in str(e.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory owned by another user")
def test_foreign_owned_dir_is_refused(tmp_path):
    d = tmp_path / "ledger"
    d.mkdir(mode=0o700)
    os.chown(d, pwd.getpwnam("nobody").pw_uid, -1)
    with pytest.raises(UnsafeDirectory, match="belongs to uid"):
        Ledger(d, "emulator")
    with pytest.raises(UnsafeDirectory, match="belongs to uid"):
        backend_mod.open_backend("emulator", emulator_dir=d)


ATTACKER_UID = 65534   # nobody: root can run a process as any uid, no account needed


@pytest.fixture
def shared_tmp():
    """A directory like /tmp (sticky, world-writable), outside pytest's private one."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="pimem-shared-")
    os.chmod(path, 0o1777)
    yield pathlib.Path(path)
    shutil.rmtree(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a process as a second user")
def test_another_user_cannot_plant_an_entry_that_frees_a_live_handle(backend, shared_tmp):
    """A real second user's process, in a shared /tmp, tries every way in."""
    mb = backend.mailbox
    ledger = Ledger(shared_tmp / "pimem-0", "emulator")   # root's ledger where anyone could have made it
    h = mb.allocate(4096, 4096, MemFlag.DIRECT)
    bus = mb.lock(h)
    with ledger.locked():
        ledger.record(h, 4096, MemFlag.DIRECT, bus)
    planted = Allocation(dead_pid(), None, h, 4096, int(MemFlag.DIRECT), bus, 0.0, ledger.backend, None)
    text = json.dumps(dataclasses.asdict(planted))

    def as_attacker(script: str) -> subprocess.CompletedProcess:
        return subprocess.run(["/bin/sh", "-c", script], user=ATTACKER_UID, group=ATTACKER_UID,
                              capture_output=True, text=True, timeout=30)

    plant = f"echo '{text}' > {ledger.directory}/{planted.filename}"
    # Our ledger is 0700: the write is refused by its mode (the shared parent lets anyone in).
    r = as_attacker(plant)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    assert ledger.reclaim(mb) == [] and mb.lock(h) == bus
    # Had it been open to others, the plant would land, and pimem refuses the directory.
    os.chmod(ledger.directory, 0o777)
    assert as_attacker(plant).returncode == 0
    with pytest.raises(UnsafeDirectory, match="writable by group or others"):
        Ledger(ledger.directory, "emulator")
    os.chmod(ledger.directory, 0o700)
    # The predictable name made first by the attacker: as its own directory, a world-writable
    # one, or a symlink to ours. Each is refused.
    r = as_attacker(f"cd {shared_tmp} && mkdir -m 700 own && echo '{text}' > own/{planted.filename} && "
                    f"mkdir -m 777 open && echo '{text}' > open/{planted.filename} && "
                    f"ln -s {ledger.directory} link")
    assert r.returncode == 0, r
    for name, why in (("own", f"belongs to uid {ATTACKER_UID}"), ("open", f"belongs to uid {ATTACKER_UID}"),
                      ("link", "symbolic link")):
        with pytest.raises(UnsafeDirectory, match=why):
            Ledger(shared_tmp / name, "emulator")
    # Even the plant that landed (a dead pid's entry for our live handle) frees nothing.
    assert ledger.reclaim(mb) == [] and mb.lock(h) == bus


def test_planted_symlinks_are_never_followed(backend, tmp_path):
    """Symlinks at the names pimem writes: the lock file, an entry, the state file."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    lock = backend.ledger.directory / "ledger.lock"
    lock.unlink(missing_ok=True)
    lock.symlink_to(victim)
    from pimem.exc import FolderError

    with pytest.raises(FolderError, match="symbolic link"):
        with backend.ledger.locked():
            pass
    lock.unlink()
    state = backend.transport.firmware.state_dir / "state.jsonl"
    state.unlink()
    state.symlink_to(victim)
    from pimem.firmware.emulator import FirmwareEmulator
    from pimem.exc import CorruptState

    with pytest.raises(CorruptState, match="state.jsonl"):
        FirmwareEmulator(state.parent)
    assert victim.read_text() == "precious"


# --- the deadlock: a release from the garbage collector inside a locked section ---------

def test_gc_release_inside_a_locked_section_does_not_deadlock(emu_dir):
    code = textwrap.dedent("""
        import gc
        from pimem import GpuBuffer, get_backend
        gc.disable()
        backend = get_backend()
        for i in range(200):
            b = GpuBuffer(4096)
            holder = {"view": b.array[:16]}
            holder["self"] = holder            # a cycle: only the collector can free it
            b.close()
            del b, holder
            with backend.ledger.locked():
                gc.collect()                   # the collector fires while we hold the ledger lock
        gc.collect()
        from pimem.memory.buffer import wait_for_releases
        wait_for_releases()
        print("left", len(backend.transport.firmware.allocations()))
    """)
    env = dict(os.environ, PIMEM_EMULATOR_DIR=str(emu_dir), PYTHONWARNINGS="ignore")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["left", "0"], p.stdout + p.stderr


@pytest.mark.filterwarnings("ignore::pimem.exc.ViewsOutliveBuffer")
def test_gc_release_inside_an_emulator_call_is_deferred(backend):
    """The collector firing inside the emulator's own lock: the release waits, then happens."""
    import gc

    from pimem import GpuBuffer
    from pimem.safefs import locks_held

    b = GpuBuffer(4096, backend=backend)
    holder = {"view": b.array[:16]}
    holder["self"] = holder
    b.close()
    del b, holder
    fw = backend.transport.firmware
    with fw._locked():
        assert locks_held() == 1
        gc.collect()
        assert len(fw._load()["blocks"]) == 1, "released inside the lock: it must wait"
    from pimem.memory.buffer import wait_for_releases

    assert wait_for_releases(30), "the release never happened"
    assert fw.allocations() == [], "released once the lock was dropped"


# --- damaged emulator state: one clear line ----------------------------------------------

@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated", "wrong type", "directory", "no memory",
                                    "short memory", "negative offset", "block past the heap"])
def test_damaged_emulator_state_is_one_clear_line(emu_dir, capsys, damage):
    import shutil

    from pimem.cli import main

    assert main(["info"]) == 0
    backend_mod.close_backends()
    state, memory = emu_dir / "state.jsonl", emu_dir / "memory.bin"
    if damage == "garbage":
        state.write_text("\x00\x01garbage")
    elif damage == "empty":
        state.write_text("")
    elif damage == "truncated":
        state.write_text(state.read_text()[:20])
    elif damage == "wrong type":
        state.write_text("[1, 2, 3]")
    elif damage == "directory":
        state.unlink()
        state.mkdir()
    elif damage == "no memory":
        memory.unlink()
    elif damage in ("negative offset", "block past the heap"):
        st = json.loads(state.read_text().splitlines()[-1])
        offset = -4096 if damage == "negative offset" else st["heap_size"]
        st["blocks"] = [{"handle": 1, "offset": offset, "size": 4096, "align": 4096, "flags": 4, "lock_count": 0}]
        state.write_text(json.dumps(st) + "\n")
    else:
        with open(memory, "r+b") as f:
            f.truncate(4096)
    kept = state.read_bytes() if state.is_file() else None
    capsys.readouterr()
    assert main(["info"]) == 2
    assert (state.read_bytes() if state.is_file() else None) == kept, "a damaged state is reported, not rewritten"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert str(emu_dir) in err[0] and "cleanup --reset-emulator" in err[0], err
    if damage == "no memory":
        assert "memory.bin" in err[0] and "missing" in err[0], err
    backend_mod.close_backends()
    assert main(["cleanup", "--reset-emulator"]) == 0
    assert main(["info"]) == 0
    shutil.rmtree(emu_dir / "ledger", ignore_errors=True)


# --- SIGTERM: every buffer released, then the conventional death --------------------------

def test_sigterm_releases_every_buffer(emu_dir, backend):
    code = textwrap.dedent("""
        import faulthandler, signal, sys
        import numpy as np
        from pimem import GpuBuffer
        faulthandler.register(signal.SIGUSR1)   # the test asks for the stacks if this hangs
        kept = [GpuBuffer(8192), GpuBuffer(4096)]
        view = kept[0].array[:8]          # a view alive too
        print("ready", flush=True)
        sys.stdin.read()
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=dict(os.environ, PIMEM_EMULATOR_DIR=str(emu_dir)))
    assert p.stdout.readline().strip() == "ready"
    assert len(backend.transport.firmware.allocations()) == 2
    p.send_signal(signal.SIGTERM)
    try:
        status = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGUSR1)
        p.stdin.close()
        time.sleep(1)
        p.kill()
        pytest.fail("SIGTERM did not end the process within 30 s; its threads were at:\n" + p.stderr.read())
    assert status == -signal.SIGTERM, "it must still die of SIGTERM (status 143 in a shell)"
    assert backend.transport.firmware.allocations() == [], "SIGTERM must release every buffer first"
    assert backend.ledger.entries() == []


def test_reset_is_refused_while_another_process_holds_buffers(emu_dir, capsys):
    # A holds handles; a reset then would let B get A's handle 1, and A's close free B's live buffer.
    from pimem.cli import main

    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time
        from pimem import GpuBuffer
        a, b = GpuBuffer(4096), GpuBuffer(4096)
        print("holding", flush=True)
        sys.stdin.readline()
        a.close(); b.close()
    """)], env=dict(os.environ, PIMEM_EMULATOR_DIR=str(emu_dir)), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert main(["cleanup", "--reset-emulator"]) == 2
        err = capsys.readouterr().err
        assert str(holder.pid) in err and "in use" in err and "Traceback" not in err
        from pimem.firmware.emulator import FirmwareEmulator

        assert len(FirmwareEmulator(emu_dir).allocations()) == 2, "the refused reset touched nothing"
    finally:
        holder.communicate("go\n", timeout=60)
    assert holder.returncode == 0
    assert main(["cleanup", "--reset-emulator"]) == 0
