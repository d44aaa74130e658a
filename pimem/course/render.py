"""Run the course notebooks and check their committed outputs.

The committed notebooks carry their outputs, so the course can be read on
GitHub or in the HTML edition (pimem.course.html) without running anything. Those
outputs must never depend on the machine that rendered them, so every
execution here happens in one controlled environment: recorded data
(PIMEM_MODE=recorded), the firmware emulator with a fresh state directory
(so bus addresses and handles come out the same every time), a kernel from
this very Python, no progress bars, fixed hashing.

    .venv/bin/pimem render [NOTEBOOK...]   # execute and write outputs back

Lab notebooks (notebooks/labs/) keep their outputs cleared: they are run by
students, never rendered.

A code cell tagged ``volatile`` may print things that legitimately change
from run to run (a live timing on the host): its text is left out of the
stale check (its figures and its presence are still checked).
"""
from __future__ import annotations

import difflib
import json
import os
import re
import sys
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..paths import pimem_command
from .. import safefs
from ..exc import NotebookError, UsageError
from ..paths import LABS_DIR, NOTEBOOKS_DIR, REPO

if TYPE_CHECKING:  # nbformat is a test/render extra, not a runtime dependency
    from nbformat import NotebookNode

#: Course notebooks: notebooks/00-intro.ipynb .. notebooks/07-....ipynb
COURSE_GLOB = "[0-9][0-9]-*.ipynb"
KERNEL_NAME = "pimem-render"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
VOLATILE_TAG = "volatile"


# --- finding notebooks ------------------------------------------------------

def course_notebooks(directory: Path | None = None) -> list[Path]:
    """The course notebooks (NN-slug.ipynb), in order. Labs are not included."""
    return sorted((directory or NOTEBOOKS_DIR).glob(COURSE_GLOB))


def lab_notebooks(directory: Path | None = None) -> list[Path]:
    """The lab notebooks (notebooks/labs/*.ipynb), in order."""
    return sorted((directory or LABS_DIR).glob("*.ipynb"))


def require(module: str) -> Any:
    """The module of a rendering tool (nbformat, nbclient, nbconvert), or UsageError saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(f"{module} is not installed in this Python ({sys.executable}); rendering needs the "
                         "test extras: .venv/bin/python -m pip install -e '.[test]' (or bash scripts/test.sh)") from None


def read_notebook(path: Path) -> "NotebookNode":
    """A notebook file, or NotebookError naming it and what to do."""
    nbformat = require("nbformat")
    try:
        return nbformat.read(str(path), as_version=4)
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such notebook") from None
    except Exception as e:  # nbformat raises several types for a broken file
        raise NotebookError(f"{path}: not a readable notebook ({type(e).__name__}: {e}); "
                            "open it in JupyterLab or restore it with git") from None


# --- executing ----------------------------------------------------------------

def render_environment(scratch: Path) -> dict[str, str]:
    """The kernel's environment: the same on every machine (see the module docstring)."""
    env = dict(os.environ)
    for name in ("MPLBACKEND", "PIMEM_DATA_DIR", "PYTHONSTARTUP", "JUPYTER_CONFIG_DIR", "PIMEM_EMULATOR_GPU_MEM"):
        env.pop(name, None)   # MPLBACKEND=Agg would hide every inline figure
    env.update({
        "PIMEM_MODE": "recorded",
        "PIMEM_BACKEND": "emulator",
        "PIMEM_EMULATOR_DIR": str(scratch / "firmware"),
        # The course's data/ only: never the recordings a user keeps in my-data/.
        "PIMEM_USER_DATA_DIR": str(scratch / "no-user-data"),
        "PIMEM_LEDGER_DIR": str(scratch / "ledger"),
        "PYTHONHASHSEED": "0",
        "TQDM_DISABLE": "1",          # progress bars carry timings: never in committed outputs
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "JUPYTER_PLATFORM_DIRS": "1",
        "TZ": "UTC",
        "LC_ALL": "C.UTF-8",
        "COLUMNS": "100",
    })
    return env


def _kernel_manager(scratch: Path) -> Any:
    """A kernel that runs in this Python, whatever kernelspecs the user has installed."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    spec_dir = scratch / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (pimem render)", "language": "python"}))
    ksm = KernelSpecManager(kernel_dirs=[str(scratch / "kernels")])
    # The async manager, as nbclient uses by default: with a blocking one its cell timeout never fires.
    # IPC sockets in our private directory: no TCP port open to other users of this machine.
    return AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm, transport="ipc",
                              ip=str(scratch / "kernel"), connection_file=str(scratch / "kernel.json"))


def _stop(km: Any) -> None:
    """Stop the kernel now. nbclient stops only kernels it made itself; a kernel left running
    would notice this process exit and warn "Parent appears to have exited" on stderr."""
    from jupyter_core.utils import run_sync

    if run_sync(km.is_alive)():
        run_sync(km.shutdown_kernel)(now=True)


def _cell_label(nb: "NotebookNode", index: int) -> str:
    src = nb.cells[index].source.strip().splitlines() if 0 <= index < len(nb.cells) else []
    first = src[0] if src else ""
    return f"cell {index}" + (f" ({first[:60]!r})" if first else "")


def execute_notebook(path: Path, *, timeout: int = 180) -> "NotebookNode":
    """Execute a copy of the notebook at ``path`` top to bottom and return it (the file is untouched).

    Runs in the notebook's folder, in render_environment(). Raises NotebookError naming the
    notebook, the cell and the exception when a cell fails or takes longer than ``timeout`` s.
    """
    require("nbclient")
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(path).resolve()
    nb = read_notebook(path)
    kernelspec = nb.metadata.get("kernelspec")
    current = {"index": -1}
    with tempfile.TemporaryDirectory(prefix="pimem-render-") as tmp:
        scratch = Path(tmp)
        km = _kernel_manager(scratch)
        client = NotebookClient(
            nb, km=km, timeout=timeout, kernel_name=KERNEL_NAME,
            resources={"metadata": {"path": str(path.parent)}},
            store_widget_state=True,    # the HTML edition shows the controls
            record_timing=False,        # timestamps would change every render
            allow_errors=False,
            shutdown_kernel="immediate",   # nothing to save; a graceful stop only costs time
        )
        client.on_cell_execute = lambda cell, cell_index: current.__setitem__("index", cell_index)
        try:
            client.execute(env=render_environment(scratch), cwd=str(path.parent))
        except CellExecutionError as e:
            raise NotebookError(
                f"{path.name}: {_cell_label(nb, current['index'])} raised {e.ename}: {e.evalue}. "
                f"Open it in JupyterLab for the traceback; after fixing, run: {pimem_command('render ' + path.name)}"
            ) from None
        except (CellTimeoutError, TimeoutError):
            raise NotebookError(
                f"{path.name}: {_cell_label(nb, current['index'])} ran longer than {timeout} s; "
                "make it faster (smaller sizes in recorded mode) or raise the timeout") from None
        except DeadKernelError as e:
            raise NotebookError(f"{path.name}: the kernel died in {_cell_label(nb, current['index'])}: {e}") from None
        finally:
            _stop(km)
    if kernelspec is not None:   # keep the author's kernelspec, not our private one
        nb.metadata["kernelspec"] = kernelspec
    return clean_notebook(nb, name=path.stem)


def clean_notebook(nb: "NotebookNode", *, name: str = "") -> "NotebookNode":
    """Make an executed notebook byte-stable: no timings, widget ids derived from the notebook."""
    nbformat = require("nbformat")
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                out.get("metadata", {}).pop("execution", None)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    if not state:
        nb.metadata.pop("widgets", None)
        return nb
    # ipywidgets names each model with uuid4: replace them, in creation order, with ids
    # derived from the notebook's name so re-rendering gives the same file.
    text = nbformat.writes(nb)
    for i, old in enumerate(list(state)):
        text = text.replace(old, uuid.uuid5(uuid.NAMESPACE_URL, f"pimem:{name}:{i}").hex)
    return nbformat.reads(text, as_version=4)


BENCHMARK_TABLE_MARK = "<!-- written by pimem render from pimem/bench/catalog.py: edit the catalog, not this table -->"


def benchmark_table_text(readme: str) -> str:
    """data/README.md's text with its table of benchmarks written from the catalog."""
    from ..bench.catalog import markdown_table

    if BENCHMARK_TABLE_MARK not in readme:
        raise UsageError(f"data/README.md has no line {BENCHMARK_TABLE_MARK!r} to write the benchmarks under")
    head, tail = readme.split(BENCHMARK_TABLE_MARK + "\n", 1)
    rest = tail.split("\n\n", 1)[1] if "\n\n" in tail else ""
    return head + BENCHMARK_TABLE_MARK + "\n" + markdown_table() + "\n" + rest


def write_benchmark_table() -> bool:
    """Bring data/README.md's table of benchmarks up to date with the catalog; True if it changed."""
    from ..paths import DATA_DIR

    path = DATA_DIR / "README.md"
    old = path.read_text(encoding="utf-8")
    new = benchmark_table_text(old)
    if new != old:
        safefs.write_file(path, new, mode=0o644)
    return new != old


def render(paths: Sequence[Path] | None = None, *, timeout: int = 180, progress: bool = True) -> list[Path]:
    """Execute the course notebooks (default: all of them) and write each back with its outputs;
    data/README.md's table of benchmarks is written from the catalog too.

    Returns the notebooks rendered. A file is rewritten only when its content changed.
    """
    write_benchmark_table()
    nbformat = require("nbformat")
    require("nbclient")
    targets = [Path(p).resolve() for p in paths] if paths else course_notebooks()
    if not targets:
        raise UsageError(f"no course notebooks ({COURSE_GLOB}) in {NOTEBOOKS_DIR}")
    for p in targets:
        if not p.exists():
            raise UsageError(f"{p}: no such notebook")
        if p.parent.name == "labs":
            raise UsageError(f"{p.name} is a lab: labs are committed with outputs cleared, never rendered; "
                             "render course notebooks (notebooks/NN-*.ipynb) only")
    from tqdm import tqdm

    done = []
    bar = tqdm(targets, desc="render", unit="notebook", disable=not progress, file=sys.stderr)
    for p in bar:
        bar.set_postfix_str(p.name)
        nb = execute_notebook(p, timeout=timeout)
        text = nbformat.writes(nb)
        text += "" if text.endswith("\n") else "\n"   # as nbformat.write does
        if p.read_text(encoding="utf-8") != text:
            safefs.private_dir(p.parent, "notebook folder", "render notebooks in a checkout of your own")
            safefs.write_file(p, text, mode=0o644)
        done.append(p)
    return done


# --- the stale check ---------------------------------------------------------

_NORMALISE: list[tuple[re.Pattern[str], str]] = [
    # CPython object addresses: "<Foo object at 0x7f3a...>". Bus addresses (0xFAAA8000) are real data.
    (re.compile(r"\bat 0x[0-9a-fA-F]+"), "at 0x…"),
    (re.compile(r"(?<![0-9A-Za-z])0x(?:7f|55|56)[0-9a-fA-F]{10}\b"), "0x…"),
    # widget model ids (uuid4 hex), when a repr or an HTML view names them
    (re.compile(r"(IPY_MODEL_|model_id[\"']?\s*[:=]\s*[\"']?)[0-9a-f]{32}"), r"\1…"),
    # temporary directories (the emulator's state dir, tmp files)
    (re.compile(r"/(?:private/)?(?:tmp|var/folders)/[^\s'\"<>)]*"), "<tmp>"),
]


def normalise(text: str) -> str:
    """Text with what legitimately varies between runs replaced by placeholders.

    Only object addresses, widget model ids, temporary paths, the repository's location
    and trailing whitespace: anything else that differs is a real difference.
    """
    text = text.replace("\r\n", "\n").replace(str(REPO), "<repo>")
    tmp = tempfile.gettempdir()
    if tmp not in ("/tmp", "/"):
        text = text.replace(tmp, "<tmp>")
    for pattern, repl in _NORMALISE:
        text = pattern.sub(repl, text)
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def _output_text(out: dict) -> str:
    kind = out.get("output_type")
    if kind == "stream":
        return f"[{out.get('name', 'stream')}]\n{out.get('text', '')}"
    if kind == "error":
        return f"[error] {out.get('ename')}: {out.get('evalue')}"
    data = out.get("data", {})
    parts = []
    for mime in ("text/plain", "text/markdown", "text/html", "text/latex"):
        if mime in data:
            value = data[mime]
            parts.append(f"[{mime}]\n{''.join(value) if isinstance(value, list) else value}")
    for mime in sorted(data):   # a figure or a widget: its presence counts, not its bytes
        if mime.startswith("image/") or mime == WIDGET_VIEW:
            parts.append(f"[{mime}]")
    return "\n".join(parts)


def text_outputs(nb: "NotebookNode") -> list[tuple[int, str]]:
    """(cell index, normalised text of its outputs) for each code cell, in order.

    Streams (stdout and stderr merged per stream run), text/plain, text/markdown,
    text/html and text/latex, errors, and a marker for each figure and widget.
    Cells tagged ``volatile`` keep only their markers.
    """
    result = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        volatile = VOLATILE_TAG in cell.get("metadata", {}).get("tags", [])
        texts = []
        for out in cell.get("outputs", []):
            t = _output_text(out)
            if volatile:
                t = "\n".join(line for line in t.split("\n") if line.startswith("[") and line.endswith("]"))
            texts.append(t)
        result.append((i, normalise("\n".join(_merge_streams(texts)))))
    return result


def _merge_streams(texts: list[str]) -> list[str]:
    # The kernel may split one print() run into several stream outputs depending on timing.
    merged: list[str] = []
    for t in texts:
        if merged and t.startswith("[stdout]\n") and merged[-1].startswith("[stdout]\n"):
            merged[-1] += t[len("[stdout]\n"):]
        elif merged and t.startswith("[stderr]\n") and merged[-1].startswith("[stderr]\n"):
            merged[-1] += t[len("[stderr]\n"):]
        else:
            merged.append(t)
    return merged


def compare_outputs(committed: "NotebookNode", fresh: "NotebookNode") -> list[str]:
    """Human-readable differences between two executions' text outputs (empty: the same)."""
    old, new = text_outputs(committed), text_outputs(fresh)
    if [i for i, _ in old] != [i for i, _ in new]:
        return ["the code cells differ between the committed and the fresh notebook"]
    problems = []
    for (i, a), (_, b) in zip(old, new):
        if a == b:
            continue
        if not a and b:
            text = [line for line in b.splitlines() if not (line.startswith("[") and line.endswith("]"))]
            problems.append(f"cell {i}: no committed output; a fresh run gives {(text or b.splitlines())[0]!r}")
            continue
        al, bl = a.splitlines(), b.splitlines()
        for n, (x, y) in enumerate(zip(al + [""] * len(bl), bl + [""] * len(al))):
            if x != y:
                problems.append(f"cell {i}, output line {n + 1}: committed {x!r}, fresh run {y!r}")
                break
    return problems


def stale_cells(path: Path, fresh: "NotebookNode | None" = None, *, timeout: int = 180) -> list[str]:
    """Differences between the committed outputs of ``path`` and a fresh execution; empty when up to date.

    Pass ``fresh`` (an execute_notebook() result) to avoid executing again.
    """
    path = Path(path)
    committed = read_notebook(path)
    if fresh is None:
        fresh = execute_notebook(path, timeout=timeout)
    return [f"{path.name}: {p}" for p in compare_outputs(committed, fresh)]


def diff_text(a: str, b: str) -> str:
    """A unified diff of two normalised outputs (for debugging a stale notebook)."""
    return "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), "committed", "fresh", lineterm=""))
