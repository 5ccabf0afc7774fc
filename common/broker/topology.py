"""The partition queues, the dead-letter exchange and queue: names, arguments, declaring them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.partitioning import queue_name

if TYPE_CHECKING:
    from common.config import Settings


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
        }

    def declare(self, channel: Any) -> None:
        """Declare exchanges and queues on a BlockingChannel; harmless if they already exist."""
        channel.exchange_declare(self.dead_exchange, exchange_type="fanout", durable=True)
        channel.queue_declare(self.dead_queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(self.dead_queue, self.dead_exchange)
        for partition in range(self.num_partitions):
            channel.queue_declare(self.partition_queue(partition), durable=True, arguments=self.partition_arguments())
