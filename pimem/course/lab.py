"""`pimem lab`: JupyterLab on the working copy of the course, started the safe way even as root.

It serves `my-notebooks/` (pimem.course.workcopy), never `notebooks/`: running and
saving a notebook must not rewrite the committed, rendered course.

Root is needed on a Pi (mapping GPU memory goes through /dev/mem), and a
root notebook server is a root shell for whoever reaches it. So: bind to
loopback unless told otherwise, keep token authentication, pass
--allow-root only when actually root, and show the SSH tunnel to use
from another computer.
"""
from __future__ import annotations

import ipaddress
import json
import os
import socket
import stat
import sys
from pathlib import Path

from .. import safefs
from ..exc import UsageError
from .workcopy import WORKING_DIR, start_notebook, sync
from ..firmware.transport import VCIO_PATH
from ..paths import NOTEBOOKS_DIR, pimem_command

DEFAULT_IP = "127.0.0.1"
#: Extra Jupyter config for the server pimem lab starts (on JUPYTER_CONFIG_PATH).
JUPYTER_CONFIG = Path(__file__).resolve().parent / "jupyter_config"
DEFAULT_PORT = 8888


def notebooks_dir() -> Path:
    """The committed course (the rendered reference)."""
    return NOTEBOOKS_DIR


# JupyterLab's news prompt ("Would you like to receive official Jupyter news?") greets
# every new student; pimem's own venv answers it once, in JupyterLab's settings overrides.
LAB_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                                   "checkForUpdates": False}}


def quiet_news(settings_dir: Path | None = None) -> str | None:
    """Write LAB_OVERRIDES into this venv's JupyterLab overrides.json; returns its path.

    Only inside a venv (sys.prefix is then pimem's own, not the system's), in folders this
    user owns, never through a symlink (safefs); other settings there are kept. None when
    not in a venv, or when the file cannot be written safely: the prompt is then only shown.
    """
    if settings_dir is None:
        if sys.prefix == sys.base_prefix:
            return None
        settings_dir = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings"
    path = settings_dir / "overrides.json"
    try:
        for folder in [*reversed(settings_dir.parents[:3]), settings_dir]:
            if not folder.exists() and not folder.is_symlink():
                folder.mkdir()
            st = os.lstat(folder)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                return None   # a symlink, or someone else's folder: leave it alone
        try:
            current = json.loads(safefs.read_regular(path))
        except FileNotFoundError:
            current = {}
        if not isinstance(current, dict) or any(not isinstance(current.get(k, {}), dict) for k in LAB_OVERRIDES):
            return None
        merged = {**current, **{k: {**current.get(k, {}), **v} for k, v in LAB_OVERRIDES.items()}}
        if merged != current:
            safefs.write_file(path, (json.dumps(merged, indent=2) + "\n").encode())
    except (OSError, ValueError):
        return None
    return str(path)


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: The server option that runs keep_fallback_images before every save.
SAVE_HOOK = "--ContentsManager.pre_save_hook=pimem.course.lab.keep_fallback_images"


def keep_fallback_images(model: dict, **_: object) -> None:
    """A save hook: drop each widget view whose widget's state the notebook does not keep.

    A saved explorer output holds the widget's view and a plain image of its figure. JupyterLab
    shows the view, and when the widget's state is not saved with the notebook (JupyterLab does
    not save it by default) a reopened notebook shows "Error displaying widget: model not
    found" instead of the image. Without the view the image shows; the live session in the
    browser is not touched, only the file.
    """
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    nb = model["content"]
    widgets = nb.get("metadata", {}).get("widgets", {})
    state = widgets.get(WIDGET_STATE, {}).get("state", {}) if isinstance(widgets, dict) else {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = out.get("data")
            if not isinstance(data, dict) or WIDGET_VIEW not in data:
                continue
            view = data[WIDGET_VIEW]
            if not isinstance(view, dict) or view.get("model_id") not in state:
                del data[WIDGET_VIEW]
                if not data:
                    data["text/plain"] = "(a widget: run the cell again to show it)"


def _bound(ip: str) -> str:
    # "localhost" may mean ::1 as well, where another local user can listen first: bind IPv4 loopback.
    return "127.0.0.1" if ip == "localhost" else ip


def is_loopback(ip: str) -> bool:
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        raise UsageError(f"--ip {ip!r} is not an IP address; use 127.0.0.1 (the default) or an address of this machine") from None


def lab_command(ip: str = DEFAULT_IP, port: int = DEFAULT_PORT, *, root: bool | None = None,
                directory: Path | None = None, open_browser: bool = False, start: str = "") -> list[str]:
    """The jupyter command line to run (no shell: a list of arguments); `start` is the notebook to open on."""
    if not 0 < port < 65536:
        raise UsageError(f"--port {port} is not a TCP port (1..65535)")
    is_loopback(ip)
    ip = _bound(ip)
    root = os.geteuid() == 0 if root is None else root
    directory = directory or WORKING_DIR
    # The venv's own jupyter: `sudo` does not carry an activated venv's PATH.
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.ip={ip}", f"--ServerApp.port={port}",
           f"--ServerApp.root_dir={directory}", "--ServerApp.port_retries=0", SAVE_HOOK]
    if start:
        cmd.append(f"--LabApp.default_url=/lab/tree/{start}")
    if not open_browser:
        cmd.append("--no-browser")
    if root:
        cmd.append("--allow-root")
    return cmd


def advice(ip: str, port: int, on_pi: bool | None = None) -> list[str]:
    """What to tell the person starting it (`on_pi`: default, whether this machine has /dev/vcio)."""
    lines = []
    on_pi = os.path.exists(VCIO_PATH) if on_pi is None else on_pi
    if is_loopback(ip):
        ip = _bound(ip)
        lines.append(f"pimem lab: JupyterLab listens on {ip}:{port} only (this machine); open the URL with "
                     "the token below in a browser here.")
        if on_pi:   # a Pi is usually reached from a laptop: the tunnel, to the address the server binds
            target = f"[{ip}]" if ":" in ip else ip
            lines += ["  From another computer, open a tunnel there, then browse to the same URL:",
                      f"    ssh -N -L {port}:{target}:{port} {os.environ.get('SUDO_USER') or 'pi'}@{socket.gethostname()}"]
    else:
        bar = "!" * 72
        lines += [bar, f"WARNING: listening on {ip}: anyone who can reach this address and gets the token",
                  "runs code on this machine" + (" AS ROOT" if os.geteuid() == 0 else "") +
                  ". Prefer the default (127.0.0.1) and an SSH tunnel.", bar]
    if os.geteuid() != 0 and on_pi:
        lines.append("  Not root: the notebooks can read the board but not map GPU memory (/dev/mem). "
                     f"Start with: sudo {pimem_command('lab')}")
    return lines


def run_lab(ip: str = DEFAULT_IP, port: int = DEFAULT_PORT, open_browser: bool = False,
            directory: Path | None = None, teacher: bool = False) -> int:
    directory = Path(directory) if directory is not None else WORKING_DIR
    cmd = lab_command(ip, port, open_browser=open_browser, directory=directory, start=start_notebook())
    if not _has_module("jupyterlab"):
        raise UsageError("JupyterLab is not installed in this Python; run 'bash scripts/start.sh' to set it up")
    if not notebooks_dir().is_dir():   # jupyter's own message for a missing root_dir is a traceback
        raise UsageError(f"{notebooks_dir()} does not exist; pimem lab serves the course notebooks of a "
                         "full checkout of the repository (git clone, then bash scripts/start.sh)")
    for line in sync(directory, teacher=teacher).lines():   # as the user behind sudo, when there is one
        print(f"pimem lab: {line}", file=sys.stderr)
    print(f"pimem lab: serving your working copy {directory} (yours to change; notebooks/ stays the "
          "course as published)", file=sys.stderr)
    safefs.as_invoking_user(quiet_news)
    # The course's nbgrader config (see jupyter_config/nbgrader_config.py): no warning at every start.
    os.environ["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        p for p in (str(JUPYTER_CONFIG), os.environ.get("JUPYTER_CONFIG_PATH", "")) if p)
    for line in advice(ip, port):
        print(line, file=sys.stderr)
    sys.stderr.flush()
    os.execv(cmd[0], cmd)
    return 0  # not reached


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
