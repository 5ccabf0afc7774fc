"""The cleaner against the real database: retention to the hour, exact compaction while workers write, one runner."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import text

from common.config import Settings
from common.timeutil import floor_hour
from tests.helpers import ROOT, Process, total_views, views_by_page_hour, wait_for
from worker.cleaner import CLEANER_LOCK_KEY, Cleaner

HOUR = timedelta(hours=1)
# A fixed clock in the past, so that the partitions these tests create and drop never
# touch the days that tests running against the real clock write into.
NOW = datetime(2025, 3, 10, 14, 30, tzinfo=timezone.utc)
CUTOFF = datetime(2025, 2, 8, 14, tzinfo=timezone.utc)  # NOW's hour minus RETENTION_DAYS=30
COMPACT_BEFORE = datetime(2025, 3, 10, 12, tzinfo=timezone.utc)  # NOW's hour minus COMPACT_AFTER=2


def make_cleaner(settings: Settings, engine, now: datetime = NOW, **options) -> Cleaner:
    return Cleaner(settings, engine, clock=lambda: now, **options)


def ensure_days(engine, *days: date) -> None:
    with engine.begin() as connection:
        for day in sorted(set(days)):
            connection.execute(text("SELECT page_views_ensure_partition(:day)"), {"day": day})


def insert_rows(engine, rows: list[tuple[str, datetime, int, int]]) -> None:
    """(page, view_hour, shard, views) rows, straight into page_views."""
    ensure_days(engine, *(hour.date() for _, hour, _, _ in rows))
    pages, hours, shards, views = (list(column) for column in zip(*rows, strict=True))
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO page_views (page, view_hour, shard, views) SELECT * FROM unnest("
                "CAST(:pages AS text[]), CAST(:hours AS timestamptz[]), CAST(:shards AS smallint[]), CAST(:views AS bigint[]))"
            ),
            {"pages": pages, "hours": hours, "shards": shards, "views": views},
        )


def stored_rows(engine) -> dict[tuple[str, datetime, int], int]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT page, view_hour, shard, views FROM page_views"))
        return {(page, hour, shard): views for page, hour, shard, views in rows}


def table_exists(engine, name: str) -> bool:
    with engine.connect() as connection:
        return connection.execute(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": name}).scalar()


def is_attached(engine, name: str) -> bool:
    with engine.connect() as connection:
        return bool(connection.execute(text("SELECT relispartition FROM pg_class WHERE relname = :name"), {"name": name}).scalar())


def pending_detaches(engine) -> list[str]:
    with engine.connect() as connection:
        query = "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'page_views'::regclass AND inhdetachpending"
        return list(connection.execute(text(query)).scalars())


def record_ids(engine, applied_at: list[datetime]) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO applied_messages (id, applied_at) SELECT gen_random_uuid(), unnest(CAST(:at AS timestamptz[]))"),
            {"at": applied_at},
        )


def applied_ids(engine) -> list[datetime]:
    with engine.connect() as connection:
        return sorted(connection.execute(text("SELECT applied_at FROM applied_messages")).scalars())


def run_cli(settings: Settings, *args: str, **overrides: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **settings.as_env(), **overrides}
    return subprocess.run([sys.executable, "-m", "worker.cleaner", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


# -- retention


def test_retention_is_exact_to_the_hour_dropping_whole_days_and_deleting_the_rest(settings, engine):
    expired_in_cutoff_day = [(f"p{i}", CUTOFF - HOUR * (1 + i % 14), i % 3, 1) for i in range(25)]
    insert_rows(
        engine,
        [
            ("a", CUTOFF, 1, 5),  # the cutoff hour itself: kept
            ("a", CUTOFF - HOUR, 1, 7),  # the hour before: expired
            ("b", datetime(2025, 2, 7, 23, tzinfo=timezone.utc), 0, 3),  # the day before: dropped with its partition
            ("b", datetime(2025, 2, 1, 5, tzinfo=timezone.utc), 0, 4),
            ("c", datetime(2025, 3, 10, 10, tzinfo=timezone.utc), 0, 9),
            *expired_in_cutoff_day,
        ],
    )

    report = make_cleaner(settings, engine, delete_batch_rows=10).run()

    assert stored_rows(engine) == {("a", CUTOFF, 1): 5, ("c", datetime(2025, 3, 10, 10, tzinfo=timezone.utc), 0): 9}
    assert report.rows_deleted == 1 + len(expired_in_cutoff_day)  # row by row, in batches of 10
    assert not table_exists(engine, "page_views_20250207") and not table_exists(engine, "page_views_20250201")
    assert report.partitions_dropped >= 2
    assert is_attached(engine, "page_views_20250208")
    assert all(table_exists(engine, f"page_views_{day:%Y%m%d}") for day in (NOW.date() + timedelta(days=n) for n in range(8)))


def test_a_cutoff_at_midnight_drops_the_day_before_and_keeps_the_whole_cutoff_day(settings, engine):
    now = datetime(2025, 3, 10, 0, 20, tzinfo=timezone.utc)  # cutoff 2025-02-08 00:00
    midnight = datetime(2025, 2, 8, 0, tzinfo=timezone.utc)
    insert_rows(engine, [("a", midnight, 0, 1), ("a", midnight - HOUR, 0, 1)])

    report = make_cleaner(settings, engine, now=now).run()

    assert stored_rows(engine) == {("a", midnight, 0): 1}
    assert report.rows_deleted == 0
    assert not table_exists(engine, "page_views_20250207")
    assert is_attached(engine, "page_views_20250208")


def test_a_detached_leftover_day_is_dropped_so_a_late_view_can_recreate_it(settings, engine):
    ensure_days(engine, date(2025, 1, 5), date(2025, 2, 20))
    with engine.begin() as connection:  # what a run that died between DETACH and DROP leaves behind
        connection.execute(text("ALTER TABLE page_views DETACH PARTITION page_views_20250105"))
        connection.execute(text("ALTER TABLE page_views DETACH PARTITION page_views_20250220"))
    try:
        report = make_cleaner(settings, engine).run()

        assert not table_exists(engine, "page_views_20250105")
        assert table_exists(engine, "page_views_20250220")  # within retention: detached on purpose, not the cleaner's
        assert report.partitions_dropped >= 1
        with engine.begin() as connection:
            assert connection.execute(text("SELECT page_views_ensure_partition('2025-01-05')")).scalar() is True
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS page_views_20250220"))


def test_a_partition_held_by_a_long_transaction_is_left_pending_and_finished_by_the_next_run(settings, engine):
    make_cleaner(settings, engine).run()  # partitions ahead exist, so only the drop needs page_views
    ensure_days(engine, date(2025, 1, 7))
    record_ids(engine, [NOW - timedelta(hours=72)])
    with engine.connect() as long_reader:
        long_reader.execute(text("SELECT count(*) FROM page_views"))  # holds its transaction open

        first = make_cleaner(settings, engine, lock_timeout_ms=300).run()

        assert first.partitions_dropped == 0
        assert table_exists(engine, "page_views_20250107")
        assert len(pending_detaches(engine)) == 1  # DETACH ... CONCURRENTLY gave up waiting half-way
        assert first.ids_pruned == 1  # the rest of the run went on
        long_reader.rollback()

    second = make_cleaner(settings, engine, lock_timeout_ms=300).run()

    assert second.partitions_dropped >= 1
    assert not table_exists(engine, "page_views_20250107")
    assert pending_detaches(engine) == []


# -- compaction


def test_compaction_merges_old_hours_into_one_row_each_and_leaves_every_sum_unchanged(settings, engine):
    rng = random.Random(11)
    hours = [floor_hour(NOW) - HOUR * k for k in range(30)]  # crosses midnight: two partitions
    rows = [
        (f"example.com/{page}", hour, shard, rng.randint(1, 1000))
        for page in range(200)
        for hour in hours
        for shard in rng.sample(range(10), rng.randint(1, 10))
    ]
    insert_rows(engine, rows)
    before = views_by_page_hour(engine)
    recent_before = {key: views for key, views in stored_rows(engine).items() if key[1] >= COMPACT_BEFORE}
    old_rows = Counter((page, hour) for page, hour, _, _ in rows if hour < COMPACT_BEFORE)
    merged = {group: count for group, count in old_rows.items() if count > 1}

    report = make_cleaner(settings, engine, compact_batch_groups=500).run()

    after = stored_rows(engine)
    assert views_by_page_hour(engine) == before
    assert Counter((page, hour) for page, hour, _ in after if hour < COMPACT_BEFORE) == Counter(dict.fromkeys(old_rows, 1))
    assert all(shard == 0 for (page, hour, shard) in after if (page, hour) in merged)
    assert {key: views for key, views in after.items() if key[1] >= COMPACT_BEFORE} == recent_before
    assert report.groups_compacted == len(merged)
    assert report.rows_compacted == sum(merged.values())
    assert report.rows_after_compaction == len(merged)


WRITER = """
import json, random, sys
from collections import Counter
from sqlalchemy.exc import DBAPIError
from common.db import is_transient, make_engine
from common.sql import ADD_COUNTS

url, flushes, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pages, hours = json.loads(sys.argv[4]), json.loads(sys.argv[5])
engine = make_engine(url, application_name="cleaner-test-writer", pool_size=1)
rng = random.Random(seed)
added = Counter()
for _ in range(flushes):
    groups = list({(rng.choice(pages), rng.choice(hours)) for _ in range(rng.randint(1, 6))})  # any order, as a worker flushes
    params = {"pages": [p for p, _ in groups], "hours": [h for _, h in groups],
              "shards": [rng.randrange(10) for _ in groups], "views": [1] * len(groups),
              "site_shard": rng.randrange(10)}
    while True:
        try:
            with engine.begin() as connection:
                ADD_COUNTS.execute(connection, params)
            break
        except DBAPIError as exc:  # a deadlock with the cleaner rolled the flush back: flush again
            if not is_transient(exc):
                raise
    added.update(groups)
print(json.dumps([[page, hour, count] for (page, hour), count in added.items()]))
"""


def test_compaction_stays_exact_while_a_writer_adds_to_the_same_hours(settings, engine):
    rng = random.Random(5)
    pages = [f"example.com/hot{i}" for i in range(30)]
    hours = [floor_hour(NOW) - HOUR * k for k in range(3, 9)]  # all older than COMPACT_AFTER
    insert_rows(engine, [(page, hour, shard, rng.randint(1, 50)) for page in pages for hour in hours for shard in rng.sample(range(10), 4)])
    expected = Counter(views_by_page_hour(engine))
    epochs = [int(hour.timestamp()) for hour in hours]
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, settings.database_url, "3000", "1", json.dumps(pages), json.dumps(epochs)],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    cleaner = make_cleaner(settings, engine, compact_batch_groups=7)
    runs_with_work = 0
    while writer.poll() is None:
        runs_with_work += cleaner.run().groups_compacted > 0
    out, err = writer.communicate()
    assert writer.returncode == 0, err
    cleaner.run()

    for page, epoch, count in json.loads(out):
        expected[(page, datetime.fromtimestamp(epoch, timezone.utc))] += count
    assert views_by_page_hour(engine) == dict(expected)
    assert runs_with_work >= 2, "the cleaner should have compacted while the writer was writing"
    assert Counter((page, hour) for page, hour, _ in stored_rows(engine)) == Counter(dict.fromkeys(expected, 1))


# -- one runner, repeated runs, pruning


def test_a_second_cleaner_says_it_is_already_running_and_does_nothing(settings, engine):
    insert_rows(engine, [("old", CUTOFF - HOUR, 1, 1), ("old", CUTOFF, 1, 1), ("old", CUTOFF, 2, 1)])
    before = stored_rows(engine)
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": CLEANER_LOCK_KEY})
        holder.commit()
        try:
            assert make_cleaner(settings, engine).run() is None
            result = run_cli(settings, "--once")
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": CLEANER_LOCK_KEY})
            holder.commit()

    assert result.returncode == 0, result.stderr
    assert "already running" in result.stderr
    assert 'msg="cleaner run"' not in result.stderr
    assert stored_rows(engine) == before


def test_a_second_run_finds_nothing_to_do_and_an_empty_table_is_fine(settings, engine):
    empty = make_cleaner(settings, engine).run()
    assert (empty.rows_deleted, empty.groups_compacted, empty.ids_pruned) == (0, 0, 0)

    insert_rows(engine, [("a", CUTOFF - HOUR, 1, 1), ("a", CUTOFF + HOUR, 1, 2), ("a", CUTOFF + HOUR, 2, 3)])
    record_ids(engine, [NOW - timedelta(hours=100)])
    first = make_cleaner(settings, engine).run()
    assert (first.rows_deleted, first.groups_compacted, first.ids_pruned) == (1, 1, 1)

    second = make_cleaner(settings, engine).run()

    figures = second.figures()
    del figures["seconds"]
    assert figures == dict.fromkeys(figures, 0)
    assert total_views(engine) == 5


def test_pruning_removes_only_ids_older_than_the_dedup_retention(settings, engine):
    boundary = NOW - timedelta(hours=48)
    old = [boundary - timedelta(seconds=1 + n) for n in range(25)]
    kept = [boundary, boundary + timedelta(seconds=1), NOW - timedelta(hours=1)]
    record_ids(engine, old + kept)

    report = make_cleaner(settings.replace(dedup_retention_hours=48), engine, delete_batch_rows=10).run()

    assert report.ids_pruned == len(old)
    assert applied_ids(engine) == sorted(kept)


# -- the command line


def test_once_from_the_command_line_exits_zero_and_logs_the_run(settings):
    result = run_cli(settings, "--once")

    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if 'msg="cleaner run"' in line)
    assert "logger=worker.cleaner" in line
    names = ("partitions_created", "partitions_dropped", "rows_deleted", "groups_compacted", "rows_compacted", "rows_after_compaction")
    for name in (*names, "ids_pruned", "seconds"):
        assert f" {name}=" in line


def test_once_fails_with_a_message_when_the_database_is_unreachable(settings):
    result = run_cli(settings, "--once", DATABASE_URL="postgresql://postgres@127.0.0.1:1/pageviews")

    assert result.returncode != 0
    assert "cleaner run failed" in result.stderr and "port 1" in result.stderr


def test_a_bad_setting_stops_the_cleaner_with_a_message_naming_it(settings):
    result = run_cli(settings, "--once", RETENTION_DAYS="0")

    assert result.returncode != 0
    assert "RETENTION_DAYS" in result.stderr


def test_the_loop_runs_every_interval_and_stops_cleanly_on_sigterm(settings):
    cleaner = Process("cleaner", "worker.cleaner", settings.replace(clean_interval=1))
    try:
        wait_for(lambda: cleaner.output().count('msg="cleaner run"') >= 2, timeout=30, what="two cleaner runs")
        assert cleaner.terminate() == 0
        assert "stop requested" in cleaner.output()
    finally:
        cleaner.close()
