#!/usr/bin/env bash
# Make .venv (once) and install pimem into it. Sourced by start.sh and test.sh.
# --system-site-packages lets a Raspberry Pi use apt's python3-numpy etc.
# (faster than building wheels on a Pi); PEP 668 forbids pip outside a venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null; then
    echo "pimem: $PY not found; install Python 3.10 or newer (sudo apt install python3)" >&2
    exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "pimem: $("$PY" --version) is too old; pimem needs Python 3.10 or newer" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -m venv ${VENV_OPTIONS:-} .venv 2>/dev/null; then
        rm -rf .venv
        # Debian ships venv separately.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
            "$PY" -m venv ${VENV_OPTIONS:-} .venv
        else
            echo "pimem: cannot create a venv; run: sudo apt install python3-venv" >&2
            exit 1
        fi
    fi
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${EXTRAS:-}]"
