"""The worker's in-memory batch: a plain object with an injected clock, no I/O.

Counts are collapsed per (page, hour) as messages arrive, so a flush writes one row
per page and hour however many messages carried it. For each message only its pending
delivery (worker/pending.py, whose body is compact JSON) is kept, not its decoded views:
the rare flush that finds some ids already applied decodes their views again to take
them out. Keeping decoded views (about four times the size of the JSON) made a worker
under heavy multi-view traffic grow to hundreds of megabytes.

Visitor ids (message format v2) are collected per (page, hour) as a set; the store turns
each set into a sketch. Unlike counts they need no exactly-once care: adding a visitor to
a sketch twice changes nothing, so a duplicate message's visitors may stay in the batch.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Callable

from common.views import View, ViewCounts, VisitorIds
from worker.pending import Pending

_EPOCH_DAY = date(1970, 1, 1)


@dataclass
class Batch:
    """What one flush writes: collapsed counts, the pending messages they came from, the last delivery tag."""

    counts: ViewCounts
    messages: dict[str, Pending]  # by message id
    last_tag: int
    deliveries: int
    duplicates_in_batch: int = 0
    first_added_at: float = 0.0
    by_queue: Counter[str] = field(default_factory=Counter)  # deliveries per queue, for the prefetch windows
    visitors: VisitorIds = field(default_factory=dict)  # visitor ids per (page, hour), for those that have any

    @property
    def views(self) -> int:
        return sum(self.counts.values())

    def counts_without(self, message_ids: set[str]) -> ViewCounts:
        """The counts as if the messages with these ids had never arrived."""
        counts = dict(self.counts)
        for message_id in message_ids:
            for page, hour, count, *_visitor in self.messages[message_id].views():
                remaining = counts[(page, hour)] - count
                if remaining:
                    counts[(page, hour)] = remaining
                else:
                    del counts[(page, hour)]
        return counts

    def days(self) -> set[date]:
        return {_EPOCH_DAY + timedelta(days=day) for day in {hour // 86_400 for _page, hour in self.counts}}

    def single(self, message_id: str) -> Batch:
        """A batch of just one of this batch's messages (to find which message a failure belongs to)."""
        pending = self.messages[message_id]
        counts: ViewCounts = {}
        visitors: VisitorIds = {}
        _collapse(pending.views(), counts, visitors)
        return Batch(counts, {message_id: pending}, self.last_tag, 1, visitors=visitors)


def _collapse(views: list[View], counts: ViewCounts, visitors: VisitorIds) -> int:
    """Add the views to the counts (and their visitors); how many views that was."""
    total = 0
    for view in views:
        key = (view[0], view[1])
        counts[key] = counts.get(key, 0) + view[2]
        total += view[2]
        if len(view) == 4:
            ids = visitors.get(key)
            if ids is None:
                ids = visitors[key] = set()
            ids.add(view[3])  # type: ignore[misc]
    return total


@dataclass
class CountBuffer:
    max_messages: int
    max_age_s: float
    clock: Callable[[], float] = time.monotonic
    _counts: ViewCounts = field(default_factory=dict, init=False)
    _visitors: VisitorIds = field(default_factory=dict, init=False)
    _messages: dict[str, Pending] = field(default_factory=dict, init=False)
    _by_queue: Counter[str] = field(default_factory=Counter, init=False)
    _deliveries: int = field(default=0, init=False)
    _duplicates: int = field(default=0, init=False)
    _last_tag: int = field(default=0, init=False)
    _first_added_at: float | None = field(default=None, init=False)

    def add(self, pending: Pending, views: list[View]) -> int:
        """Buffer one delivered message and its decoded views; how many views that added (none if the same id is already in this batch)."""
        if self._first_added_at is None:
            self._first_added_at = self.clock()
        self._deliveries += 1
        self._last_tag = pending.delivery.tag
        self._by_queue[pending.delivery.queue] += 1
        if pending.message_id in self._messages:
            self._duplicates += 1
            return 0
        self._messages[pending.message_id] = pending
        return _collapse(views, self._counts, self._visitors)

    def __len__(self) -> int:
        return self._deliveries

    def full(self) -> bool:
        return self._deliveries >= self.max_messages

    def due(self) -> bool:
        return self.full() or (self._first_added_at is not None and self.clock() - self._first_added_at >= self.max_age_s)

    def seconds_until_due(self) -> float | None:
        """None while empty (nothing will ever be due), else how long until the age limit."""
        if self._first_added_at is None:
            return None
        if self.full():
            return 0.0
        return max(0.0, self._first_added_at + self.max_age_s - self.clock())

    def drain(self) -> Batch:
        batch = Batch(
            self._counts, self._messages, self._last_tag, self._deliveries, self._duplicates,
            self._first_added_at or 0.0, self._by_queue, self._visitors,
        )
        self._counts, self._visitors, self._messages, self._by_queue = {}, {}, {}, Counter()
        self._deliveries = self._duplicates = 0
        self._first_added_at = None
        return batch
