"""README's commands, and a student's use of the course, on a fresh copy of the checkout off a Pi.

In a copy of this checkout (its files as git would clone them, in a git repository of its own):
every `.venv/bin/pimem` command README shows runs as written and succeeds; then a student's
session (record, mountain, student copies, update-notebooks, Run All + save of every notebook
in my-notebooks/) leaves `git status` of notebooks/ and data/ clean and the committed outputs
current, so the test command still passes.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pimem.paths import REPO

nbformat = pytest.importorskip("nbformat", reason="these tests need the test extras: pip install -e '.[test]'")
nbclient = pytest.importorskip("nbclient", reason="these tests need the test extras: pip install -e '.[test]'")


def readme_commands(text: str | None = None) -> list[str]:
    """Every `.venv/bin/pimem` line of the shell blocks of README's "pimem from a terminal", in order.

    (The section "Rendering" shows a contributor's commands, render and html: they rewrite the committed
    notebooks on purpose, and tests/course/test_notebooks.py and test_html.py run the same code.)
    """
    text = (REPO / "README.md").read_text(encoding="utf-8") if text is None else text
    text = text.split("## pimem from a terminal", 1)[1].split("\n## ", 1)[0]
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.strip().startswith(".venv/bin/pimem"):
                lines.append(line.split("#", 1)[0].strip())
    return lines


def _files_of_a_clone() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> dict:
    """A copy of the checkout as a fresh clone has it, with a .venv whose pimem is the copy's own."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout")
    root = tmp_path_factory.mktemp("clone") / "pimem"
    for rel in _files_of_a_clone():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, root / rel)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "clone"]):
        subprocess.run(git + cmd, cwd=root, check=True, capture_output=True)
    # .venv/bin/pimem and .venv/bin/python as README uses them, running this copy's pimem.
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, tail in (("python", '"$@"'), ("pimem", '-m pimem "$@"')):
        (bin_dir / name).write_text(f'#!/bin/sh\nPYTHONPATH="{root}" exec "{sys.executable}" {tail}\n')
        (bin_dir / name).chmod(0o755)
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIMEM_", "JUPYTER"))}
    env |= {"HOME": str(home), "PIMEM_EMULATOR_DIR": str(home / "emulator"), "PIMEM_LEDGER_DIR": str(home / "ledger"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_CONFIG_DIR": str(home / "jupyter"),
            "JUPYTER_DATA_DIR": str(home / "jupyter-data"), "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces")}
    return {"root": root, "env": env}


def _status(root: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--", "notebooks", "data"], cwd=root,
                          capture_output=True, text=True, check=True).stdout


def test_readme_shows_the_commands_this_module_runs():
    commands = readme_commands()
    for must in (".venv/bin/pimem bench 32", ".venv/bin/pimem record", ".venv/bin/pimem lab",
                 ".venv/bin/pimem cleanup --reset-emulator --gpu-mem 128", ".venv/bin/pimem bench 64"):
        assert must in commands, commands
    assert commands.index(".venv/bin/pimem cleanup --reset-emulator --gpu-mem 128") \
        < commands.index(".venv/bin/pimem bench 64")
    assert "python -m pimem" not in "\n".join(commands)


def _start_lab(command: str, root: Path, env: dict) -> str:
    """Start `pimem lab` as README does, on a free port; return its output once it answers, then stop it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*command.split(), "--port", str(port)], cwd=root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    output = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if re.search(rf"127\.0\.0\.1:{port}/lab.*token=", line):
                return "".join(output)
        pytest.fail(f"{command} did not print its address within 90 s:\n{''.join(output)}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    return ""


@pytest.fixture(scope="module")
def readme_run(clone) -> dict[str, str]:
    """Every README command, run as written in the clone, in README's order: {command: output}."""
    root, env = clone["root"], clone["env"]
    outputs = {}
    for command in readme_commands():
        if command.startswith(".venv/bin/pimem lab"):
            outputs[command] = _start_lab(command, root, env)
            continue
        done = subprocess.run(command.split(), cwd=root, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"README's `{command}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        outputs[command] = done.stdout + done.stderr
    return outputs


def test_every_readme_command_runs_as_written_off_a_pi(readme_run, clone):
    assert "PASS" in readme_run[".venv/bin/pimem selftest"]
    assert "64 MiB" in readme_run[".venv/bin/pimem bench 64"]
    mine = clone["root"] / "my-data"
    assert any(p.suffix == ".csv" for p in mine.iterdir()), "record saves into my-data/"
    assert (mine / "mountain" / "m.csv").exists(), "mountain --save saves into my-data/mountain/"
    assert (clone["root"] / "my-notebooks" / "00-start-here.ipynb").exists(), "lab makes the working copy"
    assert _status(clone["root"]) == "", "README's commands changed the committed course"


def _run_and_save(path: Path, env: dict) -> None:
    """Run All, then save, as JupyterLab does it (a lab stops at its first failing check; here it goes on)."""
    nb = nbformat.read(path, as_version=4)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        for k in [k for k in os.environ if k.startswith("PIMEM_") and k not in env]:
            mp.delenv(k)
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)


def test_using_the_course_leaves_it_clean_and_its_tests_green(readme_run, clone):
    root, env = clone["root"], clone["env"]
    pimem = str(root / ".venv" / "bin" / "pimem")

    def run(*args: str) -> str:
        done = subprocess.run([pimem, *args], cwd=root, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"pimem {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    run("record", "--sizes", "64KiB", "1MiB", "--label", "alice", "--no-progress")
    run("student-copies")
    run("update-notebooks")
    work = root / "my-notebooks"
    notebooks = sorted(work.rglob("*.ipynb"))
    assert len(notebooks) >= 13, notebooks
    kernel_env = {k: v for k, v in env.items() if k.startswith("PIMEM_")} | {"PYTHONPATH": str(root)}
    for path in notebooks:
        _run_and_save(path, kernel_env)
    # Only run and saved: nothing a student wrote, so an update replaces them in place, never beside.
    assert "-updated" not in run("update-notebooks")
    assert not list(work.rglob("*-updated*.ipynb"))
    assert _status(root) == "", "using the course changed notebooks/ or data/"
    # The committed outputs of the notebooks that read data/ are still current (the test command's check).
    check = ("import sys; from pathlib import Path; from pimem.course.render import stale_cells; "
             "problems = [p for n in sys.argv[1:] for p in stale_cells(Path(n))]; "
             "print('\\n'.join(problems)); sys.exit(1 if problems else 0)")
    names = [str(root / "notebooks" / n) for n in ("01-memory-wall.ipynb", "05-standard-copy.ipynb",
                                                    "06-zero-copy.ipynb")]
    done = subprocess.run([str(root / ".venv" / "bin" / "python"), "-c", check, *names], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"stale committed outputs after using the course:\n{done.stdout}\n{done.stderr[-3000:]}"
    # check-data reads both folders and finds the student's recordings sound.
    assert "every recording follows the schema" in run("check-data")
    json.loads(run("check-data", "--json"))


def test_readmes_python_example_runs_and_prints_what_its_comments_say(tmp_path: Path) -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    code = re.search(r"From Python:\s*```python\n(.*?)```", text, re.S).group(1)
    env = {**os.environ, "PIMEM_BACKEND": "emulator", "PIMEM_EMULATOR_DIR": str(tmp_path / "emu"),
           "PIMEM_LEDGER_DIR": str(tmp_path / "ledger")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    promised = re.findall(r"# (?:e\.g\. |a host copy: )(.+)$", code, re.M)
    assert promised and all(p in done.stdout for p in promised), (promised, done.stdout)
