"""How long one cleaner run takes on a million rows.

    .venv/bin/python -m bench.cleaner_bench [--quick] [--rows 1000000] [--days 40] [--ids 200000]

(`python -m bench --scenario cleaner` runs it too.) Creates a scratch database of its own
on DATABASE_URL's server, fills page_views with about --rows rows over the last --days
days (1 to 8 shard rows per page and hour, so there is something to compact; days older
than RETENTION_DAYS, so there are partitions to drop and a partial day to delete) and
applied_messages with --ids ids over the last four days, runs the cleaner once and then
once more (the steady state), prints the figures, and drops the database. The last line
of the output is the figures as one JSON object, for bench/runner.py.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402

from common import db  # noqa: E402
from common import logging as structured_logging  # noqa: E402
from common.config import Settings  # noqa: E402
from common.timeutil import floor_hour, utc_now  # noqa: E402
from worker.cleaner import Cleaner, RunReport  # noqa: E402

MAX_SHARDS = 8  # shard rows per (page, hour): 1 + (page + hour) % MAX_SHARDS, 4.5 on average

FILL_PAGE_VIEWS = text(
    """
    INSERT INTO page_views (page, view_hour, shard, views)
    SELECT 'example.com/articles/' || p, h, s, 1 + (p * 31 + s) % 97
    FROM generate_series(CAST(:first AS timestamptz), CAST(:last AS timestamptz), interval '1 hour') AS h,
         generate_series(1, :pages) AS p,
         LATERAL generate_series(0, (p + extract(hour FROM h)::int) % :max_shards) AS s
    """
)
FILL_APPLIED_IDS = text(
    """
    INSERT INTO applied_messages (id, applied_at)
    SELECT gen_random_uuid(), CAST(:now AS timestamptz) - interval '96 hours' * (n::float8 / :ids)
    FROM generate_series(1, :ids) AS n ORDER BY n DESC
    """
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="one cleaner run over a million rows")
    parser.add_argument("--rows", type=int, default=1_000_000, help="page_views rows to start with (about)")
    parser.add_argument("--days", type=int, default=40, help="days of hourly rows, ending now")
    parser.add_argument("--ids", type=int, default=200_000, help="applied message ids over the last 96 hours")
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows and ids")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.ids = args.rows // 10, args.ids // 10
    return args


def fill(engine: Engine, now: datetime, rows: int, days: int, ids: int) -> None:
    last = floor_hour(now)
    first = last - timedelta(hours=days * 24 - 1)
    pages = max(1, round(rows / (days * 24 * (MAX_SHARDS + 1) / 2)))
    with engine.begin() as connection:
        day = first.date()
        while day <= last.date():
            connection.execute(text("SELECT page_views_ensure_partition(:day)"), {"day": day})
            day += timedelta(days=1)
    with engine.begin() as connection:
        connection.execute(FILL_PAGE_VIEWS, {"first": first, "last": last, "pages": pages, "max_shards": MAX_SHARDS})
        connection.execute(FILL_APPLIED_IDS, {"now": now, "ids": ids})
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.exec_driver_sql("VACUUM ANALYZE page_views, applied_messages")  # as autovacuum would have left them


def count(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar())


def show(title: str, report: RunReport) -> None:
    print(f"{title}: {report.seconds:.2f} s")
    for step, seconds in report.step_seconds.items():
        print(f"  {step:<17} {seconds:8.2f} s")
    for name, value in report.figures().items():
        if name != "seconds":
            print(f"  {name:<22} {value:>10,}")


def main() -> int:
    args = parse_args()
    structured_logging.configure("warning")
    settings = Settings.from_env()
    url = make_url(settings.database_url).set(database=f"pageviews_bench_{uuid.uuid4().hex[:8]}").render_as_string(hide_password=False)
    db.ensure_database(url)
    engine = db.make_engine(url, application_name="pageviews-cleaner-bench", pool_size=2, statement_timeout_ms=600_000)
    try:
        db.migrate(url)
        now = utc_now()
        started = time.monotonic()
        fill(engine, now, args.rows, args.days, args.ids)
        fill_seconds = round(time.monotonic() - started, 1)
        print(f"filled in {fill_seconds} s")
        print(f"RETENTION_DAYS={settings.retention_days} COMPACT_AFTER={settings.compact_after}")
        before = count(engine, "page_views"), count(engine, "applied_messages")
        cleaner = Cleaner(settings.replace(database_url=url), engine, clock=lambda: now)
        first, second = cleaner.run(), cleaner.run()
        after = count(engine, "page_views"), count(engine, "applied_messages")
        print(f"page_views rows:       {before[0]:>10,} before, {after[0]:>10,} after")
        print(f"applied_messages rows: {before[1]:>10,} before, {after[1]:>10,} after")
        show("first run", first)
        show("second run (nothing left to do)", second)
        figures = {"rows_before": before[0], "rows_after": after[0], "ids_before": before[1], "ids_after": after[1], "fill_s": fill_seconds}
        figures.update(first.figures(), step_seconds=first.step_seconds, second_run_seconds=second.seconds)
        print(json.dumps(figures))
    finally:
        engine.dispose()
        db.drop_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
