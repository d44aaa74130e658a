#!/usr/bin/env bash
# Set up and start the course: JupyterLab on your working copy, my-notebooks/ (made from notebooks/ on first start). Arguments go to
# `pimem lab` (e.g. --port 8890). On a Pi run it with sudo (mapping GPU memory
# needs /dev/mem, so root); off a Pi the notebooks use the emulator and the recorded data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
echo "pimem: starting JupyterLab (Ctrl-C stops it)"
exec .venv/bin/pimem lab "$@"
