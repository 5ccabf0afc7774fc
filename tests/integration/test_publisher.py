"""common.broker.Publisher against the real RabbitMQ: confirms, refusals, group commit."""
from __future__ import annotations

import logging
import threading
from functools import partial

import pytest

from api.publishing import IngestRequest, compose
from common import messages
from common.broker import BrokerAdmin, BrokerUnavailable, ConsumerSession, Outgoing, Publisher, PublishRefused, Topology
from tests.helpers import wait_for

H = 1752660000


@pytest.fixture
def topology(settings) -> Topology:
    return Topology(settings.queue_prefix, 1, settings.delivery_limit)


def started(settings, topology, compose_with=None) -> Publisher:
    publisher = Publisher(settings.amqp_url, topology, compose_with or partial(compose, topology)).start()
    assert publisher.wait_connected(10)
    return publisher


def queued_views(settings, topology) -> tuple[int, int]:
    """(messages, views) waiting in partition 0 (consumed without acknowledging)."""
    with BrokerAdmin(settings.amqp_url) as admin:
        total = admin.message_count(topology.partition_queue(0))
    seen: list = []
    with ConsumerSession(settings.amqp_url, topology, [0], 1000, seen.append) as session:
        wait_for(lambda: session.pump(0.05) or len(seen) >= total, what=f"{total} messages")
    return len(seen), sum(count for delivery in seen for _page, _hour, count in messages.decode(delivery.body).views)


def test_a_confirmed_submission_is_in_its_queue(settings, topology):
    publisher = started(settings, topology)
    try:
        publisher.submit(IngestRequest({0: {("example.com/a", H): 3}})).wait(5)
    finally:
        publisher.close()
    assert queued_views(settings, topology) == (1, 3)


def test_an_unroutable_message_is_refused_not_confirmed(settings, topology):
    def to_nowhere(payloads):
        return [Outgoing("no-such-queue", b"{}", messages.new_message_id(), list(range(len(payloads))))]

    publisher = started(settings, topology, to_nowhere)
    try:
        with pytest.raises(PublishRefused, match="could not route"):
            publisher.submit("anything").wait(5)
    finally:
        publisher.close()


def test_after_a_nack_the_publisher_starts_over_on_a_new_connection(settings, topology, caplog):
    full = f"{settings.queue_prefix}.full"  # takes nothing: every message to it is nacked
    with BrokerAdmin(settings.amqp_url) as admin:
        admin.declare_queue(full, {"x-max-length": 0, "x-overflow": "reject-publish"})

    def to_full_then_partition(payloads):
        queue = full if payloads[0] == "full" else topology.partition_queue(0)
        return [Outgoing(queue, messages.encode(messages.new_message_id(), [("example.com/a", H, 1)]), messages.new_message_id(), [0])]

    publisher = started(settings, topology, to_full_then_partition)
    try:
        with caplog.at_level(logging.WARNING, logger="common.broker.publisher"):
            with pytest.raises(PublishRefused, match="nack"):
                publisher.submit("full").wait(5)
            wait_for(lambda: "starting over on a new connection" in caplog.text, what="the publisher starting over")
        assert publisher.wait_connected(10)
        wait_for(lambda: _accepted(publisher), what="a message accepted on the new connection")
    finally:
        publisher.close()
        with BrokerAdmin(settings.amqp_url) as admin:
            admin.delete_queue(full)


def _accepted(publisher) -> bool:
    try:
        publisher.submit("partition").wait(5)
        return True
    except BrokerUnavailable:  # the old connection closing, the new one not ready yet
        return False


def test_submitting_while_disconnected_fails_at_once(settings, topology):
    publisher = Publisher("amqp://guest:guest@127.0.0.1:1/%2F", topology, partial(compose, topology)).start()
    try:
        with pytest.raises(BrokerUnavailable, match="not connected"):
            publisher.submit(IngestRequest({0: {("example.com/a", H): 1}})).wait(1)
    finally:
        publisher.close()


def test_concurrent_submissions_are_merged_into_fewer_messages(settings, topology):
    publisher = started(settings, topology)
    go = threading.Barrier(20)
    errors: list = []

    def submit_many() -> None:
        go.wait()
        for index in range(25):
            try:
                publisher.submit(IngestRequest({0: {(f"example.com/{index % 5}", H): 1}})).wait(10)
            except Exception as exc:  # collected for the assertion
                errors.append(exc)

    threads = [threading.Thread(target=submit_many) for _ in range(20)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        publisher.close()
    assert errors == []
    count, views = queued_views(settings, topology)
    assert views == 500
    assert count < 500  # group commit: requests that waited together shared a message
