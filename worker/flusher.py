"""Writing batches on a thread of their own, so the consume loop keeps receiving meanwhile.

Profiling the drain showed a third of the worker's time in flushes, with pika idle
while PostgreSQL worked. Here the writes overlap with consumption. The thread touches
only the store; pika stays on the consume loop's thread, which acknowledges each batch
once `completed()` reports it committed. Batches are written one at a time in the order
submitted, so acknowledgements (`ack_through` the last tag) stay in order.

While PostgreSQL is unavailable a batch is retried with backoff until it commits or the
worker is stopping; meanwhile nothing is acknowledged, so RabbitMQ stops delivering once
the prefetch is used up and the worker's memory stays bounded.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Protocol

from sqlalchemy.exc import DBAPIError

from common import db
from common.logging import fields
from common.retry import until_stopped
from worker import metrics
from worker.buffer import Batch
from worker.pending import Rejected
from worker.store import Applied, is_data_error

log = logging.getLogger(__name__)


class BatchStore(Protocol):
    """What the flusher writes with: worker.store.Store, or a test's fake."""

    def apply(self, batch: Batch) -> Applied: ...


@dataclass
class Written:
    """The outcome of one batch, for the consume loop to acknowledge."""

    batch: Batch
    session: int  # the consumer session the batch came from; acks are only valid there
    applied: Applied | None = None
    rejected: list[Rejected] = field(default_factory=list)  # messages the database refused
    error: BaseException | None = None  # not written: stopping during an outage, or a bug


class Flusher:
    def __init__(self, store: BatchStore, *, give_up: Callable[[], bool], on_written: Callable[[], None] = lambda: None) -> None:
        self._store = store
        self._give_up = give_up
        self._on_written = on_written
        self._todo: queue.Queue[tuple[Batch, int] | None] = queue.Queue()  # (batch, session); None: stop
        self._done: deque[Written] = deque()
        self._pending = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flusher", daemon=True)
        self._thread.start()

    def submit(self, batch: Batch, session: int) -> None:
        with self._lock:
            self._pending += 1
        self._todo.put((batch, session))

    def completed(self) -> list[Written]:
        """Batches finished since the last call, in submission order."""
        finished = []
        while self._done:
            finished.append(self._done.popleft())
        with self._lock:
            self._pending -= len(finished)
        return finished

    @property
    def pending(self) -> int:
        """Batches submitted and not yet handed back by completed()."""
        with self._lock:
            return self._pending

    def close(self) -> None:
        self._closing.set()
        self._todo.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            item = self._todo.get()
            if item is None:
                return
            batch, session = item
            self._done.append(self._write(batch, session))
            self._on_written()

    def _write(self, batch: Batch, session: int) -> Written:
        written = Written(batch, session)
        try:
            written.applied = until_stopped(
                lambda: self._apply(batch, written),
                what="flush",
                is_transient=db.is_transient,
                stop=self._closing,
                give_up=self._give_up,
                max_wait=10.0,
            )
        except Exception as exc:  # handed to the consume loop, which decides
            written.error = exc
        return written

    def _apply(self, batch: Batch, written: Written) -> Applied:
        written.rejected = []
        try:
            with metrics.flush_duration.time():
                return self._store.apply(batch)
        except DBAPIError as exc:
            if not is_data_error(exc):
                raise
            log.warning("database rejected a batch; finding the message at fault", extra=fields(error=str(exc.orig).strip()))
            return self._apply_one_by_one(batch, written)

    def _apply_one_by_one(self, batch: Batch, written: Written) -> Applied:
        messages = duplicates = views = rows = expired = 0
        for message_id, pending in batch.messages.items():
            try:
                applied = self._store.apply(batch.single(message_id))
            except DBAPIError as exc:
                if not is_data_error(exc):
                    raise
                written.rejected.append(Rejected(pending, f"rejected by the database: {str(exc.orig).strip()}"))
                continue
            messages, duplicates = messages + applied.messages, duplicates + applied.duplicates
            views, rows, expired = views + applied.views, rows + applied.rows, expired + applied.expired
        return Applied(messages, duplicates + batch.duplicates_in_batch, views, rows, expired)
