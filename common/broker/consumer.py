"""A worker's consumer session: consume partition queues, acknowledge, dead-letter."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import pika
import pika.exceptions

from common.broker.connection import as_connection_lost, connect_blocking, message_properties
from common.broker.topology import Topology
from common.logging import fields

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    tag: int
    body: bytes
    queue: str
    redelivered: bool
    headers: dict = field(default_factory=dict)
    message_id: str | None = None
    timestamp: int | None = None  # AMQP timestamp property (Unix seconds): when it was published, if the publisher said


class ConsumerSession:
    """A worker's connection: consumes its partition queues and acknowledges or dead-letters.

    Not thread-safe (neither is pika): everything happens on the caller's thread, and
    callbacks run inside ``pump()``/``sleep()``.
    """

    def __init__(self, url: str, topology: Topology, partitions: Sequence[int], prefetch: int, on_delivery: Callable[[Delivery], None]) -> None:
        self._url = url
        self._topology = topology
        self._partitions = tuple(partitions)
        self._prefetch = prefetch
        self._on_delivery = on_delivery
        self._connection: pika.BlockingConnection | None = None
        self.node = ""  # host:port of the node connected to
        self._channel: Any = None
        self._dead_channel: Any = None

    def __enter__(self) -> "ConsumerSession":
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def open(self) -> None:
        with as_connection_lost("opening the consumer connection"):
            # Any node of a cluster will do: a quorum queue is consumed through whichever
            # node the connection is on, wherever its leader is.
            self._connection, self.node = connect_blocking(self._url)
            self._topology.declare(self._connection)
            self._channel = self._connection.channel()
            # Per-consumer prefetch (quorum queues do not support a channel-wide one):
            # the worker holds at most partitions x prefetch unacknowledged messages.
            self._channel.basic_qos(prefetch_count=self._prefetch)
            for partition in self._partitions:
                queue = self._topology.partition_queue(partition)
                self._channel.basic_consume(queue, self._callback_for(queue))
            self._dead_channel = self._connection.channel()
            self._dead_channel.confirm_delivery()
        log.info("consumer connected", extra=fields(node=self.node, queues=len(self._partitions)))

    def _callback_for(self, queue: str) -> Callable[..., None]:
        on_delivery = self._on_delivery

        def on_message(_channel: Any, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
            on_delivery(Delivery(method.delivery_tag, body, queue, method.redelivered, properties.headers or {}, properties.message_id, properties.timestamp))

        return on_message

    def pump(self, time_limit: float) -> None:
        """Process broker traffic (and run delivery callbacks) for up to time_limit seconds."""
        with as_connection_lost("waiting for deliveries"):
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
        with as_connection_lost("acknowledging"):
            self._channel.basic_ack(delivery_tag, multiple=True)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move a delivery to the dead-letter queue with the reason in a header, then acknowledge it.

        Publishing our own copy (rather than basic.reject) lets operators see *why*; the
        copy is confirmed before the original is acknowledged, so nothing is lost in between.
        """
        headers = dict(delivery.headers)
        headers.update({"x-error": reason[:1000], "x-original-queue": delivery.queue})
        with as_connection_lost("dead-lettering"):
            self._dead_channel.basic_publish(
                self._topology.dead_exchange,
                delivery.queue,
                delivery.body,
                message_properties(delivery.message_id or "", "application/octet-stream", "pageviews.dead", headers),
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
