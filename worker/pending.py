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


@dataclass(slots=True)
class _Held:
    """Deliveries held together: those in the buffer, or one batch submitted and not yet acknowledged."""

    oldest: float = float("inf")  # the earliest publish time among them
    views: int = 0
    last_tag: int = 0  # once submitted: the batch's last delivery tag
    by_queue: Counter[str] | None = None  # once submitted: the batch's deliveries per queue


class Unacknowledged:
    """Deliveries received on the current session and not yet acknowledged (buffered or being
    written): the prefetch window of each queue, and what the metrics endpoint reports as held
    (worker/metrics.py: freshness, own unacknowledged count, views held).

    Kept per batch, not per delivery: receiving a delivery adds to the open group (the
    buffer's), submitting a batch closes it, and the batch's acknowledgement releases it.
    The consume loop writes; the metrics endpoint reads on its own thread, so its reads copy
    first and the per-delivery path takes no lock.
    """

    def __init__(self, prefetch: int, clock: Callable[[], float] = time.time) -> None:
        self._prefetch = prefetch
        self._clock = clock
        self._per_queue: Counter[str] = Counter()
        self._open = _Held()
        self._submitted: deque[_Held] = deque()  # in tag order
        self.session = 0  # which consumer session the deliveries came from

    def new_session(self) -> None:
        """A new connection: the broker has taken back whatever the old one held."""
        self.session += 1
        self._per_queue.clear()
        self._open = _Held()
        self._submitted.clear()

    def received(self, delivery: Delivery, views: int) -> bool:
        """Hold a delivery (`views`: those it added); True when its queue's prefetch window is now full."""
        held = self._open
        held.views += views
        # Without an AMQP timestamp, a message counts as published when it arrived.
        published = delivery.timestamp or self._clock()
        if published < held.oldest:
            held.oldest = published
        self._per_queue[delivery.queue] += 1
        return self._per_queue[delivery.queue] >= self._prefetch

    def submitted(self, last_tag: int, by_queue: Counter[str]) -> None:
        """The buffer became a batch: what it held waits for that batch's acknowledgement."""
        held, self._open = self._open, _Held()
        held.last_tag, held.by_queue = last_tag, by_queue
        self._submitted.append(held)

    def acknowledged_through(self, tag: int) -> None:
        """One ack with multiple=True: every submitted batch up to `tag` is released."""
        while self._submitted and self._submitted[0].last_tag <= tag:
            released = self._submitted.popleft()
            assert released.by_queue is not None
            self._per_queue.subtract(released.by_queue)

    def is_current(self, session: int) -> bool:
        return session == self.session

    def count(self, queue: str) -> int:
        return self._per_queue[queue]

    def per_queue(self) -> dict[str, int]:
        return {queue: count for queue, count in dict(self._per_queue).items() if count > 0}

    @property
    def views(self) -> int:
        return sum(held.views for held in self._all())

    def oldest_age(self) -> float:
        """Seconds since the oldest held delivery was published; 0 when nothing is held."""
        oldest = min((held.oldest for held in self._all()), default=float("inf"))
        return 0.0 if oldest == float("inf") else max(0.0, self._clock() - oldest)

    def _all(self) -> list[_Held]:
        return [self._open, *list(self._submitted)]
