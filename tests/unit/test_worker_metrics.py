"""What a worker holds unacknowledged: the freshness and own-unacked figures, with an injected clock."""
from __future__ import annotations

from worker.metrics import Held


def test_oldest_age_follows_the_oldest_publish_time_held():
    now = [1000.0]
    held = Held(clock=lambda: now[0])
    assert held.oldest_age() == 0.0  # nothing held
    held.add(1, "q.p0", 990)
    held.add(2, "q.p1", 980)  # another queue, older: deliveries interleave across queues
    held.add(3, "q.p0", None)  # no timestamp: counts from when it arrived
    assert held.oldest_age() == 20.0
    assert held.per_queue() == {"q.p0": 2, "q.p1": 1}
    now[0] = 1005.0
    held.acknowledged_through(2)  # one ack with multiple=True covers every tag up to 2
    assert held.oldest_age() == 5.0
    assert held.per_queue() == {"q.p0": 1}
    held.acknowledged_through(3)
    assert held.oldest_age() == 0.0 and held.per_queue() == {}


def test_a_new_session_forgets_what_the_old_one_held():
    held = Held(clock=lambda: 50.0)
    held.add(7, "q.p0", 10)
    held.clear()
    assert held.oldest_age() == 0.0 and held.per_queue() == {}
