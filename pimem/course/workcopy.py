"""The working copy: the notebooks a student runs, apart from the committed course.

`notebooks/` is the rendered reference: committed with outputs and guarded by
the stale-output test. Running a notebook in JupyterLab rewrites it (autosave
is enough), so `pimem lab` never serves it. It serves `my-notebooks/` instead:
git-ignored, made from `notebooks/` on first start (labs as student copies,
without their solutions), never overwritten. `pimem update-notebooks` brings
in notebooks that changed upstream: an untouched copy is replaced, one the
student changed stays and the new version is put beside it.

A manifest (`.pimem-copies.json`) records, for each copy, the hash of what
pimem last delivered and of the file it wrote, which is how "changed
upstream" and "changed by the student" are told apart.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import safefs
from ..exc import UsageError
from .students import student_notebook
from ..paths import NOTEBOOKS_DIR, REPO, pimem_command

REFERENCE_DIR = NOTEBOOKS_DIR
WORKING_DIR = REPO / "my-notebooks"
MANIFEST = ".pimem-copies.json"
UPDATED_SUFFIX = "-updated"


@dataclass
class CopyReport:
    """What one pass over the working copy did, file by file (paths relative to it)."""

    directory: Path
    created: list[str] = field(default_factory=list)       # new copies
    replaced: list[str] = field(default_factory=list)      # untouched copies brought up to date
    beside: list[tuple[str, str]] = field(default_factory=list)  # (student's file, where the new version went)
    stale: list[str] = field(default_factory=list)         # changed upstream, not updated (lab start)

    def lines(self) -> list[str]:
        out = []
        if self.created:
            out.append(f"working copy {self.directory}: copied {len(self.created)} notebook(s): "
                       + ", ".join(self.created))
        if self.replaced:
            out.append(f"updated {len(self.replaced)} untouched notebook(s): " + ", ".join(self.replaced))
        for mine, new in self.beside:
            out.append(f"kept your {mine} (you changed it); the new version is {new}")
        if self.stale:
            out.append(f"{len(self.stale)} notebook(s) changed in the course since your copy was made: "
                       + ", ".join(self.stale) + f". Run '{pimem_command('update-notebooks')}' to get them "
                       "(your changes are kept)")
        return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _written(data: bytes) -> str:
    """A hash of what a person wrote in a notebook: each cell's type and source, nothing else.

    Running and saving a notebook changes its outputs, execution counts and metadata, not this,
    so a copy that was only run still counts as untouched. Bytes that are not a notebook hash as they are.
    """
    try:
        cells = json.loads(data.decode("utf-8"))["cells"]
        text = [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
                for c in cells]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return _sha(data)
    return "cells:" + _sha(json.dumps(text, ensure_ascii=False).encode("utf-8"))


def _untouched(entry: dict[str, str], have: bytes) -> bool:
    """The student wrote nothing in this copy since pimem made it (an older manifest kept a bytes hash)."""
    return entry.get("copy") in (_written(have), _sha(have))


def _as_is(data: bytes) -> bytes:
    return data


def _student(data: bytes) -> bytes:
    nb = student_notebook(json.loads(data.decode("utf-8")))
    return (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def is_for_teachers(path: Path) -> bool:
    """A notebook of labs/ meant for the teacher (e.g. class results): metadata pimem.audience = "teacher"."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(meta.get("pimem"), dict) and meta["pimem"].get("audience") == "teacher"


def sources(reference: Path | None = None, *, teacher: bool = False) -> list[tuple[str, Path, Callable[[bytes], bytes]]]:
    """(path in the working copy, source file, how it is made) for each notebook of the course.

    Course notebooks are copied as they are (with their rendered outputs, so
    they read well before they are run); labs become student copies, so the
    working copy never shows a lab's solution. The teacher's notebooks of labs/
    go only into a teacher's copy, under teacher/.
    """
    ref = reference or REFERENCE_DIR
    out: list[tuple[str, Path, Callable[[bytes], bytes]]] = []
    for path in sorted(ref.glob("[0-9][0-9]-*.ipynb")):
        out.append((path.name, path, _as_is))
    labs = ref / "labs"
    for path in sorted(labs.glob("*.ipynb")) if labs.is_dir() else []:
        if is_for_teachers(path):
            if teacher:
                out.append((f"teacher/{path.name}", path, _as_is))
        else:
            out.append((f"labs/{path.name}", path, _student))
    return out


def _read_manifest(directory: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(safefs.read_regular(directory / MANIFEST))
    except (OSError, ValueError):
        return {}   # none yet, or damaged: every existing file then counts as the student's
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def _file_bytes(path: Path) -> bytes | None:
    try:
        return safefs.read_regular(path, limit=256 << 20)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path} in the working copy ({e}); move it away (your work is in it), "
                         "then run the command again") from None


def _free_name(directory: Path, rel: str) -> str:
    stem, suffix = os.path.splitext(rel)
    candidate, n = f"{stem}{UPDATED_SUFFIX}{suffix}", 2
    while (directory / candidate).exists() or (directory / candidate).is_symlink():
        candidate, n = f"{stem}{UPDATED_SUFFIX}-{n}{suffix}", n + 1
    return candidate


def sync(directory: Path | None = None, *, update: bool = False, reference: Path | None = None,
         teacher: bool = False) -> CopyReport:
    """Make missing copies; with `update`, bring in notebooks that changed upstream.

    Nothing a student has is ever overwritten: a copy is replaced only when the student wrote
    nothing in it (its cells' sources are still those pimem delivered; running and saving is fine).
    `teacher` adds the teacher's notebooks (class results) under teacher/. Folders are the user's own, 0700; under sudo the work is done
    as the user who ran sudo, so the copy stays theirs (safefs.as_invoking_user).
    """
    directory = Path(directory) if directory is not None else WORKING_DIR
    ref = reference or REFERENCE_DIR
    done = safefs.as_invoking_user(lambda: asdict(_sync(directory, update, ref, teacher)))
    return CopyReport(Path(done["directory"]), done["created"], done["replaced"],
                      [tuple(b) for b in done["beside"]], done["stale"])


def _sync(directory: Path, update: bool, ref: Path, teacher: bool) -> CopyReport:
    if not sources(ref):
        raise UsageError(f"no course notebooks in {ref}; pimem lab needs a full checkout of the repository")
    hint = (f"if an earlier 'sudo pimem lab' made it, give it back to yourself (sudo chown -R $USER {directory}); "
            f"else move it away and run '{pimem_command('lab')}' again for a fresh working copy")
    safefs.private_dir(directory, "working copy", hint)
    # A teacher's copy stays one: its teacher/ folder is kept up to date as the rest is.
    items = sources(ref, teacher=teacher or (directory / "teacher").is_dir())
    manifest = _read_manifest(directory)
    report = CopyReport(directory)
    changed = False
    for rel, src, make in items:
        target = directory / rel
        if "/" in rel:
            safefs.private_dir(target.parent, "working copy folder", hint)
        new = make(src.read_bytes())
        new_sha = _sha(new)
        have = _file_bytes(target)
        entry = manifest.get(rel, {})
        # "delivered": what pimem last gave for this name; "copy": the bytes it wrote there. A new
        # course notebook, or a change in how copies are made (the lab stripping), both show as
        # a new delivery.
        if have is None:
            safefs.write_file(target, new)
            manifest[rel] = {"delivered": new_sha, "copy": _written(new)}
            report.created.append(rel)
        elif entry.get("delivered") == new_sha:
            continue
        elif _sha(have) == new_sha:   # already what would be delivered (e.g. the manifest was lost)
            manifest[rel] = {"delivered": new_sha, "copy": _written(new)}
        elif not update:
            report.stale.append(rel)
            continue
        elif _untouched(entry, have):   # run and saved, perhaps, but nothing written in it
            safefs.write_file(target, new)
            manifest[rel] = {"delivered": new_sha, "copy": _written(new)}
            report.replaced.append(rel)
        else:
            beside = _free_name(directory, rel)
            safefs.write_file(directory / beside, new)
            # The student's file stays theirs; the new version is recorded as delivered.
            manifest[rel] = {"delivered": new_sha, "copy": entry.get("copy", "")}
            manifest[beside] = {"delivered": new_sha, "copy": _written(new)}
            report.beside.append((rel, beside))
        changed = True
    if changed:
        safefs.write_file(directory / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    return report


def start_notebook() -> str:
    """The notebook JupyterLab opens on (relative to the working copy)."""
    names = [rel for rel, _, _ in sources()]
    return next((n for n in names if n.startswith("00-")), names[0] if names else "")


__all__ = ["CopyReport", "MANIFEST", "REFERENCE_DIR", "WORKING_DIR", "sources", "start_notebook", "sync"]
