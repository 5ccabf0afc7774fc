"""Queue depth and consumers from the management API, and from AMQP when it is not there."""
from __future__ import annotations

import pytest

from common.broker import BrokerAdmin, Topology
from common.broker.stats import QueueStatsUnavailable, from_amqp, from_management, queue_stats
from tests.helpers import free_port, wait_for


def _loaded(settings) -> list[str]:
    topology = Topology(settings.queue_prefix, settings.num_partitions, settings.delivery_limit)
    queue = topology.partition_queue(0)
    with BrokerAdmin(settings.amqp_url) as admin:
        admin.declare(topology)
        for index in range(3):
            admin.publish(queue, b"{}", message_id=f"m{index}")
    return [queue, topology.partition_queue(1)]


def test_amqp_gives_ready_and_consumers_but_not_unacked(settings):
    full, empty = _loaded(settings)
    stats = from_amqp(settings.amqp_url, [full, empty])
    assert (stats[full].ready, stats[full].unacked, stats[full].consumers, stats[full].source) == (3, None, 0, "amqp")
    assert stats[empty].ready == 0


def test_management_gives_ready_and_unacked(settings):
    full, _empty = _loaded(settings)
    try:
        from_management(settings.amqp_url, [full], timeout=2)
    except OSError as exc:
        pytest.skip(f"the management API does not answer here: {exc}")
    except ValueError:
        pass  # not sampled yet
    stats = wait_for(lambda: _sampled(settings.amqp_url, full), timeout=20, what="the broker's next statistics sample")
    assert (stats.ready, stats.unacked, stats.consumers, stats.source) == (3, 0, 0, "management")


def _sampled(url: str, queue: str):
    try:
        stats = from_management(url, [queue])[queue]
    except ValueError:
        return None
    return stats if stats.ready == 3 else None


def test_neither_source_says_why_for_both(settings):
    closed = settings.amqp_url.replace(":5672/", f":{free_port()}/") if ":5672/" in settings.amqp_url else None
    if closed is None:
        pytest.skip("the broker is not on port 5672 here")
    with pytest.raises(QueueStatsUnavailable, match="management API: .*; AMQP: "):
        queue_stats(closed, ["anything.p0"])
