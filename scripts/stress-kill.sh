#!/usr/bin/env bash
# Kill storm against the emulator (issue: GPU memory that cannot leak). See scripts/stress_kill.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/stress_kill.py "$@"
