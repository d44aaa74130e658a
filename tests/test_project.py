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


def test_ci_runs_the_readme_test_command():
    test_command = _readme_commands()[1]
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.strip().startswith("#")]
    assert test_command in ci, f".ci/run must run the README's test command {test_command!r}; it runs {ci}"
    for script in ("scripts/start.sh", "scripts/test.sh"):
        assert (REPO / script).exists(), f"README.md names {script}, which does not exist"
