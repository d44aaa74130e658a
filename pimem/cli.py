"""The command line: the `pimem` console script (`.venv/bin/pimem COMMAND`; also `python -m pimem`)."""
from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from typing import Any, Callable, Sequence

from ._version import __version__
from .memory.backend import BACKENDS, Backend, get_backend
from .firmware.board import decode_revision
from .exc import BenchmarkError, PimemError, UsageError
from .firmware.memflags import BusAddress, parse_address

Command = Callable[[argparse.Namespace], int]

#: Bounds on the timing options: beyond them a run would take hours, not a lesson's minutes.
MAX_ITERATIONS = 1000
MAX_WARMUP = 100


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2))


def _backend(args: argparse.Namespace) -> Backend:
    backend = get_backend(args.backend)
    if backend.name == "pi":   # a fault on GPU memory says why before the process dies
        from .bench.core import explain_bus_errors

        explain_bus_errors()
    return backend


def cmd_core(args: argparse.Namespace) -> int:
    from .bench.core import status

    st = status()
    print(f"pimem core: {st.message}")
    if not st.loaded:
        print("pimem core: timing falls back to per-call kernels; small sizes are marked overhead-bound")
    return 0 if st.loaded else 1


def cmd_mountain(args: argparse.Namespace) -> int:
    from .bench.mountain import DEFAULT_SIZES, DEFAULT_STRIDES, mountain, save_mountain
    from .units import format_size, parse_size

    if args.save:   # before measuring: a bad name must not cost the measurement
        from .bench.mountain import check_name

        check_name(args.save)
    target, make = _user_folder(args, "mountain") if args.save else (None, None)
    sizes = [parse_size(t) for t in args.sizes] if args.sizes else list(DEFAULT_SIZES)
    strides = args.strides or list(DEFAULT_STRIDES)
    with _clock_setting(args):
        frame, meta = mountain(_backend(args), kind=args.kind, sizes=sizes, strides=strides,
                               progress=not args.no_progress, announce=lambda m: print(m, file=sys.stderr))
    grid = frame.pivot(index="size_bytes", columns="stride_words", values="gb_per_s")
    host = "" if meta["machine"]["is_pi"] else " (host run: not a Raspberry Pi)"
    print(f"read GB/s by working set (rows) and stride in 8-byte words (columns), {args.kind} memory{host}")
    print(f"{'size':>9} " + " ".join(f"{k:>6}" for k in grid.columns))
    for size, row in grid.iterrows():
        print(f"{format_size(int(size)):>9} " + " ".join(f"{v:6.2f}" for v in row))
    if args.save:
        from pathlib import Path

        saved = _save_or_rescue(target, make, lambda folder: save_mountain(frame, meta, Path(folder) / args.save))
        print(f"saved to {saved}")
    return 0


#: The run kit's quick form (a check that the whole kit runs, not data to keep): small sizes, few repeats.
_KIT_QUICK = {"record": ["--sizes", "4KiB", "64KiB", "1MiB", "--iterations", "2", "--warmup", "0"],
              "mountain": ["--sizes", "16KiB", "64KiB", "256KiB", "--strides", "1", "2", "4", "8"]}


def cmd_run_kit(args: argparse.Namespace) -> int:
    """Every measurement the course draws, into one folder of the owner's, checked, with how to contribute it."""
    from datetime import date
    from pathlib import Path

    from .bench.data import check_data_dir, check_name, user_data_dir
    from .bench.mountain import load_mountain
    from .exc import DataError

    from .memory.info import system_info

    name = args.name or f"{'pi' if system_info(_backend(args)).is_pi else 'host'}-{date.today().isoformat()}-kit"
    check_name(name, what="--name")
    folder = Path(args.dir) if args.dir else user_data_dir()
    common = (["--backend", args.backend] if args.backend else []) + (["--performance"] if args.performance else [])
    quick = _KIT_QUICK if args.quick else {"record": [], "mountain": []}
    steps = [("sweep: every runnable benchmark by size, as far as the GPU heap allows",
              ["record", "--name", name, "--dir", str(folder), *quick["record"], *common]),
             *((f"memory mountain, {kind} memory",
                ["mountain", "--kind", kind, "--save", f"{name}-mountain-{kind}", "--dir", str(folder / "mountain"),
                 "--no-progress", *quick["mountain"], *common]) for kind in ("host", "direct"))]
    parser = build_parser()
    status = 0
    for i, (what, argv) in enumerate(steps, 1):
        print(f"[{i}/{len(steps)}] {what}", flush=True)
        step = parser.parse_args(argv)
        status |= step.func(step)
    problems = check_data_dir(folder)
    for saved in sorted((folder / "mountain").glob(f"{name}-mountain-*.csv")):
        try:
            load_mountain(saved)
        except DataError as e:
            problems.append(str(e))
    print(f"\nChecked {folder}: " + ("every recording follows the schema" if not problems else
                                     f"{len(problems)} problem(s):\n  " + "\n  ".join(problems)))
    print("To add this run to the course: data/README.md, 'Adding a run from your Pi' (copy the files into "
          "data/, pimem check-data, a pull request). A run made off a Pi stays a host run.")
    return status or (1 if problems else 0)


def cmd_info(args: argparse.Namespace) -> int:
    from .memory.info import system_info

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
        print(f"    manual (BCM2835 ARM Peripherals 1.2.1 and 1.2.3): {a.manual}")
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
    from .memory.selftest import selftest

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
    if args.reset_emulator:
        from .memory.backend import reset_emulator

        if (args.backend or "emulator") != "emulator":
            raise UsageError("--reset-emulator resets the emulator's state; it cannot be combined with --backend pi")
        fw = reset_emulator(None if args.gpu_mem is None else args.gpu_mem << 20)
        print(f"Reset the emulator in {fw.state_dir}: a freshly booted firmware with gpu_mem={fw.gpu_mem >> 20} MiB "
              f"(a heap of {fw.heap_size >> 20} MiB), every emulated allocation gone.")
        return 0
    if args.gpu_mem is not None:
        raise UsageError("--gpu-mem sets the emulator's gpu_mem when it boots: use it with --reset-emulator")
    backend = _backend(args)
    # Opening the backend already reclaimed; report that, then look again.
    freed = list(backend.reclaimed) + backend.ledger.reclaim(backend.mailbox)
    backend.reclaimed.clear()
    live = backend.ledger.entries()
    if args.json:
        def bus(e) -> str | None:
            return None if e.bus is None else f"0x{e.bus:08X}"

        _print_json({"reclaimed": [vars(e) | {"bus": bus(e)} for e in freed],
                     "live": [vars(e) | {"bus": bus(e)} for e in live]})
        return 0
    if not freed:
        print("Nothing to reclaim: no dead process holds GPU memory.")
    for e in freed:
        where = "never locked" if e.bus is None else f"at bus 0x{e.bus:08X}"
        print(f"Reclaimed handle {e.handle}: {e.size} bytes {where}, left by process {e.pid}")
    if live:
        print(f"{len(live)} allocation(s) still held by running processes: "
              + ", ".join(f"pid {e.pid} handle {e.handle}" for e in live))
    return 0


def _options(args: argparse.Namespace):
    from .bench.benchmarks import RunOptions

    for name, low, high, default in (("iterations", 1, MAX_ITERATIONS, 5), ("warmup", 0, MAX_WARMUP, 1)):
        v = getattr(args, name)
        if not low <= v <= high:
            raise UsageError(f"--{name} {v}: give {low} to {high} (each point takes at least 5 ms per iteration, "
                             f"so {high} is already minutes per point); leave it out for the default ({default})")
    return RunOptions(iterations=args.iterations, warmup=args.warmup)


def _sizes(texts: Sequence[str] | None, backend: Backend) -> list[int]:
    from .bench.sweep import DEFAULT_SIZES
    from .units import parse_size

    return [parse_size(t) for t in texts] if texts else list(DEFAULT_SIZES)


def _benchmarks(texts: Sequence[str] | None) -> list[str]:
    from .bench.benchmarks import BENCHMARKS, check_name

    names = [n.strip() for t in (texts or list(BENCHMARKS)) for n in t.split(",") if n.strip()]
    for n in names:
        check_name(n)
    return names


def _check_gpu_size(size: int, backend: Backend, names: Sequence[str] | None = None) -> None:
    """A size the user typed that the GPU memory cannot hold is an error that says so, not a silent skip.

    ``names``: the benchmarks chosen (a sweep's: only those with a GPU buffer count; the default
    sizes run up to 256 MiB and sweep() skips, with a note, those the board cannot hold), or None
    for bench's report, which always needs one.
    """
    from .bench.benchmarks import BENCHMARKS

    less: dict[str, str] = {}
    if names is not None:
        gpu_names = [n for n in names if BENCHMARKS[n].flags is not None]
        if not gpu_names:
            return
        less = {"what": f", which {', '.join(gpu_names)} need",
                "less": "ask for less or choose only host benchmarks (baseline, read-host)"}
    problem = backend.mailbox.too_big(size, **less)
    if problem:
        raise UsageError(problem)


def _clock_setting(args: argparse.Namespace) -> Any:
    """--performance: the performance governor for the run (put back after); else nothing changes."""
    import contextlib

    if not getattr(args, "performance", False):
        return contextlib.nullcontext()
    from .bench.machine import performance_governor

    return performance_governor()


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench.report import bench
    from .units import parse_size

    size = parse_size(args.size, default_unit=1 << 20)
    backend = _backend(args)
    _check_gpu_size(size, backend)
    with _clock_setting(args):
        report = bench(backend, size, kernel=args.kernel, options=_options(args), statistic=args.statistic)
    if args.json:
        _print_json(report.as_dict())
    else:
        print(report.text())
    return 0 if all(r.verified for r in report.results) else 1


def _run_sweep(args: argparse.Namespace):
    from .bench.sweep import sweep

    backend = _backend(args)
    names = _benchmarks(args.benchmarks)
    sizes = _sizes(args.sizes, backend)
    if args.sizes:
        _check_gpu_size(max(sizes), backend, names)
    with _clock_setting(args):
        return sweep(backend, names, sizes, kernel=args.kernel, options=_options(args),
                     progress=not args.json and not args.no_progress,
                     command="pimem " + " ".join(sys.argv[1:]) if sys.argv[1:] else None)


def cmd_sweep(args: argparse.Namespace) -> int:
    result = _run_sweep(args)
    frame = result.frame
    if args.json:
        _print_json({"meta": result.meta, "notes": result.notes,
                     "rows": json.loads(frame.to_json(orient="records"))})
        return _sweep_status(frame) if not frame.empty else 1
    for note in result.notes:
        print("note:", note)
    if frame.empty:
        print("nothing was measured: every point was skipped (see the notes above)")
        return 1
    summary = (frame.groupby(["benchmark", "phase", "size_bytes"], sort=False)
               .agg(median_s=("seconds", "median"), gb_per_s=("gb_per_s", "median"),
                    verified=("verified", lambda v: "PASS" if (v == "pass").all() else "FAIL"),
                    overhead_bound=("overhead_bound", "any"))
               .reset_index())
    print(summary.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print("(median of the samples; GB/s = 10^9 bytes/s)")
    return _sweep_status(frame)


def _sweep_status(frame: Any) -> int:
    # As bench does: a result that failed verification makes the exit status 1.
    return 0 if (frame["verified"] == "pass").all() else 1


def _destination(path: str | None, option: str) -> None:
    """Check an output folder before any work is done: nothing measured or built is then lost."""
    if path is None:
        return
    from pathlib import Path

    p = Path(path)
    for part in (p, *p.parents):   # os.stat, not pathlib: Python 3.11 and 3.13 treat loops differently
        try:
            os.stat(part)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UsageError(f"{option} {path}: the path runs through a symbolic link loop; "
                                 "remove the loop, or give another folder") from None
    if p.is_symlink() and not p.exists():
        raise UsageError(f"{option} {path}: a symbolic link that leads nowhere (dangling, or a loop); "
                         "remove it, or give a folder")
    if p.exists() and not p.is_dir():
        raise UsageError(f"{option} {path}: that is a file, not a folder; give a folder")
    if not p.exists():   # made later: its nearest existing ancestor must be a folder we may write
        ancestor = next((a for a in p.absolute().parents if a.exists()), None)
        if ancestor is None or not ancestor.is_dir():
            raise UsageError(f"{option} {path}: {ancestor} is a file, so the folder cannot be made there")
        p = ancestor
    if not os.access(p, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: this user may not write in {p}; choose another folder")


def _user_folder(args: argparse.Namespace, sub: str = "") -> tuple[Any, Callable[[], Any]]:
    """Where a command saves, and a function that makes that folder (call it as the invoking user).

    --dir, else with --contribute the course's data/, else this user's my-data/ (private to the
    user, as my-notebooks/ is). Checked now, before anything is measured, room included.
    """
    from pathlib import Path

    from . import safefs
    from .bench.data import data_dir, user_data_dir

    if args.dir:
        if getattr(args, "contribute", False):
            raise UsageError("--contribute saves into the course's data/; leave out --dir (or --contribute)")
        _destination(args.dir, "--dir")
        target = Path(args.dir)

        def make() -> Path:
            target.mkdir(parents=True, exist_ok=True)   # as the invoking user: theirs
            return target
    elif getattr(args, "contribute", False):
        target = data_dir() / sub if sub else data_dir()
        make = lambda: target   # noqa: E731
    else:
        target = user_data_dir() / sub if sub else user_data_dir()

        def make() -> Path:
            hint = "move it away, or save elsewhere with --dir"
            top = safefs.private_dir(user_data_dir(), "your data folder", hint)
            return safefs.private_dir(top / sub, "your data folder", hint) if sub else top
    safefs.check_room(target, 1 << 20, "a recording (or choose another folder with --dir)")
    return target, make


def _save_or_rescue(target: Any, make: Callable[[], Any], write: Callable[[Any], Any]) -> Any:
    """write(folder) as the invoking user; if the folder cannot take it, keep the measurement elsewhere."""
    import tempfile

    from . import safefs
    from .exc import FolderError

    try:
        return safefs.as_invoking_user(lambda: str(write(make())))
    except FolderError as e:
        try:
            kept = safefs.as_invoking_user(lambda: str(write(tempfile.mkdtemp(prefix="pimem-rescue-"))))
        except FolderError:
            raise e from None
        raise FolderError(f"{e}. What was measured is kept in {kept} and beside it: move the files into "
                          f"{target} once there is room") from None


def cmd_record(args: argparse.Namespace) -> int:
    from .bench.data import check_name
    from .bench.data.save import recording_texts, write_recording

    target, make = _user_folder(args)
    if args.name is not None:   # before the sweep, not after minutes of measuring (the save checks it too)
        check_name(args.name, what="--name")
    label = None
    if args.label is not None:
        from .course.classroom import check_label, label_slug

        label = check_label(args.label, option="--label")   # before the sweep, as --name
    result = _run_sweep(args)
    if result.frame.empty:
        raise BenchmarkError("nothing was measured, so nothing was recorded: "
                             + "; ".join(result.notes or ["no point ran"]))
    name = args.name or ("pi-" if result.meta["machine"]["is_pi"] else "host-") + \
        result.meta["created"][:10] + "-" + result.meta["kernel_choice"] + (f"-{label_slug(label)}" if label else "")
    if label:
        result.meta["label"] = label
    from pathlib import Path

    texts = recording_texts(result.frame, result.meta, name)   # checked here; only the writing moves to the user
    path = Path(_save_or_rescue(target, make, lambda folder: write_recording(folder, *texts)))
    for note in result.notes:
        print("note:", note)
    print(f"Recorded {len(result.frame)} samples to {path} (metadata in {path.with_suffix('.json').name})")
    if args.contribute:
        print("It is in the course's data/ now: data/README.md says how a Pi run joins the course "
              "(check-data, a commit, a pull request)")
    return _sweep_status(result.frame)


def cmd_check_data(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import safefs

    from .bench.data import check_data_dir, data_folders, remove_data_leftovers

    folders = [Path(args.dir)] if args.dir else data_folders()
    if args.remove_leftovers:
        for d in folders:
            for p in safefs.as_invoking_user(lambda: [str(p) for p in remove_data_leftovers(d)]):
                print(f"removed {p} (left by an interrupted save)")
    found = {str(d): check_data_dir(d) for d in folders}
    if args.json:
        _print_json({"directories": found, "problems": [p for ps in found.values() for p in ps]})
    else:
        for directory, problems in found.items():
            for p in problems:
                print(p)
            print(f"{directory}: " + ("every recording follows the schema" if not problems
                                       else f"{len(problems)} problem(s)"))
    return 1 if any(found.values()) else 0


def cmd_lab(args: argparse.Namespace) -> int:
    from .course.lab import run_lab

    return run_lab(args.ip, args.port, open_browser=args.browser, directory=args.dir, teacher=args.teacher)


def cmd_update_notebooks(args: argparse.Namespace) -> int:
    from .course.workcopy import sync

    report = sync(args.dir, update=True)
    lines = report.lines() or [f"working copy {report.directory}: every notebook is up to date"]
    if args.json:
        _print_json({"directory": str(report.directory), "created": report.created, "replaced": report.replaced,
                     "beside": [list(b) for b in report.beside]})
    else:
        print("\n".join(lines))
    return 0


def cmd_student_copies(args: argparse.Namespace) -> int:
    from .course.students import write_student_copies

    _destination(args.out, "--out")
    done = write_student_copies(args.out, force=args.force)
    if args.json:
        _print_json({"written": [str(p) for p in done.written], "skipped": [str(p) for p in done.skipped]})
        return 0
    for p in done.skipped:   # it may hold a student's work: never overwritten without --force
        print(f"note: skipped {p}: it exists (a student's work?); --force overwrites it")
    print(f"Wrote {len(done.written)} student notebook(s), solutions replaced and outputs cleared, to "
          f"{done.folder}" + (": " + ", ".join(p.name for p in done.written) if done.written else "")
          + (f"; skipped {len(done.skipped)} that exist: " + ", ".join(p.name for p in done.skipped)
             if done.skipped else ""))
    return 0


def cmd_grading_folder(args: argparse.Namespace) -> int:
    from . import safefs
    from .course.students import ASSIGNMENT, make_grading_folder

    made = safefs.as_invoking_user(lambda: str(make_grading_folder(args.folder).folder))
    if args.json:
        _print_json({"folder": made, "assignment": ASSIGNMENT})
        return 0
    print(f"Made the grading folder {made}: nbgrader_config.py, source/{ASSIGNMENT}/ (the labs with their "
          f"solutions) and exchange/. Next, from that folder: nbgrader generate_assignment {ASSIGNMENT} "
          "(notebooks/labs/INSTRUCTOR.md has every step)")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .course.render import render, write_benchmark_table

    if args.tables:
        changed = write_benchmark_table()
        print("data/README.md's table of benchmarks " + ("written from the catalog" if changed else "is up to date"))
        return 0
    if args.timeout <= 0:
        raise UsageError(f"--timeout {args.timeout}: give the seconds a cell may take, more than 0 (default 180)")
    done = render([Path(n) for n in args.notebooks] or None, timeout=args.timeout, progress=not args.json)
    if args.json:
        _print_json({"rendered": [str(p) for p in done]})
    else:
        print(f"Rendered {len(done)} notebook(s): " + ", ".join(p.name for p in done))
    return 0


def cmd_html(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .course.html import build_html

    _destination(args.out, "--out")
    index = build_html(Path(args.out) if args.out else None)
    if args.json:
        _print_json({"index": str(index)})
    else:
        print(f"HTML edition: {index} (open it in a browser; it needs no network)")
    return 0


def _silence_stdout() -> None:
    # So that Python's own flush at exit does not print a second, traceback-like message.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


class _Parser(argparse.ArgumentParser):
    """Bad arguments get one line that says what to do, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pimem", description="GPU memory on the Raspberry Pi, for teaching.")
    parser.add_argument("--version", action="version", version=f"pimem {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def add(name: str, func: Command, help: str, backend: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        if backend:
            p.add_argument("--backend", choices=BACKENDS, default=None,
                           help="pi or emulator (default: PIMEM_BACKEND, else pi where /dev/vcio exists)")
        p.set_defaults(func=func)
        return p

    _board_commands(add)
    _measuring_commands(add)
    _kit_command(add)
    _course_commands(add)
    return parser


#: add(name, function, help, backend=True): a subcommand with --json (and --backend), as build_parser makes them.
_Add = Callable[..., argparse.ArgumentParser]


def _board_commands(add: _Add) -> None:
    """What the board and its GPU memory are: info, mountain, core, decode, revision, selftest, cleanup."""
    add("info", cmd_info, "board, revision, firmware, ARM/GPU memory split, backend")
    p = add("mountain", cmd_mountain, "the memory mountain: read GB/s against working-set size and stride")
    p.add_argument("--kind", choices=("host", "direct"), default="host", help="buffer: cached host or a DIRECT GPU buffer")
    p.add_argument("--sizes", nargs="+", metavar="SIZE", help="working sets (default 16 KiB .. 32 MiB, powers of two)")
    p.add_argument("--strides", nargs="+", type=int, metavar="WORDS", help="strides in 8-byte words (default 1..12)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--save", metavar="NAME", help="save as NAME.csv/NAME.json (never overwrites)")
    p.add_argument("--dir", help="where --save writes (default: your my-data/mountain/)")
    p.add_argument("--contribute", action="store_true",
                   help="save into the course's data/mountain/ instead (to add a Pi's mountain to the course)")
    _performance_option(p)
    add("core", cmd_core, "build (once) and load the compiled timing core; say where it is, or why not",
        backend=False)
    p = add("decode", cmd_decode, "decode bus addresses (hex) into alias and physical address", backend=False)
    p.add_argument("addresses", nargs="+", metavar="ADDR")
    p = add("revision", cmd_revision, "decode a board revision code (hex, as in /proc/cpuinfo)", backend=False)
    p.add_argument("codes", nargs="+", metavar="CODE")
    add("selftest", cmd_selftest, "allocate, lock, map, write, read back and release with each ARM-usable flag")
    p = add("cleanup", cmd_cleanup, "release the GPU memory that dead processes left allocated")
    p.add_argument("--reset-emulator", action="store_true",
                   help="throw away the emulator's state (damaged or not) and boot it afresh")
    p.add_argument("--gpu-mem", type=int, metavar="MIB",
                   help="with --reset-emulator: boot the emulator with this gpu_mem in MiB, as config.txt's "
                   "gpu_mem= (default: PIMEM_EMULATOR_GPU_MEM, else 76; the original lesson's Pi had 128)")


def _timing_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--iterations", type=int, default=5, help="timed iterations per point (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up iterations (default 1)")
    p.add_argument("--kernel", choices=("c-loop", "libc", "numpy"), default=None,
                   help="how to fill, copy and read (default: c-loop, the compiled core, where it builds)")
    _performance_option(p)


def _performance_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--performance", action="store_true",
                   help="root: set the CPU governor to performance for the run (a steady top clock), and put "
                   "the previous one back after, on Ctrl-C too")


def _measuring_commands(add: _Add) -> None:
    """The benchmarks: bench (one size, as a report), sweep and record (a range of sizes)."""
    p = add("bench", cmd_bench, "the original three benchmarks and the read-back, as one report")
    p.add_argument("size", nargs="?", default="64", help="data size; a plain number is MiB, as in the original "
                   "(default 64), or give units: 512KiB, 8MiB")
    p.add_argument("--statistic", choices=("median", "min", "mean"), default="median")
    _timing_options(p)
    for name, func, text in (("sweep", cmd_sweep, "run benchmarks over a range of sizes"),
                             ("record", cmd_record, "run a sweep and save it in your my-data/ (never overwrites)")):
        p = add(name, func, text)
        p.add_argument("--sizes", nargs="+", metavar="SIZE",
                       help="sizes in bytes or with units (64KiB 1MiB); default: powers of two 4 KiB..256 MiB")
        p.add_argument("--benchmarks", nargs="+", metavar="NAME", help="benchmark names (default: all)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        _timing_options(p)
        if name == "record":
            p.add_argument("--name", help="recording name (default: host-DATE-KERNEL or pi-DATE-KERNEL, "
                           "then -LABEL with --label)")
            p.add_argument("--label", help="a student's or board's name, kept in the recording "
                           "(for pimem.course.classroom.load_class), e.g. alice or pi-07")
            p.add_argument("--dir", help="directory (default: your my-data/, beside my-notebooks/)")
            p.add_argument("--contribute", action="store_true",
                           help="save into the course's data/ instead (to add a Pi run to the course: "
                           "data/README.md says how)")


def _kit_command(add: _Add) -> None:
    p = add("run-kit", cmd_run_kit, "on a Pi: every measurement the course draws (a sweep of each benchmark, a host "
            "and a DIRECT mountain, with the clock's state) into your my-data/, checked")
    p.add_argument("--name", help="name of the recording (default: pi-DATE-kit, or host-DATE-kit off a Pi); the "
                   "mountains are NAME-mountain-host and NAME-mountain-direct")
    p.add_argument("--dir", help="folder (default: your my-data/; mountains in its mountain/)")
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats: checks that the kit runs")
    _performance_option(p)


def _course_commands(add: _Add) -> None:
    """The course: the working copy, the data, student copies, grading, rendering."""
    p = add("lab", cmd_lab, "start JupyterLab on your working copy, my-notebooks/ (made from notebooks/ on "
            "first start; loopback only, token kept; safe as root)", backend=False)
    p.add_argument("--dir", help="working copy folder (default: my-notebooks/ in the repository)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8888)
    p.add_argument("--browser", action="store_true", help="open a browser on this machine")
    p.add_argument("--teacher", action="store_true",
                   help="also copy the teacher's notebooks (class results) into the working copy, under teacher/")
    p = add("update-notebooks", cmd_update_notebooks,
            "bring notebooks that changed in the course into your working copy (your changes are kept)",
            backend=False)
    p.add_argument("--dir", help="working copy folder (default: my-notebooks/ in the repository)")
    p = add("check-data", cmd_check_data, "check every recording in data/ and my-data/ against the schema",
            backend=False)
    p.add_argument("--dir", help="directory (default: the course's data/ and your my-data/)")
    p.add_argument("--remove-leftovers", action="store_true",
                   help="first delete what interrupted saves left: temporaries, and sidecars without their CSV")
    p = add("student-copies", cmd_student_copies,
            "write the lab notebooks without their solutions and outputs (default notebooks/labs/student/)",
            backend=False)
    p.add_argument("--out", help="output folder (default: notebooks/labs/student/)")
    p.add_argument("--force", action="store_true", help="overwrite copies that exist (default: skip them)")
    p = add("grading-folder", cmd_grading_folder,
            "make a folder to grade the labs with nbgrader (its config, the labs as the source, an exchange)",
            backend=False)
    p.add_argument("folder", metavar="FOLDER", help="a new folder, e.g. ~/pimem-grading")
    p = add("render", cmd_render, "execute the course notebooks (recorded data, emulator) and save their outputs",
            backend=False)
    p.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="default: every notebooks/NN-*.ipynb")
    p.add_argument("--timeout", type=int, default=180, help="seconds per cell (default 180)")
    p.add_argument("--tables", action="store_true",
                   help="only write the tables made from the code (data/README.md's benchmarks), run no notebook")
    p = add("html", cmd_html, "build the offline HTML edition of the notebooks (default build/html/)", backend=False)
    p.add_argument("--out", help="output folder (default: build/html in the repository)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if sys.stdout is None:   # started with standard output closed (`pimem info >&-`)
        if sys.stderr is not None:
            print(f"pimem {args.command}: standard output is closed, so there is nowhere to print the answer; "
                  "give it a terminal or a file (> out.txt, or > /dev/null to discard it)", file=sys.stderr)
        return 2
    try:
        status = args.func(args)
        sys.stdout.flush()
        return status
    except PimemError as e:
        print(f"pimem {args.command}: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EPIPE, errno.EIO, errno.EBADF):   # stdout went away or filled up
            _silence_stdout()
            print(f"pimem {args.command}: cannot write the output: {e.strerror}; send it somewhere with room "
                  "(a file or a terminal)", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print(f"pimem {args.command}: interrupted; every GPU buffer was released", file=sys.stderr)
        return 130
