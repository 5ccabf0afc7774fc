"""What is wrong with a request: each problem says where (a JSON pointer) and why; `Invalid` carries them all."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    at: str  # a JSON pointer into the body, or the name of a query parameter or header
    problem: str


class Invalid(ValueError):
    """The request is invalid; `problems` lists every reason."""

    def __init__(self, problems: list[Problem], message: str | None = None) -> None:
        self.problems = problems
        self.message = message or summary(problems)
        super().__init__(self.message)


def summary(problems: list[Problem]) -> str:
    """One line for the error's message: the problem itself when there is one, else how many."""
    if len(problems) == 1:
        return f"{problems[0].at or 'body'}: {problems[0].problem}; nothing was accepted"
    return f"{len(problems)} problems in the request; nothing was accepted"


def pointer(*keys: str) -> str:
    """RFC 6901 JSON pointer to a member, e.g. pointer("a/b", "c") == "/a~1b/c"."""
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in keys)


def json_type(value: Any) -> str:
    """The JSON type of a parsed value, as a problem names it ("a number", "null")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
