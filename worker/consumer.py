"""The consume loop: buffer deliveries, flush by size or age, acknowledge only after the commit.

pika is not thread-safe, so everything that touches the broker runs on this loop's
thread: delivery callbacks run inside ``session.pump()``, and time-based flushing is the
loop checking ``buffer.due()`` after each pump, whose time limit is how long the oldest
buffered message may still wait. Writing is the flusher thread's (worker/flusher.py): a
due buffer is handed over as a batch, and once the flusher reports it committed, this
loop acknowledges it with one ``ack_through`` of its last delivery tag.

Failure handling, in one place:
- PostgreSQL unavailable: the flusher retries with backoff, keeping its batch; nothing is
  acknowledged, so the prefetch bounds what the worker holds; this loop keeps pumping,
  which keeps the broker connection alive.
- Broker connection lost: the buffer is dropped (its messages were not acknowledged and
  will be redelivered; any that were already committed are skipped by id), batches still
  being written are not acknowledged (their session is gone), then reconnect.
- Poison: a body that is not a valid message is dead-lettered with the reason at once;
  a message whose data the database rejects is dead-lettered with the database's reason.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from common import broker
from common.broker import ConnectionLost, ConsumerSession, Delivery, Topology
from common.config import Settings
from common.logging import fields
from common.messages import MalformedMessage, decode
from common.retry import until_stopped
from worker import metrics
from worker.buffer import CountBuffer
from worker.flusher import BatchStore, Flusher, Written
from worker.pending import Pending, Unacknowledged
from worker.store import Applied

log = logging.getLogger(__name__)


class Session(Protocol):
    """What the loop needs of a broker connection: common.broker.ConsumerSession, or a test's fake."""

    def pump(self, time_limit: float) -> None: ...
    def wake(self) -> None: ...
    def ack_through(self, delivery_tag: int) -> None: ...
    def dead_letter(self, delivery: Delivery, reason: str) -> None: ...
    def close(self) -> None: ...


OpenSession = Callable[[Callable[[Delivery], None]], Session]  # opens a session that calls back on each delivery


def broker_sessions(settings: Settings) -> OpenSession:
    """Sessions on the partition queues this worker owns (WORKER_PARTITIONS)."""
    topology = Topology.from_settings(settings)

    def open_session(on_delivery: Callable[[Delivery], None]) -> Session:
        session = ConsumerSession(settings.amqp_url, topology, settings.worker_partitions, settings.prefetch, on_delivery)
        session.open()
        return session

    return open_session


IDLE_WAIT_S = 0.5  # how often an idle loop looks at the stop flag
SHUTDOWN_GRACE_S = 15.0  # how long a stopping worker keeps retrying its last flush
STATS_EVERY_S = 30.0


@dataclass
class Stats:
    deliveries: int = 0
    messages: int = 0
    views: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    expired: int = 0
    flushes: int = 0

    def record(self, applied: Applied, deliveries: int) -> None:
        self.deliveries += deliveries
        self.messages += applied.messages
        self.views += applied.views
        self.duplicates += applied.duplicates
        self.expired += applied.expired
        self.flushes += 1


class Consumer:
    def __init__(
        self,
        settings: Settings,
        store: BatchStore,
        stop: threading.Event,
        *,
        clock: Callable[[], float] = time.monotonic,
        open_session: OpenSession | None = None,
    ) -> None:
        self._settings = settings
        self._stop = stop
        self._clock = clock
        self._open = open_session or broker_sessions(settings)
        self._buffer = CountBuffer(settings.batch_size, settings.flush_interval_ms / 1000, clock)
        self._unacked = Unacknowledged(settings.prefetch)
        self._session: Session | None = None
        self._stopping_since: float | None = None
        self._flusher = Flusher(store, give_up=self._shutdown_grace_over, on_written=self._wake)
        self.stats = Stats()
        self._stats_logged_at = clock()

    @property
    def held(self) -> Unacknowledged:
        """What this worker holds unacknowledged, for the metrics endpoint to read when scraped."""
        return self._unacked

    def run(self) -> bool:
        """Consume until the stop flag is set, then write and acknowledge what is held.

        True when everything received was written and acknowledged (or left unacknowledged
        for redelivery because the connection was gone); False when stopping gave up on
        writes that PostgreSQL would not take.
        """
        clean = True
        try:
            while not self._stop.is_set():
                session = self._connect()
                if session is None:
                    break
                try:
                    clean = self._consume(session)
                except ConnectionLost as exc:
                    self._forget_buffer(str(exc))
                finally:
                    session.close()
                    self._session = None
        finally:
            self._flusher.close()
            self._log_stats(force=True)
        return clean

    def _connect(self) -> Session | None:
        try:
            return until_stopped(self._open_session, what="consumer connect", is_transient=broker.is_transient, stop=self._stop)
        except ConnectionLost:
            if self._stop.is_set():
                return None
            raise

    def _open_session(self) -> Session:
        session = self._open(self._on_delivery)
        self._session = session
        self._unacked.new_session()
        log.info("consuming", extra=fields(partitions=",".join(map(str, self._settings.worker_partitions)), prefetch=self._settings.prefetch))
        return session

    def _consume(self, session: Session) -> bool:
        while not self._stop.is_set():
            wait = self._buffer.seconds_until_due()
            session.pump(IDLE_WAIT_S if wait is None else min(wait, IDLE_WAIT_S))
            self._acknowledge_written(session)
            if self._buffer.due():
                self._submit()
            self._log_stats()
        # Stopping: deliveries not yet dispatched stay unacknowledged and return to the
        # queue when the connection closes; what is buffered is written and acknowledged.
        self._shutdown_grace_over()  # starts the grace period
        if len(self._buffer):
            self._submit()
        while self._flusher.pending and not self._shutdown_grace_over():
            session.pump(0.1)
            self._acknowledge_written(session)
        if self._flusher.pending:
            log.error("stopped before PostgreSQL took the last batches; they stay unacknowledged and will be redelivered")
            return False
        return True

    def _on_delivery(self, delivery: Delivery) -> None:
        metrics.consumed.inc()
        try:
            message = decode(delivery.body)
        except MalformedMessage as exc:
            self._dead_letter(delivery, f"malformed message: {exc}")
            return
        views = self._buffer.add(Pending(message.id, delivery), message.views)
        window_full = self._unacked.received(delivery, views)
        # A queue whose prefetch window is full sends nothing more until we acknowledge:
        # holding the buffer longer would only add latency.
        if self._buffer.full() or window_full:
            self._submit()

    def _submit(self) -> None:
        if len(self._buffer):
            batch = self._buffer.drain()
            self._unacked.submitted(batch.last_tag, batch.by_queue)
            self._flusher.submit(batch, self._unacked.session)

    def _wake(self) -> None:
        """Called on the flusher's thread: end the loop's wait so it acknowledges promptly."""
        session = self._session
        if session is not None:
            session.wake()

    def _acknowledge_written(self, session: Session) -> None:
        for written in self._flusher.completed():
            if not self._unacked.is_current(written.session):
                continue  # from a connection that is gone: its messages come back and are skipped by id
            if written.error is not None:
                raise written.error  # stopping during an outage, or a bug: leave unacknowledged
            for rejected in written.rejected:
                self._dead_letter(rejected.pending.delivery, rejected.reason)
            session.ack_through(written.batch.last_tag)
            self._unacked.acknowledged_through(written.batch.last_tag)
            self._record(written)

    def _record(self, written: Written) -> None:
        applied = written.applied
        assert applied is not None
        self.stats.record(applied, written.batch.deliveries)
        metrics.flushed(applied, written.batch.by_queue)
        log.debug(
            "flushed",
            extra=fields(deliveries=written.batch.deliveries, messages=applied.messages, duplicates=applied.duplicates, rows=applied.rows, views=applied.views),
        )

    def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        assert self._session is not None
        self._session.dead_letter(delivery, reason)
        self.stats.dead_lettered += 1
        metrics.dead_lettered.inc()
        log.warning("dead-lettered a message", extra=fields(queue=delivery.queue, tag=delivery.tag, reason=reason[:300]))

    def _forget_buffer(self, why: str) -> None:
        dropped = self._buffer.drain()
        log.warning(
            "lost the broker connection; reconnecting",
            extra=fields(reason=why, unacknowledged_dropped=dropped.deliveries, batches_in_flight=self._flusher.pending),
        )

    def _shutdown_grace_over(self) -> bool:
        """Give up on writes only once stopping and the grace period has passed."""
        if not self._stop.is_set():
            return False
        if self._stopping_since is None:
            self._stopping_since = self._clock()
        return self._clock() - self._stopping_since > SHUTDOWN_GRACE_S

    def _log_stats(self, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._stats_logged_at < STATS_EVERY_S:
            return
        self._stats_logged_at = now
        s = self.stats
        log.info(
            "worker totals",
            extra=fields(
                deliveries=s.deliveries, messages=s.messages, views=s.views, duplicates=s.duplicates,
                dead_lettered=s.dead_lettered, expired=s.expired, flushes=s.flushes,
            ),
        )
