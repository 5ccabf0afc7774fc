"""worker.store against the real database: one transaction, ids applied once, partitions on demand."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from common.messages import new_message_id
from common.timeutil import hour_start_epoch
from tests.fakes import pending
from tests.helpers import total_views
from worker.buffer import CountBuffer
from worker.store import Store

NOW = datetime(2026, 11, 22, 15, 30, tzinfo=timezone.utc)


def batch_of(*messages):
    buffer = CountBuffer(1000, 1.0)
    for tag, (message_id, views) in enumerate(messages, 1):
        buffer.add(pending(message_id, views, tag), views)
    return buffer.drain()


def hour(hours_ago: int) -> int:
    return hour_start_epoch(NOW - timedelta(hours=hours_ago))


def make_store(settings, engine, **kwargs) -> Store:
    return Store(engine, settings.num_shards, settings.retention_days, now=lambda: NOW, **kwargs)


def test_a_flush_adds_collapsed_counts_into_sharded_hourly_rows(settings, engine):
    store = make_store(settings, engine)
    applied = store.apply(batch_of((new_message_id(), [("a", hour(1), 2), ("b", hour(1), 1)]), (new_message_id(), [("a", hour(1), 3)])))
    assert (applied.messages, applied.views, applied.rows) == (2, 6, 2)
    store.apply(batch_of((new_message_id(), [("a", hour(1), 4)])))
    assert total_views(engine, "a") == 9
    with engine.connect() as connection:
        shards = connection.execute(text("SELECT shard FROM page_views WHERE page = 'a'")).scalars().all()
    assert all(0 <= shard < settings.num_shards for shard in shards)


def test_an_id_already_applied_is_skipped_in_a_later_batch(settings, engine):
    store = make_store(settings, engine)
    repeated = new_message_id()
    store.apply(batch_of((repeated, [("a", hour(2), 5)])))
    applied = store.apply(batch_of((repeated, [("a", hour(2), 5)]), (new_message_id(), [("a", hour(2), 1)])))
    assert (applied.messages, applied.duplicates, applied.views) == (1, 1, 1)
    assert total_views(engine, "a") == 6


def test_without_exactly_once_ids_are_not_recorded(settings, engine):
    store = make_store(settings, engine, exactly_once=False)
    repeated = new_message_id()
    store.apply(batch_of((repeated, [("a", hour(2), 5)])))
    store.apply(batch_of((repeated, [("a", hour(2), 5)])))
    assert total_views(engine, "a") == 10
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM applied_messages")).scalar() == 0


def test_views_that_left_the_retention_window_while_queued_are_skipped(settings, engine):
    store = make_store(settings, engine)
    cutoff_hours = settings.retention_days * 24  # the cutoff is the hour of NOW, that many days back
    applied = store.apply(batch_of((new_message_id(), [("a", hour(cutoff_hours), 1), ("a", hour(cutoff_hours + 1), 7)])))
    assert (applied.views, applied.expired) == (1, 7)
    assert total_views(engine, "a") == 1


def test_partitions_are_created_on_demand_and_long_unicode_pages_fit(settings, engine):
    store = make_store(settings, engine)
    page = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(2048))  # 6 kB of CJK: too long for a btree key
    day_hour = hour_start_epoch(datetime(2026, 11, 10, 3, tzinfo=timezone.utc))
    store.apply(batch_of((new_message_id(), [(page, day_hour, 3)])))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT to_regclass('page_views_20261110') IS NOT NULL")).scalar()
    assert total_views(engine, page) == 3


def test_a_replaced_connection_prepares_the_flush_statements_again(settings, engine):
    # The flush's statements are PREPAREd once per connection (common/sql/prepared.py); a
    # connection replaced after PostgreSQL restarted has none of them.
    store = make_store(settings, engine)
    store.apply(batch_of((new_message_id(), [("a", hour(1), 1)])))
    engine.dispose()  # as a disconnect does (it invalidates the pool): the next checkout opens a new connection
    store.apply(batch_of((new_message_id(), [("a", hour(1), 2)])))
    assert total_views(engine, "a") == 3
