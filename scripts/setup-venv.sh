#!/usr/bin/env bash
# Make .venv (once) and install pimem into it. Run by start.sh and test.sh, which
# make the same venv: start.sh installs pimem, test.sh pimem with its test extras.
# --system-site-packages lets a Raspberry Pi use apt's python3-numpy etc.
# (building them on a Pi takes very long); PEP 668 forbids pip outside a venv.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null; then
    echo "pimem: $PY not found; install Python 3.10 or newer (sudo apt install python3)" >&2
    exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "pimem: $("$PY" --version) is too old; pimem needs Python 3.10 or newer" >&2
    exit 1
fi

# A .venv made by an older pimem without --system-site-packages is remade, so that
# both commands always use the same kind of venv (apt's numpy & co. on a Pi).
if [ -x .venv/bin/python ] && ! grep -qsE '^include-system-site-packages *= *true' .venv/pyvenv.cfg; then
    echo "pimem: remaking .venv with --system-site-packages (it was made without)"
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    echo "pimem: making .venv ($("$PY" --version), with the system's site packages)"
    if ! "$PY" -m venv --system-site-packages .venv 2>/dev/null; then
        rm -rf .venv
        # Debian ships venv separately.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "pimem: installing Debian's python3-venv"
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; } >/dev/null
            "$PY" -m venv --system-site-packages .venv
        else
            echo "pimem: cannot create a venv; run: sudo apt install python3-venv" >&2
            exit 1
        fi
    fi
fi

# On 32-bit ARM, PyPI has no wheels for pyzmq, cffi, psutil, tornado, pyyaml and
# argon2-cffi-bindings: pip compiles them, which needs these (piwheels, where pip
# is pointed at it, has such wheels, but the set-up must not depend on that).
if [ "$(.venv/bin/python -c 'import platform, struct; print(platform.machine().startswith("arm") and struct.calcsize("P") == 4)')" = True ] \
        && [ -z "${PIMEM_SKIP_BUILD_CHECK:-}" ] && command -v dpkg-query >/dev/null; then
    missing=""
    for pkg in python3-dev build-essential libffi-dev libzmq3-dev; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        echo "pimem: on 32-bit ARM pip compiles some of Jupyter's packages; it needs:$missing" >&2
        echo "       install them with: sudo apt install$missing" >&2
        echo "       (or, if pip uses piwheels here, skip this check: PIMEM_SKIP_BUILD_CHECK=1)" >&2
        exit 1
    fi
fi

TARGET="."
[ -n "${EXTRAS:-}" ] && TARGET=".[${EXTRAS}]"
echo "pimem: installing pimem${EXTRAS:+ with its ${EXTRAS} extras} and its dependencies into .venv (pip)"
LOG=.venv/pip-install.log
if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e "$TARGET"; } >"$LOG" 2>&1; then
    echo "pimem: pip failed; its last lines (the whole output is in $LOG):" >&2
    tail -n 40 "$LOG" >&2
    exit 1
fi
echo "pimem: .venv ready in $((SECONDS - t0)) s: $(.venv/bin/python -c 'import numpy, pandas, matplotlib; print(f"numpy {numpy.__version__}, pandas {pandas.__version__}, matplotlib {matplotlib.__version__}")')"
# The compiled timing core (pimem/bench/csrc/pimem_core.c): built once into this user's
# private cache; without a C compiler pimem still works, with per-call timing.
.venv/bin/pimem core 2>/dev/null || echo "pimem: (install gcc for the compiled timing core; pimem works without it)"
