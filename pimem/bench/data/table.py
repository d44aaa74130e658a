"""A small reader of Table Schema fields (cast a cell, check its constraints), and the table's header check."""
from __future__ import annotations

import math
import numbers
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .schema import REQUIRED, SCHEMA, STORED, TABLE_SCHEMA


# --- the Table Schema: one cell ---------------------------------------------
# A small reader of the Table Schema features the table schema uses: each field's
# type casts a cell (CSV text, or a frame's value), then its constraints are checked.
# A frame's missing value (None, NaN, pd.NA) counts as an empty cell.

def _missing(x: Any) -> bool:
    """None, NaN or pd.NA: what an empty cell becomes in a frame."""
    if x is None:
        return True
    if isinstance(x, (str, bytes)):
        return False
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):  # list-like cells
        return False


def _is_bool(x: Any) -> bool:
    # bool is an int subclass: True must not pass as the number 1
    return isinstance(x, (bool, np.bool_))


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
# XML Schema's decimal with an exponent; Table Schema's NaN and INF are left out: a measurement is finite.
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _cast_string(field: Mapping[str, Any]) -> Callable[[Any], Any]:
    return str


def _cast_integer(field: Mapping[str, Any]) -> Callable[[Any], Any]:
    def cast(x: Any) -> int:
        if isinstance(x, str):
            if not _INTEGER_TEXT.fullmatch(x):
                raise ValueError(f"{x!r} is not a whole number")
            return int(x)
        if _is_bool(x):
            raise ValueError(f"{x!r} is a boolean, not a whole number")
        try:
            f = float(x)   # a frame's int column holding NaN has become float
        except (TypeError, ValueError):
            raise ValueError(f"{x!r} is not a whole number") from None
        if not math.isfinite(f) or f != int(f):
            raise ValueError(f"{x!r} is not a whole number")
        return int(x) if isinstance(x, numbers.Integral) else int(f)
    return cast


def _cast_number(field: Mapping[str, Any]) -> Callable[[Any], Any]:
    def cast(x: Any) -> float:
        if isinstance(x, str):
            if not _NUMBER_TEXT.fullmatch(x):
                finite = x.lower().lstrip("+-") not in ("nan", "inf", "infinity")
                raise ValueError(f"{x!r} is not a {'' if finite else 'finite '}number")
            f = float(x)
        elif _is_bool(x):
            raise ValueError(f"{x!r} is a boolean, not a number")
        else:
            try:
                f = float(x)
            except (TypeError, ValueError):
                raise ValueError(f"{x!r} is not a number") from None
        if not math.isfinite(f):
            raise ValueError(f"{x!r} is not a finite number")
        return f
    return cast


def _cast_boolean(field: Mapping[str, Any]) -> Callable[[Any], Any]:
    true = field.get("trueValues", ["true", "True", "TRUE", "1"])
    false = field.get("falseValues", ["false", "False", "FALSE", "0"])
    words = {**{t: True for t in true}, **{f: False for f in false}}

    def cast(x: Any) -> bool:
        if _is_bool(x):
            return bool(x)
        if isinstance(x, str) and x in words:
            return words[x]
        raise ValueError(f"{x!r} is not {true[0]} or {false[0]}")
    return cast


_CASTS: dict[str, Callable[[Mapping[str, Any]], Callable[[Any], Any]]] = {
    "string": _cast_string, "integer": _cast_integer, "number": _cast_number, "boolean": _cast_boolean,
}
BOUNDS = {"minimum": (operator.ge, ">="), "exclusiveMinimum": (operator.gt, ">"),
           "maximum": (operator.le, "<="), "exclusiveMaximum": (operator.lt, "<")}
_CONSTRAINTS = {"required", "enum", "pattern", *BOUNDS}


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


_MEMO_SIZE = 1024


def field_reader(field: Mapping[str, Any], table: Mapping[str, Any]) -> Callable[[Any], Any]:
    """The cell reader of one Table Schema field: cell -> value, or ValueError saying what is wrong."""
    name, kind = field["name"], field.get("type", "string")
    constraints = field.get("constraints", {})
    unknown = sorted(set(constraints) - _CONSTRAINTS) + ([] if kind in _CASTS else [f"type {kind}"])
    if unknown:   # the spec: report a constraint one cannot evaluate rather than skip it
        raise NotImplementedError(f"table schema, field {name!r}: pimem.bench.data does not read {', '.join(unknown)}")
    missing = frozenset(field.get("missingValues", table.get("missingValues", [""])))
    required = constraints.get("required", False) or name in table.get("primaryKey", ())
    noun = _a(field.get("title", name))
    expected = f"; expected {field['description']}" if field.get("description") else ""
    cast = _CASTS[kind](field)
    checks: list[tuple[Callable[[Any], bool], Callable[[Any], str]]] = []
    if "enum" in constraints:
        allowed = constraints["enum"]
        listed = ", ".join(str(v) for v in allowed if v != "") + (" (or empty)" if "" in allowed else "")
        checks.append((frozenset(allowed).__contains__,
                       lambda v: f"{v!r} is not {noun}; expected one of: {listed}"))
    if "pattern" in constraints:   # XML Schema regular expressions match the whole value
        rx = re.compile(constraints["pattern"])
        checks.append((lambda v: rx.fullmatch(v) is not None, lambda v: f"{v!r} is not {noun}{expected}"))
    for key, (op, sign) in BOUNDS.items():
        if key in constraints:
            bound = constraints[key]
            what = "is negative" if key == "minimum" and bound == 0 else f"is not {sign} {bound}"
            checks.append((lambda v, op=op, bound=bound: op(v, bound), lambda v, what=what: f"{v!r} {what}{expected}"))
    memo: dict[str, Any] = {}   # cell text -> value: most cells of a recording repeat

    def value_of(cell: Any) -> Any:
        if not isinstance(cell, str) and _missing(cell):
            cell = ""   # a frame's None, NaN or pd.NA is an empty cell
        try:
            return None if isinstance(cell, str) and cell in missing else cast(cell)
        except ValueError as e:
            raise ValueError(f"{e}{expected}") from None

    def checked(value: Any) -> Any:
        if value is None:
            if required:
                raise ValueError("is empty" + expected)
            return None
        for ok, message in checks:
            if not ok(value):
                raise ValueError(message(value))
        return value

    def read(cell: Any) -> Any:
        if not isinstance(cell, str):
            return checked(value_of(cell))
        if cell in memo:
            return memo[cell]
        value = checked(value_of(cell.strip()))
        if len(memo) < _MEMO_SIZE:
            memo[cell] = value
        return value

    return read


#: Each stored column and its cell reader.
READERS: dict[str, Callable[[Any], Any]] = {f["name"]: field_reader(f, TABLE_SCHEMA) for f in TABLE_SCHEMA["fields"]}
PRIMARY_KEY: tuple[str, ...] = tuple(TABLE_SCHEMA.get("primaryKey", ()))


# --- the Table Schema: the header ---------------------------------------------

def check_header(header: list[str], where: str) -> list[str]:
    """Problems with the column names (fieldsMatch superset): every required column, no other, none twice.

    A column added to the schema later, and not required, may be missing from an older file.
    """
    expected = "expected the columns " + ",".join(STORED) + " (any order; those not required may be left out)"
    problems = [f"{where}, column '{c}': is missing; {expected}" for c in REQUIRED if c not in header]
    problems += [f"{where}, column '{c}': is not a column of {SCHEMA}; {expected}" for c in header if c not in STORED]
    problems += [f"{where}, column '{c}': appears more than once; {expected}"
                 for c in sorted({c for c in header if header.count(c) > 1})]
    return problems
