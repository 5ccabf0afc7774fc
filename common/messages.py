"""The partition-queue message format, version 1 (documented for other producers in README.md).

Body, JSON in UTF-8:

    {"v": 1, "id": "0190f1c2-7a3b-7c4d-9e8f-0123456789ab",
     "views": [["example.com/page1", 1752660000, 5], ...]}

- ``id``: a UUID unique to this message. Workers apply an id at most once, so a
  message published or delivered twice is counted once.
- ``views``: a non-empty list of ``[page, unix_seconds, count]``; the view is counted
  in the UTC hour containing ``unix_seconds``; ``count`` is a positive integer.

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

FORMAT_VERSION = 1
CONTENT_TYPE = "application/json"
MESSAGE_TYPE = f"pageviews.v{FORMAT_VERSION}"
# Far above the API's MAX_ENTRY_COUNT: the publisher merges many requests' counts for one
# page and hour into one entry (api/publishing.py), and other producers may do the same.
MAX_MESSAGE_COUNT = 10**12
_LATEST_SECOND = 4_102_444_800  # 2100-01-01: anything later is a producer bug, not a view
_HOUR = 3600
_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_IDEMPOTENCY_NAMESPACE = uuid.UUID("4b0d0a1e-5c1f-4d4e-8a52-6f1c3e2a9b70")


class MalformedMessage(ValueError):
    """The body is not a valid version-1 message; the text says what is wrong."""


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    views: list[View]


def encode(message_id: str, views: list[View]) -> bytes:
    return orjson.dumps({"v": FORMAT_VERSION, "id": message_id, "views": views})


def decode(body: bytes) -> Message:
    """Parse and check a message body; raises MalformedMessage with the reason."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"not UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedMessage("body is not a JSON object")
    version = data.get("v")
    if type(version) is not int or version != FORMAT_VERSION:
        raise MalformedMessage(f"unsupported format version {version!r}, expected {FORMAT_VERSION}")
    message_id = _canonical_uuid(data.get("id"))
    views = data.get("views")
    if not isinstance(views, list) or not views:
        raise MalformedMessage("views must be a non-empty list")
    return Message(id=message_id, views=[_view(item, index) for index, item in enumerate(views)])


def _view(item: object, index: int) -> View:
    if not isinstance(item, list) or len(item) != 3:
        raise MalformedMessage(f"views[{index}] must be [page, unix_seconds, count]")
    page, second, count = item
    why = page_problem(page) if isinstance(page, str) else "page must be a string"
    if why is not None:
        raise MalformedMessage(f"views[{index}]: {why}")
    if type(second) is not int or not 0 <= second < _LATEST_SECOND:
        raise MalformedMessage(f"views[{index}]: unix_seconds must be an integer between 0 and {_LATEST_SECOND}")
    if type(count) is not int or not 0 < count <= MAX_MESSAGE_COUNT:
        raise MalformedMessage(f"views[{index}]: count must be an integer from 1 to {MAX_MESSAGE_COUNT}")
    return page, second - second % _HOUR, count


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
