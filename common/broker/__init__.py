"""RabbitMQ, and the only package that imports pika.

- ``topology``: the partition queues, the dead-letter exchange and queue, declared
  idempotently by whichever process starts first.
- ``publisher``: publishes with confirms from a background I/O thread so that many
  request threads share one pipelined channel; a caller's Confirmation resolves only when
  the broker has confirmed every message of its submission.
- ``consumer``: a worker's blocking connection: consume, acknowledge, dead-letter.
- ``admin``: small synchronous operations for tools and tests.
- ``connection``: parameters, errors and short-lived connections shared by the others.
- ``stats``: depth and consumers of a queue, from the management HTTP API or over AMQP.
"""
from common.broker.admin import BrokerAdmin, RawMessage, publish_in_bulk
from common.broker.connection import BrokerUnavailable, ConnectionLost, PublishRefused, connection_parameters, is_transient
from common.broker.consumer import ConsumerSession, Delivery
from common.broker.publisher import Compose, Confirmation, Outgoing, Publisher, PublishTimeout
from common.broker.topology import Topology

__all__ = [
    "BrokerAdmin", "BrokerUnavailable", "Compose", "Confirmation", "ConnectionLost", "ConsumerSession", "Delivery",
    "Outgoing", "PublishRefused", "PublishTimeout", "Publisher", "RawMessage", "Topology", "connection_parameters",
    "is_transient", "publish_in_bulk",
]
