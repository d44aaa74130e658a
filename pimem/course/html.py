"""Build the HTML edition: every committed notebook as a page that loads nothing from the internet.

    .venv/bin/pimem html                   # build/html/index.html, works offline

The notebooks are converted as committed (pimem.course.render executes them and
keeps their outputs up to date); labs are published as their student copies.
"""
from __future__ import annotations

import html  # the standard library's, for html.escape
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .. import safefs
from ..exc import NotebookError, UsageError
from .render import NOTEBOOKS_DIR, REPO, course_notebooks, lab_notebooks, read_notebook, require

if TYPE_CHECKING:  # nbformat is a test/render extra, not a runtime dependency
    from nbformat import NotebookNode

DEFAULT_HTML_DIR = REPO / "build" / "html"
VENDOR_CACHE = REPO / "build" / "vendor"
#: Pinned so the HTML edition is reproducible. html-manager 1.x matches ipywidgets 8.
HTML_MANAGER_SPEC = "@jupyter-widgets/html-manager@1.0.15"
MATHJAX_SPEC = "mathjax@3.2.2"


_TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{#- No CDN: require.js is only for the AMD widget bundle; we ship the standalone one. -#}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
{%- if resources.pimem_mathjax_url %}
<script>
(function () {
  // The widget manager typesets labels through MathJax 2's API (MathJax.Hub.Queue): give it one
  // that hands the work to MathJax 3, before and after MathJax 3 replaces this config object.
  var hub = {Queue: function (job) {
    var node = Array.isArray(job) ? job[2] : undefined;
    if (window.MathJax.typesetPromise) { window.MathJax.typesetPromise(node ? [node] : undefined).catch(function () {}); }
  }};
  window.MathJax = {
    tex: {inlineMath: [['$', '$'], ['\\(', '\\)']], displayMath: [['$$', '$$'], ['\\[', '\\]']],
          processEscapes: true, processEnvironments: true},
    options: {ignoreHtmlClass: 'jp-CodeCell|jp-OutputArea', processHtmlClass: 'jp-MarkdownCell'},
    startup: {ready: function () { window.MathJax.Hub = hub; window.MathJax.startup.defaultReady(); }},
    Hub: hub};
}());
</script>
<script src="{{ resources.pimem_mathjax_url }}"></script>
{%- endif %}
{%- endblock html_head_js_mathjax -%}
{% block jupyter_widgets %}
{%- if "widgets" in nb.metadata and resources.pimem_widgets_url %}
<script src="{{ resources.pimem_widgets_url }}" defer></script>
{%- endif %}
{% endblock jupyter_widgets %}
{%- block body_header -%}
{{ super() }}
<nav style="padding:8px 16px;font-family:sans-serif"><a href="{{ resources.pimem_index_url }}">&larr; all notebooks</a></nav>
{%- endblock body_header -%}
"""


def _npm_fetch(spec: str, cache: Path) -> Path | None:
    """The unpacked npm package ``spec`` (cached under ``cache``), or None without npm or network."""
    target = cache / re.sub(r"[^A-Za-z0-9.@-]+", "_", spec)
    if (target / "package.json").exists() and safefs.private_dir(cache, "npm cache folder", "remove it"):
        return target
    npm = shutil.which("npm")
    if npm is None:
        return None
    safefs.private_dir(cache, "npm cache folder", "remove it")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        try:
            out = subprocess.run([npm, "pack", spec, "--silent", "--pack-destination", tmp],
                                 capture_output=True, text=True, timeout=120, check=True)
        except (subprocess.SubprocessError, OSError):
            return None
        tgz = Path(tmp) / out.stdout.strip().splitlines()[-1]
        unpack = Path(tmp) / "unpacked"
        with tarfile.open(tgz) as tar:
            tar.extractall(unpack, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(unpack)
        shutil.rmtree(target, ignore_errors=True)
        (unpack / "package").rename(target)
    return target


def vendor_assets(out_dir: Path, cache: Path = VENDOR_CACHE) -> tuple[dict[str, str], list[str]]:
    """Copy the widget manager and MathJax into ``out_dir``/vendor; return their URLs and notes.

    They come from the npm registry (``npm pack``), once, then from ``cache``. Without npm or
    network the edition is still built: widget state stays embedded but the controls do not
    draw (each widget notebook shows a plain figure too), and TeX shows as source.
    """
    urls: dict[str, str] = {}
    notes: list[str] = []
    vendor = safefs.private_dir(out_dir / "vendor", "HTML edition folder", "give a folder of your own with --out")
    pkg = _npm_fetch(HTML_MANAGER_SPEC, cache)
    if pkg is not None:
        dest = vendor / "html-manager"
        shutil.rmtree(dest, ignore_errors=True)
        # embed.js is the standalone bundle (no require.js); its fonts load relative to it.
        shutil.copytree(pkg / "dist", dest, ignore=shutil.ignore_patterns("*.map", "*amd.js"))
        urls["widgets"] = "vendor/html-manager/embed.js"
    else:
        notes.append(f"could not fetch {HTML_MANAGER_SPEC} with npm: widgets are not drawn in the HTML edition")
    pkg = _npm_fetch(MATHJAX_SPEC, cache)
    if pkg is not None:
        dest = vendor / "mathjax"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        shutil.copy2(pkg / "es5" / "tex-chtml-full.js", dest)
        shutil.copytree(pkg / "es5" / "output" / "chtml" / "fonts" / "woff-v2", dest / "output/chtml/fonts/woff-v2")
        urls["mathjax"] = "vendor/mathjax/tex-chtml-full.js"
    else:
        notes.append(f"could not fetch {MATHJAX_SPEC} with npm: formulas show as TeX source")
    return urls, notes


def static_widgets(nb: "NotebookNode") -> "NotebookNode":
    """The notebook with its saved widgets made true for a page without a kernel.

    An explorer's mode line says what moving a control does in JupyterLab; in a static page
    nothing redraws, so the line says so instead, and every control is shown disabled.
    """
    from .widgets import MODE_LINE_CLASS, STATIC_MODE_LINE

    from .render import WIDGET_STATE

    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for model in state.values():
        s = model.get("state", {})
        if MODE_LINE_CLASS in s.get("_dom_classes", []):
            s["value"] = STATIC_MODE_LINE
        if "disabled" in s:
            s["disabled"] = True
    return nb


def notebook_title(nb: "NotebookNode", default: str) -> str:
    """The first markdown heading of the notebook, else ``default``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                m = re.match(r"#{1,6}\s+(.*\S)", line.strip())
                if m:
                    return re.sub(r"[*_`]", "", m.group(1))
    return default


def build_html(out_dir: Path | None = None, *, notebooks: Iterable[Path] | None = None,
               vendor_cache: Path = VENDOR_CACHE) -> Path:
    """Convert every committed notebook (as committed: no execution) into ``out_dir``; return index.html.

    Course notebooks become NN-slug.html, labs labs/NAME.html as their student copies (no
    solutions). The pages load nothing from the internet (see vendor_assets()).
    """
    require("nbconvert")
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    out_dir = Path(out_dir) if out_dir is not None else DEFAULT_HTML_DIR
    # This user's own folder, or refused: pages are written where nobody else can plant a link.
    safefs.private_dir(out_dir, "HTML edition folder", "give a folder of your own with --out")
    course = [Path(p) for p in notebooks] if notebooks is not None else course_notebooks() + lab_notebooks()
    if not course:
        raise UsageError(f"no notebooks in {NOTEBOOKS_DIR}: nothing to build")
    urls, notes = vendor_assets(out_dir, vendor_cache)
    exporter = HTMLExporter(extra_loaders=[DictLoader({"pimem_offline.html.j2": _TEMPLATE})],
                            template_file="pimem_offline.html.j2")
    entries = []
    for path in course:
        nb = read_notebook(path)
        is_lab = path.parent.name == "labs"
        kind = "course"
        if is_lab:
            from .students import is_graded, student_notebook

            kind = "lab" if is_graded(nb) else "teacher"
            if kind == "lab":
                # The edition is public: a lab is published as its student copy, never with its solutions.
                import nbformat

                nb = nbformat.from_dict(student_notebook(nb))
        nb = static_widgets(nb)
        rel = f"labs/{path.stem}.html" if is_lab else f"{path.stem}.html"
        up = "../" if is_lab else ""
        title = notebook_title(nb, path.stem)
        nb.metadata["title"] = title
        resources = {"metadata": {"name": path.stem, "path": str(path.parent)},
                     "pimem_widgets_url": up + urls["widgets"] if "widgets" in urls else "",
                     "pimem_mathjax_url": up + urls["mathjax"] if "mathjax" in urls else "",
                     "pimem_index_url": up + "index.html"}
        try:
            body, _ = exporter.from_notebook_node(nb, resources=resources)
        except Exception as e:
            raise NotebookError(f"{path.name}: nbconvert could not convert it ({type(e).__name__}: {e})") from None
        page = out_dir / rel
        safefs.private_dir(page.parent, "HTML edition folder", "give a folder of your own with --out")
        safefs.write_file(page, body, mode=0o644)
        entries.append((kind, rel, title))
    index = out_dir / "index.html"
    safefs.write_file(index, _index_page(entries, notes), mode=0o644)
    return index


def _index_page(entries: list[tuple[str, str, str]], notes: list[str]) -> str:
    def items(kind: str) -> str:
        return "\n".join(f'<li><a href="{html.escape(rel)}">{html.escape(title)}</a></li>'
                         for k, rel, title in entries if k == kind)

    labs, teacher = items("lab"), items("teacher")
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>pimem: the memory wall and zero-copy on the Raspberry Pi</title>
<style>body{{font-family:sans-serif;max-width:46em;margin:2em auto;padding:0 1em;line-height:1.5}}</style>
</head>
<body>
<h1>pimem: the memory wall and zero-copy on the Raspberry Pi</h1>
<p>The course notebooks with their outputs, rendered from recorded data and the firmware emulator.
Interactive controls are shown as they were rendered, greyed out: in these pages nothing can redraw a
figure. To move them, run the notebooks in JupyterLab (<code>bash scripts/start.sh</code>).</p>
<h2>Notebooks</h2>
<ol>
{items("course")}
</ol>
{f'<h2>Labs</h2>{chr(10)}<p>The exercises as students get them: the solutions are not published here.</p>{chr(10)}<ul>{chr(10)}{labs}{chr(10)}</ul>' if labs else ''}
{f'<h2>For teachers</h2>{chr(10)}<ul>{chr(10)}{teacher}{chr(10)}</ul>' if teacher else ''}
{''.join(f'<p><small>note: {html.escape(n)}</small></p>' for n in notes)}
</body>
</html>
"""
