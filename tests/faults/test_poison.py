"""Poison goes to <prefix>.dead with the reason, after at most a few attempts; everything else stays exact."""
from __future__ import annotations

import orjson
import pytest
from sqlalchemy import text

from common import messages
from common.broker import BrokerAdmin, ConsumerSession, Topology
from tests.exactness import drain_direct, message_body, publish_direct, queue_of
from tests.helpers import total_views, wait_for
from worker import deadletters

pytestmark = pytest.mark.fault

REJECTED_PAGE = "example.com/rejected-by-the-database"


def dead_letters(settings, expected: int) -> list:
    topology = Topology.from_settings(settings)
    with BrokerAdmin(settings.amqp_url) as admin:
        wait_for(lambda: admin.message_count(topology.dead_queue) == expected, what=f"{expected} dead letters")
        return [admin.get(topology.dead_queue) for _ in range(expected)]


def test_undecodable_and_wrongly_shaped_messages_are_dead_lettered_with_the_reason(settings, start_worker, engine):
    topology = Topology.from_settings(settings)
    start_worker()
    publish_direct(settings, "example.com/good", 4)
    with BrokerAdmin(settings.amqp_url) as admin:
        admin.publish(topology.partition_queue(0), b"\x00\xff\xfe garbage, not JSON", "garbage")
        admin.publish(topology.partition_queue(1), orjson.dumps({"v": 1, "id": "not-a-uuid", "views": []}), "wrong-fields")
        admin.publish(topology.partition_queue(2), orjson.dumps({"v": 1, "id": messages.new_message_id(), "views": [["p", 0, True]]}), "bool-count")
    publish_direct(settings, "example.com/good", 6)

    letters = dead_letters(settings, 3)
    reasons = {letter.message_id: letter.headers["x-error"] for letter in letters}
    assert set(reasons) == {"garbage", "wrong-fields", "bool-count"}
    assert "not UTF-8 JSON" in reasons["garbage"]
    assert "id must be a UUID" in reasons["wrong-fields"]
    assert "count must be an integer" in reasons["bool-count"]
    assert {letter.headers["x-original-queue"] for letter in letters} == {topology.partition_queue(p) for p in (0, 1, 2)}
    drain_direct(settings, engine)
    assert total_views(engine, "example.com/good") == 10


def test_message_the_database_rejects_is_isolated_and_dead_lettered(settings, start_worker, engine):
    # An operator's constraint stands in for any data the database refuses.
    with engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE page_views ADD CONSTRAINT ck_test_rejects CHECK (page <> '{REJECTED_PAGE}')"))
    try:
        for index in range(20):
            publish_direct(settings, f"example.com/neighbour/{index}", index + 1)
        publish_direct(settings, REJECTED_PAGE, 1)
        start_worker()
        letters = dead_letters(settings, 1)
        assert "ck_test_rejects" in letters[0].headers["x-error"]
        drain_direct(settings, engine)
        neighbours = sum(total_views(engine, f"example.com/neighbour/{index}") for index in range(20))
        assert neighbours == sum(range(1, 21))
        assert total_views(engine, REJECTED_PAGE) == 0
    finally:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE page_views DROP CONSTRAINT IF EXISTS ck_test_rejects"))


def test_message_whose_consumer_keeps_dying_is_dead_lettered_after_the_delivery_limit(settings, engine):
    limited = settings.replace(delivery_limit=2)
    topology = Topology.from_settings(limited)
    page = "example.com/kills-its-worker"
    message_id = publish_direct(limited, page, 1)
    partition = next(p for p in range(limited.num_partitions) if _queue_has_messages(limited, topology.partition_queue(p)))
    for _attempt in range(limited.delivery_limit + 1):
        deliveries: list = []
        with ConsumerSession(limited.amqp_url, topology, [partition], 1, deliveries.append) as session:
            wait_for(lambda: session.pump(0.05) or deliveries, what="the delivery")
        # The session closes without acknowledging: to the broker, the consumer died.
    letter = dead_letters(limited, 1)[0]
    assert letter.message_id == message_id
    assert letter.headers["x-first-death-reason"] == "delivery_limit"


def _message_count(settings, queue: str) -> int:
    with BrokerAdmin(settings.amqp_url) as admin:
        return admin.message_count(queue)


def _queue_has_messages(settings, queue: str) -> bool:
    return _message_count(settings, queue) > 0


def test_dead_letters_can_be_listed_and_replayed_safely(settings, start_worker, engine):
    topology = Topology.from_settings(settings)
    start_worker()
    # Counted, and dead-lettered as well (say its acknowledgement was lost until the delivery limit).
    counted = publish_direct(settings, "example.com/replay/counted", 2)
    wait_for(lambda: total_views(engine, "example.com/replay/counted") == 2, what="the original counted")
    # Dead-lettered by RabbitMQ before any worker counted it.
    pending = messages.new_message_id()
    with BrokerAdmin(settings.amqp_url) as admin:
        admin.publish(topology.dead_queue, message_body("example.com/replay/counted", 2, counted), counted,
                      headers={"x-error": "rejected by the database: test", "x-original-queue": queue_of(settings, "example.com/replay/counted")})
        admin.publish(topology.dead_queue, message_body("example.com/replay/pending", 5, pending), pending,
                      headers={"x-first-death-reason": "delivery_limit", "x-first-death-queue": queue_of(settings, "example.com/replay/pending")})

    with BrokerAdmin(settings.amqp_url) as admin:
        listed = deadletters.list_dead_letters(admin, topology, 10)
    assert [deadletters.reason(m) for m in listed] == ["rejected by the database: test", "delivery_limit (by RabbitMQ)"]
    # Listing removed nothing: the messages it read return to the queue when its connection
    # closes, which RabbitMQ does asynchronously, hence a wait rather than a single look.
    wait_for(lambda: _message_count(settings, topology.dead_queue) == 2, what="the listed dead letters back in their queue")
    with BrokerAdmin(settings.amqp_url) as admin:
        assert deadletters.replay(admin, topology, 10) == 2
        assert admin.message_count(topology.dead_queue) == 0
    drain_direct(settings, engine)
    assert total_views(engine, "example.com/replay/counted") == 2  # skipped: its id was already applied
    assert total_views(engine, "example.com/replay/pending") == 5
