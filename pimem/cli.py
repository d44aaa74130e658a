"""The command line: python -m pimem COMMAND (also installed as `pimem`)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from . import __version__
from .backend import BACKENDS, Backend, get_backend
from .board import decode_revision
from .exc import PimemError
from .memflags import BusAddress, parse_address

Command = Callable[[argparse.Namespace], int]


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2))


def _backend(args: argparse.Namespace) -> Backend:
    return get_backend(args.backend)


def cmd_info(args: argparse.Namespace) -> int:
    from .info import system_info

    info = system_info(_backend(args))
    if args.json:
        _print_json(info.as_dict())
    else:
        print("\n".join(info.lines()))
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    decoded = [BusAddress.decode(parse_address(a)) for a in args.addresses]
    if args.json:
        _print_json([d.as_dict() for d in decoded])
        return 0
    for d in decoded:
        a = d.alias
        print(f"0x{d.bus:08X}: alias {a} ({a.name} on a BCM2837), physical 0x{d.phys:08X}")
        print(f"    manual (BCM2835 ARM Peripherals 1.2.4): {a.manual}")
        print(f"    firmware (mailbox wiki, {a.name} flag):  {a.firmware}")
        if a.sources_disagree:
            print("    note: the manual and the firmware's comments disagree about this alias")
    return 0


def cmd_revision(args: argparse.Namespace) -> int:
    revs = [decode_revision(c) for c in args.codes]
    if args.json:
        from dataclasses import asdict
        _print_json([asdict(r) for r in revs])
        return 0
    for r in revs:
        alloc = "yes" if r.mailbox_alloc else "no (no mailbox memory tags)"
        print(f"{r.code:x}: {r.describe()}\n    GPU memory through the mailbox: {alloc}")
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    from .selftest import selftest

    results = selftest(_backend(args))
    if args.json:
        _print_json([r.as_dict() for r in results])
    else:
        print(f"{'flag':18} {'handle':>6} {'bus':>10} {'alias':>5} {'phys':>10}  result")
        for r in results:
            d = r.as_dict()
            print(f"{r.flag:18} {r.handle or '-':>6} {d['bus'] or '-':>10} {r.alias or '-':>5} "
                  f"{d['phys'] or '-':>10}  {d['result']}: {r.detail}")
            if r.alias and r.alias != r.expected_alias:
                print(f"{'':18} note: a BCM2837 gives {r.flag} the {r.expected_alias} alias; this board gave {r.alias}")
    return 0 if all(r.passed for r in results) else 1


def cmd_cleanup(args: argparse.Namespace) -> int:
    backend = _backend(args)
    # Opening the backend already reclaimed; report that, then look again.
    freed = list(backend.reclaimed) + backend.ledger.reclaim(backend.mailbox)
    backend.reclaimed.clear()
    live = backend.ledger.entries()
    if args.json:
        _print_json({"reclaimed": [vars(e) | {"bus": f"0x{e.bus:08X}"} for e in freed],
                     "live": [vars(e) | {"bus": f"0x{e.bus:08X}"} for e in live]})
        return 0
    if not freed:
        print("Nothing to reclaim: no dead process holds GPU memory.")
    for e in freed:
        print(f"Reclaimed handle {e.handle}: {e.size} bytes at bus 0x{e.bus:08X}, left by process {e.pid}")
    if live:
        print(f"{len(live)} allocation(s) still held by running processes: "
              + ", ".join(f"pid {e.pid} handle {e.handle}" for e in live))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pimem", description="GPU memory on the Raspberry Pi, for teaching.")
    parser.add_argument("--version", action="version", version=f"pimem {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Command, help: str, backend: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        if backend:
            p.add_argument("--backend", choices=BACKENDS, default=None,
                           help="pi or emulator (default: PIMEM_BACKEND, else pi where /dev/vcio exists)")
        p.set_defaults(func=func)
        return p

    add("info", cmd_info, "board, revision, firmware, ARM/GPU memory split, backend")
    p = add("decode", cmd_decode, "decode bus addresses (hex) into alias and physical address", backend=False)
    p.add_argument("addresses", nargs="+", metavar="ADDR")
    p = add("revision", cmd_revision, "decode a board revision code (hex, as in /proc/cpuinfo)", backend=False)
    p.add_argument("codes", nargs="+", metavar="CODE")
    add("selftest", cmd_selftest, "allocate, lock, map, write, read back and release with each ARM-usable flag")
    add("cleanup", cmd_cleanup, "release the GPU memory that dead processes left allocated")
    for extend in _EXTENSIONS:
        extend(sub, add)
    return parser


#: Other modules add their commands here (benchmarks, notebooks).
_EXTENSIONS: list[Callable[[Any, Callable[..., argparse.ArgumentParser]], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except PimemError as e:
        print(f"pimem {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pimem {args.command}: interrupted; every GPU buffer was released", file=sys.stderr)
        return 130
