"""The broker ceiling: raw pika publishing persistent, confirmed messages to a quorum queue like ours.

This module imports pika directly (the code under test keeps it in common/broker/):
the point is to measure RabbitMQ without our code in between.
"""
from __future__ import annotations

import time
from typing import Any

import pika
import pika.spec

from bench.context import Run
from bench.workload import page
from common import messages
from common.broker import BrokerAdmin, Topology, connection_parameters
from common.timeutil import hour_start_epoch, utc_now

WINDOW = 1000  # unconfirmed messages in flight when pipelining


def ceiling_broker(run: Run) -> dict[str, Any]:
    settings = run.settings_for("ceiling-broker")
    topology = Topology.from_settings(settings)
    queue = f"{settings.queue_prefix}.ceiling"
    # A message the size of the API's message for one single view.
    body = messages.encode(messages.new_message_id(), [(page(1234), hour_start_epoch(utc_now()), 1)])
    params = connection_parameters(settings.amqp_url)[0]  # one node (AMQP_URL may list several)
    try:
        with BrokerAdmin(settings.amqp_url) as admin:
            admin.declare(topology)  # the dead-letter exchange the queue's arguments name
        _declare(params, queue, topology)
        one_at_a_time = _one_at_a_time(params, queue, body, run.durations.broker_s)
        _purge(params, queue)
        pipelined = _pipelined(params, queue, body, run.durations.broker_s)
    finally:
        _delete(params, queue)
        run.delete_topology(settings)
    return {
        "message_bytes": len(body),
        "seconds": run.durations.broker_s,
        "one_at_a_time_msgs_per_s": round(one_at_a_time),
        "pipelined_msgs_per_s": round(pipelined),
        "pipeline_window": WINDOW,
    }


def _properties() -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type="application/json", delivery_mode=2, message_id=messages.new_message_id(), type=messages.MESSAGE_TYPE, timestamp=int(time.time())
    )


def _declare(params: pika.URLParameters, queue: str, topology: Topology) -> None:
    connection = pika.BlockingConnection(params)
    try:
        connection.channel().queue_declare(queue, durable=True, arguments=topology.partition_arguments())
    finally:
        connection.close()


def _purge(params: pika.URLParameters, queue: str) -> None:
    connection = pika.BlockingConnection(params)
    try:
        connection.channel().queue_purge(queue)
    finally:
        connection.close()


def _delete(params: pika.URLParameters, queue: str) -> None:
    try:
        connection = pika.BlockingConnection(params)
        try:
            connection.channel().queue_delete(queue)
        finally:
            connection.close()
    except pika.exceptions.AMQPError:
        pass


def _one_at_a_time(params: pika.URLParameters, queue: str, body: bytes, seconds: float) -> float:
    """BlockingChannel in confirm mode: basic_publish returns after the broker's confirm."""
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        properties = _properties()
        sent = 0
        started = time.monotonic()
        deadline = started + seconds
        while time.monotonic() < deadline:
            channel.basic_publish("", queue, body, properties, mandatory=True)
            sent += 1
        return sent / (time.monotonic() - started)
    finally:
        connection.close()


class _PipelinedPublisher:
    """SelectConnection with up to WINDOW unconfirmed messages; counts confirms for `seconds`."""

    def __init__(self, params: pika.URLParameters, queue: str, body: bytes, seconds: float) -> None:
        self._queue, self._body, self._seconds = queue, body, seconds
        self._properties = _properties()
        self._channel: Any = None
        self._next_tag = 1
        self._confirmed_through = 0
        self.confirmed = 0
        self.nacked = 0
        self.started = self.finished = 0.0
        self._deadline = 0.0
        self.error: BaseException | str | None = None
        self._connection = pika.SelectConnection(
            params, on_open_callback=self._on_open, on_open_error_callback=self._on_error, on_close_callback=self._on_closed
        )

    def run(self) -> None:
        self._connection.ioloop.start()

    def _on_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel)

    def _on_error(self, _connection: Any, error: Any) -> None:
        self.error = error
        self._connection.ioloop.stop()

    def _on_closed(self, _connection: Any, _reason: Any) -> None:
        self._connection.ioloop.stop()

    def _on_channel(self, channel: Any) -> None:
        self._channel = channel
        channel.confirm_delivery(self._on_confirm, callback=lambda _frame: self._begin())

    def _begin(self) -> None:
        self.started = time.monotonic()
        self._deadline = self.started + self._seconds
        self._fill()

    def _fill(self) -> None:
        if time.monotonic() >= self._deadline:
            return
        while self._next_tag - 1 - self._confirmed_through < WINDOW:
            self._channel.basic_publish("", self._queue, self._body, self._properties, mandatory=True)
            self._next_tag += 1

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        through = method.delivery_tag if method.multiple else max(self._confirmed_through, method.delivery_tag)
        newly = max(0, through - self._confirmed_through)
        if isinstance(method, pika.spec.Basic.Ack):
            self.confirmed += newly
        else:
            self.nacked += newly
        self._confirmed_through = max(self._confirmed_through, through)
        if time.monotonic() < self._deadline:
            self._fill()
        elif self._confirmed_through == self._next_tag - 1:
            self.finished = time.monotonic()
            self._connection.close()


def _pipelined(params: pika.URLParameters, queue: str, body: bytes, seconds: float) -> float:
    publisher = _PipelinedPublisher(params, queue, body, seconds)
    publisher.run()
    if publisher.error is not None or not publisher.finished:
        raise RuntimeError(f"pipelined publishing failed: {publisher.error}")
    if publisher.nacked:
        raise RuntimeError(f"the broker refused {publisher.nacked} messages")
    return publisher.confirmed / (publisher.finished - publisher.started)
