"""Parsing a request body strictly: UTF-8, standard JSON, no duplicate keys, an object at the top."""
from __future__ import annotations

import json
from typing import Any

from api.problems import Invalid, Problem, json_type, pointer


class _DuplicateKeys:
    """An object_pairs_hook that remembers which objects repeated a key.

    The hook sees one object at a time, without its place in the document, so it notes
    the objects (by identity) and the repeated keys; `pointers()` then finds where they are.
    """

    def __init__(self) -> None:
        self.found: dict[int, list[str]] = {}

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                self.found.setdefault(id(result), []).append(key)
            result[key] = value
        return result

    def pointers(self, document: Any) -> list[str]:
        found: list[str] = []
        stack: list[tuple[Any, tuple[str, ...]]] = [(document, ())]
        while stack:
            value, path = stack.pop()
            if isinstance(value, dict):
                found += [pointer(*path, key) for key in self.found.get(id(value), [])]
                stack += [(child, (*path, key)) for key, child in value.items()]
            elif isinstance(value, list):
                stack += [(child, (*path, str(index))) for index, child in enumerate(value)]
        return sorted(found)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Parse a request body strictly: UTF-8, standard JSON, no duplicate keys, an object at the top."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid([Problem("", f"body is not valid UTF-8 (byte {exc.start})")]) from None
    if not text.strip():
        raise Invalid([Problem("", "body is empty; expected a JSON object")])
    duplicates = _DuplicateKeys()
    try:
        data = json.loads(text, object_pairs_hook=duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise Invalid([Problem("", f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]) from None
    except RecursionError:
        raise Invalid([Problem("", "body is nested too deeply")]) from None
    except ValueError as exc:  # e.g. NaN, or an integer literal with thousands of digits
        raise Invalid([Problem("", f"body is not valid JSON: {exc}")]) from None
    if duplicates.found:
        raise Invalid([Problem(at, "key appears more than once in the same object") for at in duplicates.pointers(data)])
    if not isinstance(data, dict):
        raise Invalid([Problem("", f"body must be a JSON object, not {json_type(data)}")])
    return data
