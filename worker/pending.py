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

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    """Deliveries received on the current session and not yet acknowledged (buffered or being written)."""

    def __init__(self, prefetch: int) -> None:
        self._prefetch = prefetch
        self._per_queue: Counter[str] = Counter()
        self.session = 0  # which consumer session the deliveries came from

    def new_session(self) -> None:
        """A new connection: the broker has taken back whatever the old one held."""
        self.session += 1
        self._per_queue.clear()

    def received(self, queue: str) -> bool:
        """Count a delivery; True when the queue's prefetch window is now full (it sends nothing more until an ack)."""
        self._per_queue[queue] += 1
        return self._per_queue[queue] >= self._prefetch

    def is_current(self, session: int) -> bool:
        return session == self.session

    def acknowledged(self, by_queue: Counter[str]) -> None:
        self._per_queue.subtract(by_queue)

    def count(self, queue: str) -> int:
        return self._per_queue[queue]
