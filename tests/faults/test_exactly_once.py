"""Duplicates are counted once: a republished message, a retried request, a redelivery after commit."""
from __future__ import annotations

import pytest

from common import messages
from common.broker import BrokerAdmin, ConsumerSession, Topology
from common.partitioning import partition_for
from tests.exactness import SENTINEL_PREFIX, drain, drain_direct, publish_direct
from tests.helpers import hour_ago, total_views, views_by_page_hour, wait_for
from worker.buffer import CountBuffer
from worker.pending import Pending
from worker.store import Store

pytestmark = pytest.mark.fault


def counted_without_sentinels(engine) -> dict:
    return {key: views for key, views in views_by_page_hour(engine).items() if not key[0].startswith(SENTINEL_PREFIX)}


def test_same_message_published_twice_is_counted_once(settings, start_worker, engine):
    start_worker()
    same_batch = publish_direct(settings, "example.com/dup-a", 5)
    publish_direct(settings, "example.com/dup-a", 5, message_id=same_batch)  # lands in the same batch
    first = publish_direct(settings, "example.com/dup-b", 7)
    wait_for(lambda: total_views(engine, "example.com/dup-b") == 7, what="the first copy counted")
    publish_direct(settings, "example.com/dup-b", 7, message_id=first)  # a later batch
    drain_direct(settings, engine)
    assert total_views(engine, "example.com/dup-a") == 5
    assert total_views(engine, "example.com/dup-b") == 7


def test_request_repeated_with_one_idempotency_key_is_counted_once(settings, start_api, start_worker, engine):
    api = start_api()
    start_worker()
    hour = hour_ago(2)
    single = {"page": "example.com/keyed", "timestamp": hour}
    multi = {f"example.com/keyed/{index}": {hour: index + 1} for index in range(12)}  # spans every partition
    for _ in range(3):
        assert api.post("/page-views/single", single, headers={"Idempotency-Key": "single-1"}).json() == {"accepted": 1}
        assert api.post("/page-views/multi", multi, headers={"Idempotency-Key": "multi-1"}).json() == {"accepted": 78}
    # Another key is another request, counted again.
    assert api.post("/page-views/single", single, headers={"Idempotency-Key": "single-2"}).status_code == 202
    drain(api, settings, engine)
    assert total_views(engine, "example.com/keyed") == 2
    assert sum(views for (page, _), views in counted_without_sentinels(engine).items() if page.startswith("example.com/keyed/")) == 78


def test_redelivery_after_commit_without_ack_is_counted_once(settings, engine):
    """The crash window itself: the flush commits, the ack never happens, the message comes back."""
    topology = Topology.from_settings(settings)
    page = "example.com/crash-window"
    partition = partition_for(page, settings.num_partitions)
    publish_direct(settings, page, 3)
    store = Store(engine, settings.num_shards, settings.retention_days)

    def deliver_and_apply() -> tuple[bool, int]:
        deliveries = []
        with ConsumerSession(settings.amqp_url, topology, [partition], 10, deliveries.append) as session:
            wait_for(lambda: session.pump(0.05) or deliveries, what="a delivery")
            buffer = CountBuffer(10, 1.0)
            decoded = messages.decode(deliveries[0].body)
            buffer.add(Pending(decoded.id, deliveries[0]), decoded.views)
            applied = store.apply(buffer.drain())
            # Leaving without ack_through(): the connection closes and the broker requeues.
        return deliveries[0].redelivered, applied.duplicates

    assert deliver_and_apply() == (False, 0)
    assert total_views(engine, page) == 3
    assert deliver_and_apply() == (True, 1)
    assert total_views(engine, page) == 3
    with BrokerAdmin(settings.amqp_url) as admin:
        # Never acknowledged, so it is back in its queue a third time, and would be skipped again.
        wait_for(lambda: admin.message_count(topology.partition_queue(partition)) == 1, what="the message back in its queue")
