"""The working copy: made once, never overwritten, updated without losing a student's changes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pimem.course import lab, workcopy
from pimem.exc import UnsafeDirectory
from pimem.course.students import BEGIN


@pytest.fixture
def course(tmp_path):
    """A small reference course: two notebooks and a lab with a solution."""
    ref = tmp_path / "notebooks"
    (ref / "labs").mkdir(parents=True)
    for name in ("00-start-here.ipynb", "01-wall.ipynb"):
        (ref / name).write_text(json.dumps(_nb(f"# {name}")))
    (ref / "labs" / "lab1.ipynb").write_text(json.dumps(_nb(f"x = 1\n{BEGIN}\nanswer = 42\n### END SOLUTION\n",
                                                             code=True)))
    return ref


def _nb(source: str, code: bool = False) -> dict:
    cell = {"cell_type": "code" if code else "markdown", "metadata": {}, "source": source}
    if code:
        cell |= {"outputs": [{"output_type": "stream", "name": "stdout", "text": "42\n"}], "execution_count": 1}
    return {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_first_start_copies_the_course_privately_and_labs_without_solutions(course, tmp_path):
    work = tmp_path / "work"
    report = workcopy.sync(work, reference=course)
    assert report.created == ["00-start-here.ipynb", "01-wall.ipynb", "labs/lab1.ipynb"]
    assert (work / "01-wall.ipynb").read_bytes() == (course / "01-wall.ipynb").read_bytes()
    lab_text = (work / "labs" / "lab1.ipynb").read_text()
    assert "answer = 42" not in lab_text and BEGIN not in lab_text and "NotImplementedError" in lab_text
    assert '"42\\n"' not in lab_text, "a student copy carries no outputs"
    for d in (work, work / "labs"):
        assert (d.stat().st_mode & 0o777) == 0o700
    assert "copied 3 notebook(s)" in report.lines()[0]


def test_a_second_start_changes_nothing_and_keeps_the_students_work(course, tmp_path):
    work = tmp_path / "work"
    workcopy.sync(work, reference=course)
    (work / "01-wall.ipynb").write_text("my notes")
    before = _files(work)
    report = workcopy.sync(work, reference=course)
    assert _files(work) == before
    assert report.lines() == []


def test_an_upstream_change_is_announced_at_start_but_not_applied(course, tmp_path):
    work = tmp_path / "work"
    workcopy.sync(work, reference=course)
    (course / "01-wall.ipynb").write_text(json.dumps(_nb("# new version")))
    before = _files(work)
    report = workcopy.sync(work, reference=course)
    assert report.stale == ["01-wall.ipynb"] and _files(work) == before
    assert "pimem update-notebooks" in "\n".join(report.lines())


def test_update_replaces_untouched_copies_and_puts_new_versions_beside_changed_ones(course, tmp_path):
    work = tmp_path / "work"
    workcopy.sync(work, reference=course)
    (work / "00-start-here.ipynb").write_text("my own edits")
    for name in ("00-start-here.ipynb", "01-wall.ipynb"):
        (course / name).write_text(json.dumps(_nb(f"# {name} v2")))
    (course / "02-new.ipynb").write_text(json.dumps(_nb("# brand new")))
    report = workcopy.sync(work, update=True, reference=course)
    assert report.created == ["02-new.ipynb"]
    assert report.replaced == ["01-wall.ipynb"]
    assert report.beside == [("00-start-here.ipynb", "00-start-here-updated.ipynb")]
    assert (work / "00-start-here.ipynb").read_text() == "my own edits", "a student's change is never lost"
    assert "v2" in (work / "00-start-here-updated.ipynb").read_text()
    assert "v2" in (work / "01-wall.ipynb").read_text()
    # Once delivered, the same upstream version is not delivered again.
    again = workcopy.sync(work, update=True, reference=course)
    assert again.lines() == [] and not (work / "00-start-here-updated-2.ipynb").exists()
    # A later upstream change goes beside again, under a free name.
    (course / "00-start-here.ipynb").write_text(json.dumps(_nb("# v3")))
    (work / "00-start-here-updated.ipynb").write_text("edited the delivered one too")
    third = workcopy.sync(work, update=True, reference=course)
    assert third.beside == [("00-start-here.ipynb", "00-start-here-updated-2.ipynb")]
    assert (work / "00-start-here-updated.ipynb").read_text() == "edited the delivered one too"


def test_a_damaged_manifest_treats_every_file_as_the_students(course, tmp_path):
    work = tmp_path / "work"
    workcopy.sync(work, reference=course)
    (work / workcopy.MANIFEST).write_text("{not json")
    (course / "01-wall.ipynb").write_text(json.dumps(_nb("# v2")))
    report = workcopy.sync(work, update=True, reference=course)
    assert report.replaced == [] and len(report.beside) == 3
    assert "v2" not in (work / "01-wall.ipynb").read_text()


def test_a_planted_symlink_is_refused(course, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "work").symlink_to(elsewhere)
    with pytest.raises(UnsafeDirectory, match="symbolic link"):
        workcopy.sync(tmp_path / "work", reference=course)
    assert list(elsewhere.iterdir()) == []


def test_a_planted_symlink_at_a_notebook_is_not_followed(course, tmp_path):
    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (work / "01-wall.ipynb").symlink_to(victim)
    with pytest.raises(Exception, match="01-wall.ipynb"):
        workcopy.sync(work, update=True, reference=course)
    assert victim.read_text() == "precious"


def test_the_real_working_copy_is_git_ignored_and_separate_from_the_course():
    assert workcopy.WORKING_DIR != lab.notebooks_dir()
    if shutil.which("git") is None or not (workcopy.REPO / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "check-ignore", "-q", str(workcopy.WORKING_DIR / "00-start-here.ipynb")],
                         cwd=workcopy.REPO)
    assert out.returncode == 0, "my-notebooks/ must be git-ignored"


def test_lab_serves_the_working_copy_and_opens_on_start_here(monkeypatch):
    cmd = lab.lab_command(start=workcopy.start_notebook())
    assert f"--ServerApp.root_dir={workcopy.WORKING_DIR}" in cmd
    assert "--LabApp.default_url=/lab/tree/00-start-here.ipynb" in cmd


def test_the_news_prompt_is_answered_in_overrides_keeping_other_settings(tmp_path):
    settings = tmp_path / "settings"
    settings.mkdir()
    (settings / "overrides.json").write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "x"},
                                                         "@jupyterlab/apputils-extension:notification":
                                                             {"doNotDisturbMode": True}}))
    path = lab.quiet_news(settings)
    data = json.loads(path.read_text())
    assert data["@jupyterlab/apputils-extension:themes"] == {"theme": "x"}
    assert data["@jupyterlab/apputils-extension:notification"] == {"doNotDisturbMode": True, "fetchNews": "false",
                                                                   "checkForUpdates": False}


def test_cli_update_notebooks(tmp_path, capsys):
    from pimem import cli

    assert cli.main(["update-notebooks", "--dir", str(tmp_path / "w")]) == 0
    assert "copied" in capsys.readouterr().out
    assert cli.main(["update-notebooks", "--dir", str(tmp_path / "w")]) == 0
    assert "up to date" in capsys.readouterr().out
