"""The static HTML edition: every page built, linked, with its figures, and working offline in Chromium."""
from __future__ import annotations

import functools
import os
import http.server
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pandas as pd
import pytest

nbformat = pytest.importorskip("nbformat", reason="the HTML tests need the test extras: pip install -e '.[test]'")
pytest.importorskip("nbconvert", reason="the HTML tests need the test extras: pip install -e '.[test]'")

from pimem.course import html, render# noqa: E402

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = ("no Chromium found (looked for /usr/bin/chromium and " + ", ".join(CHROMIUM_NAMES) + " on PATH); "
                "install it to test the pages in a real browser: sudo apt install chromium "
                "(bash scripts/test.sh does this when run as root)")


def _example_notebooks(folder: Path) -> list[Path]:
    """A rendered example with a formula, a figure and a widget: the machinery is tested whatever the
    course notebooks hold (their committed copies may not have been rendered yet)."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(cells=[
        new_markdown_cell("# Example notebook\n\nWhat you will learn: $x^2$"),
        new_code_cell("import matplotlib.pyplot as plt\nplt.plot([1, 2]);"),
        new_code_cell("import ipywidgets as w\nw.IntSlider(3)"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "99-example.ipynb"
    nbformat.write(nb, str(path))
    render.render([path], progress=False)
    return [path]


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> tuple[Path, list[Path]]:
    """(build folder, notebooks in it): built once for this module."""
    out = tmp_path_factory.mktemp("html")
    notebooks = render.course_notebooks() + render.lab_notebooks() + _example_notebooks(tmp_path_factory.mktemp("nb"))
    html.build_html(out, notebooks=notebooks)
    return out, notebooks


def _page(out: Path, nb_path: Path) -> Path:
    return out / ("labs/" if nb_path.parent.name == "labs" else "") / f"{nb_path.stem}.html"


def _pngs(nb_path: Path) -> int:
    """Figures the page shows as images (a widget's fallback image is not: the page shows the widget)."""
    nb = nbformat.read(str(nb_path), as_version=4)
    return sum("image/png" in o.get("data", {}) and render.WIDGET_VIEW not in o.get("data", {})
               for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def _has_widgets(nb_path: Path) -> bool:
    return bool(nbformat.read(str(nb_path), as_version=4).metadata.get("widgets"))


def test_index_links_every_page_with_its_title(edition):
    out, notebooks = edition
    index = (out / "index.html").read_text()
    for nb_path in notebooks:
        page = _page(out, nb_path)
        assert page.exists(), f"{page} was not built"
        rel = page.relative_to(out).as_posix()
        assert f'href="{rel}"' in index, f"index.html does not link {rel}"
        title = html.notebook_title(nbformat.read(str(nb_path), as_version=4), nb_path.stem)
        assert title.replace("&", "&amp;") in index or title in index, f"index.html lacks the title {title!r}"


class _Text(__import__("html.parser").parser.HTMLParser):
    """The text a reader sees on a page (code highlighting splits lines into spans)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _visible_text(page: Path) -> str:
    parser = _Text()
    parser.feed(page.read_text(encoding="utf-8"))
    return re.sub(r"\s+", " ", "".join(parser.parts))


def _solution_lines(nb_path: Path) -> list[str]:
    from pimem.course.students import BEGIN, END

    lines, inside = [], False
    for cell in nbformat.read(str(nb_path), as_version=4).cells:
        for line in cell.source.splitlines():
            if line.strip() == BEGIN:
                inside = True
            elif line.strip() == END:
                inside = False
            elif inside and len(line.strip()) >= 12:   # short lines ('return x') may occur in the text too
                lines.append(re.sub(r"\s+", " ", line.strip()))
    return lines


def test_no_solution_reaches_the_html_edition(edition):
    out, notebooks = edition
    labs = [p for p in notebooks if p.parent.name == "labs"]
    if not labs:
        pytest.skip("no labs yet")
    solutions = {p.name: _solution_lines(p) for p in labs}
    assert any(solutions.values()), "the labs have solution regions; this test must see them"
    pages = sorted(out.rglob("*.html"))
    for page in pages:
        raw = page.read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in raw and "END SOLUTION" not in raw, f"{page.name} carries solution markers"
        text = _visible_text(page)
        for lab_name, lines in solutions.items():
            leaked = [ln for ln in lines if ln in text]
            assert not leaked, f"{page.relative_to(out)} shows solution lines of {lab_name}: {leaked[:3]}"
    for p in labs:
        if solutions[p.name]:
            assert "NotImplementedError" in _visible_text(_page(out, p)), f"{p.name}: the student stub is missing"


def test_pages_contain_their_figures_and_nothing_from_the_internet(edition):
    out, notebooks = edition
    for nb_path in notebooks:
        text = _page(out, nb_path).read_text()
        images = len(re.findall(r'<img[^>]+src="data:image/png;base64,', text))
        assert images >= _pngs(nb_path), f"{nb_path.name}: {images} embedded PNGs, the notebook has {_pngs(nb_path)}"
        external = re.findall(r'<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)="(?:https?:)?//[^"]*"', text)
        assert not external, f"{nb_path.name}: the page loads from the internet: {external[:3]}"
        if _has_widgets(nb_path):
            assert "application/vnd.jupyter.widget-state+json" in text, f"{nb_path.name}: widget state not embedded"
            # An explorer's figure lives in its Output widget's state, which the page's widget manager draws.
            state = nbformat.read(str(nb_path), as_version=4).metadata["widgets"][render.WIDGET_STATE]["state"]
            outputs = [m for m in state.values() if m.get("model_name") == "OutputModel"]
            for m in outputs:
                assert any("image/png" in o.get("data", {}) for o in m["state"].get("outputs", [])), \
                    f"{nb_path.name}: an explorer's Output widget is committed without its figure"


# --- in a real browser -----------------------------------------------------------

def _chromium() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    for name in CHROMIUM_NAMES:
        if shutil.which(name):
            return shutil.which(name)
    return None


class _Handler(http.server.SimpleHTTPRequestHandler):
    failures: list[str]

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass

    def send_error(self, code, message=None, explain=None):
        self.failures.append(f"{code} {self.path}")
        super().send_error(code, message, explain)


@pytest.fixture(scope="module")
def server(edition):
    out, _ = edition
    failures: list[str] = []
    handler = type("Handler", (_Handler,), {"failures": failures})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(out)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", failures
    httpd.shutdown()
    httpd.server_close()


def _load(chromium: str, url: str, profile: Path) -> tuple[str, list[str]]:
    """The DOM after scripts ran, and the console messages (Chromium logs them to stderr)."""
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           # Offline, as on the test machine: any name but 127.0.0.1 fails to resolve.
           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
           "--virtual-time-budget=15000",   # let the widget manager and MathJax finish before the dump
           "--dump-dom", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"chromium failed on {url} (exit {proc.returncode}): {proc.stderr[-2000:]}"
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


def test_pages_work_offline_in_chromium(edition, server, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip(INSTALL_HINT)
    out, notebooks = edition
    base, failures = server
    index_dom, console = _load(chromium, f"{base}/index.html", tmp_path / "profile")
    assert index_dom.count("<a href=") >= len(notebooks)
    vendored = (out / "vendor" / "html-manager" / "embed.js").exists()
    problems = []
    for nb_path in notebooks:
        rel = _page(out, nb_path).relative_to(out).as_posix()
        dom, messages = _load(chromium, f"{base}/{rel}", tmp_path / "profile")
        images = len(re.findall(r'<img[^>]+src="data:image/png;base64,', dom))
        if images < _pngs(nb_path):
            problems.append(f"{rel}: {images} figures in the browser's DOM, the notebook has {_pngs(nb_path)}")
        problems += [f"{rel}: {m}" for m in messages if "Uncaught" in m]
        # Drawn controls are lm-Widget elements (the page's CSS alone also mentions "widget-").
        if nb_path.name == "99-example.ipynb" and (out / "vendor" / "mathjax").exists() and "<mjx-container" not in dom:
            problems.append(f"{rel}: MathJax did not typeset the example's $x^2$")
        if vendored and _has_widgets(nb_path) and not re.search(r'class="lm-Widget[^"]*\bwidget-', dom):
            problems.append(f"{rel}: the widget manager drew no control (no lm-Widget element in the DOM)")
    problems += [f"server: {f}" for f in failures if not f.endswith("/favicon.ico")]
    assert not problems, "\n".join(problems)


def test_a_static_page_says_its_controls_cannot_redraw():
    from pimem.course import widgets

    data = pd.concat([_rows("baseline", "fill"), _rows("zerocopy", "write")])
    ex = widgets.size_explorer(data, benchmarks=["baseline"], size=1 << 20, sizes=(4096, 1 << 20))
    state = {m.model_id: {"state": m.get_state()} for m in [ex.status, *_descendants(ex.box)]}
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {render.WIDGET_STATE: {"state": state}}
    html.static_widgets(nb)
    saved = nb.metadata["widgets"][render.WIDGET_STATE]["state"]
    assert saved[ex.status.model_id]["state"]["value"] == widgets.STATIC_MODE_LINE
    controls = [m for m in saved.values() if "disabled" in m["state"]]
    assert controls and all(m["state"]["disabled"] for m in controls)


def test_the_explorer_pages_say_what_is_true_without_a_kernel(edition):
    from pimem.course import widgets

    out, notebooks = edition
    for nb_path in notebooks:
        page = _page(out, nb_path).read_text(encoding="utf-8")
        if "pimem-mode" in page:
            assert "A saved page" in page and "moving a control picks" not in page, nb_path.name


def _rows(bench: str, phase: str):
    sizes = (4096, 1 << 20)
    return pd.DataFrame([{"recording": "r", "provenance": "host run: x", "benchmark": bench, "phase": phase,
                          "size_bytes": s, "statistic": "sample", "sample": 0, "seconds": s / 1e9, "bytes": s,
                          "bus_bytes": s, "gb_per_s": 1.0, "gib_per_s": 0.93, "reps": 1, "overhead_bound": False,
                          "verified": "pass", "kernel": "libc", "flags": "", "alias": ""} for s in sizes])


def _descendants(box):
    out = []
    for child in getattr(box, "children", ()):
        out += [child, *_descendants(child)]
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to play another user")
def test_root_never_writes_into_another_users_folder_or_through_a_link(tmp_path):
    # Another user owns the output folder and plants index.html as a link to a root-only file.
    from pimem.exc import UnsafeDirectory

    nobody = 65534
    secret = tmp_path / "secret"
    secret.write_text("root only")
    os.chmod(secret, 0o600)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "index.html").symlink_to(secret)
    os.chown(theirs, nobody, nobody)
    os.chmod(tmp_path, 0o755)
    with pytest.raises(UnsafeDirectory, match="belongs to uid 65534"):
        html.build_html(theirs, notebooks=render.course_notebooks()[:1])
    assert secret.read_text() == "root only" and (theirs / "index.html").is_symlink()
    # In a folder of our own, a link at a page's name is replaced, never written through.
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "index.html").symlink_to(secret)
    html.build_html(ours, notebooks=render.course_notebooks()[:1])
    assert secret.read_text() == "root only" and not (ours / "index.html").is_symlink()
