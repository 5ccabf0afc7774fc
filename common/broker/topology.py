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
            "x-quorum-initial-group-size": QUORUM_GROUP_SIZE,
            "x-queue-leader-locator": LEADER_LOCATOR,
        }

    def declare(self, connection: Any) -> None:
        """Declare exchanges and queues on a BlockingConnection (on a channel of their own); harmless if they exist."""
        channel = connection.channel()
        channel.exchange_declare(self.ingest_exchange, exchange_type="direct", durable=True)
        channel.exchange_declare(self.dead_exchange, exchange_type="fanout", durable=True)
        dead_arguments = {"x-queue-type": "quorum", "x-quorum-initial-group-size": QUORUM_GROUP_SIZE}
        channel = _declare_queue(connection, channel, self.dead_queue, dead_arguments)
        channel.queue_bind(self.dead_queue, self.dead_exchange)
        for partition in range(self.num_partitions):
            queue = self.partition_queue(partition)
            channel = _declare_queue(connection, channel, queue, self.partition_arguments())
            channel.queue_bind(queue, self.ingest_exchange, routing_key=queue)
        channel.close()


def _declare_queue(connection: Any, channel: Any, queue: str, arguments: dict[str, Any]) -> Any:
    """Declare a durable queue; accept one an older version declared. Returns a channel still open.

    Queue arguments are fixed when a queue is created, and a declare with different ones
    fails with 406 PRECONDITION_FAILED (closing the channel). Two differences are an older
    version's, and such a queue is used as it is, with a warning saying what to do:
    - without the placement arguments (replicas, leader locator), which change where a
      queue lives, not how it behaves: declared again without them;
    - with x-delivery-limit as an argument (now a policy): RabbitMQ applies the smaller of
      the argument and the policy, so it works as it is; declared passively.
    Any other difference still fails, as configuration drift should (/ready names it).
    """
    for _attempt in range(2):
        try:
            channel.queue_declare(queue, durable=True, arguments=arguments)
            return channel
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != PRECONDITION_FAILED:
                raise
            reason = exc.reply_text
        channel = connection.channel()
        if "'x-delivery-limit'" in reason:
            channel.queue_declare(queue, passive=True)
            log.warning(
                "partition queue has x-delivery-limit as an argument, from an older version; using it as it is "
                "(the policy's delivery limit applies where smaller; README, Backpressure: moving over)",
                extra=fields(queue=queue, reason=reason),
            )
            return channel
        if not any(f"'{name}'" in reason for name in PLACEMENT_ARGUMENTS):
            raise pika.exceptions.ChannelClosedByBroker(PRECONDITION_FAILED, reason)
        arguments = {k: v for k, v in arguments.items() if k not in PLACEMENT_ARGUMENTS}
        log.warning(
            "queue was declared without the replication arguments; using it as it is (replicate it with "
            "`rabbitmq-queues grow <node> all`, or delete it once empty to have it declared again)",
            extra=fields(queue=queue, reason=reason),
        )
    raise pika.exceptions.ChannelClosedByBroker(PRECONDITION_FAILED, reason)
