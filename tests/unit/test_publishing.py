"""Composing messages from requests: group commit, keyed requests alone, size limits, partitioning."""
from __future__ import annotations

from collections import Counter

import orjson
import pytest

from api.publishing import MAX_VIEWS_PER_MESSAGE, IngestRequest, compose, split_by_partition
from common import messages
from common.broker import Topology
from common.partitioning import partition_for

TOPOLOGY = Topology("t", 4, 10)
H = 1752660000


def request(counts: dict[tuple[str, int], int], key: str | None = None) -> IngestRequest:
    return IngestRequest(split_by_partition(counts, TOPOLOGY.num_partitions), key)


def pages_in(partition: int, how_many: int) -> list[str]:
    """Pages that hash to the given partition of TOPOLOGY."""
    found, i = [], 0
    while len(found) < how_many:
        page = f"example.com/{i}"
        if partition_for(page, TOPOLOGY.num_partitions) == partition:
            found.append(page)
        i += 1
    return found


def decoded_counts(outgoing) -> Counter:
    total: Counter = Counter()
    for message in outgoing:
        for page, hour, count in messages.decode(message.body).views:
            total[(page, hour)] += count
    return total


def by_queue(outgoing) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for message in outgoing:
        grouped.setdefault(message.routing_key, []).append(message)
    return grouped


def test_non_keyed_requests_to_one_partition_merge_into_one_message():
    a, b = pages_in(2, 2)
    requests = [request({(a, H): 1}), request({(a, H): 2, (b, H): 5}), request({(a, H + 3600): 7})]
    [message] = compose(TOPOLOGY, requests)
    assert message.routing_key == "t.p2"
    assert message.covers == [0, 1, 2]
    decoded = messages.decode(message.body)
    assert decoded.id == message.message_id
    assert Counter({(page, hour): count for page, hour, count in decoded.views}) == Counter({(a, H): 3, (b, H): 5, (a, H + 3600): 7})


def test_merged_message_ids_are_fresh_uuid7():
    [page] = pages_in(1, 1)
    first = compose(TOPOLOGY, [request({(page, H): 1})])
    second = compose(TOPOLOGY, [request({(page, H): 1})])
    assert first[0].message_id != second[0].message_id
    assert all(messages.decode(m.body).id == m.message_id for m in first + second)


def test_one_message_per_partition_touched_and_each_covers_its_requests():
    p0, p1, p3 = pages_in(0, 1)[0], pages_in(1, 1)[0], pages_in(3, 1)[0]
    requests = [request({(p0, H): 1, (p1, H): 1}), request({(p1, H): 2}), request({(p3, H): 4, (p0, H): 8})]
    outgoing = compose(TOPOLOGY, requests)
    grouped = by_queue(outgoing)
    assert set(grouped) == {"t.p0", "t.p1", "t.p3"}
    assert all(len(queue_messages) == 1 for queue_messages in grouped.values())
    assert grouped["t.p0"][0].covers == [0, 2]
    assert grouped["t.p1"][0].covers == [0, 1]
    assert grouped["t.p3"][0].covers == [2]
    assert decoded_counts(outgoing) == Counter({(p0, H): 9, (p1, H): 3, (p3, H): 4})


def test_every_request_is_covered_by_every_message_carrying_its_views():
    pages = pages_in(0, 3) + pages_in(1, 3) + pages_in(2, 3) + pages_in(3, 3)
    requests = [request({(page, H): 1 for page in pages[i : i + 4]}) for i in range(0, 9)]
    outgoing = compose(TOPOLOGY, requests)
    for index, req in enumerate(requests):
        carrying = {m.routing_key for m in outgoing if index in m.covers}
        assert carrying == {TOPOLOGY.partition_queue(p) for p in req.by_partition}
    expected: Counter = Counter()
    for req in requests:
        for counts in req.by_partition.values():
            expected.update(counts)
    assert decoded_counts(outgoing) == expected


def test_keyed_request_gets_its_own_message_with_a_derived_id():
    [page] = pages_in(3, 1)
    requests = [request({(page, H): 1}), request({(page, H): 2}, key="order-42"), request({(page, H): 4})]
    outgoing = compose(TOPOLOGY, requests)
    keyed = [m for m in outgoing if m.covers == [1]]
    assert len(keyed) == 1
    assert keyed[0].message_id == messages.idempotent_message_id("order-42", 3)
    assert messages.decode(keyed[0].body).id == keyed[0].message_id
    assert messages.decode(keyed[0].body).views == [(page, H, 2)]
    [merged] = [m for m in outgoing if m is not keyed[0]]
    assert merged.covers == [0, 2]
    assert messages.decode(merged.body).views == [(page, H, 5)]


def test_keyed_requests_are_never_merged_even_with_each_other():
    [page] = pages_in(0, 1)
    outgoing = compose(TOPOLOGY, [request({(page, H): 1}, key="k1"), request({(page, H): 1}, key="k2")])
    assert [m.covers for m in outgoing] == [[0], [1]]
    assert [m.message_id for m in outgoing] == [messages.idempotent_message_id("k1", 0), messages.idempotent_message_id("k2", 0)]


def test_keyed_request_over_several_partitions_has_one_id_per_partition():
    p0, p2 = pages_in(0, 1)[0], pages_in(2, 1)[0]
    outgoing = compose(TOPOLOGY, [request({(p0, H): 1, (p2, H): 1}, key="retry-me")])
    assert {m.routing_key: m.message_id for m in outgoing} == {
        "t.p0": messages.idempotent_message_id("retry-me", 0),
        "t.p2": messages.idempotent_message_id("retry-me", 2),
    }


def test_a_retried_keyed_request_repeats_its_messages_exactly():
    pages = pages_in(1, 3)
    counts = {(page, H): n for n, page in enumerate(pages, 1)}
    first = compose(TOPOLOGY, [request(counts, key="order-7")])
    again = compose(TOPOLOGY, [request({(pages[0], H): 9}), request(counts, key="order-7")])
    keyed_again = [m for m in again if 1 in m.covers]
    assert [(m.routing_key, m.message_id, m.body) for m in first] == [(m.routing_key, m.message_id, m.body) for m in keyed_again]


def test_merge_that_would_exceed_the_distinct_key_limit_starts_a_new_message():
    big = {(f"p{i}", H): 1 for i in range(MAX_VIEWS_PER_MESSAGE - 10)}
    small = {(f"q{i}", H): 1 for i in range(11)}
    one = IngestRequest({0: big})
    two = IngestRequest({0: small})
    outgoing = compose(TOPOLOGY, [one, two])
    assert [m.covers for m in outgoing] == [[0], [1]]
    assert [len(messages.decode(m.body).views) for m in outgoing] == [MAX_VIEWS_PER_MESSAGE - 10, 11]


def test_merge_up_to_the_distinct_key_limit_stays_one_message():
    big = {(f"p{i}", H): 1 for i in range(MAX_VIEWS_PER_MESSAGE - 10)}
    small = {(f"q{i}", H): 1 for i in range(10)}
    [message] = compose(TOPOLOGY, [IngestRequest({0: big}), IngestRequest({0: small})])
    assert message.covers == [0, 1]
    assert len(messages.decode(message.body).views) == MAX_VIEWS_PER_MESSAGE


def test_merge_that_would_exceed_max_count_for_one_key_starts_a_new_message():
    near = IngestRequest({0: {("a", H): messages.MAX_MESSAGE_COUNT - 5}})
    more = IngestRequest({0: {("a", H): 6}})
    outgoing = compose(TOPOLOGY, [near, more])
    assert [m.covers for m in outgoing] == [[0], [1]]
    assert [messages.decode(m.body).views for m in outgoing] == [[("a", H, messages.MAX_MESSAGE_COUNT - 5)], [("a", H, 6)]]


def test_merge_reaching_exactly_max_count_stays_one_message():
    outgoing = compose(TOPOLOGY, [IngestRequest({0: {("a", H): messages.MAX_MESSAGE_COUNT - 5}}), IngestRequest({0: {("a", H): 5}})])
    assert [messages.decode(m.body).views for m in outgoing] == [[("a", H, messages.MAX_MESSAGE_COUNT)]]


def test_every_composed_message_decodes():
    requests = [request({(f"example.com/{i}/{j}", H + 3600 * j): messages.MAX_MESSAGE_COUNT // 3 for j in range(3)}) for i in range(50)]
    outgoing = compose(TOPOLOGY, requests * 4)
    assert all(messages.decode(m.body).views for m in outgoing)
    assert sum(decoded_counts(outgoing).values()) == 4 * 50 * 3 * (messages.MAX_MESSAGE_COUNT // 3)


def test_compose_of_nothing_is_nothing():
    assert compose(TOPOLOGY, []) == []
    assert compose(TOPOLOGY, [IngestRequest({})]) == []


@pytest.mark.parametrize("num_partitions", [1, 4, 10])
def test_split_by_partition_agrees_with_partition_for(num_partitions):
    counts = {(f"example.com/{i}", H + 3600 * (i % 3)): i + 1 for i in range(500)}
    counts[("例え.jp/ページ", H)] = 3
    split = split_by_partition(counts, num_partitions)
    for partition, part in split.items():
        assert part
        assert all(partition_for(page, num_partitions) == partition for page, _hour in part)
    assert {key: count for part in split.values() for key, count in part.items()} == counts


def test_split_by_partition_keeps_a_page_hours_together():
    [page] = pages_in(2, 1)
    assert split_by_partition({(page, H): 1, (page, H + 3600): 2}, 4) == {2: {(page, H): 1, (page, H + 3600): 2}}


def test_a_keyed_request_larger_than_a_message_splits_the_same_way_every_time():
    from api.publishing import MAX_VIEWS_PER_MESSAGE, IngestRequest, compose
    from common import messages
    from common.broker import Topology

    topology = Topology("t", 1, 10)
    counts = {(f"example.com/{i}", 1752660000): 1 for i in range(MAX_VIEWS_PER_MESSAGE * 2 + 5)}
    request = IngestRequest({0: counts}, idempotency_key="retry-me")
    first, again = compose(topology, [request]), compose(topology, [request])
    assert [m.message_id for m in first] == [m.message_id for m in again]
    assert len(first) == 3 and len({m.message_id for m in first}) == 3
    assert first[0].message_id == messages.idempotent_message_id("retry-me", 0)
    assert sum(len(messages.decode(m.body).views) for m in first) == len(counts)


def test_views_with_visitors_stay_separate_entries_and_merge_per_visitor():
    topology = Topology("t", 1, 10)
    first = IngestRequest({0: {("example.com/", H, 7): 1}})
    second = IngestRequest({0: {("example.com/", H, 7): 1, ("example.com/", H, -8): 1}})
    plain = IngestRequest({0: {("example.com/", H): 2}})
    (message,) = compose(topology, [first, second, plain])
    decoded = messages.decode(message.body)
    assert orjson.loads(message.body)["v"] == 2
    assert sorted(decoded.views, key=len) == [("example.com/", H, 2), ("example.com/", H, 2, 7), ("example.com/", H, 1, -8)]


def test_messages_without_visitors_stay_version_1():
    (message,) = compose(Topology("t", 1, 10), [IngestRequest({0: {("example.com/", H): 2}})])
    assert orjson.loads(message.body)["v"] == 1
