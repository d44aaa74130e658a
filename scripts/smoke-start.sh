#!/usr/bin/env bash
# Smoke run of the README's main command, for CI and scripts/test-debian-stack.sh:
# start `bash scripts/start.sh` on a spare port, check JupyterLab through its REST API
# (token refused/accepted, the course listed, a kernel of that server imports pimem and
# draws a pyplot figure), then stop the server by its pid. Bounded in time; on failure
# one line says what failed, then the server's log.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
TMP=$(mktemp -d)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
# Jupyter's own state goes to a throwaway place. What start.sh makes on purpose stays, as for any
# user: the working copy my-notebooks/ (only missing files are added) and the venv's news setting.
export JUPYTER_TOKEN=$TOKEN JUPYTER_RUNTIME_DIR=$TMP/runtime JUPYTER_CONFIG_DIR=$TMP/config \
       JUPYTERLAB_SETTINGS_DIR=$TMP/settings JUPYTERLAB_WORKSPACES_DIR=$TMP/workspaces \
       IPYTHONDIR=$TMP/ipython MPLCONFIGDIR=$TMP/mpl
bash scripts/start.sh --port "$PORT" >"$TMP/server.log" 2>&1 &
PID=$!    # start.sh and pimem lab exec: this pid becomes JupyterLab's
stop() {
    kill -TERM "$PID" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || return 0; sleep 0.2; done
    kill -KILL "$PID" 2>/dev/null || true
}
trap 'stop; rm -rf "$TMP"' EXIT
set +e
# The set-up (pip) runs first inside start.sh; the client waits for .venv and the server.
for _ in $(seq 600); do [ -x .venv/bin/python ] && break; sleep 0.5; done
timeout 420 .venv/bin/python scripts/smoke_lab.py --port "$PORT" --token "$TOKEN" --pid "$PID" \
    --notebooks notebooks 2>&1
rc=$?
set -e
if [ "$rc" != 0 ]; then
    [ "$rc" = 124 ] && echo "smoke: FAILED: the check did not finish within 420 s"
    echo "smoke: the output of bash scripts/start.sh was:"
    tail -n 40 "$TMP/server.log" | sed 's/^/    /'
    exit 1
fi
stop
if kill -0 "$PID" 2>/dev/null; then echo "smoke: FAILED: JupyterLab (pid $PID) did not stop"; exit 1; fi
echo "smoke: bash scripts/start.sh works: served, checked and stopped in $((SECONDS - t0)) s"
