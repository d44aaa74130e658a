#!/usr/bin/env bash
# Set up and run every test. Needs no Raspberry Pi.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=test bash scripts/setup-venv.sh
exec .venv/bin/python -m pytest "$@"
