"""A full disk: a clear error naming the folder, before anything is mapped or lost (never SIGBUS).

The emulator keeps its GPU memory (and host runs their host buffers) as files in its folder, and
a small $XDG_RUNTIME_DIR is the default for users who are not root. Each case runs pimem in a
private mount namespace on a tmpfs of a few MiB (root and unshare needed), or fakes the full disk
in-process where the moment matters (a save after the measurement).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pimem.cli import main
from pimem.exc import DiskFull


def _on_small_tmpfs(tmp_path: Path, size: str, env: dict, *argv: str) -> subprocess.CompletedProcess:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    script = (f'mount -t tmpfs -o size={size},mode=0700 tmpfs "{mnt}" || exit 99\n'
              f'exec "{sys.executable}" -m pimem "$@"')
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv],
                          env={**env, **{k: v.replace("{mnt}", str(mnt)) for k, v in env.items()}},
                          capture_output=True, text=True, timeout=300)
    if done.returncode == 99:
        pytest.skip("cannot mount a tmpfs here")
    return done


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIMEM_")}
    return env | {"PIMEM_BACKEND": "emulator"} | extra


@pytest.mark.parametrize("size, argv", [
    ("2m", ("bench", "4")),                                                        # the GPU buffers themselves
    ("200m", ("sweep", "--sizes", "256MiB", "--benchmarks", "baseline", "--iterations", "1", "--no-progress")),
    ("200m", ("sweep", "--sizes", "256MiB", "--benchmarks", "read-host", "--iterations", "1", "--no-progress")),
])
def test_a_full_emulator_folder_is_an_error_naming_it_not_a_bus_error(tmp_path, size, argv):
    done = _on_small_tmpfs(tmp_path, size, _env(PIMEM_EMULATOR_DIR="{mnt}/emu"), *argv)
    assert done.returncode == 2, (done.returncode, done.stderr)   # a SIGBUS would be -7
    err = done.stderr.strip().splitlines()[-1]
    assert "no room left" in err and str(tmp_path / "small" / "emu") in err and "PIMEM_EMULATOR_DIR" in err, err
    assert "cannot write the output" not in done.stderr and "Traceback" not in done.stderr


def test_a_full_ledger_folder_is_named(tmp_path):
    done = _on_small_tmpfs(tmp_path, "4k", _env(PIMEM_EMULATOR_DIR=str(tmp_path / "emu"),
                                                PIMEM_LEDGER_DIR="{mnt}/ledger"), "selftest")
    assert done.returncode in (1, 2) and "Traceback" not in done.stderr, done.stderr
    text = done.stdout + done.stderr
    assert "no room left" in text and str(tmp_path / "small" / "ledger") in text, text


def test_record_checks_for_room_before_it_measures(tmp_path):
    done = _on_small_tmpfs(tmp_path, "64k", _env(PIMEM_EMULATOR_DIR=str(tmp_path / "emu")),
                           "record", "--dir", "{mnt}/rec".replace("{mnt}", str(tmp_path / "small")),
                           "--sizes", "4KiB", "--benchmarks", "baseline", "--no-progress")
    assert done.returncode == 2, done.stderr
    assert "nothing was measured yet" in done.stderr and "KiB free" in done.stderr, done.stderr


def test_record_keeps_what_it_measured_when_the_save_fails(capsys, tmp_path, monkeypatch):
    from pimem.bench.data import save as save_mod

    def full(*a, **k):
        raise DiskFull(f"no room left in {tmp_path / 'rec'} to write t.csv (No space left on device); free some space")

    real = save_mod.write_recording
    calls = []

    def write_recording(folder, *texts):
        calls.append(folder)
        return full() if len(calls) == 1 else real(folder, *texts)

    monkeypatch.setattr(save_mod, "write_recording", write_recording)
    code = main(["record", "--dir", str(tmp_path / "rec"), "--name", "t", "--sizes", "4KiB", "--benchmarks",
                 "baseline", "--iterations", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "no room left" in err and "What was measured is kept in" in err, err
    kept = Path(err.split("What was measured is kept in ", 1)[1].split(" and beside it", 1)[0])
    assert kept.name == "t.csv" and kept.exists() and kept.with_suffix(".json").exists()
    shutil.rmtree(kept.parent)


@pytest.mark.parametrize("variable", ["PIMEM_EMULATOR_DIR", "PIMEM_LEDGER_DIR"])
def test_a_read_only_folder_is_one_line_naming_it(tmp_path, variable):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a read-only file system")
    mnt = tmp_path / "ro"
    mnt.mkdir()
    env = _env(PIMEM_EMULATOR_DIR=str(tmp_path / "emu"), PIMEM_LEDGER_DIR=str(tmp_path / "ledger"))
    env[variable] = str(mnt / "state")
    # Made while writable (as a state from an earlier boot is), then the file system turns read-only.
    script = (f'mount -t tmpfs -o size=8m,mode=0700 tmpfs "{mnt}" || exit 99\n'
              f'"{sys.executable}" -m pimem selftest >/dev/null 2>&1 || exit 98\n'
              f'mount -o remount,ro "{mnt}" || exit 99\n'
              f'exec "{sys.executable}" -m pimem selftest')
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          env=env, capture_output=True, text=True, timeout=300)
    if done.returncode == 99:
        pytest.skip("cannot mount a tmpfs here")
    assert done.returncode == 2 and "Traceback" not in done.stderr, (done.returncode, done.stderr)
    err = [ln for ln in done.stderr.splitlines() if ln.strip() and not ln.startswith("pimem: no /dev/vcio")]
    assert len(err) == 1 and "read-only" in err[0] and str(mnt / "state") in err[0], err
