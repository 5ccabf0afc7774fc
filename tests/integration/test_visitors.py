"""Visitors against the real database: sketches in the flush, unions that cannot inflate, compaction, salts."""
from __future__ import annotations

import random
import threading
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import text

from common.messages import new_message_id
from common.salts import SALT_BYTES, SaltStore
from common.timeutil import hour_start_epoch
from tests.fakes import pending
from tests.helpers import total_views, total_visitors
from worker.buffer import CountBuffer
from worker.cleaner import Cleaner
from worker.store import Store

# In the past, like the cleaner tests, so that compaction here never touches live days.
NOW = datetime(2025, 3, 10, 14, 30, tzinfo=timezone.utc)
OLD_HOUR = datetime(2025, 3, 10, 9, tzinfo=timezone.utc)  # older than COMPACT_AFTER=2 hours
H = hour_start_epoch(OLD_HOUR)


def batch_of(*messages):
    buffer = CountBuffer(100_000, 1.0)
    for tag, views in enumerate(messages, 1):
        buffer.add(pending(new_message_id(), views, tag), views)
    return buffer.drain()


def store(settings, engine, shards: int | None = None, seed: int = 1) -> Store:
    return Store(engine, shards or settings.num_shards, settings.retention_days, rng=random.Random(seed), now=lambda: NOW)


def visitor_ids(count: int, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(-(2**63), 2**63) for _ in range(count)]


def beacon_views(page: str, ids: list[int]) -> list[tuple[str, int, int, int]]:
    return [(page, H, 1, visitor) for visitor in ids]


def sketch_rows(engine, page: str) -> list[bool]:
    with engine.connect() as connection:
        return connection.execute(text("SELECT visitors IS NOT NULL FROM page_views WHERE page = :p ORDER BY shard"), {"p": page}).scalars().all()


def test_a_flush_stores_exact_visitors_up_to_100(settings, engine):
    ids = visitor_ids(100)
    writer = store(settings, engine)
    for start in range(0, 100, 10):  # ten flushes over random shards
        writer.apply(batch_of(beacon_views("example.com/", ids[start : start + 10])))
    assert total_views(engine, "example.com/") == 100
    assert total_visitors(engine, "example.com/", OLD_HOUR) == 100


def test_a_visitor_seen_many_times_is_one_visitor(settings, engine):
    writer = store(settings, engine)
    for _ in range(5):
        writer.apply(batch_of(beacon_views("example.com/", [42, 43]), beacon_views("example.com/", [42])))
    assert total_views(engine, "example.com/") == 15
    assert total_visitors(engine, "example.com/") == 2


def test_ten_thousand_visitors_within_two_percent(settings, engine):
    ids = visitor_ids(10_000)
    writer = store(settings, engine)
    for start in range(0, 10_000, 1000):
        writer.apply(batch_of(beacon_views("example.com/", ids[start : start + 1000])))
    assert abs(total_visitors(engine, "example.com/") - 10_000) <= 200


def test_views_without_visitors_leave_no_sketch_and_mix_with_those_that_have_one(settings, engine):
    writer = store(settings, engine, shards=1)
    writer.apply(batch_of([("example.com/a", H, 3)]))
    assert sketch_rows(engine, "example.com/a") == [False]
    assert total_visitors(engine, "example.com/a") == 0
    writer.apply(batch_of(beacon_views("example.com/a", [1, 2])))  # NULL sketch united with one
    writer.apply(batch_of([("example.com/a", H, 4)]))  # a sketch united with NULL stays
    assert sketch_rows(engine, "example.com/a") == [True]
    assert (total_views(engine, "example.com/a"), total_visitors(engine, "example.com/a")) == (9, 2)


def test_a_redelivered_message_counts_its_views_once_and_cannot_inflate_visitors(settings, engine):
    writer = store(settings, engine)
    message_id = new_message_id()
    views = beacon_views("example.com/", visitor_ids(50))
    for _ in range(3):
        buffer = CountBuffer(10, 1.0)
        buffer.add(pending(message_id, views, 1), views)
        writer.apply(buffer.drain())
    assert (total_views(engine, "example.com/"), total_visitors(engine, "example.com/")) == (50, 50)


def test_compaction_merges_sketches_with_the_counts(settings, engine):
    ids = visitor_ids(300)
    writer = store(settings, engine)
    for start in range(0, 300, 30):
        writer.apply(batch_of(beacon_views("example.com/", ids[start : start + 30]), [("example.com/", H, 2)]))
    writer.apply(batch_of([("example.com/plain", H, 5)], [("example.com/plain", H, 5)]))
    writer.apply(batch_of([("example.com/plain", H, 1)]))
    assert len(sketch_rows(engine, "example.com/")) > 1

    Cleaner(settings, engine, clock=lambda: NOW).run()

    assert sketch_rows(engine, "example.com/") == [True]
    assert (total_views(engine, "example.com/"), total_visitors(engine, "example.com/")) == (320, 300)
    assert sketch_rows(engine, "example.com/plain") == [False]
    assert total_views(engine, "example.com/plain") == 11


# --------------------------------------------------------------------------- salts


def clear_salts(engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM visitor_salts"))


def test_a_day_gets_one_random_salt_that_stays(settings, engine):
    clear_salts(engine)
    salts = SaltStore(engine)
    first = salts.salt_of(date(2025, 3, 10))
    assert len(first) == SALT_BYTES
    assert salts.salt_of(date(2025, 3, 10)) == first
    assert SaltStore(engine).salt_of(date(2025, 3, 10)) == first  # another process reads the same
    assert salts.salt_of(date(2025, 3, 11)) != first


def test_processes_racing_for_a_new_day_agree_on_its_salt(settings, engine):
    clear_salts(engine)
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def take() -> None:
        barrier.wait()
        results.append(SaltStore(engine).salt_of(date(2025, 3, 12)))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1


def test_the_cleaner_deletes_salts_older_than_two_days(settings, engine):
    clear_salts(engine)
    salts = SaltStore(engine)
    days = [NOW.date() - timedelta(days=back) for back in range(4)]
    for day in days:
        salts.salt_of(day)
    report = Cleaner(settings, engine, clock=lambda: NOW).run()
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT day FROM visitor_salts ORDER BY day DESC")).scalars().all()
    assert kept == days[:2]  # today and yesterday
    assert report is not None and report.salts_deleted == 2
