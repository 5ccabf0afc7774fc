"""The cleaner's statements: its own lock, partitions and expiry, shard compaction, rollups."""
from __future__ import annotations

from sqlalchemy import text

from common.sql.shared import MERGE_VISITORS, UNION_AGG

TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")
UNLOCK = text("SELECT pg_advisory_unlock(:key)")
SET_LOCK_TIMEOUT = text("SELECT set_config('lock_timeout', :value, :is_local)")

# The partitions as the catalog knows them, with the range each one covers. A DEFAULT
# or MINVALUE/MAXVALUE partition has no quoted bounds and is left alone.
LIST_PARTITIONS = text(
    r"""
    SELECT c.oid::regclass::text AS name, i.inhdetachpending AS detach_pending,
           m.bounds[1]::timestamptz AS starts, m.bounds[2]::timestamptz AS ends
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS m(bounds)
    WHERE i.inhparent = 'page_views'::regclass AND m.bounds IS NOT NULL
    ORDER BY starts
    """
)

# Day tables that are no longer partitions: left behind by a run that died between
# DETACH and DROP. The worker's page_views_ensure_partition sees the name taken and would
# never re-create that day, so they must go.
LIST_LEFTOVER_TABLES = text(
    """
    SELECT c.oid::regclass::text AS name, c.relname
    FROM pg_class c
    WHERE c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'page_views'::regclass)
      AND c.relkind = 'r' AND NOT c.relispartition AND c.relname ~ '^page_views_[0-9]{8}$'
    """
)

# ctid batches: each statement deletes at most :limit rows, so no transaction holds many
# row locks or runs long. ctid is only unique within one table, hence one partition.
DELETE_EXPIRED_ROWS = "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE view_hour < :cutoff LIMIT :limit))"
DELETE_APPLIED_IDS = text(
    "DELETE FROM applied_messages WHERE ctid = ANY(ARRAY(SELECT ctid FROM applied_messages WHERE applied_at < :before LIMIT :limit))"
)

# The next batch of (page_key, view_hour) groups with more than one row, in primary-key
# order after the previous batch, so that one day is read once however many batches it takes.
CHOOSE_GROUPS = """
    SELECT page_key, view_hour, count(*) AS rows
    FROM {table}
    WHERE view_hour >= :low AND view_hour < :high
      AND (page_key, view_hour) > (CAST(:after_key AS uuid), CAST(:after_hour AS timestamptz))
    GROUP BY page_key, view_hour
    HAVING count(*) > 1
    ORDER BY page_key, view_hour
    LIMIT :limit
"""

BATCH = "unnest(CAST(:keys AS uuid[]), CAST(:hours AS timestamptz[])) AS g(page_key, view_hour)"

# Why this stays exact while workers upsert into the same hours (READ COMMITTED):
# - A shard row a worker updates concurrently: the DELETE waits for the worker's commit,
#   re-reads the row's newest version, still matches it (same key, shard <> 0), deletes
#   that version and RETURNs its new views, so the worker's +n moves to shard 0 with it.
# - A worker upserting a shard row this DELETE has removed: its INSERT waits on our
#   transaction, then finds no conflicting row and inserts a fresh one. A shard row a
#   worker inserts after this statement began is not seen by the DELETE. Either way
#   nothing is lost, and the next run merges that row.
# - Shard 0 is never deleted, so the INSERT never meets a row this statement deletes; it
#   and the workers' upserts into shard 0 are both ON CONFLICT ... views + EXCLUDED.views,
#   which PostgreSQL applies one after the other on the newest version.
# - DELETE and INSERT are one statement in one transaction: readers see the views either
#   in the shard rows or in shard 0, never in both or neither.
# - Visitors sketches move with the views: hll_union_agg of the moved rows, united with
#   shard 0's. A union is idempotent and order-free, so the same reasoning holds for them.
# Deadlocks with a worker's multi-row flush are possible; the batch is then retried whole.
# The key range repeats what the batch implies (it is a slice of the primary key): without
# it the planner tends to hash-join the batch against a scan of the whole day.
MERGE_SHARDS = f"""
    WITH moved AS (
        DELETE FROM {{table}} p USING {BATCH}
        WHERE p.page_key = g.page_key AND p.view_hour = g.view_hour AND p.shard <> 0
          AND (p.page_key, p.view_hour) >= (CAST(:first_key AS uuid), CAST(:first_hour AS timestamptz))
          AND (p.page_key, p.view_hour) <= (CAST(:last_key AS uuid), CAST(:last_hour AS timestamptz))
        RETURNING p.page, p.view_hour, p.views, p.visitors
    ), merged AS (
        INSERT INTO page_views (page, view_hour, shard, views, visitors)
        SELECT page, view_hour, 0, sum(views)::bigint, hll_union_agg(visitors) FROM moved GROUP BY page, view_hour
        ON CONFLICT (page_key, view_hour, shard) DO UPDATE SET views = page_views.views + EXCLUDED.views, {MERGE_VISITORS}
        RETURNING 1
    )
    SELECT count(*) FROM merged
"""

COUNT_GROUP_ROWS = f"SELECT count(*) FROM {{table}} p JOIN {BATCH} ON p.page_key = g.page_key AND p.view_hour = g.view_hour"


# --------------------------------------------------------------------------- cleaner: rollups

UNBUILT_DAYS = text(
    """
    SELECT CAST(d AS date) AS day FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') AS d
    WHERE NOT EXISTS (SELECT 1 FROM rollup_days r WHERE r.day = CAST(d AS date))
    ORDER BY 1
    """
)
IS_BUILT = text("SELECT EXISTS (SELECT 1 FROM rollup_days WHERE day = :day)")
# Run after LOCK_DAY, in one transaction: rows of a day left by an expiry race go first.
# The day's rows carry the day before's forward (cum; views 0 for pages without views),
# when that day is built; otherwise the chain of running sums starts here.
CLEAR_DAY = text("DELETE FROM page_days WHERE day = :day")
BUILD_DAY = text(
    f"""
    INSERT INTO page_days (day, page, views, cum, visitors)
    SELECT CAST(:day AS date), coalesce(t.page, p.page), coalesce(t.views, 0), coalesce(p.cum, 0) + coalesce(t.views, 0), t.visitors
    FROM (SELECT page_key, page, sum(views)::bigint AS views, {UNION_AGG.format(column="visitors")} AS visitors
          FROM page_views WHERE view_hour >= :start AND view_hour < :end GROUP BY page_key, page) AS t
    FULL JOIN (SELECT page_key, page, cum FROM page_days
               WHERE day = CAST(:day AS date) - 1 AND EXISTS (SELECT 1 FROM rollup_days WHERE day = CAST(:day AS date) - 1)) AS p
    ON p.page_key = t.page_key
    """
)
MARK_BUILT = text("INSERT INTO rollup_days (day) VALUES (:day)")
# Retention: a day that is not whole inside the window is no longer complete. Its mark
# goes first (readers fall back to its remaining hourly rows), then its rows in batches.
UNMARK_EXPIRED_DAYS = text("DELETE FROM rollup_days WHERE day < :first_day")
DELETE_EXPIRED_PAGE_DAYS = text(
    "DELETE FROM page_days WHERE ctid = ANY(ARRAY(SELECT ctid FROM page_days WHERE day < :first_day LIMIT :limit))"
)
DELETE_EXPIRED_SITE_HOURS = text(
    "DELETE FROM site_hours WHERE ctid = ANY(ARRAY(SELECT ctid FROM site_hours WHERE view_hour < :cutoff LIMIT :limit))"
)
