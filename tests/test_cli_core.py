"""The core commands: info, decode, revision, selftest, cleanup."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pimem.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_text_and_json(capsys):
    code, out, _ = run(capsys, "info")
    assert code == 0 and "emulator" in out and "Raspberry Pi 3 Model B" in out and "76 MiB" in out
    code, out, _ = run(capsys, "info", "--json")
    d = json.loads(out)
    assert d["revision_code"] == "a02082" and d["vc_memory"]["size"] == 76 << 20
    assert d["arm_memory"]["size"] + d["vc_memory"]["size"] == 1 << 30


def test_info_shows_the_heap_the_firmware_lends_and_what_is_free(capsys):
    from pimem import GpuBuffer

    code, out, _ = run(capsys, "info")
    assert "GPU heap:     56 MiB lent out" in out and "get_mem reloc_total" in out and "56 MiB free now" in out
    # A Pi 3B's clocks under load (config_txt/overclocking.adoc): arm_freq 1200, core_freq 400, sdram_freq 450.
    assert "Clocks now:   ARM 1200 MHz, CORE 400 MHz, SDRAM 450 MHz" in out
    with GpuBuffer(3 << 20):
        code, out, _ = run(capsys, "info", "--json")
    d = json.loads(out)
    assert (d["gpu_heap"], d["gpu_heap_told"], d["gpu_heap_free"]) == (56 << 20, True, 53 << 20)


def test_decode_lesson_addresses(capsys):
    code, out, _ = run(capsys, "decode", "--json", "0xBAAA8000", "FAAA8000")
    d = json.loads(out)
    assert [x["alias"] for x in d] == ["0x8", "0xC"]
    assert [x["phys"] for x in d] == ["0x3AAA8000", "0x3AAA8000"]
    code, out, _ = run(capsys, "decode", "FAAA8000")
    assert "alias 0xC" in out and "0x3" not in out.split("physical")[0]


def test_decode_bad_address_is_one_line(capsys):
    code, out, err = run(capsys, "decode", "nothex")
    assert code == 2 and "Traceback" not in err and "'nothex'" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "decode", "1FFFFFFFF")
    assert code == 2 and "32-bit" in err


def test_revision(capsys):
    code, out, _ = run(capsys, "revision", "a02082", "c04170")
    assert code == 0 and "3 Model B" in out and "no (no mailbox memory tags)" in out
    code, _, err = run(capsys, "revision", "--json", "zz")
    assert code == 2 and "zz" in err


def test_selftest_all_pass(capsys):
    code, out, _ = run(capsys, "selftest", "--json")
    rows = json.loads(out)
    assert code == 0
    assert [(r["flag"], r["alias"], r["result"]) for r in rows] == [
        ("DIRECT", "0xC", "PASS"), ("COHERENT", "0x8", "PASS"), ("L1_NONALLOCATING", "0x4", "PASS")]


def test_selftest_reports_fail(capsys, monkeypatch):
    from pimem.memory import backend as backend_mod
    b = backend_mod.get_backend()

    def refuse(phys, size):
        from pimem.exc import MailboxError
        raise MailboxError("cannot map")
    monkeypatch.setattr(b.transport, "map_physical", refuse)
    code, out, _ = run(capsys, "selftest")
    assert code == 1 and out.count("FAIL") == 3


def test_cleanup_reports(capsys, emu_dir):
    code, out, _ = run(capsys, "cleanup")
    assert code == 0 and "Nothing to reclaim" in out
    env = dict(os.environ, PIMEM_EMULATOR_DIR=str(emu_dir), PIMEM_BACKEND="emulator")
    subprocess.run([sys.executable, "-c", "import os; from pimem import GpuBuffer; b = GpuBuffer(8192); os._exit(0)"],
                   env=env, check=True)
    from pimem.memory import backend as backend_mod
    backend_mod.close_backends()
    code, out, err = run(capsys, "cleanup", "--json")
    d = json.loads(out)
    assert code == 0 and len(d["reclaimed"]) == 1 and d["reclaimed"][0]["size"] == 8192 and d["live"] == []


def test_module_entry_point_and_backend_flag(emu_dir):
    env = dict(os.environ, PIMEM_EMULATOR_DIR=str(emu_dir))
    env.pop("PIMEM_BACKEND", None)
    p = subprocess.run([sys.executable, "-m", "pimem", "info", "--backend", "emulator"], env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0 and "Backend:      emulator" in p.stdout


def test_bad_backend_env(capsys, monkeypatch):
    monkeypatch.setenv("PIMEM_BACKEND", "gpu")
    code, _, err = run(capsys, "info")
    assert code == 2 and "PIMEM_BACKEND='gpu'" in err


def test_pi_backend_without_vcio(capsys):
    if os.path.exists("/dev/vcio"):
        pytest.skip("this machine has a mailbox")
    code, _, err = run(capsys, "info", "--backend", "pi")
    assert code == 2 and "/dev/vcio" in err and "emulator" in err
