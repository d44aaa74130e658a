"""The labs through nbgrader itself: generate_assignment, then autograde.

In a throwaway course directory (its own HOME and Jupyter dirs), every lab is one
notebook of one assignment, so nbgrader runs once per command for the module:
the release copy must hold no solution, the instructor notebook (with its
solutions) must get full marks, an untouched release copy zero. The labs run
on the firmware emulator in recorded mode, as a classroom without Pis would.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbgrader = pytest.importorskip("nbgrader", reason="nbgrader is not installed: pip install 'nbgrader>=0.9' "
                                                   "(it is in the test extras)")
nbformat = pytest.importorskip("nbformat")

from pimem.course.students import BEGIN, END  # noqa: E402

LABS = Path(__file__).resolve().parents[2] / "notebooks" / "labs"
ASSIGNMENT = "labs"
TIMEOUT = 900   # seconds for one nbgrader command: all five labs, twice


def _is_lab(path: Path) -> bool:
    """A notebook with nbgrader cells (the labs folder may hold others, e.g. the class results)."""
    nb = nbformat.read(path, as_version=4)
    return any("nbgrader" in c.metadata for c in nb.cells)


NOTEBOOKS = [p for p in sorted(LABS.glob("*.ipynb")) if _is_lab(p)]


def _path() -> str:
    # nbgrader runs the `alembic` command by name to check its database: this Python's scripts must be on PATH.
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


INSTRUCTOR = LABS / "INSTRUCTOR.md"
REPO = LABS.parents[1]


def grading_commands() -> list[str]:
    """The shell lines of INSTRUCTOR.md's "Grading with nbgrader" section, in order."""
    section = INSTRUCTOR.read_text(encoding="utf-8").split("## Grading with nbgrader", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)
            for line in block.splitlines() if line.strip()]


def test_the_grading_steps_are_the_ones_this_module_runs():
    lines = grading_commands()
    assert lines[:4] == [".venv/bin/pip install 'nbgrader>=0.9'", ". .venv/bin/activate",
                         "pimem grading-folder ~/pimem-grading", "cd ~/pimem-grading"], lines
    assert [ln for ln in lines if ln.startswith(("nbgrader", "PIMEM_MODE"))] == [
        "nbgrader generate_assignment labs",
        "PIMEM_MODE=recorded PIMEM_BACKEND=emulator nbgrader autograde labs",
        "nbgrader generate_feedback labs", "nbgrader export"], lines
    assert "formgrade" not in "\n".join(lines), "nbgrader 0.9 has no `nbgrader formgrade` command"


def _script(scratch: Path) -> str:
    """INSTRUCTOR.md's grading commands as one bash script, run from the repository's folder as written.

    The pip line is skipped (the test extras installed nbgrader already); after generate_assignment the
    test plays the students: alice's untouched release copy lands in ~/Downloads/alice/ (the doc then
    collects it as written), and an "instructor" submission holds the solutions.
    """
    out = ["set -euo pipefail", f"cd {REPO}"]
    for line in grading_commands():
        if line.startswith(".venv/bin/pip install"):
            continue
        if line == ". .venv/bin/activate" and not (REPO / ".venv" / "bin" / "activate").exists():
            line = f"export PATH={Path(sys.executable).parent}:$PATH   # (no .venv here: this Python's scripts)"
        out.append(line)
        if line == "nbgrader generate_assignment labs":
            out += ["mkdir -p ~/Downloads/alice && cp release/labs/*.ipynb ~/Downloads/alice/",
                    "mkdir -p submitted/instructor/labs && cp source/labs/*.ipynb submitted/instructor/labs/"]
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The grading folder after INSTRUCTOR.md's grading steps, run as written."""
    scratch = tmp_path_factory.mktemp("nbgrader-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON", "PIMEM_"))}
    env.update(HOME=str(scratch), JUPYTER_CONFIG_DIR=str(scratch / "jupyter-config"),
               JUPYTER_DATA_DIR=str(scratch / "jupyter-data"), JUPYTER_RUNTIME_DIR=str(scratch / "jupyter-run"),
               IPYTHONDIR=str(scratch / "ipython"),
               PIMEM_EMULATOR_DIR=str(scratch / "emu"), PIMEM_LEDGER_DIR=str(scratch / "ledger"),
               PYTHONWARNINGS="ignore",   # a warning is stderr, and nbgrader scores a cell with stderr 0
               PATH=_path())
    t = time.monotonic()
    try:
        done = subprocess.run(["bash", "-c", _script(scratch)], env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the grading steps took more than {TIMEOUT} s")
    assert done.returncode == 0, f"the grading steps failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}"
    root = scratch / "pimem-grading"
    print(f"\nINSTRUCTOR.md's grading steps: {time.monotonic() - t:.1f} s")
    return {"root": root, "release": root / "release" / ASSIGNMENT, "emu": scratch / "emu", "env": env,
            "timings": {"all steps": time.monotonic() - t}}


@pytest.fixture
def gradebook(course, monkeypatch):
    from nbgrader.api import Gradebook

    monkeypatch.setenv("PATH", _path())
    with Gradebook(f"sqlite:///{course['root'] / 'gradebook.db'}") as gb:
        yield gb


def test_there_are_labs_to_grade():
    assert len(NOTEBOOKS) >= 5


def test_generate_assignment_releases_no_solution(course):
    for inst in NOTEBOOKS:
        released = course["release"] / inst.name
        assert released.exists(), f"generate_assignment wrote no {released}"
        text = released.read_text(encoding="utf-8")
        assert BEGIN not in text and END not in text, inst.name
        nb = nbformat.read(released, as_version=4)
        src = "\n".join(c.source for c in nb.cells)
        for cell in nbformat.read(inst, as_version=4).cells:
            if BEGIN not in cell.source:
                continue
            solution = cell.source.split(BEGIN, 1)[1].split(END, 1)[0]
            for line in solution.strip().splitlines():
                if len(line.strip()) > 12:
                    assert line.strip() not in src, (inst.name, line)
        assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code"), inst.name


def test_the_instructor_notebooks_get_full_marks(gradebook):
    gb = gradebook
    for p in NOTEBOOKS:
        nb = gb.find_submission_notebook(p.stem, ASSIGNMENT, "instructor")
        assert nb.max_code_score > 0, p.name
        failed = [g.name for g in nb.grades if g.cell.cell_type == "code" and g.score != g.max_score]
        assert nb.code_score == nb.max_code_score, (p.name, f"cells not given full marks: {failed}")


def test_an_untouched_release_copy_gets_zero(gradebook):
    gb = gradebook
    for p in NOTEBOOKS:
        nb = gb.find_submission_notebook(p.stem, ASSIGNMENT, "alice")
        assert nb.max_code_score > 0, p.name
        scored = [g.name for g in nb.grades if g.score]
        assert nb.score == 0, (p.name, f"cells scored for an unanswered lab: {scored}")


def test_autograde_ran_the_labs_on_the_emulator(course):
    for student, passed in (("instructor", True), ("alice", False)):
        for p in NOTEBOOKS:
            path = course["root"] / "autograded" / student / ASSIGNMENT / p.name
            nb = nbformat.read(path, as_version=4)
            shown = json.dumps([c.get("outputs", []) for c in nb.cells])
            # The RUN cell's banner: recorded mode, mailbox on the emulator (never a Pi's firmware).
            assert "RECORDED" in shown and "emulator backend" in shown, (student, p.name)
            checks = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")
                      and c.cell_type == "code"]
            for c in checks:
                errors = [o for o in c.outputs if o.output_type == "error"]
                if passed:
                    assert not errors, (p.name, c.source, errors)
                else:   # the teaching message, then one CheckFailed line
                    assert [e.ename for e in errors] == ["CheckFailed"], (p.name, c.source)
                    assert "not answered yet" in json.dumps(c.outputs)
    # The mailbox parts (labs 1 and 4) went through the emulator's firmware state.
    assert course["emu"].is_dir() and any(course["emu"].iterdir())



def test_feedback_and_export_as_the_steps_say(course):
    root = course["root"]
    for student in ("alice", "instructor"):
        pages = sorted(p.name for p in (root / "feedback" / student / ASSIGNMENT).glob("*.html"))
        assert pages == sorted(f"{p.stem}.html" for p in NOTEBOOKS), (student, pages)
    rows = (root / "grades.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("assignment,") and {r.split(",")[3] for r in rows[1:]} == {"alice", "instructor"}
    config = (root / "nbgrader_config.py").read_text(encoding="utf-8")
    assert "course_id" in config and "Exchange.root" in config and (root / "exchange").is_dir()


def test_the_formgrader_runs_in_jupyterlab_started_in_the_grading_folder(course):
    # Step 7: `jupyter lab` in the grading folder; its Nbgrader > Formgrader lists the assignment.
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
           "--IdentityProvider.token=formgrader-test", *(["--allow-root"] if os.geteuid() == 0 else [])]
    proc = subprocess.Popen(cmd, cwd=course["root"], env=course["env"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline, answer = time.monotonic() + 90, None
        while time.monotonic() < deadline and answer is None:
            assert proc.poll() is None, proc.stdout.read()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/formgrader/api/assignments",
                                         headers={"Authorization": "token formgrader-test"})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    answer = json.loads(r.read())
            except OSError:
                time.sleep(0.5)
        assert answer is not None, "the formgrader did not answer within 90 s"
        (labs,) = [a for a in answer if a["name"] == ASSIGNMENT]
        assert labs["num_submissions"] == 2 and labs["max_written_score"] > 0, labs
    finally:
        os.killpg(proc.pid, 15)
        log = proc.communicate(timeout=30)[0]
    assert "exchange directory" not in log.lower() and "No nbgrader_config.py" not in log, log[-2000:]
