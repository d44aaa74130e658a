"""Check a running JupyterLab started by scripts/start.sh (called by scripts/smoke-start.sh).

Waits until the server answers, checks that its API refuses a request without the
token and accepts the token, that it lists every course notebook, and that a kernel
started through the REST API imports pimem and draws a pyplot figure. Prints one line
per check; a failure prints one line starting 'smoke: FAILED:' and exits 1.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

CELL = """\
import matplotlib
import matplotlib.pyplot as plt
import pimem
fig, ax = plt.subplots(figsize=(3, 2))
ax.plot([1, 2, 3], [1, 4, 9])
print("pimem", pimem.__version__, "matplotlib", matplotlib.__version__, "backend", pimem.get_backend().name)
plt.show()
"""


class SmokeFailure(Exception):
    pass


def request(base: str, path: str, token: str | None = None, method: str = "GET",
            body: dict | None = None) -> tuple[int, object]:
    headers = {"Authorization": f"token {token}"} if token else {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            text = r.read().decode()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, None


def wait_for_server(base: str, token: str, pid: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise SmokeFailure(f"bash scripts/start.sh (pid {pid}) exited before JupyterLab answered") from None
        try:
            if request(base, "/api/status", token)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SmokeFailure(f"JupyterLab did not answer on {base} in time")


async def run_cell(base: str, token: str, kernel_id: str, code: str, timeout: float) -> dict:
    """Execute code on the kernel's websocket; return what came back (stdout, figures, error)."""
    from tornado.websocket import websocket_connect

    url = base.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels?token={token}"
    ws = await asyncio.wait_for(websocket_connect(url), timeout)
    msg_id = uuid.uuid4().hex
    ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "username": "smoke", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    got: dict = {"stdout": "", "png": 0, "error": None, "status": None, "idle": False}
    end = time.monotonic() + timeout
    while not (got["status"] and got["idle"]):
        left = end - time.monotonic()
        if left <= 0:
            raise SmokeFailure(f"the kernel did not finish the cell within {timeout:.0f} s")
        raw = await asyncio.wait_for(ws.read_message(), left)
        if raw is None:
            raise SmokeFailure("the kernel's websocket closed before the cell finished")
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = msg["header"]["msg_type"], msg["content"]
        if kind == "stream" and content.get("name") == "stdout":
            got["stdout"] += content.get("text", "")
        elif kind in ("display_data", "execute_result") and "image/png" in content.get("data", {}):
            got["png"] += 1
        elif kind == "error":
            got["error"] = f"{content.get('ename')}: {content.get('evalue')}"
        elif kind == "execute_reply":
            got["status"] = content.get("status")
        elif kind == "status" and content.get("execution_state") == "idle":
            got["idle"] = True
    ws.close()
    return got


def check(base: str, token: str, pid: int, notebooks: Path, timeout: float) -> None:
    start = time.monotonic()
    wait_for_server(base, token, pid, start + timeout)
    print(f"smoke: JupyterLab answers on {base} after {time.monotonic() - start:.0f} s")

    refused, _ = request(base, "/api/contents")
    if refused not in (401, 403):
        raise SmokeFailure(f"a request without the token got HTTP {refused}; it must be refused (403)")
    status, listing = request(base, "/api/contents", token)
    if status != 200 or not isinstance(listing, dict):
        raise SmokeFailure(f"a request with the token got HTTP {status}; it must be accepted (200)")
    print(f"smoke: the API refuses a request without the token (HTTP {refused}) and accepts the token (HTTP 200)")

    served = {item["name"] for item in listing.get("content", [])}
    course = sorted(p.name for p in notebooks.glob("[0-9][0-9]-*.ipynb"))
    missing = [name for name in course if name not in served]
    if not course or missing:
        raise SmokeFailure(f"the server does not list the course notebooks {missing or '(none found)'}; "
                           f"it lists {sorted(served)}")
    print(f"smoke: the server lists the {len(course)} course notebooks")

    status, kernel = request(base, "/api/kernels", token, "POST", {"name": "python3"})
    if status not in (200, 201) or not isinstance(kernel, dict):
        raise SmokeFailure(f"starting a kernel through the API got HTTP {status}")
    try:
        got = asyncio.run(run_cell(base, token, kernel["id"], CELL, max(30.0, start + timeout - time.monotonic())))
    finally:
        request(base, f"/api/kernels/{kernel['id']}", token, "DELETE")
    if got["error"] or got["status"] != "ok":
        raise SmokeFailure(f"the cell that imports pimem and draws a figure failed: {got['error'] or got['status']}")
    if got["png"] < 1:
        raise SmokeFailure(f"the cell ran but showed no figure (no image/png output); it printed {got['stdout']!r}")
    print(f"smoke: a kernel of that server imported pimem and drew a figure ({got['stdout'].strip()})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--pid", type=int, required=True, help="the server's pid (to notice it dying)")
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"))
    parser.add_argument("--timeout", type=float, default=360.0, help="seconds for everything")
    args = parser.parse_args()
    try:
        check(f"http://127.0.0.1:{args.port}", args.token, args.pid, args.notebooks, args.timeout)
    except (SmokeFailure, OSError, asyncio.TimeoutError) as e:
        print(f"smoke: FAILED: {e or type(e).__name__}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
