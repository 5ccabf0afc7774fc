"""Admission: which partition queues refused a message lately, so the API stops sending them more.

A partition queue at its bound (the policy's max-length or max-length-bytes with
reject-publish) answers every publish with a nack. The publisher remembers each queue
that nacked for a short cool-down; while it lasts, the API refuses requests that would
publish to that queue with 503 before publishing anything, so a multi request touching
several partitions is rarely half stored. The first request after the cool-down probes
the queue again: an ack clears it at once, another nack starts a new cool-down.

Why this and not polling queue depths: it costs no round trip, it sees exactly the
broker's own verdict (messages and bytes, whatever the policy says now, including one
changed a second ago), and it needs no management rights. The cost: at most one probing
request per queue and cool-down per API process is refused by a nack instead.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable

from common.broker.connection import PublishRefused

COOLDOWN_S = 1.0


class Overloaded(PublishRefused):
    """A partition queue is at its bound: RabbitMQ refused a message for it (nack), now or moments ago."""

    def __init__(self, queues: Iterable[str]) -> None:
        self.queues = sorted(set(queues))
        super().__init__(f"RabbitMQ refused a message (nack): partition queue {', '.join(self.queues)} is full until the workers catch up")


class Refusals:
    """Queues that nacked within the cool-down. Written by the publisher's I/O thread, read by request threads.

    Single dict operations are atomic in CPython, which is all the sharing needs: a reader
    sees a queue either refusing or not, and an answer one instant stale is as good.
    """

    def __init__(self, cooldown_s: float = COOLDOWN_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._until: dict[str, float] = {}

    def refused(self, queue: str) -> None:
        self._until[queue] = self._clock() + self._cooldown_s

    def accepted(self, queue: str) -> None:
        if self._until:
            self._until.pop(queue, None)

    def refusing(self, queues: Iterable[str]) -> list[str]:
        if not self._until:
            return []
        now = self._clock()
        return [queue for queue in queues if self._until.get(queue, 0.0) > now]
