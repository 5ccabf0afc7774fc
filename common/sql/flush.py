"""The worker's flush: applied message ids, counts and visitors into page_views, site_hours
and the page_days of days already rolled up, and the day partitions it writes to."""
from __future__ import annotations

from sqlalchemy import text

from common.sql.prepared import Prepared
from common.sql.rollup_locks import LOCKED_DAYS
from common.sql.shared import HLL_PARAMETERS, MERGE_VISITORS, UNION_AGG, UNION_VISITORS

# The batch's message ids into applied_messages (those returned are new), after taking the
# day locks of LOCK_DAYS in the same round trip: the aggregate over the locks yields its one
# row only once every lock is granted, so the locks come first, as rollup_locks.py needs.
RECORD_IDS_AFTER_LOCKING_DAYS = Prepared(
    "pageviews_record_ids",
    f"""
    INSERT INTO applied_messages (id)
    SELECT unnest(CAST(:ids AS uuid[])) FROM ({LOCKED_DAYS}) AS locked
    ON CONFLICT (id) DO NOTHING
    RETURNING id::text
    """,
    {"ids": "text[]", "first_day": "date", "last_day": "date"},
)

# The batch's rows: without visitors (single and multi) each has a NULL sketch; with them,
# :visitor_rows[i] is the (1-based) row of the batch that :visitor_ids[i] belongs to, and
# rows without visitors still get no sketch.
BATCH_WITHOUT_VISITORS = """
        SELECT page, to_timestamp(hour) AS view_hour, shard, views, CAST(NULL AS hll) AS visitors
        FROM unnest(CAST(:pages AS text[]), CAST(:hours AS bigint[]), CAST(:shards AS smallint[]), CAST(:views AS bigint[]))
             AS b(page, hour, shard, views)"""
BATCH_WITH_VISITORS = f"""
        SELECT page, to_timestamp(hour) AS view_hour, shard, views, sketch AS visitors
        FROM unnest(CAST(:pages AS text[]), CAST(:hours AS bigint[]), CAST(:shards AS smallint[]), CAST(:views AS bigint[]))
             WITH ORDINALITY AS b(page, hour, shard, views, row)
        LEFT JOIN (
            SELECT row, hll_add_agg(CAST(visitor AS hll_hashval), {HLL_PARAMETERS}) AS sketch
            FROM unnest(CAST(:visitor_rows AS bigint[]), CAST(:visitor_ids AS bigint[])) AS v(row, visitor)
            GROUP BY row
        ) sketches USING (row)"""


def _add_counts(batch: str) -> str:
    """One statement, in one transaction with RECORD_IDS_AFTER_LOCKING_DAYS: the batch's rows go to page_views,
    their sums per site and hour to site_hours (one shard per flush, rows in key order so
    that concurrent flushes lock them in the same order and do not deadlock), and those of
    days already rolled up to page_days: views to their day's row, and cum to the rows of
    that day and every later built day (LOCK_DAYS)."""
    return f"""
        WITH batch AS MATERIALIZED ({batch}
        ), pages AS (
            INSERT INTO page_views (page, view_hour, shard, views, visitors)
            SELECT page, view_hour, shard, views, visitors FROM batch
            ON CONFLICT (page_key, view_hour, shard) DO UPDATE
            SET views = page_views.views + EXCLUDED.views, {MERGE_VISITORS}
        ), sites AS (
            INSERT INTO site_hours (site, view_hour, shard, views, visitors)
            SELECT page_site(page), view_hour, :site_shard, sum(views), {UNION_AGG.format(column="visitors")}
            FROM batch GROUP BY 1, 2 ORDER BY md5(page_site(page)), view_hour
            ON CONFLICT (site_key, view_hour, shard) DO UPDATE
            SET views = site_hours.views + EXCLUDED.views, {UNION_VISITORS.format(table="site_hours")}
        ), late AS (
            SELECT CAST(view_hour AT TIME ZONE 'UTC' AS date) AS day, page, sum(views) AS views, {UNION_AGG.format(column="visitors")} AS visitors
            FROM batch GROUP BY 1, 2
        )
        INSERT INTO page_days (day, page, views, cum, visitors)
        SELECT r.day, l.page, sum(CASE WHEN r.day = l.day THEN l.views ELSE 0 END), sum(l.views),
               {UNION_AGG.format(column="CASE WHEN r.day = l.day THEN l.visitors END")}
        FROM late l JOIN rollup_days r ON r.day >= l.day
        WHERE l.day IN (SELECT day FROM rollup_days)
        GROUP BY r.day, l.page ORDER BY r.day, md5(l.page)
        ON CONFLICT (day, page_key) DO UPDATE
        SET views = page_days.views + EXCLUDED.views, cum = page_days.cum + EXCLUDED.cum, {UNION_VISITORS.format(table="page_days")}
        """


_BATCH_TYPES = {"pages": "text[]", "hours": "bigint[]", "shards": "smallint[]", "views": "bigint[]", "site_shard": "smallint"}
ADD_COUNTS = Prepared("pageviews_add_counts", _add_counts(BATCH_WITHOUT_VISITORS), _BATCH_TYPES)
ADD_COUNTS_AND_VISITORS = Prepared(
    "pageviews_add_counts_and_visitors", _add_counts(BATCH_WITH_VISITORS), {**_BATCH_TYPES, "visitor_rows": "bigint[]", "visitor_ids": "bigint[]"}
)

ENSURE_PARTITION = text("SELECT page_views_ensure_partition(:day)")
# Creating a partition needs an exclusive lock on page_views; waiting behind a long
# report would stall every writer and reader queued behind us, so give up and retry.
PARTITION_LOCK_TIMEOUT = text("SET LOCAL lock_timeout = '2s'")
