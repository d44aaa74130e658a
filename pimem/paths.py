"""Where the checkout's folders are: pimem serves the notebooks and data that sit beside the package.

Foundation module (like exc and safefs): it imports nothing of pimem, and every layer may use it.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent   # the checkout (pimem/ is one folder in it)
DATA_DIR = REPO / "data"
NOTEBOOKS_DIR = REPO / "notebooks"
LABS_DIR = NOTEBOOKS_DIR / "labs"
#: A user's own measurements (pimem record, pimem mountain --save): git-ignored, beside my-notebooks/,
#: so using the course never changes the committed data/.
MY_DATA_DIR = REPO / "my-data"


def pimem_command(args: str) -> str:
    """How to type ``pimem ARGS`` on this machine, for messages that suggest a command.

    The venv's console script, never ``python -m pimem``: that form imports from the current
    folder first, so root running it where another user can write would run their code.
    Under sudo the suggestion keeps the sudo.
    """
    import os

    script = Path(sys.executable).parent / "pimem"
    if script == REPO / ".venv" / "bin" / "pimem":
        exe = ".venv/bin/pimem"        # README's form: commands are typed in the checkout
    elif script.exists():
        exe = str(script)
    else:
        exe = "pimem"
    sudo = "sudo " if os.geteuid() == 0 and os.environ.get("SUDO_UID", "0") not in ("", "0") else ""
    return f"{sudo}{exe} {args}".rstrip()
