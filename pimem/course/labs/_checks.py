"""The check machinery every lab's module shares: results, hints, and how a student's code is run.

Every ``check_*`` takes the student's answer (usually a function), tries it
on FRESH cases (random addresses, other sizes, other clocks, made-up cost
figures), and returns a :class:`CheckResult`: ``.passed``, and, when it is
wrong, ONE failing case: the input, what came back, what was expected, why,
and a hint that points the way without giving the code. ``hint=2`` gives a
fuller explanation (still no code). A check never raises for a wrong
answer and never shows a bare traceback: an exception from the student's
code is caught and explained; ``NotImplementedError`` means "not answered
yet". The lab's check cells call ``.require()``, which shows the result and
then raises :class:`CheckFailed` (one line) unless it passed: that error is
what makes nbgrader's autograde score the cell zero.
"""
from __future__ import annotations

import html
import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

HINT_LEVELS = (1, 2)


# --- the result object ------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One failing case, as the student sees it. No field may hold solution code."""

    call: str   # the input, written as the call: "alias(0xBAAA8000)"
    got: str    # what came back
    want: str   # what was expected
    why: str    # one line of reasoning: why ``want`` is right here
    hint: str   # points the way (hint=1)
    more: str   # the fuller explanation (hint=2)

    def lines(self, hint: int, again: str) -> list[str]:
        out = [f"input: {self.call}", f"you returned: {self.got}", f"expected: {self.want}",
               f"why: {self.why}", f"hint: {self.hint}"]
        if hint >= 2:
            out.append(f"more: {self.more}")
        else:
            out.append(f"more help: run {again} in a new cell")
        return out


@dataclass
class CheckResult:
    """What a check found. ``passed`` is the verdict; the rest is for people."""

    title: str
    passed: bool
    answered: bool = True
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    case: Case | None = None   # the one failing case shown, when there is one

    @property
    def status(self) -> str:
        if not self.answered:
            return "not answered yet"
        return "passed" if self.passed else "not yet right"

    def lines(self) -> list[str]:
        return [f"{self.title}: {self.status}"] + [f"- {p}" for p in self.problems] + \
            [f"- {n}" for n in self.notes]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        mark = {"passed": "✅", "not yet right": "❌", "not answered yet": "✏️"}[self.status]
        body = "\n".join(f"- {p}" for p in self.problems + self.notes)
        return f"{mark} **{self.title}: {self.status}**\n\n{body}\n"

    def _repr_html_(self) -> str:
        colour = {"passed": "#2e7d32", "not yet right": "#c62828", "not answered yet": "#f9a825"}[self.status]
        items = "".join(f"<li>{html.escape(p)}</li>" for p in self.problems + self.notes)
        return (f'<div style="border-left:6px solid {colour};padding:6px 10px;margin:4px 0">'
                f"<b>{html.escape(self.title)}: {self.status}</b>"
                + (f"<ul style='margin:4px 0'>{items}</ul>" if items else "") + "</div>")

    def require(self) -> None:
        """Show this result; then, unless it passed, raise CheckFailed.

        A lab's check cell ends with ``.require()``: the student reads the
        message, and nbgrader's autograde sees an error and scores the cell 0.
        It returns None, so a passing cell shows a display (not an
        execute_result, which nbgrader would try to read as partial credit).
        """
        _show(self)
        if not self.passed:
            raise CheckFailed(self)


class CheckFailed(AssertionError):
    """A lab check that did not pass (from CheckResult.require), in one line.

    An AssertionError, as a failing nbgrader test is. In a notebook IPython
    prints what ``_render_traceback_`` returns instead of a traceback: the
    message shown just above it says what is wrong; a traceback into pimem
    would only bury it.
    """

    def __init__(self, result: CheckResult) -> None:
        self.result = result
        super().__init__(f"{result.title}: {result.status} (the message above says why)")

    def _render_traceback_(self) -> list[str]:
        return [f"CheckFailed: {self}"]


def _show(result: CheckResult) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is a dependency; plain Python still gets the text
        get_ipython = None  # type: ignore[assignment]
    if get_ipython is not None and get_ipython() is not None:
        display(result)
    else:
        print(result)


class NotAnswered(Exception):
    """The student's code still raises NotImplementedError: the check says "not answered yet"."""


class _Raised(Exception):
    def __init__(self, call: str, error: Exception) -> None:
        super().__init__(f"{call} raised {type(error).__name__}: {error}")
        self.call = call
        self.error = error


def call_student(fn: Callable[..., Any], what: str, *args: Any) -> Any:
    """Run the student's code; turn its exceptions into explanations."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise NotAnswered() from None
    except Exception as e:  # noqa: BLE001 - any error in student code is explained, never shown raw
        raise _Raised(what, e) from None


class Report:
    """Collects failing cases and keeps the one to show: the first of the best rank.

    Rank 2 is a recognised mistake (its explanation is specific), rank 1 a plain wrong value:
    the specific one teaches more, so it wins even when a plain one came first.
    """

    def __init__(self) -> None:
        self.case: Case | None = None
        self.rank = 0
        self.failed = 0
        self.notes: list[str] = []

    def fail(self, call: str, got: str, want: str, why: str, hint: str, more: str, *, rank: int = 1) -> None:
        self.failed += 1
        if rank > self.rank:
            self.case, self.rank = Case(call, got, want, why, hint, more), rank


def _check_hint(hint: Any) -> int:
    if isinstance(hint, bool) or hint not in HINT_LEVELS:
        raise ValueError(f"hint must be 1 or 2, got {hint!r}: hint=2 gives the fuller explanation")
    return int(hint)


def run_check(title: str, fn: Any, body: Callable[[Report], None], *, check: str, hint: int = 1,
              args: str = "", need_callable: bool = True) -> CheckResult:
    """A check's result: `body(report)` tries the student's `fn` on its cases, recording what fails.

    `check` names the check for the hint=2 line; an unanswered or raising `fn` is explained here.
    """
    hint = _check_hint(hint)
    name = getattr(fn, "__name__", "your answer")
    again = f"labs.{check}({function_name(fn)}{args}, hint=2)"
    if fn is None or fn is Ellipsis:
        return CheckResult(title, False, False, [f"{name}: not answered yet."])
    if need_callable and not callable(fn):
        return CheckResult(title, False, True, [f"expected a function, got {type(fn).__name__} {fn!r}: "
                                                 "define it with def and pass the function itself (no parentheses)"])
    rep = Report()
    try:
        body(rep)
    except NotAnswered:
        return CheckResult(title, False, False,
                           [f"{name}: not answered yet (it still raises NotImplementedError): replace that line "
                            "with your code, run the cell, then this check again."])
    except _Raised as e:
        case = Case(e.call, f"an exception, {type(e.error).__name__}: {e.error}", "a value (no exception)",
                    "your code stopped with an error on this input before it could answer",
                    "read the error's message: it usually names what went wrong",
                    f"run {e.call} in a new cell: the traceback it prints ends at the line that failed. "
                    "Work the input through that line by hand (or print the values just before it), "
                    "then run your function's cell and this check again.")
        return CheckResult(title, False, True, case.lines(hint, again), case=case)
    if rep.case is None:
        return CheckResult(title, True, True, [], rep.notes)
    return CheckResult(title, False, True, rep.case.lines(hint, again), case=rep.case)


def function_name(fn: Any) -> str:
    """How a message names the student's function."""
    return getattr(fn, "__name__", None) or "your function"


def is_int(x: Any) -> bool:
    """An int, and not a bool."""
    return isinstance(x, int) and not isinstance(x, bool)


def as_hex(x: Any, width: int = 0) -> str:
    """An int as hex (what an address is read as), anything else as its repr."""
    if is_int(x):
        return f"0x{x:0{width}X}" if x >= 0 else f"-0x{-x:X}"
    return repr(x)


def _close(a: float, b: float, rel: float) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0)


Slip = tuple[str, str, str]   # a recognised mistake: (why, hint, more)


def _ratio_hint(got: float, want: float, slips: dict[float, Slip]) -> Slip | None:
    """A known mistake recognised by the ratio of the answer to the right one."""
    if not want or not isinstance(got, (int, float)) or got == 0 or not math.isfinite(got):
        return None
    r = got / want
    for factor, slip in slips.items():
        if _close(r, factor, 2e-3):
            return slip
    return None


def _number_verdict(got: Any, want: float, slips: dict[float, Slip]) -> tuple[bool, Slip | None]:
    """(right, slip): a numeric answer within 0.1 % of want, else the likeliest slip, if one fits."""
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return False, None
    if _close(float(got), want, 1e-3):
        return True, None
    return False, _ratio_hint(got, want, slips)


def case_rng(seed: int | None) -> random.Random:
    """The random source of a check's fresh cases (a seed makes them repeatable, for tests)."""
    return random.Random(seed)


def attempt(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a student function in a notebook; None (and a note) if not answered or failing.

    So a lab runs top to bottom before every exercise is done.
    """
    try:
        return fn(*args)
    except NotImplementedError:
        print(f"({getattr(fn, '__name__', 'this')} is not answered yet: its result is left out below)")
    except Exception as e:  # noqa: BLE001 - show one line, not a traceback, in the middle of a lab
        print(f"({getattr(fn, '__name__', 'this')} raised {type(e).__name__}: {e}; run its check for help)")
    return None


def _numeric(got: Any) -> str:
    return f"{got:.6g}" if isinstance(got, float) else repr(got)


def number_case(rep: Report, fn: Callable[..., Any], call: str, args: Sequence[Any], want: float, expected: str,
                slips: dict[float, Slip], otherwise: Slip, *, upside_down: tuple[float, Slip] | None = None) -> None:
    """One numeric case: call ``fn(*args)``; a wrong answer is recorded with its likeliest slip, else ``otherwise``.

    ``upside_down`` is (the value an inverted formula gives, its explanation): checked when no slip fits.
    """
    got = call_student(fn, call, *args)
    right, slip = _number_verdict(got, want, slips)
    if right:
        return
    if slip is None and upside_down is not None and isinstance(got, (int, float)) and got \
            and _close(float(got), upside_down[0], 1e-3):
        slip = upside_down[1]
    if slip:
        rep.fail(call, _numeric(got), expected, *slip, rank=2)
    else:
        rep.fail(call, _numeric(got), expected, *otherwise)
