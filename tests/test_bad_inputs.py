"""Every command, given something wrong: a non-zero exit, no traceback, one line naming the value."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pimem.memory import backend as backend_mod
from pimem.cli import main

REPO = Path(__file__).resolve().parent.parent


def _good_data_dir(tmp: Path) -> None:
    """tmp/d holding one valid recording (t.csv and its sidecar)."""
    (tmp / "d").mkdir()
    for ext in ("csv", "json"):
        (tmp / "d" / f"t.{ext}").write_text((REPO / "data" / f"tinymembench-pi3b.{ext}").read_text())


def _setup(tmp: Path, kind: str) -> str:
    """Make the bad thing; return the value the message must name."""
    if kind == "file":
        (tmp / "afile").write_text("x")
        return str(tmp / "afile")
    if kind == "below-file":
        (tmp / "afile").write_text("x")
        return str(tmp / "afile" / "sub")
    if kind == "missing":
        return str(tmp / "nowhere")
    if kind == "world-writable":
        (tmp / "open").mkdir()
        (tmp / "open").chmod(0o777)
        return str(tmp / "open")
    if kind == "nan-data":
        _good_data_dir(tmp)
        meta = tmp / "d" / "t.json"
        meta.write_text(meta.read_text().replace('": 1200', '": NaN', 1))
        return "NaN"
    if kind == "deep-data":
        (tmp / "d").mkdir()
        (tmp / "d" / "t.json").write_text("[" * 100000 + "]" * 100000)
        (tmp / "d" / "t.csv").write_text("a\n")
        return "nested too deeply"
    if kind == "long-field":
        (tmp / "d").mkdir()
        (tmp / "d" / "t.json").write_text("{}")
        (tmp / "d" / "t.csv").write_text('"' + "a" * 200000 + '"\n')
        return "field limit"
    if kind == "loop":
        (tmp / "loop1").symlink_to(tmp / "loop2")
        (tmp / "loop2").symlink_to(tmp / "loop1")
        return str(tmp / "loop1")
    if kind == "fifo":
        os.mkfifo(tmp / "fifo")
        return str(tmp / "fifo")
    if kind in ("csv-dir", "fifo-data", "loop-data"):
        _good_data_dir(tmp)
        odd = tmp / "d" / "odd.csv"
        if kind == "csv-dir":
            odd.mkdir()
        elif kind == "fifo-data":
            os.mkfifo(odd)
        else:
            odd.symlink_to(odd)
        return str(odd)
    if kind.startswith("="):   # a literal value, for an environment variable
        return kind[1:]
    raise AssertionError(kind)


# (command line with {v} for the value, what to make, env var to set to the value or None)
CASES = [
    (["decode", "+1"], None, None, "+1"),
    (["decode", "\uff11\uff12"], None, None, "\uff11\uff12"),
    (["decode", "0x1FFFFFFFF"], None, None, "0x1FFFFFFFF"),
    (["revision", "zz"], None, None, "zz"),
    (["render", "--timeout", "0"], None, None, "--timeout 0"),
    (["render", "--timeout", "-5"], None, None, "--timeout -5"),
    (["record", "--dir", "{v}"], "file", None, "{v}"),
    (["record", "--dir", "{v}"], "below-file", None, "afile"),
    (["student-copies", "--out", "{v}"], "file", None, "{v}"),
    (["student-copies", "--out", "{v}"], "below-file", None, "afile"),
    (["html", "--out", "{v}"], "file", None, "{v}"),
    (["html", "--out", "{v}"], "below-file", None, "afile"),
    (["info"], "file", "PIMEM_EMULATOR_DIR", "{v}"),
    (["info"], "below-file", "PIMEM_EMULATOR_DIR", "afile"),
    (["info"], "world-writable", "PIMEM_EMULATOR_DIR", "{v}"),
    (["cleanup"], "world-writable", "PIMEM_LEDGER_DIR", "{v}"),
    (["selftest"], "file", "PIMEM_LEDGER_DIR", "{v}"),
    (["check-data", "--dir", "{d}"], "nan-data", None, "NaN"),
    (["check-data", "--dir", "{d}"], "deep-data", None, "nested too deeply"),
    (["check-data", "--dir", "{d}"], "long-field", None, "field limit"),
    (["bench", "0"], None, None, "0"),
    (["sweep", "--sizes", "12Q"], None, None, "12Q"),
    (["lab", "--port", "70000"], None, None, "70000"),
    (["lab", "--port", "-1"], None, None, "-1"),
    (["lab", "--ip", "999.1.1.1"], None, None, "999.1.1.1"),
    (["frobnicate"], None, None, "frobnicate"),
    (["info", "--backend", "gpu"], None, None, "gpu"),
    (["info"], "=bogus", "PIMEM_BACKEND", "bogus"),
    (["info"], "loop", "PIMEM_EMULATOR_DIR", "symbolic link"),
    (["cleanup"], "fifo", "PIMEM_LEDGER_DIR", "not a directory"),
    (["decode"], None, None, "ADDR"),
    (["decode", "0x"], None, None, "'0x'"),
    (["decode", "--", "-1"], None, None, "'-1'"),
    (["decode", "0xC000000G"], None, None, "0xC000000G"),
    (["revision", ""], None, None, "''"),
    (["revision", "1FFFFFFFF"], None, None, "1FFFFFFFF"),
    (["bench", "-1"], None, None, "-1"),
    (["bench", "abc"], None, None, "abc"),
    (["bench", "nan"], None, None, "nan"),
    (["bench", "100000"], None, None, "100000 MiB"),
    (["bench", "1", "--iterations", "0"], None, None, "--iterations"),
    (["bench", "1", "--warmup", "-1"], None, None, "--warmup"),
    (["bench", "1", "--statistic", "max"], None, None, "max"),
    (["bench", "1", "--kernel", "rust"], None, None, "rust"),
    (["sweep", "--sizes", "0"], None, None, "'0'"),
    (["sweep", "--sizes", "2GiB"], None, None, "2 GiB"),
    (["sweep", "--benchmarks", "nope"], None, None, "nope"),
    (["sweep", "--iterations", "0"], None, None, "--iterations"),
    (["record", "--name", "../evil"], None, None, "../evil"),
    (["record", "--name", "a/b"], None, None, "a/b"),
    (["record", "--dir", "{v}"], "loop", None, "{v}"),
    (["student-copies", "--out", "{v}"], "loop", None, "symbolic link loop"),
    (["student-copies", "--out", "{v}/sub"], "loop", None, "symbolic link loop"),
    (["record", "--dir", "{v}/sub"], "loop", None, "symbolic link loop"),
    (["html", "--out", "{v}"], "fifo", None, "{v}"),
    (["render", "--timeout", "x"], None, None, "'x'"),
    (["check-data", "--dir", "{v}"], "missing", None, "no such directory"),
    (["check-data", "--dir", "{v}"], "file", None, "not a directory"),
    (["check-data", "--dir", "{d}"], "csv-dir", None, "odd.csv: named like a recording, but a directory"),
    (["check-data", "--dir", "{d}"], "fifo-data", None, "not a regular file"),
    (["check-data", "--dir", "{d}"], "loop-data", None, "leads nowhere"),
    # sizes no machine has: a clear line, never OverflowError
    (["bench", "9" * 400], None, None, "more than 1024 GiB"),
    (["sweep", "--sizes", "18446744073709551616"], None, None, "18446744073709551616"),
    (["sweep", "--sizes", "64KiB", "1e30"], None, None, "1e30"),
    (["mountain", "--sizes", "2048GiB"], None, None, "more than 1024 GiB"),
    # options without an upper bound would run for ever
    (["bench", "1", "--iterations", "100000000000000000000"], None, None, "--iterations 100000000000000000000"),
    (["bench", "1", "--warmup", "1000000000000"], None, None, "--warmup 1000000000000"),
    (["sweep", "--sizes", "4KiB", "--iterations", "1001"], None, None, "give 1 to 1000"),
    (["record", "--sizes", "4KiB", "--warmup", "101"], None, None, "give 0 to 100"),
    # names that would fail after the measurement, or write elsewhere
    (["record", "--name", "n" * 250], None, None, "up to 200"),
    (["record", "--name", "n" * 300], None, None, "up to 200"),
    (["mountain", "--save", "../../escaped", "--dir", "{v}"], "missing", None, "'../../escaped'"),
    (["mountain", "--save", "a/b", "--sizes", "16KiB"], None, None, "'a/b'"),
    (["mountain", "--save", "m", "--dir", "{v}"], "file", None, "{v}"),
    (["record", "--contribute", "--dir", "{v}"], "missing", None, "--contribute"),
    # the emulator's gpu_mem
    (["info"], "=lots", "PIMEM_EMULATOR_GPU_MEM", "PIMEM_EMULATOR_GPU_MEM='lots'"),
    (["info"], "=-76", "PIMEM_EMULATOR_GPU_MEM", "'-76'"),
    (["cleanup", "--gpu-mem", "128"], None, None, "--reset-emulator"),
    (["cleanup", "--reset-emulator", "--gpu-mem", "5000"], None, None, "gpu_mem=5242880000"),
]


@pytest.mark.parametrize("argv, kind, env, named", CASES, ids=[" ".join(c[0]) + f" [{c[1]}]" for c in CASES])
def test_bad_input_is_one_clear_line(tmp_path, monkeypatch, capsys, argv, kind, env, named):
    value = _setup(tmp_path, kind) if kind else ""
    if env:
        monkeypatch.setenv(env, value)
        backend_mod.close_backends()
    argv = [a.replace("{v}", value).replace("{d}", str(tmp_path / "d")) for a in argv]
    try:
        status = main(argv)
    except SystemExit as e:   # argparse's own refusals
        status = e.code
    assert status not in (0, None), f"{argv} was accepted"
    out = capsys.readouterr()
    text = out.err + out.out
    assert "Traceback" not in text, text
    lines = [ln for ln in out.err.splitlines() if ln.strip() and not ln.startswith("pimem: no /dev/vcio")]
    if argv[0] != "check-data":   # check-data lists problems on stdout, one per line
        assert len(lines) == 1, lines
    assert named.replace("{v}", value) in text, text


def test_output_to_a_full_device_is_one_line():
    p = subprocess.run([sys.executable, "-m", "pimem", "revision", "a02082"], stdout=open("/dev/full", "w"),
                       stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "No space left" in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_ctrl_c_during_start_up_is_one_line(tmp_path):
    # A SIGINT delivered while `python -m pimem` is still importing.
    code = ("import signal, os, runpy, sys\n"
            "sys.argv = ['pimem', 'info']\n"
            "import builtins\n"
            "real = builtins.__import__\n"
            "def imp(name, *a, **k):\n"
            "    if name == 'argparse':\n"
            "        raise KeyboardInterrupt\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = imp\n"
            "runpy.run_module('pimem', run_name='__main__')\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PIMEM_EMULATOR_DIR=str(tmp_path / "emu")))
    assert p.returncode == 130 and p.stderr.strip() == "pimem: interrupted", p.stderr


def test_closed_standard_output_is_one_line(tmp_path):
    p = subprocess.run(f'"{sys.executable}" -m pimem info >&-', shell=True, capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, PIMEM_EMULATOR_DIR=str(tmp_path / "emu")))
    assert p.returncode == 2 and "Traceback" not in p.stderr and "standard output is closed" in p.stderr, p.stderr


def test_a_uid_without_a_passwd_entry_still_has_a_core_cache(tmp_path, monkeypatch, capsys):
    # Containers run as uids that /etc/passwd does not name: getpwuid raises KeyError.
    import pwd
    import tempfile

    from pimem.bench import core

    def nobody_knows(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")
    monkeypatch.setattr(pwd, "getpwuid", nobody_knows)
    monkeypatch.delenv("PIMEM_CORE_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert core.core_dir() == tmp_path / f"pimem-core-{os.geteuid()}"
    assert main(["core"]) in (0, 1)
    assert "Traceback" not in capsys.readouterr().err
