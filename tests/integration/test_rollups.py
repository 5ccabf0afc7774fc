"""The rollups against the real database: site_hours in the flush, page_days by the cleaner, late views, retention."""
from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import text

from common.messages import new_message_id
from common.sites import site_of
from common.timeutil import hour_start_epoch
from tests.integration.test_cleaner import COMPACT_BEFORE, CUTOFF, NOW, insert_rows, make_cleaner
from tests.integration.test_store import batch_of
from worker.store import Store

HOUR = timedelta(hours=1)
# Whole inside the retention window (from 9 February) and ended by COMPACT_BEFORE (12:00, 10 March).
WHOLE_CLOSED_DAYS = [date(2025, 2, 9) + timedelta(days=n) for n in range(29)]
PAGES = ["example.com/a", "example.com/b", "shop.example/x", "/no-site", "bare", "例え.jp/ページ"]


def store(settings, engine) -> Store:
    return Store(engine, settings.num_shards, settings.retention_days, now=lambda: NOW)


def site_hours(engine) -> dict[tuple[str, datetime], int]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT site, view_hour, sum(views) FROM site_hours GROUP BY 1, 2"))
        return {(site, hour): int(views) for site, hour, views in rows}


def page_days(engine) -> dict[tuple[str, date], int]:
    with engine.connect() as connection:
        return {(page, day): int(views) for page, day, views in connection.execute(text("SELECT page, day, views FROM page_days"))}


def hourly_by_day(engine, days: set[date]) -> dict[tuple[str, date], int]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT page, (view_hour AT TIME ZONE 'UTC')::date, sum(views) FROM page_views GROUP BY 1, 2"))
        return {(page, day): int(views) for page, day, views in rows if day in days}


def assert_running_sums(engine) -> None:
    """Every page has a row on each built day after its first, and cum is the running sum of views."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT page, day, views, cum FROM page_days ORDER BY page, day")).all()
    built = built_days(engine)
    previous: dict[str, tuple[date, int]] = {}
    for page, day, views, cum in rows:
        if page in previous:
            last_day, last_cum = previous[page]
            assert built.index(day) == built.index(last_day) + 1, (page, day, "a built day without a row")
            assert cum == last_cum + views, (page, day)
        else:
            assert cum == views, (page, day)
        previous[page] = (day, cum)
    assert all(day == built[-1] for day, _cum in previous.values()), "rows carried forward to the last built day"


def built_days(engine) -> list[date]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT day FROM rollup_days ORDER BY day")).scalars())


def test_page_site_matches_site_of(engine):
    pages = [*PAGES, "example.com/", "a/b/c", "//x", "x/", "/"]
    with engine.connect() as connection:
        found = connection.execute(text("SELECT page, page_site(page) FROM unnest(CAST(:pages AS text[])) AS p(page)"), {"pages": pages}).all()
    assert {page: site for page, site in found} == {page: site_of(page) for page in pages}


def test_a_flush_adds_site_hours_once(settings, engine):
    views = [(page, hour_start_epoch(NOW - HOUR * k), 1 + k) for page in PAGES for k in range(3)]
    message = new_message_id()
    writer = store(settings, engine)
    writer.apply(batch_of((message, views)))
    writer.apply(batch_of((message, views)))  # redelivered: counted once, in page_views and in site_hours
    expected: Counter = Counter()
    for page, hour, count in views:
        expected[(site_of(page), datetime.fromtimestamp(hour, timezone.utc))] += count
    assert site_hours(engine) == dict(expected)


def test_the_cleaner_rolls_up_closed_days_once(settings, engine):
    rng = random.Random(3)
    hours = [COMPACT_BEFORE - HOUR * k for k in range(1, 24 * 4)]  # back into 4 March; 10 March is not closed
    insert_rows(engine, [(page, hour, shard, rng.randint(1, 9)) for page in PAGES for hour in hours for shard in (0, 1)])
    report = make_cleaner(settings, engine).run()
    assert built_days(engine) == WHOLE_CLOSED_DAYS and report.days_rolled_up == len(WHOLE_CLOSED_DAYS)
    assert {key: n for key, n in page_days(engine).items() if n} == hourly_by_day(engine, set(WHOLE_CLOSED_DAYS))
    assert_running_sums(engine)
    assert make_cleaner(settings, engine).run().days_rolled_up == 0


def test_late_views_for_a_rolled_up_day_reach_page_days_once(settings, engine):
    day_hour = datetime(2025, 3, 8, 5, tzinfo=timezone.utc)
    insert_rows(engine, [("example.com/a", day_hour, 0, 10)])
    make_cleaner(settings, engine).run()
    assert page_days(engine)[("example.com/a", date(2025, 3, 8))] == 10
    message = new_message_id()
    late = [("example.com/a", hour_start_epoch(day_hour + HOUR), 5), ("example.com/new", hour_start_epoch(day_hour), 2)]
    store(settings, engine).apply(batch_of((message, late)))
    store(settings, engine).apply(batch_of((message, late)))  # a redelivery adds nothing
    assert page_days(engine)[("example.com/a", date(2025, 3, 8))] == 15
    assert page_days(engine)[("example.com/new", date(2025, 3, 8))] == 2
    assert {key: n for key, n in page_days(engine).items() if n} == hourly_by_day(engine, {date(2025, 3, 8)})
    assert_running_sums(engine)


def test_rolling_up_stays_exact_while_late_views_arrive(settings, engine):
    """Builds and flushes of the same days race: each day's rollup equals its hourly rows."""
    days = [date(2025, 2, 20) + timedelta(days=n) for n in range(16)]
    insert_rows(engine, [(page, datetime(d.year, d.month, d.day, 3, tzinfo=timezone.utc), 0, 1) for page in PAGES for d in days])
    stop = threading.Event()
    flushed = Counter()

    def flush_late_views() -> None:
        rng, writer = random.Random(11), store(settings, engine)
        while not stop.is_set():
            views = [(rng.choice(PAGES), hour_start_epoch(datetime(d.year, d.month, d.day, rng.randrange(24), tzinfo=timezone.utc)), 1) for d in rng.sample(days, 3)]
            writer.apply(batch_of((new_message_id(), views)))
            flushed["flushes"] += 1

    writer = threading.Thread(target=flush_late_views)
    writer.start()
    try:
        cleaner = make_cleaner(settings, engine)
        while built_days(engine) != WHOLE_CLOSED_DAYS:
            cleaner.run()
    finally:
        stop.set()
        writer.join()
    assert flushed["flushes"] > 0
    assert {key: n for key, n in page_days(engine).items() if n} == hourly_by_day(engine, set(WHOLE_CLOSED_DAYS))
    assert_running_sums(engine)


def test_visitor_sketches_are_unioned_into_the_day(settings, engine):
    day_hour = datetime(2025, 3, 8, 5, tzinfo=timezone.utc)
    insert_rows(engine, [("example.com/a", day_hour, 0, 3), ("example.com/a", day_hour + HOUR, 0, 3)])
    with engine.begin() as connection:  # visitors 1,2,3 in the first hour and 2,3,4 in the second: 4 distinct
        for offset, ids in ((0, [1, 2, 3]), (1, [2, 3, 4])):
            connection.execute(
                text("UPDATE page_views SET visitors = (SELECT hll_add_agg(hll_hash_bigint(v)) FROM unnest(CAST(:ids AS bigint[])) v) WHERE view_hour = :hour"),
                {"ids": ids, "hour": day_hour + offset * HOUR},
            )
    make_cleaner(settings, engine).run()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT round(hll_cardinality(visitors)) FROM page_days")).scalar() == 4


def test_rollups_older_than_the_retention_window_are_removed(settings, engine):
    old, kept = CUTOFF - HOUR, CUTOFF
    writer = Store(engine, settings.num_shards, settings.retention_days, now=lambda: old + timedelta(days=settings.retention_days, minutes=10))
    writer.apply(batch_of((new_message_id(), [("example.com/a", hour_start_epoch(old), 1), ("example.com/a", hour_start_epoch(kept), 2)])))
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO rollup_days (day) VALUES (:old), (:whole)"), {"old": old.date(), "whole": old.date() + timedelta(days=1)})
        connection.execute(text("INSERT INTO page_days (day, page, views, cum) VALUES (:old, 'example.com/a', 3, 3), (:whole, 'example.com/a', 4, 7)"),
                           {"old": old.date(), "whole": old.date() + timedelta(days=1)})
    report = make_cleaner(settings, engine).run()
    assert report.rollup_rows_deleted == 2  # the site hour before the cutoff, the page day that is no longer whole
    assert set(site_hours(engine)) == {("example.com", kept)}
    assert old.date() not in built_days(engine) and old.date() + timedelta(days=1) in built_days(engine)
    assert [(page, day) for page, day in page_days(engine) if day <= old.date() + timedelta(days=1)] == [("example.com/a", old.date() + timedelta(days=1))]


def test_visitors_of_a_flush_reach_site_hours_and_rolled_up_days(settings, engine):
    """Visitor ids (message format v2) become sketches in page_views, site_hours and, for a built day, page_days."""
    day_hour = datetime(2025, 3, 8, 5, tzinfo=timezone.utc)
    insert_rows(engine, [("example.com/a", day_hour, 0, 1)])
    make_cleaner(settings, engine).run()  # 8 March is rolled up
    late = hour_start_epoch(day_hour + HOUR)
    views = [("example.com/a", late, 1, 11), ("example.com/b", late, 1, 11), ("example.com/b", late, 1, 12), ("other.test/x", late, 1, 13)]
    store(settings, engine).apply(batch_of((new_message_id(), views)))
    cardinality = "SELECT coalesce(round(hll_cardinality(hll_union_agg(visitors))), 0) FROM {table} WHERE {where}"
    with engine.connect() as connection:
        def count(table: str, where: str) -> int:
            return int(connection.execute(text(cardinality.format(table=table, where=where))).scalar())

        assert count("site_hours", "site = 'example.com'") == 2  # 11 and 12: a union, not 1 + 2
        assert count("site_hours", "true") == 3
        assert count("page_days", "page = 'example.com/b' AND day = '2025-03-08'") == 2
        assert count("page_days", "day = '2025-03-08'") == 3  # 11, 12 and 13
