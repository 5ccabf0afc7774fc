"""Declaring the topology: replication arguments on new queues, queues of an older version kept as they are."""
from __future__ import annotations

import logging

import pytest

from common.broker import BrokerAdmin, Topology, publish_in_bulk
from common.broker.topology import LEADER_LOCATOR, PLACEMENT_ARGUMENTS, QUORUM_GROUP_SIZE


def test_partition_queues_ask_for_three_replicas_and_balanced_leaders(settings):
    arguments = Topology(settings.queue_prefix, 1, settings.delivery_limit).partition_arguments()
    assert arguments["x-quorum-initial-group-size"] == QUORUM_GROUP_SIZE == 3
    assert arguments["x-queue-leader-locator"] == LEADER_LOCATOR == "balanced"


def test_a_queue_declared_by_an_older_version_is_used_as_it_is(settings, caplog):
    topology = Topology(settings.queue_prefix, 2, settings.delivery_limit)
    older = {k: v for k, v in topology.partition_arguments().items() if k not in PLACEMENT_ARGUMENTS}
    with BrokerAdmin(settings.amqp_url) as admin:
        admin.declare_queue(topology.partition_queue(1), older)
    publish_in_bulk(settings.amqp_url, topology.partition_queue(1), [b"kept"])

    with caplog.at_level(logging.WARNING, logger="common.broker.topology"), BrokerAdmin(settings.amqp_url) as admin:
        admin.declare(topology)  # 406 on partition 1 closes a channel; the declare goes on
        assert admin.queue_exists(topology.partition_queue(0)) and admin.queue_exists(topology.dead_queue)
        assert admin.message_count(topology.partition_queue(1)) == 1
    warned = [r for r in caplog.records if "without the replication arguments" in r.getMessage()]
    assert len(warned) == 1 and topology.partition_queue(1) in str(warned[0].__dict__), caplog.text


def test_a_queue_that_differs_in_more_than_placement_is_still_refused(settings):
    topology = Topology(settings.queue_prefix, 1, settings.delivery_limit)
    older = {k: v for k, v in topology.partition_arguments().items() if k not in PLACEMENT_ARGUMENTS}
    with BrokerAdmin(settings.amqp_url) as admin:
        admin.declare_queue(topology.partition_queue(0), {**older, "x-delivery-limit": settings.delivery_limit + 1})
    with pytest.raises(Exception, match="PRECONDITION_FAILED.*x-delivery-limit"), BrokerAdmin(settings.amqp_url) as admin:
        admin.declare(topology)
