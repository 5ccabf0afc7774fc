"""The partition-queue message format, version 2 (documented for other producers in README.md).

Body, JSON in UTF-8:

    {"v": 2, "id": "0190f1c2-7a3b-7c4d-9e8f-0123456789ab",
     "views": [["example.com/page1", 1752660000, 5], ["example.com/", 1752660000, 1, -4132587394017257201]]}

- ``id``: a UUID unique to this message. Workers apply an id at most once, so a
  message published or delivered twice is counted once.
- ``views``: a non-empty list of ``[page, unix_seconds, count]`` or
  ``[page, unix_seconds, count, visitor]``; the view is counted in the UTC hour containing
  ``unix_seconds``; ``count`` is a positive integer; ``visitor`` (browser views only) is
  the visitor id, a signed 64-bit integer, added to the hour's visitors sketch.

Version 1 is the same without the 4th element. Workers accept both, and `encode` writes
version 1 when no entry has a visitor, so workers of the previous release keep counting
single and multi during a rolling upgrade (upgrade the workers first).

A body that breaks these rules is poison: the worker dead-letters it with the reason.
"""
from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass

import orjson

from common.views import View, page_problem

FORMAT_VERSION = 2
VERSIONS = (1, 2)
CONTENT_TYPE = "application/json"
MESSAGE_TYPE = "pageviews.views"  # the format version is the body's "v"
# Far above the API's MAX_ENTRY_COUNT: the publisher merges many requests' counts for one
# page and hour into one entry (api/publishing.py), and other producers may do the same.
MAX_MESSAGE_COUNT = 10**12
_LATEST_SECOND = 4_102_444_800  # 2100-01-01: anything later is a producer bug, not a view
_HOUR = 3600
_INT64 = 2**63
_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_IDEMPOTENCY_NAMESPACE = uuid.UUID("4b0d0a1e-5c1f-4d4e-8a52-6f1c3e2a9b70")


class MalformedMessage(ValueError):
    """The body is not a valid message; the text says what is wrong."""


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    views: list[View]


def encode(message_id: str, views: list[View]) -> bytes:
    version = 2 if 4 in map(len, views) else 1
    return orjson.dumps({"v": version, "id": message_id, "views": views})


def decode(body: bytes) -> Message:
    """Parse and check a message body; raises MalformedMessage with the reason."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"not UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedMessage("body is not a JSON object")
    version = data.get("v")
    if type(version) is not int or version not in VERSIONS:
        raise MalformedMessage(f"unsupported format version {version!r}, expected one of {VERSIONS}")
    message_id = _canonical_uuid(data.get("id"))
    views = data.get("views")
    if not isinstance(views, list) or not views:
        raise MalformedMessage("views must be a non-empty list")
    lengths = (3,) if version == 1 else (3, 4)
    return Message(id=message_id, views=[_view(item, index, lengths) for index, item in enumerate(views)])


def _view(item: object, index: int, lengths: tuple[int, ...]) -> View:
    if not isinstance(item, list) or len(item) not in lengths:
        expected = "[page, unix_seconds, count]" + (" or [page, unix_seconds, count, visitor]" if 4 in lengths else "")
        raise MalformedMessage(f"views[{index}] must be {expected}")
    page, second, count = item[:3]
    why = page_problem(page) if isinstance(page, str) else "page must be a string"
    if why is not None:
        raise MalformedMessage(f"views[{index}]: {why}")
    if type(second) is not int or not 0 <= second < _LATEST_SECOND:
        raise MalformedMessage(f"views[{index}]: unix_seconds must be an integer between 0 and {_LATEST_SECOND}")
    if type(count) is not int or not 0 < count <= MAX_MESSAGE_COUNT:
        raise MalformedMessage(f"views[{index}]: count must be an integer from 1 to {MAX_MESSAGE_COUNT}")
    if len(item) == 3:
        return page, second - second % _HOUR, count
    visitor = item[3]
    if type(visitor) is not int or not -_INT64 <= visitor < _INT64:
        raise MalformedMessage(f"views[{index}]: visitor must be a signed 64-bit integer")
    return page, second - second % _HOUR, count, visitor


def _canonical_uuid(value: object) -> str:
    """The id as PostgreSQL spells it (lower case), which is what the store compares ids with.

    Only the 8-4-4-4-12 form is accepted: PostgreSQL would also take other spellings and
    answer in this one, and a mismatch would make a new message look already applied.
    """
    if not isinstance(value, str) or not _UUID_TEXT.fullmatch(value):
        raise MalformedMessage("id must be a UUID string such as 0190f1c2-7a3b-7c4d-9e8f-0123456789ab")
    return value.lower()


def new_message_id() -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so the worker's id index grows at its right edge."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | rand & (2**62 - 1)
    return str(uuid.UUID(int=value))


def idempotent_message_id(idempotency_key: str, partition: int, chunk: int = 0) -> str:
    """The id of a keyed request's message for one partition: a retry of the request repeats it exactly."""
    name = f"{partition}\x00{idempotency_key}" if chunk == 0 else f"{partition}\x00{chunk}\x00{idempotency_key}"
    return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, name))
