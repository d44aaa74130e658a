"""pimem.course.mode: auto is live only on a Pi as root; live off a Pi is a host run, said so."""
from __future__ import annotations

import pytest

from pimem.course import mode
from pimem.exc import UsageError


def test_auto_off_a_pi_is_recorded(monkeypatch):
    monkeypatch.delenv(mode.ENV_MODE, raising=False)
    run = mode.resolve_mode("auto")
    assert not run.live and run.backend == "emulator" and not run.host_run


def test_live_off_a_pi_measures_this_computer_and_says_it_is_a_host_run(monkeypatch):
    run = mode.resolve_mode("live")
    assert run.live and run.host_run and run.backend == "emulator"
    assert "host run" in run.banner_text() and "not a Pi" in run.banner_text()
    assert "host run" in run._repr_html_().lower()


def test_live_on_a_pi_without_root_is_refused_with_what_to_do(monkeypatch):
    monkeypatch.setattr(mode, "default_backend_name", lambda: "pi")
    monkeypatch.setattr(mode.os, "geteuid", lambda: 1000)
    with pytest.raises(UsageError, match="sudo"):
        mode.resolve_mode("live")


def test_live_on_a_pi_as_root(monkeypatch):
    monkeypatch.setattr(mode, "default_backend_name", lambda: "pi")
    monkeypatch.setattr(mode.os, "geteuid", lambda: 0)
    installed = []
    monkeypatch.setattr("pimem.bench.core.explain_bus_errors", lambda: installed.append(True))
    run = mode.resolve_mode("live")
    assert run.live and not run.host_run and "Raspberry Pi" in run.banner_text()
    assert installed == [True]      # a fault on GPU memory will name its cause, not kill the kernel silently


def test_a_bad_mode_names_the_value():
    with pytest.raises(UsageError, match="'fast'"):
        mode.resolve_mode("fast")
