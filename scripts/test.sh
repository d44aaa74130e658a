#!/usr/bin/env bash
# Set up and run every test. Needs no Raspberry Pi, and no root.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=test bash scripts/setup-venv.sh
# tests/course/test_html.py opens the HTML edition in headless Chromium; it skips (saying how to
# install it) when there is none. Install Debian's when we may; never fail the run over it.
if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then
    :
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "pimem: installing chromium (for the HTML edition's browser test)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 \
        || echo "pimem: could not install chromium; the browser test will be skipped"
else
    echo "pimem: no chromium, and not root with apt-get: the browser test will be skipped (sudo apt install chromium)"
fi
echo "pimem: running the tests (pytest)"
exec .venv/bin/python -m pytest "$@"
