"""Request validation: pure functions that see a whole request before anything is published.

Each function either returns the request's meaning or raises ``Invalid`` with every
problem found (where, as a JSON pointer, and why), so that a client fixes all of them
in one round trip. Nothing here does I/O.

The problem types are in api/problems.py and strict JSON parsing in api/json_body.py;
both are importable from here too, as the whole of request validation.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from api.json_body import parse_json_object
from api.problems import Invalid, Problem, json_type, pointer
from common import views
from common.timeutil import floor_hour, hour_start_epoch, parse_timestamp, retention_cutoff
from common.views import ViewCounts

__all__ = [
    "Invalid", "Problem", "TimestampRules", "ViewCounts", "idempotency_key_problem", "page_problem",
    "parse_json_object", "pointer", "validate_multi", "validate_single",
]

MAX_ENTRY_COUNT = 1_000_000  # views in one entry of a request (a message entry may hold more: MAX_MESSAGE_COUNT)
MAX_ENTRIES = 10_000
MAX_FUTURE = timedelta(hours=1)
MAX_TIMESTAMP_LENGTH = 64
MAX_IDEMPOTENCY_KEY_LENGTH = 200


# --------------------------------------------------------------------------- fields


def page_problem(page: Any) -> str | None:
    """Why the JSON value `page` is not an acceptable page, or None (the rules: common/views.py)."""
    if not isinstance(page, str):
        return f"page must be a string, not {json_type(page)}"
    return views.page_problem(page)


def count_problem(count: Any) -> str | None:
    if type(count) is not int:  # bool is an int subclass, and 5.0 is not a count
        return f"count must be an integer from 1 to {MAX_ENTRY_COUNT}, not {json_type(count)}"
    if not 1 <= count <= MAX_ENTRY_COUNT:
        return f"count must be an integer from 1 to {MAX_ENTRY_COUNT}, got {count}"
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
            return None, f"timestamp must be an ISO 8601 string, not {json_type(value)}"
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
            problems.append(Problem(at, f"must be an object of timestamp to count, not {json_type(hours)}"))
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
