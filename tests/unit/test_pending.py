"""The unacknowledged set: per-queue prefetch windows, and sessions that start it afresh."""
from __future__ import annotations

from collections import Counter

from tests.fakes import pending
from worker.pending import Unacknowledged

H = 1752660000  # 2025-07-16T10:00:00Z


def test_received_says_when_a_queue_window_is_full():
    unacked = Unacknowledged(prefetch=2)
    assert unacked.received("q.p0") is False
    assert unacked.received("q.p1") is False  # windows are per queue
    assert unacked.received("q.p0") is True
    assert (unacked.count("q.p0"), unacked.count("q.p1")) == (2, 1)


def test_acknowledging_a_batch_reopens_its_queues_windows():
    unacked = Unacknowledged(prefetch=2)
    for queue in ("q.p0", "q.p0", "q.p1"):
        unacked.received(queue)
    unacked.acknowledged(Counter({"q.p0": 2, "q.p1": 1}))
    assert (unacked.count("q.p0"), unacked.count("q.p1")) == (0, 0)
    assert unacked.received("q.p0") is False


def test_a_new_session_starts_afresh_and_outdates_the_old_one():
    unacked = Unacknowledged(prefetch=2)
    unacked.new_session()
    old = unacked.session
    unacked.received("q.p0")
    unacked.new_session()
    assert unacked.count("q.p0") == 0
    assert not unacked.is_current(old) and unacked.is_current(unacked.session)


def test_a_pending_message_decodes_its_views_again_from_the_body():
    message = pending("m1", [("a", H + 59, 2), ("b", H, 1)], tag=4, queue="q.p3")
    assert message.views() == [("a", H, 2), ("b", H, 1)]  # as the worker decoded it first: hours floored
    assert (message.delivery.tag, message.delivery.queue) == (4, "q.p3")
