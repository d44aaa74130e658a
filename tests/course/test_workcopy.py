"""The working copy: made once, never overwritten, updated without losing a student's changes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
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


def test_a_copy_that_was_only_run_and_saved_is_updated_in_place(course, tmp_path):
    # Run All + save changes outputs, execution counts and metadata, never what the student wrote.
    work = tmp_path / "work"
    workcopy.sync(work, reference=course)
    for rel in ("01-wall.ipynb", "labs/lab1.ipynb"):
        nb = json.loads((work / rel).read_text())
        for cell in nb["cells"]:
            cell["metadata"] = {"trusted": True}
            cell["id"] = "abc123"
            if cell["cell_type"] == "code":
                cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran it\n"}]
                cell["execution_count"] = 7
        nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        (work / rel).write_text(json.dumps(nb, indent=1))
    (course / "01-wall.ipynb").write_text(json.dumps(_nb("# 01 v2")))
    (course / "labs" / "lab1.ipynb").write_text(json.dumps(_nb("x = 2\n", code=True)))
    report = workcopy.sync(work, update=True, reference=course)
    assert sorted(report.replaced) == ["01-wall.ipynb", "labs/lab1.ipynb"] and report.beside == []
    assert "v2" in (work / "01-wall.ipynb").read_text()
    # A change to a cell's source is the student's work: kept, and the new version goes beside it.
    nb = json.loads((work / "01-wall.ipynb").read_text())
    nb["cells"][0]["source"] = "# 01 v2, with my notes"
    (work / "01-wall.ipynb").write_text(json.dumps(nb))
    (course / "01-wall.ipynb").write_text(json.dumps(_nb("# 01 v3")))
    report = workcopy.sync(work, update=True, reference=course)
    assert report.beside == [("01-wall.ipynb", "01-wall-updated.ipynb")]
    assert "with my notes" in (work / "01-wall.ipynb").read_text()


def test_the_teachers_notebook_is_not_copied_for_students(course, tmp_path):
    teachers = _nb("# class results") | {"metadata": {"pimem": {"audience": "teacher"}}}
    (course / "labs" / "class-results.ipynb").write_text(json.dumps(teachers))
    work = tmp_path / "work"
    report = workcopy.sync(work, reference=course)
    assert "labs/class-results.ipynb" not in report.created and not (work / "labs" / "class-results.ipynb").exists()
    teacher = workcopy.sync(tmp_path / "teacher", reference=course, teacher=True)
    assert "teacher/class-results.ipynb" in teacher.created
    assert "# class results" in (tmp_path / "teacher" / "teacher" / "class-results.ipynb").read_text()


def test_a_damaged_manifest_keeps_every_file_and_adopts_those_already_current(course, tmp_path):
    work = tmp_path / "work"
    workcopy.sync(work, reference=course)
    (work / workcopy.MANIFEST).write_text("{not json")
    (course / "01-wall.ipynb").write_text(json.dumps(_nb("# v2")))
    assert workcopy.sync(work, reference=course).stale == ["01-wall.ipynb"], "only the changed one is announced"
    report = workcopy.sync(work, update=True, reference=course)
    assert report.replaced == [] and report.beside == [("01-wall.ipynb", "01-wall-updated.ipynb")]
    assert "v2" not in (work / "01-wall.ipynb").read_text(), "without the manifest, no copy counts as untouched"
    assert workcopy.sync(work, update=True, reference=course).lines() == []


def test_a_change_in_how_lab_copies_are_made_reaches_untouched_copies(course, tmp_path, monkeypatch):
    work = tmp_path / "work"
    workcopy.sync(work, reference=course)
    made = workcopy._student
    monkeypatch.setattr(workcopy, "_student", lambda data: made(data).replace(b"NotImplementedError",
                                                                               b"NotImplementedError  # new"))
    report = workcopy.sync(work, update=True, reference=course)
    assert report.replaced == ["labs/lab1.ipynb"]
    assert "# new" in (work / "labs" / "lab1.ipynb").read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as sudo does")
def test_under_sudo_the_copy_belongs_to_the_user_who_ran_sudo(course, monkeypatch):
    import tempfile

    nobody = 65534
    base = Path(tempfile.mkdtemp(prefix="pimem-sudo-"))
    try:
        os.chmod(base, 0o755)
        ref = base / "notebooks"
        shutil.copytree(course, ref)
        for d in [ref, *[p for p in ref.rglob("*") if p.is_dir()]]:
            os.chmod(d, 0o755)
        work_parent = base / "checkout"
        work_parent.mkdir()
        os.chown(work_parent, nobody, nobody)
        monkeypatch.setenv("SUDO_UID", str(nobody))
        monkeypatch.setenv("SUDO_GID", str(nobody))
        report = workcopy.sync(work_parent / "work", reference=ref)
        assert report.created == ["00-start-here.ipynb", "01-wall.ipynb", "labs/lab1.ipynb"]
        owners = {p.stat().st_uid for p in (work_parent / "work").rglob("*")} | {(work_parent / "work").stat().st_uid}
        assert owners == {nobody}, "sudo pimem lab must leave the student's files theirs"
        # A root-owned copy (an older sudo run) is refused with what to do, not "remove your work".
        root_made = work_parent / "root-made"
        root_made.mkdir(mode=0o700)
        with pytest.raises(UnsafeDirectory, match="chown"):
            workcopy.sync(root_made, reference=ref)
    finally:
        shutil.rmtree(base)


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
    data = json.loads(Path(path).read_text())
    assert data["@jupyterlab/apputils-extension:themes"] == {"theme": "x"}
    assert data["@jupyterlab/apputils-extension:notification"] == {"doNotDisturbMode": True, "fetchNews": "false",
                                                                   "checkForUpdates": False}


def test_cli_update_notebooks(tmp_path, capsys):
    from pimem import cli

    assert cli.main(["update-notebooks", "--dir", str(tmp_path / "w")]) == 0
    assert "copied" in capsys.readouterr().out
    assert cli.main(["update-notebooks", "--dir", str(tmp_path / "w")]) == 0
    assert "up to date" in capsys.readouterr().out


def test_the_news_override_never_follows_a_planted_symlink(tmp_path):
    settings = tmp_path / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True)
    victim = tmp_path / "victim.json"
    (settings / "overrides.json").symlink_to(victim)
    assert lab.quiet_news(settings) is None
    assert not victim.exists(), "a symlink at overrides.json was followed"
    (settings / "overrides.json").unlink()
    (settings / "overrides.json").write_text('{"@jupyterlab/apputils-extension:notification": []}')
    assert lab.quiet_news(settings) is None, "a value of the wrong type is left alone, without a traceback"
    linked = tmp_path / "elsewhere"
    linked.mkdir()
    (tmp_path / "share" / "jupyter" / "lab" / "settings").rename(tmp_path / "old-settings")
    (tmp_path / "share" / "jupyter" / "lab" / "settings").symlink_to(linked)
    assert lab.quiet_news(tmp_path / "share" / "jupyter" / "lab" / "settings") is None
    assert list(linked.iterdir()) == []


def test_the_real_class_results_notebook_is_marked_for_teachers():
    from pimem.paths import LABS_DIR

    assert workcopy.is_for_teachers(LABS_DIR / "class-results.ipynb")
    assert not any(workcopy.is_for_teachers(p) for p in LABS_DIR.glob("lab*.ipynb"))
