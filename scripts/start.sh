#!/usr/bin/env bash
# Set up and start the course: JupyterLab on notebooks/.
# On a Pi run it with sudo (mapping GPU memory needs /dev/mem, so root);
# off a Pi the notebooks use the emulator and the recorded data.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_OPTIONS=--system-site-packages bash scripts/setup-venv.sh
exec .venv/bin/python -m pimem lab "$@"
