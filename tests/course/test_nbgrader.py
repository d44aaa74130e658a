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
import shutil
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


def _run(course: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "nbgrader", *args]
    try:
        done = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(cmd[2:])} took more than {TIMEOUT} s")
    assert done.returncode == 0, f"{' '.join(cmd[2:])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course directory after generate_assignment and autograde of two submissions."""
    root = tmp_path_factory.mktemp("course")
    scratch = tmp_path_factory.mktemp("nbgrader-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON", "PIMEM_"))}
    env.update(HOME=str(scratch), JUPYTER_CONFIG_DIR=str(scratch / "jupyter-config"),
               JUPYTER_DATA_DIR=str(scratch / "jupyter-data"), JUPYTER_RUNTIME_DIR=str(scratch / "jupyter-run"),
               IPYTHONDIR=str(scratch / "ipython"), PIMEM_MODE="recorded", PIMEM_BACKEND="emulator",
               PIMEM_EMULATOR_DIR=str(scratch / "emu"), PIMEM_LEDGER_DIR=str(scratch / "ledger"),
               PYTHONWARNINGS="ignore",   # a warning is stderr, and nbgrader scores a cell with stderr 0
               PATH=_path())
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        "c.CourseDirectory.course_id = 'pimem-labs'\n"
        "c.ExecutePreprocessor.timeout = 300\n", encoding="utf-8")
    source = root / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    for p in NOTEBOOKS:
        shutil.copy(p, source / p.name)
    timings = {}
    t = time.monotonic()
    _run(root, env, "generate_assignment", ASSIGNMENT, "--force")
    timings["generate_assignment"] = time.monotonic() - t
    release = root / "release" / ASSIGNMENT
    for student, folder in (("instructor", source), ("untouched", release)):
        dest = root / "submitted" / student / ASSIGNMENT
        dest.mkdir(parents=True)
        for p in NOTEBOOKS:
            shutil.copy(folder / p.name, dest / p.name)
        # nbgrader reads the submission time from this file; without it, it warns on every notebook.
        (dest / "timestamp.txt").write_text("2024-01-01 12:00:00.000000 UTC", encoding="utf-8")
    t = time.monotonic()
    _run(root, env, "autograde", ASSIGNMENT, "--force")
    timings["autograde"] = time.monotonic() - t
    print(f"\nnbgrader timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return {"root": root, "release": release, "emu": scratch / "emu", "timings": timings}


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
        nb = gb.find_submission_notebook(p.stem, ASSIGNMENT, "untouched")
        assert nb.max_code_score > 0, p.name
        scored = [g.name for g in nb.grades if g.score]
        assert nb.score == 0, (p.name, f"cells scored for an unanswered lab: {scored}")


def test_autograde_ran_the_labs_on_the_emulator(course):
    for student, passed in (("instructor", True), ("untouched", False)):
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


def test_nbgrader_is_quick_enough(course):
    # Reported by the fixture; here only a guard against a lab that starts measuring for minutes.
    assert sum(course["timings"].values()) < TIMEOUT
