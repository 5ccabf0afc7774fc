"""The partition queues, the dead-letter exchange and queue: names, arguments, declaring them."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pika.exceptions

from common.logging import fields
from common.partitioning import queue_name

if TYPE_CHECKING:
    from common.config import Settings

log = logging.getLogger(__name__)

PRECONDITION_FAILED = 406


@dataclass(frozen=True)
class Topology:
    """Names and arguments of everything the system declares on the broker."""

    prefix: str
    num_partitions: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Topology:
        """The topology QUEUE_PREFIX and NUM_PARTITIONS describe (DELIVERY_LIMIT is in the policy)."""
        return cls(settings.queue_prefix, settings.num_partitions)

    def partition_queue(self, partition: int) -> str:
        return queue_name(self.prefix, partition)

    @property
    def ingest_exchange(self) -> str:
        # A direct exchange of our own rather than the default one: a broker user may then
        # write to this prefix's exchanges only, which the default exchange (it routes to
        # any queue of the vhost by name) would not allow (README, Security).
        return f"{self.prefix}.in"

    @property
    def dead_exchange(self) -> str:
        return f"{self.prefix}.dlx"

    @property
    def dead_queue(self) -> str:
        return f"{self.prefix}.dead"

    def partition_arguments(self) -> dict[str, Any]:
        # Quorum queues give us, without bookkeeping of our own: single active consumer,
        # so a second worker on the same partitions is a hot standby rather than a second
        # writer; and at-least-once dead-lettering, so nothing vanishes between queues
        # (it requires reject-publish). What an operator tunes (the bounds and the
        # delivery limit) is a policy instead, set by `python -m worker.broker_setup`:
        # RabbitMQ applies a changed policy at once, a changed argument never.
        return {
            "x-queue-type": "quorum",
            "x-single-active-consumer": True,
            "x-dead-letter-exchange": self.dead_exchange,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    def declare(self, connection: Any) -> None:
        """Declare exchanges and queues on a BlockingConnection; harmless if they already exist."""
        channel = connection.channel()
        channel.exchange_declare(self.ingest_exchange, exchange_type="direct", durable=True)
        channel.exchange_declare(self.dead_exchange, exchange_type="fanout", durable=True)
        channel.queue_declare(self.dead_queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(self.dead_queue, self.dead_exchange)
        for partition in range(self.num_partitions):
            queue = self.partition_queue(partition)
            channel = self._declare_partition(connection, channel, queue)
            channel.queue_bind(queue, self.ingest_exchange, routing_key=queue)
        if channel.is_open:
            channel.close()

    def _declare_partition(self, connection: Any, channel: Any, queue: str) -> Any:
        """Declare one partition queue; returns the channel to go on with (a refusal closes one)."""
        try:
            channel.queue_declare(queue, durable=True, arguments=self.partition_arguments())
            return channel
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != PRECONDITION_FAILED or "'x-delivery-limit'" not in exc.reply_text:
                raise  # any other difference is a queue that is not what this system expects
            # Declared by an older version with x-delivery-limit as an argument. It works
            # as it is: the policy's delivery-limit applies where it is smaller (RabbitMQ
            # uses the smaller of the two). README, Backpressure: moving over.
            channel = connection.channel()
            channel.queue_declare(queue, passive=True)
            log.warning("partition queue has arguments of an older version; using it as it is", extra=fields(queue=queue, reason=exc.reply_text))
            return channel
