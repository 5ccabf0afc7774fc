"""The unacknowledged set: per-queue prefetch windows, sessions that start it afresh, and what the metrics read of it."""
from __future__ import annotations

from collections import Counter

from common.broker import Delivery
from tests.fakes import pending
from worker.pending import Unacknowledged

H = 1752660000  # 2025-07-16T10:00:00Z


def delivery(tag: int, queue: str = "q.p0", published: int | None = None) -> Delivery:
    return Delivery(tag, b"{}", queue, redelivered=False, timestamp=published)


def test_received_says_when_a_queue_window_is_full():
    unacked = Unacknowledged(prefetch=2)
    assert unacked.received(delivery(1, "q.p0"), 1) is False
    assert unacked.received(delivery(2, "q.p1"), 1) is False  # windows are per queue
    assert unacked.received(delivery(3, "q.p0"), 1) is True
    assert (unacked.count("q.p0"), unacked.count("q.p1")) == (2, 1)


def test_acknowledging_a_batch_releases_what_it_held_and_reopens_its_windows():
    unacked = Unacknowledged(prefetch=2)
    for tag, queue in enumerate(("q.p0", "q.p0", "q.p1"), 1):
        unacked.received(delivery(tag, queue), 2)
    unacked.submitted(3, Counter({"q.p0": 2, "q.p1": 1}))
    unacked.received(delivery(4, "q.p1"), 1)  # the next batch, still buffered
    assert unacked.per_queue() == {"q.p0": 2, "q.p1": 2} and unacked.views == 7
    unacked.acknowledged_through(3)  # one ack with multiple=True
    assert (unacked.count("q.p0"), unacked.count("q.p1")) == (0, 1)
    assert unacked.per_queue() == {"q.p1": 1} and unacked.views == 1
    assert unacked.received(delivery(5, "q.p0"), 1) is False


def test_oldest_age_follows_the_oldest_publish_time_held():
    now = [1000.0]
    unacked = Unacknowledged(prefetch=10, clock=lambda: now[0])
    assert unacked.oldest_age() == 0.0  # nothing held
    unacked.received(delivery(1, "q.p0", 990), 1)
    unacked.received(delivery(2, "q.p1", 980), 1)  # another queue, older: deliveries interleave across queues
    unacked.submitted(2, Counter({"q.p0": 1, "q.p1": 1}))
    unacked.received(delivery(3, "q.p0"), 0)  # no timestamp: counts from when it arrived; a repeat: no views
    assert unacked.oldest_age() == 20.0
    assert unacked.per_queue() == {"q.p0": 2, "q.p1": 1} and unacked.views == 2
    now[0] = 1005.0
    unacked.acknowledged_through(2)
    assert unacked.oldest_age() == 5.0
    unacked.submitted(3, Counter({"q.p0": 1}))
    unacked.acknowledged_through(3)
    assert unacked.oldest_age() == 0.0 and unacked.per_queue() == {} and unacked.views == 0


def test_a_new_session_starts_afresh_and_outdates_the_old_one():
    unacked = Unacknowledged(prefetch=2)
    unacked.new_session()
    old = unacked.session
    unacked.received(delivery(1, "q.p0", 10), 3)
    unacked.new_session()
    assert unacked.count("q.p0") == 0 and unacked.views == 0 and unacked.oldest_age() == 0.0
    assert not unacked.is_current(old) and unacked.is_current(unacked.session)


def test_a_pending_message_decodes_its_views_again_from_the_body():
    message = pending("m1", [("a", H + 59, 2), ("b", H, 1)], tag=4, queue="q.p3")
    assert message.views() == [("a", H, 2), ("b", H, 1)]  # as the worker decoded it first: hours floored
    assert (message.delivery.tag, message.delivery.queue) == (4, "q.p3")
