"""The consume loop with a fake broker session and a fake store: when it flushes, what it acknowledges, how it stops.

The clock is injected and moves only when an idle pump "waits"; the flusher is the real
thread. tests/faults runs the same paths against a real RabbitMQ and PostgreSQL.
"""
from __future__ import annotations

import threading

import pytest

from common.config import Settings
from common.messages import new_message_id
from tests.fakes import FakeBroker, FakeClock, FakeStore, database_error
from tests.helpers import wait_for
from worker.consumer import Consumer

H = 1752660000  # 2025-07-16T10:00:00Z
OUTAGE = database_error("57P01", "terminating connection due to administrator command")


class Running:
    """A Consumer.run() on a thread of its own, stopped by finish()."""

    def __init__(self, settings: Settings, store: FakeStore, broker: FakeBroker) -> None:
        self.stop = threading.Event()
        self.consumer = Consumer(settings, store, self.stop, clock=broker.clock, open_session=broker.open)
        self.clean: bool | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.clean = self.consumer.run()

    def finish(self) -> bool | None:
        self.stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the consume loop did not stop"
        return self.clean


def settings_with(**values: str) -> Settings:
    return Settings.from_mapping({"NUM_PARTITIONS": "1", "BATCH_SIZE": "3", "FLUSH_INTERVAL_MS": "500", "PREFETCH": "10", **values})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def broker(clock) -> FakeBroker:
    return FakeBroker(clock)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def start(store, broker):
    running: list[Running] = []

    def start(**settings: str) -> Running:
        running.append(Running(settings_with(**settings), store, broker))
        return running[-1]

    yield start
    for consumer in running:
        consumer.finish()


def test_a_full_batch_is_written_then_acknowledged_through_its_last_tag(start, broker, store):
    for page in ("a", "b", "a"):
        broker.publish(new_message_id(), [(page, H, 2)])
    loop = start(FLUSH_INTERVAL_MS="600000")
    wait_for(lambda: broker.acks == [3], what="one ack through tag 3")
    assert store.counts == {("a", H): 4, ("b", H): 2}
    assert broker.unacknowledged == 0
    assert loop.finish() is True
    assert (loop.consumer.stats.messages, loop.consumer.stats.views, loop.consumer.stats.flushes) == (3, 6, 1)


def test_a_partial_batch_is_flushed_once_the_flush_interval_has_passed(start, broker, store, clock):
    written_at: list[float] = []
    apply = store.apply
    store.apply = lambda batch: written_at.append(clock()) or apply(batch)  # type: ignore[method-assign]
    started = clock()
    broker.publish(new_message_id(), [("a", H, 1)])
    start(FLUSH_INTERVAL_MS="500")
    wait_for(lambda: broker.acks == [1], what="the ack")
    assert written_at and written_at[0] - started >= 0.5
    assert store.counts == {("a", H): 1}


def test_a_full_prefetch_window_flushes_without_waiting_for_the_interval(start, broker, store, clock):
    broker.prefetch = 2
    started = clock()
    for _ in range(4):
        broker.publish(new_message_id(), [("a", H, 1)])
    start(PREFETCH="2", BATCH_SIZE="100", FLUSH_INTERVAL_MS="600000")
    wait_for(lambda: store.counts[("a", H)] == 4 and broker.unacknowledged == 0, what="all four written and acknowledged")
    assert broker.acks == [2, 4]  # two batches of two, each flushed as its window filled
    assert clock() - started < 600


def test_a_malformed_body_is_dead_lettered_at_once_and_the_rest_counted(start, broker, store):
    broker.publish(new_message_id(), [("a", H, 1)])
    broker.publish_body(b'{"v": 1, "id": "not-a-uuid", "views": []}')
    broker.publish(new_message_id(), [("a", H, 1)])
    broker.publish(new_message_id(), [("a", H, 1)])
    start()
    wait_for(lambda: store.counts[("a", H)] == 3 and broker.unacknowledged == 0, what="three counted, all settled")
    [(body, reason)] = broker.dead
    assert b"not-a-uuid" in body and reason.startswith("malformed message: id must be a UUID")


def test_a_message_the_database_refuses_is_dead_lettered_with_its_reason(start, broker, store):
    store.rejected_pages = {"bad"}
    broker.publish(new_message_id(), [("a", H, 1)])
    poison = new_message_id()
    broker.publish(poison, [("bad", H, 1)])
    broker.publish(new_message_id(), [("b", H, 1)])
    loop = start()
    wait_for(lambda: broker.acks == [3], what="the batch acknowledged")
    assert store.counts == {("a", H): 1, ("b", H): 1}
    [(body, reason)] = broker.dead
    assert poison.encode() in body and reason.startswith("rejected by the database:")
    assert loop.finish() is True and loop.consumer.stats.dead_lettered == 1


def test_a_lost_connection_drops_the_buffer_and_redeliveries_count_once(start, broker, store):
    ids = [new_message_id() for _ in range(3)]
    broker.publish(ids[0], [("a", H, 1)])
    broker.publish(ids[1], [("a", H, 1)])
    start(FLUSH_INTERVAL_MS="600000")
    wait_for(lambda: len(broker.sessions) == 1 and len(broker.sessions[0].unacked) == 2, what="two buffered")
    broker.sessions[0].lose_connection = True
    wait_for(lambda: len(broker.sessions) == 2 and len(broker.sessions[1].unacked) == 2, what="both redelivered on a new session")
    broker.publish(ids[2], [("a", H, 1)])
    wait_for(lambda: broker.acks == [3], what="the batch of three acknowledged on the new session")
    assert store.counts == {("a", H): 3} and store.calls == 1


def test_a_batch_written_for_a_lost_session_is_not_acknowledged_on_the_next(start, broker, store):
    store.failing = OUTAGE
    ids = [new_message_id() for _ in range(3)]
    for message_id in ids:
        broker.publish(message_id, [("a", H, 1)])
    start(FLUSH_INTERVAL_MS="600000")
    wait_for(lambda: store.calls >= 1, what="the flusher trying the first batch")
    broker.sessions[0].lose_connection = True
    wait_for(lambda: len(broker.sessions) == 2 and len(broker.sessions[1].unacked) == 3, what="all three redelivered")
    store.failing = None
    # The first batch commits, but its session is gone: no ack for it. The redelivered
    # batch finds its ids applied, adds nothing, and is acknowledged on the new session.
    wait_for(lambda: broker.acks == [3] and broker.unacknowledged == 0, what="one ack, on the new session")
    assert store.counts == {("a", H): 3}
    assert len(broker.sessions[1].unacked) == 0 and broker.sessions[0].closed


def test_a_broker_that_refuses_connections_is_retried(start, broker, store):
    broker.refuse_connections = 2
    for _ in range(3):
        broker.publish(new_message_id(), [("a", H, 1)])
    start()
    wait_for(lambda: broker.acks == [3], what="the batch, after two refused connections")
    assert len(broker.sessions) == 1


def test_stopping_writes_and_acknowledges_what_is_buffered(start, broker, store):
    broker.publish(new_message_id(), [("a", H, 1)])
    broker.publish(new_message_id(), [("a", H, 1)])
    loop = start(FLUSH_INTERVAL_MS="600000")
    wait_for(lambda: len(broker.sessions) == 1 and len(broker.sessions[0].unacked) == 2, what="two buffered")
    assert loop.finish() is True
    assert broker.acks == [2] and store.counts == {("a", H): 2}
    assert broker.sessions[0].closed


def test_stopping_during_an_outage_gives_up_after_the_grace_period_and_acknowledges_nothing(start, broker, store):
    store.failing = OUTAGE
    broker.publish(new_message_id(), [("a", H, 1)])
    loop = start(FLUSH_INTERVAL_MS="600000")
    wait_for(lambda: len(broker.sessions) == 1 and len(broker.sessions[0].unacked) == 1, what="one buffered")
    assert loop.finish() is False
    assert broker.acks == [] and store.counts == {}
    assert len(broker.ready) == 1  # back in its queue for the next worker
