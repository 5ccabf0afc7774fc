"""The API's publisher: confirmed, pipelined publishing from one I/O thread (or greenlet).

About 390 lines, on purpose in one module: the connection callbacks, the in-flight table
and the confirms are one state machine on one thread, and are read together.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pika
import pika.spec

from common.broker.connection import (
    BrokerUnavailable,
    PublishRefused,
    async_connection_class,
    connection_parameters,
    is_transient,
    message_properties,
    node_name,
    open_blocking,
)
from common.broker.topology import Topology
from common.logging import fields
from common.messages import CONTENT_TYPE, MESSAGE_TYPE
from common.retry import until_stopped

log = logging.getLogger(__name__)

NACK_RESTART_INTERVAL_S = 1.0


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

    ``on_gevent=True`` (gevent workers, after monkey-patching): the "thread" is a greenlet
    and the connection is pika's GeventConnection on the process's one hub, so a
    request greenlet hands its submission over with a plain callback and is woken by
    the confirm without any thread switch or GIL hand-off. Otherwise a SelectConnection
    runs its own I/O loop in a real thread.
    """

    def __init__(self, url: str, topology: Topology, compose: Compose, *, name: str = "amqp-publisher", on_gevent: bool = False) -> None:
        self._url = url
        self._on_gevent = on_gevent
        self._nodes: list[pika.URLParameters] = []  # still to try in this round, in shuffled order
        self._node = ""
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
        self._restarted_after_nack_at = float("-inf")
        self._open_error: BaseException | None = None
        self.last_error: BaseException | None = None  # why the last connection attempt failed; None once connected
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
            # Thread-safe on both loops; on the hub it just queues a callback after the running greenlets.
            connection.ioloop.add_callback(self._drain)  # type: ignore[union-attr]
        except Exception as exc:  # the loop is closing: the connection is gone
            self._fail_pending(BrokerUnavailable(f"connection to RabbitMQ is closing: {exc}"))
        return submission.confirmation

    def close(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            try:
                connection.ioloop.add_callback(self._close_connection)
            except Exception:
                pass
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the I/O thread

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                until_stopped(self._connect_and_serve, what="publisher connect", is_transient=is_transient, stop=self._stopping)
            except Exception:
                if self._stopping.is_set():
                    break
                log.exception("publisher failed; restarting it", extra=fields(name=self._name))
                self._stopping.wait(1.0)
        self._fail_pending(BrokerUnavailable("publisher stopped"))

    def _connect_and_serve(self) -> None:
        """Run one connection until it closes; raise if it never became ready (so tenacity backs off)."""
        try:
            self._serve_one_connection()
        except Exception as exc:
            self.last_error = exc  # for /ready: says why in operator words (common/diagnosis.py)
            raise

    def _serve_one_connection(self) -> None:
        """Each attempt goes to the next node of the URL list: after losing a node of a
        cluster, the first retry already goes elsewhere."""
        params = self._next_node()
        declaring = open_blocking(params)
        try:
            self._topology.declare(declaring)
        finally:
            declaring.close()
        self._open_error = None
        became_ready = threading.Event()
        self._became_ready = became_ready
        connection = async_connection_class(on_gevent=self._on_gevent)(
            params,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_open_error,
            on_close_callback=self._on_connection_closed,
        )
        with self._lock:
            self._connection = connection
        connection.ioloop.start()
        if not became_ready.is_set():
            raise self._open_error or BrokerUnavailable("connection closed before it was ready")

    def _next_node(self) -> pika.URLParameters:
        if not self._nodes:
            self._nodes = connection_parameters(self._url)
        params = self._nodes.pop()
        self._node = node_name(params)
        return params

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
        self.last_error = None
        self._ready.set()
        log.info("publisher connected", extra=fields(name=self._name, node=self._node))
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
            log.warning("publisher disconnected", extra=fields(name=self._name, node=self._node, reason=why))

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
                message_properties(message.message_id, CONTENT_TYPE, MESSAGE_TYPE),
                mandatory=True,
            )

    def _on_return(self, channel: Any, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
        # RabbitMQ sends basic.return before the ack of an unroutable mandatory message.
        self._returned.add(properties.message_id)
        log.error("message returned unroutable", extra=fields(queue=method.routing_key, reply=method.reply_text))

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        if not acked:
            self._start_over_after_a_nack()
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

    def _start_over_after_a_nack(self) -> None:
        """Drop the connection after a nack (at most once per NACK_RESTART_INTERVAL_S), so the next one is new.

        A RabbitMQ 3.10 channel that first publishes to a quorum queue while the queue has
        no leader (its leader's node just died) nacks every later message to that queue,
        even once a new leader is elected; a new channel is acked (reproduced with
        scripts/rabbitmq-cluster.sh: kill the node, publish from a channel opened on a
        survivor before the election). The callers of nacked messages get a 503 as before.
        """
        now = time.monotonic()
        if now - self._restarted_after_nack_at < NACK_RESTART_INTERVAL_S:
            return
        self._restarted_after_nack_at = now
        log.warning("RabbitMQ refused a message; starting over on a new connection", extra=fields(name=self._name, node=self._node))
        self._close_connection()

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
