"""Deliveries between their arrival and their acknowledgement.

A delivery is *pending* from the moment the consume loop buffers it until the batch that
carries it has committed and been acknowledged (or the delivery was dead-lettered). Three
types say what the loop, the buffer and the flusher hand each other about it:

- ``Pending``: one buffered message, with the delivery to acknowledge or dead-letter and
  the body its views can be decoded from again;
- ``Rejected``: a pending message the database refused, and its reason;
- ``Unacknowledged``: the one owner of the set of deliveries not yet acknowledged, per
  queue and per consumer session. Acknowledgements are only valid on the session that
  received the delivery, so each session starts the set afresh and a batch from an older
  one is recognised (its messages come back from the broker and are skipped by id).
"""
from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from common.messages import decode
from common.views import View

if TYPE_CHECKING:
    from common.broker import Delivery


@dataclass(frozen=True, slots=True)
class Pending:
    message_id: str
    delivery: Delivery

    def views(self) -> list[View]:
        """Its views, decoded again from the body: buffers keep the compact JSON, not decoded views."""
        return decode(self.delivery.body).views


@dataclass(frozen=True, slots=True)
class Rejected:
    pending: Pending
    reason: str


class Unacknowledged:
    """Deliveries received on the current session and not yet acknowledged (buffered or being
    written), in delivery-tag order: the prefetch window of each queue, and what the metrics
    endpoint reports as held (worker/metrics.py: freshness, own unacknowledged, views held).

    The consume loop writes; the metrics endpoint reads on its own thread. Its reads copy the
    deque or the dict, each one C call under the GIL, so the per-delivery path takes no lock.
    """

    def __init__(self, prefetch: int, clock: Callable[[], float] = time.time) -> None:
        self._prefetch = prefetch
        self._clock = clock
        self._held: deque[tuple[int, str, float, int]] = deque()  # (tag, queue, published at, views)
        self._per_queue: Counter[str] = Counter()
        self.views = 0  # views of the held deliveries (none for a repeat within a batch)
        self.session = 0  # which consumer session the deliveries came from

    def new_session(self) -> None:
        """A new connection: the broker has taken back whatever the old one held."""
        self.session += 1
        self._held.clear()
        self._per_queue.clear()
        self.views = 0

    def received(self, delivery: Delivery, views: int) -> bool:
        """Hold a delivery; True when its queue's prefetch window is now full (it sends nothing more until an ack)."""
        # Without an AMQP timestamp, a message counts as published when it arrived.
        self._held.append((delivery.tag, delivery.queue, delivery.timestamp or self._clock(), views))
        self.views += views
        self._per_queue[delivery.queue] += 1
        return self._per_queue[delivery.queue] >= self._prefetch

    def is_current(self, session: int) -> bool:
        return session == self.session

    def acknowledged_through(self, tag: int) -> None:
        """One ack with multiple=True: every delivery up to `tag` is released."""
        while self._held and self._held[0][0] <= tag:
            _tag, queue, _published, views = self._held.popleft()
            self._per_queue[queue] -= 1
            self.views -= views

    def count(self, queue: str) -> int:
        return self._per_queue[queue]

    def per_queue(self) -> dict[str, int]:
        return {queue: count for queue, count in dict(self._per_queue).items() if count}

    def oldest_age(self) -> float:
        """Seconds since the oldest held delivery was published; 0 when nothing is held."""
        oldest = min((published for _tag, _queue, published, _views in list(self._held)), default=None)
        return 0.0 if oldest is None else max(0.0, self._clock() - oldest)
