"""The consume loop: buffer deliveries, flush by size or age, acknowledge only after the commit.

Everything runs on one thread (pika is not thread-safe): delivery callbacks run inside
``session.pump()``, and time-based flushing is the loop checking ``buffer.due()`` after
each pump, whose time limit is how long the oldest buffered message may still wait.

Failure handling, in one place:
- PostgreSQL unavailable: the flush retries with backoff, keeping the batch and not
  acknowledging; waits go through ``session.sleep`` so heartbeats keep the broker
  connection alive. Unacknowledged messages are bounded by the prefetch.
- Broker connection lost: the buffer is dropped (its messages were not acknowledged and
  will be redelivered; any that were already committed are skipped by id), then reconnect.
- Poison: a body that is not a valid message is dead-lettered with the reason at once;
  a message whose data the database rejects is found by flushing one by one, and
  dead-lettered with the database's reason.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from sqlalchemy.exc import DBAPIError

from common import broker, db
from common.broker import ConnectionLost, ConsumerSession, Delivery, Topology
from common.config import Settings
from common.logging import fields
from common.messages import MalformedMessage, decode
from common.retry import call_with_retry
from worker.buffer import Batch, CountBuffer
from worker.store import Applied, Store, is_data_error

log = logging.getLogger(__name__)

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


SessionFactory = Callable[[Callable[[Delivery], None]], ConsumerSession]


class Consumer:
    def __init__(self, settings: Settings, store: Store, stop: threading.Event, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._store = store
        self._stop = stop
        self._clock = clock
        self._topology = Topology(settings.queue_prefix, settings.num_partitions, settings.delivery_limit)
        self._buffer = CountBuffer(settings.batch_size, settings.flush_interval_ms / 1000, clock)
        self._session: ConsumerSession | None = None
        self._flushing = False
        self._stopping_since: float | None = None
        self.stats = Stats()
        self._stats_logged_at = clock()

    def run(self) -> None:
        """Consume until the stop flag is set; then flush, acknowledge and return."""
        while not self._stop.is_set():
            try:
                session = call_with_retry(
                    self._open_session,
                    what="consumer connect",
                    is_transient=broker.is_transient,
                    max_attempts=None,
                    initial_wait=0.2,
                    max_wait=5.0,
                    sleep=self._stop.wait,
                    give_up=self._stop.is_set,
                )
            except ConnectionLost:
                if self._stop.is_set():
                    break
                raise
            try:
                self._consume(session)
            except ConnectionLost as exc:
                self._forget_buffer(str(exc))
            finally:
                session.close()
                self._session = None
        self._log_stats(force=True)

    def _open_session(self) -> ConsumerSession:
        prefetch = self._settings.batch_size  # per partition: enough to fill a batch from one queue
        session = ConsumerSession(self._settings.amqp_url, self._topology, self._settings.worker_partitions, prefetch, self._on_delivery)
        session.open()
        self._session = session
        log.info("consuming", extra=fields(partitions=",".join(map(str, self._settings.worker_partitions)), prefetch=prefetch))
        return session

    def _consume(self, session: ConsumerSession) -> None:
        while not self._stop.is_set():
            wait = self._buffer.seconds_until_due()
            session.pump(IDLE_WAIT_S if wait is None else min(wait, IDLE_WAIT_S))
            if self._buffer.due() and not self._flushing:
                self._flush()
            self._log_stats()
        # Stopping: deliveries not yet dispatched stay unacknowledged and return to the
        # queue when the connection closes; what is buffered is written and acknowledged.
        self._shutdown_grace_over()  # starts the grace period
        if len(self._buffer):
            self._flush()

    def _on_delivery(self, delivery: Delivery) -> None:
        try:
            message = decode(delivery.body)
        except MalformedMessage as exc:
            self._dead_letter(delivery, f"malformed message: {exc}")
            return
        self._buffer.add(message.id, message.views, delivery.tag, delivery)
        if self._buffer.full() and not self._flushing:
            self._flush()

    def _flush(self) -> None:
        session = self._session
        assert session is not None
        batch = self._buffer.drain()
        self._flushing = True
        try:
            started = self._clock()
            applied = call_with_retry(
                lambda: self._apply(batch),
                what="flush",
                is_transient=db.is_transient,
                max_attempts=None,
                initial_wait=0.2,
                max_wait=10.0,
                sleep=session.sleep,
                give_up=self._shutdown_grace_over,
            )
            session.ack_through(batch.last_tag)
        finally:
            self._flushing = False
        self.stats.record(applied, batch.deliveries)
        log.debug(
            "flushed",
            extra=fields(deliveries=batch.deliveries, messages=applied.messages, duplicates=applied.duplicates, rows=applied.rows, views=applied.views, ms=round((self._clock() - started) * 1000, 1)),
        )

    def _apply(self, batch: Batch) -> Applied:
        try:
            return self._store.apply(batch)
        except DBAPIError as exc:
            if not is_data_error(exc):
                raise
            log.warning("database rejected a batch; finding the message at fault", extra=fields(error=str(exc.orig).strip()))
            return self._apply_one_by_one(batch)

    def _apply_one_by_one(self, batch: Batch) -> Applied:
        messages = duplicates = views = rows = expired = 0
        for message_id, (_views, delivery) in batch.messages.items():
            try:
                applied = self._store.apply(batch.single(message_id))
            except DBAPIError as exc:
                if not is_data_error(exc):
                    raise
                self._dead_letter(delivery, f"rejected by the database: {str(exc.orig).strip()}")
                continue
            messages, duplicates = messages + applied.messages, duplicates + applied.duplicates
            views, rows, expired = views + applied.views, rows + applied.rows, expired + applied.expired
        return Applied(messages, duplicates + batch.duplicates_in_batch, views, rows, expired)

    def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        assert self._session is not None
        self._session.dead_letter(delivery, reason)
        self.stats.dead_lettered += 1
        log.warning("dead-lettered a message", extra=fields(queue=delivery.queue, tag=delivery.tag, reason=reason[:300]))

    def _forget_buffer(self, why: str) -> None:
        dropped = self._buffer.drain()
        log.warning(
            "lost the broker connection; reconnecting",
            extra=fields(reason=why, unacknowledged_dropped=dropped.deliveries),
        )

    def _shutdown_grace_over(self) -> bool:
        """Give up retrying a flush only once stopping and the grace period has passed."""
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
