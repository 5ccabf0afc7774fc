"""The partition-queue message, versions 1 and 2: what producers may send and what workers accept."""
from __future__ import annotations

import itertools
import time
import uuid

import orjson
import pytest

from common.messages import (
    FORMAT_VERSION,
    MAX_MESSAGE_COUNT,
    MalformedMessage,
    Message,
    decode,
    encode,
    idempotent_message_id,
    new_message_id,
)
from common.views import MAX_PAGE_LENGTH

GOOD_ID = "0190f1c2-7a3b-7c4d-9e8f-0123456789ab"
HOUR = 1752660000  # 2025-07-16T10:00:00Z


def body(**fields: object) -> bytes:
    message: dict = {"v": 1, "id": GOOD_ID, "views": [["example.com/a", HOUR, 5]]}
    message.update(fields)
    return orjson.dumps({key: value for key, value in message.items() if value is not _MISSING})


_MISSING = object()


def test_encode_decode_round_trip():
    views = [("example.com/a", HOUR, 5), ("例え.jp/ページ", HOUR + 3600, 1), ('quote"and\\slash', 0, MAX_MESSAGE_COUNT)]
    assert decode(encode(GOOD_ID, views)) == Message(id=GOOD_ID, views=views)


def test_encoded_body_is_the_documented_json():
    encoded = orjson.loads(encode(GOOD_ID, [("example.com/a", HOUR, 5), ("example.com/", HOUR, 1, -(2**63))]))
    assert encoded == {"v": FORMAT_VERSION, "id": GOOD_ID, "views": [["example.com/a", HOUR, 5], ["example.com/", HOUR, 1, -(2**63)]]}


def test_views_without_visitors_are_encoded_as_version_1_for_workers_of_the_previous_release():
    encoded = orjson.loads(encode(GOOD_ID, [("example.com/a", HOUR, 5)]))
    assert encoded == {"v": 1, "id": GOOD_ID, "views": [["example.com/a", HOUR, 5]]}


def test_version_2_round_trip_with_and_without_visitors():
    views = [("example.com/a", HOUR, 1, 2**63 - 1), ("example.com/a", HOUR, 3), ("example.com/b", HOUR, 1, -(2**63)), ("example.com/b", HOUR, 1, 0)]
    assert decode(encode(GOOD_ID, views)) == Message(id=GOOD_ID, views=views)


def test_version_1_messages_are_still_accepted():
    """Rolling upgrade: a v1 message published by an API of the previous release counts as before."""
    assert decode(body(v=1, views=[["example.com/a", HOUR + 5, 5]])) == Message(id=GOOD_ID, views=[("example.com/a", HOUR, 5)])


def test_version_2_floors_the_hour_and_keeps_the_visitor():
    assert decode(body(v=2, views=[["p", HOUR + 59, 1, 42]])).views == [("p", HOUR, 1, 42)]


def test_decode_lowercases_the_id():
    assert decode(body(id=GOOD_ID.upper())).id == GOOD_ID


@pytest.mark.parametrize(
    ("second", "hour"),
    [(HOUR, HOUR), (HOUR + 1, HOUR), (HOUR + 3599, HOUR), (HOUR + 3600, HOUR + 3600), (0, 0), (59, 0)],
    ids=["on-the-hour", "one-second-in", "last-second", "next-hour", "epoch", "epoch-plus-59s"],
)
def test_decode_floors_unix_seconds_to_the_hour(second, hour):
    assert decode(body(views=[["p", second, 1]])).views == [("p", hour, 1)]


def test_page_of_exactly_the_maximum_length_is_accepted():
    page = "x" * MAX_PAGE_LENGTH
    assert decode(body(views=[[page, HOUR, 1]])).views == [(page, HOUR, 1)]


BAD_BODIES = [
    ("garbage", b"\x00\x01garbage", "not UTF-8 JSON"),
    ("empty", b"", "not UTF-8 JSON"),
    ("invalid-utf8", b'{"v": 1, "id": "\xff\xfe", "views": []}', "not UTF-8 JSON"),
    ("json-array", b"[1, 2, 3]", "not a JSON object"),
    ("json-string", b'"hello"', "not a JSON object"),
    ("missing-version", body(v=_MISSING), "unsupported format version"),
    ("version-3", body(v=3), "unsupported format version 3"),
    ("version-0", body(v=0), "unsupported format version"),
    ("version-string", body(v="1"), "unsupported format version '1'"),
    ("version-null", body(v=None), "unsupported format version"),
    ("version-true", body(v=True), "unsupported format version"),
    ("version-float", body(v=1.0), "unsupported format version"),
    ("missing-id", body(id=_MISSING), "id must be a UUID"),
    ("id-not-uuid", body(id="not-a-uuid"), "id must be a UUID"),
    ("id-number", body(id=12345), "id must be a UUID"),
    ("id-without-hyphens", body(id=GOOD_ID.replace("-", "")), "id must be a UUID"),
    ("id-in-braces", body(id="{" + GOOD_ID + "}"), "id must be a UUID"),
    ("id-urn", body(id="urn:uuid:" + GOOD_ID), "id must be a UUID"),
    ("missing-views", body(views=_MISSING), "views must be a non-empty list"),
    ("empty-views", body(views=[]), "views must be a non-empty list"),
    ("views-object", body(views={"p": 1}), "views must be a non-empty list"),
    ("entry-not-a-list", body(views=[{"page": "p"}]), r"views\[0\] must be \[page, unix_seconds, count\]"),
    ("entry-of-two", body(views=[["p", HOUR]]), r"views\[0\] must be \[page, unix_seconds, count\]"),
    ("v1-entry-of-four", body(views=[["p", HOUR, 1, 1]]), r"views\[0\] must be \[page, unix_seconds, count\]$"),
    ("v2-entry-of-two", body(v=2, views=[["p", HOUR]]), r"views\[0\] must be \[page, unix_seconds, count\] or \[page, unix_seconds, count, visitor\]"),
    ("v2-entry-of-five", body(v=2, views=[["p", HOUR, 1, 1, 1]]), r"views\[0\] must be"),
    ("visitor-float", body(v=2, views=[["p", HOUR, 1, 1.0]]), r"views\[0\]: visitor must be a signed 64-bit integer"),
    ("visitor-string", body(v=2, views=[["p", HOUR, 1, "1"]]), r"views\[0\]: visitor must be"),
    ("visitor-null", body(v=2, views=[["p", HOUR, 1, None]]), r"views\[0\]: visitor must be"),
    ("visitor-bool", body(v=2, views=[["p", HOUR, 1, True]]), r"views\[0\]: visitor must be"),
    ("visitor-2-to-63", body(v=2, views=[["p", HOUR, 1, 2**63]]), r"views\[0\]: visitor must be"),
    ("visitor-below-int64", body(v=2, views=[["p", HOUR, 1, 2**64 - 1]]).replace(b"18446744073709551615", b"-9223372036854775809"), r"views\[0\]: visitor must be"),
    ("v2-bad-count-with-visitor", body(v=2, views=[["p", HOUR, 0, 1]]), r"views\[0\]: count must be"),
    ("second-entry-bad", body(views=[["p", HOUR, 1], "x"]), r"views\[1\] must be"),
    ("empty-page", body(views=[["", HOUR, 1]]), r"views\[0\]: page must not be empty"),
    ("page-too-long", body(views=[["x" * (MAX_PAGE_LENGTH + 1), HOUR, 1]]), r"views\[0\]: page has 2049 characters; at most 2048"),
    ("page-with-nul", body(views=[["a\x00b", HOUR, 1]]), r"views\[0\]: page must not contain the NUL character"),
    ("page-number", body(views=[[7, HOUR, 1]]), r"views\[0\]: page must be a string"),
    ("seconds-float", body(views=[["p", float(HOUR), 1]]), r"views\[0\]: unix_seconds must be an integer"),
    ("seconds-string", body(views=[["p", str(HOUR), 1]]), r"views\[0\]: unix_seconds must be an integer"),
    ("seconds-negative", body(views=[["p", -3600, 1]]), r"views\[0\]: unix_seconds must be an integer"),
    ("seconds-after-2100", body(views=[["p", 4_102_444_800, 1]]), r"views\[0\]: unix_seconds must be an integer"),
    ("seconds-bool", body(views=[["p", True, 1]]), r"views\[0\]: unix_seconds must be an integer"),
    ("count-bool", body(views=[["p", HOUR, True]]), r"views\[0\]: count must be an integer from 1"),
    ("count-float", body(views=[["p", HOUR, 5.0]]), r"views\[0\]: count must be an integer from 1"),
    ("count-string", body(views=[["p", HOUR, "5"]]), r"views\[0\]: count must be an integer from 1"),
    ("count-negative", body(views=[["p", HOUR, -1]]), r"views\[0\]: count must be an integer from 1"),
    ("count-zero", body(views=[["p", HOUR, 0]]), r"views\[0\]: count must be an integer from 1"),
    ("count-null", body(views=[["p", HOUR, None]]), r"views\[0\]: count must be an integer from 1"),
    ("count-over-max", body(views=[["p", HOUR, MAX_MESSAGE_COUNT + 1]]), r"views\[0\]: count must be an integer from 1 to 1000000000000"),
]


@pytest.mark.parametrize(("raw", "reason"), [(raw, reason) for _, raw, reason in BAD_BODIES], ids=[name for name, _, _ in BAD_BODIES])
def test_decode_rejects_with_a_useful_reason(raw, reason):
    with pytest.raises(MalformedMessage, match=reason):
        decode(raw)


def test_count_of_exactly_max_count_is_accepted():
    assert decode(body(views=[["p", HOUR, MAX_MESSAGE_COUNT]])).views == [("p", HOUR, MAX_MESSAGE_COUNT)]


@pytest.mark.parametrize(
    "spelling",
    ["0190f1c2-7a3b-7c4d-9e8f0123-456789ab", "0190f1c27a3b-7c4d-9e8f-0123-456789ab", "----0190f1c27a3b7c4d9e8f0123456789ab"],
    ids=["hyphen-moved", "hyphen-moved-left", "hyphens-in-front"],
)
def test_decoded_id_is_never_a_non_canonical_spelling(spelling):
    # The worker compares ids with the canonical text PostgreSQL's uuid type returns; an id that
    # is accepted but not canonical would be taken for an already-applied message and its views dropped.
    assert len(spelling) == 36 and uuid.UUID(spelling) == uuid.UUID(GOOD_ID)
    try:
        decoded = decode(body(id=spelling))
    except MalformedMessage:
        return
    assert decoded.id == GOOD_ID


# --------------------------------------------------------------------------- ids


def test_new_message_id_is_a_uuid_version_7():
    value = uuid.UUID(new_message_id())
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_new_message_id_is_canonical_text_accepted_by_decode():
    message_id = new_message_id()
    assert message_id == str(uuid.UUID(message_id))
    assert decode(encode(message_id, [("p", HOUR, 1)])).id == message_id


def test_new_message_id_embeds_the_current_unix_milliseconds():
    before = time.time_ns() // 1_000_000
    millis = uuid.UUID(new_message_id()).int >> 80
    after = time.time_ns() // 1_000_000
    assert before <= millis <= after


def test_new_message_ids_are_unique():
    ids = [new_message_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids)


def _ids_from_three_milliseconds() -> list[str]:
    """Generate ids until they span at least three different milliseconds (busy loop, no sleeping)."""
    ids = [new_message_id()]
    while len({uuid.UUID(i).int >> 80 for i in ids}) < 3:
        ids.append(new_message_id())
    return ids


def test_new_message_ids_increase_across_milliseconds():
    ids = _ids_from_three_milliseconds()
    millis = [uuid.UUID(i).int >> 80 for i in ids]
    assert millis == sorted(millis)
    for earlier, later in itertools.pairwise(ids):
        if uuid.UUID(earlier).int >> 80 < uuid.UUID(later).int >> 80:
            assert earlier < later  # text order follows time order
            assert uuid.UUID(earlier).int < uuid.UUID(later).int


def test_idempotent_message_id_is_deterministic():
    assert idempotent_message_id("order-42", 3) == idempotent_message_id("order-42", 3)
    assert idempotent_message_id("order-42", 3) == str(uuid.UUID(idempotent_message_id("order-42", 3)))


def test_idempotent_message_id_differs_per_partition():
    ids = {idempotent_message_id("order-42", partition) for partition in range(100)}
    assert len(ids) == 100


def test_idempotent_message_id_differs_per_key():
    keys = ["order-42", "order-43", "Order-42", "order-42 ", "", "3", "1\x002"]
    assert len({idempotent_message_id(key, 1) for key in keys}) == len(keys)


def test_idempotent_message_id_does_not_confuse_key_and_partition():
    assert idempotent_message_id("23", 1) != idempotent_message_id("3", 12)


def test_idempotent_message_id_is_accepted_by_decode():
    message_id = idempotent_message_id("order-42", 3)
    assert decode(encode(message_id, [("p", HOUR, 1)])).id == message_id
