"""The sidecar's JSON Schema check, with each jsonschema error worded as a one-line message."""
from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

from .rules import label_problem, meta_rules, parse_time
from .schema import META_SCHEMA, SOURCE_KINDS
from .table import BOUNDS


def _import_jsonschema() -> Any:
    if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        # jsonschema imports rfc3987_syntax, where installed (Jupyter's jsonschema[format-nongpl]
        # brings it), for its "iri" format, and that builds a parser on import: a second here,
        # several on a Pi. The sidecar schema has no "iri"; so it is kept out while jsonschema
        # loads (only the iri formats then go unchecked in this process), and importable after.
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
        try:
            import jsonschema
        finally:
            if "rfc3987_syntax" in sys.modules and sys.modules["rfc3987_syntax"] is None:
                del sys.modules["rfc3987_syntax"]
    import jsonschema
    return jsonschema


def _is_time(value: Any) -> bool:
    if isinstance(value, str):
        parse_time(value)   # ValueError: not a time
    return True


@functools.lru_cache(maxsize=None)
def _meta_validator() -> Any:
    """The sidecar's validator, made once (jsonschema is imported on first use)."""
    jsonschema = _import_jsonschema()
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("date-time", raises=ValueError)(_is_time)   # as provenance() will read it
    return jsonschema.validators.validator_for(META_SCHEMA)(META_SCHEMA, format_checker=checker)


_JSON_TYPES = {"string": "text", "number": "a number", "integer": "a whole number", "boolean": "true or false",
               "object": "an object", "array": "a list", "null": "null"}
# Fields whose failures code words better than a generic message can.
_WORDING: dict[str, Callable[[Any], str | None]] = {"label": label_problem}


def _json(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _expected(path: list[str]) -> str:
    """'; expected ' and the description the schema gives the field at path ('' if none)."""
    node: Any = META_SCHEMA
    for key in path:
        node = node.get("properties", {}).get(key) if isinstance(node, dict) else None
    described = node.get("description") if isinstance(node, dict) else None
    return f"; expected {described}" if described else ""


def _worded(error: Any) -> list[tuple[str, str]]:
    """A jsonschema ValidationError as (field, what is wrong and what to do) pairs."""
    path = [str(p) for p in error.absolute_path]
    keyword, want, value = error.validator, error.validator_value, error.instance
    if keyword == "required":
        return [(".".join(path + [k]), "is missing" + _expected(path + [k]))
                for k in want if isinstance(value, dict) and k not in value]
    field = ".".join(path)
    if field in _WORDING:
        why = _WORDING[field](value)
        if why:
            return [(field, why)]
    custom = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
    if isinstance(custom, dict):
        custom = custom.get(keyword)
    if custom:
        return [(field, custom.replace("{value}", _json(value)) + ("" if ";" in custom else _expected(path)))]
    shown = _json(value)
    if keyword == "type":
        kinds = [want] if isinstance(want, str) else list(want)
        what = f"{shown} is not " + " or ".join(_JSON_TYPES.get(k, k) for k in kinds) + _expected(path)
    elif keyword == "const":
        what = f"{shown}; expected {_json(want)}"
    elif keyword == "enum":
        what = f"{shown}; expected one of: " + ", ".join(w if isinstance(w, str) else _json(w) for w in want)
    elif keyword == "format":
        what = f"{shown} is not a {want}" + _expected(path)
    elif keyword in BOUNDS:
        what = f"{shown} is not {BOUNDS[keyword][1]} {want}" + _expected(path)
    else:
        what = error.message + _expected(path)
    return [(field, what)]


def check_meta(meta: Any) -> list[str]:
    """Problems with the sidecar, each as "field 'a.b': what is wrong" (the first problem of each field)."""
    found: dict[str, str] = {}
    for error in _meta_validator().iter_errors(meta):
        for field, what in _worded(error):
            found.setdefault(field, what)
    for field, what in meta_rules(meta):
        found.setdefault(field, what)
    return [f"field '{f}': {w}" if f else f"the sidecar: {w}" for f, w in found.items()]


def kind_of(meta: Any) -> str | None:
    try:
        k = meta["source"]["kind"]
    except (TypeError, KeyError):
        return None
    return k if k in SOURCE_KINDS else None

