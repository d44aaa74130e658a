"""The lab notebooks and their self-checks.

Each notebook is executed once per session in recorded/emulator mode:
the instructor version (every solution must pass its check) and the
student copy (every check must say "not answered yet" and end with one
CheckFailed line, which is what nbgrader scores as zero; nothing else may fail).
"""
from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import pytest

from pimem.course import labs
from pimem.cli import main
from pimem.course.students import BEGIN, END, strip_solutions, student_notebook

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

LABS = Path(__file__).resolve().parents[2] / "notebooks" / "labs"
# The labs proper: notebooks with nbgrader cells (the folder also holds others, such as the class results).
NOTEBOOKS = [p for p in sorted(LABS.glob("*.ipynb")) if '"nbgrader"' in p.read_text(encoding="utf-8")]
GRADED = {p.name for p in NOTEBOOKS}


def _execute(path: Path, workdir: Path, allow_errors: bool = False) -> "nbformat.NotebookNode":
    nb = nbformat.read(path, as_version=4)
    env = {"PIMEM_MODE": "recorded", "PIMEM_BACKEND": "emulator",
           "PIMEM_EMULATOR_DIR": str(workdir / "emu"), "PIMEM_LEDGER_DIR": str(workdir / "ledger")}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=allow_errors,
                                resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def _check_outputs(nb) -> list[str]:
    """The text each `labs.check_...` cell displayed."""
    found = []
    for cell in nb.cells:
        if cell.cell_type == "code" and re.search(r"labs\.check_\w+\(", cell.source):
            texts = [o.get("data", {}).get("text/plain", "") + o.get("text", "") for o in cell.outputs]
            found.append("".join(texts))
    return found


@pytest.fixture(scope="session")
def executed(tmp_path_factory):
    out = {}
    for p in NOTEBOOKS:
        out[p.name] = _execute(p, tmp_path_factory.mktemp(p.stem))
    return out


@pytest.fixture(scope="session")
def student_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("students")
    assert main(["student-copies", "--out", str(d)]) == 0
    return d


@pytest.fixture(scope="session")
def executed_students(student_dir, tmp_path_factory):
    # A check that does not pass raises (so nbgrader scores it 0): the copies run with errors allowed.
    return {p.name: _execute(p, tmp_path_factory.mktemp("s-" + p.stem), allow_errors=True)
            for p in sorted(student_dir.glob("*.ipynb"))}


def test_there_are_five_labs_with_the_expected_shape():
    assert len(NOTEBOOKS) >= 5
    for p in NOTEBOOKS:
        nb = nbformat.read(p, as_version=4)
        first = nb.cells[0]
        assert first.cell_type == "markdown" and first.source.startswith("# ")
        for part in ("What you will learn", "What you need", "Time."):
            assert part in first.source, (p.name, part)
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and params[0].source.startswith('MODE = "auto"')
        assert any("resolve_mode(MODE)" in c.source for c in nb.cells)
        assert nb.cells[-1].source.startswith("## Summary")
        # Committed outputs cleared.
        for c in nb.cells:
            if c.cell_type == "code":
                assert c.outputs == [] and c.execution_count is None, p.name


def test_nbgrader_metadata_is_valid():
    keys = {"grade", "grade_id", "locked", "schema_version", "solution", "task"}
    for p in NOTEBOOKS:
        nb = nbformat.read(p, as_version=4)
        ids = []
        for c in nb.cells:
            m = c.metadata.get("nbgrader")
            has_markers = BEGIN in c.source
            if m is None:
                assert not has_markers, (p.name, c.source[:60])
                continue
            assert keys <= set(m), (p.name, m)
            assert m["schema_version"] == 3
            ids.append(m["grade_id"])
            if has_markers:
                assert m["solution"] and not m["locked"], (p.name, m)
            if m["grade"]:
                assert m.get("points", 0) > 0
            if m["solution"] and c.cell_type == "code":
                assert not m["grade"]
            if re.search(r"labs\.check_\w+\(", c.source):
                assert m["locked"] and not m["solution"], (p.name, c.source)
        assert len(ids) == len(set(ids)), p.name


def test_every_solution_passes_its_check(executed):
    for name, nb in executed.items():
        outs = _check_outputs(nb)
        assert outs or name not in GRADED, name
        for text in outs:
            assert ": passed" in text, (name, text)


def test_student_copies_have_no_solutions_and_no_outputs(student_dir):
    copies = sorted(student_dir.glob("*.ipynb"))
    assert [p.name for p in copies] == [p.name for p in NOTEBOOKS]
    for inst, stud in zip(NOTEBOOKS, copies):
        i_nb, s_nb = json.loads(inst.read_text()), json.loads(stud.read_text())
        assert len(i_nb["cells"]) == len(s_nb["cells"])
        for ic, sc in zip(i_nb["cells"], s_nb["cells"]):
            src = sc["source"] if isinstance(sc["source"], str) else "".join(sc["source"])
            assert "BEGIN SOLUTION" not in src and "END SOLUTION" not in src
            if sc["cell_type"] == "code":
                assert sc["outputs"] == [] and sc["execution_count"] is None
            isrc = ic["source"] if isinstance(ic["source"], str) else "".join(ic["source"])
            if BEGIN in isrc:
                solution = isrc.split(BEGIN, 1)[1].split(END, 1)[0]
                for line in solution.strip().splitlines():
                    if len(line.strip()) > 12:
                        assert line.strip() not in src, (stud.name, line)
                stub = "YOUR ANSWER HERE" if sc["cell_type"] == "markdown" else "raise NotImplementedError"
                assert stub in src
                # Code around the markers (the def line, its docstring) is kept.
                assert isrc.split(BEGIN, 1)[0].rstrip().splitlines()[-1:] == \
                    src.split(stub, 1)[0].rstrip().splitlines()[-1:] or not isrc.split(BEGIN, 1)[0].strip()


def _expressions(solution: str) -> list[str]:
    """The computing parts of a code solution: each line without `return`, where it holds an operator."""
    out = []
    for line in solution.strip().splitlines():
        expr = re.sub(r"^\s*return\s+", "", line).split("#")[0].strip()
        if len(expr) >= 8 and re.search(r"[&|^~*/+-]|>>|<<", expr):
            out.append(re.sub(r"\s+", "", expr))
    return out


def test_nothing_a_student_reads_gives_an_exercise_away(student_dir):
    # Not in the summary, not in the text around the exercises: a solution's computation, or a verdict.
    for inst in NOTEBOOKS:
        cells = json.loads(inst.read_text())["cells"]
        student = json.loads((student_dir / inst.name).read_text())["cells"]
        text = re.sub(r"\s+", "", "".join("".join(c["source"]) for c in student))
        for cell in cells:
            src = "".join(cell["source"])
            if BEGIN in src and cell["cell_type"] == "code":
                for expr in _expressions(src.split(BEGIN, 1)[1].split(END, 1)[0]):
                    assert expr not in text, (inst.name, expr)
    lab5 = "".join("".join(c["source"]) for c in json.loads(
        (student_dir / "lab5-when-zero-copy-hurts.ipynb").read_text())["cells"])
    assert not re.search(r"\((A, C|B)\)", lab5), "lab 5's verdicts must not be stated to students"
    lab1 = "".join("".join(c["source"]) for c in json.loads((student_dir / "lab1-addresses.ipynb").read_text())["cells"]
                   if "Summary" in "".join(c["source"]))
    assert "CONFIG_STRICT_DEVMEM" not in lab1, "lab 1's summary must not answer its multiple choice"


def test_student_copies_run_and_every_check_says_not_answered(executed_students):
    assert executed_students
    for name, nb in executed_students.items():
        outs = _check_outputs(nb)
        assert outs or name not in GRADED, name
        for text in outs:
            assert "not answered yet" in text, (name, text)
            assert "Traceback" not in text
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            errors = [o for o in cell.outputs if o.output_type == "error"]
            if re.search(r"labs\.check_\w+\(", cell.source):
                # The message first, then one short error line: no traceback into pimem.
                assert [o.output_type for o in cell.outputs][-1] == "error", (name, cell.source)
                assert len(errors) == 1 and errors[0].ename == "CheckFailed", (name, cell.source)
                assert len(errors[0].traceback) == 1 and "\n" not in errors[0].traceback[0].strip()
            else:
                assert not errors, (name, cell.source, errors)


def test_locked_and_check_cells_are_read_only_in_jupyterlab():
    """nbgrader's `locked` is ignored by plain JupyterLab; `editable`/`deletable` are what it honours."""
    for p in NOTEBOOKS:
        nb = nbformat.read(p, as_version=4)
        for c in nb.cells:
            m = c.metadata.get("nbgrader", {})
            is_check = c.cell_type == "code" and re.search(r"labs\.check_\w+\(", c.source)
            if m.get("locked") or is_check:
                assert c.metadata.get("editable") is False and c.metadata.get("deletable") is False, \
                    (p.name, c.source[:60])
            if m.get("solution"):   # as nbgrader's release copy: an answer cell must not be deleted
                assert c.metadata.get("deletable") is False and c.metadata.get("editable", True), p.name


def test_student_copies_keep_the_read_only_flags(student_dir):
    for inst in NOTEBOOKS:
        i_nb = nbformat.read(inst, as_version=4)
        s_nb = nbformat.read(student_dir / inst.name, as_version=4)
        for ic, sc in zip(i_nb.cells, s_nb.cells):
            for key in ("editable", "deletable"):
                assert sc.metadata.get(key) == ic.metadata.get(key), (inst.name, key)


def test_check_cells_are_graded_and_raise_when_not_passed():
    graded = 0
    for p in NOTEBOOKS:
        nb = nbformat.read(p, as_version=4)
        checks = [c for c in nb.cells if c.cell_type == "code" and re.search(r"labs\.check_\w+\(", c.source)]
        graded += bool(checks)
        for c in checks:
            m = c.metadata["nbgrader"]
            assert m["grade"] and m["points"] > 0 and m["locked"] and not m["solution"], (p.name, m)
            assert c.source.strip().endswith(".require()"), (p.name, c.source)
    assert graded >= 5


def test_student_copies_never_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "student"
    assert main(["student-copies", "--out", str(out)]) == 0
    first = capsys.readouterr().out
    assert f"Wrote {len(NOTEBOOKS)} student notebook(s)" in first and "skipped" not in first
    work = out / NOTEBOOKS[0].name
    work.write_text("a student's work", encoding="utf-8")
    (out / NOTEBOOKS[1].name).unlink()   # one copy missing: it is written again

    assert main(["student-copies", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert work.read_text(encoding="utf-8") == "a student's work"
    notes = [line for line in text.splitlines() if line.startswith("note: skipped")]
    assert len(notes) == len(NOTEBOOKS) - 1, text   # one line per skipped file
    assert any(str(work) in n and "--force" in n for n in notes), text
    summary = text.splitlines()[-1]
    assert summary.startswith("Wrote 1 student notebook(s)") and NOTEBOOKS[1].name in summary, summary
    assert f"skipped {len(NOTEBOOKS) - 1} that exist" in summary, summary

    assert main(["student-copies", "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["written"] == [] and len(data["skipped"]) == len(NOTEBOOKS)

    assert main(["student-copies", "--out", str(out), "--force"]) == 0
    text = capsys.readouterr().out
    assert "note: skipped" not in text and f"Wrote {len(NOTEBOOKS)} student notebook(s)" in text
    assert json.loads(work.read_text(encoding="utf-8"))["cells"]   # the stale file was replaced by a copy


def test_strip_solutions_keeps_code_around_the_markers():
    src = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n# after\n"
    assert strip_solutions(src) == "def f(x):\n    y = 1\n    raise NotImplementedError\n# after\n"
    nb = {"cells": [{"cell_type": "code", "source": src, "outputs": [{"text": "x"}], "execution_count": 3,
                     "metadata": {}}], "metadata": {}}
    out = student_notebook(nb)
    assert out["cells"][0]["outputs"] == [] and out["cells"][0]["execution_count"] is None
    assert nb["cells"][0]["outputs"]  # the instructor copy is untouched


def test_student_copies_refuse_to_overwrite_the_instructor_folder(capsys):
    assert main(["student-copies", "--out", str(LABS)]) == 2
    assert "overwrite" in capsys.readouterr().err


def test_gitignore_keeps_student_copies_out():
    assert "student/" in (LABS / ".gitignore").read_text().split()


# --- right answers pass, wrong but plausible ones are rejected with a reason ---------

def _right_message(tag, values, rw):
    return labs.reference_message(tag, values, rw)


def _good_parse(buf, tag, rw):
    size, status, got, vsize, code = struct.unpack_from("<5I", buf)
    if status != 0x80000000 or got != tag or not code >> 31 or (code & 0x7FFFFFFF) < 4 * rw:
        raise ValueError("bad answer")
    return struct.unpack_from(f"<{rw}I", buf, 20)


def _send(t, tag, values):
    buf = bytearray(labs.reference_message(tag, values, 1))
    t.property(buf)
    return _good_parse(bytes(buf), tag, 1)[0]


def _round_trip(t, size, flags):
    h = _send(t, 0x3000C, [size, 4096, flags])
    try:
        bus = _send(t, 0x3000D, [h])
        _send(t, 0x3000E, [h])
    finally:
        _send(t, 0x3000F, [h])
    return bus


def _leaky_round_trip(t, size, flags):
    h = _send(t, 0x3000C, [size, 4096, flags])
    bus = _send(t, 0x3000D, [h])   # if this fails, h is never released
    _send(t, 0x3000E, [h])
    _send(t, 0x3000F, [h])
    return bus


def _no_unlock(t, size, flags):
    h = _send(t, 0x3000C, [size, 4096, flags])
    try:
        return _send(t, 0x3000D, [h])
    finally:
        _send(t, 0x3000F, [h])


def _crossover_first_win(frame):
    med = frame.groupby(["benchmark", "phase", "size_bytes"]).seconds.median()
    zc, std = med["zerocopy", "write"], med["standard", "total"]
    return next((int(s) for s in sorted(zc.index) if zc[s] < std[s]), None)


def _crossover_vs_fill(frame):
    f = frame.copy()
    f = f[~((f.benchmark == "standard") & (f.phase == "total"))]
    f.loc[(f.benchmark == "standard") & (f.phase == "fill"), "phase"] = "total"
    return labs.crossover_size(f)


def _aligned(address, size):
    from pimem.memory.device import plan
    head, (start, length), tail = plan(address, size)
    return head + [(start + k, 8) for k in range(0, length, 8)] + tail


def _widest_first(address, size):   # ignores the address: an 8-byte store at an odd address
    return [(k, 8) for k in range(0, size - size % 8, 8)] + [(k, 1) for k in range(size - size % 8, size)]


def _one_short(address, size):
    return _aligned(address, size)[:-1]


RIGHT = [
    (labs.check_alias, lambda b: (b >> 28) & 0xC),
    (labs.check_aligned_pieces, _aligned),
    (labs.check_aligned_pieces, lambda a, n: [(k, 1) for k in range(n)]),   # bytes only: slow, but safe
    (labs.check_bus_to_phys, lambda b: b & ~0xC0000000),
    (labs.check_region, lambda p, a, g: ("peripherals" if 0x3F000000 <= p < 0x40000000 else "ARM" if p < a
                                         else "GPU" if p < a + g else "none")),
    (labs.check_wrong_conversion, lambda: "e"),
    (labs.check_peak_bandwidth, lambda mhz, bits: mhz * 1e6 * 2 * bits / 8),
    (labs.check_fill_time, lambda n, bw: n / bw),
    (labs.check_cache_level, lambda n, l1, l2: "L1" if n <= l1 else "L2" if n <= l2 else "DRAM"),
    (labs.check_efficiency, lambda n, s, peak: n / s / peak),
    (labs.check_crossover, labs.crossover_size),
    (labs.check_standard_in_cache, lambda c: c),
    (labs.check_build_message, _right_message),
    (labs.check_parse_answer, _good_parse),
    (labs.check_round_trip, _round_trip),
    (labs.check_transfer_ms, lambda n, r: n / (r * 2**20) * 1e3),
    (labs.check_choose, labs.choose_buffer),
    (labs.check_workloads, lambda: {k: labs.choose_buffer(*w, labs.qmkl_rates()) for k, w in labs.WORKLOADS.items()}),
]

WRONG = [
    # (check, wrong answer, words the explanation must contain)
    (labs.check_alias, lambda b: b >> 30, "bits 31..30"),
    (labs.check_alias, lambda b: b >> 28, "bits 29..28"),
    (labs.check_bus_to_phys, lambda b: b - 0xC0000000, "only for the 0xC alias"),
    (labs.check_bus_to_phys, lambda b: b | 0xC0000000, "OR sets the alias bits"),
    (labs.check_bus_to_phys, lambda b: b & 0x0FFFFFFF, "bits 29..28"),
    (labs.check_bus_to_phys, lambda b: b ^ 0xC0000000, "XOR"),
    (labs.check_region, lambda p, a, g: ("peripherals" if 0x3F000000 <= p < 0x40000000 else "ARM" if p <= a
                                         else "GPU" if p < a + g else "none"), "boundary"),
    # The peripheral window (BCM2835 ARM Peripherals 1.2.3): the top 16 MiB is not GPU memory for the ARM.
    (labs.check_region, lambda p, a, g: "ARM" if p < a else "GPU" if p < a + g else "none", "0x3F000000"),
    (labs.check_region, lambda p, a, g: ("peripherals" if p >= 0x3F000000 else "ARM" if p < a
                                         else "GPU"), "peripheral window"),
    (labs.check_aligned_pieces, _widest_first, "alignment fault, SIGBUS"),
    (labs.check_aligned_pieces, _one_short, "bytes"),
    (labs.check_aligned_pieces, lambda a, n: [(0, n)], "1, 2, 4 or 8"),
    (labs.check_aligned_pieces, lambda a, n: _aligned(a, n) + [(n, 1)], "reaches outside"),
    (labs.check_wrong_conversion, lambda: "a", "768 MiB"),
    (labs.check_wrong_conversion, lambda: "b", "page aligned"),
    (labs.check_wrong_conversion, lambda: "c", "range_is_allowed"),   # right on some kernels only
    (labs.check_peak_bandwidth, lambda mhz, bits: mhz * 1e6 * bits / 8, "both clock edges"),
    (labs.check_peak_bandwidth, lambda mhz, bits: mhz * 1e6 * 2 * bits / 8 / 2**30, "GiB"),
    (labs.check_peak_bandwidth, lambda mhz, bits: mhz * 1e6 * 2 * bits, "bits"),
    (labs.check_fill_time, lambda n, bw: (n / 2**30) / (bw / 1e9), "GiB"),
    (labs.check_fill_time, lambda n, bw: n / bw * 1e3, "milliseconds"),
    (labs.check_cache_level, lambda n, l1, l2: "L2" if n <= l2 else "DRAM", "test L1 first"),
    (labs.check_efficiency, lambda n, s, peak: 100 * n / s / peak, "percentage"),
    (labs.check_efficiency, lambda n, s, peak: peak / (n / s), "upside down"),
    (labs.check_efficiency, lambda n, s, peak: n / s / 2**30 / (peak / 1e9), "GiB"),
    (labs.check_crossover, _crossover_first_win, "loses again"),
    (labs.check_crossover, _crossover_vs_fill, "fill alone"),
    (labs.check_standard_in_cache, lambda c: c // 2, "non-cached"),   # the old model: both buffers cached
    (labs.check_build_message, lambda t, v, rw: labs.reference_message(t, v, rw)[:-4], "end tag"),
    (labs.check_build_message,
     lambda t, v, rw: struct.pack(">%dI" % (len(labs.reference_message(t, v, rw)) // 4),
                                  *struct.unpack("<%dI" % (len(labs.reference_message(t, v, rw)) // 4),
                                                 labs.reference_message(t, v, rw))), "big-endian"),
    (labs.check_build_message, lambda t, v, rw: struct.pack("<%dQ" % (6 + max(len(v), rw)),
                                                            (6 + max(len(v), rw)) * 4, 0, t,
                                                            max(len(v), rw) * 4, 0, *v,
                                                            *[0] * (max(len(v), rw) - len(v)), 0), "'<I'"),
    (labs.check_build_message, lambda t, v, rw: struct.pack(f"<{6 + len(v)}I", (6 + len(v)) * 4, 0, t, len(v) * 4,
                                                            0, *v, 0), "answer"),
    (labs.check_parse_answer, lambda buf, tag, rw: struct.unpack_from(f"<{rw}I", buf, 20), "instead of raising"),
    (labs.check_parse_answer, lambda buf, tag, rw: struct.unpack_from(f"<{rw}I", buf, 16), "word 5"),
    (labs.check_round_trip, _leaky_round_trip, "finally"),
    (labs.check_round_trip, _no_unlock, "unlocking"),
    (labs.check_round_trip, lambda t, n, f: _round_trip(t, n, f) & ~0xC0000000, "physical address"),
    (labs.check_transfer_ms, lambda n, r: n / (r * 1e6) * 1e3, "2^20"),
    (labs.check_transfer_ms, lambda n, r: n / (r * 2**20), "seconds"),
    (labs.check_choose, lambda w, r, p, rates: "zero-copy", "reads of uncached memory"),
    (labs.check_choose, lambda w, r, p, rates: "copy", "zero-copy costs"),
    (labs.check_workloads, lambda: {"A": "zero-copy", "B": "zero-copy", "C": "zero-copy"}, "workload B"),
]


@pytest.mark.parametrize("check, answer", RIGHT, ids=[c.__name__ for c, _ in RIGHT])
def test_right_answers_pass_on_fresh_cases(check, answer):
    for seed in (1, 2, 3):
        kw = {} if check in (labs.check_wrong_conversion, labs.check_workloads) else {"seed": seed}
        r = check(answer, **kw)
        assert r.passed and r.answered, str(r)
        assert "passed" in r._repr_html_() and "passed" in r._repr_markdown_()


@pytest.mark.parametrize("check, answer, words", WRONG, ids=[f"{c.__name__}-{w}" for c, _, w in WRONG])
def test_wrong_answers_are_rejected_with_a_reason(check, answer, words):
    kw = {} if check in (labs.check_wrong_conversion, labs.check_workloads) else {"seed": 7}
    r = check(answer, **kw)
    assert not r.passed and r.answered
    assert words in str(r), str(r)


# Code that would hand over an answer: shifts, bit operations on a name, struct calls, unit arithmetic.
SOLUTION_CODE = [r"(>>|<<)\s*\d", r"[A-Za-z_)\]]\s*(&|\||\^)\s*~?\s*(0x|\d)", r"~\s*0x", r"struct\.\w+\(",
                 r"unpack_from", r"\*\s*2\s*\*", r"/\s*8\b", r"\*\s*1e\d", r"\*\*\s*20", r"\bdef\s", r"\breturn +\w+ *[-+*/&|]"]


def _kw(check):
    return {} if check in (labs.check_wrong_conversion, labs.check_workloads) else {"seed": 7}


@pytest.mark.parametrize("check, answer, words", WRONG, ids=[f"{c.__name__}-{w}" for c, _, w in WRONG])
def test_a_failing_check_shows_one_case_and_no_solution_code(check, answer, words):
    r = check(answer, **_kw(check))
    text = str(r)
    for label in ("input:", "you returned:", "expected:", "why:", "hint:"):
        assert sum(line.startswith(f"- {label}") for line in r.lines()) == 1, (label, text)
    assert r.case is not None and r.case.call in text
    assert "hint=2" in text, text   # it says that more help exists
    for level in (1, 2):
        shown = str(check(answer, **_kw(check), hint=level))
        for pattern in SOLUTION_CODE:
            assert not re.search(pattern, shown), (pattern, shown)


@pytest.mark.parametrize("check, answer, words", WRONG, ids=[f"{c.__name__}-{w}" for c, _, w in WRONG])
def test_hint_2_explains_more(check, answer, words):
    one, two = str(check(answer, **_kw(check))), str(check(answer, **_kw(check), hint=2))
    assert one != two and len(two) > len(one)
    assert words in two   # the same case, with more said about it
    assert "more:" in two and "hint=2" not in two


# Hints that were the code in words, or that named another option's verdict: never again.
GIVEAWAYS = [
    (labs.check_alias, lambda b: b >> 28, ["clear the lower two", "keep the upper two bits", "Which hex digit has"]),
    (labs.check_alias, lambda b: b & 0xC0000000, ["right shift by 4", "move the top hex digit down"]),
    (labs.check_bus_to_phys, lambda b: b & 0x0FFFFFFF, ["clear only bits 31..30", "Python's ~", "mask whose 1s"]),
    (labs.check_wrong_conversion, lambda: "c", ["depends on the kernel", "depend on how the kernel",
                                                "CONFIG_STRICT_DEVMEM"]),
]


@pytest.mark.parametrize("check, answer, phrases", GIVEAWAYS, ids=[f"{c.__name__}-{p[0]}" for c, _, p in GIVEAWAYS])
def test_hints_teach_the_method_not_the_line_of_code(check, answer, phrases):
    for level in (1, 2):
        shown = str(check(answer, **_kw(check), hint=level))
        assert not [p for p in phrases if p in shown], shown


def test_hint_must_be_1_or_2():
    with pytest.raises(ValueError, match="hint must be 1 or 2, got 3"):
        labs.check_alias(lambda b: 0, hint=3)


def test_require_shows_the_result_and_raises_one_line_unless_passed(capsys):
    ok = labs.check_alias(lambda b: (b >> 28) & 0xC)
    assert ok.require() is None and ": passed" in capsys.readouterr().out
    for bad in (labs.check_alias(lambda b: b >> 30), labs.check_alias(lambda b: (_ for _ in ()).throw(NotImplementedError()))):
        with pytest.raises(labs.CheckFailed) as e:
            bad.require()
        assert isinstance(e.value, AssertionError)
        assert bad.title in capsys.readouterr().out   # the teaching message is shown first
        assert "\n" not in str(e.value) and e.value._render_traceback_() == [f"CheckFailed: {e.value}"]


def test_an_exception_in_the_answer_is_one_case_with_a_way_to_see_it():
    r = labs.check_bus_to_phys(lambda b: b / 0, hint=2)
    assert "ZeroDivisionError" in str(r) and "Traceback" not in str(r)
    assert "in a new cell" in r.case.more and r.case.call in r.case.more


def test_checks_explain_exceptions_and_unanswered():
    def not_yet(*a):
        raise NotImplementedError

    def broken(b):
        return b / 0

    r = labs.check_bus_to_phys(not_yet)
    assert not r.passed and not r.answered and "not answered yet" in str(r)
    r = labs.check_bus_to_phys(broken)
    assert not r.passed and "ZeroDivisionError" in str(r) and "Traceback" not in str(r)
    r = labs.check_bus_to_phys(0x3AAA8000)
    assert not r.passed and "function" in str(r)
    assert "not answered yet" in labs.check_alias(None)._repr_html_()


def test_crossover_reference_on_the_host_recording():
    frame, where = labs.crossover_frame(type("R", (), {"live": False})())
    assert "NOT a Pi" in where
    # Zero-copy is one pass over cached memory there, standard two: it wins at the largest size.
    assert labs.crossover_size(frame) is not None


def test_live_helpers_measure_on_a_backend(backend):
    """The live branches, run on the emulator with small sizes (a Pi runs the same code)."""
    live = type("R", (), {"live": True, "backend": "emulator"})()
    f = labs.fill_measurements(live, backend, sizes=(64 * 1024,))
    assert list(f.size_bytes) == [64 * 1024] and (f.seconds > 0).all()
    frame, _ = labs.crossover_frame(live, backend, sizes=(4096, 65536))
    assert set(frame.benchmark) == {"standard", "zerocopy"}
    assert labs.crossover_size(frame) in (None, 4096, 65536)
    r = labs.read_rates(live, backend, size=65536)
    assert set(r.benchmark) == {"read-host", "read-direct", "read-coherent"}
    assert backend.transport.firmware.allocations() == []


def test_qmkl_rates_come_from_the_recording():
    r = labs.qmkl_rates()
    assert round(r["read_direct"], 1) == 33.6 and round(r["read_host"], 1) == 1083.1
    assert round(r["copy_from_gpu"], 1) == 190.3 and round(r["write_direct"], 1) == 1288.3


def test_ledgered_transport_lets_a_killed_lab4_kernel_be_reclaimed(tmp_path, monkeypatch):
    # A child sends lab 4's raw allocate and lock through the ledgered transport,
    # then is SIGKILLed; the next process must find and release the block.
    import signal
    import subprocess
    import sys

    env = dict(os.environ, PIMEM_BACKEND="emulator", PIMEM_EMULATOR_DIR=str(tmp_path / "emu"),
               PIMEM_LEDGER_DIR=str(tmp_path / "ledger"))
    child = subprocess.Popen([sys.executable, "-c", """
import struct, time
from pimem.course import labs
t = labs.ledgered_transport()
def send(tag, values):
    n = max(len(values), 1)
    words = [(6 + n) * 4, 0, tag, n * 4, 0, *values, *[0] * (n - len(values)), 0]
    buf = bytearray(struct.pack(f"<{len(words)}I", *words))
    t.property(buf)
    return struct.unpack_from("<I", buf, 20)[0]
handle = send(0x0003000C, [8192, 4096, 0x14])
send(0x0003000D, [handle])
print("held", flush=True)
time.sleep(60)
"""], env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    from pimem.firmware.emulator import FirmwareEmulator
    assert len(FirmwareEmulator(tmp_path / "emu").allocations()) == 1
    out = subprocess.run([sys.executable, "-m", "pimem", "cleanup"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert FirmwareEmulator(tmp_path / "emu").allocations() == []


def test_ledgered_transport_gives_back_what_it_cannot_record(tmp_path, monkeypatch):
    from pimem.memory.backend import open_backend
    from pimem.memory.ledger import PendingEntry
    from pimem.firmware.protocol import Tag, build_request

    backend = open_backend("emulator", ledger_dir=tmp_path / "ledger", emulator_dir=tmp_path / "emu")
    t = labs.ledgered_transport(backend)

    def full_disk(self, handle):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PendingEntry, "commit", full_disk)
    with pytest.raises(OSError, match="No space left"):
        t.property(build_request(Tag.ALLOCATE_MEMORY, (4096, 4096, 0x14)))
    assert backend.transport.firmware.allocations() == []


def test_ledgered_transport_forgets_what_is_released(tmp_path, monkeypatch):
    monkeypatch.setenv("PIMEM_BACKEND", "emulator")
    from pimem.memory.backend import open_backend
    backend = open_backend("emulator", ledger_dir=tmp_path / "ledger", emulator_dir=tmp_path / "emu")
    t = labs.ledgered_transport(backend)
    from pimem.firmware.protocol import build_request, parse_response, Tag
    def send(tag, *values):
        buf = build_request(tag, values)
        t.property(buf)
        return parse_response(buf, tag)[0]
    handle = send(Tag.ALLOCATE_MEMORY, 4096, 4096, 0x14)
    # Recorded from the allocate's answer on, not only once locked: a kill before
    # the lock leaks nothing either.
    assert [(e.handle, e.bus) for e in backend.ledger.entries()] == [(handle, None)]
    bus = send(Tag.LOCK_MEMORY, handle)
    assert [(e.handle, e.bus) for e in backend.ledger.entries()] == [(handle, bus)]
    send(Tag.BOARD_REVISION)   # not an allocate: leaves no pending entry behind
    assert not [p for p in backend.ledger.directory.iterdir() if p.name.endswith(".tmp")]
    send(Tag.UNLOCK_MEMORY, handle)
    send(Tag.RELEASE_MEMORY, handle)
    assert backend.ledger.entries() == []


def test_lab5_verdicts_hold_with_a_fair_host_write_rate():
    # qmkl timed its host memset with first page faults; tinymembench's Pi 3B memset is 1705.0 MB/s.
    fair = labs.fair_rates()
    assert fair["write_host"] == pytest.approx(1705.0e6 / 2**20)
    assert {k: v for k, v in fair.items() if k != "write_host"} == \
        {k: v for k, v in labs.qmkl_rates().items() if k != "write_host"}
    table = labs.verdicts({"qmkl": labs.qmkl_rates(), "fair": fair})
    assert table["qmkl"].to_dict() == table["fair"].to_dict() == {"A": "zero-copy", "B": "copy", "C": "zero-copy"}


def test_student_copies_never_follow_a_planted_symlink(tmp_path):
    from pimem.course.students import write_student_copies

    out = tmp_path / "student"
    out.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / NOTEBOOKS[0].name).symlink_to(victim)
    first = write_student_copies(out)
    assert (out / NOTEBOOKS[0].name) in first.skipped and victim.read_text() == "precious"
    write_student_copies(out, force=True)
    assert victim.read_text() == "precious", "--force replaced the symlink's target"
    assert not (out / NOTEBOOKS[0].name).is_symlink()
