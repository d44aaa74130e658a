"""The course notebooks: they run, their committed outputs are current, they follow the course's shape.

Each notebook is executed once per session (the `executed` fixture caches by path),
in the controlled environment of pimem.course.render (recorded data, fresh emulator).
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need the test extras: pip install -e '.[test]'")
pytest.importorskip("nbclient", reason="the notebook tests need the test extras: pip install -e '.[test]'")

from pimem.course import html, render# noqa: E402
from pimem.exc import PimemError  # noqa: E402

CELL_TIMEOUT = 120        # seconds per cell (nbclient)
FIGURE_NOTEBOOKS = ("04", "05", "06", "07")   # these show measurements: a committed figure is required
RENDER_HINT = "run: .venv/bin/python -m pimem render {name}  (then review and commit the outputs)"

COURSE = render.course_notebooks()
LABS = render.lab_notebooks()


def _params(paths: list[Path], what: str) -> list:
    if paths:
        return [pytest.param(p, id=p.name) for p in paths]
    return [pytest.param(None, id="none", marks=pytest.mark.skip(
        reason=f"no {what} yet in {render.NOTEBOOKS_DIR}; the machinery is tested on an example notebook"))]


_cache: dict[Path, tuple[object, float]] = {}


@pytest.fixture(scope="session")
def executed():
    """execute(path) -> (executed notebook or the NotebookError raised, seconds); once per path."""
    def execute(path: Path):
        if path not in _cache:
            start = time.perf_counter()
            try:
                result: object = render.execute_notebook(path, timeout=CELL_TIMEOUT)
            except PimemError as e:
                result = e
            _cache[path] = (result, time.perf_counter() - start)
        return _cache[path]
    return execute


def _fresh(executed, path: Path):
    result, seconds = executed(path)
    if isinstance(result, Exception):
        pytest.fail(str(result), pytrace=False)
    return result, seconds


# --- every course notebook ---------------------------------------------------------

@pytest.mark.parametrize("path", _params(COURSE, "course notebooks (NN-*.ipynb)"))
def test_runs_top_to_bottom(path, executed):
    _, seconds = _fresh(executed, path)
    # How long it took is reported, never asserted: a busy machine is slow, and that is no failure.
    print(f"{path.name}: executed in {seconds:.1f} s")


@pytest.mark.parametrize("path", _params(COURSE, "course notebooks (NN-*.ipynb)"))
def test_committed_outputs_are_current(path, executed):
    fresh, _ = _fresh(executed, path)
    problems = render.stale_cells(path, fresh)
    if problems:
        pytest.fail(f"{path.name}: the committed outputs differ from a fresh run; "
                    + RENDER_HINT.format(name=path.relative_to(render.REPO)) + "\n  " + "\n  ".join(problems),
                    pytrace=False)


MACHINE_SPECIFIC = re.compile(r"\b(x86_64|amd64|aarch64|arm64|armv[678]l?|i[3-6]86)\b"
                              r"|this process is (32|64)-bit|\bnot root\b|bytes (here|in this process)")


@pytest.mark.parametrize("path", _params(COURSE, "course notebooks (NN-*.ipynb)"))
def test_committed_outputs_do_not_depend_on_the_rendering_machine(path):
    """Outputs that name the machine (architecture, 32/64-bit, root) are tagged volatile,
    so the stale check passes on a Pi, as a non-root user and on 32-bit alike."""
    nb = nbformat.read(str(path), as_version=4)
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or render.VOLATILE_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        for _, text in render.text_outputs(nbformat.v4.new_notebook(cells=[cell])):
            if MACHINE_SPECIFIC.search(text):
                found.append(f"cell {i}: {MACHINE_SPECIFIC.search(text).group(0)!r}")
    assert not found, (f"{path.name}: outputs that depend on the machine that rendered them, in cells not tagged "
                       f"'{render.VOLATILE_TAG}': {found}")


@pytest.mark.parametrize("path", _params([p for p in COURSE if p.name[:2] in FIGURE_NOTEBOOKS],
                                         "notebooks 04-07"))
def test_committed_outputs_have_a_figure(path):
    nb = nbformat.read(str(path), as_version=4)
    pngs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert pngs, (f"{path.name} has no committed figure (image/png output); "
                  + RENDER_HINT.format(name=path.relative_to(render.REPO)))


@pytest.mark.parametrize("path", _params(COURSE, "course notebooks"))
def test_widgets_are_committed_as_state_and_an_image_only(path):
    """An explorer's output is its widget view and a plain image: no controls' repr text for readers without widgets."""
    nb = nbformat.read(str(path), as_version=4)
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if render.WIDGET_VIEW in data:
                assert set(data) == {render.WIDGET_VIEW, "image/png"}, f"{path.name} cell {i}: {sorted(data)}"
                assert nb.metadata.get("widgets", {}).get(render.WIDGET_STATE, {}).get("state"), \
                    f"{path.name}: a widget view is committed without the widget state"
            text = data.get("text/plain", "") + "".join(out.get("text", ""))
            assert "children=(" not in text, f"{path.name} cell {i} shows a widget's repr text"


LEARN = re.compile(r"what you will learn|you will learn|you'll learn|learning goals", re.I)
SUMMARY = re.compile(r"summary|in short|recap|what we (saw|learned|found)", re.I)
NEXT = re.compile(r"try next|next steps|what next|to try", re.I)


@pytest.mark.parametrize("path", _params(COURSE + LABS, "notebooks"))
def test_shape(path):
    """Title and goals first, one parameters cell, a summary and what to try next at the end."""
    nb = nbformat.read(str(path), as_version=4)
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), (
        f"{path.name}: the first cell must be markdown starting with a '# Title' line")
    assert LEARN.search(first.source), f"{path.name}: the first cell must say what you will learn"
    assert last.cell_type == "markdown", f"{path.name}: the last cell must be markdown (summary, what to try next)"
    assert SUMMARY.search(last.source), f"{path.name}: the last cell must give a summary; it begins {last.source[:80]!r}"
    if path.parent.name != "labs":   # a lab ends with its summary; the course points onward
        assert NEXT.search(last.source), (
            f"{path.name}: the last cell must say what to try next; it begins {last.source[:80]!r}")
    params = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, f"{path.name}: expected exactly one cell tagged 'parameters', found cells {params}"
    cell = nb.cells[params[0]]
    assert cell.cell_type == "code" and re.search(r"^MODE\s*=\s*[\"']auto[\"']", cell.source, re.M), (
        f"{path.name}: the parameters cell must be code that sets MODE = \"auto\"; it is {cell.source[:80]!r}")


@pytest.mark.parametrize("path", _params(LABS, "labs (notebooks/labs/*.ipynb)"))
def test_labs_are_committed_without_outputs(path):
    nb = nbformat.read(str(path), as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, (f"{path.name}: cells {dirty} have outputs; labs are committed cleared: "
                       f".venv/bin/jupyter nbconvert --clear-output --inplace {path.relative_to(render.REPO)}")


# --- the machinery, on example notebooks ----------------------------------------------

def _example(path: Path, *cells: str) -> Path:
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = new_code_cell('MODE = "auto"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell("# Example\n\nWhat you will learn: nothing"), params,
                *(new_code_cell(c) for c in cells), new_markdown_cell("Summary. What to try next: more.")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


EXAMPLE_CELLS = (
    "from pimem.course.mode import resolve_mode\nfrom pimem import GpuBuffer, MemFlag\nprint(resolve_mode(MODE).name)\n"
    "with GpuBuffer(1 << 20, MemFlag.DIRECT) as b:\n    print(hex(b.bus_address), b.handle)",
    "print('plain')",
    "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3]);",
    "import ipywidgets as w\nw.IntSlider(3)",
)


@pytest.fixture(scope="module")
def rendered_example(tmp_path_factory) -> Path:
    path = _example(tmp_path_factory.mktemp("nb") / "01-example.ipynb", *EXAMPLE_CELLS)
    assert render.render([path], progress=False) == [path.resolve()]
    return path


def test_render_is_recorded_deterministic_and_byte_stable(rendered_example):
    nb = nbformat.read(str(rendered_example), as_version=4)
    out = "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert out.splitlines()[0] == "recorded"
    first = rendered_example.read_bytes()
    assert b'"execution"' not in first and "widgets" in nb.metadata
    render.render([rendered_example], progress=False)
    assert rendered_example.read_bytes() == first, "re-rendering an unchanged notebook must give the same file"


def test_stale_cells_empty_then_detects_a_change(rendered_example, tmp_path):
    assert render.stale_cells(rendered_example) == []
    nb = nbformat.read(str(rendered_example), as_version=4)
    nb.cells[2].outputs[0]["text"] = nb.cells[2].outputs[0]["text"].replace("0x", "0x1", 1)
    edited = tmp_path / rendered_example.name
    nbformat.write(nb, str(edited))
    fresh = nbformat.read(str(rendered_example), as_version=4)   # same code, current outputs
    problems = render.stale_cells(edited, fresh)
    assert len(problems) == 1 and "cell 2" in problems[0] and "0x1" in problems[0], problems


def test_stale_cells_notices_a_missing_figure_and_unrendered_cells(rendered_example, tmp_path):
    fresh = nbformat.read(str(rendered_example), as_version=4)
    nb = nbformat.read(str(rendered_example), as_version=4)
    nb.cells[3].outputs = []
    for o in nb.cells[4].outputs:
        o.get("data", {}).pop("image/png", None)
    nbformat.write(nb, str(tmp_path / "x.ipynb"))
    problems = render.stale_cells(tmp_path / "x.ipynb", fresh)
    assert [p.split(",")[0].split(":")[1].strip() for p in problems] == ["cell 3", "cell 4"], problems


def test_failing_cell_names_notebook_cell_and_exception(tmp_path):
    path = _example(tmp_path / "02-broken.ipynb", "x = 1", "1 / 0  # boom", "print('never')")
    before = path.read_bytes()
    with pytest.raises(render.NotebookError) as e:
        render.execute_notebook(path, timeout=60)
    msg = str(e.value)
    assert "02-broken.ipynb" in msg and "cell 3" in msg and "ZeroDivisionError" in msg and "boom" in msg, msg
    assert path.read_bytes() == before, "execute_notebook must not touch the file"


def test_timeout_is_reported(tmp_path):
    path = _example(tmp_path / "03-slow.ipynb", "import time\ntime.sleep(30)")
    with pytest.raises(render.NotebookError, match=r"03-slow.ipynb: cell 2 .* longer than 2 s"):
        render.execute_notebook(path, timeout=2)


def test_render_stops_its_kernels_and_ends_quietly(tmp_path):
    # A kernel left running warned "Parent appears to have exited" once per notebook at exit.
    _example(tmp_path / "05-quiet.ipynb", "x = 1", "print(x)")
    done = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                           "from pimem.course.render import render; "
                           f"render([Path({str(tmp_path / '05-quiet.ipynb')!r})], progress=False)"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Parent appears to have exited" not in done.stderr and "WARNING" not in done.stderr, done.stderr


def test_render_refuses_labs(tmp_path):
    lab = _example(tmp_path / "labs" / "lab1.ipynb", "x = 1")
    with pytest.raises(PimemError, match="lab"):
        render.render([lab], progress=False)


@pytest.mark.parametrize("a, b", [
    ("<object object at 0x7f3a5c1e2b40>", "<object object at 0x7f00000000a0>"),
    ("<Figure at 0x55d1e2f3a4b5>", "<Figure at 0x56aa00112233>"),
    ("state in /tmp/pimem-render-abc123/firmware", "state in /tmp/pimem-render-zz9/firmware"),
    (f"data from {render.REPO}/data/x.csv", "data from <repo>/data/x.csv"),
    ("IPY_MODEL_" + "a" * 32, "IPY_MODEL_" + "b" * 32),
    ("line   \r\n", "line\n"),
])
def test_normalise_hides_what_legitimately_varies(a, b):
    assert render.normalise(a) == render.normalise(b)


@pytest.mark.parametrize("a, b", [
    ("bus 0xFAAA8000", "bus 0xBAAA8000"),          # bus addresses are data, not object addresses
    ("handle 1", "handle 2"),
    ("1.246 GiB/s", "1.338 GiB/s"),
    ("PASS", "FAIL"),
    ("0x7f", "0x7e"),
])
def test_normalise_keeps_real_differences(a, b):
    assert render.normalise(a) != render.normalise(b)


def test_volatile_cells_keep_only_their_markers():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    def nb(text: str):
        cell = new_code_cell("t()", outputs=[new_output("stream", name="stdout", text=text)])
        cell.metadata["tags"] = ["volatile"]
        return new_notebook(cells=[cell])

    assert render.compare_outputs(nb("took 1.2 us"), nb("took 3.4 us")) == []
    assert render.text_outputs(nb("x"))[0] == (0, "[stdout]")


def test_notebook_title():
    from nbformat.v4 import new_markdown_cell, new_notebook

    nb = new_notebook(cells=[new_markdown_cell("intro\n\n## The *memory* wall\ntext")])
    assert html.notebook_title(nb, "x") == "The memory wall"
    assert html.notebook_title(new_notebook(), "x") == "x"


def test_cli_render_names_the_problem(tmp_path, capsys):
    from pimem.cli import main

    lab = _example(tmp_path / "labs" / "lab9.ipynb", "x = 1")
    assert main(["render", str(lab)]) == 2
    assert "lab9.ipynb is a lab" in capsys.readouterr().err
    assert main(["render", str(tmp_path / "nope.ipynb")]) == 2
    assert "nope.ipynb: no such notebook" in capsys.readouterr().err


def test_kernel_is_this_python_in_the_controlled_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")   # would hide every inline figure if it leaked through
    monkeypatch.setenv("PIMEM_MODE", "live")
    path = _example(tmp_path / "04-env.ipynb", "import os, sys\nimport matplotlib\nprint(sys.executable)\n"
                    "for k in ('PIMEM_MODE', 'PIMEM_BACKEND', 'MPLBACKEND'): print(k, os.environ.get(k))\n"
                    "print(os.environ['PIMEM_EMULATOR_DIR'] != os.environ['PIMEM_LEDGER_DIR'])\n"
                    "print(os.getcwd())")
    nb = render.execute_notebook(path, timeout=60)
    lines = "".join(o.get("text", "") for o in nb.cells[2].outputs).splitlines()
    import sys

    assert lines == [sys.executable, "PIMEM_MODE recorded", "PIMEM_BACKEND emulator",
                     "MPLBACKEND module://matplotlib_inline.backend_inline",   # ipykernel sets it when unset
                     "True", str(tmp_path.resolve())], lines


@pytest.mark.parametrize("name", ["00-start-here.ipynb", "02-unified-memory-and-aliases.ipynb", "03-the-mailbox.ipynb"])
def test_tables_of_words_show_no_index_and_left_aligned_text(name):
    nb = nbformat.read(str(render.NOTEBOOKS_DIR / name), as_version=4)
    tables = ["".join(o["data"]["text/html"]) for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "<table" in "".join(o.get("data", {}).get("text/html", ""))]
    assert tables, f"{name} shows no table"
    for t in tables:
        assert "row_heading" not in t and "<th></th>" not in t, "a 0..n index column is shown"
        assert "text-align: left" in t, "text is right-aligned"


def test_show_keeps_the_frame_and_hides_only_the_index():
    import pandas as pd

    from pimem.course.tables import show

    frame = pd.DataFrame({"what": ["board", "revision"], "value": ["Pi 3B", "a02082"]}, index=[5, 9])
    t = show(frame)
    html_text = t._repr_html_()
    assert "row_heading" not in html_text and ">board<" in html_text and "text-align: left" in html_text
    assert html_text == show(frame)._repr_html_(), "the same table renders the same HTML (stable outputs)"
    assert repr(t).splitlines()[0].split() == ["what", "value"] and list(frame.index) == [5, 9]


def test_every_committed_cell_has_an_id():
    # nbformat 4.5 requires cell ids ("will become a hard error"); a hand-inserted cell is easy to leave without.
    import json

    from pimem.paths import REPO

    for path in sorted((REPO / "notebooks").rglob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        missing = [i for i, cell in enumerate(nb["cells"]) if not cell.get("id")]
        assert not missing, f"{path.relative_to(REPO)}: cells {missing} have no id"
