"""Project files that must agree with each other: dependencies, the CI command, the README's commands."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: pip name -> the conda-forge names that provide it, where they may differ.
#: (matplotlib-base is matplotlib without a GUI toolkit, the usual choice on a server or a Pi.)
CONDA_NAMES: dict[str, set[str]] = {
    "matplotlib": {"matplotlib", "matplotlib-base"},
}


def _name(requirement: str) -> str:
    """'numpy>=1.24; python_version>"3"' -> 'numpy' (PEP 503 normalised)."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert name, f"cannot read a package name from {requirement!r}"
    return re.sub(r"[-_.]+", "-", name.group(1)).lower()


def pyproject_dependencies() -> set[str]:
    text = (REPO / "pyproject.toml").read_text()
    try:
        import tomllib
    except ImportError:  # Python 3.10: read the one list we need by hand
        block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M)
        assert block, "pyproject.toml has no [project] dependencies list"
        deps = re.findall(r"[\"']([^\"']+)[\"']", block.group(1))
    else:
        deps = tomllib.loads(text)["project"]["dependencies"]
    return {_name(d) for d in deps}


def environment_dependencies() -> set[str]:
    """conda packages under dependencies:, leaving out python, pip and the pip: sub-list."""
    names, inside, pip_indent = set(), False, None
    for line in (REPO / "environment.yml").read_text().splitlines():
        stripped = line.split("#", 1)[0].rstrip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if re.match(r"^dependencies\s*:", stripped):
            inside = True
            continue
        if inside and indent == 0:
            break
        if not inside:
            continue
        if pip_indent is not None and indent > pip_indent:
            continue   # a pip requirement (-e .)
        pip_indent = None
        item = stripped.strip()
        if item.startswith("- pip:"):
            pip_indent = indent
            continue
        if item.startswith("- "):
            names.add(_name(item[2:]))
    return names - {"python", "pip"}


def test_runtime_dependencies_agree():
    pip = pyproject_dependencies()
    conda = environment_dependencies()
    assert pip, "pyproject.toml lists no runtime dependencies"
    missing = sorted(p for p in pip if not CONDA_NAMES.get(p, {p}) & conda)
    provided = set().union(*(CONDA_NAMES.get(p, {p}) for p in pip))
    extra = sorted(conda - provided)
    assert not missing and not extra, (
        f"pyproject.toml and environment.yml list different runtime dependencies: "
        f"missing from environment.yml: {missing}; only in environment.yml: {extra}. Add or remove them in "
        "both (tests/test_project.py CONDA_NAMES maps pip names to conda-forge names where they differ)")


def _readme_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = re.search(r"^## The two commands\n(.*?)(?=^## )", readme, re.S | re.M)
    assert section, "README.md has no '## The two commands' section"
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", section.group(1), re.S)
    assert block, "README.md's 'The two commands' section has no code block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()
            if line.split("#", 1)[0].strip()]


def test_readme_gives_exactly_the_two_commands():
    assert _readme_commands() == ["bash scripts/start.sh", "bash scripts/test.sh"], _readme_commands()


def _ci_lines() -> list[str]:
    return [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_ci_runs_the_readme_test_command():
    test_command = _readme_commands()[1]
    ci = _ci_lines()
    assert any(line.endswith(test_command) for line in ci), (
        f".ci/run must run the README's test command {test_command!r}; it runs {ci}")
    for script in ("scripts/start.sh", "scripts/test.sh"):
        assert (REPO / script).exists(), f"README.md names {script}, which does not exist"


def test_ci_smoke_runs_the_readme_main_command():
    """.ci/run runs scripts/smoke-start.sh, which runs the README's main command itself."""
    main_command = _readme_commands()[0]
    assert any(line.endswith("bash scripts/smoke-start.sh") for line in _ci_lines()), (
        ".ci/run must smoke-run the README's main command (bash scripts/smoke-start.sh)")
    smoke = (REPO / "scripts" / "smoke-start.sh").read_text()
    assert re.search(rf"^\s*{re.escape(main_command)} ", smoke, re.M), (
        f"scripts/smoke-start.sh must run {main_command!r} itself")


def test_ci_runs_the_pi_os_stacks():
    ci = "\n".join(_ci_lines())
    for dist in ("bookworm", "trixie"):
        assert f"bash scripts/test-debian-stack.sh {dist}" in ci, f".ci/run must run the {dist} stack check"


def test_both_commands_make_the_same_venv():
    """start.sh and test.sh share setup-venv.sh, which always uses the system's site packages."""
    for script in ("start.sh", "test.sh"):
        text = (REPO / "scripts" / script).read_text()
        assert "scripts/setup-venv.sh" in text and "VENV_OPTIONS" not in text, script
    setup = (REPO / "scripts" / "setup-venv.sh").read_text()
    creates = re.findall(r"-m venv\b[^\n]*", setup)
    assert creates and all("--system-site-packages" in c for c in creates), creates
    assert ".[${EXTRAS:-}]" not in setup, "an empty EXTRAS must not become pip install -e '.[]' (pip rejects it)"


def test_titles_are_one_style_in_notebooks_readme_and_the_html_index():
    """'NN · Title' in every course notebook; README's table shows the same titles (the HTML index reads them)."""
    import json

    from pimem.course.render import course_notebooks

    readme = (REPO / "README.md").read_text()
    notebooks = course_notebooks()
    assert notebooks
    for path in notebooks:
        first = json.loads(path.read_text())["cells"][0]["source"]
        text = "".join(first) if isinstance(first, list) else first
        heading = next(line for line in text.splitlines() if line.startswith("# "))[2:].strip()
        assert re.fullmatch(rf"{path.name[:2]} · \S.*", heading), f"{path.name}: title {heading!r} is not 'NN · Title'"
        assert f"| {heading} | `{path.stem}` |" in readme, f"README's notebook table lacks {heading!r}"


def test_no_message_or_document_tells_root_to_run_python_m_pimem():
    # `python -m` imports from the current folder first: root running it where another user can write
    # runs their code. Every suggested command is the console script (paths.pimem_command).
    import ast
    import json

    found = []
    # A line that warns against it (or explains why) is fine.
    warning = re.compile(r"\b(never|not|Never|Not)\b.{0,40}python -m pimem|imports from the current folder")
    for path in sorted((REPO / "pimem").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "python -m pimem" in node.value:
                lines = [ln for ln in node.value.splitlines() if "python -m pimem" in ln]
                if not all(warning.search(ln) or "also `python -m pimem`" in ln or "so that `python -m pimem`" in ln
                           or "never ``python -m pimem``" in ln for ln in lines):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    docs = [REPO / "README.md", REPO / "notebooks" / "labs" / "INSTRUCTOR.md", REPO / "data" / "README.md",
            *sorted((REPO / "notebooks").rglob("*.ipynb")), *sorted((REPO / "scripts").glob("*.sh"))]
    for path in docs:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb":
            text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
        for line in text.splitlines():
            if "python -m pimem" in line and not warning.search(line):
                found.append(f"{path.relative_to(REPO)}: {line.strip()[:80]}")
    assert not found, "suggest the console script, .venv/bin/pimem:\n" + "\n".join(found)
