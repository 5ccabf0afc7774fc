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

# Replicas of each partition queue: RabbitMQ places min(this, cluster members), so one node
# gives one, three or more give three (a quorum of two survives the loss of any one node).
QUORUM_GROUP_SIZE = 3
# Leaders spread over the nodes (the node with the fewest leaders takes the next queue), so
# that no node carries every partition. RabbitMQ 3.10 and later; 3.10.8's own management
# UI lists `client-local` (the default: the declaring node) and `balanced`, and maps the
# older names `least-leaders` and `random` to `balanced`. An unknown value would silently
# mean client-local, so the value is checked by tests/cluster (leaders on every node).
LEADER_LOCATOR = "balanced"
PLACEMENT_ARGUMENTS = ("x-quorum-initial-group-size", "x-queue-leader-locator")
PRECONDITION_FAILED = 406


@dataclass(frozen=True)
class Topology:
    """Names and arguments of everything the system declares on the broker."""

    prefix: str
    num_partitions: int
    delivery_limit: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Topology:
        """The topology QUEUE_PREFIX, NUM_PARTITIONS and DELIVERY_LIMIT describe."""
        return cls(settings.queue_prefix, settings.num_partitions, settings.delivery_limit)

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
            "x-quorum-initial-group-size": QUORUM_GROUP_SIZE,
            "x-queue-leader-locator": LEADER_LOCATOR,
        }

    def declare(self, connection: Any) -> None:
        """Declare exchanges and queues on a BlockingConnection (on a channel of their own); harmless if they exist."""
        channel = connection.channel()
        channel.exchange_declare(self.dead_exchange, exchange_type="fanout", durable=True)
        dead_arguments = {"x-queue-type": "quorum", "x-quorum-initial-group-size": QUORUM_GROUP_SIZE}
        channel = _declare_queue(connection, channel, self.dead_queue, dead_arguments)
        channel.queue_bind(self.dead_queue, self.dead_exchange)
        for partition in range(self.num_partitions):
            channel = _declare_queue(connection, channel, self.partition_queue(partition), self.partition_arguments())
        channel.close()


def _declare_queue(connection: Any, channel: Any, queue: str, arguments: dict[str, Any]) -> Any:
    """Declare a durable queue; accept one declared before the placement arguments existed. Returns a channel still open.

    Queue arguments are fixed when a queue is created, and a declare with different ones
    fails with 406 PRECONDITION_FAILED (closing the channel). The placement arguments
    (replicas, leader locator) change where a queue lives, not how it behaves: a queue
    created without them (by an older version) is declared again without them and used as
    it is, and the operator is told how to replicate it. Any other difference still fails,
    as configuration drift should (/ready names it).
    """
    try:
        channel.queue_declare(queue, durable=True, arguments=arguments)
        return channel
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != PRECONDITION_FAILED or not any(f"'{name}'" in exc.reply_text for name in PLACEMENT_ARGUMENTS):
            raise
        reason = exc.reply_text
    channel = connection.channel()
    channel.queue_declare(queue, durable=True, arguments={k: v for k, v in arguments.items() if k not in PLACEMENT_ARGUMENTS})
    log.warning(
        "queue was declared without the replication arguments; using it as it is (replicate it with "
        "`rabbitmq-queues grow <node> all`, or delete it once empty to have it declared again)",
        extra=fields(queue=queue, reason=reason),
    )
    return channel
