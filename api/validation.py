"""Request validation: pure functions that see a whole request before anything is published.

Each function either returns the request's meaning or raises ``Invalid`` with every
problem found (where, as a JSON pointer, and why), so that a client fixes all of them
in one round trip. Nothing here does I/O.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from common.messages import MAX_PAGE_LENGTH
from common.timeutil import floor_hour, hour_start_epoch, parse_timestamp, retention_cutoff

MAX_COUNT = 1_000_000
MAX_ENTRIES = 10_000
MAX_FUTURE = timedelta(hours=1)
MAX_TIMESTAMP_LENGTH = 64
MAX_IDEMPOTENCY_KEY_LENGTH = 200

ViewCounts = dict[tuple[str, int], int]  # (page, start of the hour in Unix seconds) -> views


@dataclass(frozen=True)
class Problem:
    at: str  # a JSON pointer into the body, or the name of a query parameter or header
    problem: str


class Invalid(ValueError):
    """The request is invalid; `problems` lists every reason."""

    def __init__(self, problems: list[Problem], message: str | None = None) -> None:
        self.problems = problems
        self.message = message or _summary(problems)
        super().__init__(self.message)


def _summary(problems: list[Problem]) -> str:
    if len(problems) == 1:
        return f"{problems[0].at or 'body'}: {problems[0].problem}; nothing was accepted"
    return f"{len(problems)} problems in the request; nothing was accepted"


def pointer(*keys: str) -> str:
    """RFC 6901 JSON pointer to a member, e.g. pointer("a/b", "c") == "/a~1b/c"."""
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in keys)


# --------------------------------------------------------------------------- JSON bodies


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
        raise Invalid([Problem("", f"body must be a JSON object, not {_json_type(data)}")])
    return data


def _json_type(value: Any) -> str:
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


# --------------------------------------------------------------------------- fields


def page_problem(page: Any) -> str | None:
    """Why `page` is not an acceptable page, or None. Pages are otherwise stored literally."""
    if not isinstance(page, str):
        return f"page must be a string, not {_json_type(page)}"
    if not page:
        return "page must not be empty"
    if len(page) > MAX_PAGE_LENGTH:
        return f"page has {len(page)} characters; at most {MAX_PAGE_LENGTH} are allowed"
    if "\x00" in page:
        return "page must not contain the NUL character (\\u0000)"
    try:
        page.encode("utf-8")
    except UnicodeEncodeError:
        return "page contains an unpaired UTF-16 surrogate, which is not a character"
    return None


def count_problem(count: Any) -> str | None:
    if type(count) is not int:  # bool is an int subclass, and 5.0 is not a count
        return f"count must be an integer from 1 to {MAX_COUNT}, not {_json_type(count)}"
    if not 1 <= count <= MAX_COUNT:
        return f"count must be an integer from 1 to {MAX_COUNT}, got {count}"
    return None


@dataclass
class TimestampRules:
    """The accepted window for view timestamps, fixed at the moment the request arrived."""

    now: datetime
    retention_days: int
    _cache: dict[str, tuple[int | None, str | None]] = field(default_factory=dict)

    def hour_of(self, value: Any) -> tuple[int | None, str | None]:
        """(start of the hour in Unix seconds, None) or (None, why it is not acceptable)."""
        if not isinstance(value, str):
            return None, f"timestamp must be an ISO 8601 string, not {_json_type(value)}"
        cached = self._cache.get(value)
        if cached is None:
            cached = self._cache[value] = self._check(value)
        return cached

    def _check(self, text: str) -> tuple[int | None, str | None]:
        if len(text) > MAX_TIMESTAMP_LENGTH:
            return None, f"timestamp is longer than {MAX_TIMESTAMP_LENGTH} characters"
        try:
            moment = parse_timestamp(text)
        except ValueError as exc:
            return None, f"timestamp {text!r} is {exc}; expected e.g. 2025-07-16T10:00:00Z"
        if moment > self.now + MAX_FUTURE:
            return None, f"timestamp {text!r} is more than one hour in the future"
        cutoff = retention_cutoff(self.now, self.retention_days)
        if floor_hour(moment) < cutoff:
            return None, f"timestamp {text!r} is older than the retention window of {self.retention_days} days"
        return hour_start_epoch(moment), None


# --------------------------------------------------------------------------- ingest


def validate_single(data: Mapping[str, Any], rules: TimestampRules) -> ViewCounts:
    """{"page": "...", "timestamp": "..."} -> one view; timestamp defaults to now."""
    problems = [Problem(pointer(key), "unknown field; expected page and optionally timestamp") for key in data if key not in ("page", "timestamp")]
    if "page" not in data:
        problems.append(Problem("/page", "page is required"))
    elif (why := page_problem(data["page"])) is not None:
        problems.append(Problem("/page", why))
    hour, why = rules.hour_of(data["timestamp"]) if "timestamp" in data else (hour_start_epoch(rules.now), None)
    if why is not None:
        problems.append(Problem("/timestamp", why))
    if problems:
        raise Invalid(problems)
    return {(data["page"], hour): 1}  # type: ignore[dict-item]


def validate_multi(data: Mapping[str, Any], rules: TimestampRules) -> ViewCounts:
    """{"page": {"timestamp": count, ...}, ...} -> views per page and hour, all or nothing."""
    if not data:
        raise Invalid([Problem("", "no page views in the request; expected {\"<page>\": {\"<timestamp>\": <count>}}")])
    entries = sum(len(hours) if isinstance(hours, dict) else 1 for hours in data.values())
    if entries > MAX_ENTRIES:
        raise Invalid([Problem("", f"request has {entries} entries; at most {MAX_ENTRIES} are allowed per request")])
    problems: list[Problem] = []
    counts: ViewCounts = {}
    for page, hours in data.items():
        at = pointer(page)
        page_why = page_problem(page)
        if page_why is not None:
            problems.append(Problem(at, page_why))
        if not isinstance(hours, dict):
            problems.append(Problem(at, f"must be an object of timestamp to count, not {_json_type(hours)}"))
            continue
        if not hours:
            problems.append(Problem(at, "has no timestamps"))
        for stamp, count in hours.items():
            hour, why = rules.hour_of(stamp)
            count_why = count_problem(count)
            for reason in (why, count_why):
                if reason is not None:
                    problems.append(Problem(pointer(page, stamp), reason))
            if page_why is None and why is None and count_why is None:
                counts[(page, hour)] = counts.get((page, hour), 0) + count  # type: ignore[index]
    if problems:
        raise Invalid(problems)
    return counts


def idempotency_key_problem(key: str) -> str | None:
    if not key:
        return "Idempotency-Key must not be empty"
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        return f"Idempotency-Key has {len(key)} characters; at most {MAX_IDEMPOTENCY_KEY_LENGTH} are allowed"
    if not all(" " <= ch <= "~" for ch in key):
        return "Idempotency-Key must consist of printable ASCII characters"
    return None
