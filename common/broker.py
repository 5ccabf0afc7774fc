"""RabbitMQ, and the only module that imports pika.

- ``Topology``: the partition queues, the dead-letter exchange and queue, declared
  idempotently by whichever process starts first.
- ``Publisher``: publishes with confirms from a background I/O thread so that many
  request threads share one pipelined channel; a caller's Confirmation resolves only when
  the broker has confirmed every message of its submission.
- ``ConsumerSession``: a worker's blocking connection: consume, acknowledge, dead-letter.
- ``BrokerAdmin``: small synchronous operations for tools and tests.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import pika
import pika.exceptions
import pika.spec

from common.logging import fields
from common.messages import CONTENT_TYPE, MESSAGE_TYPE
from common.partitioning import queue_name
from common.retry import call_with_retry

log = logging.getLogger(__name__)

HEARTBEAT_S = 30
BLOCKED_CONNECTION_TIMEOUT_S = 10
CONNECT_TIMEOUT_S = 3


class BrokerUnavailable(Exception):
    """RabbitMQ could not be reached or did not take the message; the caller should retry later."""


class PublishRefused(BrokerUnavailable):
    """RabbitMQ answered but refused a message (nack) or could not route it (return)."""


class ConnectionLost(Exception):
    """The consumer's connection or channel closed; unacknowledged deliveries go back to their queues."""


def is_transient(error: BaseException) -> bool:
    """Errors that a reconnect can cure: the broker is down, restarting or unreachable."""
    return isinstance(error, (pika.exceptions.AMQPConnectionError, ConnectionLost, BrokerUnavailable, OSError))


def connection_parameters(url: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = HEARTBEAT_S
    params.blocked_connection_timeout = BLOCKED_CONNECTION_TIMEOUT_S
    params.socket_timeout = CONNECT_TIMEOUT_S
    params.stack_timeout = CONNECT_TIMEOUT_S * 2
    params.connection_attempts = 1
    return params


@dataclass(frozen=True)
class Topology:
    """Names and arguments of everything the system declares on the broker."""

    prefix: str
    num_partitions: int
    delivery_limit: int

    def partition_queue(self, partition: int) -> str:
        return queue_name(self.prefix, partition)

    @property
    def dead_exchange(self) -> str:
        return f"{self.prefix}.dlx"

    @property
    def dead_queue(self) -> str:
        return f"{self.prefix}.dead"

    def partition_arguments(self) -> dict[str, Any]:
        # Quorum queues give us, without bookkeeping of our own: a delivery limit after
        # which a message that keeps failing is dead-lettered; single active consumer, so
        # a second worker on the same partitions is a hot standby rather than a second
        # writer; and at-least-once dead-lettering, so nothing vanishes between queues.
        return {
            "x-queue-type": "quorum",
            "x-single-active-consumer": True,
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.dead_exchange,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    def declare(self, channel: Any) -> None:
        """Declare exchanges and queues on a BlockingChannel; harmless if they already exist."""
        channel.exchange_declare(self.dead_exchange, exchange_type="fanout", durable=True)
        channel.queue_declare(self.dead_queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(self.dead_queue, self.dead_exchange)
        for partition in range(self.num_partitions):
            channel.queue_declare(self.partition_queue(partition), durable=True, arguments=self.partition_arguments())


def _message_properties(message_id: str, content_type: str, message_type: str, headers: dict | None = None) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=content_type,
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=message_id,
        type=message_type,
        timestamp=int(time.time()),
        headers=headers,
    )


# --------------------------------------------------------------------------- publishing


@dataclass
class Outgoing:
    """One message to publish, and which submissions (by index in the batch) it carries."""

    routing_key: str
    body: bytes
    message_id: str
    covers: list[int]


Compose = Callable[[list[Any]], list[Outgoing]]


class PublishTimeout(BrokerUnavailable):
    """RabbitMQ did not confirm in time; the messages may or may not have been stored."""


class Confirmation:
    """What a caller waits on: settled once, by the publisher thread (or at once if not connected).

    A bare lock rather than concurrent.futures.Future: one is created and waited on per
    request, and a lock is the cheapest thing a thread can sleep on and be woken through.
    """

    __slots__ = ("_lock", "_error", "_settled")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._error: BaseException | None = None
        self._settled = False

    def settle(self, error: BaseException | None = None) -> None:
        if self._settled:  # a submission spread over several messages may fail more than once
            return
        self._settled = True
        self._error = error
        self._lock.release()

    def wait(self, timeout: float) -> None:
        """Return once every message is confirmed; raise BrokerUnavailable (or PublishTimeout) otherwise."""
        if not self._lock.acquire(timeout=max(0.0, timeout)):
            raise PublishTimeout(f"RabbitMQ did not confirm within {timeout * 1000:.0f} ms")
        self._lock.release()
        if self._error is not None:
            raise self._error


class _Submission:
    __slots__ = ("payload", "confirmation", "remaining")

    def __init__(self, payload: Any) -> None:
        self.payload = payload
        self.confirmation = Confirmation()
        self.remaining = 0

    def confirm_one(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.confirmation.settle()

    def fail(self, error: BaseException) -> None:
        self.confirmation.settle(error)


@dataclass
class _InFlight:
    message_id: str
    submissions: list[_Submission]


class Publisher:
    """Publishes with publisher confirms from one background thread that owns the connection.

    Request threads call ``submit(payload)`` and wait on the returned Confirmation. Whenever
    the I/O thread wakes it takes every submission waiting and hands them to ``compose``,
    which may merge them into fewer messages (group commit); many messages are in flight
    at once and are confirmed together, so throughput is not bound by one round trip per
    request. While disconnected, ``submit`` fails at once and the thread reconnects with
    backoff.
    """

    def __init__(self, url: str, topology: Topology, compose: Compose, *, name: str = "amqp-publisher") -> None:
        self._params = connection_parameters(url)
        self._topology = topology
        self._compose = compose
        self._name = name
        self._lock = threading.Lock()
        self._pending: list[_Submission] = []
        self._wake_scheduled = False
        self._connection: pika.SelectConnection | None = None
        self._channel: Any = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._in_flight: dict[int, _InFlight] = {}
        self._returned: set[str] = set()
        self._next_tag = 1
        self._open_error: BaseException | None = None
        self._became_ready = threading.Event()  # of the current connection; replaced on each connect
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- called from any thread

    def start(self) -> "Publisher":
        self._thread.start()
        return self

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def submit(self, payload: Any) -> Confirmation:
        submission = _Submission(payload)
        if not self._ready.is_set():
            submission.fail(BrokerUnavailable("not connected to RabbitMQ"))
            return submission.confirmation
        with self._lock:
            self._pending.append(submission)
            if self._wake_scheduled:
                return submission.confirmation
            self._wake_scheduled = True
            connection = self._connection
        try:
            connection.ioloop.add_callback_threadsafe(self._drain)  # type: ignore[union-attr]
        except Exception as exc:  # the loop is closing: the connection is gone
            self._fail_pending(BrokerUnavailable(f"connection to RabbitMQ is closing: {exc}"))
        return submission.confirmation

    def close(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            try:
                connection.ioloop.add_callback_threadsafe(self._close_connection)
            except Exception:
                pass
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the I/O thread

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                call_with_retry(
                    self._connect_and_serve,
                    what="publisher connect",
                    is_transient=is_transient,
                    max_attempts=None,
                    initial_wait=0.2,
                    max_wait=5.0,
                    sleep=self._stopping.wait,
                    give_up=self._stopping.is_set,
                )
            except Exception:
                if self._stopping.is_set():
                    break
                log.exception("publisher failed; restarting it", extra=fields(name=self._name))
                self._stopping.wait(1.0)
        self._fail_pending(BrokerUnavailable("publisher stopped"))

    def _connect_and_serve(self) -> None:
        """Run one connection until it closes; raise if it never became ready (so tenacity backs off)."""
        with blocking_connection(self._params) as connection:
            self._topology.declare(connection.channel())
        self._open_error = None
        became_ready = threading.Event()
        self._became_ready = became_ready
        connection = pika.SelectConnection(
            self._params,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_open_error,
            on_close_callback=self._on_connection_closed,
        )
        with self._lock:
            self._connection = connection
        connection.ioloop.start()
        if not became_ready.is_set():
            raise self._open_error or BrokerUnavailable("connection closed before it was ready")

    def _on_connection_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_open_error(self, connection: pika.SelectConnection, error: BaseException) -> None:
        self._open_error = error if isinstance(error, BaseException) else BrokerUnavailable(str(error))
        connection.ioloop.stop()

    def _on_channel_open(self, channel: Any) -> None:
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(self._on_confirm, callback=lambda _frame: self._on_confirm_mode(channel))

    def _on_confirm_mode(self, channel: Any) -> None:
        self._channel = channel
        self._next_tag = 1
        self._in_flight.clear()
        self._returned.clear()
        self._became_ready.set()
        self._ready.set()
        log.info("publisher connected", extra=fields(name=self._name))
        if self._stopping.is_set():
            self._close_connection()

    def _on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        self._lose_connection(f"channel closed: {reason}")
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _on_connection_closed(self, connection: pika.SelectConnection, reason: BaseException) -> None:
        self._lose_connection(f"connection closed: {reason}")
        if not self._became_ready.is_set():
            self._open_error = reason
        connection.ioloop.stop()

    def _lose_connection(self, why: str) -> None:
        was_ready = self._ready.is_set()
        self._ready.clear()
        self._channel = None
        error = BrokerUnavailable(f"lost the connection to RabbitMQ before it confirmed ({why})")
        for in_flight in self._in_flight.values():
            for submission in in_flight.submissions:
                submission.fail(error)
        self._in_flight.clear()
        self._fail_pending(error)
        if was_ready:
            log.warning("publisher disconnected", extra=fields(name=self._name, reason=why))

    def _close_connection(self) -> None:
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _fail_pending(self, error: BaseException) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            self._wake_scheduled = False
        for submission in pending:
            submission.fail(error)

    def _drain(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            self._wake_scheduled = False
        if not batch:
            return
        channel = self._channel
        if channel is None or not channel.is_open:
            for submission in batch:
                submission.fail(BrokerUnavailable("not connected to RabbitMQ"))
            return
        try:
            outgoing = self._compose([submission.payload for submission in batch])
        except Exception as exc:  # a bug in compose: fail these callers loudly, keep serving others
            log.exception("composing messages failed")
            for submission in batch:
                submission.fail(exc)
            return
        self._publish(channel, batch, outgoing)

    def _publish(self, channel: Any, batch: list[_Submission], outgoing: list[Outgoing]) -> None:
        for message in outgoing:
            for index in message.covers:
                batch[index].remaining += 1
        for submission in batch:
            if submission.remaining == 0:
                submission.confirmation.settle()
        for message in outgoing:
            tag = self._next_tag
            self._next_tag += 1
            self._in_flight[tag] = _InFlight(message.message_id, [batch[index] for index in message.covers])
            channel.basic_publish(
                "",
                message.routing_key,
                message.body,
                _message_properties(message.message_id, CONTENT_TYPE, MESSAGE_TYPE),
                mandatory=True,
            )

    def _on_return(self, channel: Any, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
        # RabbitMQ sends basic.return before the ack of an unroutable mandatory message.
        self._returned.add(properties.message_id)
        log.error("message returned unroutable", extra=fields(queue=method.routing_key, reply=method.reply_text))

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        for tag in self._confirmed_tags(method.delivery_tag, method.multiple):
            in_flight = self._in_flight.pop(tag)
            error = None
            if not acked:
                error = PublishRefused("RabbitMQ refused the message (nack)")
            elif in_flight.message_id in self._returned:
                self._returned.discard(in_flight.message_id)
                error = PublishRefused("RabbitMQ could not route the message to its partition queue")
            for submission in in_flight.submissions:
                if error is None:
                    submission.confirm_one()
                else:
                    submission.fail(error)

    def _confirmed_tags(self, delivery_tag: int, multiple: bool) -> Iterator[int]:
        if not multiple:
            if delivery_tag in self._in_flight:
                yield delivery_tag
            return
        # Tags were inserted in ascending order, so the ones covered are at the front.
        covered = []
        for tag in self._in_flight:
            if tag > delivery_tag:
                break
            covered.append(tag)
        yield from covered


# --------------------------------------------------------------------------- consuming


@dataclass(frozen=True, slots=True)
class Delivery:
    tag: int
    body: bytes
    queue: str
    redelivered: bool
    headers: dict = field(default_factory=dict)
    message_id: str | None = None


class ConsumerSession:
    """A worker's connection: consumes its partition queues and acknowledges or dead-letters.

    Not thread-safe (neither is pika): everything happens on the caller's thread, and
    callbacks run inside ``pump()``/``sleep()``.
    """

    def __init__(self, url: str, topology: Topology, partitions: Sequence[int], prefetch: int, on_delivery: Callable[[Delivery], None]) -> None:
        self._params = connection_parameters(url)
        self._topology = topology
        self._partitions = tuple(partitions)
        self._prefetch = prefetch
        self._on_delivery = on_delivery
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._dead_channel: Any = None

    def __enter__(self) -> "ConsumerSession":
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def open(self) -> None:
        with _as_connection_lost("opening the consumer connection"):
            self._connection = pika.BlockingConnection(self._params)
            self._channel = self._connection.channel()
            self._topology.declare(self._channel)
            # Per-consumer prefetch (quorum queues do not support a channel-wide one):
            # the worker holds at most partitions x prefetch unacknowledged messages.
            self._channel.basic_qos(prefetch_count=self._prefetch)
            for partition in self._partitions:
                queue = self._topology.partition_queue(partition)
                self._channel.basic_consume(queue, self._callback_for(queue))
            self._dead_channel = self._connection.channel()
            self._dead_channel.confirm_delivery()

    def _callback_for(self, queue: str) -> Callable[..., None]:
        on_delivery = self._on_delivery

        def on_message(_channel: Any, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
            on_delivery(Delivery(method.delivery_tag, body, queue, method.redelivered, properties.headers or {}, properties.message_id))

        return on_message

    def pump(self, time_limit: float) -> None:
        """Process broker traffic (and run delivery callbacks) for up to time_limit seconds."""
        with _as_connection_lost("waiting for deliveries"):
            self._connection.process_data_events(time_limit=max(0.0, time_limit))  # type: ignore[union-attr]

    def wake(self) -> None:
        """From any thread: make a pump() in progress return now (pika's one thread-safe call)."""
        connection = self._connection
        if connection is not None:
            try:
                connection.add_callback_threadsafe(lambda: None)
            except Exception:  # closing or closed: the loop is leaving its pump anyway
                pass

    def ack_through(self, delivery_tag: int) -> None:
        """Acknowledge every delivery up to and including delivery_tag, in one frame."""
        with _as_connection_lost("acknowledging"):
            self._channel.basic_ack(delivery_tag, multiple=True)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move a delivery to the dead-letter queue with the reason in a header, then acknowledge it.

        Publishing our own copy (rather than basic.reject) lets operators see *why*; the
        copy is confirmed before the original is acknowledged, so nothing is lost in between.
        """
        headers = dict(delivery.headers)
        headers.update({"x-error": reason[:1000], "x-original-queue": delivery.queue})
        with _as_connection_lost("dead-lettering"):
            self._dead_channel.basic_publish(
                self._topology.dead_exchange,
                delivery.queue,
                delivery.body,
                _message_properties(delivery.message_id or "", "application/octet-stream", "pageviews.dead", headers),
                mandatory=True,
            )
            self._channel.basic_ack(delivery.tag)

    def close(self) -> None:
        """Close the connection; whatever was delivered but not acknowledged returns to its queue."""
        connection, self._connection = self._connection, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except pika.exceptions.AMQPError as exc:
                log.warning("closing the consumer connection failed", extra=fields(error=str(exc)))


class _as_connection_lost:
    """Translate pika's errors into ConnectionLost, so callers never handle pika types."""

    def __init__(self, doing: str) -> None:
        self._doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, _tb: Any) -> bool:
        if exc is not None and isinstance(exc, (pika.exceptions.AMQPError, OSError)):
            raise ConnectionLost(f"{self._doing}: {type(exc).__name__}: {exc}") from exc
        return False


class blocking_connection:
    """A short-lived BlockingConnection as a context manager."""

    def __init__(self, params: pika.URLParameters) -> None:
        self._params = params
        self._connection: pika.BlockingConnection | None = None

    def __enter__(self) -> pika.BlockingConnection:
        self._connection = pika.BlockingConnection(self._params)
        return self._connection

    def __exit__(self, *_exc: object) -> None:
        if self._connection is not None and self._connection.is_open:
            try:
                self._connection.close()
            except pika.exceptions.AMQPError:
                pass


# --------------------------------------------------------------------------- administration


@dataclass(frozen=True)
class RawMessage:
    body: bytes
    headers: dict
    message_id: str | None
    redelivered: bool
    delivery_tag: int = 0


class BrokerAdmin:
    """Synchronous one-off operations: queue depths, direct publishing, reading the dead-letter queue."""

    def __init__(self, url: str) -> None:
        self._params = connection_parameters(url)
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None

    def __enter__(self) -> "BrokerAdmin":
        with _as_connection_lost("connecting for administration"):
            self._connection = pika.BlockingConnection(self._params)
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def declare(self, topology: Topology) -> None:
        topology.declare(self._channel)

    def message_count(self, queue: str) -> int:
        """Messages ready in the queue (not counting those delivered and not yet acknowledged)."""
        return self._channel.queue_declare(queue, passive=True).method.message_count

    def consumer_count(self, queue: str) -> int:
        return self._channel.queue_declare(queue, passive=True).method.consumer_count

    def publish(self, queue: str, body: bytes, message_id: str | None = None, headers: dict | None = None, exchange: str = "") -> None:
        """Publish one persistent message and wait for the broker's confirm."""
        properties = _message_properties(message_id or "", CONTENT_TYPE, MESSAGE_TYPE, headers)
        self._channel.basic_publish(exchange, queue, body, properties, mandatory=True)

    def get(self, queue: str, *, ack: bool = True) -> RawMessage | None:
        """Take one message off a queue, or None if it is empty.

        With ack=False the message stays the broker's until ``ack(message)``; closing the
        connection first puts it back (how a tool reads a queue without emptying it).
        """
        method, properties, body = self._channel.basic_get(queue, auto_ack=ack)
        if method is None:
            return None
        return RawMessage(body, properties.headers or {}, properties.message_id, method.redelivered, method.delivery_tag)

    def ack(self, message: RawMessage) -> None:
        self._channel.basic_ack(message.delivery_tag)

    def delete_queue(self, queue: str) -> None:
        self._channel.queue_delete(queue)

    def delete_topology(self, topology: Topology) -> None:
        """Remove every queue and exchange `topology.declare` creates (tests and benchmarks clean up with it)."""
        for partition in range(topology.num_partitions):
            self.delete_queue(topology.partition_queue(partition))
        self.delete_queue(topology.dead_queue)
        self.delete_exchange(topology.dead_exchange)

    def delete_exchange(self, exchange: str) -> None:
        self._channel.exchange_delete(exchange)

    def queue_exists(self, queue: str) -> bool:
        try:
            self._channel.queue_declare(queue, passive=True)
            return True
        except pika.exceptions.ChannelClosedByBroker:
            self._channel = self._connection.channel()  # type: ignore[union-attr]
            self._channel.confirm_delivery()
            return False


def publish_in_bulk(url: str, queue: str, bodies: Iterable[bytes], window: int = 1000) -> int:
    """Publish many persistent messages, committing a transaction every `window` of them.

    For loading a backlog (benchmarks, tests); the API uses Publisher instead. A
    tx.commit-ok means the broker has taken every message before it, which is the same
    promise as a confirm but costs one round trip per window instead of per message.
    """
    sent = 0
    with blocking_connection(connection_parameters(url)) as connection:
        channel = connection.channel()
        channel.tx_select()
        properties = _message_properties("", CONTENT_TYPE, MESSAGE_TYPE)
        for body in bodies:
            channel.basic_publish("", queue, body, properties)
            sent += 1
            if sent % window == 0:
                channel.tx_commit()
        channel.tx_commit()
    return sent
