"""Choosing the backend, as gpiozero chooses a pin factory.

PIMEM_BACKEND=pi|emulator picks one. Unset: "pi" where /dev/vcio exists,
else the emulator, with a one-line notice. A backend bundles the
transport, the mailbox over it and the allocation ledger; opening one
reclaims what dead processes left.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..firmware.board import PERIPHERAL_WINDOWS, BoardRevision, decode_revision
from ..exc import RevisionError, UnsupportedBoard, UsageError
from .allocation import HeldAllocation, hold
from .ledger import Allocation, Ledger
from ..firmware.mailbox import Mailbox
from ..firmware.memflags import MemFlag
from ..firmware.transport import PAGE_SIZE, VCIO_PATH, EmulatorTransport, Transport, VcioTransport

if TYPE_CHECKING:
    from ..firmware.emulator import FirmwareEmulator

BACKENDS = ("pi", "emulator")
ENV_BACKEND = "PIMEM_BACKEND"


@dataclass
class Backend:
    name: str
    transport: Transport
    mailbox: Mailbox
    ledger: Ledger
    #: What opening this backend reclaimed from dead processes.
    reclaimed: list[Allocation]
    #: The board as its revision code says (None if the code does not decode).
    board: BoardRevision | None

    def require_memory_tags(self) -> None:
        """Raise UnsupportedBoard where the firmware offers no memory tags (Pi 5)."""
        if self.board is not None and not self.board.mailbox_alloc:
            raise UnsupportedBoard(
                f"{self.board.describe()}: its firmware does not give the ARM GPU memory through the "
                "mailbox (the memory tags are VideoCore IV/VI only). pimem's buffers and benchmarks need "
                "a Pi 1, 2, 3, Zero or 4; on this board use PIMEM_BACKEND=emulator and the recorded data"
            )

    def allocation(self, size: int, flags: MemFlag | int, alignment: int = PAGE_SIZE, *, lock: bool = True,
                   map: bool = False, ask: Callable[[], int] | None = None) -> HeldAllocation:
        """`size` bytes of GPU memory, held until released (a `with` block releases them at its end).

        In one section under the ledger's lock, with interrupts held back: allocate, record the
        handle in the ledger, then (`lock`) lock it and record its bus address, then (`map`) map it
        for the CPU. A failure anywhere in the section gives the memory back before the error
        propagates. `ask` replaces the allocate call: it returns the handle the firmware answered,
        or raises (lab 4 sends a student's own message this way).
        """
        return hold(self, size, flags, alignment, lock=lock, map=map, ask=ask)

    def through(self, transport: Transport) -> "Backend":
        """This backend with its messages carried by `transport`, a wrapper of its own (RecordingTransport):
        the same ledger and board."""
        return replace(self, transport=transport, mailbox=Mailbox(transport))

    def describe(self) -> str:
        return self.transport.describe()


_open: dict[str, Backend] = {}
_noticed = False


def default_backend_name() -> str:
    """The backend PIMEM_BACKEND names, or the one this machine suits."""
    name = os.environ.get(ENV_BACKEND, "").strip().lower()
    if name:
        if name not in BACKENDS:
            raise UsageError(f"{ENV_BACKEND}={name!r} is not a backend; use one of: {', '.join(BACKENDS)}")
        return name
    return "pi" if os.path.exists(VCIO_PATH) else "emulator"


def mappable_gpu_memory(base: int, size: int, board: BoardRevision | None) -> tuple[int, int, str]:
    """(base, size, note): the GPU memory [base, base + size) less the board's peripheral window.

    An unknown board is treated as a Pi 2/3, the boards whose window meets the GPU memory."""
    start, length = PERIPHERAL_WINDOWS.get(board.processor if board else "BCM2837", (0, 0))
    if length and base < start + length and start < base + size:
        return base, max(0, start - base), (f"; from 0x{start:08X} to 0x{start + length - 1:08X} the ARM "
                                              "sees the peripherals, not GPU memory")
    return base, size, ""


def open_backend(name: str, *, ledger_dir: str | os.PathLike | None = None,
                 emulator_dir: str | os.PathLike | None = None) -> Backend:
    """A new backend (not cached): for tests and tools that need their own."""
    if name not in BACKENDS:
        raise UsageError(f"backend {name!r} is not one of: {', '.join(BACKENDS)}")
    transport: Transport = VcioTransport() if name == "pi" else EmulatorTransport(emulator_dir)
    if ledger_dir is None:
        env = os.environ.get("PIMEM_LEDGER_DIR")
        ledger_dir = Path(env) if env else transport.default_ledger_dir()
    mailbox = Mailbox(transport)
    try:
        board: BoardRevision | None = decode_revision(mailbox.board_revision())
    except RevisionError:
        board = None
    # The one range the transport may ever map: the GPU memory the firmware reports, below the
    # peripherals' window where the board has one inside it (Pi 2/3: its top 16 MiB).
    vc = mailbox.vc_memory()
    transport.allow_mapping(*mappable_gpu_memory(vc.base, vc.size, board))
    ledger = Ledger(ledger_dir, name)
    reclaimed = [] if board is not None and not board.mailbox_alloc else ledger.reclaim(mailbox)
    if reclaimed:
        total = sum(e.size for e in reclaimed)
        print(f"pimem: reclaimed {len(reclaimed)} GPU allocation(s), {total} bytes, left by "
              f"process(es) {sorted({e.pid for e in reclaimed})} that died holding them", file=sys.stderr)
    return Backend(name, transport, mailbox, ledger, reclaimed, board)


def reset_emulator(gpu_mem: int | None = None, state_dir: str | os.PathLike | None = None) -> "FirmwareEmulator":
    """Boot the emulator afresh (FirmwareEmulator.reset), unless a living process uses it.

    Its allocations would vanish under a process that still holds their handles: the fresh
    firmware hands the same handles and memory out again, and that process's release would free
    someone else's buffer. So a reset is refused while any other ledger owner lives, naming them.
    """
    from ..exc import UsageError
    from ..firmware.emulator import FirmwareEmulator
    from ..firmware.transport import default_emulator_dir

    state_dir = Path(state_dir) if state_dir is not None else default_emulator_dir()
    env = os.environ.get("PIMEM_LEDGER_DIR")
    ledger_dir = Path(env) if env else state_dir / "ledger"
    close_backends()   # this process's own handle on the old state goes with it
    if ledger_dir.is_dir():
        alive = Ledger(ledger_dir, "emulator").live_owners()
        if alive:
            raise UsageError(f"the emulator in {state_dir} is in use by process(es) {', '.join(map(str, alive))}, "
                             "which may hold GPU buffers; a reset now would hand their memory to someone else. "
                             "Stop them first (close the notebooks' kernels), then reset")
    return FirmwareEmulator.reset(state_dir, gpu_mem=gpu_mem)


def get_backend(name: str | None = None) -> Backend:
    """The process's backend of that name (default: default_backend_name()), opened once."""
    global _noticed
    chosen = name or default_backend_name()
    if chosen not in _open:
        if name is None and chosen == "emulator" and not os.environ.get(ENV_BACKEND) and not _noticed:
            _noticed = True
            print(f"pimem: no {VCIO_PATH} here, so using the firmware emulator "
                  f"(set {ENV_BACKEND}=pi or emulator to choose)", file=sys.stderr)
        _open[chosen] = open_backend(chosen)
    return _open[chosen]


def close_backends() -> None:
    """Forget the opened backends (their buffers keep their own references)."""
    for b in _open.values():
        b.transport.close()
    _open.clear()
