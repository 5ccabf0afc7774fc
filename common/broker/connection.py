"""Connecting to RabbitMQ: parameters, the errors callers see, short-lived connections."""
from __future__ import annotations

import time
from typing import Any

import pika
import pika.exceptions

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


def message_properties(message_id: str, content_type: str, message_type: str, headers: dict | None = None) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=content_type,
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=message_id,
        type=message_type,
        timestamp=int(time.time()),
        headers=headers,
    )


class as_connection_lost:
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
