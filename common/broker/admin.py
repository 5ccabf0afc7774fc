"""Synchronous one-off broker operations for tools, tests and benchmarks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import pika
import pika.exceptions

from common.broker.connection import as_connection_lost, blocking_connection, connect_blocking, message_properties
from common.broker.topology import Topology
from common.messages import CONTENT_TYPE, MESSAGE_TYPE


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
        self._url = url
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None

    def __enter__(self) -> "BrokerAdmin":
        with as_connection_lost("connecting for administration"):
            self._connection, _node = connect_blocking(self._url)
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def declare(self, topology: Topology) -> None:
        topology.declare(self._connection)

    def declare_queue(self, queue: str, arguments: dict[str, Any]) -> None:
        """One durable queue with exactly these arguments (tests: a queue as an older version declared it)."""
        self._channel.queue_declare(queue, durable=True, arguments=arguments)

    def message_count(self, queue: str) -> int:
        """Messages ready in the queue (not counting those delivered and not yet acknowledged)."""
        return self._channel.queue_declare(queue, passive=True).method.message_count

    def consumer_count(self, queue: str) -> int:
        return self._channel.queue_declare(queue, passive=True).method.consumer_count

    def publish(self, queue: str, body: bytes, message_id: str | None = None, headers: dict | None = None, exchange: str = "") -> None:
        """Publish one persistent message and wait for the broker's confirm."""
        properties = message_properties(message_id or "", CONTENT_TYPE, MESSAGE_TYPE, headers)
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
    with blocking_connection(url) as connection:
        channel = connection.channel()
        channel.tx_select()
        properties = message_properties("", CONTENT_TYPE, MESSAGE_TYPE)
        for body in bodies:
            channel.basic_publish("", queue, body, properties)
            sent += 1
            if sent % window == 0:
                channel.tx_commit()
        channel.tx_commit()
    return sent
