"""Every test runs on the firmware emulator, in its own state directory."""
from __future__ import annotations

import pytest

from pimem.memory import backend as backend_mod
from pimem.course.workcopy import WORKING_DIR


def _snapshot(directory):
    if not directory.is_dir():
        return None
    return sorted((str(p.relative_to(directory)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in directory.rglob("*") if p.is_file())


def _git_status() -> str | None:
    """`git status` of the committed course and data (None outside a git checkout)."""
    import shutil
    import subprocess

    from pimem.paths import REPO

    if shutil.which("git") is None or not (REPO / ".git").exists():
        return None
    out = subprocess.run(["git", "status", "--porcelain", "--", "notebooks", "data"], cwd=REPO,
                         capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else None


@pytest.fixture(autouse=True, scope="session")
def _working_copy_untouched():
    """The tests never touch a student's working copy (my-notebooks/), their data (my-data/), nor the
    committed course and data."""
    from pimem.paths import MY_DATA_DIR

    before, mine, status = _snapshot(WORKING_DIR), _snapshot(MY_DATA_DIR), _git_status()
    yield
    assert _snapshot(WORKING_DIR) == before, f"a test changed the working copy {WORKING_DIR}"
    assert _snapshot(MY_DATA_DIR) == mine, f"a test changed the user's data folder {MY_DATA_DIR}"
    assert _git_status() == status, "a test changed files of notebooks/ or data/ (git status differs)"


@pytest.fixture(autouse=True)
def _isolated_emulator(tmp_path_factory, monkeypatch):
    state = tmp_path_factory.mktemp("firmware")
    monkeypatch.setenv("PIMEM_BACKEND", "emulator")
    monkeypatch.setenv("PIMEM_EMULATOR_DIR", str(state))
    monkeypatch.delenv("PIMEM_LEDGER_DIR", raising=False)
    monkeypatch.delenv("PIMEM_EMULATOR_GPU_MEM", raising=False)
    # A user's own recordings (my-data/) never reach a test: each test has an empty folder of its own.
    monkeypatch.setenv("PIMEM_USER_DATA_DIR", str(tmp_path_factory.mktemp("my-data") / "my-data"))
    backend_mod.close_backends()
    yield state
    backend_mod.close_backends()


@pytest.fixture
def emu_dir(_isolated_emulator):
    """The emulator state directory of this test."""
    return _isolated_emulator


@pytest.fixture
def backend(emu_dir):
    return backend_mod.get_backend("emulator")
