"""`pimem lab`: the command line it builds, its warnings, and one real start on loopback with a token."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pimem.course import lab
from pimem.exc import UsageError


@pytest.mark.parametrize("euid, allow_root", [(0, True), (1000, False)])
def test_command_line(monkeypatch, euid, allow_root):
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    cmd = lab.lab_command()
    assert cmd[:4] == [sys.executable, "-m", "jupyter", "lab"]
    assert "--ServerApp.ip=127.0.0.1" in cmd and "--ServerApp.port=8888" in cmd
    assert f"--ServerApp.root_dir={lab.WORKING_DIR}" in cmd, "JupyterLab serves the working copy, never notebooks/"
    assert lab.notebooks_dir() == Path(lab.__file__).resolve().parents[2] / "notebooks"
    assert "--no-browser" in cmd and "--ServerApp.port_retries=0" in cmd
    assert ("--allow-root" in cmd) is allow_root
    assert not any("token" in a.lower() or "password" in a.lower() for a in cmd), "never switch authentication off"
    assert "--no-browser" not in lab.lab_command(open_browser=True)


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_bad_port(port):
    with pytest.raises(UsageError, match=f"--port {port}"):
        lab.lab_command(port=port)


def test_bad_ip():
    with pytest.raises(UsageError, match="not an IP address"):
        lab.lab_command("my-laptop")


@pytest.mark.parametrize("ip", ["0.0.0.0", "192.0.2.7", "::"])
@pytest.mark.parametrize("euid", [0, 1000])
def test_loud_warning_off_loopback(monkeypatch, ip, euid):
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    text = "\n".join(lab.advice(ip, 8888))
    assert "WARNING" in text and ip in text and "127.0.0.1" in text
    assert ("AS ROOT" in text) is (euid == 0)


@pytest.mark.parametrize("ip, target", [("127.0.0.1", "127.0.0.1"), ("localhost", "127.0.0.1"), ("::1", "[::1]")])
def test_on_a_pi_loopback_shows_the_tunnel_to_the_bound_address(ip, target):
    # Never "localhost" in the tunnel: a client may resolve it to ::1, where another user can listen first.
    text = "\n".join(lab.advice(ip, 9999, on_pi=True))
    assert "WARNING" not in text and f"ssh -N -L 9999:{target}:9999 " in text and "localhost:9999" not in text


def test_off_a_pi_there_is_no_tunnel_advice():
    text = "\n".join(lab.advice("127.0.0.1", 9999, on_pi=False))
    assert "ssh" not in text and "127.0.0.1:9999 only" in text and "browser here" in text


# --- one real start -------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _other_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback."""
    found: set[str] = set()
    if shutil.which("ip"):
        out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
        found |= set(re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out))
    try:
        found |= set(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    return sorted(a for a in found if not a.startswith("127."))


def _get(url: str, token: str | None = None) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.skipif(not lab._has_module("jupyterlab"), reason="JupyterLab is not installed in this Python")
def test_real_start_is_loopback_only_with_a_token(tmp_path):
    if not lab.notebooks_dir().is_dir():
        pytest.skip(f"{lab.notebooks_dir()} does not exist yet")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env |= {"JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
            "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}
    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, "-m", "pimem", "lab", "--port", str(port), "--dir", str(work)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        token = None
        while time.monotonic() < deadline and token is None:
            assert proc.poll() is None, f"pimem lab exited with {proc.returncode}:\n" + "".join(output)
            m = re.search(r"token=([0-9a-f]+)", "".join(output))
            if m and _get(f"{base}/api/status", m.group(1)) == 200:
                token = m.group(1)
            else:
                time.sleep(0.5)
        assert token, "JupyterLab did not answer with its token within 60 s:\n" + "".join(output)
        assert "browser here" in "".join(output) and "ssh -N -L" not in "".join(output), \
            "off a Pi there is no tunnel advice"
        assert f"serving your working copy {work}" in "".join(output)
        assert "No nbgrader_config.py" not in "".join(output), "the course gives nbgrader a config"
        assert (work / "00-start-here.ipynb").is_file(), "the working copy is made on first start"
        assert "/lab/tree/00-start-here.ipynb?token=" in "".join(output), "JupyterLab opens on 00-start-here"
        # The token is also in the runtime dir, as `jupyter server list` reads it.
        info = [json.loads(p.read_text()) for p in (tmp_path / "runtime").glob("jpserver-*.json")]
        assert any(i.get("token") == token and i.get("port") == port for i in info), info
        assert _get(f"{base}/api/contents") == 403, "a request without the token must be refused"
        assert _get(f"{base}/api/contents", token) == 200
        # Saving through the server keeps an explorer's image whenever its widget state is not saved.
        saved = _put_and_get_notebook(base, token, "saved.ipynb", _explorer_notebook(with_state=False))
        assert [sorted(o["data"]) for o in saved["cells"][0]["outputs"]] == [["image/png"]], saved
        for addr in _other_addresses():
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((addr, port)) != 0, f"JupyterLab also answers on {addr}:{port}; it must not"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            pytest.fail("pimem lab did not stop within 30 s of SIGTERM")
    assert proc.returncode is not None


def _explorer_notebook(with_state: bool) -> dict:
    view = {"model_id": "a" * 32, "version_major": 2, "version_minor": 0}
    out = {"output_type": "display_data", "metadata": {},
           "data": {lab.WIDGET_VIEW: view, "image/png": "iVBORw0KGgo="}}
    meta: dict = {}
    if with_state:
        meta["widgets"] = {lab.WIDGET_STATE: {"state": {"a" * 32: {"model_name": "VBoxModel"}},
                                              "version_major": 2, "version_minor": 0}}
    return {"cells": [{"cell_type": "code", "metadata": {}, "source": "explorer", "execution_count": 1,
                       "outputs": [out]}], "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


def _put_and_get_notebook(base: str, token: str, name: str, nb: dict) -> dict:
    body = json.dumps({"type": "notebook", "format": "json", "content": nb}).encode()
    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
    req = urllib.request.Request(f"{base}/api/contents/{name}", data=body, headers=headers, method="PUT")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status in (200, 201)
    with urllib.request.urlopen(urllib.request.Request(f"{base}/api/contents/{name}?content=1",
                                                       headers=headers), timeout=10) as r:
        return json.loads(r.read())["content"]


@pytest.mark.parametrize("with_state", [False, True])
def test_the_save_hook_keeps_the_image_when_the_widget_state_is_not_saved(with_state):
    model = {"type": "notebook", "content": _explorer_notebook(with_state)}
    lab.keep_fallback_images(model=model, path="x.ipynb")
    data = model["content"]["cells"][0]["outputs"][0]["data"]
    assert sorted(data) == (sorted([lab.WIDGET_VIEW, "image/png"]) if with_state else ["image/png"])


def test_the_save_hook_leaves_other_files_alone():
    model = {"type": "file", "content": "x"}
    lab.keep_fallback_images(model=model, path="x.txt")
    assert model == {"type": "file", "content": "x"}


def test_localhost_binds_the_ipv4_loopback_only():
    assert "--ServerApp.ip=127.0.0.1" in lab.lab_command("localhost", 8888, root=False)
