"""Student copies of the lab notebooks, without nbgrader.

What `nbgrader generate_assignment` does to solution cells, in a few lines:
the code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes
``raise NotImplementedError`` (at the marker's indentation; the code
before and after the markers stays), a markdown answer region becomes
"YOUR ANSWER HERE", and every output is cleared.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .. import safefs
from ..exc import UsageError
from ..paths import LABS_DIR

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
_CODE_STUB = "raise NotImplementedError"
_MARKDOWN_STUB = "YOUR ANSWER HERE"


def labs_dir() -> Path:
    return LABS_DIR


def default_out_dir() -> Path:
    return labs_dir() / "student"


def strip_solutions(source: str, markdown: bool = False) -> str:
    """The source with each solution region replaced by a stub."""
    out: list[str] = []
    inside = False
    for line in source.splitlines(keepends=True):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise UsageError(f"'{BEGIN}' inside another solution region")
            inside = True
            indent = re.match(r"\s*", line).group(0)  # type: ignore[union-attr]
            out.append(indent + (_MARKDOWN_STUB if markdown else _CODE_STUB) + "\n")
        elif stripped == END:
            if not inside:
                raise UsageError(f"'{END}' without a '{BEGIN}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise UsageError(f"a '{BEGIN}' is never closed by '{END}'")
    return "".join(out)


def student_notebook(nb: dict) -> dict:
    """A student copy of a notebook (as its JSON dict): solutions stubbed, outputs cleared."""
    nb = json.loads(json.dumps(nb))  # a deep copy; the instructor file is never touched
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        text = "".join(src) if isinstance(src, list) else src
        if BEGIN in text or END in text:
            text = strip_solutions(text, markdown=cell.get("cell_type") == "markdown")
        cell["source"] = text
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        # Old execution timings and widget state would leak what the instructor ran.
        cell.get("metadata", {}).pop("execution", None)
    nb.get("metadata", {}).pop("widgets", None)
    return nb


@dataclass(frozen=True)
class StudentCopies:
    """What write_student_copies did: the copies it wrote, and the existing files it left alone."""

    folder: Path
    written: list[Path]
    skipped: list[Path]


def is_graded(nb: dict) -> bool:
    """A lab proper: a notebook with nbgrader cells (notebooks/labs/ also holds others, e.g. the class results)."""
    return any("nbgrader" in c.get("metadata", {}) for c in nb.get("cells", []))


def graded_labs(directory: str | Path | None = None) -> list[Path]:
    """The labs proper in ``directory`` (default notebooks/labs/), by name."""
    folder = Path(directory) if directory else labs_dir()
    return [p for p in sorted(folder.glob("*.ipynb")) if is_graded(json.loads(p.read_text(encoding="utf-8")))]


def write_student_copies(out: str | Path | None = None, source: str | Path | None = None, *,
                         force: bool = False) -> StudentCopies:
    """Write a student copy of every lab notebook in ``source`` to ``out``.

    A copy that already exists is skipped (it may hold a student's work) unless ``force``.
    """
    src = Path(source) if source else labs_dir()
    dst = Path(out) if out else default_out_dir()
    if dst.resolve() == src.resolve():
        raise UsageError(f"--out {dst} is the instructor folder itself; the copies would overwrite the solutions")
    notebooks = graded_labs(src)
    if not notebooks:
        raise UsageError(f"no lab notebooks (*.ipynb with nbgrader cells) in {src}")
    safefs.private_dir(dst, "student copies folder", "choose another folder with --out")
    written, skipped = [], []
    for path in notebooks:
        text = json.dumps(student_notebook(json.loads(path.read_text(encoding="utf-8"))),
                          indent=1, ensure_ascii=False) + "\n"
        target = dst / path.name
        try:
            # Without --force the name must be free: a file made meanwhile is never overwritten.
            safefs.write_file(target, text, replace=force, mode=0o644)
        except FileExistsError:
            skipped.append(target)
            continue
        written.append(target)
    return StudentCopies(dst, written, skipped)


#: The assignment name the grading folder gives the labs (one assignment, one notebook per lab).
ASSIGNMENT = "labs"

_NBGRADER_CONFIG = """\
# nbgrader's settings for grading pimem's labs (made by `pimem grading-folder`; see notebooks/labs/INSTRUCTOR.md).
import os

c = get_config()  # noqa: F821 - nbgrader's config loader provides it
here = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.root = here
c.CourseDirectory.course_id = "pimem-labs"
c.ExecutePreprocessor.timeout = 300          # seconds per cell: the labs' checks run sweeps on the emulator
c.Exchange.root = os.path.join(here, "exchange")   # release/collect on this computer, without a system folder
"""


@dataclass(frozen=True)
class GradingFolder:
    """What make_grading_folder made: the folder, its config, and the instructor labs in source/labs/."""

    folder: Path
    config: Path
    labs: list[Path]


def make_grading_folder(folder: str | Path, source: str | Path | None = None) -> GradingFolder:
    """A folder to grade the labs with nbgrader: nbgrader_config.py, source/labs/ (the instructor
    versions, with their solutions) and exchange/. The folder is new, or empty, and the user's own.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and (not folder.is_dir() or folder.is_symlink() or any(folder.iterdir())):
        raise UsageError(f"{folder} exists and is not an empty folder; give a new folder for grading "
                         "(it gets nbgrader's gradebook, the release and every submission)")
    notebooks = graded_labs(source)
    if not notebooks:
        raise UsageError(f"no lab notebooks (*.ipynb with nbgrader cells) in {source or labs_dir()}")
    hint = "give a new folder of your own"
    safefs.private_dir(folder, "grading folder", hint)
    labs = safefs.private_dir(safefs.private_dir(folder / "source", "grading folder", hint) / ASSIGNMENT,
                              "grading folder", hint)
    safefs.private_dir(folder / "exchange", "grading folder", hint)
    safefs.write_file(folder / "nbgrader_config.py", _NBGRADER_CONFIG.encode("utf-8"))
    copied = []
    for path in notebooks:
        safefs.write_file(labs / path.name, path.read_bytes())
        copied.append(labs / path.name)
    return GradingFolder(folder, folder / "nbgrader_config.py", copied)
