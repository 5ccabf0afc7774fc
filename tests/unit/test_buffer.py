"""The worker's batch: flush on size and on age, with a clock the test advances by hand."""
from __future__ import annotations

from datetime import date

import pytest

from tests.fakes import FakeClock, pending
from worker.buffer import Batch, CountBuffer

H = 1752660000  # 2025-07-16T10:00:00Z


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def add(buffer: CountBuffer, message_id: str, views: list[tuple[str, int, int]], tag: int, queue: str = "q.p0") -> bool:
    return buffer.add(pending(message_id, views, tag, queue), views)


def make_buffer(clock: FakeClock, max_messages: int = 3, max_age_s: float = 0.5) -> CountBuffer:
    return CountBuffer(max_messages=max_messages, max_age_s=max_age_s, clock=clock)


def test_add_collapses_counts_per_page_and_hour(clock):
    buffer = make_buffer(clock, max_messages=100)
    assert add(buffer, "m1", [("a", H, 2), ("b", H, 1)], tag=1)
    assert add(buffer, "m2", [("a", H, 3), ("a", H + 3600, 4)], tag=2)
    batch = buffer.drain()
    assert batch.counts == {("a", H): 5, ("b", H): 1, ("a", H + 3600): 4}
    assert batch.views == 10
    assert set(batch.messages) == {"m1", "m2"}
    assert (batch.last_tag, batch.deliveries, batch.duplicates_in_batch) == (2, 2, 0)


def test_add_keeps_the_pending_delivery_not_the_views(clock):
    buffer = make_buffer(clock)
    message = pending("m1", [("a", H, 2)], tag=7)
    buffer.add(message, [("a", H, 2)])
    batch = buffer.drain()
    assert batch.messages == {"m1": message}
    assert batch.messages["m1"].views() == [("a", H, 2)]  # decoded again from the body


def test_deliveries_are_counted_per_queue_including_duplicates(clock):
    buffer = make_buffer(clock, max_messages=10)
    add(buffer, "m1", [("a", H, 1)], tag=1, queue="q.p0")
    add(buffer, "m1", [("a", H, 1)], tag=2, queue="q.p0")
    add(buffer, "m2", [("b", H, 1)], tag=3, queue="q.p1")
    assert buffer.drain().by_queue == {"q.p0": 2, "q.p1": 1}


def test_empty_buffer_is_never_due(clock):
    buffer = make_buffer(clock)
    clock.advance(3600)
    assert len(buffer) == 0
    assert not buffer.full()
    assert not buffer.due()
    assert buffer.seconds_until_due() is None


def test_full_at_max_messages(clock):
    buffer = make_buffer(clock, max_messages=3)
    add(buffer, "m1", [("a", H, 1)], tag=1)
    add(buffer, "m2", [("a", H, 1)], tag=2)
    assert not buffer.full() and not buffer.due()
    add(buffer, "m3", [("a", H, 1)], tag=3)
    assert buffer.full()
    assert buffer.due()
    assert buffer.seconds_until_due() == 0.0


def test_due_by_age_of_the_first_message(clock):
    buffer = make_buffer(clock, max_messages=100, max_age_s=0.5)
    add(buffer, "m1", [("a", H, 1)], tag=1)
    clock.advance(0.25)
    add(buffer, "m2", [("a", H, 1)], tag=2)  # a later message does not restart the clock
    assert not buffer.due()
    clock.advance(0.125)
    assert not buffer.due()
    clock.advance(0.125)  # exactly max_age_s after the first message (binary fractions: no rounding)
    assert buffer.due()


def test_seconds_until_due_counts_down_from_the_first_message(clock):
    buffer = make_buffer(clock, max_messages=100, max_age_s=0.5)
    add(buffer, "m1", [("a", H, 1)], tag=1)
    assert buffer.seconds_until_due() == pytest.approx(0.5)
    clock.advance(0.2)
    add(buffer, "m2", [("a", H, 1)], tag=2)
    assert buffer.seconds_until_due() == pytest.approx(0.3)
    clock.advance(10)
    assert buffer.seconds_until_due() == 0.0


def test_drain_resets_everything(clock):
    buffer = make_buffer(clock, max_messages=2, max_age_s=0.5)
    add(buffer, "m1", [("a", H, 1)], tag=1)
    add(buffer, "m1", [("a", H, 1)], tag=2)
    clock.advance(1)
    assert buffer.due()
    first = buffer.drain()
    assert first.first_added_at == 1000.0
    assert len(buffer) == 0
    assert not buffer.full() and not buffer.due()
    assert buffer.seconds_until_due() is None
    empty = buffer.drain()
    assert (empty.counts, empty.messages, empty.deliveries, empty.duplicates_in_batch) == ({}, {}, 0, 0)


def test_age_after_drain_starts_from_the_next_message(clock):
    buffer = make_buffer(clock, max_messages=100, max_age_s=0.5)
    add(buffer, "m1", [("a", H, 1)], tag=1)
    clock.advance(1)
    buffer.drain()
    clock.advance(5)
    add(buffer, "m2", [("a", H, 1)], tag=2)
    assert not buffer.due()
    assert buffer.seconds_until_due() == pytest.approx(0.5)
    assert buffer.drain().first_added_at == 1006.0


def test_drained_batch_is_not_changed_by_later_adds(clock):
    buffer = make_buffer(clock, max_messages=100)
    add(buffer, "m1", [("a", H, 1)], tag=1)
    batch = buffer.drain()
    add(buffer, "m2", [("a", H, 5)], tag=2)
    assert batch.counts == {("a", H): 1}
    assert set(batch.messages) == {"m1"}


def test_duplicate_id_in_a_batch_counts_as_a_delivery_but_not_in_counts(clock):
    buffer = make_buffer(clock, max_messages=3)
    assert add(buffer, "m1", [("a", H, 2)], tag=1) == 2  # the views it added
    assert add(buffer, "m1", [("a", H, 2)], tag=2) == 0  # a repeat within the batch adds none
    assert len(buffer) == 2
    add(buffer, "m2", [("a", H, 1)], tag=3)
    assert buffer.full()  # size counts deliveries: each one holds a prefetch slot until acked
    batch = buffer.drain()
    assert batch.counts == {("a", H): 3}
    assert (batch.deliveries, batch.duplicates_in_batch, batch.last_tag) == (3, 1, 3)
    assert set(batch.messages) == {"m1", "m2"}


# --------------------------------------------------------------------------- Batch


def batch_of(*messages: tuple[str, list[tuple[str, int, int]]]) -> Batch:
    """A batch of these messages; views taken out later are decoded from each delivery's body, as in a worker."""
    buffer = CountBuffer(max_messages=1000, max_age_s=1.0, clock=FakeClock())
    for tag, (message_id, views) in enumerate(messages, 1):
        buffer.add(pending(message_id, views, tag=tag), views)
    return buffer.drain()


def test_counts_without_removes_a_message_contribution():
    batch = batch_of(("m1", [("a", H, 2), ("b", H, 1)]), ("m2", [("a", H, 5)]))
    assert batch.counts_without({"m2"}) == {("a", H): 2, ("b", H): 1}


def test_counts_without_deletes_keys_that_reach_zero():
    batch = batch_of(("m1", [("a", H, 2), ("b", H, 1)]), ("m2", [("a", H, 5)]))
    assert batch.counts_without({"m1"}) == {("a", H): 5}
    assert batch.counts_without({"m1", "m2"}) == {}


def test_counts_without_handles_a_page_repeated_in_one_message():
    batch = batch_of(("m1", [("a", H, 2), ("a", H, 3)]), ("m2", [("a", H, 1)]))
    assert batch.counts == {("a", H): 6}
    assert batch.counts_without({"m1"}) == {("a", H): 1}


def test_counts_without_leaves_the_batch_unchanged():
    batch = batch_of(("m1", [("a", H, 2)]), ("m2", [("a", H, 5)]))
    batch.counts_without({"m1"})
    assert batch.counts == {("a", H): 7}
    assert batch.counts_without(set()) == {("a", H): 7}


def test_days_are_the_utc_dates_of_the_hours():
    batch = batch_of(("m1", [("a", H, 1), ("b", H + 14 * 3600, 1), ("c", H - 10 * 3600, 1), ("d", H - 11 * 3600, 1)]))
    # H is 2025-07-16T10:00Z: +14h is 2025-07-17T00:00Z, -10h is 2025-07-16T00:00Z, -11h is 2025-07-15T23:00Z.
    assert batch.days() == {date(2025, 7, 15), date(2025, 7, 16), date(2025, 7, 17)}


def test_single_is_a_batch_of_one_message():
    batch = batch_of(("m1", [("a", H, 2), ("b", H, 1)]), ("m2", [("a", H, 5), ("a", H, 1)]))
    one = batch.single("m2")
    assert one.counts == {("a", H): 6}
    assert one.messages == {"m2": batch.messages["m2"]}
    assert (one.deliveries, one.last_tag) == (1, batch.last_tag)
    assert one.views == 6


def test_visitors_are_collected_per_page_and_hour_as_sets(clock):
    buffer = make_buffer(clock, max_messages=100)
    add(buffer, "m1", [("a", H, 1, 7), ("a", H, 1, 8), ("b", H, 2)], tag=1)
    add(buffer, "m2", [("a", H, 1, 7), ("a", H + 3600, 1, -7)], tag=2)
    batch = buffer.drain()
    assert batch.counts == {("a", H): 3, ("b", H): 2, ("a", H + 3600): 1}
    assert batch.visitors == {("a", H): {7, 8}, ("a", H + 3600): {-7}}


def test_counts_without_takes_out_views_with_visitors():
    batch = batch_of(("m1", [("a", H, 1, 7)]), ("m2", [("a", H, 2)]))
    assert batch.counts_without({"m1"}) == {("a", H): 2}


def test_single_keeps_the_visitors_of_its_message():
    batch = batch_of(("m1", [("a", H, 1, 7)]), ("m2", [("a", H, 1, 8)]))
    assert batch.visitors == {("a", H): {7, 8}}
    assert batch.single("m2").visitors == {("a", H): {8}}


def test_drain_resets_visitors(clock):
    buffer = make_buffer(clock, max_messages=100)
    add(buffer, "m1", [("a", H, 1, 7)], tag=1)
    buffer.drain()
    add(buffer, "m2", [("a", H, 1)], tag=2)
    assert buffer.drain().visitors == {}
