"""Every test runs on the firmware emulator, in its own state directory."""
from __future__ import annotations

import pytest

from pimem import backend as backend_mod


@pytest.fixture(autouse=True)
def _isolated_emulator(tmp_path_factory, monkeypatch):
    state = tmp_path_factory.mktemp("firmware")
    monkeypatch.setenv("PIMEM_BACKEND", "emulator")
    monkeypatch.setenv("PIMEM_EMULATOR_DIR", str(state))
    monkeypatch.delenv("PIMEM_LEDGER_DIR", raising=False)
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
