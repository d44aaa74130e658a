"""The package's folders are its layers: a module imports only from its own layer or the layers below."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "pimem"
# Bottom to top. The foundation modules (exc, safefs, paths, units, _version) import nothing of pimem's layers.
ORDER = ["foundation", "firmware", "memory", "bench", "course", "top"]
FOUNDATION = {"exc", "safefs", "paths", "units", "_version"}
TOP = {"cli", "__main__", "__init__"}
# What a layer may never import, whatever the order says (the two promises).
FORBIDDEN = {"firmware": {"numpy", "pandas", "matplotlib", "ipywidgets"},
             "memory": {"pandas", "matplotlib", "ipywidgets"},
             "bench": {"matplotlib", "ipywidgets"}}


def layer_of(dotted: str) -> str:
    parts = dotted.split(".")
    if len(parts) >= 2 and parts[1] in ORDER:
        return parts[1]
    name = parts[1] if len(parts) >= 2 else "__init__"
    if name in FOUNDATION:
        return "foundation"
    if name in TOP:
        return "top"
    raise AssertionError(f"{dotted} is in no layer: put it in a layer's folder, or list it as foundation or top")


def imported_layer(mod: str) -> str:
    """The layer an import reaches: `pimem` itself and its public names (pimem.GpuBuffer) are the top."""
    parts = mod.split(".")
    if mod == "pimem" or (len(parts) == 2 and parts[1] not in ORDER and parts[1] not in FOUNDATION | TOP):
        return "top"
    return layer_of(mod)


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        is_init = parts[-1] == "__init__"
        out.append((".".join(parts[:-1] if is_init and len(parts) > 1 else parts), path))
    return out


def imports(dotted: str, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, including those inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = dotted.split(".") if path.name == "__init__.py" else dotted.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # from X import a, b: each of a, b may be a module of X, or a name X defines.
            if mod != "pimem" and node.module:
                found.append((node.lineno, mod))
            found += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return found


MODULES = modules()


def test_every_module_is_in_a_layer():
    for dotted, _ in MODULES:
        layer_of(dotted)
    assert {layer_of(d) for d, _ in MODULES} == set(ORDER)


def violations(dotted: str, path: Path) -> list[str]:
    mine = ORDER.index(layer_of(dotted))
    bad = []
    for line, mod in imports(dotted, path):
        top = mod.split(".")[0]
        if top == "pimem":
            theirs = ORDER.index(imported_layer(mod))
            if theirs > mine:
                bad.append(f"line {line}: {mod} ({ORDER[theirs]}) from a {ORDER[mine]} module")
        elif top in FORBIDDEN.get(layer_of(dotted), ()):
            bad.append(f"line {line}: {mod}: the {layer_of(dotted)} layer must not use {top}")
    return bad


@pytest.mark.parametrize("dotted, path", MODULES, ids=[d for d, _ in MODULES])
def test_imports_go_down_only(dotted, path):
    bad = violations(dotted, path)
    assert not bad, f"{path.relative_to(PKG.parent)} reaches up or out:\n" + "\n".join(bad)


def test_the_checker_sees_a_violation(tmp_path):
    """The check itself can fail: an upward import (even inside a function) and numpy in firmware are found."""
    fake = tmp_path / "pimem" / "firmware" / "fake.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("import numpy\nfrom ..exc import UsageError\nfrom .. import safefs\ndef f():\n"
                    "    from ..course import plots\n")
    bad = violations("pimem.firmware.fake", fake)
    assert len(bad) == 3 and any("course" in b for b in bad) and any("numpy" in b for b in bad), bad
    # The package's public face is the top layer: reaching it from below is reaching up.
    for line in ("from .. import GpuBuffer", "import pimem", "from pimem import cli", "from pimem import MemFlag"):
        fake.write_text(line + "\n")
        assert violations("pimem.firmware.fake", fake), f"{line!r} from firmware was not caught"


def test_each_layer_says_what_lives_there_and_what_it_may_import():
    for layer in ORDER[1:-1]:
        doc = ast.get_docstring(ast.parse((PKG / layer / "__init__.py").read_text()))
        assert doc and "import" in doc, f"pimem/{layer}/__init__.py must say what it may import"


def test_the_public_face_is_at_the_top():
    import pimem
    from pimem import Alias, BusAddress, GpuBuffer, MemFlag, PimemError, __version__, bus_to_phys, get_backend

    assert GpuBuffer.__module__ == "pimem.memory.buffer" and MemFlag.__module__ == "pimem.firmware.memflags"
    assert bus_to_phys(0xC0001000) == 0x1000 and isinstance(__version__, str)
    assert {"GpuBuffer", "MemFlag", "get_backend"} <= set(pimem.__all__)
    assert all(x is not None for x in (Alias, BusAddress, PimemError, get_backend))
