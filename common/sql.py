"""Every SQL statement the application runs on its tables, in one place.

The migrations create the schema (migrations/versions/, the only description of it);
this module is what the running code says to it.

page_views holds hourly counts. ``page_key`` (md5 of the page, as a uuid, a generated
column) is what the primary key indexes: a btree entry is limited to about 2.7 kB, and a
2048-character page of CJK text is 6 kB, so the literal page cannot be the key. Queries
still compare ``page`` too; md5 collisions are negligible (2^-64 at four billion pages).
The page key expression (PAGE_KEY below) is spelled here and in the migrations only.
The table is range-partitioned by day on ``view_hour``, so that expiring a day is a DROP
TABLE instead of millions of row deletes.
"""
from __future__ import annotations

from sqlalchemy import text

PAGE_KEY = "CAST(md5(:page) AS uuid)"

# Visitors sketches (DESIGN.md): log2m 14, regwidth 5, explicit threshold auto, sparse on.
# Exact while small (explicit mode keeps the ids themselves, up to 1280 of them), about
# 0.8 % standard error at scale (1.04 / sqrt(2^14)), 10 kB at most per row. Visitor ids
# are keyed BLAKE2b output, already uniform, so they are cast to hashvals, not hashed again.
HLL_PARAMETERS = "14, 5, -1, 1"
# hll_union is STRICT (NULL if either side is NULL); rows of single and multi have no sketch.
MERGE_VISITORS = "visitors = coalesce(hll_union(page_views.visitors, EXCLUDED.visitors), page_views.visitors, EXCLUDED.visitors)"
VISITORS_OF_GROUP = "coalesce(round(hll_cardinality(hll_union_agg(visitors)))::bigint, 0)"

# --------------------------------------------------------------------------- worker: the flush

RECORD_IDS = text(
    """
    INSERT INTO applied_messages (id)
    SELECT unnest(CAST(:ids AS uuid[]))
    ON CONFLICT (id) DO NOTHING
    RETURNING id::text
    """
)

ADD_COUNTS = text(
    """
    INSERT INTO page_views (page, view_hour, shard, views)
    SELECT page, to_timestamp(hour), shard, views
    FROM unnest(CAST(:pages AS text[]), CAST(:hours AS bigint[]), CAST(:shards AS smallint[]), CAST(:views AS bigint[]))
         AS batch(page, hour, shard, views)
    ON CONFLICT (page_key, view_hour, shard) DO UPDATE SET views = page_views.views + EXCLUDED.views
    """
)

# The same with visitors: :visitor_rows[i] is the (1-based) row of the batch that
# :visitor_ids[i] belongs to. Rows without visitors get no sketch (NULL).
ADD_COUNTS_AND_VISITORS = text(
    f"""
    INSERT INTO page_views (page, view_hour, shard, views, visitors)
    SELECT page, to_timestamp(hour), shard, views, sketch
    FROM unnest(CAST(:pages AS text[]), CAST(:hours AS bigint[]), CAST(:shards AS smallint[]), CAST(:views AS bigint[]))
         WITH ORDINALITY AS batch(page, hour, shard, views, row)
    LEFT JOIN (
        SELECT row, hll_add_agg(CAST(visitor AS hll_hashval), {HLL_PARAMETERS}) AS sketch
        FROM unnest(CAST(:visitor_rows AS bigint[]), CAST(:visitor_ids AS bigint[])) AS v(row, visitor)
        GROUP BY row
    ) sketches USING (row)
    ON CONFLICT (page_key, view_hour, shard) DO UPDATE SET views = page_views.views + EXCLUDED.views, {MERGE_VISITORS}
    """
)

ENSURE_PARTITION = text("SELECT page_views_ensure_partition(:day)")
# Creating a partition needs an exclusive lock on page_views; waiting behind a long
# report would stall every writer and reader queued behind us, so give up and retry.
PARTITION_LOCK_TIMEOUT = text("SET LOCAL lock_timeout = '2s'")


# --------------------------------------------------------------------------- report

# page_key leads the primary key, so this is one index range scan per day partition
# touched; `page = :page` keeps the answer exact even under an md5 collision.
HOURLY_TOTALS = text(
    f"""
    SELECT view_hour, sum(views)::bigint AS views, {VISITORS_OF_GROUP} AS visitors
    FROM page_views
    WHERE page_key = {PAGE_KEY} AND page = :page
      AND view_hour >= :start AND view_hour < :end
    GROUP BY view_hour
    """
)


# --------------------------------------------------------------------------- cleaner

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


# --------------------------------------------------------------------------- visitor salts

INSERT_SALT = text("INSERT INTO visitor_salts (day, salt) VALUES (:day, :salt) ON CONFLICT (day) DO NOTHING")
SELECT_SALT = text("SELECT salt FROM visitor_salts WHERE day = :day")
DELETE_OLD_SALTS = text("DELETE FROM visitor_salts WHERE day < :oldest_kept")
