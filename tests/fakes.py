"""Fakes of our own interfaces, for unit tests of the worker's loop: a clock, a broker, a store.

They fake what the worker asks of the world (worker.consumer.Session, worker.flusher.BatchStore),
never pika or SQLAlchemy; the real things run the same paths in tests/integration and tests/faults.
"""
from __future__ import annotations

import threading
import uuid
from collections import Counter, deque
from typing import Callable

from sqlalchemy.exc import DBAPIError, OperationalError

from common.broker import ConnectionLost, Delivery
from common.messages import encode
from common.views import View
from worker.buffer import Batch
from worker.pending import Pending
from worker.store import Applied


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def pending(message_id: str, views: list[View], tag: int = 1, queue: str = "q.p0") -> Pending:
    """A buffered message as the consume loop makes one: its id and the delivery that carried it.

    A short id such as "m1" (easier to read in a test) is kept as the id; the body then
    carries a UUID made from it, as a body must.
    """
    body_id = message_id if len(message_id) == 36 else str(uuid.uuid5(uuid.NAMESPACE_OID, message_id))
    return Pending(message_id, Delivery(tag, encode(body_id, views), queue, redelivered=False))


class _PgError(Exception):
    def __init__(self, pgcode: str, message: str) -> None:
        super().__init__(message)
        self.pgcode = pgcode


def database_error(pgcode: str, message: str) -> DBAPIError:
    """What SQLAlchemy raises for a PostgreSQL error with this SQLSTATE (22xxx: bad data, 57P01: shutting down...)."""
    kind = OperationalError if pgcode[:2] in ("08", "53", "57") else DBAPIError
    return kind("INSERT ...", {}, _PgError(pgcode, message))


class FakeStore:
    """worker.flusher.BatchStore in memory, with exactly-once by id; fails as told."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.applied_ids: set[str] = set()
        self.failures: deque[BaseException] = deque()  # raised by the next calls to apply, in order
        self.failing: BaseException | None = None  # raised by every call while set
        self.rejected_pages: set[str] = set()  # data the "database" refuses (a CHECK, say)
        self.calls = 0

    def apply(self, batch: Batch) -> Applied:
        self.calls += 1
        if self.failing is not None:
            raise self.failing
        if self.failures:
            raise self.failures.popleft()
        if any(page in self.rejected_pages for page, _hour in batch.counts):
            raise database_error("22021", "invalid byte sequence for encoding")
        duplicates = {message_id for message_id in batch.messages if message_id in self.applied_ids}
        counts = batch.counts_without(duplicates)
        self.applied_ids |= set(batch.messages)
        self.counts.update(counts)
        return Applied(len(batch.messages) - len(duplicates), len(duplicates) + batch.duplicates_in_batch, sum(counts.values()), len(counts))


class FakeBroker:
    """Partition queues in memory, and worker.consumer.Session over them.

    Messages wait in `ready` until a session's pump() delivers them; a delivery stays the
    session's until acknowledged or dead-lettered, and goes back to `ready` (redelivered)
    when its session closes or loses its connection, as with RabbitMQ.
    """

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.ready: deque[tuple[bytes, str, bool]] = deque()  # body, queue, redelivered
        self.dead: list[tuple[bytes, str]] = []  # body, reason
        self.acks: list[int] = []  # every ack_through tag, across sessions
        self.sessions: list[FakeSession] = []
        self.refuse_connections = 0  # the next opens fail as if the broker were down
        self.prefetch = 1000  # deliveries a session holds unacknowledged at most

    def publish(self, message_id: str, views: list[View], queue: str = "q.p0") -> None:
        self.ready.append((encode(message_id, views), queue, False))

    def publish_body(self, body: bytes, queue: str = "q.p0") -> None:
        self.ready.append((body, queue, False))

    def open(self, on_delivery: Callable[[Delivery], None]) -> FakeSession:
        if self.refuse_connections:
            self.refuse_connections -= 1
            raise ConnectionLost("fake broker: connection refused")
        session = FakeSession(self, on_delivery)
        self.sessions.append(session)
        return session

    @property
    def unacknowledged(self) -> int:
        return sum(len(session.unacked) for session in self.sessions)


class FakeSession:
    IDLE_REAL_WAIT_S = 0.01  # real time an idle pump waits, so the flusher thread gets to run

    def __init__(self, broker: FakeBroker, on_delivery: Callable[[Delivery], None]) -> None:
        self._broker = broker
        self._on_delivery = on_delivery
        self._woken = threading.Event()
        self._next_tag = 1
        self.unacked: dict[int, tuple[bytes, str]] = {}
        self.lose_connection = False  # the next pump raises ConnectionLost
        self.closed = False

    def pump(self, time_limit: float) -> None:
        if self.lose_connection:
            self._requeue()
            raise ConnectionLost("fake broker: connection reset")
        if not self._broker.ready:
            self._woken.wait(self.IDLE_REAL_WAIT_S)
            self._woken.clear()
            self._broker.clock.advance(time_limit)
            return
        while self._broker.ready and len(self.unacked) < self._broker.prefetch:
            body, queue, redelivered = self._broker.ready.popleft()
            tag, self._next_tag = self._next_tag, self._next_tag + 1
            self.unacked[tag] = (body, queue)
            self._on_delivery(Delivery(tag, body, queue, redelivered))

    def wake(self) -> None:
        self._woken.set()

    def ack_through(self, delivery_tag: int) -> None:
        self._broker.acks.append(delivery_tag)
        for tag in [tag for tag in self.unacked if tag <= delivery_tag]:
            del self.unacked[tag]

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self._broker.dead.append((delivery.body, reason))
        del self.unacked[delivery.tag]

    def close(self) -> None:
        self.closed = True
        self._requeue()

    def _requeue(self) -> None:
        for body, queue in self.unacked.values():
            self._broker.ready.append((body, queue, True))
        self.unacked.clear()
