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

import functools

from sqlalchemy import TextClause, text

PAGE_KEY = "CAST(md5(:page) AS uuid)"

# Visitors sketches (DESIGN.md): log2m 14, regwidth 5, explicit threshold auto, sparse on.
# Exact while small (explicit mode keeps the ids themselves, up to 1280 of them), about
# 0.8 % standard error at scale (1.04 / sqrt(2^14)), 10 kB at most per row. Visitor ids
# are keyed BLAKE2b output, already uniform, so they are cast to hashvals, not hashed again.
HLL_PARAMETERS = "14, 5, -1, 1"
# hll_union is STRICT (NULL if either side is NULL); rows of single and multi have no sketch.
UNION_VISITORS = "visitors = coalesce(hll_union({table}.visitors, EXCLUDED.visitors), {table}.visitors, EXCLUDED.visitors)"
MERGE_VISITORS = UNION_VISITORS.format(table="page_views")

# --------------------------------------------------------------------------- worker: the flush

RECORD_IDS = text(
    """
    INSERT INTO applied_messages (id)
    SELECT unnest(CAST(:ids AS uuid[]))
    ON CONFLICT (id) DO NOTHING
    RETURNING id::text
    """
)

# Late views for a UTC day whose page_days rollup the cleaner has built must reach that
# rollup too (its views, and the running sum `cum` of every built day from it on), and a
# build must not miss a flush that committed views for its day or cum for the day before.
# Both take advisory locks on days: a flush shares those of every day from the first of
# its batch through today (one for a batch of today's views), from before it looks at
# rollup_days until it commits; the build of day D holds D-1 and D exclusively
# (LOCK_DAY, twice). Locks go in ascending day order, so none waits in a cycle. Under
# READ COMMITTED each statement sees what committed before it began, so:
# - a flush that locked first commits before the build's locks are granted; the build's
#   INSERT ... SELECT, a later statement, then reads its page_views rows and its cum at D-1;
# - a flush that asks while the build holds them waits for the build's commit; its
#   ADD_COUNTS, a later statement, then sees D in rollup_days and adds to D's row as well.
# A flush of views up to day D-2 only still touches cum at D-1, which is why it locks
# through today: this assumes the worker's and the cleaner's clocks agree within
# COMPACT_AFTER (days are built that long after they end).
ROLLUP_LOCK_CLASS = 7_244_186
LOCK_DAYS = text(
    f"""
    SELECT pg_advisory_xact_lock_shared({ROLLUP_LOCK_CLASS}, CAST(d AS date) - DATE '2000-01-01')
    FROM generate_series(CAST(:first_day AS date), CAST(:last_day AS date), interval '1 day') AS d ORDER BY d
    """
)
LOCK_DAY = text(f"SELECT pg_advisory_xact_lock({ROLLUP_LOCK_CLASS}, CAST(:day AS date) - DATE '2000-01-01')")

# hll_union_agg allocates a full sketch state per group even when every input is NULL
# (about 12 kB: 720 hourly groups spilled to disk); FILTER skips the rows without one.
UNION_AGG = "hll_union_agg({column}) FILTER (WHERE {column} IS NOT NULL)"

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


def _add_counts(batch: str) -> TextClause:
    """One statement, so one transaction with RECORD_IDS: the batch's rows go to page_views,
    their sums per site and hour to site_hours (one shard per flush, rows in key order so
    that concurrent flushes lock them in the same order and do not deadlock), and those of
    days already rolled up to page_days: views to their day's row, and cum to the rows of
    that day and every later built day (LOCK_DAYS)."""
    return text(
        f"""
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
    )


ADD_COUNTS = _add_counts(BATCH_WITHOUT_VISITORS)
ADD_COUNTS_AND_VISITORS = _add_counts(BATCH_WITH_VISITORS)

ENSURE_PARTITION = text("SELECT page_views_ensure_partition(:day)")
# Creating a partition needs an exclusive lock on page_views; waiting behind a long
# report would stall every writer and reader queued behind us, so give up and retry.
PARTITION_LOCK_TIMEOUT = text("SET LOCAL lock_timeout = '2s'")


# --------------------------------------------------------------------------- reports

VISITORS = f"coalesce(round(hll_cardinality({UNION_AGG}))::bigint, 0)"


BUCKET_ROWS = {
    # page_key leads the primary key, so this is one index range scan per day partition
    # touched; `page = :page` keeps the answer exact even under an md5 collision.
    "page": f"page_views WHERE page_key = {PAGE_KEY} AND page = :page",
    "site": "site_hours WHERE site_key = CAST(md5(:site) AS uuid) AND site = :site",
    "all": "site_hours WHERE true",
}


@functools.lru_cache(maxsize=8)
def bucket_counts(rows: str, hourly: bool) -> TextClause:
    """Views and visitors per bucket and, in the row whose bucket is NULL, for the whole
    window (a union of sketches, not a sum). An hourly bucket is its UTC hour; otherwise
    it is the 1-based index of the bucket among :bounds, a PostgreSQL array literal of
    the sorted bucket starts (one text parameter: hundreds of bound timestamps cost
    more to send one by one than the query costs to run)."""
    bucket = "view_hour" if hourly else "width_bucket(view_hour, CAST(:bounds AS timestamptz[]))"
    return text(
        f"""
        SELECT bucket, sum(views)::bigint AS views, {VISITORS.format(column="visitors")} AS visitors
        FROM (SELECT {bucket} AS bucket, views, visitors
              FROM {BUCKET_ROWS[rows]} AND view_hour >= :start AND view_hour < :end) AS r
        GROUP BY ROLLUP (bucket)
        """
    )


# Ranked without sketches (an hll aggregate state per site made the planner sort and
# spill), then visitors for the sites listed only.
TOP_SITES = text(
    f"""
    WITH ranked AS (
        SELECT site_key, site, sum(views)::bigint AS views
        FROM site_hours WHERE view_hour >= :start AND view_hour < :end
        GROUP BY site_key, site
        ORDER BY views DESC, site COLLATE "C" LIMIT :limit
    )
    SELECT r.site, r.views,
           (SELECT {VISITORS.format(column="s.visitors")} FROM site_hours s
            WHERE s.site_key = r.site_key AND s.site = r.site AND s.view_hour >= :start AND s.view_hour < :end) AS visitors
    FROM ranked r ORDER BY r.views DESC, r.site COLLATE "C"
    """
)

COMPLETE_DAYS = text("SELECT day FROM rollup_days WHERE day >= :first AND day < :last ORDER BY day")


@functools.lru_cache(maxsize=64)
def top_pages(hour_ranges: int, of_site: bool) -> TextClause:
    """The :limit pages with the most views in the window. Its runs of consecutive complete
    days come from page_days, two rows per page and run: cum on the last day (:run_ends)
    plus views - cum on the first (:run_starts); its other hours from hourly rows
    (:from0/:to0, ... as literal ranges so that the planner prunes partitions). Ranked by
    page_key first (cheap, WITH TIES so that no tie at the edge is lost), then named,
    ordered by name, and only then given their visitors (:days, every complete day)."""
    ranges = " OR ".join(f"(view_hour >= :from{n} AND view_hour < :to{n})" for n in range(hour_ranges)) or "false"
    site_days = "AND site_key = CAST(md5(:site) AS uuid)" if of_site else ""
    site_hours = "AND starts_with(page, :site || '/')" if of_site else ""  # page_site(page) = :site, for a site without '/'
    days = "FROM page_days d WHERE d.day = ANY(CAST(:days AS date[])) AND d.page_key = n.page_key"
    hours = f"FROM page_views p WHERE p.page_key = n.page_key AND ({ranges})"
    return text(
        f"""
        WITH ranked AS (
            SELECT page_key, sum(views)::bigint AS views FROM (
                SELECT page_key, cum AS views FROM page_days WHERE day = ANY(CAST(:run_ends AS date[])) {site_days}
                UNION ALL
                SELECT page_key, views - cum FROM page_days WHERE day = ANY(CAST(:run_starts AS date[])) {site_days}
                UNION ALL
                SELECT page_key, views FROM page_views WHERE ({ranges}) {site_hours}
            ) AS parts
            GROUP BY page_key HAVING sum(views) > 0 ORDER BY views DESC FETCH FIRST :limit ROWS WITH TIES
        ), named AS (
            SELECT n.page_key, n.views, coalesce((SELECT d.page {days} LIMIT 1), (SELECT p.page {hours} LIMIT 1)) AS page
            FROM ranked n
        )
        SELECT n.page, n.views,
               (SELECT {VISITORS.format(column="v.visitors")} FROM (SELECT d.visitors {days} UNION ALL SELECT p.visitors {hours}) AS v) AS visitors
        FROM (SELECT * FROM named ORDER BY views DESC, page COLLATE "C" LIMIT :limit) AS n
        ORDER BY n.views DESC, n.page COLLATE "C"
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

# --------------------------------------------------------------------------- visitor salts

INSERT_SALT = text("INSERT INTO visitor_salts (day, salt) VALUES (:day, :salt) ON CONFLICT (day) DO NOTHING")
SELECT_SALT = text("SELECT salt FROM visitor_salts WHERE day = :day")
DELETE_OLD_SALTS = text("DELETE FROM visitor_salts WHERE day < :oldest_kept")
