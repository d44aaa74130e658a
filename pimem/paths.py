"""Where the checkout's folders are: pimem serves the notebooks and data that sit beside the package.

Foundation module (like exc and safefs): it imports nothing of pimem, and every layer may use it.
"""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent   # the checkout (pimem/ is one folder in it)
DATA_DIR = REPO / "data"
NOTEBOOKS_DIR = REPO / "notebooks"
LABS_DIR = NOTEBOOKS_DIR / "labs"
